/* Per-service route budgets: which http_route label (and OTLP http.route) a
 * span gets, so that one service with unbounded paths cannot fill a
 * family's series cap and push every other service into the overflow. */
#ifndef SONDE_ROUTES_H
#define SONDE_ROUTES_H

#include <stddef.h>
#include <stdint.h>

/* The route a service's spans get once its budget is spent. A template
 * parameter in the same {name} form as "{id}": '{' and '}' are not allowed
 * unescaped in a URI path (RFC 3986 pchar), so no conforming client sends
 * it, and it keeps service_name, unlike the registry's label-less
 * otel_metric_overflow series. */
#define ROUTES_OVERFLOW "/{overflow}"
#define ROUTES_DEFAULT_PER_SERVICE 100
/* Services with a budget of their own, per table; the ones after share one
 * budget. */
#define ROUTES_MAX_SERVICES 1024

struct routes_opts {
	uint32_t per_service;	/* distinct routes per service_name, >= 1 */
	uint32_t max_services;	/* 0: ROUTES_MAX_SERVICES */
	/* Distinct (service, route) pairs remembered in all. Set it to the
	 * family's series cap: every pair is a label set of its own, so once
	 * this many are known the registry is full and its overflow series is
	 * the last resort anyway; a route not remembered is then returned
	 * unchanged. */
	size_t max_routes;
};

struct routes;

/* One table per metric family. 0 or -ENOMEM / -EINVAL. */
int routes__new(struct routes **out, const struct routes_opts *o);
void routes__free(struct routes *r);
/* route, or ROUTES_OVERFLOW when service has spent its budget on other
 * routes. A route once admitted stays admitted. service NULL is "". */
const char *routes__label(struct routes *r, const char *service, const char *route);
/* Spans given ROUTES_OVERFLOW so far. */
uint64_t routes__collapsed(const struct routes *r);

#endif
