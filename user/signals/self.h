/* The agent's own health on /metrics (sonde_*: events, drops per ring,
 * parse errors per protocol, connections, injection, CPU and memory) and
 * the per-service TCP byte counters, read from the modules that count. */
#ifndef SONDE_SELF_H
#define SONDE_SELF_H

#include <stdint.h>

#include "metrics/metrics.h"

struct loader;
struct conn_table;
struct inject;
struct tracectx;

/* Where the numbers come from; the pointers may be NULL (module off). */
struct self_sources {
	struct loader *ld;
	const struct conn_table *conns;
	const struct inject *inject;
	const struct tracectx *tc;
	uint64_t bad_records;		/* ring records with a bad type or size */
	uint64_t args_gc;		/* syscall-args entries of dead threads removed */
};

struct self_metrics;

int self__new(struct self_metrics **out, struct metrics *m, size_t max_series,
	      const char *version);
void self__free(struct self_metrics *s);
void self__collect(struct self_metrics *s, const struct self_sources *src);

#endif
