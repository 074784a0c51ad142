/* Spans → signals: the RED histograms with OTel semantic-convention names
 * and labels (http_server_request_duration_seconds, db_client_…), OTLP
 * spans, and `--print spans`. This is the span builder's sink. */
#ifndef SONDE_SIGNALS_H
#define SONDE_SIGNALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "span/span.h"

struct otlp;

struct signals_opts {
	size_t max_series;		/* cardinality cap per family */
	uint32_t max_routes_per_service;	/* http_route budget per service_name and
						 * HTTP family; 0: ROUTES_DEFAULT_PER_SERVICE */
	const char *comm;		/* report only this comm; NULL: all */
	bool print_spans;		/* JSON lines on stdout */
	struct otlp *otlp;		/* NULL: no OTLP export */
};

struct signals;

int signals__new(struct signals **out, struct metrics *m, const struct signals_opts *o);
void signals__free(struct signals *s);
/* A finished span (struct span_sink.emit). An HTTP span whose service
 * has spent its route budget (routes.h) is exported with route
 * ROUTES_OVERFLOW everywhere: metrics, OTLP and --print spans agree. */
void signals__span(void *signals, const struct span *s);
/* Brings sonde_spans_total up to date: before the registry is read. */
void signals__collect(struct signals *s);

#endif
