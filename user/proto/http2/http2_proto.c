/* HTTP/2 (and gRPC on it) behind proto_ops: inference by the client
 * preface, one h2_dir per direction, and a bounded table of the streams in
 * flight; a stream's request HEADERS open it, the END_STREAM of its
 * response (DATA or trailers) or an RST_STREAM / GOAWAY ends it as one span.
 * Timing follows HTTP/1.x: a server span runs from the read that returned
 * the request's HEADERS to the write that ended the response; a client
 * span from the write(2) entry of its HEADERS to the read that ended it. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http2/h2.h"
#include "proto/http2/http2.h"
#include "proto/proto.h"
#include "span/builder.h"
#include "span/semconv.h"
#include "span/tracectx.h"

#define STREAMS_INLINE 4	/* grows by doubling up to limits.h2_max_streams */
#define NO_TABLE UINT32_MAX
#define RST_CANCEL 0x8

enum { DIR_REQ = 0, DIR_RESP = 1 };

/* What the fields of the header block being read are for. */
enum blk_mode { BLK_NONE = 0, BLK_REQ, BLK_RESP, BLK_TRAILERS };

struct h2_stream {
	uint32_t sid;
	uint32_t tid;
	uint64_t start_ns;
	uint16_t status;		/* final :status, 0 until it comes */
	int16_t grpc_status;		/* -1 until it comes */
	bool grpc;			/* content-type application/grpc* */
	bool resp_headers;		/* final response headers seen */
	char method[SPAN_METHOD_MAX];
	char path[SPAN_TARGET_MAX];
	struct span_ctx ctx;		/* decided when the request HEADERS ended */
};

struct h2_state {
	struct h2_dir dir[2];		/* DIR_REQ: client to server */
	bool missed;			/* caught mid-way: nothing can be decoded */
	bool dead;			/* stopped decoding (counted once) */
	uint32_t pending_table[2];	/* SETTINGS_HEADER_TABLE_SIZE sent that way, not acked */
	struct h2_stream *st;
	uint16_t n, cap;
	struct {
		uint32_t sid;
		uint8_t mode;		/* enum blk_mode */
	} blk[2];
	/* trace headers of the request block being read */
	char traceparent[TRACECTX_TP_LEN + 1];
	char tracestate[SPAN_TRACESTATE_MAX];
	uint8_t tp_lines, tp_cut, ts_cut;
	uint64_t blk_start_ns;		/* request block: its span's start */
	uint32_t blk_tid;
	/* h2c upgrade: HTTP2-Settings' header table size, for the response
	 * direction's inflater once it exists (NO_TABLE: none) */
	uint32_t upgrade_table;
};

struct fctx {
	struct h2_state *h;
	const struct proto_conn *c;
	const struct sonde_data_event *ev;	/* NULL at close / fail */
	int dir;			/* DIR_REQ / DIR_RESP of the chunk */
	uint64_t end_ns;
};

static struct proto_stats *stats(const struct fctx *x)
{
	return &x->c->env->stats[PROTO_HTTP2];
}

static struct h2_stream *find(struct h2_state *h, uint32_t sid)
{
	for (uint16_t i = 0; i < h->n; i++)
		if (h->st[i].sid == sid)
			return &h->st[i];
	return NULL;
}

/* A new stream, or NULL when the table is at its limit (or memory ran out). */
static struct h2_stream *add(struct h2_state *h, uint32_t limit)
{
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2u : STREAMS_INLINE;
		struct h2_stream *st;

		if (cap > limit)
			cap = limit;
		if (cap <= h->cap)
			return NULL;
		st = realloc(h->st, cap * sizeof(*st));
		if (!st)
			return NULL;
		h->st = st;
		h->cap = (uint16_t)cap;
	}
	return &h->st[h->n++];
}

static void drop(struct h2_state *h, struct h2_stream *s)
{
	*s = h->st[--h->n];
}

static void copy_cut(char *dst, size_t n, const uint8_t *src, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* The stream ends as a span; fail: SPAN_ERR_* when it was cut short. */
static void finish(struct fctx *x, struct h2_stream *s, const char *fail)
{
	struct span_origin o = proto_conn__origin(x->c, s->tid);
	uint64_t end_ns = x->ev ? x->ev->hdr.ktime : x->end_ns;

	stats(x)->spans++;
	if (fail)
		stats(x)->failed++;
	if (s->grpc) {
		struct span_rpc r = { .path = s->path, .http_status = s->status,
				      .grpc_status = s->grpc_status, .fail = fail, .ctx = &s->ctx };

		span_builder__rpc(x->c->env->spans, &o, s->start_ns, end_ns, &r);
	} else {
		struct span_http sh = { .method = s->method, .target = s->path, .status = s->status,
					.version_major = 2, .version_minor = 0, .fail = fail,
					.incomplete = fail && s->status, .ctx = &s->ctx };

		span_builder__http(x->c->env->spans, &o, s->start_ns, end_ns, &sh);
	}
	drop(x->h, s);
}

/* Decoding stopped for good: what is in flight cannot end. */
static void die(struct fctx *x)
{
	struct h2_state *h = x->h;

	if (h->dead)
		return;
	h->dead = true;
	stats(x)->unanswered += h->n;
	h->n = 0;
	h2__free(&h->dir[0]);
	h2__free(&h->dir[1]);
}

static void on_block_begin(void *arg, uint32_t sid, uint8_t type)
{
	struct fctx *x = arg;
	struct h2_state *h = x->h;
	struct h2_stream *s = find(h, sid);

	(void)type;
	h->blk[x->dir].sid = sid;
	h->blk[x->dir].mode = BLK_NONE;
	if (x->dir == DIR_REQ) {
		if (s)			/* request trailers: nothing we keep */
			return;
		if (!(s = add(h, x->c->env->limits.h2_max_streams))) {
			stats(x)->too_many++;
			return;
		}
		memset(s, 0, offsetof(struct h2_stream, ctx));
		s->sid = sid;
		s->grpc_status = -1;
		/* a server's request starts when its read returned, a client's
		 * at the entry of its write */
		s->start_ns = proto_conn__is_server(x->c) ? x->ev->hdr.ktime : x->ev->enter_ns;
		s->tid = x->ev->tid;
		h->traceparent[0] = h->tracestate[0] = '\0';
		h->tp_lines = h->tp_cut = h->ts_cut = 0;
		h->blk[x->dir].mode = BLK_REQ;
		return;
	}
	if (!s) {
		/* a stream over the limit (counted), or pushed by the server */
		if (sid & 1)
			stats(x)->unmatched++;
		return;
	}
	h->blk[x->dir].mode = s->resp_headers ? BLK_TRAILERS : BLK_RESP;
}

static bool name_is(const uint8_t *n, size_t nlen, const char *want)
{
	size_t wl = strlen(want);

	return nlen == wl && memcmp(n, want, wl) == 0;
}

/* A decimal of at most 3 digits, or -1. */
static int small_uint(const uint8_t *v, size_t n)
{
	int r = 0;

	if (n == 0 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		r = r * 10 + (v[i] - '0');
	}
	return r;
}

static void on_field(void *arg, const uint8_t *name, size_t nlen, const uint8_t *value,
		     size_t vlen)
{
	struct fctx *x = arg;
	struct h2_state *h = x->h;
	uint8_t mode = h->blk[x->dir].mode;
	struct h2_stream *s;

	if (mode == BLK_NONE || !(s = find(h, h->blk[x->dir].sid)))
		return;
	if (mode == BLK_REQ) {
		if (name_is(name, nlen, ":method"))
			copy_cut(s->method, sizeof(s->method), value, vlen);
		else if (name_is(name, nlen, ":path"))
			copy_cut(s->path, sizeof(s->path), value, vlen);
		else if (name_is(name, nlen, "content-type"))
			s->grpc = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
				  (vlen == 16 || value[16] == '+' || value[16] == ';');
		else if (name_is(name, nlen, "traceparent")) {
			h->tp_lines++;
			h->tp_cut = vlen >= sizeof(h->traceparent);
			copy_cut(h->traceparent, sizeof(h->traceparent), value, vlen);
		} else if (name_is(name, nlen, "tracestate")) {
			h->ts_cut = vlen >= sizeof(h->tracestate);
			copy_cut(h->tracestate, sizeof(h->tracestate), value, vlen);
		}
		return;
	}
	if (mode == BLK_RESP && name_is(name, nlen, ":status")) {
		int st = small_uint(value, vlen);

		s->status = st < 100 ? 0 : (uint16_t)st;
	} else if (name_is(name, nlen, "grpc-status")) {
		s->grpc_status = (int16_t)small_uint(value, vlen);
	}
}

static void on_block_end(void *arg, uint32_t sid, bool end_stream)
{
	struct fctx *x = arg;
	struct h2_state *h = x->h;
	uint8_t mode = h->blk[x->dir].mode;
	struct h2_stream *s;

	h->blk[x->dir].mode = BLK_NONE;
	if (mode == BLK_NONE || !(s = find(h, sid)))
		return;
	if (mode == BLK_REQ) {
		struct span_origin o = proto_conn__origin(x->c, s->tid);
		struct tracectx_hdr th = {
			.traceparent = h->traceparent, .tracestate = h->tracestate,
			.traceparent_lines = h->tp_lines, .traceparent_cut = h->tp_cut,
			.tracestate_cut = h->ts_cut,
		};

		/* now, as for HTTP/1.x: the thread's server context is current */
		span_builder__request_ctx(x->c->env->spans, &o, &th, &s->ctx);
		return;
	}
	if (mode == BLK_RESP) {
		/* 1xx (100-continue, 103) are not the response yet */
		if (s->status >= 200 || s->status == 0)
			s->resp_headers = true;
		else
			s->status = 0;
	}
	if (end_stream)
		finish(x, s, NULL);
}

static void on_data_end(void *arg, uint32_t sid)
{
	struct fctx *x = arg;
	struct h2_stream *s;

	if (x->dir == DIR_RESP && (s = find(x->h, sid)))
		finish(x, s, NULL);
}

static void on_rst(void *arg, uint32_t sid, uint32_t code)
{
	struct fctx *x = arg;
	struct h2_stream *s = find(x->h, sid);

	if (s)
		finish(x, s, code == RST_CANCEL ? SPAN_ERR_CANCELLED : SPAN_ERR_STREAM_RESET);
}

/* The server will not process streams above last_sid (RFC 9113 §6.8). */
static void on_goaway(void *arg, uint32_t last_sid, uint32_t code)
{
	struct fctx *x = arg;
	struct h2_state *h = x->h;

	(void)code;
	if (x->dir != DIR_RESP)
		return;
	for (uint16_t i = 0; i < h->n;) {
		if (h->st[i].sid > last_sid)
			finish(x, &h->st[i], SPAN_ERR_GOAWAY);	/* moves the last into i */
		else
			i++;
	}
}

/* A table size one side sets applies to the other side's encoder once that
 * side acknowledges it: the acknowledging direction's inflater follows. */
static const struct h2_callbacks callbacks;

static void on_settings(void *arg, bool ack, uint32_t table)
{
	struct fctx *x = arg;
	struct h2_state *h = x->h;
	int other = 1 - x->dir;

	if (!ack) {
		if (table != NO_TABLE)
			h->pending_table[x->dir] = table;
		return;
	}
	if (h->pending_table[other] != NO_TABLE) {
		uint32_t t = h->pending_table[other];

		h->pending_table[other] = NO_TABLE;
		h2__table_size(&h->dir[x->dir], t, &callbacks, x);
	}
}

static void on_error(void *arg, enum h2_error err)
{
	struct fctx *x = arg;

	if (x->h->dead)
		return;
	if (err == H2_ERR_BLOCK_TOO_BIG)
		stats(x)->too_big++;
	else
		stats(x)->desync++;
	if (err == H2_ERR_PROTOCOL || err == H2_ERR_HPACK)
		stats(x)->parse_errors++;
}

static const struct h2_callbacks callbacks = {
	.on_block_begin = on_block_begin,
	.on_field = on_field,
	.on_block_end = on_block_end,
	.on_data_end = on_data_end,
	.on_rst = on_rst,
	.on_goaway = on_goaway,
	.on_settings = on_settings,
	.on_error = on_error,
};

/* The client preface starts every HTTP/2 connection (h2c with prior
 * knowledge, and TLS with ALPN h2 as the uprobes see it); a server may
 * send its SETTINGS before reading it. A connection older than the agent
 * shows frames from the middle: taken (so that it is not handed to another
 * protocol or counted unsupported) but never decoded. */
static enum proto_verdict http2_infer(const struct sonde_data_event *ev,
				      const struct sonde_tuple *tuple, enum proto_pass pass,
				      uint8_t *role)
{
	size_t n = ev->cap_len < H2_PREFACE_LEN ? ev->cap_len : H2_PREFACE_LEN;

	(void)tuple;	/* no port of its own */
	if (pass == PROTO_PASS_START) {
		if (n >= 3 && memcmp(ev->data, H2_PREFACE, n) == 0) {
			if (n < H2_PREFACE_LEN)
				return PROTO_MAYBE;
			*role = ev->dir == SONDE_DIR_EGRESS ? SONDE_ROLE_CLIENT : SONDE_ROLE_SERVER;
			return PROTO_YES;
		}
		/* A server may send its SETTINGS before the client's preface
		 * arrives (gRPC core does, on accept), so either end's first
		 * record can be the server's SETTINGS frame: written by the
		 * server, or read by the client before it writes its preface. */
		if (((ev->role == SONDE_ROLE_SERVER && ev->dir == SONDE_DIR_EGRESS) ||
		     (ev->role == SONDE_ROLE_CLIENT && ev->dir == SONDE_DIR_INGRESS)) &&
		    h2__looks_like_settings(ev->data, ev->cap_len)) {
			*role = ev->role;
			return PROTO_YES;
		}
		return PROTO_NO;
	}
	if (pass == PROTO_PASS_LAST && ev->role == SONDE_ROLE_UNKNOWN &&
	    h2__looks_like_frames(ev->data, ev->cap_len, ev->len))
		return PROTO_YES;
	return PROTO_NO;
}

static void *http2_open(enum proto_pass pass)
{
	struct h2_state *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->pending_table[0] = h->pending_table[1] = NO_TABLE;
	h->upgrade_table = NO_TABLE;
	/* caught mid-way; else the inflaters are made at the first feed,
	 * which knows the limits */
	h->missed = pass != PROTO_PASS_START;
	return h;
}

static void http2_free(void *st, struct proto_stats *all)
{
	struct h2_state *h = st;

	if (!h)
		return;
	if (all)
		all[PROTO_HTTP2].unanswered += h->n;
	h2__free(&h->dir[0]);
	h2__free(&h->dir[1]);
	free(h->st);
	free(h);
}

static bool started(struct h2_state *h, struct fctx *x)
{
	uint32_t block_max = x->c->env->limits.h2_max_header_block;

	if (h->dir[0].inf || h->dir[1].inf || h->dead)
		return !h->dead;
	if (h2__init(&h->dir[DIR_REQ], true, block_max) ||
	    h2__init(&h->dir[DIR_RESP], false, block_max)) {
		stats(x)->desync++;
		h->dead = true;
		h2__free(&h->dir[0]);
		h2__free(&h->dir[1]);
		return false;
	}
	/* the client's HTTP2-Settings, acknowledged by the 101 (RFC 7540
	 * §3.2.1): they bound the server's encoder as a SETTINGS frame would */
	if (h->upgrade_table != NO_TABLE) {
		x->dir = DIR_RESP;
		h2__table_size(&h->dir[DIR_RESP], h->upgrade_table, &callbacks, x);
		h->upgrade_table = NO_TABLE;
	}
	return true;
}

void *http2__open_upgraded(const struct h2c_upgrade *u)
{
	struct h2_state *h = http2_open(PROTO_PASS_START);
	struct h2_stream *s;

	if (!h)
		return NULL;
	h->upgrade_table = u->table_size;
	if (!u->has_request)
		return h;	/* its response comes unmatched (counted) */
	s = add(h, u->max_streams ? u->max_streams : 1);
	if (!s) {
		http2_free(h, NULL);
		return NULL;
	}
	memset(s, 0, sizeof(*s));
	s->sid = 1;
	s->grpc_status = -1;
	s->start_ns = u->start_ns;
	s->tid = u->tid;
	copy_cut(s->method, sizeof(s->method), (const uint8_t *)u->method, strlen(u->method));
	copy_cut(s->path, sizeof(s->path), (const uint8_t *)u->path, strlen(u->path));
	s->ctx = *u->ctx;
	return h;
}

static void http2_feed(void *st, const struct proto_conn *c, const struct sonde_data_event *ev)
{
	struct h2_state *h = st;
	struct fctx x = { .h = h, .c = c, .ev = ev };

	if (h->missed) {
		if (!h->dead) {
			h->dead = true;
			stats(&x)->missed_start++;
		}
		return;
	}
	if (!started(h, &x))
		return;
	x.dir = proto__is_request_dir(c->role, ev->dir) ? DIR_REQ : DIR_RESP;
	h2__feed(&h->dir[x.dir], ev->data, ev->cap_len, ev->len, &callbacks, &x);
	/* one direction stopped (counted by on_error): the other is of no use */
	if (h2__dead(&h->dir[0]) || h2__dead(&h->dir[1]))
		die(&x);
}

/* Client streams still open when the connection ends: failures. */
static void fail_open(struct fctx *x, const char *why)
{
	struct h2_state *h = x->h;

	while (h->n)
		finish(x, &h->st[h->n - 1], why);
}

static void http2_close(void *st, const struct proto_conn *c, uint64_t end_ns)
{
	struct h2_state *h = st;
	struct fctx x = { .h = h, .c = c, .end_ns = end_ns };

	if (!proto_conn__is_server(c) && !h->dead)
		fail_open(&x, SPAN_ERR_CANCELLED);
}

static void http2_fail(void *st, const struct proto_conn *c, int32_t err, uint64_t end_ns)
{
	struct h2_state *h = st;
	struct fctx x = { .h = h, .c = c, .end_ns = end_ns };

	if (!proto_conn__is_server(c) && !h->dead)
		fail_open(&x, semconv__transport_error_type(err));
}

/* Ring records were lost: the HPACK tables can no longer be followed. */
static void http2_lost(void *st, const struct proto_conn *c)
{
	struct h2_state *h = st;
	struct fctx x = { .h = h, .c = c };

	if (h->dead)
		return;
	c->env->stats[PROTO_HTTP2].lost += h->n;
	h->n = 0;
	die(&x);
}

/* Caught mid-way, or out of sync: nothing more can be decoded. */
static bool http2_given_up(const void *st)
{
	return ((const struct h2_state *)st)->dead;
}

const struct proto_ops http2_proto = {
	.name = "http2",
	.injectable = false,
	.infer = http2_infer,
	.open = http2_open,
	.feed = http2_feed,
	.close = http2_close,
	.fail = http2_fail,
	.lost = http2_lost,
	.free = http2_free,
	.given_up = http2_given_up,
};
