/* Unit tests for user/span/tracectx.c: traceparent validation and formatting
 * with byte fixtures, and the choice of ids for server and client spans
 * (kernel record, incoming header, thread link, fresh trace). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "proto/http1/http1.h"
#include "span/tracectx.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static int parse(const char *s)
{
	struct tracectx_tp tp;

	return tracectx__parse(s, strlen(s), &tp);
}

static struct tracectx *tc;

/* A request head's trace headers as tracectx takes them. */
#define HDR(m)                                                                           \
	(&(struct tracectx_hdr){ .traceparent = (m).traceparent,                         \
				 .tracestate = (m).tracestate,                           \
				 .traceparent_lines = (m).traceparent_lines,             \
				 .traceparent_cut = ((m).field_cut >> HTTP1_F_TRACEPARENT) & 1, \
				 .tracestate_cut = ((m).field_cut >> HTTP1_F_TRACESTATE) & 1 })

static void test_parse(void)
{
	struct tracectx_tp tp;
	char out[TRACECTX_TP_LEN + 1], hex[33];
	const char *ok = "00-" TID "-" PID "-01";

	CHECK_EQ_INT(tracectx__parse(ok, strlen(ok), &tp), 0);
	CHECK_EQ_INT(tp.version, 0);
	CHECK_EQ_INT(tp.flags, 1);
	tracectx__hex(hex, tp.trace_id, 16);
	CHECK_EQ_STR(hex, TID);
	tracectx__hex(hex, tp.parent_id, 8);
	CHECK_EQ_STR(hex, PID);
	tracectx__format(out, tp.trace_id, tp.parent_id, tp.flags);
	out[TRACECTX_TP_LEN] = '\0';
	CHECK_EQ_STR(out, ok);

	CHECK_EQ_INT(parse("00-" TID "-" PID "-00"), 0);		/* not sampled */
	CHECK_EQ_INT(parse("00-" TID "-" PID "-ff"), 0);		/* unknown flags kept */
	CHECK_EQ_INT(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01"), -1);	/* uppercase */
	CHECK_EQ_INT(parse("00-" TID "-00F067AA0BA902B7-01"), -1);
	CHECK_EQ_INT(parse("00-" TID "-" PID "-0A"), -1);
	CHECK_EQ_INT(parse("00-00000000000000000000000000000000-" PID "-01"), -1);
	CHECK_EQ_INT(parse("00-" TID "-0000000000000000-01"), -1);
	CHECK_EQ_INT(parse("ff-" TID "-" PID "-01"), -1);		/* version ff */
	CHECK_EQ_INT(parse("0-" TID "-" PID "-01"), -1);
	CHECK_EQ_INT(parse("00-" TID "-" PID "-1"), -1);		/* short */
	CHECK_EQ_INT(parse("00-" TID "0-" PID "-01"), -1);		/* long trace id */
	CHECK_EQ_INT(parse("00-" TID "-" PID "-01-extra"), -1);	/* 00 has 4 fields */
	CHECK_EQ_INT(parse("00-" TID "-" PID "-01 "), -1);
	CHECK_EQ_INT(parse("00_" TID "-" PID "-01"), -1);
	CHECK_EQ_INT(parse("00-" TID "-" PID "_01"), -1);
	CHECK_EQ_INT(parse("00-" TID "-" PID "-0g"), -1);
	CHECK_EQ_INT(parse(""), -1);
	/* a future version: the 00 prefix is read, more fields after '-' */
	CHECK_EQ_INT(parse("01-" TID "-" PID "-01"), 0);
	CHECK_EQ_INT(parse("cc-" TID "-" PID "-01-what-the-future-holds"), 0);
	CHECK_EQ_INT(parse("cc-" TID "-" PID "-01x"), -1);
}

static void test_random(void)
{
	uint8_t a[16], b[16];
	int same = 0;

	for (int i = 0; i < 1000; i++) {
		tracectx__random_id(tc, a, 16);
		tracectx__random_id(tc, b, 16);
		same += memcmp(a, b, 16) == 0;
	}
	CHECK_EQ_INT(same, 0);
}

static struct http1_message msg(const char *tp, const char *ts)
{
	struct http1_message m;

	memset(&m, 0, sizeof(m));
	if (tp) {
		snprintf(m.traceparent, sizeof(m.traceparent), "%s", tp);
		m.traceparent_lines = 1;
	}
	if (ts)
		snprintf(m.tracestate, sizeof(m.tracestate), "%s", ts);
	return m;
}

static void test_choose(void)
{
	struct sonde_tuple t = { .family = 2, .sport = 8080, .dport = 40000 };
	struct sonde_tuple out_t = { .family = 2, .sport = 40001, .dport = 9090 };
	struct http1_message m = msg("00-" TID "-" PID "-01", "k=v");
	struct span_ctx srv, cli, cli2;
	struct sonde_trace_ctx_event ev;
	char hex[33];

	/* Incoming header, no kernel record: child of the header. */
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	tracectx__hex(hex, srv.trace_id, 16);
	CHECK_EQ_STR(hex, TID);
	tracectx__hex(hex, srv.parent_span_id, 8);
	CHECK_EQ_STR(hex, PID);
	CHECK_EQ_INT(srv.remote_parent, 1);
	CHECK_EQ_INT(srv.trace_flags, 1);
	CHECK_EQ_STR(srv.tracestate, "k=v");
	CHECK_EQ_INT(tracectx__stats(tc)->traceparent_invalid, 0);

	/* Same thread sends: child of the server span. */
	m = msg(NULL, NULL);
	tracectx__client_request(tc, 10, 11, &out_t, HDR(m), &cli);
	CHECK(memcmp(cli.trace_id, srv.trace_id, 16) == 0);
	CHECK(memcmp(cli.parent_span_id, srv.span_id, 8) == 0);
	CHECK(memcmp(cli.span_id, srv.span_id, 8) != 0);
	CHECK_EQ_INT(tracectx__stats(tc)->thread_linked, 1);

	/* Another thread: a new trace. */
	tracectx__client_request(tc, 10, 12, &out_t, HDR(m), &cli2);
	CHECK(memcmp(cli2.trace_id, srv.trace_id, 16) != 0);
	CHECK_EQ_INT(cli2.parent_span_id[0] | cli2.parent_span_id[7], 0);

	/* Own traceparent on a client request: that trace, that parent. */
	m = msg("00-11111111111111111111111111111111-2222222222222222-00", NULL);
	tracectx__client_request(tc, 10, 11, &out_t, HDR(m), &cli2);
	tracectx__hex(hex, cli2.trace_id, 16);
	CHECK_EQ_STR(hex, "11111111111111111111111111111111");
	tracectx__hex(hex, cli2.parent_span_id, 8);
	CHECK_EQ_STR(hex, "2222222222222222");
	CHECK_EQ_INT(cli2.trace_flags, 0);

	/* After the response, the thread no longer links. */
	tracectx__server_done(tc, 10, 11, &srv);
	m = msg(NULL, NULL);
	tracectx__client_request(tc, 10, 11, &out_t, HDR(m), &cli2);
	CHECK(memcmp(cli2.trace_id, srv.trace_id, 16) != 0);
	CHECK_EQ_INT(tracectx__stats(tc)->thread_linked, 1);

	/* Invalid header: counted, ignored, fresh trace with flags 01. */
	m = msg("00-" TID "-" PID "-01-x", "k=v");
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	CHECK_EQ_INT(tracectx__stats(tc)->traceparent_invalid, 1);
	CHECK_EQ_INT(srv.remote_parent, 0);
	CHECK_EQ_INT(srv.trace_flags, 1);
	CHECK_EQ_STR(srv.tracestate, "");
	m = msg("00-" TID "-" PID "-01", NULL);
	m.traceparent_lines = 2;	/* two headers: invalid */
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	CHECK_EQ_INT(tracectx__stats(tc)->traceparent_invalid, 2);

	/* Kernel records win, but only for their own connection. */
	memset(&ev, 0, sizeof(ev));
	ev.hdr.op = SONDE_OP_TRACE_CTX;
	ev.kind = SONDE_TRACE_CLIENT;
	ev.tgid = 10;
	ev.tid = 11;
	ev.sport = 40001;
	ev.dport = 9090;
	memset(ev.trace_id, 0xab, 16);
	memset(ev.span_id, 0xcd, 8);
	memset(ev.parent_span_id, 0xef, 8);
	ev.trace_flags = 1;
	tracectx__kernel(tc, &ev);
	m = msg(NULL, NULL);
	tracectx__client_request(tc, 10, 11, &t, HDR(m), &cli);	/* other ports: not it */
	CHECK(cli.span_id[0] != 0xcd || cli.span_id[1] != 0xcd);
	tracectx__client_request(tc, 10, 11, &out_t, HDR(m), &cli);
	tracectx__hex(hex, cli.span_id, 8);
	CHECK_EQ_STR(hex, "cdcdcdcdcdcdcdcd");
	tracectx__hex(hex, cli.parent_span_id, 8);
	CHECK_EQ_STR(hex, "efefefefefefefef");
	CHECK_EQ_INT(tracectx__stats(tc)->kernel_client, 1);
	tracectx__client_request(tc, 10, 11, &out_t, HDR(m), &cli);	/* consumed once */
	CHECK_EQ_INT(tracectx__stats(tc)->kernel_client, 1);

	/* Server record with the header's ids: span id from the kernel. */
	ev.kind = SONDE_TRACE_SERVER;
	ev.sport = 8080;
	ev.dport = 40000;
	ev.remote = 1;
	tracectx__hex(hex, ev.trace_id, 16);
	m = msg("00-abababababababababababababababab-efefefefefefefef-01", NULL);
	tracectx__kernel(tc, &ev);
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	tracectx__hex(hex, srv.span_id, 8);
	CHECK_EQ_STR(hex, "cdcdcdcdcdcdcdcd");
	CHECK_EQ_INT(srv.remote_parent, 1);
	CHECK_EQ_INT(tracectx__stats(tc)->kernel_server, 1);
	CHECK_EQ_INT(tracectx__stats(tc)->kernel_overridden, 0);
	/* The header text is taken as the kernel's ids only when it is their
	 * exact lowercase form: the same ids in uppercase stay invalid... */
	m = msg("00-ABABABABABABABABABABABABABABABAB-efefefefefefefef-01", NULL);
	tracectx__kernel(tc, &ev);
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	CHECK_EQ_INT(tracectx__stats(tc)->traceparent_invalid, 3);
	CHECK_EQ_INT(srv.remote_parent, 0);
	tracectx__hex(hex, srv.parent_span_id, 8);
	CHECK_EQ_STR(hex, "0000000000000000");
	/* ... other flags are the header's... */
	m = msg("00-abababababababababababababababab-efefefefefefefef-00", NULL);
	tracectx__kernel(tc, &ev);
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	CHECK_EQ_INT(srv.trace_flags, 0);
	CHECK_EQ_INT(srv.remote_parent, 1);
	CHECK_EQ_INT(tracectx__stats(tc)->kernel_overridden, 0);
	/* ... and a zero parent id is invalid even when the kernel read it so. */
	memset(ev.parent_span_id, 0, 8);
	m = msg("00-abababababababababababababababab-0000000000000000-01", NULL);
	tracectx__kernel(tc, &ev);
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	CHECK_EQ_INT(tracectx__stats(tc)->traceparent_invalid, 4);
	CHECK_EQ_INT(srv.remote_parent, 0);
	memset(ev.parent_span_id, 0xef, 8);
	/* The kernel missed the header: the header's trace wins, counted. */
	ev.remote = 0;
	tracectx__kernel(tc, &ev);
	m = msg("00-" TID "-" PID "-01", NULL);
	tracectx__server_request(tc, 10, 11, &t, HDR(m), &srv);
	tracectx__hex(hex, srv.trace_id, 16);
	CHECK_EQ_STR(hex, TID);
	CHECK_EQ_INT(tracectx__stats(tc)->kernel_overridden, 1);
}

int main(void)
{
	tc = tracectx__new();
	if (!tc)
		return 2;
	test_parse();
	test_random();
	test_choose();
	tracectx__free(tc);
	return check_summary("test_tracectx");
}
