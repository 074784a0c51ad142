/* The span export queue: the compact record a span waits in (its numbers
 * and only the bytes of its strings) and the byte ring the records sit in. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlp.h"
#include "export/otlp_rec.h"

/* ---- records ---- */

static size_t field_len(const char *s, size_t max)
{
	return s ? strnlen(s, max) : 0;
}

size_t otlp__rec_size(const struct span *s, const char *service, uint16_t lens[])
{
	size_t n = sizeof(struct otlp_rec);

	lens[R_SERVICE] = (uint16_t)field_len(service, PROC_NAME_MAX - 1);
	lens[R_COMM] = (uint16_t)field_len(s->comm, sizeof(s->comm));
	lens[R_METHOD] = (uint16_t)field_len(s->method, sizeof(s->method));
	lens[R_TARGET] = (uint16_t)field_len(s->target, sizeof(s->target));
	lens[R_ROUTE] = (uint16_t)field_len(s->route, sizeof(s->route));
	lens[R_TRACESTATE] = (uint16_t)field_len(s->ctx.tracestate, sizeof(s->ctx.tracestate));
	lens[R_REQID] = (uint16_t)field_len(s->request_id, sizeof(s->request_id));
	lens[R_TRACKID] = (uint16_t)field_len(s->tracking_id, sizeof(s->tracking_id));
	lens[R_CORRID] = (uint16_t)field_len(s->correlation_id, sizeof(s->correlation_id));
	lens[R_ERRTYPE] = (uint16_t)field_len(s->error_type, sizeof(s->error_type));
	lens[R_DBSYS] = (uint16_t)field_len(s->db_system, 64);
	lens[R_DBOP] = (uint16_t)field_len(s->db_operation, sizeof(s->db_operation));
	lens[R_DBCOLL] = (uint16_t)field_len(s->db_collection, sizeof(s->db_collection));
	lens[R_DBQUERY] = (uint16_t)field_len(s->db_query, sizeof(s->db_query));
	lens[R_DBSTATUS] = (uint16_t)field_len(s->db_status, sizeof(s->db_status));
	lens[R_RPCSVC] = (uint16_t)field_len(s->rpc_service, sizeof(s->rpc_service));
	lens[R_RPCMETH] = (uint16_t)field_len(s->rpc_method, sizeof(s->rpc_method));
	lens[R_IDENT] = (uint16_t)field_len(s->ident ? s->ident->attrs : NULL, IDENT_ATTRS_MAX - 1);
	for (int i = 0; i < R_NSTR; i++)
		n += lens[i];
	return (n + 7) & ~(size_t)7;
}

void otlp__rec_write(void *dst, const struct span *s, const struct span_ctx *ctx, const char *service,
		     const uint16_t lens[], size_t size)
{
	struct otlp_rec *r = dst;
	const char *src[R_NSTR] = {
		[R_SERVICE] = service, [R_COMM] = s->comm, [R_METHOD] = s->method,
		[R_TARGET] = s->target, [R_ROUTE] = s->route, [R_TRACESTATE] = ctx->tracestate,
		[R_REQID] = s->request_id, [R_TRACKID] = s->tracking_id,
		[R_CORRID] = s->correlation_id, [R_ERRTYPE] = s->error_type,
		[R_DBSYS] = s->db_system, [R_DBOP] = s->db_operation,
		[R_DBCOLL] = s->db_collection, [R_DBQUERY] = s->db_query,
		[R_DBSTATUS] = s->db_status, [R_RPCSVC] = s->rpc_service,
		[R_RPCMETH] = s->rpc_method, [R_IDENT] = s->ident ? s->ident->attrs : NULL,
	};
	char *p = r->str;

	r->size = (uint32_t)size;
	r->tgid = s->tgid;
	r->start_ns = s->start_ns;
	r->end_ns = s->end_ns;
	r->tuple = s->tuple;
	memcpy(r->trace_id, ctx->trace_id, 16);
	memcpy(r->span_id, ctx->span_id, 8);
	memcpy(r->parent_span_id, ctx->parent_span_id, 8);
	r->status = s->status;
	r->kind = (uint8_t)s->kind;
	r->proto = s->proto;
	r->tls = s->tls;
	r->version_minor = s->version_minor;
	r->version_major = s->version_major;
	r->pad = 0;
	r->rpc_status = s->rpc_status;
	r->trace_flags = ctx->trace_flags;
	r->remote_parent = ctx->remote_parent;
	for (int i = 0; i < R_NSTR; i++) {
		r->len[i] = lens[i];
		if (lens[i])
			memcpy(p, src[i], lens[i]);
		p += lens[i];
	}
	/* the padding too: the ring is sent nowhere, but stays deterministic */
	memset(p, 0, (size_t)((char *)dst + size - p));
}

size_t otlp__rec_len(const void *rec)
{
	return ((const struct otlp_rec *)rec)->size;
}

/* ---- the queue ---- */

int otlp__ring_init(struct otlp_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	cap = (cap + 7) & ~(size_t)7;
	r->cap = cap < 2 * OTLP_REC_MAX ? 2 * OTLP_REC_MAX : cap;
	/* pages are touched as the ring first goes round, not here */
	r->buf = malloc(r->cap);
	return r->buf ? 0 : -ENOMEM;
}

void *otlp__ring_reserve(struct otlp_ring *r, size_t sz)
{
	uint8_t *p;

	if (!r->used)
		r->head = r->tail = 0;
	if (r->tail >= r->head && !(r->used && r->tail == r->head)) {
		/* free: [tail, cap) and [0, head) */
		if (r->cap - r->tail < sz) {
			if (r->head < sz)
				return NULL;
			/* a zero size sends the reader back to the start */
			if (r->tail < r->cap)
				*(uint32_t *)(r->buf + r->tail) = 0;
			r->used += r->cap - r->tail;
			r->tail = 0;
		}
	} else if (r->head - r->tail < sz) {
		return NULL;
	}
	p = r->buf + r->tail;
	r->tail += sz;
	r->used += sz;
	return p;
}

size_t otlp__ring_take(const struct otlp_ring *r, const void **recs, size_t n, size_t *head)
{
	size_t pos = r->head, taken = 0;

	for (size_t i = 0; i < n; i++) {
		size_t sz;

		if (pos == r->cap) {
			pos = 0;
		} else if (*(const uint32_t *)(r->buf + pos) == 0) {
			taken += r->cap - pos;
			pos = 0;
		}
		recs[i] = r->buf + pos;
		sz = otlp__rec_len(r->buf + pos);
		pos += sz;
		taken += sz;
	}
	*head = pos;
	return taken;
}

void otlp__ring_release(struct otlp_ring *r, size_t head, size_t taken)
{
	r->head = head;
	r->used -= taken;
}
