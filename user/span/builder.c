/* The one span builder (see builder.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "span/builder.h"
#include "span/redact.h"
#include "span/route.h"
#include "span/semconv.h"
#include "span/tracectx.h"
#include "identity/identity.h"
#include "util/proc.h"
#include "util/textlen.h"

struct span_builder {
	struct tracectx *tc;
	struct span_sink sink;
	struct redact redact;	/* applied to every HTTP target */
};

struct span_builder *span_builder__new(struct tracectx *tc, const struct span_sink *sink,
				       const struct redact *redact)
{
	struct span_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->tc = tc;
	b->sink = *sink;
	if (redact)
		b->redact = *redact;
	else
		redact__init(&b->redact, REDACT_REDACT, NULL);
	return b;
}

void span_builder__free(struct span_builder *b)
{
	free(b);
}

struct tracectx *span_builder__tracectx(struct span_builder *b)
{
	return b->tc;
}

void span_builder__request_ctx(struct span_builder *b, const struct span_origin *o,
			       const struct tracectx_hdr *h, struct span_ctx *out)
{
	static const struct sonde_tuple none;
	const struct sonde_tuple *t = o->tuple ? o->tuple : &none;

	if (o->server)
		tracectx__server_request(b->tc, o->tgid, o->tid, t, h, out);
	else
		tracectx__client_request(b->tc, o->tgid, o->tid, t, h, out);
}

/* struct span is ~2 KB, nearly all of it text buffers: clearing it whole
 * was a memset of 2 KB per span (two per traced request). begin() sets
 * every field instead, each string to "" (its bytes past the NUL are never
 * read). A field added to struct span must be set here: the size check is
 * the reminder. */
_Static_assert(sizeof(struct span) == 1992, "a new struct span field: clear it in begin()");

/* The fields every span has; every other one empty. */
static void begin(struct span *s, const struct span_origin *o, enum span_proto proto,
		  uint64_t start_ns, uint64_t end_ns)
{
	s->method[0] = s->target[0] = s->route[0] = '\0';
	s->status = 0;
	s->version_minor = s->version_major = s->incomplete = 0;
	memset(&s->ctx, 0, offsetof(struct span_ctx, tracestate));
	s->ctx.tracestate[0] = '\0';
	s->request_id[0] = s->tracking_id[0] = s->correlation_id[0] = '\0';
	s->error_type[0] = '\0';
	s->db_system = NULL;
	s->db_operation[0] = s->db_collection[0] = s->db_query[0] = s->db_status[0] = '\0';
	s->rpc_service[0] = s->rpc_method[0] = '\0';
	s->rpc_status = 0;
	s->kind = o->server ? SPAN_SERVER : SPAN_CLIENT;
	s->proto = (uint8_t)proto;
	s->start_ns = start_ns;
	s->end_ns = end_ns < start_ns ? start_ns : end_ns;
	s->tgid = o->tgid;
	s->tid = o->tid;
	memcpy(s->comm, o->comm, sizeof(s->comm));
	s->ident = identity__get(o->tgid, o->exe, o->comm);
	s->service = s->ident->service_name;
	if (o->tuple)
		s->tuple = *o->tuple;
	else
		memset(&s->tuple, 0, sizeof(s->tuple));
	s->tls = o->tls;
}

/* dst (n bytes, zeroed by begin) gets src cut to fit; NULL or "": nothing
 * to do. On the per-span path, so no printf. */
static void copy_str(char *dst, size_t n, const char *src)
{
	if (src && src[0])
		text_copy(dst, n, src);
}

void span_builder__http(struct span_builder *b, const struct span_origin *o, uint64_t start_ns,
			uint64_t end_ns, const struct span_http *h)
{
	struct span s;
	size_t n;

	begin(&s, o, SPAN_HTTP, start_ns, end_ns);
	copy_str(s.method, sizeof(s.method), h->method);
	/* Redacted first: the target and everything derived from it (route,
	 * url.*, span name) only ever hold the redacted form. */
	n = redact__target(&b->redact, h->target,
			   h->target ? strnlen(h->target, sizeof(s.target) - 1) : 0,
			   s.target, sizeof(s.target));
	route__normalize(s.target, n, s.route, sizeof(s.route));
	s.status = h->status;
	s.version_minor = h->version_minor;
	s.version_major = h->version_major;
	s.incomplete = h->incomplete;
	/* field by field: tracestate is rarely set, and 256 bytes to copy */
	memcpy(s.ctx.trace_id, h->ctx->trace_id, sizeof(s.ctx.trace_id));
	memcpy(s.ctx.span_id, h->ctx->span_id, sizeof(s.ctx.span_id));
	memcpy(s.ctx.parent_span_id, h->ctx->parent_span_id, sizeof(s.ctx.parent_span_id));
	s.ctx.trace_flags = h->ctx->trace_flags;
	s.ctx.remote_parent = h->ctx->remote_parent;
	copy_str(s.ctx.tracestate, sizeof(s.ctx.tracestate), h->ctx->tracestate);
	copy_str(s.request_id, sizeof(s.request_id), h->request_id);
	copy_str(s.tracking_id, sizeof(s.tracking_id), h->tracking_id);
	copy_str(s.correlation_id, sizeof(s.correlation_id), h->correlation_id);
	/* A transport failure says more than the status of a cut response. */
	if (h->fail)
		copy_str(s.error_type, sizeof(s.error_type), h->fail);
	else
		semconv__http_error_type(s.error_type, sizeof(s.error_type), o->server, s.status);
	if (o->server)
		tracectx__server_done(b->tc, s.tgid, s.tid, &s.ctx);
	b->sink.emit(b->sink.arg, &s);
}

/* The trace context a protocol decided when the request head was parsed. */
static void copy_ctx(struct span *s, const struct span_ctx *c)
{
	memcpy(s->ctx.trace_id, c->trace_id, sizeof(s->ctx.trace_id));
	memcpy(s->ctx.span_id, c->span_id, sizeof(s->ctx.span_id));
	memcpy(s->ctx.parent_span_id, c->parent_span_id, sizeof(s->ctx.parent_span_id));
	s->ctx.trace_flags = c->trace_flags;
	s->ctx.remote_parent = c->remote_parent;
	copy_str(s->ctx.tracestate, sizeof(s->ctx.tracestate), c->tracestate);
}

void span_builder__rpc(struct span_builder *b, const struct span_origin *o, uint64_t start_ns,
		       uint64_t end_ns, const struct span_rpc *r)
{
	struct span s;
	const char *path = r->path ? r->path : "";
	const char *slash;

	begin(&s, o, SPAN_RPC, start_ns, end_ns);
	copy_str(s.method, sizeof(s.method), "POST");
	copy_str(s.target, sizeof(s.target), path);
	/* "/pkg.Service/Method": anything else names no service or method */
	slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
	if (slash && slash > path + 1 && slash[1] && !strchr(slash + 1, '/')) {
		size_t n = (size_t)(slash - path - 1);

		if (n >= sizeof(s.rpc_service))
			n = sizeof(s.rpc_service) - 1;
		memcpy(s.rpc_service, path + 1, n);
		s.rpc_service[n] = '\0';
		copy_str(s.rpc_method, sizeof(s.rpc_method), slash + 1);
	}
	copy_str(s.route, sizeof(s.route), path);
	s.status = r->http_status;
	s.version_major = 2;
	s.incomplete = r->incomplete;
	s.rpc_status = (int16_t)(r->grpc_status < 0 || r->grpc_status > 999 ? -1 : r->grpc_status);
	copy_ctx(&s, r->ctx);
	if (r->fail)
		copy_str(s.error_type, sizeof(s.error_type), r->fail);
	else
		semconv__grpc_error_type(s.error_type, sizeof(s.error_type), o->server, s.rpc_status);
	if (o->server)
		tracectx__server_done(b->tc, s.tgid, s.tid, &s.ctx);
	b->sink.emit(b->sink.arg, &s);
}

void span_builder__db(struct span_builder *b, const struct span_origin *o, uint64_t start_ns,
		      uint64_t end_ns, const struct span_db *d)
{
	struct span s;

	begin(&s, o, SPAN_DB, start_ns, end_ns);
	s.incomplete = d->incomplete;
	s.db_system = d->system;
	/* A client span is a child of the server span its thread is serving
	 * (as for HTTP client requests; a database request carries no
	 * traceparent of its own). A server span has no incoming context. */
	if (o->server)
		tracectx__root(b->tc, &s.ctx);
	else
		span_builder__request_ctx(b, o, NULL, &s.ctx);
	if (!d->sql) {
		copy_str(s.db_operation, sizeof(s.db_operation), d->name);
		snprintf(s.db_query, sizeof(s.db_query), "%.*s", (int)d->text_len, d->text);
	} else {
		sql__normalize(d->text, d->text_len, d->dialect, s.db_query, sizeof(s.db_query));
		sql__operation(d->text, d->text_len, s.db_operation, sizeof(s.db_operation));
		sql__collection(d->text, d->text_len, s.db_collection, sizeof(s.db_collection));
		if (!s.db_operation[0] && d->prepared)	/* prepared before the agent started */
			snprintf(s.db_operation, sizeof(s.db_operation), "EXECUTE");
	}
	copy_str(s.db_status, sizeof(s.db_status), d->status);
	if (d->error)
		copy_str(s.error_type, sizeof(s.error_type), d->status && d->status[0] ? d->status : "_OTHER");
	else if (d->fail)
		copy_str(s.error_type, sizeof(s.error_type), d->fail);
	b->sink.emit(b->sink.arg, &s);
}
