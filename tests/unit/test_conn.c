/* Unit tests for the connection tracker: events are built byte for byte as
 * the BPF side writes them (header + data[]), with explicit timestamps, and
 * the exact spans, ignore callbacks and counters are checked. */
#include <errno.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "conn/conn.h"
#include "proto/http1/http1.h"
#include "span/tracectx.h"
#include "sonde.h"
#include "span/builder.h"
#include "span/redact.h"
#include "span/span.h"

/* A tgid that cannot exist (pid_max <= 2^22): proc__service falls back to comm. */
#define NO_PID 0xfffffff0u
#define COMM "svc-comm"

/* ---- what the callbacks saw ---- */

#define MAX_SPANS 256

struct got_span {
	struct span s;
	char service[128];
};

static struct got_span spans[MAX_SPANS];
static int nspans;		/* recorded in spans[] (bounded) */
static long total_spans;	/* all on_span calls */
static int nignores;
static uint32_t ign_tgid;
static int32_t ign_fd;
static uint64_t ign_sk;

static void on_span(void *arg, const struct span *s)
{
	(void)arg;
	total_spans++;
	/* Every span must be self-consistent, whatever the input. */
	if (s->end_ns < s->start_ns)
		fprintf(stderr, "span end < start\n"), check_failures++;
	if (!memchr(s->method, 0, sizeof(s->method)) || !memchr(s->target, 0, sizeof(s->target)) ||
	    !memchr(s->route, 0, sizeof(s->route)) || !s->service)
		fprintf(stderr, "span strings not terminated\n"), check_failures++;
	if (nspans < MAX_SPANS) {
		spans[nspans].s = *s;
		snprintf(spans[nspans].service, sizeof(spans[nspans].service), "%s",
			 s->service ? s->service : "(null)");
		spans[nspans].s.service = spans[nspans].service;
		nspans++;
	}
}

static void on_ignore(void *arg, uint32_t tgid, int32_t fd, uint64_t sk)
{
	(void)arg;
	nignores++;
	ign_tgid = tgid;
	ign_fd = fd;
	ign_sk = sk;
}

static int nunignores;
static uint64_t unign_sk;

static void on_unignore(void *arg, uint32_t tgid, int32_t fd, uint64_t sk)
{
	(void)arg;
	(void)tgid;
	(void)fd;
	nunignores++;
	unign_sk = sk;
}

/* The kernel's entry as hook_meta reads it when a SONDE_OP_CONN record is
 * missing: sport 7777 and comm "from-kernel" tell its answer apart. */
static int nmetas;
static uint64_t meta_sk;

static bool on_meta(void *arg, uint32_t tgid, int32_t fd, uint64_t sk, struct sonde_conn_event *out)
{
	(void)arg;
	(void)tgid;
	(void)fd;
	nmetas++;
	meta_sk = sk;
	out->tuple.family = 2;
	out->tuple.sport = 7777;
	out->tuple.dport = 56999;
	snprintf(out->comm, sizeof(out->comm), "from-kernel");
	return true;
}

static const struct conn_hooks hooks = { .ignore = on_ignore, .unignore = on_unignore,
					 .meta = on_meta };
static const struct span_sink sink = { .emit = on_span };
/* Each table gets fresh trace-context state: no test sees another's. */
static struct tracectx *tc;
static struct span_builder *builder;

static void reset_seen(void)
{
	memset(spans, 0, sizeof(spans));
	nspans = 0;
	total_spans = 0;
	nignores = 0;
	nunignores = 0;
	unign_sk = 0;
	nmetas = 0;
	meta_sk = 0;
	ign_tgid = 0;
	ign_fd = 0;
	ign_sk = 0;
}

/* ---- event builders ---- */

struct sock {
	uint32_t tgid, tid;
	int32_t fd;
	uint64_t sk;
	uint8_t role;
	uint16_t sport, dport;
};

static _Alignas(8) uint8_t evbuf[sizeof(struct sonde_data_event) + 200000];
static int evbuf_tls;		/* data_ev marks its events SONDE_F_TLS */
static uint8_t next_loss;	/* the next event of any kind carries SONDE_F_LOSS */

static uint8_t take_loss(void)
{
	uint8_t f = next_loss ? SONDE_F_LOSS : 0;

	next_loss = 0;
	return f;
}

static int no_meta;		/* data_ev sends no SONDE_OP_CONN ahead of its record */

/* The connection's SONDE_OP_CONN record, as the kernel writes it ahead of
 * the first data record (again before each one here: it only updates). */
static void meta_ev(struct conn_table *t, const struct sock *k)
{
	struct sonde_conn_event m = { .hdr = { .op = SONDE_OP_CONN, .size = sizeof(m) },
				      .sk = k->sk, .tgid = k->tgid, .fd = k->fd, .role = k->role };

	m.tuple.family = 2;	/* AF_INET */
	m.tuple.sport = k->sport;
	m.tuple.dport = k->dport;
	m.tuple.saddr[0] = 10;
	m.tuple.daddr[0] = 10;
	m.tuple.daddr[3] = 2;
	snprintf(m.comm, sizeof(m.comm), "%s", COMM);
	conn__meta(t, &m);
}

/* One read/write: len bytes moved, the first cap of them captured. */
static void data_ev(struct conn_table *t, const struct sock *k, uint8_t dir, uint64_t enter_ns,
		    uint64_t ktime, const void *data, size_t cap, size_t len)
{
	struct sonde_data_event *ev = (struct sonde_data_event *)evbuf;

	if (cap > sizeof(evbuf) - sizeof(*ev)) {
		fprintf(stderr, "test bug: event too big\n");
		exit(2);
	}
	memset(ev, 0, sizeof(*ev));
	ev->hdr.op = SONDE_OP_DATA;
	ev->hdr.flags = (cap < len ? SONDE_F_TRUNCATED : 0) | (evbuf_tls ? SONDE_F_TLS : 0) |
			take_loss();
	ev->hdr.size = (uint32_t)(sizeof(*ev) + cap);
	ev->hdr.ktime = ktime;
	ev->enter_ns = enter_ns;
	ev->sk = k->sk;
	ev->tgid = k->tgid;
	ev->tid = k->tid;
	ev->fd = k->fd;
	ev->len = (uint32_t)len;
	ev->cap_len = (uint32_t)cap;
	ev->dir = dir;
	ev->role = k->role;
	ev->syscall = dir == SONDE_DIR_INGRESS ? SONDE_SYS_READ : SONDE_SYS_WRITE;
	memcpy(ev->data, data, cap);
	if (!no_meta)
		meta_ev(t, k);
	conn__data(t, ev);
}

/* Whole string captured; enter_ns = ktime - 100. */
static void rd(struct conn_table *t, const struct sock *k, uint64_t ktime, const char *s)
{
	data_ev(t, k, SONDE_DIR_INGRESS, ktime - 100, ktime, s, strlen(s), strlen(s));
}

static void wr(struct conn_table *t, const struct sock *k, uint64_t ktime, const char *s)
{
	data_ev(t, k, SONDE_DIR_EGRESS, ktime - 100, ktime, s, strlen(s), strlen(s));
}

/* Whole string captured, explicit entry/exit times. */
static void io(struct conn_table *t, const struct sock *k, uint8_t dir, uint64_t enter_ns,
	       uint64_t ktime, const char *s)
{
	data_ev(t, k, dir, enter_ns, ktime, s, strlen(s), strlen(s));
}

static void close_ev(struct conn_table *t, const struct sock *k, uint64_t ktime)
{
	struct sonde_close_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.op = SONDE_OP_CLOSE;
	ev.hdr.flags = take_loss();
	ev.hdr.size = sizeof(ev);
	ev.hdr.ktime = ktime;
	ev.sk = k->sk;
	ev.tgid = k->tgid;
	ev.fd = k->fd;
	conn__close(t, &ev);
}

/* r: the target rule handed to the builder, NULL for the default */
static struct conn_table *new_ct_redact(size_t max, const struct redact *r)
{
	struct conn_table *t;

	span_builder__free(builder);
	tracectx__free(tc);
	tc = tracectx__new();
	builder = tc ? span_builder__new(tc, &sink, r) : NULL;
	t = builder ? conn__new(max, &hooks, builder, NULL) : NULL;
	if (!t) {
		fprintf(stderr, "conn__new failed\n");
		exit(2);
	}
	reset_seen();
	return t;
}

static struct conn_table *new_ct(size_t max)
{
	return new_ct_redact(max, NULL);
}

/* Checks every field of a recorded span that the tests set explicitly. */
#define CHECK_SPAN(i, kind_, start_, end_, k, method_, target_, route_, status_)       \
	do {                                                                           \
		const struct span *_s = &spans[i].s;                                   \
		CHECK_EQ_INT(_s->kind, kind_);                                         \
		CHECK_EQ_INT(_s->start_ns, start_);                                    \
		CHECK_EQ_INT(_s->end_ns, end_);                                        \
		CHECK_EQ_INT(_s->tgid, (k)->tgid);                                     \
		CHECK_EQ_INT(_s->tid, (k)->tid);                                       \
		CHECK_EQ_STR(_s->method, method_);                                     \
		CHECK_EQ_STR(_s->target, target_);                                    \
		CHECK_EQ_STR(_s->route, route_);                                       \
		CHECK_EQ_INT(_s->status, status_);                                     \
		CHECK_EQ_INT(_s->tuple.sport, (k)->sport);                             \
		CHECK_EQ_INT(_s->tuple.dport, (k)->dport);                             \
	} while (0)

static void check_stats_zero_errors(const struct conn_stats *st)
{
	for (int id = 0; id < PROTO__COUNT; id++)
		CHECK_EQ_INT(st->proto[id].parse_errors, 0);
}

/* ---- 1. server, request split over two reads ---- */

static void test_server_split_request(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, NO_PID + 1, 5, 0x1000, SONDE_ROLE_SERVER, 8080, 50000 };
	const struct conn_stats *st = conn__stats(t);

	/* The read that returns the first bytes exits at 1000; the head is
	 * only complete with the second read (2000). */
	io(t, &k, SONDE_DIR_INGRESS, 100, 1000, "GET /users/42?x=1 HTTP/1.1\r\nHo");
	CHECK_EQ_INT(conn__count(t), 1);
	rd(t, &k, 2000, "st: example\r\n\r\n");
	CHECK_EQ_INT(nspans, 0);
	io(t, &k, SONDE_DIR_EGRESS, 3000, 3500, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 3500, &k, "GET", "/users/42?x=1", "/users/{id}", 200);
		CHECK_EQ_STR(spans[0].s.comm, COMM);
		CHECK_EQ_STR(spans[0].s.service, COMM);	/* no such pid: comm */
		CHECK_EQ_INT(spans[0].s.version_minor, 1);
		CHECK_EQ_INT(spans[0].s.incomplete, 0);
		CHECK_EQ_INT(spans[0].s.tuple.family, 2);
		CHECK_EQ_INT(spans[0].s.tuple.daddr[3], 2);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 1);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	CHECK_EQ_INT(st->conns_evicted, 0);
	CHECK_EQ_INT(st->conns_unsupported, 0);
	check_stats_zero_errors(st);
	CHECK_EQ_INT(nignores, 0);
	close_ev(t, &k, 4000);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	conn__free(t);
}

/* ---- 1b. the span builder redacts the target before any signal sees it ---- */

static void test_redacted_target(void)
{
	struct sock k = { NO_PID, NO_PID + 1, 5, 0x1100, SONDE_ROLE_SERVER, 8080, 50001 };
	struct sock c = { NO_PID, 78, 6, 0x1200, SONDE_ROLE_CLIENT, 40001, 3128 };
	struct redact drop;
	struct conn_table *t = new_ct(64);

	io(t, &k, SONDE_DIR_INGRESS, 100, 1000,
	   "GET /login/7?user=bob&password=S3CRET&API%5FKEY=K3Y HTTP/1.1\r\nHost: x\r\n\r\n");
	io(t, &k, SONDE_DIR_EGRESS, 2000, 2500, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* a forward-proxy request: absolute-form with userinfo */
	io(t, &c, SONDE_DIR_EGRESS, 3000, 3100,
	   "GET http://alice:hunter2@example.com/a?token=t0k HTTP/1.1\r\nHost: example.com\r\n\r\n");
	rd(t, &c, 4000, "HTTP/1.1 204 No Content\r\n\r\n");
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 2500, &k, "GET",
			   "/login/7?user=bob&password=REDACTED&API%5FKEY=REDACTED", "/login/{id}", 200);
		CHECK_SPAN(1, SPAN_CLIENT, 3000, 4000, &c, "GET",
			   "http://REDACTED:REDACTED@example.com/a?token=REDACTED", "/a", 204);
	}
	conn__free(t);

	CHECK_EQ_INT(redact__init(&drop, REDACT_DROP, "user"), 0);
	t = new_ct_redact(64, &drop);
	io(t, &k, SONDE_DIR_INGRESS, 100, 1000, "GET /login?user=bob&password=S3CRET HTTP/1.1\r\n\r\n");
	io(t, &k, SONDE_DIR_EGRESS, 2000, 2500, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_SERVER, 1000, 2500, &k, "GET", "/login", "/login", 200);
	conn__free(t);
}

/* ---- 2. client, response split over three reads ---- */

static void test_client(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 77, 9, 0x2000, SONDE_ROLE_CLIENT, 40000, 443 };
	const struct conn_stats *st = conn__stats(t);

	/* write(2) entered at 10000 (blocked in the send buffer), exited 10500 */
	io(t, &k, SONDE_DIR_EGRESS, 10000, 10500, "GET /api/v1/orders/abc HTTP/1.1\r\nHost: x\r\n\r\n");
	rd(t, &k, 11000, "HTTP/1.1 201 Created\r\nContent-Le");
	rd(t, &k, 12000, "ngth: 10\r\n\r\n01234");
	CHECK_EQ_INT(nspans, 0);
	rd(t, &k, 13000, "56789");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1) {
		CHECK_SPAN(0, SPAN_CLIENT, 10000, 13000, &k, "GET",
			   "/api/v1/orders/abc", "/api/v1/orders/abc", 201);
		CHECK_EQ_STR(spans[0].s.service, COMM);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 1);

	/* A request head written in two writes: the span starts at the first
	 * write's entry. */
	io(t, &k, SONDE_DIR_EGRESS, 20000, 20100, "POST /submit HTTP/1.1\r\nContent-");
	io(t, &k, SONDE_DIR_EGRESS, 20500, 20600, "Length: 3\r\n\r\nabc");
	rd(t, &k, 21000, "HTTP/1.1 204 No Content\r\n\r\n");
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2)
		CHECK_SPAN(1, SPAN_CLIENT, 20000, 21000, &k, "POST", "/submit", "/submit", 204);
	check_stats_zero_errors(st);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	conn__free(t);
	CHECK_EQ_INT(nignores, 0);
}

/* ---- 2b. trace context and request ids through the pending queue ---- */

static void test_trace_context(void)
{
	struct conn_table *t = new_ct(64);
	struct sock srv = { NO_PID, NO_PID + 3, 7, 0x3000, SONDE_ROLE_SERVER, 8080, 50001 };
	struct sock cli = { NO_PID, NO_PID + 3, 8, 0x3100, SONDE_ROLE_CLIENT, 50002, 9090 };
	char hex[33];

	/* two pipelined requests: ids must stay with their own request */
	rd(t, &srv, 1000, "GET /a HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"
			  "00f067aa0ba902b7-01\r\ntracestate: k=v\r\nX-Request-ID: r1\r\n"
			  "Authorization: Bearer x\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
	/* the serving thread calls out meanwhile */
	wr(t, &cli, 1500, "GET /down HTTP/1.1\r\nX-Correlation-ID: c9\r\n\r\n");
	rd(t, &cli, 1600, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	wr(t, &srv, 2000, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
			  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3) {
		const struct span *down = &spans[0].s, *a = &spans[1].s, *b = &spans[2].s;

		tracectx__hex(hex, a->ctx.trace_id, 16);
		CHECK_EQ_STR(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
		tracectx__hex(hex, a->ctx.parent_span_id, 8);
		CHECK_EQ_STR(hex, "00f067aa0ba902b7");
		CHECK_EQ_INT(a->ctx.remote_parent, 1);
		CHECK_EQ_STR(a->ctx.tracestate, "k=v");
		CHECK_EQ_STR(a->request_id, "r1");
		CHECK_EQ_STR(a->error_type, "503");
		CHECK_EQ_STR(b->request_id, "");
		CHECK_EQ_STR(b->ctx.tracestate, "");
		CHECK_EQ_INT(b->ctx.remote_parent, 0);
		CHECK_EQ_STR(b->error_type, "");
		CHECK(memcmp(b->ctx.trace_id, a->ctx.trace_id, 16) != 0);
		/* /down was sent while /b (the thread's latest request) was served */
		CHECK_EQ_INT(down->kind, SPAN_CLIENT);
		CHECK(memcmp(down->ctx.trace_id, b->ctx.trace_id, 16) == 0);
		CHECK(memcmp(down->ctx.parent_span_id, b->ctx.span_id, 8) == 0);
		CHECK_EQ_STR(down->correlation_id, "c9");
		CHECK_EQ_STR(down->error_type, "404");
	}
	conn__free(t);
}

/* ---- 3. keep-alive and pipelining ---- */

static void test_keepalive_pipelined(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 3, 11, 0x3000, SONDE_ROLE_SERVER, 80, 51000 };
	const struct conn_stats *st = conn__stats(t);
	static const int codes[3] = { 200, 404, 500 };
	char resp[128];

	for (int i = 0; i < 3; i++) {
		char req[64];
		uint64_t base = 100000 * (uint64_t)(i + 1);

		snprintf(req, sizeof(req), "GET /k/%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
		rd(t, &k, base, req);
		snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", codes[i]);
		wr(t, &k, base + 50 + (uint64_t)i, resp);
	}
	CHECK_EQ_INT(nspans, 3);
	if (nspans == 3) {
		CHECK_SPAN(0, SPAN_SERVER, 100000, 100050, &k, "GET", "/k/0", "/k/{id}", 200);
		CHECK_SPAN(1, SPAN_SERVER, 200000, 200051, &k, "GET", "/k/1", "/k/{id}", 404);
		CHECK_SPAN(2, SPAN_SERVER, 300000, 300052, &k, "GET", "/k/2", "/k/{id}", 500);
	}

	/* Pipelined: three requests in one read, three responses in one write. */
	rd(t, &k, 400000,
	   "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbodyDELETE /c HTTP/1.1\r\n\r\n");
	wr(t, &k, 400900,
	   "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
	   "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nBB\r\n0\r\n\r\n"
	   "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 6);
	if (nspans == 6) {
		CHECK_SPAN(3, SPAN_SERVER, 400000, 400900, &k, "GET", "/a", "/a", 200);
		CHECK_SPAN(4, SPAN_SERVER, 400000, 400900, &k, "POST", "/b", "/b", 201);
		CHECK_SPAN(5, SPAN_SERVER, 400000, 400900, &k, "DELETE", "/c", "/c", 202);
	}

	/* A read that ends inside the next pipelined request: that request's
	 * first bytes came with this read (500000), not with the next one. */
	rd(t, &k, 500000, "GET /d HTTP/1.1\r\n\r\nGET /e HT");
	rd(t, &k, 500700, "TP/1.1\r\n\r\n");
	wr(t, &k, 501000, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 8);
	if (nspans == 8) {
		CHECK_SPAN(6, SPAN_SERVER, 500000, 501000, &k, "GET", "/d", "/d", 200);
		CHECK_SPAN(7, SPAN_SERVER, 500000, 501000, &k, "GET", "/e", "/e", 200);
	}
	/* A read that ends exactly at a message boundary: the next request
	 * starts with the next read. */
	rd(t, &k, 600000, "GET /f HTTP/1.1\r\n\r\n");
	rd(t, &k, 600500, "GET /g HTTP/1.1\r\n");
	rd(t, &k, 600800, "\r\n");
	wr(t, &k, 601000, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 10);
	if (nspans == 10) {
		CHECK_SPAN(8, SPAN_SERVER, 600000, 601000, &k, "GET", "/f", "/f", 200);
		CHECK_SPAN(9, SPAN_SERVER, 600500, 601000, &k, "GET", "/g", "/g", 200);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 10);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	check_stats_zero_errors(st);

	/* Requests still waiting when the connection closes are dropped. */
	rd(t, &k, 700000, "GET /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n");
	close_ev(t, &k, 700100);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 2);
	CHECK_EQ_INT(nspans, 10);
	CHECK_EQ_INT(conn__count(t), 0);
	conn__free(t);
}

/* ---- 3b. pipelines: every split point, depth, capture gaps ---- */

/* Three requests and their three responses, as one stream each way. */
static const char pipe_req[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
			       "POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
			       "DELETE /c?x=1 HTTP/1.1\r\n\r\n";
static const char pipe_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
				"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nBB\r\n0\r\n\r\n"
				"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/* Feeds s[0, n) as two syscalls split at cut (0: one syscall) in
 * direction dir, at times t1 and t2 (entry 10 ns before each exit). */
static void feed_split(struct conn_table *t, const struct sock *k, uint8_t dir, const char *s,
		       size_t n, size_t cut, uint64_t t1, uint64_t t2)
{
	if (!cut) {
		data_ev(t, k, dir, t1 - 10, t1, s, n, n);
		return;
	}
	data_ev(t, k, dir, t1 - 10, t1, s, cut, cut);
	data_ev(t, k, dir, t2 - 10, t2, s + cut, n - cut, n - cut);
}

/* One connection of role role: the request stream split at rcut, then the
 * response stream split at scut (0: whole). Exactly three spans, in order,
 * with the start and end the timing rules give for those splits. */
static void pipe_split_case(uint8_t role, size_t rcut, size_t scut)
{
	static const char *const methods[3] = { "GET", "POST", "DELETE" };
	static const char *const targets[3] = { "/a", "/b", "/c?x=1" };
	static const char *const routes[3] = { "/a", "/b", "/c" };
	static const int codes[3] = { 200, 201, 404 };
	const char *rq = pipe_req, *rs = pipe_resp;
	/* where each request begins and each response ends in its stream */
	size_t req_at[3] = { 0, (size_t)(strstr(rq, "POST") - rq), (size_t)(strstr(rq, "DELETE") - rq) };
	size_t resp_end[3] = { (size_t)(strstr(rs, "HTTP/1.1 201") - rs),
			       (size_t)(strstr(rs, "HTTP/1.1 404") - rs), strlen(rs) };
	struct conn_table *t = new_ct(64);
	int server = role == SONDE_ROLE_SERVER;
	struct sock k = { NO_PID, 61, 20, 0x7000, role, server ? 80 : 55000, server ? 55000 : 80 };
	const struct conn_stats *st = conn__stats(t);
	uint8_t qdir = server ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS;
	uint8_t sdir = server ? SONDE_DIR_EGRESS : SONDE_DIR_INGRESS;
	int failed = check_failures;

	feed_split(t, &k, qdir, rq, strlen(rq), rcut, 1000, 2000);
	CHECK_EQ_INT(nspans, 0);
	feed_split(t, &k, sdir, rs, strlen(rs), scut, 3000, 4000);
	CHECK_EQ_INT(nspans, 3);
	for (int i = 0; i < 3 && i < nspans; i++) {
		/* a request starts with the syscall holding its first byte
		 * (server: its exit; client: its entry); a response ends with
		 * the one holding its last byte */
		uint64_t start = rcut && req_at[i] >= rcut ? 2000 : 1000;
		uint64_t end = scut && resp_end[i] > scut ? 4000 : 3000;

		CHECK_SPAN(i, server ? SPAN_SERVER : SPAN_CLIENT, server ? start : start - 10, end,
			   &k, methods[i], targets[i], routes[i], codes[i]);
		CHECK_EQ_INT(spans[i].s.incomplete, 0);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 3);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	check_stats_zero_errors(st);
	if (check_failures != failed)
		fprintf(stderr, "  (pipeline %s, requests cut at %zu, responses cut at %zu)\n",
			server ? "server" : "client", rcut, scut);
	conn__free(t);
}

static void test_pipeline_splits(void)
{
	for (int r = 0; r < 2; r++) {
		uint8_t role = r ? SONDE_ROLE_CLIENT : SONDE_ROLE_SERVER;

		for (size_t cut = 0; cut < strlen(pipe_req); cut++)
			pipe_split_case(role, cut, 0);
		for (size_t cut = 1; cut < strlen(pipe_resp); cut++)
			pipe_split_case(role, 0, cut);
	}
}

/* n requests "GET /p/NNN HTTP/1.1" (23 bytes each) into buf; returns the length. */
static size_t pipe_requests(char *buf, size_t size, int from, int n)
{
	size_t len = 0;

	for (int i = from; i < from + n; i++)
		len += (size_t)snprintf(buf + len, size - len, "GET /p/%03d HTTP/1.1\r\n\r\n", i);
	return len;
}

/* n responses, status 200, 404 or 500 by request number (40 bytes each) */
static size_t pipe_responses(char *buf, size_t size, int from, int n)
{
	static const char *const st[3] = { "200 OK", "404 NO", "500 NO" };
	size_t len = 0;

	for (int i = from; i < from + n; i++)
		len += (size_t)snprintf(buf + len, size - len,
					"HTTP/1.1 %s\r\nContent-Length: 2\r\n\r\nok", st[i % 3]);
	return len;
}

static void check_pipe_span(int i, int req, const struct sock *k, uint64_t start, uint64_t end)
{
	static const int codes[3] = { 200, 404, 500 };
	char target[16];

	snprintf(target, sizeof(target), "/p/%03d", req);
	CHECK_SPAN(i, k->role == SONDE_ROLE_SERVER ? SPAN_SERVER : SPAN_CLIENT, start, end, k,
		   "GET", target, "/p/{id}", codes[req % 3]);
}

static void test_pipeline_deep(void)
{
	static char rq[200 * 32], rs[200 * 48];
	struct conn_table *t = new_ct(64);
	struct sock srv = { NO_PID, 62, 21, 0x7100, SONDE_ROLE_SERVER, 80, 55001 };
	struct sock cli = { NO_PID, 63, 22, 0x7200, SONDE_ROLE_CLIENT, 55002, 80 };
	const struct conn_stats *st = conn__stats(t);
	size_t nq = pipe_requests(rq, sizeof(rq), 0, 100), ns = pipe_responses(rs, sizeof(rs), 0, 100);

	/* 100 requests in one read, 100 responses in one write: all paired. */
	CHECK_EQ_INT(nq, 2300);
	CHECK_EQ_INT(ns, 4000);
	data_ev(t, &srv, SONDE_DIR_INGRESS, 900, 1000, rq, nq, nq);
	data_ev(t, &srv, SONDE_DIR_EGRESS, 1900, 2000, rs, ns, ns);
	CHECK_EQ_INT(nspans, 100);
	for (int i = 0; i < 100 && i < nspans; i++)
		check_pipe_span(i, i, &srv, 1000, 2000);
	/* The same from the client, and the queue then shrinks back: a plain
	 * request still pairs. */
	data_ev(t, &cli, SONDE_DIR_EGRESS, 3000, 3100, rq, nq, nq);
	data_ev(t, &cli, SONDE_DIR_INGRESS, 3900, 4000, rs, ns, ns);
	CHECK_EQ_INT(nspans, 200);
	for (int i = 100; i < 200 && i < nspans; i++)
		check_pipe_span(i, i - 100, &cli, 3000, 4000);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 200);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	check_stats_zero_errors(st);
	conn__free(t);

	/* 130 deep: 128 are followed; the last two are counted unanswered
	 * where they stand, and their responses do not shift the pairing of
	 * the next request. */
	t = new_ct(64);
	st = conn__stats(t);
	nq = pipe_requests(rq, sizeof(rq), 0, 130);
	ns = pipe_responses(rs, sizeof(rs), 0, 130);
	data_ev(t, &srv, SONDE_DIR_INGRESS, 900, 1000, rq, nq, nq);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 2);
	data_ev(t, &srv, SONDE_DIR_EGRESS, 1900, 2000, rs, ns, ns);
	CHECK_EQ_INT(nspans, 128);
	for (int i = 0; i < 128 && i < nspans; i++)
		check_pipe_span(i, i, &srv, 1000, 2000);
	nq = pipe_requests(rq, sizeof(rq), 131, 1);
	ns = pipe_responses(rs, sizeof(rs), 131, 1);
	data_ev(t, &srv, SONDE_DIR_INGRESS, 2900, 3000, rq, nq, nq);
	data_ev(t, &srv, SONDE_DIR_EGRESS, 3900, 4000, rs, ns, ns);
	CHECK_EQ_INT(nspans, 129);
	if (nspans >= 129)
		check_pipe_span(128, 131, &srv, 3000, 4000);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 2);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	check_stats_zero_errors(st);
	conn__free(t);
}

static void test_pipeline_gap(void)
{
	static char rq[200 * 32], rs[200 * 48];
	struct conn_table *t = new_ct(64);
	struct sock srv = { NO_PID, 64, 23, 0x7300, SONDE_ROLE_SERVER, 80, 55003 };
	struct sock cli = { NO_PID, 65, 24, 0x7400, SONDE_ROLE_CLIENT, 55004, 80 };
	const struct conn_stats *st = conn__stats(t);
	size_t nq = pipe_requests(rq, sizeof(rq), 0, 100), ns = pipe_responses(rs, sizeof(rs), 0, 100);

	/* Server: one read of 100 requests, 1024 bytes captured: 44 whole
	 * requests and the start line of the 45th ("GET /p/044 H"); 55 are in
	 * the gap. The responses come in two writes before the next request:
	 * 45 pair, the 55 answering unseen requests are unmatched, and the
	 * next request pairs with its own response. */
	data_ev(t, &srv, SONDE_DIR_INGRESS, 900, 1000, rq, 1024, nq);
	data_ev(t, &srv, SONDE_DIR_EGRESS, 1900, 2000, rs, 1000, 1000);
	data_ev(t, &srv, SONDE_DIR_EGRESS, 2900, 3000, rs + 1000, ns - 1000, ns - 1000);
	CHECK_EQ_INT(nspans, 45);
	for (int i = 0; i < 45 && i < nspans; i++)
		check_pipe_span(i, i, &srv, 1000, i < 25 ? 2000 : 3000);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 55);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	nq = pipe_requests(rq, sizeof(rq), 100, 2);
	ns = pipe_responses(rs, sizeof(rs), 100, 2);
	data_ev(t, &srv, SONDE_DIR_INGRESS, 3900, 4000, rq, nq, nq);
	data_ev(t, &srv, SONDE_DIR_EGRESS, 4900, 5000, rs, ns, ns);
	CHECK_EQ_INT(nspans, 47);
	if (nspans >= 47) {
		check_pipe_span(45, 100, &srv, 4000, 5000);
		check_pipe_span(46, 101, &srv, 4000, 5000);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 55);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);

	/* Client: the 100 requests are seen whole, the responses in one read
	 * of which 1024 bytes were captured: 25 whole responses and the start
	 * of the 26th (its head cut). Which requests the hidden responses
	 * answered is unknown, so the 74 waiting are counted unanswered; a
	 * later read of responses to them is unmatched, and the next request
	 * pairs exactly. */
	nq = pipe_requests(rq, sizeof(rq), 0, 100);
	ns = pipe_responses(rs, sizeof(rs), 0, 100);
	reset_seen();
	data_ev(t, &cli, SONDE_DIR_EGRESS, 10000, 10100, rq, nq, nq);
	data_ev(t, &cli, SONDE_DIR_INGRESS, 10900, 11000, rs, 1024, 2000);
	data_ev(t, &cli, SONDE_DIR_INGRESS, 11900, 12000, rs + 2000, ns - 2000, ns - 2000);
	CHECK_EQ_INT(nspans, 26);
	for (int i = 0; i < 26 && i < nspans; i++)
		check_pipe_span(i, i, &cli, 10000, 11000);
	if (nspans >= 26)
		CHECK_EQ_INT(spans[25].s.incomplete, 1);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 74);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 55 + 50);
	nq = pipe_requests(rq, sizeof(rq), 100, 1);
	ns = pipe_responses(rs, sizeof(rs), 100, 1);
	data_ev(t, &cli, SONDE_DIR_EGRESS, 13000, 13100, rq, nq, nq);
	data_ev(t, &cli, SONDE_DIR_INGRESS, 13900, 14000, rs, ns, ns);
	CHECK_EQ_INT(nspans, 27);
	if (nspans >= 27)
		check_pipe_span(26, 100, &cli, 13000, 14000);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 74);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 105);
	check_stats_zero_errors(st);
	conn__free(t);
}

/* ---- 4. sockets that predate the agent ---- */

static void test_unknown_role(void)
{
	struct conn_table *t = new_ct(64);
	struct sock a = { NO_PID, 21, 4, 0x4000, SONDE_ROLE_UNKNOWN, 8000, 52000 };
	struct sock b = { NO_PID, 22, 6, 0x4100, SONDE_ROLE_UNKNOWN, 8000, 52001 };
	struct sock c = { NO_PID, 23, 8, 0x4200, SONDE_ROLE_UNKNOWN, 52002, 9000 };
	const struct conn_stats *st = conn__stats(t);

	/* a: a request being read first: a server. */
	rd(t, &a, 1000, "GET /u HTTP/1.1\r\n\r\n");
	wr(t, &a, 1200, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1200, &a, "GET", "/u", "/u", 200);

	/* b: the agent started while a request was being served: the first
	 * thing seen is the response being written. */
	wr(t, &b, 2000, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 1);
	rd(t, &b, 3000, "GET /v HTTP/1.1\r\n\r\n");
	wr(t, &b, 3300, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n");
	rd(t, &b, 4000, "GET /w HTTP/1.1\r\n\r\n");
	wr(t, &b, 4400, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3) {
		CHECK_SPAN(1, SPAN_SERVER, 3000, 3300, &b, "GET", "/v", "/v", 302);
		CHECK_SPAN(2, SPAN_SERVER, 4000, 4400, &b, "GET", "/w", "/w", 200);
	}

	/* c: a request being written first: a client (span from write entry). */
	io(t, &c, SONDE_DIR_EGRESS, 5000, 5050, "PUT /z HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	rd(t, &c, 5600, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 4);
	if (nspans >= 4)
		CHECK_SPAN(3, SPAN_CLIENT, 5000, 5600, &c, "PUT", "/z", "/z", 200);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 1);
	CHECK_EQ_INT(st->conns_unsupported, 0);
	CHECK_EQ_INT(conn__count(t), 3);
	check_stats_zero_errors(st);
	conn__free(t);

	/* Mid-body fragments of unknown role: up to 7 undecidable chunks are
	 * waited out, the 8th gives up. */
	t = new_ct(64);
	st = conn__stats(t);
	struct sock d = { NO_PID, 24, 10, 0x4300, SONDE_ROLE_UNKNOWN, 8000, 52003 };
	struct sock e = { NO_PID, 25, 12, 0x4400, SONDE_ROLE_UNKNOWN, 8000, 52004 };

	for (int i = 0; i < 7; i++)
		rd(t, &d, 100 + (uint64_t)i, "some body text, not a start line");
	CHECK_EQ_INT(conn__count(t), 1);
	CHECK_EQ_INT(nignores, 0);
	rd(t, &d, 1000, "GET /late HTTP/1.1\r\n\r\n");
	wr(t, &d, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1100, &d, "GET", "/late", "/late", 200);
	for (int i = 0; i < 8; i++)
		rd(t, &e, 2000 + (uint64_t)i, "some body text, not a start line");
	CHECK_EQ_INT(nignores, 1);
	CHECK_EQ_INT(ign_sk, e.sk);
	CHECK_EQ_INT(st->conns_unsupported, 1);
	CHECK_EQ_INT(conn__count(t), 1);
	conn__free(t);
}

/* ---- 5. HEAD ---- */

static void test_head(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 31, 13, 0x5000, SONDE_ROLE_SERVER, 80, 53000 };
	const struct conn_stats *st = conn__stats(t);

	rd(t, &k, 1000, "HEAD /file HTTP/1.1\r\n\r\n");
	wr(t, &k, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	rd(t, &k, 2000, "GET /file HTTP/1.1\r\n\r\n");
	wr(t, &k, 2100, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
	CHECK_EQ_INT(nspans, 2);
	if (nspans == 2) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1100, &k, "HEAD", "/file", "/file", 200);
		CHECK_SPAN(1, SPAN_SERVER, 2000, 2100, &k, "GET", "/file", "/file", 200);
	}
	check_stats_zero_errors(st);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	conn__free(t);
}

/* ---- 6. capture gap ---- */

static void test_capture_gap(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 41, 14, 0x6000, SONDE_ROLE_SERVER, 80, 54000 };
	const struct conn_stats *st = conn__stats(t);
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
	size_t hl = strlen(head);
	static char big[200000];

	memset(big, 'x', sizeof(big));
	memcpy(big, head, hl);
	rd(t, &k, 1000, "GET /big HTTP/1.1\r\n\r\n");
	/* Only the headers were captured; the syscall moved all of it. */
	data_ev(t, &k, SONDE_DIR_EGRESS, 1500, 9000, big, hl, hl + 100000);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 9000, &k, "GET", "/big", "/big", 200);
		CHECK_EQ_INT(spans[0].s.incomplete, 0);
	}
	rd(t, &k, 10000, "GET /next HTTP/1.1\r\n\r\n");
	wr(t, &k, 10100, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2)
		CHECK_SPAN(1, SPAN_SERVER, 10000, 10100, &k, "GET", "/next", "/next", 200);

	/* Headers in one write, a body of 100000 in a later write of which only
	 * 1000 bytes were captured. */
	rd(t, &k, 20000, "GET /big2 HTTP/1.1\r\n\r\n");
	wr(t, &k, 20100, head);
	CHECK_EQ_INT(nspans, 2);
	data_ev(t, &k, SONDE_DIR_EGRESS, 20200, 20300, big + hl, 1000, 100000);
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3)
		CHECK_SPAN(2, SPAN_SERVER, 20000, 20300, &k, "GET", "/big2", "/big2", 200);
	rd(t, &k, 30000, "GET /next2 HTTP/1.1\r\n\r\n");
	wr(t, &k, 30100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 4);
	if (nspans >= 4)
		CHECK_SPAN(3, SPAN_SERVER, 30000, 30100, &k, "GET", "/next2", "/next2", 200);
	check_stats_zero_errors(st);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	conn__free(t);
}

/* ---- 7. close-delimited response ---- */

static void test_close_delimited(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 51, 15, 0x7000, SONDE_ROLE_SERVER, 80, 55000 };
	struct sock c = { NO_PID, 52, 16, 0x7100, SONDE_ROLE_CLIENT, 55001, 80 };
	const struct conn_stats *st = conn__stats(t);

	rd(t, &k, 1000, "GET /old HTTP/1.0\r\n\r\n");
	wr(t, &k, 1100, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npart1");
	wr(t, &k, 1700, "part2");
	rd(t, &k, 1800, "");	/* request-direction chunk: not a response chunk */
	CHECK_EQ_INT(nspans, 0);
	close_ev(t, &k, 5000);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1700, &k, "GET", "/old", "/old", 200);
		CHECK_EQ_INT(spans[0].s.version_minor, 0);
	}
	CHECK_EQ_INT(conn__count(t), 0);

	/* The client side of the same: the last response read ends it. */
	io(t, &c, SONDE_DIR_EGRESS, 6000, 6010, "GET /old HTTP/1.0\r\n\r\n");
	rd(t, &c, 6500, "HTTP/1.0 200 OK\r\n\r\nabc");
	rd(t, &c, 6900, "def");
	close_ev(t, &c, 8000);
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2)
		CHECK_SPAN(1, SPAN_CLIENT, 6000, 6900, &c, "GET", "/old", "/old", 200);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 2);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	check_stats_zero_errors(st);
	/* closing an unknown connection is a no-op */
	close_ev(t, &c, 9000);
	CHECK_EQ_INT(nspans, 2);
	conn__free(t);
}

/* ---- inetd-style sockets and process exit ---- */

static void exit_ev(struct conn_table *t, uint32_t tgid, uint64_t ktime)
{
	conn__exit(t, tgid, ktime, false);
}

/* busybox httpd and inetd children read the request on fd 0 and write the
 * response on fd 1, both the same socket: one connection, one span. */
static void test_inetd_fds(void)
{
	struct conn_table *t = new_ct(64);
	struct sock in = { NO_PID, 61, 0, 0x8000, SONDE_ROLE_UNKNOWN, 8080, 56000 };
	struct sock out = in;
	const struct conn_stats *st = conn__stats(t);

	out.fd = 1;
	rd(t, &in, 1000, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
	wr(t, &out, 1500, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1500, &in, "GET", "/index.html", "/index.html", 200);
	CHECK_EQ_INT(conn__count(t), 1);
	/* closing stdin with stdout still open is filtered in the kernel; the
	 * close event comes with the last fd, whichever it is */
	close_ev(t, &out, 2000);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	conn__free(t);
}

/* A client that exits without close(2) after reading only the head of an
 * error response (busybox wget on a 404): the span is still reported. */
static void test_process_exit(void)
{
	struct conn_table *t = new_ct(64);
	struct sock c1 = { NO_PID, 71, 3, 0x9000, SONDE_ROLE_CLIENT, 57000, 8080 };
	struct sock c2 = { NO_PID, 71, 4, 0x9100, SONDE_ROLE_CLIENT, 57001, 8080 };
	struct sock other = { NO_PID - 1, 72, 3, 0x9200, SONDE_ROLE_CLIENT, 57002, 8080 };
	const struct conn_stats *st = conn__stats(t);

	io(t, &c1, SONDE_DIR_EGRESS, 1000, 1010, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
	rd(t, &c1, 1200, "HTTP/1.1 404 Not Found\r\nContent-Length: 500\r\n\r\n<html>");
	io(t, &c2, SONDE_DIR_EGRESS, 1300, 1310, "GET /never HTTP/1.1\r\n\r\n");
	io(t, &other, SONDE_DIR_EGRESS, 1400, 1410, "GET /other HTTP/1.1\r\n\r\n");
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(conn__count(t), 3);
	exit_ev(t, c1.tgid, 1500);
	CHECK_EQ_INT(nspans, 2);
	for (int i = 0; i < nspans; i++) {
		const struct span *sp = &spans[i].s;

		if (sp->tuple.sport == c1.sport) {
			/* the head came: the client chose not to read the body */
			CHECK_SPAN(i, SPAN_CLIENT, 1000, 1200, &c1, "GET", "/missing", "/missing", 404);
			CHECK_EQ_INT(sp->incomplete, 1);
			CHECK_EQ_STR(sp->error_type, "404");
		} else {
			/* no response at all: the client gave up on it */
			CHECK_SPAN(i, SPAN_CLIENT, 1300, 1500, &c2, "GET", "/never", "/never", 0);
			CHECK_EQ_STR(sp->error_type, "request_cancelled");
		}
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].failed, 1);
	CHECK_EQ_INT(conn__count(t), 1);	/* the other process keeps its own */
	exit_ev(t, c1.tgid, 1600);		/* again, and an unknown process: no-ops */
	exit_ev(t, 12345, 1600);
	CHECK_EQ_INT(conn__count(t), 1);
	exit_ev(t, other.tgid, 1700);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3)
		CHECK_SPAN(2, SPAN_CLIENT, 1400, 1700, &other, "GET", "/other", "/other", 0);
	conn__free(t);
}

/* Many idle keep-alive connections: the table's buckets grow with them
 * (from 256), every connection is still found for its next request and by
 * its process's exit, and a connection whose messages are all complete
 * holds no parser (a request split over two chunks after the idle spell
 * still parses whole). */
static void test_many_idle(void)
{
	enum { N = 3000, PROCS = 3 };
	struct conn_table *t = new_ct(4 * N);
	const struct conn_stats *st = conn__stats(t);
	static struct sock ks[N];
	long before;
#ifndef __SANITIZE_ADDRESS__
	size_t heap0 = mallinfo2().uordblks, per;
#endif

	for (int i = 0; i < N; i++) {
		ks[i] = (struct sock){ NO_PID - 100 - (uint32_t)(i % PROCS), 80, 5 + i,
				       0x100000 + (uint64_t)i * 64, SONDE_ROLE_SERVER,
				       8080, (uint16_t)(20000 + i) };
		rd(t, &ks[i], 1000 + 10 * (uint64_t)i, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
		wr(t, &ks[i], 1005 + 10 * (uint64_t)i, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	}
	CHECK_EQ_INT(total_spans, N);
	CHECK_EQ_INT(conn__count(t), N);
#ifndef __SANITIZE_ADDRESS__
	/* the entry, its http_state and its share of the buckets: no parser
	 * (872 bytes each way) or request queue kept once a message is done */
	per = (mallinfo2().uordblks - heap0) / N;
	printf("  %d idle connections: %zu bytes of heap each\n", N, per);
	CHECK(per < 400);
#endif
	before = total_spans;
	for (int i = 0; i < N; i++) {
		rd(t, &ks[i], 100000 + 10 * (uint64_t)i, "GET /again HTTP/1.1\r\n");
		rd(t, &ks[i], 100001 + 10 * (uint64_t)i, "Host: x\r\n\r\n");
		wr(t, &ks[i], 100005 + 10 * (uint64_t)i, "HTTP/1.1 204 No Content\r\n\r\n");
	}
	CHECK_EQ_INT(total_spans - before, N);
	CHECK_EQ_INT(st->conns_evicted, 0);
	check_stats_zero_errors(st);
	conn__exit(t, NO_PID - 100, 900000, false);
	CHECK_EQ_INT(conn__count(t), N - N / PROCS);
	conn__exit(t, NO_PID - 101, 900000, false);
	conn__exit(t, NO_PID - 102, 900000, false);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(total_spans - before, N);	/* nothing was open */
	conn__free(t);
}

/* ---- connection failures under client requests ---- */

static void io_end_ev(struct conn_table *t, const struct sock *k, uint8_t dir, int32_t err,
		      uint64_t ktime)
{
	struct sonde_io_end_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.hdr.op = SONDE_OP_IO_END;
	ev.hdr.flags = take_loss();
	ev.hdr.size = sizeof(ev);
	ev.hdr.ktime = ktime;
	ev.sk = k->sk;
	ev.tgid = k->tgid;
	ev.tid = k->tid;
	ev.fd = k->fd;
	ev.err = err;
	ev.dir = dir;
	ev.syscall = dir == SONDE_DIR_INGRESS ? SONDE_SYS_READ : SONDE_SYS_WRITE;
	conn__io_end(t, &ev);
}

#define CHECK_FAILED(i, start_, end_, k, target_, status_, incomplete_, error_)        \
	do {                                                                           \
		CHECK_SPAN(i, SPAN_CLIENT, start_, end_, k, "GET", target_, target_, status_); \
		CHECK_EQ_INT(spans[i].s.incomplete, incomplete_);                      \
		CHECK_EQ_STR(spans[i].s.error_type, error_);                           \
	} while (0)

static void test_connection_failures(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 81, 3, 0xa000, SONDE_ROLE_CLIENT, 58000, 8080 };
	struct sock srv = { NO_PID, 82, 4, 0xa100, SONDE_ROLE_SERVER, 8080, 58001 };
	struct sock pre = { NO_PID, 83, 5, 0xa200, SONDE_ROLE_UNKNOWN, 58002, 8080 };
	const struct conn_stats *st = conn__stats(t);

	/* the server hangs up before answering */
	io(t, &k, SONDE_DIR_EGRESS, 1000, 1010, "GET /a HTTP/1.1\r\n\r\n");
	io_end_ev(t, &k, SONDE_DIR_INGRESS, 0, 2000);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_FAILED(0, 1000, 2000, &k, "/a", 0, 0, "connection_closed");
	/* the close that follows reports nothing more */
	close_ev(t, &k, 2100);
	CHECK_EQ_INT(nspans, 1);

	/* reset in the middle of a body: the status is kept, the span failed,
	 * and the transport error wins over the status's */
	reset_seen();
	io(t, &k, SONDE_DIR_EGRESS, 3000, 3010, "GET /b HTTP/1.1\r\n\r\n");
	rd(t, &k, 3200, "HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\n0123456789");
	io_end_ev(t, &k, SONDE_DIR_INGRESS, ECONNRESET, 3300);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_FAILED(0, 3000, 3300, &k, "/b", 503, 1, "connection_reset");

	/* the connection lives on (a half-closed peer): the parsers start over */
	reset_seen();
	io(t, &k, SONDE_DIR_EGRESS, 3400, 3410, "GET /c HTTP/1.1\r\n\r\n");
	rd(t, &k, 3500, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_FAILED(0, 3400, 3500, &k, "/c", 200, 0, "");

	/* an idle keep-alive connection closed by the server: nothing failed */
	reset_seen();
	io_end_ev(t, &k, SONDE_DIR_INGRESS, 0, 3600);
	CHECK_EQ_INT(nspans, 0);

	/* a body delimited by the end of the connection ends well at EOF */
	io(t, &k, SONDE_DIR_EGRESS, 4000, 4010, "GET /d HTTP/1.0\r\n\r\n");
	rd(t, &k, 4100, "HTTP/1.0 200 OK\r\n\r\nall of it");
	CHECK_EQ_INT(nspans, 0);
	io_end_ev(t, &k, SONDE_DIR_INGRESS, 0, 4200);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_FAILED(0, 4000, 4100, &k, "/d", 200, 0, "");
	close_ev(t, &k, 4300);
	CHECK_EQ_INT(nspans, 1);

	/* pipelined requests, the send of the third fails: all three failed */
	reset_seen();
	io(t, &k, SONDE_DIR_EGRESS, 5000, 5010, "GET /e1 HTTP/1.1\r\n\r\nGET /e2 HTTP/1.1\r\n\r\n");
	io_end_ev(t, &k, SONDE_DIR_EGRESS, EPIPE, 5100);
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2) {
		CHECK_FAILED(0, 5000, 5100, &k, "/e1", 0, 0, "connection_reset");
		CHECK_FAILED(1, 5000, 5100, &k, "/e2", 0, 0, "connection_reset");
	}
	close_ev(t, &k, 5200);

	/* timeout and unreachable, from the kernel's errno */
	reset_seen();
	io(t, &k, SONDE_DIR_EGRESS, 6000, 6010, "GET /f HTTP/1.1\r\n\r\n");
	io_end_ev(t, &k, SONDE_DIR_INGRESS, ETIMEDOUT, 6100);
	io(t, &k, SONDE_DIR_EGRESS, 6200, 6210, "GET /g HTTP/1.1\r\n\r\n");
	io_end_ev(t, &k, SONDE_DIR_INGRESS, EHOSTUNREACH, 6300);
	io(t, &k, SONDE_DIR_EGRESS, 6400, 6410, "GET /h HTTP/1.1\r\n\r\n");
	io_end_ev(t, &k, SONDE_DIR_INGRESS, ECONNABORTED, 6500);
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3) {
		CHECK_FAILED(0, 6000, 6100, &k, "/f", 0, 0, "timeout");
		CHECK_FAILED(1, 6200, 6300, &k, "/g", 0, 0, "host_unreachable");
		CHECK_FAILED(2, 6400, 6500, &k, "/h", 0, 0, "connection_reset");
	}
	/* the client gives up itself: its close ends the request */
	io(t, &k, SONDE_DIR_EGRESS, 6600, 6610, "GET /i HTTP/1.1\r\n\r\n");
	close_ev(t, &k, 7600);
	CHECK_EQ_INT(nspans, 4);
	if (nspans >= 4)
		CHECK_FAILED(3, 6600, 7600, &k, "/i", 0, 0, "request_cancelled");

	/* a socket older than the agent, found to be a client by its bytes */
	reset_seen();
	io(t, &pre, SONDE_DIR_EGRESS, 8000, 8010, "GET /j HTTP/1.1\r\n\r\n");
	io_end_ev(t, &pre, SONDE_DIR_INGRESS, ECONNRESET, 8100);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_FAILED(0, 8000, 8100, &pre, "/j", 0, 0, "connection_reset");
	close_ev(t, &pre, 8200);

	/* server side: a client hanging up is not a failed server span, and an
	 * unknown connection is a no-op */
	reset_seen();
	rd(t, &srv, 9000, "GET /k HTTP/1.1\r\n\r\n");
	io_end_ev(t, &srv, SONDE_DIR_INGRESS, 0, 9100);
	io_end_ev(t, &srv, SONDE_DIR_INGRESS, ECONNRESET, 9100);
	io_end_ev(t, &k, SONDE_DIR_INGRESS, ECONNRESET, 9100);
	CHECK_EQ_INT(nspans, 0);
	close_ev(t, &srv, 9200);
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 1);	/* /k: a server request never answered */
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].failed, 9);
	CHECK_EQ_INT(conn__count(t), 0);
	check_stats_zero_errors(st);
	conn__free(t);
}

/* ---- 8. not HTTP ---- */

static void test_not_http(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 61, 17, 0x8000, SONDE_ROLE_SERVER, 443, 56000 };
	struct sock c = { NO_PID, 62, 18, 0x8100, SONDE_ROLE_CLIENT, 56001, 5432 };
	const struct conn_stats *st = conn__stats(t);
	/* (TLS records wait for the plaintext: see test_tls) */
	static const uint8_t ssh[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
	static const uint8_t pg[] = { 0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f };

	data_ev(t, &k, SONDE_DIR_INGRESS, 900, 1000, ssh, sizeof(ssh) - 1, 517);
	CHECK_EQ_INT(nignores, 1);
	CHECK_EQ_INT(ign_tgid, k.tgid);
	CHECK_EQ_INT(ign_fd, k.fd);
	CHECK_EQ_INT(ign_sk, k.sk);
	CHECK_EQ_INT(st->conns_unsupported, 1);
	CHECK_EQ_INT(conn__count(t), 0);
	/* An event already in flight for the ignored socket: harmless. The
	 * table keeps no tombstone, so it is classified afresh and handed
	 * back once more (idempotent for the kernel side). */
	data_ev(t, &k, SONDE_DIR_EGRESS, 1100, 1200, ssh, sizeof(ssh) - 1, 3000);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(nignores, 2);
	CHECK_EQ_INT(ign_sk, k.sk);
	CHECK_EQ_INT(st->conns_unsupported, 2);
	close_ev(t, &k, 1300);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(nspans, 0);

	/* A client speaking the postgres protocol (SSLRequest): followed by
	 * the database glue (dbconn.c), not handed back. */
	int before = nignores;

	data_ev(t, &c, SONDE_DIR_EGRESS, 2000, 2100, pg, sizeof(pg), sizeof(pg));
	CHECK_EQ_INT(nignores, before);
	CHECK_EQ_INT(conn__count(t), 1);
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 0);
	check_stats_zero_errors(st);
	conn__free(t);
}

/* ---- TLS: plaintext from the uprobes, ciphertext from the syscalls ---- */

/* A plaintext chunk from SSL_read/SSL_write (SONDE_F_TLS). */
static void tls_ev(struct conn_table *t, const struct sock *k, uint8_t dir, uint64_t ktime,
		   const char *s)
{
	evbuf_tls = 1;
	data_ev(t, k, dir, ktime - 100, ktime, s, strlen(s), strlen(s));
	evbuf_tls = 0;
}

/* A socket handed back as unsupported whose next record (already on its way
 * when the kernel was told) is recognised: the ignore is undone, once, for
 * that socket only; a socket that stays unsupported is not taken back. */
static void test_unignore(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 71, 17, 0x9000, SONDE_ROLE_SERVER, 8080, 56100 };
	struct sock o = { NO_PID, 72, 18, 0x9100, SONDE_ROLE_SERVER, 8080, 56101 };
	static const uint8_t ssh[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";

	reset_seen();
	data_ev(t, &o, SONDE_DIR_INGRESS, 800, 850, ssh, sizeof(ssh) - 1, sizeof(ssh) - 1);
	data_ev(t, &k, SONDE_DIR_INGRESS, 900, 1000, ssh, sizeof(ssh) - 1, sizeof(ssh) - 1);
	CHECK_EQ_INT(nignores, 2);
	CHECK_EQ_INT(nunignores, 0);
	rd(t, &k, 1100, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
	wr(t, &k, 1200, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nunignores, 1);
	CHECK_EQ_INT(unign_sk, k.sk);
	CHECK_EQ_INT(nspans, 1);
	rd(t, &k, 1300, "GET /y HTTP/1.1\r\nHost: h\r\n\r\n");
	CHECK_EQ_INT(nunignores, 1);	/* once */
	data_ev(t, &o, SONDE_DIR_INGRESS, 1400, 1450, ssh, sizeof(ssh) - 1, sizeof(ssh) - 1);
	CHECK_EQ_INT(nunignores, 1);	/* still unsupported: stays handed back */
	conn__free(t);
}

/* Data records carry no addresses or names: the connection's SONDE_OP_CONN
 * record gives them, once. Without it (lost, or the connection forgotten
 * since), the table asks the kernel side (hooks.meta) and counts it. */
static void test_meta(void)
{
	struct conn_table *t = new_ct(64);
	const struct conn_stats *st = conn__stats(t);
	struct sock k = { NO_PID, 81, 22, 0xa000, SONDE_ROLE_SERVER, 8080, 56200 };
	struct sock m = { NO_PID, 82, 23, 0xa100, SONDE_ROLE_SERVER, 8080, 56201 };

	/* one SONDE_OP_CONN, then records without it: named from it */
	meta_ev(t, &k);
	no_meta = 1;
	rd(t, &k, 1000, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
	wr(t, &k, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_INT(spans[0].s.tuple.sport, 8080);
	CHECK_EQ_INT(spans[0].s.tuple.dport, 56200);
	CHECK_EQ_STR(spans[0].s.comm, COMM);
	CHECK_EQ_INT(nmetas, 0);
	CHECK_EQ_INT(st->conns_meta_missing, 0);

	/* none at all: the kernel side is asked, once per connection */
	rd(t, &m, 2000, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
	wr(t, &m, 2100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	rd(t, &m, 2200, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
	wr(t, &m, 2300, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	no_meta = 0;
	CHECK_EQ_INT(nmetas, 1);
	CHECK_EQ_INT(meta_sk, m.sk);
	CHECK_EQ_INT(st->conns_meta_missing, 1);
	CHECK_EQ_INT(nspans, 3);
	CHECK_EQ_INT(spans[1].s.tuple.sport, 7777);
	CHECK_EQ_INT(spans[2].s.tuple.dport, 56999);
	CHECK_EQ_STR(spans[2].s.comm, "from-kernel");
	conn__free(t);
}

/* --comm: a connection of another process name is handed back at its
 * SONDE_OP_CONN record, before any of its bytes are looked at. */
static void test_comm_filter(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 91, 24, 0xb000, SONDE_ROLE_SERVER, 8080, 56300 };
	struct sock m = { NO_PID, 92, 25, 0xb100, SONDE_ROLE_SERVER, 8080, 56301 };

	conn__set_comm(t, "other");
	rd(t, &k, 1000, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
	wr(t, &k, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(nignores, 1);	/* once: then a tombstone drops its records */
	CHECK_EQ_INT(ign_sk, k.sk);
	CHECK_EQ_INT(conn__count(t), 1);
	conn__set_comm(t, COMM);
	rd(t, &m, 2000, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
	wr(t, &m, 2100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_STR(spans[0].s.target, "/b");
	CHECK_EQ_INT(nignores, 1);
	conn__free(t);
}

static void test_tls(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 71, 19, 0x9000, SONDE_ROLE_SERVER, 443, 56100 };
	struct sock g = { NO_PID, 72, 20, 0x9100, SONDE_ROLE_CLIENT, 56101, 443 };
	struct sock p = { NO_PID, 73, 21, 0x9200, SONDE_ROLE_CLIENT, 56102, 587 };
	const struct conn_stats *st = conn__stats(t);
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
	static const uint8_t peek[] = { 0x16 };
	static const uint8_t appdata[] = { 0x17, 0x03, 0x03, 0x00, 0x20, 0xaa, 0xbb };
	static const char banner[] = "SSH-2.0-OpenSSH_9.2p1\r\n";
	static const char ehlo[] = "EHLO mail.example\r\n";

	/* nginx peeks at one byte, then the ClientHello is read by OpenSSL
	 * before the uprobes bind the socket: neither is given up on. */
	data_ev(t, &k, SONDE_DIR_INGRESS, 900, 1000, peek, sizeof(peek), 1);
	data_ev(t, &k, SONDE_DIR_INGRESS, 1100, 1200, hello, sizeof(hello), 517);
	CHECK_EQ_INT(nignores, 0);
	CHECK_EQ_INT(st->conns_unsupported, 0);
	CHECK_EQ_INT(conn__count(t), 1);

	/* The plaintext: a span marked TLS. */
	tls_ev(t, &k, SONDE_DIR_INGRESS, 2000, "GET /a/1 HTTP/1.1\r\nHost: x\r\n\r\n");
	/* ciphertext still in flight for the bound socket: skipped */
	data_ev(t, &k, SONDE_DIR_INGRESS, 2050, 2060, appdata, sizeof(appdata), 40);
	tls_ev(t, &k, SONDE_DIR_EGRESS, 2500, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	CHECK_SPAN(0, SPAN_SERVER, 2000, 2500, &k, "GET", "/a/1", "/a/{id}", 201);
	CHECK_EQ_INT(spans[0].s.tls, 1);
	CHECK_EQ_INT(nignores, 0);

	/* A TLS stack without uprobes (Go, rustls): given up on after 8 records. */
	for (int i = 0; i < 7; i++)
		data_ev(t, &g, SONDE_DIR_EGRESS, 3000 + i * 10, 3005 + i * 10, appdata, sizeof(appdata), 40);
	CHECK_EQ_INT(nignores, 0);
	data_ev(t, &g, SONDE_DIR_EGRESS, 3100, 3105, appdata, sizeof(appdata), 40);
	CHECK_EQ_INT(nignores, 1);
	CHECK_EQ_INT(ign_sk, g.sk);
	CHECK_EQ_INT(st->conns_unsupported, 1);

	/* TLS plaintext of another protocol: kept (the kernel cannot be told
	 * to stop the plaintext), counted once, never parsed as HTTP. */
	data_ev(t, &p, SONDE_DIR_EGRESS, 3900, 4000, banner, sizeof(banner) - 1, sizeof(banner) - 1);
	evbuf_tls = 1;
	data_ev(t, &p, SONDE_DIR_EGRESS, 4000, 4100, ehlo, sizeof(ehlo) - 1, sizeof(ehlo) - 1);
	data_ev(t, &p, SONDE_DIR_EGRESS, 4150, 4200, ehlo, sizeof(ehlo) - 1, sizeof(ehlo) - 1);
	evbuf_tls = 0;
	CHECK_EQ_INT(nignores, 2);	/* the wire banner, handed back */
	CHECK_EQ_INT(st->conns_unsupported, 3);
	CHECK_EQ_INT(nspans, 1);
	CHECK_EQ_INT(conn__count(t), 2);	/* the server and the SMTP-over-TLS client */
	check_stats_zero_errors(st);
	conn__free(t);
}

/* ---- 9. fd reused with another socket ---- */

static void test_fd_reuse(void)
{
	struct conn_table *t = new_ct(64);
	struct sock a = { NO_PID, 71, 19, 0x9000, SONDE_ROLE_SERVER, 80, 57000 };
	struct sock b = { NO_PID, 71, 19, 0x9100, SONDE_ROLE_SERVER, 80, 57001 };
	const struct conn_stats *st = conn__stats(t);

	rd(t, &a, 1000, "GET /from-a HTTP/1.1\r\n\r\n");
	rd(t, &b, 2000, "GET /from-b HTTP/1.1\r\n\r\n");
	CHECK_EQ_INT(conn__count(t), 2);
	wr(t, &b, 2500, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_SERVER, 2000, 2500, &b, "GET", "/from-b", "/from-b", 200);
	wr(t, &a, 3000, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2)
		CHECK_SPAN(1, SPAN_SERVER, 1000, 3000, &a, "GET", "/from-a", "/from-a", 404);
	close_ev(t, &a, 4000);
	CHECK_EQ_INT(conn__count(t), 1);
	close_ev(t, &b, 4000);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	conn__free(t);
}

/* ---- 10. bounded table and idle sweep ---- */

static void test_table_bound(void)
{
	struct conn_table *t = new_ct(16);
	const struct conn_stats *st = conn__stats(t);
	struct sock k[40];
	size_t maxcount = 0;

	for (int i = 0; i < 40; i++) {
		k[i] = (struct sock){ NO_PID, 81, 100 + i, 0xa000 + (uint64_t)i, SONDE_ROLE_SERVER, 80,
				      (uint16_t)(58000 + i) };
		/* one unanswered request each, last activity at 1000 * (i + 1) */
		rd(t, &k[i], 1000 * (uint64_t)(i + 1), "GET / HTTP/1.1\r\n\r\n");
		if (conn__count(t) > maxcount)
			maxcount = conn__count(t);
	}
	CHECK_EQ_INT(maxcount, 16);
	CHECK_EQ_INT(conn__count(t), 16);
	/* the 24 least recently used went, each with its pending request */
	CHECK_EQ_INT(st->conns_evicted, 24);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 24);
	/* an evicted connection answering is an unmatched response */
	wr(t, &k[0], 50000, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 1);
	CHECK_EQ_INT(st->conns_evicted, 25);	/* made room for k[0] again: k[24] went */
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 25);
	/* the survivors (25..39) still work */
	wr(t, &k[31], 51000, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_SERVER, 32000, 51000, &k[31], "GET", "/", "/", 200);
	CHECK_EQ_INT(conn__count(t), 16);

	/* LRU, oldest first: 25..30, 32..39 (last_ns 26000..40000), k[0]
	 * (50000), k[31] (51000). Idle before 30000: 25..28 (26000..29000). */
	conn__sweep(t, 30000);
	CHECK_EQ_INT(st->conns_evicted, 29);
	CHECK_EQ_INT(conn__count(t), 12);
	/* before 38000: 29, 30, 32..36 */
	conn__sweep(t, 38000);
	CHECK_EQ_INT(st->conns_evicted, 36);
	CHECK_EQ_INT(conn__count(t), 5);
	/* the boundary is strict: last_ns == idle_before stays */
	conn__sweep(t, 38000);
	CHECK_EQ_INT(conn__count(t), 5);
	conn__sweep(t, 50001);
	CHECK_EQ_INT(conn__count(t), 1);
	CHECK_EQ_INT(st->conns_evicted, 40);
	conn__sweep(t, UINT64_MAX);
	CHECK_EQ_INT(conn__count(t), 0);
	CHECK_EQ_INT(st->conns_evicted, 41);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 1);
	conn__free(t);

	/* max_conns 0 is clamped to 1 */
	t = new_ct(0);
	st = conn__stats(t);
	rd(t, &k[0], 1000, "GET / HTTP/1.1\r\n\r\n");
	rd(t, &k[1], 2000, "GET / HTTP/1.1\r\n\r\n");
	CHECK_EQ_INT(conn__count(t), 1);
	CHECK_EQ_INT(st->conns_evicted, 1);
	conn__free(t);
}

/* ---- 11. malformed requests ---- */

static void test_parse_errors(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { NO_PID, 91, 20, 0xb000, SONDE_ROLE_SERVER, 80, 59000 };
	const struct conn_stats *st = conn__stats(t);

	rd(t, &k, 1000, "GET /ok HTTP/1.1\r\n\r\n");
	wr(t, &k, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* a header line with a space in its name */
	rd(t, &k, 2000, "GET /bad HTTP/1.1\r\nBad Header: 1\r\n\r\n");
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].parse_errors, 1);	/* bad header */
	rd(t, &k, 3000, "GET /good HTTP/1.1\r\n\r\n");
	wr(t, &k, 3200, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* a version the parser does not take */
	rd(t, &k, 4000, "GET /h2 HTTP/2.0\r\n\r\n");
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].parse_errors, 2);	/* + bad start */
	rd(t, &k, 5000, "GET /good2 HTTP/1.1\r\nHost: a\r\n");
	rd(t, &k, 5100, "\r\n");
	wr(t, &k, 5300, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* a response with a bad Content-Length */
	rd(t, &k, 6000, "GET /cl HTTP/1.1\r\n\r\n");
	wr(t, &k, 6100, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n");
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].parse_errors, 3);	/* + bad header */
	/* that response is lost: its request is dropped, so the next pair
	 * matches up (it used to report /cl with the next response) */
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 1);
	rd(t, &k, 7000, "GET /after HTTP/1.1\r\n\r\n");
	wr(t, &k, 7100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* a response whose head is too long */
	rd(t, &k, 8000, "GET /long HTTP/1.1\r\n\r\n");
	{
		static char longhead[HTTP1_MAX_LINE + 64];

		snprintf(longhead, sizeof(longhead), "HTTP/1.1 200 OK\r\nX-Big: ");
		memset(longhead + strlen(longhead), 'a', HTTP1_MAX_LINE + 10);
		longhead[sizeof(longhead) - 1] = 0;
		wr(t, &k, 8100, longhead);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].parse_errors, 4);	/* + too long */
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 2);
	rd(t, &k, 9000, "GET /after2 HTTP/1.1\r\n\r\n");
	wr(t, &k, 9100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	/* an error inside a body whose head was delivered: a span still */
	rd(t, &k, 10000, "GET /chunked HTTP/1.1\r\n\r\n");
	wr(t, &k, 10100, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].parse_errors, 5);	/* + bad header */
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 2);
	CHECK_EQ_INT(nspans, 6);
	if (nspans >= 6) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1100, &k, "GET", "/ok", "/ok", 200);
		CHECK_SPAN(1, SPAN_SERVER, 3000, 3200, &k, "GET", "/good", "/good", 200);
		CHECK_SPAN(2, SPAN_SERVER, 5000, 5300, &k, "GET", "/good2", "/good2", 200);
		CHECK_SPAN(3, SPAN_SERVER, 7000, 7100, &k, "GET", "/after", "/after", 200);
		CHECK_SPAN(4, SPAN_SERVER, 9000, 9100, &k, "GET", "/after2", "/after2", 200);
		CHECK_SPAN(5, SPAN_SERVER, 10000, 10100, &k, "GET", "/chunked", "/chunked", 200);
	}
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, 6);
	conn__free(t);
}

/* ---- 12. service name of a live process, route normalisation ---- */

static void test_service_and_route(void)
{
	struct conn_table *t = new_ct(64);
	struct sock k = { 0, 0, 21, 0xc000, SONDE_ROLE_SERVER, 80, 60000 };
	char exe[512], *base;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	k.tgid = (uint32_t)getpid();
	k.tid = k.tgid;
	CHECK(n > 0);
	exe[n > 0 ? n : 0] = 0;
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;

	rd(t, &k, 1000, "GET /users/42?x=1 HTTP/1.1\r\n\r\n");
	wr(t, &k, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	rd(t, &k, 2000, "GET http://example.com/orders/550e8400-e29b-41d4-a716-446655440000/items HTTP/1.1\r\n\r\n");
	wr(t, &k, 2100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1100, &k, "GET", "/users/42?x=1", "/users/{id}", 200);
		CHECK_EQ_STR(spans[0].s.service, base);
		CHECK_SPAN(1, SPAN_SERVER, 2000, 2100, &k, "GET",
			   "http://example.com/orders/550e8400-e29b-41d4-a716-446655440000/items",
			   "/orders/{id}/items", 200);
	}
	conn__free(t);
}

/* ---- upgrades, tunnels, a body cut by close ---- */

static void test_upgrade_tunnel(void)
{
	struct conn_table *t = new_ct(64);
	struct sock c = { NO_PID, 101, 30, 0xe000, SONDE_ROLE_CLIENT, 60001, 3128 };
	struct sock w = { NO_PID, 102, 31, 0xe100, SONDE_ROLE_SERVER, 80, 60002 };
	struct sock x = { NO_PID, 103, 32, 0xe200, SONDE_ROLE_SERVER, 80, 60003 };
	const struct conn_stats *st = conn__stats(t);

	/* CONNECT through a proxy: the span ends with the 200, the TLS bytes
	 * that follow are not parsed (it used to end at the last tunnel read,
	 * on close). */
	io(t, &c, SONDE_DIR_EGRESS, 100, 200, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
	rd(t, &c, 300, "HTTP/1.1 200 Connection established\r\n\r\n");
	io(t, &c, SONDE_DIR_EGRESS, 350, 400, "\x16\x03\x01 client hello");
	rd(t, &c, 500, "\x16\x03\x03 server hello");
	io(t, &c, SONDE_DIR_EGRESS, 550, 600, "GET / HTTP/1.1\r\n\r\n");	/* inside the tunnel */
	rd(t, &c, 700, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	close_ev(t, &c, 900);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1)
		CHECK_SPAN(0, SPAN_CLIENT, 100, 300, &c, "CONNECT", "example.com:443", "/example.com:443", 200);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);

	/* A refused CONNECT is an ordinary response; the connection goes on. */
	struct sock c2 = { NO_PID, 104, 33, 0xe300, SONDE_ROLE_CLIENT, 60004, 3128 };

	io(t, &c2, SONDE_DIR_EGRESS, 1000, 1010, "CONNECT a:443 HTTP/1.1\r\n\r\n");
	rd(t, &c2, 1100, "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno");
	io(t, &c2, SONDE_DIR_EGRESS, 1200, 1210, "GET http://a/x HTTP/1.1\r\n\r\n");
	rd(t, &c2, 1300, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3) {
		CHECK_SPAN(1, SPAN_CLIENT, 1000, 1100, &c2, "CONNECT", "a:443", "/a:443", 407);
		CHECK_SPAN(2, SPAN_CLIENT, 1200, 1300, &c2, "GET", "http://a/x", "/x", 200);
	}

	/* WebSocket: one span for the upgrade, frames are not HTTP and are
	 * not parse errors (the request side used to count one). */
	rd(t, &w, 2000, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
	wr(t, &w, 2100, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
	rd(t, &w, 2200, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
	wr(t, &w, 2300, "\x81\x05hello");
	rd(t, &w, 2400, "GET /not-http-anymore HTTP/1.1\r\n\r\n");
	wr(t, &w, 2500, "HTTP/1.1 200 OK\r\n\r\n");
	close_ev(t, &w, 2600);
	CHECK_EQ_INT(nspans, 4);
	if (nspans >= 4)
		CHECK_SPAN(3, SPAN_SERVER, 2000, 2100, &w, "GET", "/ws", "/ws", 101);

	/* The client hung up before the body was through: the span is still
	 * reported at close, flagged incomplete, ending at the last write. */
	rd(t, &x, 3000, "GET /cut HTTP/1.1\r\n\r\n");
	wr(t, &x, 3100, "HTTP/1.1 500 Oops\r\nContent-Length: 1000\r\n\r\nabc");
	wr(t, &x, 3200, "def");
	close_ev(t, &x, 4000);
	CHECK_EQ_INT(nspans, 5);
	if (nspans >= 5) {
		CHECK_SPAN(4, SPAN_SERVER, 3000, 3200, &x, "GET", "/cut", "/cut", 500);
		CHECK_EQ_INT(spans[4].s.incomplete, 1);
	}
	check_stats_zero_errors(st);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unmatched, 0);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].unanswered, 0);
	CHECK_EQ_INT(conn__count(t), 1);	/* c2 */
	conn__free(t);
}

/* ---- 13. garbage ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static const char *const frags[] = {
	"GET / HTTP/1.1\r\n\r\n",
	"HEAD /x HTTP/1.1\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
	"PUT /q HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"CONNECT host:443 HTTP/1.1\r\n\r\n",
	"GET /users/42 HTTP/1.0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nbody",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
	"\r\n",
	"Host: a\r\n",
	"GET",
	"HTTP/1.",
};

static void test_garbage(void)
{
	struct conn_table *t = new_ct(8);
	const struct conn_stats *st = conn__stats(t);
	static uint8_t buf[6000];
	struct sock socks[6];
	uint64_t now = 1;

	for (int i = 0; i < 6; i++)
		socks[i] = (struct sock){ i < 3 ? NO_PID : NO_PID - 1, 1, i % 4, 0xd000 + (uint64_t)(i % 3),
					  0, 80, 1 };
	for (long n = 0; n < 100000; n++) {
		struct sock k = socks[rnd() % 6];
		uint32_t r = rnd() % 100;
		size_t cap = 0, len;

		now += rnd() % 1000;
		if (r < 5) {
			close_ev(t, &k, now);
			continue;
		}
		if (r < 7) {
			conn__sweep(t, now - 5000 > now ? 0 : now - 5000);
			continue;
		}
		if (r < 8) {
			conn__exit(t, k.tgid, now, false);
			continue;
		}
		if (r < 10) {
			static const int32_t errs[] = { 0, ECONNRESET, ETIMEDOUT, EPIPE, EHOSTUNREACH };

			io_end_ev(t, &k, (uint8_t)(1 + rnd() % 2), errs[rnd() % 5], now);
			continue;
		}
		k.role = (uint8_t)(rnd() % 4);	/* 3 is not a valid role */
		k.tid = rnd() % 4;
		if (rnd() % 2) {
			/* a few HTTP-ish fragments, maybe cut or corrupted */
			int parts = 1 + (int)(rnd() % 3);

			for (int p = 0; p < parts; p++) {
				const char *f = frags[rnd() % (sizeof(frags) / sizeof(frags[0]))];
				size_t fl = strlen(f);

				if (rnd() % 4 == 0)
					fl = rnd() % (fl + 1);
				if (cap + fl > sizeof(buf))
					break;
				memcpy(buf + cap, f, fl);
				cap += fl;
			}
			if (cap && rnd() % 8 == 0) {
				size_t at = rnd() % cap;

				buf[at] = (uint8_t)rnd();
			}
		} else {
			size_t lim = rnd() % 8 == 0 ? sizeof(buf) : 64;

			cap = rnd() % lim;
			for (size_t i = 0; i < cap; i++)
				buf[i] = (uint8_t)rnd();
		}
		len = cap;
		if (rnd() % 4 == 0) {
			uint32_t lim = rnd() % 2 ? 16 : 200000;

			len += rnd() % lim;
		}
		/* arguments drawn in a fixed order: same run with any compiler */
		uint8_t dir = (uint8_t)(rnd() % 3);	/* 0 is not a valid dir */
		uint64_t enter = now - rnd() % 2000;

		data_ev(t, &k, dir, enter, now, buf, cap, len);
		if (conn__count(t) > 8)
			check_failures++;
	}
	printf("garbage: %ld spans, %llu unmatched, %llu not-http, %llu evicted, errors %llu\n",
	       total_spans, (unsigned long long)st->proto[PROTO_HTTP1].unmatched,
	       (unsigned long long)st->conns_unsupported, (unsigned long long)st->conns_evicted,
	       (unsigned long long)st->proto[PROTO_HTTP1].parse_errors);
	CHECK(conn__count(t) <= 8);
	CHECK_EQ_INT(st->proto[PROTO_HTTP1].spans, total_spans);
	CHECK(total_spans > 0);
	conn__free(t);
}

/* ---- records lost with a full ring (SONDE_F_LOSS) ---- */

static void test_lost(void)
{
	struct conn_table *t = new_ct(64);
	const struct conn_stats *st = conn__stats(t);
	const struct proto_stats *h = &st->proto[PROTO_HTTP1];
	struct sock srv = { NO_PID, 401, 7, 0xe000, SONDE_ROLE_SERVER, 8080, 51000 };
	struct sock cli = { NO_PID - 2, 402, 8, 0xe100, SONDE_ROLE_CLIENT, 52000, 8080 };
	struct sock cli2 = { NO_PID - 3, 403, 9, 0xe200, SONDE_ROLE_CLIENT, 52001, 8080 };

	/* server: /a answered; /b's response lost; the next record says so:
	 * /b is lost, /c pairs with its own response */
	rd(t, &srv, 1000, "GET /a HTTP/1.1\r\n\r\n");
	wr(t, &srv, 1100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	rd(t, &srv, 2000, "GET /b HTTP/1.1\r\n\r\n");
	next_loss = 1;
	rd(t, &srv, 3000, "GET /c HTTP/1.1\r\n\r\n");
	wr(t, &srv, 3300, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 2);
	if (nspans >= 2) {
		CHECK_SPAN(0, SPAN_SERVER, 1000, 1100, &srv, "GET", "/a", "/a", 200);
		CHECK_SPAN(1, SPAN_SERVER, 3000, 3300, &srv, "GET", "/c", "/c", 404);
	}
	CHECK_EQ_INT(h->lost, 1);
	/* a loss mark in the middle of a response: the rest of it is not a
	 * new message; the next request pairs again */
	rd(t, &srv, 4000, "GET /d HTTP/1.1\r\n\r\n");
	wr(t, &srv, 4100, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
	next_loss = 1;
	wr(t, &srv, 4200, "56789");
	rd(t, &srv, 5000, "GET /e HTTP/1.1\r\n\r\n");
	wr(t, &srv, 5100, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	CHECK_EQ_INT(nspans, 3);
	if (nspans >= 3)
		CHECK_SPAN(2, SPAN_SERVER, 5000, 5100, &srv, "GET", "/e", "/e", 200);
	CHECK_EQ_INT(h->lost, 2);

	/* client: the response and more were lost; the close says so: the
	 * request is lost, not request_cancelled */
	nspans = 0;
	wr(t, &cli, 6000, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
	next_loss = 1;
	close_ev(t, &cli, 7000);
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(h->lost, 3);
	/* client: a reset after lost records: lost, not connection_reset */
	wr(t, &cli2, 8000, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n");
	next_loss = 1;
	io_end_ev(t, &cli2, SONDE_DIR_INGRESS, ECONNRESET, 9000);
	CHECK_EQ_INT(nspans, 0);
	CHECK_EQ_INT(h->lost, 4);
	CHECK_EQ_INT(h->failed, 0);
	/* without the mark the same reset is a failure, as before */
	wr(t, &cli2, 10000, "GET /z HTTP/1.1\r\nHost: a\r\n\r\n");
	io_end_ev(t, &cli2, SONDE_DIR_INGRESS, ECONNRESET, 11000);
	CHECK_EQ_INT(nspans, 1);
	if (nspans >= 1) {
		CHECK_EQ_STR(spans[0].s.target, "/z");
		CHECK_EQ_STR(spans[0].s.error_type, "connection_reset");
	}
	CHECK_EQ_INT(h->failed, 1);
	CHECK_EQ_INT(h->lost, 4);
	conn__free(t);
}

int main(void)
{
	test_trace_context();
	test_server_split_request();
	test_redacted_target();
	test_client();
	test_keepalive_pipelined();
	test_pipeline_splits();
	test_pipeline_deep();
	test_pipeline_gap();
	test_unknown_role();
	test_head();
	test_capture_gap();
	test_close_delimited();
	test_not_http();
	test_tls();
	test_fd_reuse();
	test_table_bound();
	test_parse_errors();
	test_lost();
	test_service_and_route();
	test_upgrade_tunnel();
	test_inetd_fds();
	test_process_exit();
	test_many_idle();
	test_connection_failures();
	test_garbage();
	test_unignore();
	test_meta();
	test_comm_filter();
	span_builder__free(builder);
	tracectx__free(tc);
	return check_summary("test_conn");
}
