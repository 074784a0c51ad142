/* Unit tests for the HTTP/1.x stream parser: every fixture is fed whole, split
 * in two at every position, byte by byte and through the byte-wise reference
 * (http1__feed_bytewise), and must give the same log. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/http1/http1.h"

/* What the callbacks saw, as text, so runs compare with one strcmp. */
struct rec {
	char log[16384];
	size_t n;
	const char *head_ret;	/* per on_head: 'H' HEAD, 'T' tunnel, other 0 */
	int heads;
	int open;		/* on_head seen, on_complete not yet */
	int violations;		/* callback ordering / termination broken */
	int feed_errors;
};

static void rec_printf(struct rec *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rec_printf(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (r->n >= sizeof(r->log) - 1)
		return;
	va_start(ap, fmt);
	k = vsnprintf(r->log + r->n, sizeof(r->log) - r->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		r->n += (size_t)k;
	if (r->n > sizeof(r->log) - 1)
		r->n = sizeof(r->log) - 1;
}

static int t_on_head(void *ctx, const struct http1_message *m)
{
	struct rec *r = ctx;
	int ret = 0;

	if (r->open)
		r->violations++;
	r->open = 1;
	if (!memchr(m->method, 0, sizeof(m->method)) ||
	    !memchr(m->target, 0, sizeof(m->target)))
		r->violations++;
	if (m->status)
		rec_printf(r, "H %u 1.%u", m->status, m->version_minor);
	else
		rec_printf(r, "H %s %s 1.%u", m->method, m->target, m->version_minor);
	/* recorded fields only when present, so older fixtures keep their logs */
	if (m->traceparent[0] || m->traceparent_lines)
		rec_printf(r, " tp[%u]=%s", m->traceparent_lines, m->traceparent);
	if (m->tracestate[0])
		rec_printf(r, " ts=%s", m->tracestate);
	if (m->request_id[0])
		rec_printf(r, " rid=%s", m->request_id);
	if (m->tracking_id[0])
		rec_printf(r, " tid=%s", m->tracking_id);
	if (m->correlation_id[0])
		rec_printf(r, " cid=%s", m->correlation_id);
	if (m->field_cut)
		rec_printf(r, " cut=%02x", m->field_cut);
	rec_printf(r, " cl=%lld ch=%u cc=%u%s%s|", (long long)m->content_length,
		   m->chunked, m->conn_close, m->target_truncated ? " trunc" : "",
		   m->head_incomplete ? " inc" : "");
	if (r->head_ret && (size_t)r->heads < strlen(r->head_ret)) {
		if (r->head_ret[r->heads] == 'H')
			ret = HTTP1_HEAD_NO_BODY;
		else if (r->head_ret[r->heads] == 'T')
			ret = HTTP1_HEAD_TUNNEL;
	}
	r->heads++;
	return ret;
}

static void t_on_complete(void *ctx, const struct http1_message *m)
{
	struct rec *r = ctx;

	(void)m;
	if (!r->open)
		r->violations++;
	r->open = 0;
	rec_printf(r, "C|");
}

static void t_on_error(void *ctx, enum http1_error err)
{
	struct rec *r = ctx;

	if (++r->feed_errors > 1)
		r->violations++;
	rec_printf(r, "E%d|", (int)err);
}

static const struct http1_callbacks t_cb = {
	.on_head = t_on_head,
	.on_complete = t_on_complete,
	.on_error = t_on_error,
};

struct feed {
	const char *d;
	size_t n;	/* captured bytes */
	size_t len;	/* transferred bytes; 0 means n */
};

#define F(s) { (s), sizeof(s) - 1, 0 }
#define FG(s, gap) { (s), sizeof(s) - 1, sizeof(s) - 1 + (gap) }
#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* http1__feed, or the byte-wise reference it must agree with */
static void (*feed_fn)(struct http1_parser *, const uint8_t *, size_t, size_t,
		       const struct http1_callbacks *, void *) = http1__feed;

/* Exact-size heap copy so ASan catches any read past cap. */
static void do_feed(struct http1_parser *p, struct rec *r, const char *d, size_t cap,
		    size_t len)
{
	uint8_t *buf = malloc(cap ? cap : 1);

	memcpy(buf, d, cap);
	r->feed_errors = 0;
	feed_fn(p, buf, cap, len, &t_cb, r);
	free(buf);
}

enum { SPLIT_NONE = -1, SPLIT_BYTES = -2 };

static void run(struct rec *r, enum http1_stream s, const struct feed *f, int nf,
		int do_close, const char *head_ret, int split_feed, size_t split_at)
{
	struct http1_parser p;
	int k;
	size_t j;

	memset(r, 0, sizeof(*r));
	r->head_ret = head_ret;
	http1__init(&p, s);
	for (k = 0; k < nf; k++) {
		size_t cap = f[k].n, len = f[k].len ? f[k].len : f[k].n;

		if (split_feed == SPLIT_BYTES && cap) {
			for (j = 0; j < cap; j++)
				do_feed(&p, r, f[k].d + j, 1, j == cap - 1 ? 1 + len - cap : 1);
		} else if (split_feed == k) {
			do_feed(&p, r, f[k].d, split_at, split_at);
			do_feed(&p, r, f[k].d + split_at, cap - split_at, len - split_at);
		} else {
			do_feed(&p, r, f[k].d, cap, len);
		}
	}
	if (do_close) {
		r->feed_errors = 0;
		http1__close(&p, &t_cb, r);
	}
}

static struct rec ref_rec, alt_rec;

/* Whole feeds must give `expect`; every split and byte-wise feeding must
 * give the same log. Huge scripts are split at a stride plus near edges. */
static void check_script(const char *name, enum http1_stream s, const struct feed *f,
			 int nf, int do_close, const char *head_ret, const char *expect)
{
	size_t total = 0, i, stride;
	int k, bad = 0;

	for (k = 0; k < nf; k++)
		total += f[k].n;
	stride = total <= 16384 ? 1 : total / 1024;

	run(&ref_rec, s, f, nf, do_close, head_ret, SPLIT_NONE, 0);
	CHECK_EQ_STR(ref_rec.log, expect);
	CHECK_EQ_INT(ref_rec.violations, 0);
	if (strcmp(ref_rec.log, expect))
		fprintf(stderr, "  in %s\n", name);

	for (k = 0; k < nf; k++) {
		for (i = 1; i < f[k].n; i++) {
			if (stride > 1 && i > 64 && f[k].n - i > 64 && i % stride)
				continue;
			run(&alt_rec, s, f, nf, do_close, head_ret, k, i);
			if (strcmp(alt_rec.log, ref_rec.log) || alt_rec.violations) {
				if (!bad++)
					fprintf(stderr, "%s: split feed %d at %zu: \"%s\"\n",
						name, k, i, alt_rec.log);
			}
		}
	}
	run(&alt_rec, s, f, nf, do_close, head_ret, SPLIT_BYTES, 0);
	if (strcmp(alt_rec.log, ref_rec.log) || alt_rec.violations) {
		if (!bad++)
			fprintf(stderr, "%s: byte-wise: \"%s\"\n", name, alt_rec.log);
	}
	feed_fn = http1__feed_bytewise;
	run(&alt_rec, s, f, nf, do_close, head_ret, SPLIT_NONE, 0);
	feed_fn = http1__feed;
	if (strcmp(alt_rec.log, ref_rec.log) || alt_rec.violations) {
		if (!bad++)
			fprintf(stderr, "%s: byte-wise reference: \"%s\"\n", name, alt_rec.log);
	}
	CHECK_EQ_INT(bad, 0);
}

#define REQ(name, feeds, expect) \
	check_script(name, HTTP1_REQUESTS, feeds, NF(feeds), 0, NULL, expect)
#define RESP(name, feeds, expect) \
	check_script(name, HTTP1_RESPONSES, feeds, NF(feeds), 0, NULL, expect)

#define OK_REQ "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n"
#define OK_REQ_LOG "H GET /ok 1.1 cl=-1 ch=0 cc=0|C|"
#define OK_RESP "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
#define OK_RESP_LOG "H 200 1.1 cl=2 ch=0 cc=0|C|"

static void test_requests(void)
{
	static const struct feed simple[] = {
		F("GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n"
		  "Accept: */*\r\n\r\n"),
	};
	static const struct feed query[] = {
		F("GET /search?q=hello%20world&lang=en HTTP/1.1\r\nHost: x\r\n\r\n"),
	};
	static const struct feed post[] = {
		F("POST /api/v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		  "content-length:  13 \r\n\r\n{\"a\":\"hello\"}GET /next HTTP/1.1\r\n\r\n"),
	};
	static const struct feed chunked[] = {
		F("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
		  "GET /after HTTP/1.1\r\n\r\n"),
	};
	static const struct feed pipelined[] = {
		F("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		  "POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
		  "DELETE /c?id=7 HTTP/1.1\r\nConnection: close\r\n\r\n"),
	};
	static const struct feed leading_crlf[] = {
		F("\r\n\r\nGET / HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
	};
	static const struct feed lf_only[] = {
		F("GET /lf HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc"
		  "POST /c HTTP/1.1\nTransfer-Encoding: chunked\n\n3\nxyz\n0\n\n"),
	};
	static const struct feed conn[] = {
		F("GET /1 HTTP/1.0\r\nConnection: Keep-Alive, Upgrade\r\n\r\n"
		  "GET /2 HTTP/1.0\r\n\r\n"
		  "GET /3 HTTP/1.1\r\nConnection: foo,CLOSE\r\n\r\n"
		  "GET /4 HTTP/1.1\r\nConnection: closed\r\n\r\n"
		  "GET /5 HTTP/1.1\r\nConnection:\t close \r\n\r\n"),
	};
	static const struct feed cl_list[] = {
		F("PUT /x HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello"),
	};
	static const struct feed connect[] = {
		F("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
		F("\x16\x03\x01\x02\x00tls"),
		F(OK_REQ),
	};
	static const struct feed asterisk[] = {
		F("OPTIONS * HTTP/1.1\r\n\r\nM-SEARCH * HTTP/1.1\r\n\r\n"),
	};

	REQ("simple", simple, "H GET / 1.1 cl=-1 ch=0 cc=0|C|");
	REQ("query", query, "H GET /search?q=hello%20world&lang=en 1.1 cl=-1 ch=0 cc=0|C|");
	REQ("post", post, "H POST /api/v1/items 1.1 cl=13 ch=0 cc=0|C|"
			  "H GET /next 1.1 cl=-1 ch=0 cc=0|C|");
	REQ("chunked request", chunked, "H POST /upload 1.1 cl=-1 ch=1 cc=0|C|"
					"H GET /after 1.1 cl=-1 ch=0 cc=0|C|");
	REQ("pipelined", pipelined, "H GET /a 1.1 cl=-1 ch=0 cc=0|C|"
				    "H POST /b 1.1 cl=4 ch=0 cc=0|C|"
				    "H DELETE /c?id=7 1.1 cl=-1 ch=0 cc=1|C|");
	REQ("leading crlf", leading_crlf, "H GET / 1.1 cl=-1 ch=0 cc=0|C|"
					  "H GET /b 1.1 cl=-1 ch=0 cc=0|C|");
	REQ("lf only", lf_only, "H GET /lf 1.1 cl=3 ch=0 cc=0|C|"
				"H POST /c 1.1 cl=-1 ch=1 cc=0|C|");
	REQ("connection", conn, "H GET /1 1.0 cl=-1 ch=0 cc=0|C|"
				"H GET /2 1.0 cl=-1 ch=0 cc=1|C|"
				"H GET /3 1.1 cl=-1 ch=0 cc=1|C|"
				"H GET /4 1.1 cl=-1 ch=0 cc=0|C|"
				"H GET /5 1.1 cl=-1 ch=0 cc=1|C|");
	REQ("content-length list", cl_list, "H PUT /x 1.1 cl=5 ch=0 cc=0|C|");
	REQ("connect", connect, "H CONNECT example.com:443 1.1 cl=-1 ch=0 cc=0|C|" OK_REQ_LOG);
	REQ("asterisk", asterisk, "H OPTIONS * 1.1 cl=-1 ch=0 cc=0|C|"
				  "H M-SEARCH * 1.1 cl=-1 ch=0 cc=0|C|");
}

static void test_responses(void)
{
	static const struct feed chunked[] = {
		F("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
		  "a\r\n0123456789\r\nA ; ext=\"q\"\r\nabcdefghij\r\n0;last=1\r\n"
		  "Expires: never\r\nX-T: w\r\n\r\n"
		  "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop"),
	};
	static const struct feed keepalive[] = {
		F("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
		  "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		F("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
		F("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n!"),
	};
	static const struct feed head[] = {
		F("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
		  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
	};
	static const struct feed cont[] = {
		F("HTTP/1.1 100 Continue\r\n\r\n"),
		F("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
	};
	static const struct feed no_body[] = {
		F("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
		  "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n"
		  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"),
	};
	static const struct feed upgrade[] = {
		F("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		  "Connection: Upgrade\r\n\r\n\x81\x05hello"),
		F(OK_RESP),
		FG("\x00\xff garbage", 100),
	};
	static const struct feed tunnel[] = {
		F("HTTP/1.1 200 Connection established\r\n\r\n"),
		F("\x16\x03\x01 data"),
		F(OK_RESP),
	};
	static const struct feed te_and_cl[] = {
		F("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "0\r\n\r\n" OK_RESP),
	};
	static const struct feed no_reason[] = {
		F("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx" "HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n"),
	};
	/* Close-delimited: body bytes that look like a status line, and gaps,
	 * are still body. */
	static const struct feed http10[] = {
		F("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"),
		FG("HTTP/1.1 200 OK\r\n", 5000),
		F("</html>"),
	};
	static const struct feed close_mid_body[] = {
		F("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
	};

	RESP("chunked response", chunked, "H 200 1.1 cl=-1 ch=1 cc=0|C|H 404 1.1 cl=3 ch=0 cc=0|C|");
	RESP("keep-alive", keepalive, "H 200 1.1 cl=5 ch=0 cc=0|C|H 201 1.1 cl=-1 ch=1 cc=0|C|"
				      "H 200 1.1 cl=0 ch=0 cc=0|C|H 200 1.0 cl=1 ch=0 cc=0|C|");
	check_script("head", HTTP1_RESPONSES, head, NF(head), 0, "H.",
		     "H 200 1.1 cl=1234 ch=0 cc=0|C|" OK_RESP_LOG);
	RESP("100 continue", cont, OK_RESP_LOG);
	RESP("204 304", no_body, "H 204 1.1 cl=0 ch=0 cc=0|C|H 304 1.1 cl=100 ch=0 cc=0|C|"
				 "H 200 1.1 cl=1 ch=0 cc=0|C|");
	RESP("101", upgrade, "H 101 1.1 cl=-1 ch=0 cc=0|C|");
	check_script("tunnel", HTTP1_RESPONSES, tunnel, NF(tunnel), 0, "T",
		     "H 200 1.1 cl=-1 ch=0 cc=0|C|");
	RESP("te and cl", te_and_cl, "H 200 1.1 cl=100 ch=1 cc=0|C|" OK_RESP_LOG);
	RESP("no reason", no_reason, "H 200 1.1 cl=1 ch=0 cc=0|C|H 500 1.1 cl=0 ch=0 cc=0|C|");
	check_script("http/1.0 close", HTTP1_RESPONSES, http10, NF(http10), 1, NULL,
		     "H 200 1.0 cl=-1 ch=0 cc=1|C|");
	/* An unfinished length-delimited body is dropped on close. */
	check_script("close mid body", HTTP1_RESPONSES, close_mid_body, NF(close_mid_body), 1,
		     NULL, "H 200 1.1 cl=10 ch=0 cc=0|");
}

static void test_gaps(void)
{
	static const struct feed big_body[] = {
		FG("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 100000),
		F(OK_RESP),
	};
	static const struct feed partial_body[] = {
		FG("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789", 10),
		F(OK_RESP),
	};
	/* Bodies spread over several syscalls, one fully uncaptured. */
	static const struct feed multi[] = {
		FG("HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n0123", 996),
		FG("", 1000),
		FG("abcd", 996),
		F(OK_RESP),
	};
	static const struct feed past_end[] = {
		FG("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234", 100),
		F("more-garbage\r\n"),
		F(OK_RESP),
	};
	static const struct feed chunked_gap[] = {
		FG("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n0123456789", 2000),
		F("abcdef\r\n0\r\n\r\n"),
		F(OK_RESP),
	};
	static const struct feed chunked_gap_exact[] = {
		FG("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n0123456789", 10),
		F("\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
	};
	static const struct feed close_gap[] = {
		FG("HTTP/1.1 200 OK\r\n\r\n<html>", 3000),
		F("rest"),
	};
	static const struct feed head_gap_req[] = {
		FG("GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nCookie: abc", 2000),
		F("def; more=cookie\r\n\r\nhello"),
		F("POST /y HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
	};
	static const struct feed target_gap[] = {
		FG("GET /aaaaaaaa", 500),
		F(OK_REQ),
	};
	static const struct feed method_gap[] = {
		FG("GE", 500),
		F(OK_REQ),
	};
	static const struct feed head_gap_resp[] = {
		FG("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: ng", 3000),
		F(OK_RESP),
	};
	static const struct feed status_gap[] = {
		FG("HTTP/1.1 2", 100),
		F(OK_RESP),
	};
	static const struct feed boundary_gap[] = {
		FG(OK_RESP, 700),	/* a whole next message lost */
		F("x\r\n\r\n"),
		F(OK_RESP),
	};

	RESP("big body gap", big_body, "H 200 1.1 cl=100000 ch=0 cc=0|C|" OK_RESP_LOG);
	RESP("partial body gap", partial_body, "H 200 1.1 cl=20 ch=0 cc=0|C|" OK_RESP_LOG);
	RESP("multi gap", multi, "H 200 1.1 cl=3000 ch=0 cc=0|C|" OK_RESP_LOG);
	RESP("gap past end", past_end, "H 200 1.1 cl=20 ch=0 cc=0|C|" OK_RESP_LOG);
	RESP("chunked gap", chunked_gap, "H 200 1.1 cl=-1 ch=1 cc=0|C|" OK_RESP_LOG);
	RESP("chunked gap exact", chunked_gap_exact,
	     "H 200 1.1 cl=-1 ch=1 cc=0|C|H 204 1.1 cl=-1 ch=0 cc=0|C|");
	check_script("close-delimited gap", HTTP1_RESPONSES, close_gap, NF(close_gap), 1, NULL,
		     "H 200 1.1 cl=-1 ch=0 cc=0|C|");
	REQ("head gap request", head_gap_req, "H GET /x 1.1 cl=5 ch=0 cc=0 inc|C|"
					      "H POST /y 1.1 cl=2 ch=0 cc=0|C|");
	REQ("target gap", target_gap, "H GET /aaaaaaaa 1.1 cl=-1 ch=0 cc=0 trunc inc|C|" OK_REQ_LOG);
	REQ("method gap", method_gap, OK_REQ_LOG);
	RESP("head gap response", head_gap_resp, "H 200 1.1 cl=-1 ch=1 cc=0 inc|C|" OK_RESP_LOG);
	RESP("status gap", status_gap, OK_RESP_LOG);
	RESP("boundary gap", boundary_gap, OK_RESP_LOG OK_RESP_LOG);
}

static void test_malformed(void)
{
	static const struct feed tls_req[] = {
		F("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
		F(OK_REQ),
	};
	static const struct feed ssh_resp[] = {
		F("SSH-2.0-OpenSSH_9.3\r\n"),
		F(OK_RESP),
	};
	static const struct feed bad_cl[] = {
		F("POST /x HTTP/1.1\r\nContent-Length: 12a\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed neg_cl[] = {
		F("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed empty_cl[] = {
		F("POST /x HTTP/1.1\r\nContent-Length: \r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed huge_cl[] = {
		F("POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed conflict_cl[] = {
		F("POST /x HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\nhello"),
		F(OK_REQ),
	};
	static const struct feed bad_chunk[] = {
		F("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nhello\r\n0\r\n\r\n"),
		F(OK_RESP),
	};
	static const struct feed bad_chunk_end[] = {
		F("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcx\r\n0\r\n\r\n"),
		F(OK_RESP),
	};
	static const struct feed te_req[] = {
		F("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed bare_cr_start[] = {
		F("GET / HTTP/1.1\rxx\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed bare_cr_hdr[] = {
		F("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed fold[] = {
		F("GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed space_colon[] = {
		F("GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed no_colon[] = {
		F("GET / HTTP/1.1\r\nhost\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed http2[] = {
		F("GET / HTTP/2.0\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed http09[] = {
		F("GET /\r\n"),
		F(OK_REQ),
	};
	static const struct feed long_method[] = {
		F("ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed bad_status[] = {
		F("HTTP/1.1 20x OK\r\n\r\n"),
		F(OK_RESP),
	};
	/* A resync guess that turns out wrong stays silent. */
	static const struct feed resync_quiet[] = {
		F("xx garbage"),
		F("ABC"),
		F("def\r\n"),
		F("HTTP/1.1 200 OK\r\n\r\n"),
		F(OK_REQ),
	};
	static const struct feed err_in_head_after_body[] = {
		F("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nbad line\r\n\r\n"),
		F(OK_REQ),
	};

	REQ("tls on request stream", tls_req, "E1|" OK_REQ_LOG);
	RESP("ssh on response stream", ssh_resp, "E1|" OK_RESP_LOG);
	REQ("bad content-length", bad_cl, "E2|" OK_REQ_LOG);
	REQ("negative content-length", neg_cl, "E2|" OK_REQ_LOG);
	REQ("empty content-length", empty_cl, "E2|" OK_REQ_LOG);
	REQ("huge content-length", huge_cl, "E2|" OK_REQ_LOG);
	REQ("conflicting content-length", conflict_cl, "E2|" OK_REQ_LOG);
	RESP("bad chunk size", bad_chunk, "H 200 1.1 cl=-1 ch=1 cc=0|E2|C|" OK_RESP_LOG);
	RESP("bad chunk end", bad_chunk_end, "H 200 1.1 cl=-1 ch=1 cc=0|E2|C|" OK_RESP_LOG);
	REQ("request te not chunked", te_req, "E2|" OK_REQ_LOG);
	REQ("bare cr start line", bare_cr_start, "E1|" OK_REQ_LOG);
	REQ("bare cr header", bare_cr_hdr, "E2|" OK_REQ_LOG);
	REQ("obs-fold", fold, "E2|" OK_REQ_LOG);
	REQ("space before colon", space_colon, "E2|" OK_REQ_LOG);
	REQ("no colon", no_colon, "E2|" OK_REQ_LOG);
	REQ("http/2 version", http2, "E1|" OK_REQ_LOG);
	REQ("http/0.9", http09, "E1|" OK_REQ_LOG);
	REQ("long method", long_method, "E1|" OK_REQ_LOG);
	RESP("bad status", bad_status, "E1|" OK_RESP_LOG);
	REQ("resync quiet", resync_quiet, "E1|" OK_REQ_LOG);
	REQ("error after good message", err_in_head_after_body,
	    "H GET /a 1.1 cl=-1 ch=0 cc=0|C|E2|" OK_REQ_LOG);
}

static char *fill(char *dst, int c, size_t n)
{
	memset(dst, c, n);
	return dst + n;
}

static char *put(char *dst, const char *s)
{
	size_t n = strlen(s);

	memcpy(dst, s, n);
	return dst + n;
}

static void test_limits(void)
{
	static char b1[4096], b2[4096], b3[4096], big[80000], t[1024], e[1024];
	static const size_t tl[] = { 255, 256, 300 };
	struct feed f[4];
	char *q;
	int i;

	/* A 9000-byte field line over three syscalls. */
	q = put(b1, "GET / HTTP/1.1\r\nX-Long: ");
	q = fill(q, 'a', 3000);
	f[0] = (struct feed){ b1, (size_t)(q - b1), 0 };
	fill(b2, 'a', 3000);
	f[1] = (struct feed){ b2, 3000, 0 };
	q = fill(b3, 'a', 3000);
	q = put(q, "\r\n\r\n");
	f[2] = (struct feed){ b3, (size_t)(q - b3), 0 };
	f[3] = (struct feed){ OK_REQ, sizeof(OK_REQ) - 1, 0 };
	check_script("long line", HTTP1_REQUESTS, f, 4, 0, NULL, "E3|" OK_REQ_LOG);

	/* A line of exactly HTTP1_MAX_LINE bytes is fine. */
	q = put(big, "GET / HTTP/1.1\r\nX-Long: ");
	q = fill(q, 'a', HTTP1_MAX_LINE - 8);
	q = put(q, "\r\n\r\n");
	f[0] = (struct feed){ big, (size_t)(q - big), 0 };
	check_script("max line", HTTP1_REQUESTS, f, 1, 0, NULL, "H GET / 1.1 cl=-1 ch=0 cc=0|C|");
	/* One byte more is not, whole in one feed (the line fast path) too. */
	q = put(big, "GET / HTTP/1.1\r\nX-Long: ");
	q = fill(q, 'a', HTTP1_MAX_LINE - 7);
	q = put(q, "\r\n\r\n");
	f[0] = (struct feed){ big, (size_t)(q - big), 0 };
	check_script("max line + 1", HTTP1_REQUESTS, f, 1, 0, NULL, "E3|");

	/* A head of exactly HTTP1_MAX_HEAD bytes (each line end counts one)
	 * is fine, one byte more is not: start line 15, 64 lines of 1011 and
	 * one of 816 or 817, the empty line 1. */
	for (i = 0; i < 2; i++) {
		int k;

		q = put(big, "GET / HTTP/1.1\r\n");
		for (k = 0; k < 65; k++) {
			q += sprintf(q, "X-Hdr-%02d: ", k);
			q = fill(q, 'b', k < 64 ? 1000 : 805 + (size_t)i);
			q = put(q, "\r\n");
		}
		q = put(q, "\r\n");
		f[0] = (struct feed){ big, (size_t)(q - big), 0 };
		check_script(i ? "max head + 1" : "max head", HTTP1_REQUESTS, f, 1, 0, NULL,
			     i ? "E3|" : "H GET / 1.1 cl=-1 ch=0 cc=0|C|");
	}

	/* 70 fields of ~1 KB: over HTTP1_MAX_HEAD. */
	q = put(big, "GET / HTTP/1.1\r\n");
	for (i = 0; i < 70; i++) {
		q += sprintf(q, "X-Hdr-%02d: ", i);
		q = fill(q, 'b', 1000);
		q = put(q, "\r\n");
	}
	q = put(q, "\r\n");
	f[0] = (struct feed){ big, (size_t)(q - big), 0 };
	check_script("long head", HTTP1_REQUESTS, f + 0, 1, 0, NULL, "E3|");
	f[1] = (struct feed){ OK_REQ, sizeof(OK_REQ) - 1, 0 };
	check_script("long head recovers", HTTP1_REQUESTS, f, 2, 0, NULL, "E3|" OK_REQ_LOG);

	/* Targets of 255 (fits), 256 and 300 bytes (cut to 255). */
	for (i = 0; i < 3; i++) {
		q = put(t, "GET /");
		q = fill(q, 'p', tl[i] - 1);
		q = put(q, " HTTP/1.1\r\n\r\n");
		f[0] = (struct feed){ t, (size_t)(q - t), 0 };
		q = put(e, "H GET /");
		q = fill(q, 'p', 254);
		q = put(q, i ? " 1.1 cl=-1 ch=0 cc=0 trunc|C|" : " 1.1 cl=-1 ch=0 cc=0|C|");
		*q = '\0';
		check_script("target length", HTTP1_REQUESTS, f, 1, 0, NULL, e);
	}
}

static void test_looks_like(void)
{
#define LR(s) http1__looks_like_request((const uint8_t *)(s), sizeof(s) - 1)
#define LS(s) http1__looks_like_response((const uint8_t *)(s), sizeof(s) - 1)
	CHECK_EQ_INT(LR("GET /x HTTP/1.1\r\nHost: a\r\n"), 1);
	CHECK_EQ_INT(LR("GET /x HTTP/1.0\n"), 1);
	CHECK_EQ_INT(LR("G"), 1);
	CHECK_EQ_INT(LR("GET"), 1);
	CHECK_EQ_INT(LR("GET "), 1);
	CHECK_EQ_INT(LR("GET /very-long-path-cut-by-capture"), 1);
	CHECK_EQ_INT(LR("GET /x "), 1);
	CHECK_EQ_INT(LR("GET /x HTT"), 1);
	CHECK_EQ_INT(LR("GET /x HTTP/1."), 1);
	CHECK_EQ_INT(LR("PROPFIND /dav HTTP/1.1\r\n"), 1);
	CHECK_EQ_INT(LR("CONNECT host:443 HTTP/1.1\r\n"), 1);
	CHECK_EQ_INT(LR("GET http://a/ HTTP/1.1\r\n"), 1);
	CHECK_EQ_INT(LR(""), 0);
	CHECK_EQ_INT(LR("get / HTTP/1.1\r\n"), 0);
	CHECK_EQ_INT(LR("GET  / HTTP/1.1\r\n"), 0);
	CHECK_EQ_INT(LR("GET /x HTTP/2.0\r\n"), 0);
	CHECK_EQ_INT(LR("GET /x HTTP/1.1 \r\n"), 0);
	CHECK_EQ_INT(LR("GET /x\r\n"), 0);
	CHECK_EQ_INT(LR("GET\r\n"), 0);
	CHECK_EQ_INT(LR("ABCDEFGHIJKLMNOP / HTTP/1.1\r\n"), 0);
	CHECK_EQ_INT(LR("HELLO world\r\n"), 0);
	CHECK_EQ_INT(LR("\x16\x03\x01"), 0);
	CHECK_EQ_INT(LR("{\"json\": 1}"), 0);
	CHECK_EQ_INT(LR("HTTP/1.1 200 OK\r\n"), 0);

	CHECK_EQ_INT(LS("HTTP/1.1 200 OK\r\n"), 1);
	CHECK_EQ_INT(LS("HTTP/1.0 404\r\n"), 1);
	CHECK_EQ_INT(LS("H"), 1);
	CHECK_EQ_INT(LS("HTTP/1"), 1);
	CHECK_EQ_INT(LS("HTTP/1.1 2"), 1);
	CHECK_EQ_INT(LS("HTTP/1.1 200"), 1);
	CHECK_EQ_INT(LS(""), 0);
	CHECK_EQ_INT(LS("HTTP/2 200\r\n"), 0);
	CHECK_EQ_INT(LS("HTTP/1.1 20x"), 0);
	CHECK_EQ_INT(LS("HTTP/1.1 2000"), 0);
	CHECK_EQ_INT(LS("HTTP/1.1 099 x"), 0);
	CHECK_EQ_INT(LS("http/1.1 200 OK"), 0);
	CHECK_EQ_INT(LS("GET / HTTP/1.1\r\n"), 0);
#undef LR
#undef LS
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random bytes, slices of real traffic and mutations of it, with random
 * capture gaps and closes: must terminate and keep the callback contract. */
static void test_random(void)
{
	static const char *corpus[] = {
		OK_REQ, OK_RESP,
		"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody until close",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
	};
	static struct rec rr[2];
	struct http1_parser p[2];
	uint8_t *buf;
	size_t n, cap, len, j;
	int i, s, violations = 0;
	uint64_t heads = 0;

	for (s = 0; s < 2; s++) {
		memset(&rr[s], 0, sizeof(rr[s]));
		http1__init(&p[s], s ? HTTP1_RESPONSES : HTTP1_REQUESTS);
	}
	for (i = 0; i < 200000; i++) {
		uint64_t r = rng();
		const char *src = corpus[r % (sizeof(corpus) / sizeof(corpus[0]))];
		size_t sl = strlen(src), off;

		n = (size_t)(rng() % 96);
		buf = malloc(n ? n : 1);
		switch ((r >> 8) % 4) {
		case 0:		/* pure noise */
			for (j = 0; j < n; j++)
				buf[j] = (uint8_t)rng();
			break;
		case 1:		/* noise biased to HTTP syntax characters */
			for (j = 0; j < n; j++)
				buf[j] = (uint8_t)"GET HTTP/1.1 200\r\n:0123456789abcdefABCDEF;, \t"[rng() % 46];
			break;
		default:	/* slice of real traffic, sometimes mutated */
			off = (size_t)(rng() % sl);
			if (n > sl - off)
				n = sl - off;
			memcpy(buf, src + off, n);
			if (((r >> 16) & 3) == 0 && n)
				buf[rng() % n] = (uint8_t)rng();
			break;
		}
		cap = n;
		len = n;
		if (((r >> 20) & 7) == 0) {
			cap = n ? (size_t)(rng() % (n + 1)) : 0;
			len = n + (size_t)(rng() % 3000);
		}
		for (s = 0; s < 2; s++) {
			rr[s].feed_errors = 0;
			rr[s].n = 0;	/* keep the log from filling up */
			http1__feed(&p[s], buf, cap, len, &t_cb, &rr[s]);
		}
		free(buf);
		if (((r >> 24) & 511) == 0) {
			for (s = 0; s < 2; s++) {
				http1__close(&p[s], &t_cb, &rr[s]);
				rr[s].open = 0;	/* dropped silently */
			}
		}
	}
	for (s = 0; s < 2; s++) {
		violations += rr[s].violations;
		heads += (uint64_t)rr[s].heads;
	}
	CHECK_EQ_INT(violations, 0);
	CHECK(heads > 1000);	/* the slices did get parsed */
}

/* Field values are scanned eight bytes at a time: a control byte (or DEL)
 * must be found at every offset within and across those words, a tab and
 * obs-text (>= 0x80) must pass, exactly as in the byte-wise path. */
static void test_value_scan(void)
{
	static const uint8_t bad[] = { 0x01, 0x1f, 0x7f, 0x00 };
	char req[256], name[64];

	for (size_t b = 0; b < sizeof(bad); b++) {
		for (int off = 0; off < 20; off++) {
			size_t n;
			struct feed f[2];

			n = (size_t)snprintf(req, sizeof(req), "GET /v HTTP/1.1\r\nX-Long: ");
			memset(req + n, 'a', (size_t)off);
			n += (size_t)off;
			req[n++] = (char)bad[b];
			n += (size_t)snprintf(req + n, sizeof(req) - n, "tail-bytes\r\n\r\n");
			f[0] = (struct feed){ req, n, 0 };
			f[1] = (struct feed)F(OK_REQ);
			snprintf(name, sizeof(name), "control 0x%02x at value offset %d", bad[b], off);
			check_script(name, HTTP1_REQUESTS, f, 2, 0, NULL, "E2|" OK_REQ_LOG);
		}
	}
	for (int off = 0; off < 20; off++) {
		size_t n;
		struct feed f[1];

		n = (size_t)snprintf(req, sizeof(req), "GET /v HTTP/1.1\r\nX-Long: ");
		memset(req + n, 'a', (size_t)off);
		n += (size_t)off;
		n += (size_t)snprintf(req + n, sizeof(req) - n, "\t\xc3\xa9\xff more\r\n\r\n");
		f[0] = (struct feed){ req, n, 0 };
		snprintf(name, sizeof(name), "tab and obs-text at value offset %d", off);
		check_script(name, HTTP1_REQUESTS, f, 1, 0, NULL, "H GET /v 1.1 cl=-1 ch=0 cc=0|C|");
	}
}

/* Start lines are taken whole when complete: edge cases must give exactly
 * what the byte path gives (check_script also feeds them byte by byte). */
static void test_start_line_edges(void)
{
	static const struct feed dbl_space[] = { F("GET  /x HTTP/1.1\r\n\r\n"), F(OK_REQ) };
	static const struct feed lower[] = { F("get /x HTTP/1.1\r\n\r\n"), F(OK_REQ) };
	static const struct feed ver2[] = { F("GET /x HTTP/1.12\r\n\r\n"), F(OK_REQ) };
	static const struct feed http2[] = { F("GET /x HTTP/2.0\r\n\r\n"), F(OK_REQ) };
	static const struct feed long_method[] = { F("ABCDEFGHIJKLMNOPQ /x HTTP/1.1\r\n\r\n"),
						   F(OK_REQ) };
	static const struct feed max_method[] = { F("ABCDEFGHIJKLMNO /x HTTP/1.0\r\n\r\n") };
	static const struct feed lf_only[] = { F("GET /lf HTTP/1.1\nHost: h\n\n") };
	static const struct feed no_reason[] = { F("HTTP/1.1 204\r\n\r\n"), F(OK_RESP) };
	static const struct feed four_digits[] = { F("HTTP/1.1 2000 OK\r\n\r\n"), F(OK_RESP) };
	static const struct feed lead_zero[] = { F("HTTP/1.1 020 X\r\n\r\n"), F(OK_RESP) };
	static const struct feed cr_in_reason[] = { F("HTTP/1.1 200 O\rK\r\n\r\n"), F(OK_RESP) };
	static const struct feed tab_reason[] = { F("HTTP/1.0 200 \tfine\x01\r\nContent-Length: 0\r\n\r\n") };

	REQ("double space", dbl_space, "E1|" OK_REQ_LOG);
	REQ("lowercase method", lower, "E1|" OK_REQ_LOG);
	REQ("version 1.12", ver2, "E1|" OK_REQ_LOG);
	REQ("HTTP/2.0 request line", http2, "E1|" OK_REQ_LOG);
	/* Whole feed only: split inside the method, the tail ("Q /x ...") is a
	 * plausible request of its own and resync rightly takes it. */
	run(&ref_rec, HTTP1_REQUESTS, long_method, NF(long_method), 0, NULL, SPLIT_NONE, 0);
	CHECK_EQ_STR(ref_rec.log, "E1|" OK_REQ_LOG);
	REQ("15-char method", max_method, "H ABCDEFGHIJKLMNO /x 1.0 cl=-1 ch=0 cc=1|C|");
	REQ("LF-only request", lf_only, "H GET /lf 1.1 cl=-1 ch=0 cc=0|C|");
	RESP("status without reason", no_reason, "H 204 1.1 cl=-1 ch=0 cc=0|C|" OK_RESP_LOG);
	RESP("four-digit status", four_digits, "E1|" OK_RESP_LOG);
	RESP("status with leading zero", lead_zero, "E1|" OK_RESP_LOG);
	RESP("bare CR in reason", cr_in_reason, "E1|" OK_RESP_LOG);
	RESP("tab and control byte in reason", tab_reason, "H 200 1.0 cl=0 ch=0 cc=1|C|");
}

static void test_misc(void)
{
	struct http1_parser p;
	struct rec *r = &ref_rec;

	CHECK(sizeof(struct http1_parser) <= 1024);
	printf("sizeof(struct http1_parser) = %zu\n", sizeof(struct http1_parser));

	/* NULL callbacks and a NULL data pointer with cap 0 are tolerated. */
	http1__init(&p, HTTP1_REQUESTS);
	http1__feed(&p, (const uint8_t *)OK_REQ, sizeof(OK_REQ) - 1, sizeof(OK_REQ) - 1,
		    &(struct http1_callbacks){ 0 }, NULL);
	http1__feed(&p, NULL, 0, 100, &t_cb, r);
	http1__close(&p, NULL, NULL);

	/* Parser reusable after close. */
	memset(r, 0, sizeof(*r));
	http1__init(&p, HTTP1_RESPONSES);
	http1__feed(&p, (const uint8_t *)"HTTP/1.0 200 OK\r\n\r\nxx", 21, 21, &t_cb, r);
	http1__close(&p, &t_cb, r);
	http1__feed(&p, (const uint8_t *)OK_RESP, sizeof(OK_RESP) - 1, sizeof(OK_RESP) - 1,
		    &t_cb, r);
	CHECK_EQ_STR(r->log, "H 200 1.0 cl=-1 ch=0 cc=1|C|" OK_RESP_LOG);
}

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define LONG70 "0123456789012345678901234567890123456789012345678901234567890123456789"

/* Trace context and request-id fields: recorded exactly, every split. */
static void test_fields(void)
{
	static const struct feed plain[] = { F("GET /a HTTP/1.1\r\ntraceparent: " TP "\r\n"
					       "tracestate: a=1 \r\nX-Request-ID:  r-42\r\n"
					       "Authorization: Bearer secret\r\nCookie: c=1\r\n\r\n") };
	static const struct feed upper[] = { F("POST /b HTTP/1.1\r\nTRACEPARENT:" TP "\r\n"
					       "X-TRACKING-ID: t7\r\nx-correlation-id:\tc9\t\r\n"
					       "Content-Length: 2\r\n\r\nok") };
	static const struct feed twice[] = { F("GET / HTTP/1.1\r\ntraceparent: " TP "\r\n"
					       "Traceparent: x\r\ntracestate: a=1\r\n"
					       "tracestate: b=2\r\nX-Request-ID: first\r\n"
					       "X-Request-ID: second\r\n\r\n") };
	static const struct feed toolong[] = { F("GET / HTTP/1.1\r\ntraceparent: " LONG70 "\r\n"
						 "x-request-id: " LONG70 "\r\n\r\n") };
	static const struct feed absent[] = { F("GET / HTTP/1.1\r\nHost: h\r\n"
						"traceparentx: no\r\nx-request: no\r\n\r\n"
						"GET /2 HTTP/1.1\r\nX-Request-ID: only-2nd\r\n\r\n") };
	static const struct feed resp[] = { F("HTTP/1.1 200 OK\r\ntraceparent: " TP "\r\n"
					      "Content-Length: 0\r\n\r\n") };
	/* whitespace after a ',' is dropped, however the line is cut */
	static const struct feed ts_ows[] = { F("GET / HTTP/1.1\r\ntracestate: a=1,  b=2 ,\t\r\n"
						"tracestate:  c=3 \r\n\r\n") };

	REQ("fields plain", plain, "H GET /a 1.1 tp[1]=" TP " ts=a=1 rid=r-42 cl=-1 ch=0 cc=0|C|");
	REQ("fields uppercase", upper,
	    "H POST /b 1.1 tp[1]=" TP " tid=t7 cid=c9 cl=2 ch=0 cc=0|C|");
	REQ("fields twice", twice,
	    "H GET / 1.1 tp[2]=" TP " ts=a=1,b=2 rid=first cl=-1 ch=0 cc=0|C|");
	REQ("fields too long", toolong,
	    "H GET / 1.1 tp[1]=" "012345678901234567890123456789012345678901234567890123456789012"
	    " rid=012345678901234567890123456789012345678901234567890123456789012 cut=05"
	    " cl=-1 ch=0 cc=0|C|");
	REQ("fields absent", absent,
	    "H GET / 1.1 cl=-1 ch=0 cc=0|C|H GET /2 1.1 rid=only-2nd cl=-1 ch=0 cc=0|C|");
	RESP("fields not recorded in responses", resp, "H 200 1.1 cl=0 ch=0 cc=0|C|");
	REQ("tracestate list whitespace", ts_ows, "H GET / 1.1 ts=a=1,b=2 ,,c=3 cl=-1 ch=0 cc=0|C|");
}

/* The fields the whole-line fast path interprets itself (plain
 * Content-Length, a one-token Connection) and those it leaves to the byte
 * path (lists, conflicts): every split gives the same log. */
static void test_fast_fields(void)
{
	static const struct feed cl_ows[] = { F("HTTP/1.1 200 OK\r\nContent-Length: \t0012 \r\n\r\n"
						"0123456789ab") };
	static const struct feed cl_same[] = { F("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
						 "content-length: 3\r\n\r\nabc") };
	static const struct feed cl_list[] = { F("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc") };
	static const struct feed cl_conflict[] = { F("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
						     "Content-Length: 4\r\n\r\nabcd") };
	static const struct feed cl_sign[] = { F("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc") };
	static const struct feed ka10[] = { F("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
					      "Content-Length: 2\r\n\r\nok"
					      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok") };
	static const struct feed close_upper[] = { F("HTTP/1.1 200 OK\r\nConnection:  CLOSE \r\n"
						     "Content-Length: 2\r\n\r\nok") };
	static const struct feed close_list[] = { F("HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\n"
						    "Content-Length: 2\r\n\r\nok") };
	static const struct feed not_close[] = { F("HTTP/1.1 200 OK\r\nConnection: closed\r\n"
						   "Content-Length: 2\r\n\r\nok") };

	RESP("fast: content-length with whitespace and zeros", cl_ows, "H 200 1.1 cl=12 ch=0 cc=0|C|");
	RESP("fast: content-length twice, same", cl_same, "H 200 1.1 cl=3 ch=0 cc=0|C|");
	RESP("fast: content-length list", cl_list, "H 200 1.1 cl=3 ch=0 cc=0|C|");
	RESP("fast: content-length conflict", cl_conflict, "E2|");
	RESP("fast: content-length with a sign", cl_sign, "E2|");
	RESP("fast: HTTP/1.0 keep-alive", ka10, "H 200 1.0 cl=2 ch=0 cc=0|C|H 200 1.0 cl=2 ch=0 cc=1|C|");
	RESP("fast: connection CLOSE", close_upper, "H 200 1.1 cl=2 ch=0 cc=1|C|");
	RESP("fast: connection list with close", close_list, "H 200 1.1 cl=2 ch=0 cc=1|C|");
	RESP("fast: connection closed is not close", not_close, "H 200 1.1 cl=2 ch=0 cc=0|C|");
}

int main(void)
{
	test_fields();
	test_fast_fields();
	test_requests();
	test_responses();
	test_gaps();
	test_malformed();
	test_limits();
	test_looks_like();
	test_random();
	test_misc();
	test_value_scan();
	test_start_line_edges();
	return check_summary("test_http1");
}
