/* HTTP/1.x behind proto_ops: inference, and requests paired with responses
 * in order (pipelining included) into spans. Timing: a server span runs
 * from the read that returned the request's first bytes to the write that
 * finished the response; a client span from the write(2) entry of the
 * request to the read that finished the response. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1/http1.h"
#include "proto/http2/http2.h"
#include "proto/proto.h"
#include "span/builder.h"
#include "span/semconv.h"
#include "span/tracectx.h"
#include "util/textlen.h"

/* Requests awaiting a response: most connections have one at a time, so
 * the queue is allocated with room for PENDING_FIRST when a request comes
 * and doubles only for a connection that pipelines deeper, up to
 * PENDING_MAX. Requests beyond that are counted lost at their place in the
 * order, so the responses that follow still pair exactly.
 *
 * Memory: an idle keep-alive connection holds only struct http_state (no
 * parser, no queue). The two parsers (872 bytes each) live on the heap
 * only while a message in their direction is partial, the queue only while
 * a request waits for its response (http_settle). */
#define PENDING_FIRST 2
#define PENDING_MAX 128

_Static_assert(HTTP1_METHOD_MAX == SPAN_METHOD_MAX, "span holds a whole method");
_Static_assert(HTTP1_TARGET_MAX == SPAN_TARGET_MAX, "span holds a whole target");

struct pending {
	uint64_t start_ns;
	uint32_t tid;
	char method[HTTP1_METHOD_MAX];
	char target[HTTP1_TARGET_MAX];
	/* trace context, decided when the head was parsed (tracestate and the
	 * request ids, rarely present, live in http_state.extra) */
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	uint8_t trace_flags;
	uint8_t remote_parent;
	uint8_t has_extra;		/* extra[same index] holds this request's values */
	/* Requests lost just before this one, whose responses come first:
	 * a known number (the queue was full; counted unanswered when lost),
	 * and/or an unknown number (a capture gap hid them). */
	uint8_t unknown_before;
	uint16_t lost_before;
	uint8_t h2c;			/* asked for an h2c upgrade */
	uint32_t h2_table_size;		/* its HTTP2-Settings' header table size */
};

/* Values few requests carry, kept out of struct pending so that a
 * connection pays for them only once one shows up. */
struct pending_extra {
	char tracestate[SPAN_TRACESTATE_MAX];
	char request_id[SPAN_HDR_ID_MAX];
	char tracking_id[SPAN_HDR_ID_MAX];
	char correlation_id[SPAN_HDR_ID_MAX];
};

struct http_state {
	/* NULL: at rest (http1__at_rest), as http1__init would leave it */
	struct http1_parser *req, *resp;
	struct pending *q;		/* ring of qcap on the heap; NULL when qcap is 0 */
	struct pending_extra *extra;	/* qcap of them, or NULL until needed */
	uint8_t qhead, qlen, qcap;	/* qcap: 0 or a power of two <= PENDING_MAX */
	/* Lost after the newest queued request (as lost_before, for the next). */
	bool lost_unknown;
	uint16_t lost_tail;
	/* Span start of the request whose first bytes have been fed (server:
	 * exit of the read that returned them; client: entry of the write).
	 * Taken when a chunk begins between two requests, or when a request
	 * completes inside a chunk (the next one may begin in that chunk), so
	 * a head split over several syscalls starts at the first of them. */
	uint64_t req_start_ns;
	uint64_t last_resp_ns;		/* last chunk in the response direction */
	bool resp_unmatched;		/* current response has no request in q */
	bool resp_is_head;
	bool resp_open;			/* head delivered, body not finished */
	uint16_t resp_status;
	uint8_t resp_minor;
	bool resp_head;			/* on_head delivered (matched or not), on_complete not yet */
	bool upgraded;			/* 101 or CONNECT tunnel: no longer HTTP */
	/* 101 to h2c: HTTP/2's state for the connection, awaiting handoff
	 * (the request it answered became its stream 1) */
	void *h2c;
	size_t h2c_off;			/* where HTTP/2 begins in the chunk just fed */
};

_Static_assert(PENDING_MAX <= 128 && (PENDING_FIRST & (PENDING_FIRST - 1)) == 0,
	       "qhead/qlen/qcap are uint8_t; qcap doubles from PENDING_FIRST");

/* What the parser callbacks need to know about the chunk being fed. */
struct feed_ctx {
	struct http_state *h;
	const struct proto_conn *c;
	const struct sonde_data_event *ev;	/* NULL when completing at close */
	/* The connection failed under the requests still open (ev NULL):
	 * their spans end at end_ns with this error.type. */
	const char *fail;
	uint64_t end_ns;
};

static struct proto_stats *stats(const struct feed_ctx *x)
{
	return &x->c->env->stats[PROTO_HTTP1];
}

/* Parsers at rest and first-size queues (and their extras) given back by idle connections,
 * kept in the table's cache slot (proto_env.cache) for the next message of
 * any of its connections: taking one costs no malloc and no clearing (a
 * parser at rest of the same stream is what a keep-alive connection's own
 * parser is between two messages). Bounded, so idle connections still
 * hold nothing. */
#define SPARE_MAX 32
struct spares {
	struct http1_parser *p[2][SPARE_MAX];	/* by stream - 1 */
	struct pending *q[SPARE_MAX];		/* PENDING_FIRST entries each */
	struct pending_extra *e[SPARE_MAX];	/* PENDING_FIRST entries each */
	unsigned int np[2], nq, ne;
};

/* The table's spares (NULL: none, e.g. out of memory; then plain malloc). */
static struct spares *spares(const struct proto_conn *c)
{
	void **slot;

	if (!c || !c->env->cache)
		return NULL;
	slot = &c->env->cache[PROTO_HTTP1];
	if (!*slot)
		*slot = calloc(1, sizeof(struct spares));
	return *slot;
}

static void http1_cache_free(void *cache)
{
	struct spares *sp = cache;

	for (int k = 0; k < 2; k++)
		while (sp->np[k])
			free(sp->p[k][--sp->np[k]]);
	while (sp->nq)
		free(sp->q[--sp->nq]);
	while (sp->ne)
		free(sp->e[--sp->ne]);
	free(sp);
}

/* A queue of PENDING_FIRST entries. */
static struct pending *queue_alloc(struct spares *sp)
{
	return sp && sp->nq ? sp->q[--sp->nq] : malloc(PENDING_FIRST * sizeof(struct pending));
}

static void queue_release_array(struct spares *sp, struct pending *q)
{
	if (sp && sp->nq < SPARE_MAX)
		sp->q[sp->nq++] = q;
	else
		free(q);
}

/* The extras of a queue of cap entries (a request with an X-Request-ID or
 * a tracestate): first-size ones from the spares, like the queue (a
 * calloc and a free per such request showed in profiles). Not cleared:
 * an entry is read only where its pending has has_extra, after being
 * written whole (queue_grow copies the others as they are). */
static struct pending_extra *extra_alloc(struct spares *sp, unsigned int cap)
{
	if (cap == PENDING_FIRST && sp && sp->ne)
		return sp->e[--sp->ne];
	return malloc(cap * sizeof(struct pending_extra));
}

static void extra_release(struct spares *sp, struct pending_extra *e, unsigned int cap)
{
	if (e && cap == PENDING_FIRST && sp && sp->ne < SPARE_MAX)
		sp->e[sp->ne++] = e;
	else
		free(e);
}

/* Doubles the queue, keeping its order (oldest first at index 0).
 * Returns 0, or -1 when it is at PENDING_MAX or memory ran out. */
static int queue_grow(struct http_state *h, const struct proto_conn *c)
{
	unsigned int cap = h->qcap ? h->qcap * 2u : PENDING_FIRST, i;
	struct pending *q;
	struct pending_extra *e = NULL;

	if (cap > PENDING_MAX)
		return -1;
	q = h->qcap ? malloc(cap * sizeof(*q)) : queue_alloc(spares(c));
	if (h->extra)
		e = extra_alloc(spares(c), cap);
	if (!q || (h->extra && !e)) {
		free(q);
		free(e);
		return -1;
	}
	for (i = 0; i < h->qlen; i++) {
		unsigned int from = (h->qhead + i) & (h->qcap - 1u);

		q[i] = h->q[from];
		if (e)
			e[i] = h->extra[from];
	}
	if (h->qcap == PENDING_FIRST)
		queue_release_array(spares(c), h->q);
	else
		free(h->q);
	if (e) {
		extra_release(spares(c), h->extra, h->qcap);
		h->extra = e;
	}
	h->q = q;
	h->qcap = (uint8_t)cap;
	h->qhead = 0;
	return 0;
}

static void queue_pop(struct http_state *h)
{
	h->qhead = (uint8_t)((h->qhead + 1) & (h->qcap - 1));
	h->qlen--;
}

static int req_on_head(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->h;
	struct span_origin o = proto_conn__origin(x->c, x->ev->tid);
	struct tracectx_hdr th = {
		.traceparent = m->traceparent, .tracestate = m->tracestate,
		.traceparent_lines = m->traceparent_lines,
		.traceparent_cut = (m->field_cut >> HTTP1_F_TRACEPARENT) & 1,
		.tracestate_cut = (m->field_cut >> HTTP1_F_TRACESTATE) & 1,
	};
	struct span_ctx ctx;
	struct pending *p;

	if (h->qlen == h->qcap && queue_grow(h, x->c)) {
		/* Pipelined deeper than we follow (or out of memory): this
		 * request is lost, at its place in the order. */
		if (h->lost_tail < UINT16_MAX)
			h->lost_tail++;
		stats(x)->unanswered++;
		return 0;
	}
	p = &h->q[(h->qhead + h->qlen) & (h->qcap - 1)];
	h->qlen++;
	p->lost_before = h->lost_tail;
	p->unknown_before = h->lost_unknown;
	h->lost_tail = 0;
	h->lost_unknown = false;
	/* A server may block in read() long before the request arrives, so its
	 * span starts when the read returns; a client's starts at write entry. */
	p->start_ns = h->req_start_ns;
	p->tid = x->ev->tid;
	p->h2c = m->upgrade_h2c;
	p->h2_table_size = m->h2_table_size;
	memcpy(p->method, m->method, sizeof(p->method));
	memcpy(p->target, m->target, sizeof(p->target));
	/* Now, not at the response: the kernel record for this request and the
	 * thread's server context are only current while the head is parsed. */
	span_builder__request_ctx(x->c->env->spans, &o, &th, &ctx);
	memcpy(p->trace_id, ctx.trace_id, sizeof(p->trace_id));
	memcpy(p->span_id, ctx.span_id, sizeof(p->span_id));
	memcpy(p->parent_span_id, ctx.parent_span_id, sizeof(p->parent_span_id));
	p->trace_flags = ctx.trace_flags;
	p->remote_parent = ctx.remote_parent;
	p->has_extra = 0;
	if (ctx.tracestate[0] || m->request_id[0] || m->tracking_id[0] || m->correlation_id[0]) {
		struct pending_extra *e;

		if (!h->extra)
			h->extra = extra_alloc(spares(x->c), h->qcap);
		if (!h->extra)
			return 0;	/* out of memory: the span goes without them */
		e = &h->extra[p - h->q];
		text_copy(e->tracestate, sizeof(e->tracestate), ctx.tracestate);
		text_copy(e->request_id, sizeof(e->request_id), m->request_id);
		text_copy(e->tracking_id, sizeof(e->tracking_id), m->tracking_id);
		text_copy(e->correlation_id, sizeof(e->correlation_id), m->correlation_id);
		p->has_extra = 1;
	}
	return 0;
}

/* Start time of a request whose first bytes are in this chunk. */
static uint64_t chunk_start_ns(const struct proto_conn *c, const struct sonde_data_event *ev)
{
	return proto_conn__is_server(c) ? ev->hdr.ktime : ev->enter_ns;
}

static void req_on_complete(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;

	(void)m;
	/* A pipelined request that follows in this same chunk starts here. */
	x->h->req_start_ns = chunk_start_ns(x->c, x->ev);
}

static void on_error(void *arg, enum http1_error err)
{
	struct feed_ctx *x = arg;

	(void)err;
	stats(x)->parse_errors++;
}

/* Which request a response that begins now answers: true for the oldest
 * queued one. Otherwise it answers a request that was lost (known ones
 * were counted unanswered when lost; one hidden by a capture gap, or none
 * at all, counts the response unmatched). Responses come in request order,
 * and none can answer a request that started after it: so while requests
 * of unknown number were lost before the oldest queued one, a response
 * seen before that request started answers one of the lost ones. */
static bool resp_take(struct feed_ctx *x, uint64_t now)
{
	struct http_state *h = x->h;
	struct pending *p;

	if (!h->qlen) {
		if (h->lost_tail) {
			h->lost_tail--;
			return false;
		}
		stats(x)->unmatched++;
		return false;
	}
	p = &h->q[h->qhead];
	if (p->lost_before) {
		p->lost_before--;
		return false;
	}
	if (p->unknown_before) {
		if (now < p->start_ns) {
			stats(x)->unmatched++;
			return false;
		}
		p->unknown_before = 0;
	}
	return true;
}

/* The trace context a request's span carries, from its queue entry (and
 * its rarely present extra values). */
static void pending_ctx(const struct pending *p, const struct pending_extra *e,
			struct span_ctx *ctx)
{
	memcpy(ctx->trace_id, p->trace_id, sizeof(ctx->trace_id));
	memcpy(ctx->span_id, p->span_id, sizeof(ctx->span_id));
	memcpy(ctx->parent_span_id, p->parent_span_id, sizeof(ctx->parent_span_id));
	ctx->trace_flags = p->trace_flags;
	ctx->remote_parent = p->remote_parent;
	ctx->tracestate[0] = '\0';
	if (e)
		memcpy(ctx->tracestate, e->tracestate, sizeof(ctx->tracestate));
}

/* 101 Switching Protocols to h2c (RFC 7540 §3.2): HTTP/2 takes the
 * connection (http1_handoff), the request the 101 answers (if it was
 * followed) becoming its stream 1, whose response comes in HTTP/2 frames. */
static void h2c_upgrade(struct feed_ctx *x, bool matched)
{
	struct http_state *h = x->h;
	struct pending *p = matched ? &h->q[h->qhead] : NULL;
	struct span_ctx ctx;
	struct h2c_upgrade u = {
		.has_request = p != NULL, .table_size = UINT32_MAX,
		.max_streams = x->c->env->limits.h2_max_streams,
	};

	if (p) {
		const struct pending_extra *e = p->has_extra && h->extra ? &h->extra[p - h->q] : NULL;

		pending_ctx(p, e, &ctx);
		u.start_ns = p->start_ns;
		u.tid = p->tid;
		u.method = p->method;
		u.path = p->target;
		u.ctx = &ctx;
		u.table_size = p->h2_table_size;
		queue_pop(h);
	}
	h->h2c = http2__open_upgraded(&u);
	h->h2c_off = SIZE_MAX;	/* known once the parser returns */
}

static int resp_on_head(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->h;
	const char *method;

	h->resp_head = true;
	/* After 101 the bytes are another protocol in both directions: stop
	 * parsing the connection (the request side would count an error). */
	if (m->status == 101)
		h->upgraded = true;
	h->resp_unmatched = !resp_take(x, x->ev ? x->ev->hdr.ktime : x->end_ns);
	/* to h2c, from a request that asked for it (or one not followed); a
	 * head cut by a capture gap lost the frames after it too */
	if (m->status == 101 && m->upgrade_h2c && !m->head_incomplete && x->ev && !h->h2c &&
	    (h->resp_unmatched || h->q[h->qhead].h2c)) {
		h2c_upgrade(x, !h->resp_unmatched);
		h->resp_unmatched = true;	/* no HTTP/1 span: stream 1's comes */
		h->resp_is_head = false;
		return 0;
	}
	if (h->resp_unmatched) {
		h->resp_is_head = false;
		return 0;
	}
	/* A 2xx answer to CONNECT opens a tunnel (http1.h contract): the span
	 * ends with this head, rather than the tunnel being taken for a
	 * close-delimited body that only ends when the connection closes. */
	/* (the first letter first: a strcmp call per response showed in
	 * profiles) */
	method = h->q[h->qhead].method;
	if (method[0] == 'C' && strcmp(method, "CONNECT") == 0 && m->status >= 200 &&
	    m->status < 300) {
		h->upgraded = true;
		h->resp_is_head = false;
		return HTTP1_HEAD_TUNNEL;
	}
	h->resp_is_head = method[0] == 'H' && strcmp(method, "HEAD") == 0;
	h->resp_open = true;
	h->resp_status = m->status;
	h->resp_minor = m->version_minor;
	return h->resp_is_head;
}

/* Reports the oldest open request of the connection as a span, answered
 * by status (0: no response came), and takes it off the queue. */
static void emit_span(struct feed_ctx *x, uint16_t status, uint8_t version_minor,
		      uint8_t incomplete)
{
	struct http_state *h = x->h;
	struct pending *p = &h->q[h->qhead];
	const struct pending_extra *e = p->has_extra && h->extra ? &h->extra[p - h->q] : NULL;
	struct span_origin o = proto_conn__origin(x->c, p->tid);
	struct span_ctx ctx;	/* filled below; not zeroed: 300 bytes per span */
	struct span_http s = {
		.method = p->method, .target = p->target, .status = status,
		.version_minor = version_minor, .incomplete = incomplete, .fail = x->fail,
		.ctx = &ctx, .request_id = e ? e->request_id : NULL,
		.tracking_id = e ? e->tracking_id : NULL,
		.correlation_id = e ? e->correlation_id : NULL,
	};
	uint64_t end_ns = x->ev ? x->ev->hdr.ktime : x->fail ? x->end_ns : h->last_resp_ns;

	queue_pop(h);
	pending_ctx(p, e, &ctx);
	stats(x)->spans++;
	if (x->fail)
		stats(x)->failed++;
	span_builder__http(x->c->env->spans, &o, p->start_ns, end_ns, &s);
}

static void resp_on_complete(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->h;

	h->resp_open = false;
	h->resp_head = false;
	if (h->resp_unmatched || h->qlen == 0) {
		h->resp_unmatched = false;
		return;
	}
	emit_span(x, m->status, m->version_minor, m->head_incomplete);
}

/* A capture gap hid an unknown number of requests: the responses to them
 * will come before the response to the next request seen (resp_take). */
static void req_on_lost(void *arg)
{
	struct feed_ctx *x = arg;

	x->h->lost_unknown = true;
}

static const struct http1_callbacks req_cb = {
	.on_head = req_on_head,
	.on_complete = req_on_complete,
	.on_error = on_error,
	.on_lost = req_on_lost,
};

static void resp_on_error(void *arg, enum http1_error err)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->h;

	on_error(arg, err);
	/* A response lost before its head was delivered still answered the
	 * oldest request: drop that request, or every later response on the
	 * connection would be paired with the request before its own. (With
	 * the head delivered, the parser completes it and a span results.) */
	if (!h->resp_head && resp_take(x, x->ev ? x->ev->hdr.ktime : x->end_ns)) {
		queue_pop(h);
		stats(x)->unanswered++;
	}
}

/* A capture gap hid an unknown number of responses: which of the waiting
 * requests they answered cannot be known, so every one is counted
 * unanswered, and the responses still to come for them are told from
 * those of later requests by time (resp_take). */
static void resp_on_lost(void *arg)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->h;

	stats(x)->unanswered += h->qlen;
	h->qlen = 0;
	h->qhead = 0;
	h->lost_tail = 0;
	h->lost_unknown = true;
}

static const struct http1_callbacks resp_cb = {
	.on_head = resp_on_head,
	.on_complete = resp_on_complete,
	.on_error = resp_on_error,
	.on_lost = resp_on_lost,
};

/* HTTP/1.x describes itself: a request line or a status line, in the
 * direction the connection's role expects; an unknown role (a socket older
 * than the agent) is taken from the direction of the first one seen. */
static enum proto_verdict http1_infer(const struct sonde_data_event *ev,
				      const struct sonde_tuple *tuple, enum proto_pass pass,
				      uint8_t *role)
{
	const uint8_t *d = ev->data;
	size_t n = ev->cap_len;
	bool req, resp;

	(void)tuple;	/* no port of its own */
	if (pass != PROTO_PASS_LAST)
		return PROTO_NO;
	req = http1__looks_like_request(d, n);
	resp = !req && http1__looks_like_response(d, n);
	if (*role == SONDE_ROLE_UNKNOWN) {
		if (!req && !resp)
			return PROTO_MAYBE;
		*role = (req == (ev->dir == SONDE_DIR_INGRESS)) ? SONDE_ROLE_SERVER
								: SONDE_ROLE_CLIENT;
	}
	if (proto__is_request_dir(*role, ev->dir) ? req : resp)
		return PROTO_YES;
	/* Seen from its first byte (accept/connect) and not HTTP: give up now,
	 * except for a response-side chunk of a server socket, which cannot
	 * come first in HTTP. */
	return ev->role != SONDE_ROLE_UNKNOWN ? PROTO_NO : PROTO_MAYBE;
}

static void *http1_open(enum proto_pass pass)
{
	struct http_state *h = calloc(1, sizeof(*h));

	(void)pass;
	if (!h)
		return NULL;
	return h;
}

/* The parser of one direction, made fresh when it was at rest (NULL: out
 * of memory; the bytes are then not parsed). */
static struct http1_parser *parser(const struct proto_conn *c, struct http1_parser **pp,
				   enum http1_stream s)
{
	unsigned int k = (unsigned int)s - 1;
	struct spares *sp;

	if (*pp)
		return *pp;
	if ((sp = spares(c)) && sp->np[k])
		return *pp = sp->p[k][--sp->np[k]];
	if ((*pp = malloc(sizeof(**pp))))
		http1__init(*pp, s);
	return *pp;
}

/* Drops a direction's parser: kept as a spare when at rest (c NULL: freed). */
static void parser_release(const struct proto_conn *c, struct http1_parser **pp)
{
	struct http1_parser *p = *pp;
	struct spares *sp;
	unsigned int k;

	*pp = NULL;
	if (!p)
		return;
	k = (unsigned int)p->stream - 1;
	if (k < 2 && http1__at_rest(p) && (sp = spares(c)) && sp->np[k] < SPARE_MAX)
		sp->p[k][sp->np[k]++] = p;
	else
		free(p);
}

static void queue_release(const struct proto_conn *c, struct http_state *h)
{
	if (h->qcap == PENDING_FIRST)
		queue_release_array(spares(c), h->q);
	else
		free(h->q);
	extra_release(spares(c), h->extra, h->qcap);
	h->q = NULL;
	h->extra = NULL;
	h->qcap = 0;
	h->qhead = 0;
}

/* Gives back what an idle connection does not need: a parser at rest, the
 * queue once no request waits. */
static void http_settle(const struct proto_conn *c, struct http_state *h)
{
	if (h->req && http1__at_rest(h->req))
		parser_release(c, &h->req);
	if (h->resp && http1__at_rest(h->resp))
		parser_release(c, &h->resp);
	if (!h->qlen && h->qcap)
		queue_release(c, h);
}

static void http1_free(void *st, struct proto_stats *st_all)
{
	struct http_state *h = st;

	if (!h)
		return;
	if (st_all)
		st_all[PROTO_HTTP1].unanswered += h->qlen;
	if (h->qcap)
		queue_release(NULL, h);
	parser_release(NULL, &h->req);
	parser_release(NULL, &h->resp);
	if (h->h2c)	/* never handed off */
		proto_table[PROTO_HTTP2]->free(h->h2c, st_all);
	free(h);
}

static void http1_feed(void *st, const struct proto_conn *c, const struct sonde_data_event *ev)
{
	struct http_state *h = st;
	struct feed_ctx x = { .h = h, .c = c, .ev = ev };

	if (h->upgraded)	/* 101 / CONNECT: the rest is not HTTP */
		return;
	if (proto__is_request_dir(c->role, ev->dir)) {
		/* Timing rule: a request starts with the syscall that carried
		 * its first bytes, not the one that completed its head. */
		if (!h->req || http1__between_messages(h->req))
			h->req_start_ns = chunk_start_ns(c, ev);
		if (parser(c, &h->req, HTTP1_REQUESTS))
			http1__feed(h->req, ev->data, ev->cap_len, ev->len, &req_cb, &x);
	} else {
		h->last_resp_ns = ev->hdr.ktime;
		if (parser(c, &h->resp, HTTP1_RESPONSES))
			http1__feed(h->resp, ev->data, ev->cap_len, ev->len, &resp_cb, &x);
		if (h->h2c && h->h2c_off == SIZE_MAX)
			h->h2c_off = h->resp && http1__upgraded(h->resp) ? h->resp->upgraded_at
									   : ev->cap_len;
	}
	http_settle(c, h);
}

/* A 101 to h2c in the chunk just fed: HTTP/2 goes on from where it ended. */
static int http1_handoff(void *st, void **next, size_t *off)
{
	struct http_state *h = st;

	if (!h->h2c || h->h2c_off == SIZE_MAX)
		return -1;
	*next = h->h2c;
	*off = h->h2c_off;
	h->h2c = NULL;
	return PROTO_HTTP2;
}

/* Client requests whose response did not (fully) come before the
 * connection failed: the response being read, if any, is reported with its
 * status, and every request still waiting as a span with no status; all
 * with error.type x->fail. Leaves the connection between messages. */
static void fail_open_requests(struct feed_ctx *x)
{
	struct http_state *h = x->h;

	if (h->resp_open) {
		h->resp_open = false;
		h->resp_head = false;
		if (!h->resp_unmatched && h->qlen)
			emit_span(x, h->resp_status, h->resp_minor, 1);
	}
	while (h->qlen)
		emit_span(x, 0, 1, 0);
	h->lost_tail = 0;
	h->lost_unknown = false;
	h->resp_unmatched = false;
	/* at rest: as http1__init leaves them (one that is not is freed) */
	parser_release(x->c, &h->req);
	parser_release(x->c, &h->resp);
	http_settle(x->c, h);
}

/* The connection is over: a response that runs to the end of the
 * connection completes now, and one whose head was read but not all its
 * body (a client that stopped reading: wget exits on a 404 head) is still
 * reported, status known and marked incomplete. A client whose own process
 * closed the connection, or exited, before a response came gave up on the
 * request (its timeout, or a cancellation). The peer hanging up was
 * reported before this (http1_fail). */
static void http1_close(void *st, const struct proto_conn *c, uint64_t end_ns)
{
	struct http_state *h = st;
	struct feed_ctx x = { .h = h, .c = c, .ev = NULL, .end_ns = end_ns };

	if (h->resp)
		http1__close(h->resp, &resp_cb, &x);
	if (h->resp_open) {
		struct http1_message m = { .status = h->resp_status,
					   .version_minor = h->resp_minor,
					   .head_incomplete = 1 };

		resp_on_complete(&x, &m);
	}
	if (!proto_conn__is_server(c) && !h->upgraded && h->qlen) {
		x.fail = SPAN_ERR_CANCELLED;
		fail_open_requests(&x);
	}
}

static void http1_fail(void *st, const struct proto_conn *c, int32_t err, uint64_t end_ns)
{
	struct http_state *h = st;
	struct feed_ctx x = { .h = h, .c = c, .ev = NULL, .end_ns = end_ns };

	if (proto_conn__is_server(c) || h->upgraded)
		return;
	if (err == 0) {
		/* A body delimited by the end of the connection ends well. */
		if (h->resp)
			http1__close(h->resp, &resp_cb, &x);
		http_settle(c, h);
		if (!h->resp_open && h->qlen == 0)
			return;
	}
	x.fail = semconv__transport_error_type(err);
	fail_open_requests(&x);
}

static void http1_lost(void *st, const struct proto_conn *c)
{
	struct http_state *h = st;

	c->env->stats[PROTO_HTTP1].lost += h->qlen;
	h->qhead = h->qlen = 0;
	/* as for a capture gap (resp_on_lost): answers to what was lost may
	 * still come; until the next request starts they are not its own */
	h->lost_tail = 0;
	h->lost_unknown = true;
	h->resp_unmatched = h->resp_open = h->resp_head = h->resp_is_head = false;
	/* both wait for a feed that starts a message (kept, not at rest) */
	if (parser(c, &h->req, HTTP1_REQUESTS))
		http1__lost(h->req);
	if (parser(c, &h->resp, HTTP1_RESPONSES))
		http1__lost(h->resp);
	http_settle(c, h);
}

const struct proto_ops http1_proto = {
	.name = "http1",
	.injectable = true,
	.infer = http1_infer,
	.open = http1_open,
	.feed = http1_feed,
	.close = http1_close,
	.fail = http1_fail,
	.lost = http1_lost,
	.free = http1_free,
	.handoff = http1_handoff,
	.cache_free = http1_cache_free,
};
