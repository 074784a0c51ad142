/* Prometheus text exposition (format 0.0.4) of the metrics registry: what
 * /metrics serves (export/prom.c) before the host collectors' families. */
#ifndef SONDE_PROM_TEXT_H
#define SONDE_PROM_TEXT_H

#include <stdbool.h>

#include "metrics/metrics.h"

/* Every family of m in registration order, its series in creation order
 * (the overflow series last), then METRICS_DROPPED_NAME with one line per
 * family. Appends to out; 0, -EINVAL for a NULL argument, or -ENOMEM with
 * out left as it was. */
int prom_text__render(struct metrics *m, struct metrics_buf *out);

/* Tests: off re-formats every series' values on every render instead of
 * copying the lines of a series whose values did not change (the prefixes
 * stay cached either way). On by default. */
void prom_text__cache(bool on);

#endif
