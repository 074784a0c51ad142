/* Unit tests for the per-service route budgets (user/signals/routes.c),
 * alone and through signals__span into a real metrics registry: a service
 * that floods routes spends only its own budget. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "export/otlp.h"
#include "metrics/metrics.h"
#include "signals/routes.h"
#include "signals/signals.h"

/* signals.c's OTLP sink, replaced: records the routes spans are exported
 * with, so the test sees what OTLP's http.route would say. */
static unsigned otlp_spans, otlp_overflow_spans;

void otlp__span(struct otlp *o, const struct span *s)
{
	(void)o;
	otlp_spans++;
	otlp_overflow_spans += strcmp(s->route, ROUTES_OVERFLOW) == 0;
}

static void test_budget(void)
{
	struct routes_opts o = { .per_service = 3, .max_routes = 100 };
	struct routes *r;

	CHECK_EQ_INT(routes__new(&r, &o), 0);
	CHECK_EQ_STR(routes__label(r, "a", "/1"), "/1");
	CHECK_EQ_STR(routes__label(r, "a", "/2"), "/2");
	CHECK_EQ_STR(routes__label(r, "a", "/1"), "/1");	/* known: no budget spent */
	CHECK_EQ_STR(routes__label(r, "a", "/3"), "/3");
	CHECK_EQ_STR(routes__label(r, "a", "/4"), ROUTES_OVERFLOW);
	CHECK_EQ_STR(routes__label(r, "a", "/5"), ROUTES_OVERFLOW);
	/* admitted routes stay admitted after the budget is spent */
	CHECK_EQ_STR(routes__label(r, "a", "/2"), "/2");
	CHECK_EQ_INT(routes__collapsed(r), 2);
	/* another service: its own budget, the same routes too */
	CHECK_EQ_STR(routes__label(r, "b", "/4"), "/4");
	CHECK_EQ_STR(routes__label(r, "b", "/1"), "/1");
	CHECK_EQ_STR(routes__label(r, NULL, "/1"), "/1");	/* "" is a service too */
	CHECK_EQ_STR(routes__label(r, "", "/2"), "/2");
	CHECK_EQ_INT(routes__collapsed(r), 2);
	/* the last-pair shortcut compares the service too: "a" /4 right after
	 * "b" /4 (admitted) is still over a's budget, twice in a row */
	CHECK_EQ_STR(routes__label(r, "b", "/4"), "/4");
	CHECK_EQ_STR(routes__label(r, "a", "/4"), ROUTES_OVERFLOW);
	CHECK_EQ_STR(routes__label(r, "a", "/4"), ROUTES_OVERFLOW);
	CHECK_EQ_INT(routes__collapsed(r), 4);
	routes__free(r);
	/* nothing admitted yet: an empty route of an empty service is no hit */
	o = (struct routes_opts){ .per_service = 1, .max_routes = 100 };
	CHECK_EQ_INT(routes__new(&r, &o), 0);
	CHECK_EQ_STR(routes__label(r, "", "/x"), "/x");
	CHECK_EQ_STR(routes__label(r, "", ""), ROUTES_OVERFLOW);
	routes__free(r);

	o.per_service = 0;
	CHECK_EQ_INT(routes__new(&r, &o), -22);
	o.per_service = 1;
	o.max_routes = 0;
	CHECK_EQ_INT(routes__new(&r, &o), -22);
}

/* Services after max_services share one budget; the first ones keep theirs. */
static void test_shared_budget(void)
{
	struct routes_opts o = { .per_service = 2, .max_services = 2, .max_routes = 100 };
	struct routes *r;

	CHECK_EQ_INT(routes__new(&r, &o), 0);
	CHECK_EQ_STR(routes__label(r, "a", "/x"), "/x");
	CHECK_EQ_STR(routes__label(r, "b", "/x"), "/x");
	CHECK_EQ_STR(routes__label(r, "c", "/x"), "/x");	/* shared: 1 of 2 */
	CHECK_EQ_STR(routes__label(r, "d", "/x"), "/x");	/* shared: 2 of 2 */
	CHECK_EQ_STR(routes__label(r, "e", "/x"), ROUTES_OVERFLOW);
	CHECK_EQ_STR(routes__label(r, "c", "/y"), ROUTES_OVERFLOW);
	CHECK_EQ_STR(routes__label(r, "c", "/x"), "/x");
	CHECK_EQ_STR(routes__label(r, "a", "/y"), "/y");	/* own budget untouched */
	CHECK_EQ_STR(routes__label(r, "a", "/z"), ROUTES_OVERFLOW);
	routes__free(r);
}

/* The pair table is bounded by max_routes; past it routes pass unchanged
 * (the registry's cap is the last resort) and memory stops growing. */
static void test_table_full(void)
{
	struct routes_opts o = { .per_service = 1000, .max_routes = 500 };
	struct routes *r;
	char route[32];
	int same = 0;

	CHECK_EQ_INT(routes__new(&r, &o), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		same += routes__label(r, i % 2 ? "a" : "b", route) == (const char *)route;
	}
	CHECK_EQ_INT(same, 5000);
	CHECK_EQ_INT(routes__collapsed(r), 0);
	/* a route admitted before the table filled is still known */
	CHECK_EQ_STR(routes__label(r, "a", "/r1"), "/r1");
	routes__free(r);

	/* 10,000 distinct routes of one service, budget 100 */
	o = (struct routes_opts){ .per_service = 100, .max_routes = 2000 };
	CHECK_EQ_INT(routes__new(&r, &o), 0);
	for (int i = 0; i < 10000; i++) {
		snprintf(route, sizeof(route), "/w%d", i);
		routes__label(r, "a", route);
	}
	CHECK_EQ_INT(routes__collapsed(r), 9900);
	routes__free(r);
}

struct tally {
	const char *service;
	unsigned series, overflow_series, global_overflow_series;
	uint64_t count, overflow_count, ok_count, global_overflow_count;
};

/* server labels: method, status, route, service_name, server_port, error_type */
static void tally_fn(void *arg, const struct metrics_series_view *v)
{
	struct tally *t = arg;

	if (v->overflow) {
		t->global_overflow_series++;
		t->global_overflow_count += v->count;
		return;
	}
	if (strcmp(v->label_values[3], t->service) != 0)
		return;
	t->series++;
	t->count += v->count;
	if (strcmp(v->label_values[2], ROUTES_OVERFLOW) == 0) {
		t->overflow_series++;
		t->overflow_count += v->count;
	}
	if (strcmp(v->label_values[2], "/ok") == 0)
		t->ok_count += v->count;
}

static struct tally tally(struct metrics *m, int fam, const char *service)
{
	struct tally t = { .service = service };

	metrics__foreach(m, fam, tally_fn, &t);
	return t;
}

static void span_to(struct signals *g, const char *service, uint16_t port, const char *route)
{
	struct span s;

	memset(&s, 0, sizeof(s));
	s.kind = SPAN_SERVER;
	s.proto = SPAN_HTTP;
	s.start_ns = 1000000;
	s.end_ns = 3000000;
	s.service = service;
	s.tuple.sport = port;
	strcpy(s.method, "GET");
	snprintf(s.target, sizeof(s.target), "%s", route);
	snprintf(s.route, sizeof(s.route), "%s", route);
	s.status = 200;
	signals__span(g, &s);
}

/* Issue #15 item 4: service A floods 10,000 distinct routes, then service
 * B sends 100 requests to /ok. per_service 0 means the default (100). */
static double collapsed_server;	/* sonde_routes_collapsed_total of the last flood */

static void collapsed_fn(void *arg, const struct metrics_series_view *v)
{
	if (!v->overflow && strcmp(v->label_values[0], "http_server_request_duration_seconds") == 0)
		*(double *)arg = v->value;
}

/* sonde_spans_total by kind after the last flood; -1: no series */
static double spans_server, spans_client;

static void spans_fn(void *arg, const struct metrics_series_view *v)
{
	(void)arg;
	if (v->overflow)
		return;
	if (strcmp(v->label_values[0], "server") == 0)
		spans_server = v->value;
	else if (strcmp(v->label_values[0], "client") == 0)
		spans_client = v->value;
}

static void flood(uint32_t per_service, struct tally *a, struct tally *b)
{
	struct signals_opts o = { .max_series = 2000, .max_routes_per_service = per_service };
	struct metrics *m = metrics__new();
	struct signals *g;
	struct metrics_family_desc d;
	char route[32];
	int fam = -1;

	CHECK_EQ_INT(signals__new(&g, m, &o), 0);
	for (int i = 0; i < 10000; i++) {
		snprintf(route, sizeof(route), "/w%05d", i);
		span_to(g, "flooder", 8081, route);
	}
	for (int i = 0; i < 100; i++)
		span_to(g, "quiet", 8082, "/ok");
	for (int i = 0; i < metrics__nfamilies(m); i++)
		if (metrics__family_desc(m, i, &d) == 0 &&
		    strcmp(d.name, "http_server_request_duration_seconds") == 0)
			fam = i;
	collapsed_server = 0;
	for (int i = 0; i < metrics__nfamilies(m); i++)
		if (metrics__family_desc(m, i, &d) == 0 &&
		    strcmp(d.name, "sonde_routes_collapsed_total") == 0)
			metrics__foreach(m, i, collapsed_fn, &collapsed_server);
	*a = tally(m, fam, "flooder");
	*b = tally(m, fam, "quiet");
	/* sonde_spans_total is counted apart and set at collect */
	signals__collect(g);
	spans_server = spans_client = -1;
	for (int i = 0; i < metrics__nfamilies(m); i++)
		if (metrics__family_desc(m, i, &d) == 0 && strcmp(d.name, "sonde_spans_total") == 0)
			metrics__foreach(m, i, spans_fn, NULL);
	signals__free(g);
	metrics__free(m);
}

static void test_flood(void)
{
	struct tally a, b;

	otlp_spans = otlp_overflow_spans = 0;
	flood(0, &a, &b);
	CHECK_EQ_INT(a.series, 101);		/* 100 routes + /{overflow} */
	CHECK_EQ_INT(a.overflow_series, 1);
	CHECK_EQ_INT(a.overflow_count, 9900);
	CHECK_EQ_INT(collapsed_server, 9900);	/* counted, as a drop is */
	CHECK_EQ_INT(spans_server, 10100);	/* every span, once */
	CHECK_EQ_INT(spans_client, -1);		/* no client span: no series */
	CHECK_EQ_INT(a.count, 10000);
	CHECK_EQ_INT(b.series, 1);
	CHECK_EQ_INT(b.ok_count, 100);
	CHECK_EQ_INT(b.overflow_series, 0);
	CHECK_EQ_INT(a.global_overflow_series, 0);
	/* OTLP got the same route as the metric */
	CHECK_EQ_INT(otlp_spans, 10100);
	CHECK_EQ_INT(otlp_overflow_spans, 9900);

	/* a budget of 7 */
	flood(7, &a, &b);
	CHECK_EQ_INT(a.series, 8);
	CHECK_EQ_INT(a.overflow_count, 9993);
	CHECK_EQ_INT(b.ok_count, 100);

	/* Without a per-service budget (larger than the family cap) the flood
	 * fills the cap of 2000 series and B lands in otel_metric_overflow:
	 * the failure this budget prevents. */
	flood(1u << 20, &a, &b);
	CHECK_EQ_INT(a.series, 2000);
	CHECK_EQ_INT(a.overflow_series, 0);
	CHECK_EQ_INT(b.series, 0);
	CHECK_EQ_INT(a.global_overflow_count, 8000 + 100);
}

int main(void)
{
	test_budget();
	test_shared_budget();
	test_table_full();
	test_flood();
	return check_summary("test_routes");
}
