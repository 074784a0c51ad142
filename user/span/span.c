/* Span formatting. Wall-clock times come from the monotonic BPF timestamps
 * plus one offset, so spans from the kernel line up with logs. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "util/log.h"
#include "identity/identity.h"
#include "span/span.h"
#include "span/tracectx.h"

static int64_t mono_to_wall;

void span__init_clock(void)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	mono_to_wall = ((int64_t)r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
}

uint64_t span__wall_ns(uint64_t mono_ns)
{
	return (uint64_t)((int64_t)mono_ns + mono_to_wall);
}

void span__addr(const struct sonde_tuple *t, int remote, char *out, size_t n)
{
	const uint8_t *a = remote ? t->daddr : t->saddr;
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (t->family == AF_INET)
		inet_ntop(AF_INET, a, out, n);
	else if (t->family == AF_INET6 && memcmp(a, v4mapped, 12) == 0)
		inet_ntop(AF_INET, a + 12, out, n);
	else if (t->family == AF_INET6)
		inet_ntop(AF_INET6, a, out, n);
	else
		snprintf(out, n, "?");
}

/* ,"trace_id":...: the trace context, and the request ids and error.type
 * when present (escaped: they are copied from the wire). */
static void span__ctx_json(const struct span *s, char *out, size_t n)
{
	static const uint8_t zero[8];
	char tid[33], sid[17], pid[17], esc[SPAN_TRACESTATE_MAX * 6];
	const struct { const char *key, *val; size_t max; } opt[] = {
		{ "tracestate", s->ctx.tracestate, sizeof(s->ctx.tracestate) },
		{ "request_id", s->request_id, sizeof(s->request_id) },
		{ "tracking_id", s->tracking_id, sizeof(s->tracking_id) },
		{ "correlation_id", s->correlation_id, sizeof(s->correlation_id) },
		{ "error_type", s->error_type, sizeof(s->error_type) },
	};
	size_t len;

	tracectx__hex(tid, s->ctx.trace_id, 16);
	tracectx__hex(sid, s->ctx.span_id, 8);
	if (memcmp(s->ctx.parent_span_id, zero, 8) == 0)
		pid[0] = '\0';
	else
		tracectx__hex(pid, s->ctx.parent_span_id, 8);
	len = (size_t)snprintf(out, n, ",\"trace_id\":\"%s\",\"span_id\":\"%s\",\"parent_span_id\":\"%s\","
			       "\"trace_flags\":\"%02x\"%s", tid, sid, pid, s->ctx.trace_flags,
			       s->ctx.remote_parent ? ",\"remote_parent\":true" : "");
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]) && len < n; i++) {
		if (!opt[i].val[0])
			continue;
		esc[log__json_escape(esc, sizeof(esc) - 1, opt[i].val, strnlen(opt[i].val, opt[i].max))] = 0;
		len += (size_t)snprintf(out + len, n - len, ",\"%s\":\"%s\"", opt[i].key, esc);
	}
	/* the process's identity, by its resource attribute names (k8s.pod.name, ...) */
	for (const char *a = s->ident ? s->ident->attrs : ""; *a && len < n;) {
		const char *sep = strchr(a, IDENT_ATTR_SEP), *end = strchr(a, IDENT_ATTR_END);

		if (!sep || !end || end < sep)
			break;
		esc[log__json_escape(esc, sizeof(esc) - 1, sep + 1, (size_t)(end - sep - 1))] = 0;
		len += (size_t)snprintf(out + len, n - len, ",\"%.*s\":\"%s\"", (int)(sep - a), a, esc);
		a = end + 1;
	}
	if (len > n)
		out[n - 1] = 0;
}

/* Database spans: the db.* attributes in place of the HTTP fields. */
static int print_db(FILE *f, const struct span *s, const char *start, uint64_t wall,
		    const char *comm, const char *svc, const char *local, const char *peer,
		    const char *ctx)
{
	char op[SPAN_DB_OP_MAX * 6], coll[SPAN_DB_COLLECTION_MAX * 6], query[SPAN_DB_QUERY_MAX * 6];
	char status[SPAN_DB_STATUS_MAX * 6];

	op[log__json_escape(op, sizeof(op) - 1, s->db_operation, strlen(s->db_operation))] = 0;
	coll[log__json_escape(coll, sizeof(coll) - 1, s->db_collection, strlen(s->db_collection))] = 0;
	query[log__json_escape(query, sizeof(query) - 1, s->db_query, strlen(s->db_query))] = 0;
	status[log__json_escape(status, sizeof(status) - 1, s->db_status, strlen(s->db_status))] = 0;
	return fprintf(f,
		       "{\"start\":\"%s\",\"start_unix_nano\":%llu,"
		       "\"duration_ms\":%.3f,\"pid\":%u,\"tid\":%u,\"comm\":\"%s\",\"service\":\"%s\","
		       "\"kind\":\"%s\",\"local_addr\":\"%s\",\"local_port\":%u,"
		       "\"peer_addr\":\"%s\",\"peer_port\":%u,\"protocol\":\"%s\","
		       "\"db_system\":\"%s\",\"db_operation\":\"%s\",\"db_collection\":\"%s\","
		       "\"db_query\":\"%s\",\"db_status\":\"%s\"%s%s%s}\n",
		       start, (unsigned long long)wall, (double)(s->end_ns - s->start_ns) / 1e6,
		       s->tgid, s->tid, comm, svc, s->kind == SPAN_SERVER ? "server" : "client",
		       local, s->tuple.sport, peer, s->tuple.dport, s->db_system, s->db_system, op,
		       coll, query, status, ctx, s->tls ? ",\"tls\":true" : "",
		       s->incomplete ? ",\"incomplete\":true" : "");
}

/* gRPC spans: rpc.* in place of the HTTP route. */
static int print_rpc(FILE *f, const struct span *s, const char *start, uint64_t wall,
		     const char *comm, const char *svc, const char *local, const char *peer,
		     const char *target, const char *ctx)
{
	char service[SPAN_RPC_SERVICE_MAX * 6], method[SPAN_RPC_METHOD_MAX * 6];

	service[log__json_escape(service, sizeof(service) - 1, s->rpc_service,
				 strlen(s->rpc_service))] = 0;
	method[log__json_escape(method, sizeof(method) - 1, s->rpc_method, strlen(s->rpc_method))] = 0;
	return fprintf(f,
		       "{\"start\":\"%s\",\"start_unix_nano\":%llu,"
		       "\"duration_ms\":%.3f,\"pid\":%u,\"tid\":%u,\"comm\":\"%s\",\"service\":\"%s\","
		       "\"kind\":\"%s\",\"local_addr\":\"%s\",\"local_port\":%u,"
		       "\"peer_addr\":\"%s\",\"peer_port\":%u,\"protocol\":\"HTTP/2\","
		       "\"rpc_system\":\"grpc\",\"rpc_service\":\"%s\",\"rpc_method\":\"%s\","
		       "\"target\":\"%s\",\"status\":%u,\"grpc_status\":%d%s%s%s}\n",
		       start, (unsigned long long)wall, (double)(s->end_ns - s->start_ns) / 1e6,
		       s->tgid, s->tid, comm, svc, s->kind == SPAN_SERVER ? "server" : "client",
		       local, s->tuple.sport, peer, s->tuple.dport, service, method, target, s->status,
		       s->rpc_status, s->incomplete ? ",\"incomplete\":true" : "",
		       s->tls ? ",\"scheme\":\"https\"" : "", ctx);
}

int span__print_json(FILE *f, const struct span *s)
{
	char ctx[4096];
	char local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	char ver[8];
	char comm[64], svc[256], method[64], target[SPAN_TARGET_MAX * 6], route[SPAN_TARGET_MAX * 6];
	uint64_t wall = span__wall_ns(s->start_ns);
	time_t sec = (time_t)(wall / 1000000000ULL);
	struct tm tm;

	gmtime_r(&sec, &tm);
	span__addr(&s->tuple, 0, local, sizeof(local));
	span__addr(&s->tuple, 1, peer, sizeof(peer));
	comm[log__json_escape(comm, sizeof(comm) - 1, s->comm, strnlen(s->comm, sizeof(s->comm)))] = 0;
	svc[log__json_escape(svc, sizeof(svc) - 1, s->service, strlen(s->service))] = 0;
	method[log__json_escape(method, sizeof(method) - 1, s->method, strlen(s->method))] = 0;
	target[log__json_escape(target, sizeof(target) - 1, s->target, strlen(s->target))] = 0;
	route[log__json_escape(route, sizeof(route) - 1, s->route, strlen(s->route))] = 0;
	span__ctx_json(s, ctx, sizeof(ctx));
	if (s->version_major == 2)
		snprintf(ver, sizeof(ver), "2");
	else
		snprintf(ver, sizeof(ver), "1.%u", s->version_minor);
	if (s->proto == SPAN_DB || s->proto == SPAN_RPC) {
		char start[96];

		snprintf(start, sizeof(start), "%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (unsigned long long)(wall % 1000000000ULL));
		if (s->proto == SPAN_RPC)
			return print_rpc(f, s, start, wall, comm, svc, local, peer, target, ctx);
		return print_db(f, s, start, wall, comm, svc, local, peer, ctx);
	}
	return fprintf(f,
		       "{\"start\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ\",\"start_unix_nano\":%llu,"
		       "\"duration_ms\":%.3f,\"pid\":%u,\"tid\":%u,\"comm\":\"%s\",\"service\":\"%s\","
		       "\"kind\":\"%s\",\"local_addr\":\"%s\",\"local_port\":%u,"
		       "\"peer_addr\":\"%s\",\"peer_port\":%u,\"protocol\":\"HTTP/%s\","
		       "\"method\":\"%s\",\"target\":\"%s\",\"route\":\"%s\",\"status\":%u%s%s%s}\n",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       (unsigned long long)(wall % 1000000000ULL), (unsigned long long)wall,
		       (double)(s->end_ns - s->start_ns) / 1e6, s->tgid, s->tid, comm, svc,
		       s->kind == SPAN_SERVER ? "server" : "client", local, s->tuple.sport, peer,
		       s->tuple.dport, ver, method, target, route, s->status,
		       s->incomplete ? ",\"incomplete\":true" : "",
		       s->tls ? ",\"scheme\":\"https\"" : "", ctx);
}
