/* Unit tests for HTTP/2: the frame layer (proto/http2/h2.c) fed a small
 * conversation at every split point, bytes not captured, bad input; and the
 * stream layer through the connection table (spans, gRPC, RST_STREAM,
 * GOAWAY, the stream limit, connections caught mid-way). Header blocks are
 * made by libnghttp2's deflater, so the dynamic table is exercised; a few
 * are written by hand from the static table (RFC 7541 Appendix A). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "check.h"
#include "conn/conn.h"
#include "proto/http1/http1.h"
#include "proto/http2/h2.h"
#include "sonde.h"
#include "span/builder.h"
#include "span/span.h"
#include "span/tracectx.h"

/* ---- building frames ---- */

struct buf {
	uint8_t b[16384];
	size_t n;
};

static void put(struct buf *o, const void *p, size_t n)
{
	if (o->n + n > sizeof(o->b)) {
		fprintf(stderr, "test bug: buffer full\n");
		exit(2);
	}
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void frame(struct buf *o, uint8_t type, uint8_t flags, uint32_t sid, const void *p,
		  size_t n)
{
	uint8_t h[9] = { (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, type, flags,
			 (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid };

	put(o, h, 9);
	if (n)
		put(o, p, n);
}

/* A header block from name/value pairs (NULL-terminated list). */
static size_t hpack(nghttp2_hd_deflater *def, uint8_t *out, size_t cap, const char *const *kv)
{
	nghttp2_nv nv[16];
	size_t n = 0;
	ssize_t r;

	for (; kv[2 * n]; n++) {
		nv[n] = (nghttp2_nv){ (uint8_t *)kv[2 * n], (uint8_t *)kv[2 * n + 1],
				      strlen(kv[2 * n]), strlen(kv[2 * n + 1]), NGHTTP2_NV_FLAG_NONE };
	}
	r = nghttp2_hd_deflate_hd(def, out, cap, nv, n);
	if (r < 0) {
		fprintf(stderr, "test bug: deflate %zd\n", r);
		exit(2);
	}
	return (size_t)r;
}

static void headers(struct buf *o, nghttp2_hd_deflater *def, uint32_t sid, bool end_stream,
		    const char *const *kv)
{
	uint8_t blk[8192];
	size_t n = hpack(def, blk, sizeof(blk), kv);

	frame(o, H2_HEADERS, H2_F_END_HEADERS | (end_stream ? H2_F_END_STREAM : 0), sid, blk, n);
}

static void settings(struct buf *o, uint16_t id, uint32_t v)
{
	uint8_t p[6] = { (uint8_t)(id >> 8), (uint8_t)id, (uint8_t)(v >> 24), (uint8_t)(v >> 16),
			 (uint8_t)(v >> 8), (uint8_t)v };

	frame(o, H2_SETTINGS, 0, 0, p, id ? 6 : 0);
}

static void rst(struct buf *o, uint32_t sid, uint32_t code)
{
	uint8_t p[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
			 (uint8_t)code };

	frame(o, H2_RST_STREAM, 0, sid, p, 4);
}

static void goaway(struct buf *o, uint32_t last, uint32_t code)
{
	uint8_t p[10] = { (uint8_t)(last >> 24), (uint8_t)(last >> 16), (uint8_t)(last >> 8),
			  (uint8_t)last, (uint8_t)(code >> 24), (uint8_t)(code >> 16),
			  (uint8_t)(code >> 8), (uint8_t)code, 'h', 'i' };

	frame(o, H2_GOAWAY, 0, 0, p, sizeof(p));
}

/* ---- 1. the frame layer: an event log ---- */

static char logbuf[8192];
static size_t loglen;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void logf_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (loglen < sizeof(logbuf))
		loglen += (size_t)vsnprintf(logbuf + loglen, sizeof(logbuf) - loglen, fmt, ap);
	va_end(ap);
	if (loglen > sizeof(logbuf))
		loglen = sizeof(logbuf);
}

static void l_begin(void *a, uint32_t sid, uint8_t type)
{
	(void)a;
	logf_("B%u/%u ", sid, type);
}

static void l_field(void *a, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
	(void)a;
	logf_("%.*s=%.*s ", (int)nl, n, (int)vl, v);
}

static void l_end(void *a, uint32_t sid, bool es)
{
	(void)a;
	logf_("E%u%s ", sid, es ? "!" : "");
}

static void l_data(void *a, uint32_t sid)
{
	(void)a;
	logf_("D%u! ", sid);
}

static void l_rst(void *a, uint32_t sid, uint32_t code)
{
	(void)a;
	logf_("R%u:%u ", sid, code);
}

static void l_goaway(void *a, uint32_t last, uint32_t code)
{
	(void)a;
	logf_("G%u:%u ", last, code);
}

static void l_settings(void *a, bool ack, uint32_t t)
{
	(void)a;
	logf_("S%s%d ", ack ? "ack" : "", (int)t);
}

static void l_error(void *a, enum h2_error e)
{
	(void)a;
	logf_("X%d ", e);
}

static const struct h2_callbacks lcb = {
	.on_block_begin = l_begin, .on_field = l_field, .on_block_end = l_end,
	.on_data_end = l_data, .on_rst = l_rst, .on_goaway = l_goaway,
	.on_settings = l_settings, .on_error = l_error,
};

/* The client side of a small conversation: preface, SETTINGS, stream 1 in
 * HEADERS (padded, with priority) + CONTINUATION, stream 3 reusing the
 * dynamic table, DATA, WINDOW_UPDATE, PING, RST_STREAM, GOAWAY. */
static void client_conversation(struct buf *o)
{
	static const char *const h1[] = { ":method", "GET", ":path", "/users/5", ":scheme", "http",
					  ":authority", "example.test", "x-custom", "same-value",
					  NULL };
	static const char *const h3[] = { ":method", "POST", ":path", "/users/6", ":scheme", "http",
					  ":authority", "example.test", "x-custom", "same-value",
					  NULL };
	nghttp2_hd_deflater *def;
	uint8_t blk[512], p[600];
	size_t n, cut;
	uint8_t data[20] = "0123456789abcdefghi";
	uint8_t wu[4] = { 0, 0, 1, 0 }, ping[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	nghttp2_hd_deflate_new(&def, 4096);
	put(o, H2_PREFACE, H2_PREFACE_LEN);
	settings(o, 1, 8192);
	n = hpack(def, blk, sizeof(blk), h1);
	cut = n / 2;
	/* HEADERS: pad length 3, priority (5 bytes), half the block, padding */
	p[0] = 3;
	memset(p + 1, 0, 5);
	p[5] = 16;
	memcpy(p + 6, blk, cut);
	memset(p + 6 + cut, 0, 3);
	frame(o, H2_HEADERS, H2_F_PADDED | H2_F_PRIORITY | H2_F_END_STREAM, 1, p, 6 + cut + 3);
	frame(o, H2_CONTINUATION, H2_F_END_HEADERS, 1, blk + cut, n - cut);
	headers(o, def, 3, false, h3);
	frame(o, H2_DATA, H2_F_END_STREAM, 3, data, sizeof(data));
	frame(o, H2_WINDOW_UPDATE, 0, 0, wu, 4);
	frame(o, H2_PING, 0, 0, ping, 8);
	frame(o, 0x42, 0, 0, "ext", 3);	/* unknown type: skipped */
	rst(o, 3, 8);
	goaway(o, 0, 0);
	nghttp2_hd_deflate_del(def);
}

static const char *const client_log =
	"S8192 B1/1 :method=GET :path=/users/5 :scheme=http :authority=example.test "
	"x-custom=same-value E1! B3/1 :method=POST :path=/users/6 :scheme=http "
	":authority=example.test x-custom=same-value E3 D3! R3:8 G0:0 ";

static void feed_chunks(const struct buf *o, const size_t *cuts, size_t ncuts)
{
	struct h2_dir d;
	size_t from = 0;

	loglen = 0;
	logbuf[0] = '\0';
	h2__init(&d, true, 0);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : o->n;

		h2__feed(&d, o->b + from, to - from, to - from, &lcb, NULL);
		from = to;
	}
	h2__free(&d);
}

static void test_frames_every_split(void)
{
	struct buf o = { .n = 0 };
	int bad = 0;

	client_conversation(&o);
	feed_chunks(&o, NULL, 0);
	CHECK_EQ_STR(logbuf, client_log);
	/* two chunks at every split point, three at every pair */
	for (size_t i = 0; i <= o.n; i++) {
		feed_chunks(&o, &i, 1);
		bad += strcmp(logbuf, client_log) != 0;
		for (size_t j = i; j <= o.n; j += 7) {
			size_t c[2] = { i, j };

			feed_chunks(&o, c, 2);
			bad += strcmp(logbuf, client_log) != 0;
		}
	}
	CHECK_EQ_INT(bad, 0);
	/* one byte at a time */
	{
		size_t c[1024];

		for (size_t i = 0; i < o.n && i < 1024; i++)
			c[i] = i + 1;
		feed_chunks(&o, c, o.n - 1);
		CHECK_EQ_STR(logbuf, client_log);
	}
}

/* A DATA payload the kernel did not capture is skipped by its length; a
 * frame header that was not captured loses the direction's sync. */
static void test_uncaptured(void)
{
	static const uint8_t get[] = { 0x82, 0x84, 0x86 };	/* GET / http (static table) */
	struct buf a = { .n = 0 }, b = { .n = 0 };
	uint8_t big[300];
	struct h2_dir d;

	memset(big, 'x', sizeof(big));
	frame(&a, H2_HEADERS, H2_F_END_HEADERS, 1, get, 3);
	frame(&a, H2_DATA, H2_F_END_STREAM, 1, big, sizeof(big));
	frame(&b, H2_HEADERS, H2_F_END_HEADERS | H2_F_END_STREAM, 3, get, 3);

	loglen = 0;
	h2__init(&d, false, 0);
	/* first chunk: HEADERS + DATA header + 10 payload bytes captured */
	h2__feed(&d, a.b, 12 + 9 + 10, a.n, &lcb, NULL);
	h2__feed(&d, b.b, b.n, b.n, &lcb, NULL);
	CHECK_EQ_STR(logbuf, "B1/1 :method=GET :path=/ :scheme=http E1 D1! B3/1 :method=GET "
			     ":path=/ :scheme=http E3! ");
	CHECK(!h2__dead(&d));
	/* the same, but the chunk's uncaptured part runs into stream 3's HEADERS */
	loglen = 0;
	h2__free(&d);
	h2__init(&d, false, 0);
	{
		struct buf ab = a;

		put(&ab, b.b, b.n);
		h2__feed(&d, ab.b, 12 + 9 + 10, ab.n, &lcb, NULL);
	}
	h2__feed(&d, b.b, b.n, b.n, &lcb, NULL);
	CHECK_EQ_STR(logbuf, "B1/1 :method=GET :path=/ :scheme=http E1 D1! X1 ");
	CHECK(h2__dead(&d));
	h2__free(&d);
}

static void expect_error(const struct buf *o, uint32_t block_max, const char *want)
{
	struct h2_dir d;

	loglen = 0;
	logbuf[0] = '\0';
	h2__init(&d, false, block_max);
	h2__feed(&d, o->b, o->n, o->n, &lcb, NULL);
	CHECK_EQ_STR(logbuf, want);
	CHECK(h2__dead(&d));
	h2__free(&d);
}

static void test_bad_input(void)
{
	static const uint8_t get[] = { 0x82, 0x84, 0x86 };
	static const uint8_t bad_index[] = { 0xff, 0x7f };	/* index 254: not in any table */
	struct buf o;
	uint8_t big[2000];

	o.n = 0;	/* HEADERS on stream 0 */
	frame(&o, H2_HEADERS, H2_F_END_HEADERS, 0, get, 3);
	expect_error(&o, 0, "X2 ");
	o.n = 0;	/* CONTINUATION with no HEADERS before it */
	frame(&o, H2_CONTINUATION, H2_F_END_HEADERS, 1, get, 3);
	expect_error(&o, 0, "X2 ");
	o.n = 0;	/* something else between HEADERS and its CONTINUATION */
	frame(&o, H2_HEADERS, 0, 1, get, 3);
	frame(&o, H2_DATA, 0, 1, get, 3);
	expect_error(&o, 0, "B1/1 :method=GET :path=/ :scheme=http X2 ");
	o.n = 0;	/* padding longer than the frame */
	{
		uint8_t p[4] = { 9, 0x82, 0x84, 0x86 };

		frame(&o, H2_HEADERS, H2_F_END_HEADERS | H2_F_PADDED, 1, p, 4);
	}
	expect_error(&o, 0, "B1/1 X2 ");
	o.n = 0;	/* an index no table has */
	frame(&o, H2_HEADERS, H2_F_END_HEADERS, 1, bad_index, 2);
	expect_error(&o, 0, "B1/1 X3 ");
	o.n = 0;	/* a header block over the limit (1024 bytes) */
	/* one literal field, name "a", a value of 1990 bytes (7-bit prefix
	 * integer: 127 + 1863) */
	memset(big, 'v', sizeof(big));
	memcpy(big, "\x40\x01\x61\x7f\xc7\x0e", 6);
	frame(&o, H2_HEADERS, 0, 1, big, 1000);
	frame(&o, H2_CONTINUATION, H2_F_END_HEADERS, 1, big, 1000);
	expect_error(&o, 1024, "B1/1 X4 ");
	o.n = 0;	/* RST_STREAM of the wrong length */
	frame(&o, H2_RST_STREAM, 0, 1, get, 3);
	expect_error(&o, 0, "X2 ");
	o.n = 0;	/* a peer allowing a table over what sonde follows */
	{
		struct h2_dir d;

		h2__init(&d, false, 0);
		loglen = 0;
		h2__table_size(&d, H2_TABLE_MAX + 1, &lcb, NULL);
		CHECK_EQ_STR(logbuf, "X5 ");
		h2__free(&d);
	}
}

static void test_looks_like(void)
{
	struct buf o = { .n = 0 };
	static const uint8_t get[] = { 0x82, 0x84, 0x86 };

	frame(&o, H2_HEADERS, H2_F_END_HEADERS, 1, get, 3);
	frame(&o, H2_DATA, 0, 1, "abc", 3);
	CHECK(h2__looks_like_frames(o.b, o.n, o.n));
	CHECK(h2__looks_like_frames(o.b, 12, o.n));	/* the rest not captured */
	CHECK(!h2__looks_like_frames((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, 18));
	CHECK(!h2__looks_like_frames((const uint8_t *)"\x00\x00\x03\x01\x04\x00\x00\x00\x00", 9, 12));
	CHECK(!h2__looks_like_frames(o.b, 5, 5));
	o.n = 0;
	settings(&o, 3, 100);
	CHECK(h2__looks_like_settings(o.b, o.n));
	CHECK(!h2__looks_like_settings(get, 3));
}

/* ---- 2. streams through the connection table ---- */

#define MAX_SPANS 64
static struct span spans[MAX_SPANS];
static int nspans;

static void on_span(void *arg, const struct span *s)
{
	(void)arg;
	if (nspans < MAX_SPANS)
		spans[nspans] = *s;
	nspans++;
}

static const struct span_sink sink = { .emit = on_span };
static struct tracectx *tc;
static struct span_builder *builder;

static struct conn_table *new_ct(uint32_t max_streams)
{
	struct conn_table *t;

	span_builder__free(builder);
	tracectx__free(tc);
	tc = tracectx__new();
	builder = span_builder__new(tc, &sink, NULL);
	t = conn__new(64, NULL, builder, NULL);
	if (!t)
		exit(2);
	if (max_streams)
		conn__set_limits(t, &(struct proto_limits){ .h2_max_streams = max_streams });
	memset(spans, 0, sizeof(spans));
	nspans = 0;
	return t;
}

static _Alignas(8) uint8_t evbuf[sizeof(struct sonde_data_event) + 20000];

static void ev(struct conn_table *t, uint8_t role, uint8_t dir, uint64_t ktime, const uint8_t *d,
	       size_t cap, size_t len)
{
	struct sonde_data_event *e = (struct sonde_data_event *)evbuf;
	struct sonde_conn_event m = { .hdr = { .op = SONDE_OP_CONN, .size = sizeof(m) },
				      .sk = 0x1234, .tgid = 0xfffffff0u, .fd = 5, .role = role };

	memset(e, 0, sizeof(*e));
	e->hdr.op = SONDE_OP_DATA;
	e->hdr.size = (uint32_t)(sizeof(*e) + cap);
	e->hdr.ktime = ktime;
	e->enter_ns = ktime - 100;
	e->sk = 0x1234;
	e->tgid = 0xfffffff0u;
	e->tid = 77;
	e->fd = 5;
	e->len = (uint32_t)len;
	e->cap_len = (uint32_t)cap;
	e->dir = dir;
	e->role = role;
	memcpy(e->data, d, cap);
	m.tuple.family = 2;
	m.tuple.sport = role == SONDE_ROLE_SERVER ? 8080 : 40000;
	m.tuple.dport = role == SONDE_ROLE_SERVER ? 40000 : 8080;
	snprintf(m.comm, sizeof(m.comm), "h2test");
	conn__meta(t, &m);
	conn__data(t, e);
}

static void close_conn(struct conn_table *t, uint64_t ktime)
{
	struct sonde_close_event c = { .hdr = { .op = SONDE_OP_CLOSE, .size = sizeof(c), .ktime = ktime },
				       .sk = 0x1234, .tgid = 0xfffffff0u, .fd = 5 };

	conn__close(t, &c);
}

static const char *const req_get[] = { ":method", "GET", ":scheme", "http", ":path", "/users/5",
				       ":authority", "a.test", "traceparent",
				       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL };
static const char *const req_grpc[] = { ":method", "POST", ":scheme", "http", ":path",
					"/demo.Echo/Unary", ":authority", "a.test", "content-type",
					"application/grpc", "te", "trailers", NULL };
static const char *const resp_200[] = { ":status", "200", NULL };
static const char *const resp_grpc[] = { ":status", "200", "content-type", "application/grpc", NULL };

/* A server conversation: GET (with traceparent) on stream 1, gRPC calls on
 * 3 (trailers grpc-status 5) and 5 (trailers-only, 13), answered out of
 * order; the response direction split at cut. */
static void server_conv(size_t cut, bool check_all)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf in = { .n = 0 }, out = { .n = 0 };
	static const char *const trailers5[] = { "grpc-status", "5", "grpc-message", "no", NULL };
	static const char *const only13[] = { ":status", "200", "content-type", "application/grpc",
					      "grpc-status", "13", NULL };

	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 4096);
	put(&in, H2_PREFACE, H2_PREFACE_LEN);
	settings(&in, 0, 0);
	headers(&in, cdef, 1, true, req_get);
	headers(&in, cdef, 3, false, req_grpc);
	frame(&in, H2_DATA, H2_F_END_STREAM, 3, "\0\0\0\0\2hi", 7);
	headers(&in, cdef, 5, false, req_grpc);
	frame(&in, H2_DATA, H2_F_END_STREAM, 5, "\0\0\0\0\2ho", 7);
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_INGRESS, 1000, in.b, in.n, in.n);

	settings(&out, 0, 0);
	headers(&out, sdef, 5, true, only13);
	headers(&out, sdef, 3, false, resp_grpc);
	frame(&out, H2_DATA, 0, 3, "\0\0\0\0\1x", 6);
	headers(&out, sdef, 3, true, trailers5);
	headers(&out, sdef, 1, false, resp_200);
	frame(&out, H2_DATA, H2_F_END_STREAM, 1, "hello", 5);
	if (cut > out.n)
		cut = out.n;
	if (cut)
		ev(t, SONDE_ROLE_SERVER, SONDE_DIR_EGRESS, 2000, out.b, cut, cut);
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_EGRESS, 3000, out.b + cut, out.n - cut, out.n - cut);

	if (check_all) {
		CHECK_EQ_INT(nspans, 3);
		/* stream 5 (trailers-only INTERNAL): an error on the server side */
		CHECK_EQ_INT(spans[0].proto, SPAN_RPC);
		CHECK_EQ_STR(spans[0].rpc_service, "demo.Echo");
		CHECK_EQ_STR(spans[0].rpc_method, "Unary");
		CHECK_EQ_INT(spans[0].rpc_status, 13);
		CHECK_EQ_STR(spans[0].error_type, "INTERNAL");
		CHECK_EQ_INT(spans[0].kind, SPAN_SERVER);
		CHECK_EQ_INT(spans[0].start_ns, 1000);
		/* stream 3: NOT_FOUND is not a server error */
		CHECK_EQ_INT(spans[1].rpc_status, 5);
		CHECK_EQ_STR(spans[1].error_type, "");
		CHECK_EQ_INT(spans[1].status, 200);
		/* stream 1: HTTP, with the incoming trace context */
		CHECK_EQ_INT(spans[2].proto, SPAN_HTTP);
		CHECK_EQ_INT(spans[2].version_major, 2);
		CHECK_EQ_STR(spans[2].method, "GET");
		CHECK_EQ_STR(spans[2].target, "/users/5");
		CHECK_EQ_STR(spans[2].route, "/users/{id}");
		CHECK_EQ_INT(spans[2].status, 200);
		CHECK_EQ_INT(spans[2].end_ns, 3000);
		CHECK_EQ_INT(spans[2].ctx.remote_parent, 1);
		CHECK_EQ_INT(spans[2].ctx.trace_id[0], 0x4b);
		CHECK_EQ_INT(spans[2].ctx.parent_span_id[7], 0xb7);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].spans, 3);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].desync, 0);
	}
	{
		static int bad;
		bool ok = nspans == 3 && spans[0].rpc_status == 13 && spans[1].rpc_status == 5 &&
			  strcmp(spans[2].target, "/users/5") == 0 && spans[2].status == 200;

		if (!ok && !bad++)
			fprintf(stderr, "server conversation wrong when split at %zu\n", cut);
		CHECK(ok);
	}
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

static void test_server_streams(void)
{
	server_conv(0, true);
	for (size_t cut = 1; cut < 200; cut++)
		server_conv(cut, false);
}

/* Client: gRPC NOT_FOUND is an error; RST_STREAM and GOAWAY fail streams;
 * a stream still open when the client closes was cancelled. */
static void test_client_failures(void)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf out = { .n = 0 }, in = { .n = 0 };
	static const char *const tr5[] = { "grpc-status", "5", NULL };

	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 4096);
	put(&out, H2_PREFACE, H2_PREFACE_LEN);
	settings(&out, 0, 0);
	for (uint32_t sid = 1; sid <= 9; sid += 2)
		headers(&out, cdef, sid, true, sid == 1 ? req_grpc : req_get);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_EGRESS, 1000, out.b, out.n, out.n);
	settings(&in, 0, 0);
	headers(&in, sdef, 1, false, resp_grpc);
	headers(&in, sdef, 1, true, tr5);
	rst(&in, 3, 2);		/* INTERNAL_ERROR */
	rst(&in, 5, 8);		/* CANCEL */
	goaway(&in, 7, 0);	/* 9 will not be processed */
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 2000, in.b, in.n, in.n);
	CHECK_EQ_INT(nspans, 4);
	CHECK_EQ_STR(spans[0].error_type, "NOT_FOUND");
	CHECK_EQ_INT(spans[0].kind, SPAN_CLIENT);
	CHECK_EQ_INT(spans[0].start_ns, 900);	/* write entry */
	CHECK_EQ_STR(spans[1].error_type, SPAN_ERR_STREAM_RESET);
	CHECK_EQ_STR(spans[2].error_type, SPAN_ERR_CANCELLED);
	CHECK_EQ_STR(spans[3].error_type, SPAN_ERR_GOAWAY);
	CHECK_EQ_STR(spans[3].target, "/users/5");
	close_conn(t, 5000);	/* stream 7 still open */
	CHECK_EQ_INT(nspans, 5);
	CHECK_EQ_STR(spans[4].error_type, SPAN_ERR_CANCELLED);
	CHECK_EQ_INT(spans[4].end_ns, 5000);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].failed, 4);
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

/* A client that reads the server's SETTINGS before writing its preface
 * (gRPC core's server sends them on accept): the connection's first record
 * is that frame, read, and it is HTTP/2 all the same; the calls that follow
 * are traced, none counted unsupported. */
static void test_client_settings_first(void)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf first = { .n = 0 }, out = { .n = 0 }, in = { .n = 0 };
	static const char *const tr0[] = { "grpc-status", "0", NULL };

	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 4096);
	settings(&first, 0, 0);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 500, first.b, first.n, first.n);
	CHECK_EQ_INT(conn__stats(t)->conns_unsupported, 0);
	put(&out, H2_PREFACE, H2_PREFACE_LEN);
	settings(&out, 0, 0);
	headers(&out, cdef, 1, true, req_grpc);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_EGRESS, 1000, out.b, out.n, out.n);
	headers(&in, sdef, 1, false, resp_grpc);
	headers(&in, sdef, 1, true, tr0);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 2000, in.b, in.n, in.n);
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_INT(spans[0].kind, SPAN_CLIENT);
	CHECK_EQ_STR(spans[0].rpc_method, "Unary");
	CHECK_EQ_INT(spans[0].rpc_status, 0);
	CHECK_EQ_INT(conn__stats(t)->conns_unsupported, 0);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].desync, 0);
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

/* At most max_streams in flight: the others are counted, not traced. */
static void test_stream_limit(void)
{
	struct conn_table *t = new_ct(2);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf out = { .n = 0 }, in = { .n = 0 };

	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 4096);
	put(&out, H2_PREFACE, H2_PREFACE_LEN);
	for (uint32_t sid = 1; sid <= 5; sid += 2)
		headers(&out, cdef, sid, true, req_get);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_EGRESS, 1000, out.b, out.n, out.n);
	for (uint32_t sid = 1; sid <= 5; sid += 2)
		headers(&in, sdef, sid, true, resp_200);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 2000, in.b, in.n, in.n);
	CHECK_EQ_INT(nspans, 2);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].too_many, 1);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].unmatched, 1);
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

/* A connection caught in the middle (role unknown, no preface): never
 * decoded, whatever comes; counted once. */
static void test_missed_start(void)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *def;
	struct buf o = { .n = 0 };

	nghttp2_hd_deflate_new(&def, 4096);
	headers(&o, def, 41, true, req_get);
	ev(t, SONDE_ROLE_UNKNOWN, SONDE_DIR_EGRESS, 1000, o.b, o.n, o.n);
	o.n = 0;
	headers(&o, def, 41, true, resp_200);
	ev(t, SONDE_ROLE_UNKNOWN, SONDE_DIR_INGRESS, 2000, o.b, o.n, o.n);
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].missed_start, 1);
	CHECK_EQ_INT(conn__stats(t)->conns_unsupported, 0);
	conn__free(t);
	nghttp2_hd_deflate_del(def);
}

/* The response direction's frame header not captured: the connection
 * stops being decoded, its open stream is unanswered, nothing is guessed. */
static void test_desync(void)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf out = { .n = 0 }, in = { .n = 0 };

	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 4096);
	put(&out, H2_PREFACE, H2_PREFACE_LEN);
	headers(&out, cdef, 1, true, req_get);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_EGRESS, 1000, out.b, out.n, out.n);
	settings(&in, 0, 0);
	headers(&in, sdef, 1, true, resp_200);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 2000, in.b, 5, in.n);
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].desync, 1);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].unanswered, 1);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 3000, in.b, in.n, in.n);
	CHECK_EQ_INT(nspans, 0);
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

/* SETTINGS_HEADER_TABLE_SIZE: the encoder may grow its table once it
 * acknowledged the setting; the inflater follows. */
static void test_table_size(void)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf out = { .n = 0 }, in = { .n = 0 };
	static const char *const big[] = { ":status", "200", "x-long", NULL };
	char val[6000];
	const char *kv[] = { ":status", "200", "x-long", val, NULL };

	(void)big;
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 8192);
	/* the client allows the server's encoder 8192 bytes of table */
	put(&out, H2_PREFACE, H2_PREFACE_LEN);
	settings(&out, 1, 8192);
	headers(&out, cdef, 1, true, req_get);
	headers(&out, cdef, 3, true, req_get);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_EGRESS, 1000, out.b, out.n, out.n);
	frame(&in, H2_SETTINGS, H2_F_ACK, 0, NULL, 0);
	nghttp2_hd_deflate_change_table_size(sdef, 8192);
	/* a 6 KB value indexed: only fits a table of 8192 */
	headers(&in, sdef, 1, true, kv);
	headers(&in, sdef, 3, true, kv);
	ev(t, SONDE_ROLE_CLIENT, SONDE_DIR_INGRESS, 2000, in.b, in.n, in.n);
	CHECK_EQ_INT(nspans, 2);
	CHECK_EQ_INT(spans[1].status, 200);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].desync, 0);
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

/* ---- 3. h2c: HTTP/1.1 upgraded to HTTP/2 (RFC 7540 §3.2) ---- */

struct h2s {
	uint32_t table;
	uint8_t h2c;
	int heads;
};

static int h2s_head(void *ctx, const struct http1_message *m)
{
	struct h2s *g = ctx;

	g->table = m->h2_table_size;
	g->h2c = m->upgrade_h2c;
	g->heads++;
	return 0;
}

/* HTTP2-Settings decoded as the header comes, split anywhere. */
static void test_h2_settings_header(void)
{
	static const struct {
		const char *value;
		uint32_t table;
	} cases[] = {
		{ "AAMAAABkAAQCAAAAAAIAAAAA", HTTP1_H2_TABLE_NONE },	/* curl: no table size */
		{ "AAMAAABkAAQAAP__AAEAAQAA", 65536 },		/* nghttp -c 65536 */
		{ "AAEAACAA", 8192 },
		{ " AAEAACAA ", 8192 },
		{ "AAEAACA", HTTP1_H2_TABLE_NONE },		/* a partial entry */
		{ "AAEA*CAA", HTTP1_H2_TABLE_NONE },		/* not base64url */
		{ "", HTTP1_H2_TABLE_NONE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char req[256];
		int n = snprintf(req, sizeof(req),
				 "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
				 "Upgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", cases[i].value);

		for (int cut = 0; cut < n; cut++) {
			struct http1_parser p;
			struct h2s got = { 0, 0, 0 };
			struct http1_callbacks cb = { .on_head = h2s_head };

			http1__init(&p, HTTP1_REQUESTS);
			http1__feed(&p, (const uint8_t *)req, (size_t)cut, (size_t)cut, &cb, &got);
			http1__feed(&p, (const uint8_t *)req + cut, (size_t)(n - cut), (size_t)(n - cut),
				    &cb, &got);
			if (got.heads != 1 || got.table != cases[i].table || got.h2c != 1) {
				fprintf(stderr, "HTTP2-Settings \"%s\" split at %d: table %u h2c %u heads %d\n",
					cases[i].value, cut, got.table, got.h2c, got.heads);
				CHECK(0);
				break;
			}
		}
	}
}

static const char h2c_req[] =
	"GET /users/5 HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
	"Upgrade: h2c\r\nHTTP2-Settings: AAEAACAA\r\n"
	"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";
static const char h2c_101[] =
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/* One h2c connection seen from role: the upgrade request, the 101 and the
 * server's first frames in one chunk (split at cut), then stream 3. The
 * response to stream 1 indexes a 6 KB field: only a table of 8192 (from
 * HTTP2-Settings) holds it. */
static void h2c_conv(uint8_t role, size_t cut, bool check_all)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf resp = { .n = 0 }, in = { .n = 0 }, out = { .n = 0 };
	uint8_t rq = role == SONDE_ROLE_SERVER ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS;
	uint8_t rs = role == SONDE_ROLE_SERVER ? SONDE_DIR_EGRESS : SONDE_DIR_INGRESS;
	static const char *const req7[] = { ":method", "GET", ":scheme", "http", ":path", "/users/7",
					    ":authority", "a.test", NULL };
	static const char *const r404[] = { ":status", "404", NULL };
	char val[6000];
	const char *big[] = { ":status", "200", "x-long", val, NULL };

	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 8192);
	nghttp2_hd_deflate_change_table_size(sdef, 8192);
	ev(t, role, rq, 1000, (const uint8_t *)h2c_req, strlen(h2c_req), strlen(h2c_req));
	put(&resp, h2c_101, strlen(h2c_101));
	settings(&resp, 3, 100);
	headers(&resp, sdef, 1, false, big);
	frame(&resp, H2_DATA, H2_F_END_STREAM, 1, "hello", 5);
	if (cut > resp.n)
		cut = resp.n;
	if (cut)
		ev(t, role, rs, 2000, resp.b, cut, cut);
	ev(t, role, rs, 3000, resp.b + cut, resp.n - cut, resp.n - cut);
	/* the client preface follows the 101, then a request on stream 3 */
	put(&in, H2_PREFACE, H2_PREFACE_LEN);
	settings(&in, 0, 0);
	frame(&in, H2_SETTINGS, H2_F_ACK, 0, NULL, 0);
	headers(&in, cdef, 3, true, req7);
	ev(t, role, rq, 4000, in.b, in.n, in.n);
	frame(&out, H2_SETTINGS, H2_F_ACK, 0, NULL, 0);
	headers(&out, sdef, 3, true, r404);
	ev(t, role, rs, 5000, out.b, out.n, out.n);
	if (check_all) {
		CHECK_EQ_INT(nspans, 2);
		/* stream 1: the HTTP/1.1 request, answered in HTTP/2 */
		CHECK_EQ_INT(spans[0].proto, SPAN_HTTP);
		CHECK_EQ_INT(spans[0].kind, role == SONDE_ROLE_SERVER ? SPAN_SERVER : SPAN_CLIENT);
		CHECK_EQ_INT(spans[0].version_major, 2);
		CHECK_EQ_STR(spans[0].method, "GET");
		CHECK_EQ_STR(spans[0].target, "/users/5");
		CHECK_EQ_STR(spans[0].route, "/users/{id}");
		CHECK_EQ_INT(spans[0].status, 200);
		CHECK_EQ_INT(spans[0].start_ns, role == SONDE_ROLE_SERVER ? 1000 : 900);
		CHECK_EQ_INT(spans[0].end_ns, 3000);
		CHECK_EQ_INT(spans[0].ctx.trace_id[0], 0x4b);
		/* the context decided from the HTTP/1.1 head, as for any request */
		CHECK_EQ_INT(spans[0].ctx.remote_parent, role == SONDE_ROLE_SERVER);
		CHECK_EQ_STR(spans[1].target, "/users/7");
		CHECK_EQ_INT(spans[1].status, 404);
		CHECK_EQ_INT(spans[1].version_major, 2);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP1].spans, 0);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP1].parse_errors, 0);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP1].unanswered, 0);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].spans, 2);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].desync, 0);
		CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].unmatched, 0);
	}
	{
		static int bad;
		bool ok = nspans == 2 && strcmp(spans[0].target, "/users/5") == 0 &&
			  spans[0].status == 200 && spans[1].status == 404 &&
			  conn__stats(t)->proto[PROTO_HTTP2].desync == 0;

		if (!ok && !bad++)
			fprintf(stderr, "h2c conversation (role %u) wrong when split at %zu: %d spans\n",
				role, cut, nspans);
		CHECK(ok);
	}
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

static void test_h2c_upgrade(void)
{
	h2c_conv(SONDE_ROLE_SERVER, 0, true);
	h2c_conv(SONDE_ROLE_CLIENT, 0, true);
	for (size_t cut = 1; cut < 6200; cut += cut < 120 ? 1 : 97) {
		h2c_conv(SONDE_ROLE_SERVER, cut, false);
		h2c_conv(SONDE_ROLE_CLIENT, cut, false);
	}
}

/* A 101 to h2c whose request was not followed (the agent started between
 * them): HTTP/2 is still decoded from its start; stream 1's response has
 * no request (counted unmatched), stream 3 is exact. A 101 to anything
 * else (websocket) stays an HTTP/1.1 span. */
static void test_h2c_unmatched_and_websocket(void)
{
	struct conn_table *t = new_ct(0);
	nghttp2_hd_deflater *cdef, *sdef;
	struct buf resp = { .n = 0 }, in = { .n = 0 }, out = { .n = 0 };
	static const char ws_req[] = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
				     "Connection: Upgrade\r\n\r\n";
	static const char ws_101[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				     "Connection: Upgrade\r\n\r\n\x81\x02hi";

	nghttp2_hd_deflate_new(&cdef, 4096);
	nghttp2_hd_deflate_new(&sdef, 4096);
	put(&resp, h2c_101, strlen(h2c_101));
	settings(&resp, 0, 0);
	headers(&resp, sdef, 1, true, resp_200);
	/* role known (accepted), but the request was before the agent */
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_EGRESS, 2000, resp.b, resp.n, resp.n);
	put(&in, H2_PREFACE, H2_PREFACE_LEN);
	settings(&in, 0, 0);
	headers(&in, cdef, 3, true, req_get);
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_INGRESS, 3000, in.b, in.n, in.n);
	headers(&out, sdef, 3, true, resp_200);
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_EGRESS, 4000, out.b, out.n, out.n);
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_STR(spans[0].target, "/users/5");
	CHECK_EQ_INT(spans[0].version_major, 2);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].unmatched, 1);
	conn__free(t);

	t = new_ct(0);
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_INGRESS, 1000, (const uint8_t *)ws_req, strlen(ws_req),
	   strlen(ws_req));
	ev(t, SONDE_ROLE_SERVER, SONDE_DIR_EGRESS, 2000, (const uint8_t *)ws_101, strlen(ws_101),
	   strlen(ws_101));
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_INT(spans[0].status, 101);
	CHECK(spans[0].version_major != 2);
	CHECK_EQ_INT(conn__stats(t)->proto[PROTO_HTTP2].spans, 0);
	conn__free(t);
	nghttp2_hd_deflate_del(cdef);
	nghttp2_hd_deflate_del(sdef);
}

int main(void)
{
	test_frames_every_split();
	test_uncaptured();
	test_bad_input();
	test_looks_like();
	test_server_streams();
	test_client_failures();
	test_client_settings_first();
	test_stream_limit();
	test_missed_start();
	test_desync();
	test_table_size();
	test_h2_settings_header();
	test_h2c_upgrade();
	test_h2c_unmatched_and_websocket();
	span_builder__free(builder);
	tracectx__free(tc);
	return check_summary("test_http2");
}
