/* Spans → RED metrics, OTLP and --print spans (see signals.h). The label
 * rules are semconv.c's; this file only maps span fields to label sets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlp.h"
#include "identity/identity.h"
#include "signals/routes.h"
#include "signals/signals.h"
#include "span/semconv.h"
#include "util/log.h"

/* Who the process is, on every RED series: service_namespace and
 * k8s_namespace_name always (bounded by the namespaces), the pod and
 * container (one series set per pod: cardinality) only when asked. */
#define ID_LABELS "service_namespace", "k8s_namespace_name", "k8s_pod_name", "container_id"
#define ID_POD_LABELS 2

/* OpenTelemetry's advised bucket bounds for HTTP request durations (s). */
static const double http_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
				      0.5,   0.75, 1,     2.5,  5,     7.5, 10 };

/* OpenTelemetry's advised bucket bounds for db.client.operation.duration (s). */
static const double db_bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10 };

struct num_label {
	unsigned int v;
	const char *str;	/* in buf; NULL until first used */
	char buf[8];
};

struct signals {
	struct metrics *m;
	struct signals_opts o;
	bool print_failed;
	int fam_server, fam_client, fam_db_client, fam_db_server, fam_spans, fam_collapsed;
	int fam_rpc_server, fam_rpc_client;
	/* route budgets of the two HTTP families, and of the two RPC families
	 * (keyed by the gRPC path "/service/method") */
	struct routes *routes_server, *routes_client, *routes_rpc_server, *routes_rpc_client;
	/* server_address of the last client span: consecutive spans mostly
	 * share the peer, and formatting an address costs a printf */
	struct sonde_tuple last_peer;
	char last_peer_str[64];
	/* the last status code, server port and peer port as label text:
	 * consecutive spans mostly share them, and a division per digit
	 * showed in profiles */
	struct num_label status, sport, dport;
	/* sonde_spans_total by kind (server, client), counted here and set
	 * at collect: a series lookup per span cost more than the count */
	uint64_t spans[2];
};

/* label values of sonde_spans_total, indexed as signals.spans */
static const char *const span_kinds[2][1] = { { "server" }, { "client" } };

int signals__new(struct signals **out, struct metrics *m, const struct signals_opts *o)
{
	/* the identity labels end each set; the last two only with --metrics-pod-labels */
	static const char *const server_labels[] = { "http_request_method", "http_response_status_code",
						     "http_route", "service_name", "server_port",
						     "error_type", ID_LABELS };
	static const char *const client_labels[] = { "http_request_method", "http_response_status_code",
						     "http_route", "service_name", "server_address",
						     "server_port", "error_type", ID_LABELS };
	static const char *const db_labels[] = { "db_system_name", "db_operation_name",
						 "db_collection_name", "error_type", "service_name",
						 ID_LABELS };
	static const char *const rpc_labels[] = { "rpc_system", "rpc_service", "rpc_method",
						  "rpc_grpc_status_code", "service_name", ID_LABELS };
	size_t drop = identity__pod_labels() ? 0 : ID_POD_LABELS;
	static const char *const l_kind[] = { "kind" };
	static const char *const l_family[] = { "metric" };
	struct signals *s = calloc(1, sizeof(*s));
	size_t cap = o->max_series ? o->max_series : METRICS_DEFAULT_MAX_SERIES;
	struct routes_opts ro = { .per_service = o->max_routes_per_service ?
						 o->max_routes_per_service : ROUTES_DEFAULT_PER_SERVICE,
				  .max_routes = cap };
	int err;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->o = *o;
#define N(x) x, sizeof(x) / sizeof(x[0])
#define NL(x) x, sizeof(x) / sizeof(x[0]) - drop
	s->fam_server = metrics__family(m, METRIC_HISTOGRAM, "http_server_request_duration_seconds",
		"Duration of HTTP server requests, observed in the server process.",
		NL(server_labels), N(http_bounds), cap);
	s->fam_client = metrics__family(m, METRIC_HISTOGRAM, "http_client_request_duration_seconds",
		"Duration of HTTP client requests, observed in the client process.",
		NL(client_labels), N(http_bounds), cap);
	s->fam_db_client = metrics__family(m, METRIC_HISTOGRAM, "db_client_operation_duration_seconds",
		"Duration of database operations, observed in the client process.",
		NL(db_labels), N(db_bounds), cap);
	s->fam_db_server = metrics__family(m, METRIC_HISTOGRAM, "db_server_operation_duration_seconds",
		"Duration of database operations, observed in the database server process.",
		NL(db_labels), N(db_bounds), cap);
	s->fam_rpc_server = metrics__family(m, METRIC_HISTOGRAM, "rpc_server_duration_seconds",
		"Duration of RPCs (gRPC), observed in the server process.",
		NL(rpc_labels), N(http_bounds), cap);
	s->fam_rpc_client = metrics__family(m, METRIC_HISTOGRAM, "rpc_client_duration_seconds",
		"Duration of RPCs (gRPC), observed in the client process.",
		NL(rpc_labels), N(http_bounds), cap);
	s->fam_spans = metrics__family(m, METRIC_COUNTER, "sonde_spans_total", "Spans finished.",
		N(l_kind), NULL, 0, 0);
	s->fam_collapsed = metrics__family(m, METRIC_COUNTER, "sonde_routes_collapsed_total",
		"HTTP spans whose route became /{overflow}: their service had spent its "
		"--max-routes-per-service budget on other routes.", N(l_family), NULL, 0, 0);
#undef N
#undef NL
	if (s->fam_server < 0 || s->fam_client < 0 || s->fam_db_client < 0 ||
	    s->fam_db_server < 0 || s->fam_spans < 0 || s->fam_collapsed < 0 ||
	    s->fam_rpc_server < 0 || s->fam_rpc_client < 0) {
		err = s->fam_server < 0 ? s->fam_server : -EINVAL;
		free(s);
		return err;
	}
	if ((err = routes__new(&s->routes_server, &ro)) ||
	    (err = routes__new(&s->routes_client, &ro)) ||
	    (err = routes__new(&s->routes_rpc_server, &ro)) ||
	    (err = routes__new(&s->routes_rpc_client, &ro))) {
		signals__free(s);
		return err;
	}
	*out = s;
	return 0;
}

void signals__collect(struct signals *s)
{
	for (int k = 0; k < 2; k++)
		if (s->spans[k])
			metrics__set(s->m, s->fam_spans, span_kinds[k], (double)s->spans[k]);
}

void signals__free(struct signals *s)
{
	if (!s)
		return;
	routes__free(s->routes_server);
	routes__free(s->routes_client);
	routes__free(s->routes_rpc_server);
	routes__free(s->routes_rpc_client);
	free(s);
}

/* Decimal without stdio: called twice per span on the hot path. */
static const char *utoa(unsigned int v, char *buf, size_t n)
{
	char *p = buf + n;

	*--p = 0;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v && p > buf);
	return p;
}

/* The text of v (at most 65535), remembered in l for the next span. */
static const char *num_label(struct num_label *l, unsigned int v)
{
	if (!l->str || l->v != v) {
		l->str = utoa(v, l->buf, sizeof(l->buf));
		l->v = v;
	}
	return l->str;
}

static const char *peer_label(struct signals *g, const struct sonde_tuple *t)
{
	if (!g->last_peer_str[0] || t->family != g->last_peer.family ||
	    memcmp(t->daddr, g->last_peer.daddr, 16) != 0) {
		span__addr(t, 1, g->last_peer_str, sizeof(g->last_peer_str));
		g->last_peer = *t;
	}
	return g->last_peer_str;
}

/* The values of ID_LABELS (extra values past a family's labels are not read). */
#define ID_VALUES(s) (s)->ident ? (s)->ident->service_namespace : "", \
		     (s)->ident ? (s)->ident->k8s.namespace : "", \
		     (s)->ident ? (s)->ident->k8s.pod_name : "", \
		     (s)->ident ? (s)->ident->container_id : ""

void signals__span(void *arg, const struct span *s)
{
	struct signals *g = arg;
	struct span collapsed;
	int k;
	double secs = (double)(s->end_ns - s->start_ns) / 1e9;
	/* no response (a failed client request): no status code */
	const char *status = s->status ? num_label(&g->status, s->status) : "";

	/* database uprobe spans do not pass through the agent's --comm filter */
	if (g->o.comm && strncmp(s->comm, g->o.comm, SONDE_COMM_LEN) != 0)
		return;
	k = s->kind == SPAN_SERVER ? 0 : 1;
	/* the series made with the kind's first span, as before: the page
	 * keeps listing series in the order they appeared */
	if (!g->spans[k]++)
		metrics__add(g->m, g->fam_spans, span_kinds[k], 0);
	/* The route budget rewrites the span itself, not only its label, so
	 * that OTLP's http.route names the same series; the copy is made only
	 * for spans over budget. */
	if (s->proto == SPAN_HTTP) {
		const char *route = routes__label(s->kind == SPAN_SERVER ? g->routes_server :
					g->routes_client, s->service, s->route);

		if (route != s->route) {
			static const char *const fam_server[] = { "http_server_request_duration_seconds" },
					       *const fam_client[] = { "http_client_request_duration_seconds" };

			metrics__add(g->m, g->fam_collapsed,
				     s->kind == SPAN_SERVER ? fam_server : fam_client, 1);
			collapsed = *s;
			memcpy(collapsed.route, route, strlen(route) + 1);
			s = &collapsed;
		}
	}
	if (s->proto == SPAN_RPC) {
		/* the same per-service budget as routes, on "/service/method" */
		const char *path = routes__label(s->kind == SPAN_SERVER ? g->routes_rpc_server :
					g->routes_rpc_client, s->service, s->route);
		char code_buf[8];

		if (path != s->route) {
			static const char *const fam_server[] = { "rpc_server_duration_seconds" },
					       *const fam_client[] = { "rpc_client_duration_seconds" };

			metrics__add(g->m, g->fam_collapsed,
				     s->kind == SPAN_SERVER ? fam_server : fam_client, 1);
			collapsed = *s;
			memcpy(collapsed.route, path, strlen(path) + 1);
			memcpy(collapsed.rpc_service, "{overflow}", sizeof("{overflow}"));
			memcpy(collapsed.rpc_method, "{overflow}", sizeof("{overflow}"));
			s = &collapsed;
		}
		const char *lv[] = { "grpc", s->rpc_service, s->rpc_method,
				     s->rpc_status >= 0 ? utoa((unsigned int)s->rpc_status, code_buf,
							       sizeof(code_buf)) : "",
				     s->service, ID_VALUES(s) };

		metrics__observe(g->m, s->kind == SPAN_SERVER ? g->fam_rpc_server : g->fam_rpc_client,
				 lv, secs);
	} else if (s->proto == SPAN_DB) {
		const char *lv[] = { s->db_system, s->db_operation, s->db_collection, s->error_type,
				     s->service, ID_VALUES(s) };

		metrics__observe(g->m, s->kind == SPAN_SERVER ? g->fam_db_server : g->fam_db_client,
				 lv, secs);
	} else if (s->kind == SPAN_SERVER) {
		const char *lv[] = { semconv__http_method_label(s->method), status, s->route,
				     s->service, num_label(&g->sport, s->tuple.sport),
				     s->error_type, ID_VALUES(s) };

		metrics__observe(g->m, g->fam_server, lv, secs);
	} else {
		const char *lv[] = { semconv__http_method_label(s->method), status, s->route,
				     s->service, peer_label(g, &s->tuple),
				     num_label(&g->dport, s->tuple.dport), s->error_type,
				     ID_VALUES(s) };

		metrics__observe(g->m, g->fam_client, lv, secs);
	}
	otlp__span(g->o.otlp, s);
	if (g->o.print_spans && !g->print_failed && span__print_json(stdout, s) < 0) {
		g->print_failed = true;
		log_warn("stdout closed; no longer printing spans", LS("error", strerror(errno)));
	}
}
