/* Unit tests for the database glue (dbconn.c) through the connection
 * tracker: protocol and role inference from first bytes on any port
 * (MySQL's server speaks first), span timing, kinds and fields, the
 * uprobe claim and TLS hooks, the per-protocol counters, and operations a
 * client connection failed under (IO_END, close, exit) as failed spans. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conn/conn.h"
#include "sonde.h"
#include "span/builder.h"
#include "span/span.h"
#include "span/tracectx.h"

#define NO_PID 0xfffffff0u	/* cannot exist: service falls back to comm */

static struct span got[16];
static int nspans;

static void on_span(void *arg, const struct span *s)
{
	(void)arg;
	if (nspans < 16)
		got[nspans] = *s;
	nspans++;
}

static const struct span_sink sink = { .emit = on_span };
static _Alignas(8) uint8_t evbuf[sizeof(struct sonde_data_event) + 4096];

struct sock {
	uint32_t tgid;
	uint64_t sk;
	uint8_t role;
	uint16_t sport, dport;
};

static uint8_t ev_flags;	/* SONDE_F_TLS: plaintext from the TLS uprobes */

static void ev(struct conn_table *t, const struct sock *k, uint8_t dir, uint64_t enter_ns,
	       uint64_t ktime, const void *data, size_t n)
{
	struct sonde_data_event *e = (struct sonde_data_event *)evbuf;
	struct sonde_conn_event m = { .hdr = { .op = SONDE_OP_CONN, .size = sizeof(m) },
				      .sk = k->sk, .tgid = k->tgid, .fd = 5, .role = k->role };

	memset(e, 0, sizeof(*e));
	e->hdr.op = SONDE_OP_DATA;
	e->hdr.size = (uint32_t)(sizeof(*e) + n);
	e->hdr.ktime = ktime;
	e->hdr.flags = ev_flags;
	e->enter_ns = enter_ns;
	e->sk = k->sk;
	e->tgid = k->tgid;
	e->tid = k->tgid + 1;
	e->fd = 5;
	e->len = e->cap_len = (uint32_t)n;
	e->dir = dir;
	e->role = k->role;
	memcpy(e->data, data, n);
	m.tuple.family = 2;
	m.tuple.sport = k->sport;
	m.tuple.dport = k->dport;
	snprintf(m.comm, sizeof(m.comm), "dbtest");
	conn__meta(t, &m);
	conn__data(t, e);
}

#define IN SONDE_DIR_INGRESS
#define OUT SONDE_DIR_EGRESS

static uint64_t claim_ns;
static const char *claim_text;
static int claims;

/* What proto/db.c calls (struct db_calls), switched per case below. */
static int (*claim_fn)(uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text, size_t n);
static void (*encrypted_fn)(uint32_t tgid);

static int calls_claim(void *arg, uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text,
		       size_t n)
{
	(void)arg;
	return claim_fn ? claim_fn(tid, start_ns, call_ns, text, n) : 0;
}

static void calls_encrypted(void *arg, uint32_t tgid)
{
	(void)arg;
	if (encrypted_fn)
		encrypted_fn(tgid);
}

static void calls_wire(void *arg, uint32_t tid, uint64_t ns)
{
	(void)arg, (void)tid, (void)ns;
}

static const struct db_calls calls = { .claim = calls_claim, .encrypted = calls_encrypted,
				       .wire = calls_wire };

static int fake_claim(uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text, size_t n)
{
	(void)tid;
	if (!claim_ns || claim_ns > start_ns)
		return 0;
	claims++;
	*call_ns = claim_ns;
	snprintf(text, n, "%s", claim_text);
	return 1;
}

static uint32_t tls_tgid;

static void fake_tls(uint32_t tgid)
{
	tls_tgid = tgid;
}

static void pgmsg(uint8_t *b, size_t *n, char type, const char *body, size_t blen)
{
	uint32_t l = (uint32_t)blen + 4;

	b[(*n)++] = (uint8_t)type;
	b[(*n)++] = (uint8_t)(l >> 24);
	b[(*n)++] = (uint8_t)(l >> 16);
	b[(*n)++] = (uint8_t)(l >> 8);
	b[(*n)++] = (uint8_t)l;
	memcpy(b + *n, body, blen);
	*n += blen;
}

static void mypkt(uint8_t *b, size_t *n, uint8_t seq, const void *p, size_t len)
{
	b[(*n)++] = (uint8_t)len;
	b[(*n)++] = (uint8_t)(len >> 8);
	b[(*n)++] = (uint8_t)(len >> 16);
	b[(*n)++] = seq;
	memcpy(b + *n, p, len);
	*n += len;
}

static void io_end(struct conn_table *t, const struct sock *k, int32_t err, uint64_t ktime)
{
	struct sonde_io_end_event e;

	memset(&e, 0, sizeof(e));
	e.hdr.op = SONDE_OP_IO_END;
	e.hdr.size = sizeof(e);
	e.hdr.ktime = ktime;
	e.sk = k->sk;
	e.tgid = k->tgid;
	e.tid = k->tgid + 1;
	e.fd = 5;
	e.err = err;
	e.dir = SONDE_DIR_INGRESS;
	conn__io_end(t, &e);
}

static void pg_client(struct conn_table *t, const struct sock *k, uint8_t *b)
{
	uint8_t su[32] = { 0, 0, 0, 17, 0, 3, 0, 0 };
	size_t n = 0;

	memcpy(su + 8, "user\0pg\0", 9);
	ev(t, k, OUT, 1, 2, su, 17);
	pgmsg(b, &n, 'R', "\0\0\0\0", 4);
	pgmsg(b, &n, 'Z', "I", 1);
	ev(t, k, IN, 3, 4, b, n);
}

/* Operations a client connection failed under: each a client span with
 * the connection's error.type, no db_status, ending when it failed. */
static void test_fail(struct conn_table *t, const struct conn_stats *st)
{
	uint8_t b[1024];
	size_t n;

	/* Redis BLPOP, the server hangs up (CLIENT KILL): connection_closed */
	{
		struct sock k = { NO_PID - 20, 0x2000, SONDE_ROLE_CLIENT, 41000, 6379 };
		const char *blpop = "*3\r\n$5\r\nBLPOP\r\n$6\r\nsecret\r\n$1\r\n0\r\n";

		nspans = 0;
		ev(t, &k, OUT, 1000, 1010, blpop, strlen(blpop));
		io_end(t, &k, 0, 5000);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].kind, SPAN_CLIENT);
		CHECK_EQ_INT(got[0].proto, SPAN_DB);
		CHECK_EQ_STR(got[0].db_system, "redis");
		CHECK_EQ_STR(got[0].db_operation, "BLPOP");
		CHECK_EQ_STR(got[0].db_query, "BLPOP ? ?");
		CHECK_EQ_STR(got[0].db_status, "");
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_CLOSED);
		CHECK_EQ_INT(got[0].start_ns, 1000);
		CHECK_EQ_INT(got[0].end_ns, 5000);
		CHECK_EQ_INT(got[0].incomplete, 0);
		CHECK_EQ_INT(got[0].tid, NO_PID - 20 + 1);
		/* the close that follows: nothing left */
		{
			struct sonde_close_event c = { .sk = k.sk, .tgid = k.tgid, .fd = 5 };

			c.hdr.ktime = 5100;
			conn__close(t, &c);
		}
		CHECK_EQ_INT(nspans, 1);
	}
	/* pipelined Redis commands, reset by the peer: all failed, in order */
	{
		struct sock k = { NO_PID - 21, 0x2100, SONDE_ROLE_CLIENT, 41001, 6379 };
		const char *p = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
				"*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n";

		nspans = 0;
		ev(t, &k, OUT, 2000, 2010, p, strlen(p));
		ev(t, &k, IN, 2100, 2200, "+PONG\r\n", 7);
		io_end(t, &k, ECONNRESET, 3000);
		CHECK_EQ_INT(nspans, 3);
		CHECK_EQ_STR(got[0].error_type, "");
		CHECK_EQ_INT(got[0].end_ns, 2200);
		CHECK_EQ_STR(got[1].db_operation, "GET");
		CHECK_EQ_STR(got[1].error_type, SPAN_ERR_RESET);
		CHECK_EQ_INT(got[1].end_ns, 3000);
		CHECK_EQ_STR(got[2].db_operation, "INCR");
		CHECK_EQ_STR(got[2].error_type, SPAN_ERR_RESET);
		CHECK_EQ_INT(got[2].start_ns, 2000);
		/* nothing pending: a second record reports nothing */
		io_end(t, &k, EPIPE, 3100);
		CHECK_EQ_INT(nspans, 3);
	}
	/* PostgreSQL pg_terminate_backend: FATAL 57P01 read, then EOF: one
	 * span, with the SQLSTATE, ended by the error */
	{
		struct sock k = { NO_PID - 22, 0x2200, SONDE_ROLE_CLIENT, 41002, 5432 };

		nspans = 0;
		pg_client(t, &k, b);
		n = 0;
		pgmsg(b, &n, 'Q', "SELECT pg_sleep(5)\0", 19);
		ev(t, &k, OUT, 100, 110, b, n);
		n = 0;
		pgmsg(b, &n, 'E', "SFATAL\0C57P01\0Mterminating\0\0", 28);
		ev(t, &k, IN, 150, 900, b, n);
		CHECK_EQ_INT(nspans, 0);
		io_end(t, &k, 0, 950);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_STR(got[0].db_operation, "SELECT");
		CHECK_EQ_STR(got[0].db_query, "SELECT pg_sleep(?)");
		CHECK_EQ_STR(got[0].db_status, "57P01");
		CHECK_EQ_STR(got[0].error_type, "57P01");
		CHECK_EQ_INT(got[0].start_ns, 100);
		CHECK_EQ_INT(got[0].end_ns, 900);
		conn__exit(t, k.tgid, 1000, false);
		CHECK_EQ_INT(nspans, 1);
	}
	/* PostgreSQL, a result set cut by a reset; the libpq call (uprobe)
	 * still joins the span */
	{
		struct sock k = { NO_PID - 23, 0x2300, SONDE_ROLE_CLIENT, 41003, 5432 };

		nspans = 0;
		claims = 0;
		claim_ns = 190;
		claim_text = "SELECT * FROM big";
		claim_fn = (fake_claim);
		pg_client(t, &k, b);
		n = 0;
		pgmsg(b, &n, 'Q', "SELECT * FROM big\0", 18);
		ev(t, &k, OUT, 200, 210, b, n);
		n = 0;
		pgmsg(b, &n, 'T', "\0\0", 2);
		pgmsg(b, &n, 'D', "\0\0", 2);
		ev(t, &k, IN, 300, 400, b, n);
		io_end(t, &k, ECONNRESET, 700);
		claim_fn = (NULL);
		claim_ns = 0;
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(claims, 1);
		CHECK_EQ_INT(got[0].start_ns, 190);
		CHECK_EQ_INT(got[0].end_ns, 700);
		CHECK_EQ_INT(got[0].incomplete, 1);
		CHECK_EQ_STR(got[0].db_collection, "big");
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_RESET);
	}
	/* MariaDB client, mid-stream: a query whose answer never came, the
	 * kernel gives up (ETIMEDOUT); then one to an unreachable host */
	{
		struct sock k = { NO_PID - 24, 0x2400, SONDE_ROLE_CLIENT, 41004, 3306 };
		static const char q[] = "\x03SELECT SLEEP(5)";

		nspans = 0;
		n = 0;
		mypkt(b, &n, 0, q, sizeof(q) - 1);
		ev(t, &k, OUT, 100, 110, b, n);
		io_end(t, &k, ETIMEDOUT, 9000);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_STR(got[0].db_system, "mysql");
		CHECK_EQ_STR(got[0].db_query, "SELECT SLEEP(?)");
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_TIMEOUT);
		CHECK_EQ_INT(got[0].end_ns, 9000);
		n = 0;
		mypkt(b, &n, 0, q, sizeof(q) - 1);
		ev(t, &k, OUT, 9100, 9110, b, n);
		io_end(t, &k, EHOSTUNREACH, 9500);
		CHECK_EQ_INT(nspans, 2);
		CHECK_EQ_STR(got[1].error_type, SPAN_ERR_UNREACHABLE);
	}
	/* the client process exits with a command waiting: request_cancelled */
	{
		struct sock k = { NO_PID - 25, 0x2500, SONDE_ROLE_CLIENT, 41005, 6379 };
		const char *blpop = "*3\r\n$5\r\nBLPOP\r\n$1\r\nl\r\n$1\r\n0\r\n";

		nspans = 0;
		ev(t, &k, OUT, 100, 110, blpop, strlen(blpop));
		conn__exit(t, k.tgid, 4000, false);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_CANCELLED);
		CHECK_EQ_INT(got[0].end_ns, 4000);
	}
	/* a server's connection: unchanged (unanswered counted at close) */
	{
		struct sock k = { NO_PID - 26, 0x2600, SONDE_ROLE_SERVER, 6379, 41006 };
		struct sonde_close_event c = { .sk = 0x2600, .tgid = NO_PID - 26, .fd = 5 };
		uint64_t before = st->proto[PROTO_REDIS].unanswered;

		nspans = 0;
		ev(t, &k, IN, 100, 110, "*1\r\n$4\r\nPING\r\n", 14);
		io_end(t, &k, 0, 200);
		c.hdr.ktime = 300;
		conn__close(t, &c);
		CHECK_EQ_INT(nspans, 0);
		CHECK_EQ_INT(st->proto[PROTO_REDIS].unanswered, before + 1);
	}
	/* trace context: a failed call made while serving an HTTP request is
	 * a child of that request's server span */
	{
		struct sock web = { NO_PID - 27, 0x2700, SONDE_ROLE_SERVER, 8080, 41007 };
		struct sock k = { NO_PID - 27, 0x2701, SONDE_ROLE_CLIENT, 41008, 6379 };
		const char *req = "GET /t HTTP/1.1\r\nHost: a\r\n\r\n";
		const char *resp = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";

		nspans = 0;
		ev(t, &web, IN, 100, 110, req, strlen(req));
		ev(t, &k, OUT, 120, 130, "*1\r\n$4\r\nPING\r\n", 14);
		io_end(t, &k, 0, 140);
		ev(t, &web, OUT, 150, 160, resp, strlen(resp));
		CHECK_EQ_INT(nspans, 2);
		CHECK_EQ_INT(got[0].proto, SPAN_DB);
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_CLOSED);
		CHECK_EQ_INT(got[1].proto, SPAN_HTTP);
		CHECK(memcmp(got[0].ctx.trace_id, got[1].ctx.trace_id, 16) == 0);
		CHECK(memcmp(got[0].ctx.parent_span_id, got[1].ctx.span_id, 8) == 0);
	}
	/* over TLS (plaintext from the uprobes): the failed span says so */
	{
		struct sock k = { NO_PID - 28, 0x2800, SONDE_ROLE_CLIENT, 41009, 6380 };

		nspans = 0;
		ev_flags = SONDE_F_TLS;
		ev(t, &k, OUT, 100, 110, "*1\r\n$4\r\nPING\r\n", 14);
		ev_flags = 0;
		io_end(t, &k, ECONNRESET, 200);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].tls, 1);
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_RESET);
	}
	CHECK_EQ_INT(st->proto[PROTO_REDIS].failed, 1 + 1 + 2 + 1 + 1 + 1);	/* with the close above */
	CHECK_EQ_INT(st->proto[PROTO_PG].failed, 1);
	CHECK_EQ_INT(st->proto[PROTO_MYSQL].failed, 2);
}

int main(void)
{
	struct tracectx *tc = tracectx__new();
	struct span_builder *spans = span_builder__new(tc, &sink, NULL);
	struct conn_table *t = conn__new(64, NULL, spans, &calls);
	const struct conn_stats *st = conn__stats(t);
	uint8_t b[1024];
	size_t n;

	/* Redis client on port 7000 (not 6379): inferred from the array */
	{
		struct sock k = { NO_PID, 0x100, SONDE_ROLE_CLIENT, 40000, 7000 };
		const char *cmd = "*2\r\n$3\r\nGET\r\n$6\r\nsecret\r\n";

		ev(t, &k, OUT, 1000, 1100, cmd, strlen(cmd));
		ev(t, &k, IN, 1900, 2000, "$-1\r\n", 5);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].kind, SPAN_CLIENT);
		CHECK_EQ_INT(got[0].proto, SPAN_DB);
		CHECK_EQ_STR(got[0].db_system, "redis");
		CHECK_EQ_STR(got[0].db_operation, "GET");
		CHECK_EQ_STR(got[0].db_query, "GET ?");
		CHECK_EQ_STR(got[0].db_collection, "");
		CHECK_EQ_STR(got[0].error_type, "");
		CHECK_EQ_INT(got[0].start_ns, 1000);	/* client: write entry */
		CHECK_EQ_INT(got[0].end_ns, 2000);
		CHECK_EQ_INT(got[0].tuple.dport, 7000);
		CHECK_EQ_STR(got[0].service, "dbtest");
	}

	/* MySQL server socket of unknown role: the greeting it writes makes it
	 * the server; a query it reads is a server span */
	{
		struct sock k = { NO_PID - 1, 0x200, SONDE_ROLE_UNKNOWN, 4406, 51000 };
		uint8_t g[64] = { 0x0a };
		uint8_t login[40] = { 0 };
		size_t gl = 1;

		memcpy(g + gl, "11.4.2-MariaDB", 15);
		gl += 15 + 13;
		g[gl++] = 0; g[gl++] = 2; g[gl++] = 8; g[gl++] = 2; g[gl++] = 0;
		g[gl++] = 0; g[gl++] = 1;	/* DEPRECATE_EOF in the high capabilities */
		memset(g + gl, 0, 20);
		gl += 20;
		n = 0;
		mypkt(b, &n, 0, g, gl);
		nspans = 0;
		ev(t, &k, OUT, 100, 110, b, n);
		login[1] = 2;	/* PROTOCOL_41 */
		login[3] = 1;	/* DEPRECATE_EOF */
		n = 0;
		mypkt(b, &n, 1, login, sizeof(login));
		ev(t, &k, IN, 150, 200, b, n);
		n = 0;
		mypkt(b, &n, 2, "\0\0\0\2\0\0\0", 7);
		ev(t, &k, OUT, 210, 220, b, n);
		n = 0;
		mypkt(b, &n, 0, "\x03INSERT INTO `shop`.`orders` VALUES (1, 'x')", 45);
		ev(t, &k, IN, 300, 5000, b, n);	/* blocked in read since 300 */
		n = 0;
		mypkt(b, &n, 1, "\0\1\0\2\0\0\0", 7);
		ev(t, &k, OUT, 5900, 6000, b, n);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].kind, SPAN_SERVER);
		CHECK_EQ_STR(got[0].db_system, "mariadb");
		CHECK_EQ_STR(got[0].db_operation, "INSERT");
		CHECK_EQ_STR(got[0].db_collection, "shop.orders");
		CHECK_EQ_STR(got[0].db_query, "INSERT INTO `shop`.`orders` VALUES (?, ?)");
		CHECK_EQ_INT(got[0].start_ns, 5000);	/* server: read return */
		CHECK_EQ_INT(got[0].end_ns, 6000);
	}

	/* PostgreSQL backend (forked: role unknown) on port 6000; an error;
	 * then a client whose call the uprobe side claims */
	{
		struct sock k = { NO_PID - 2, 0x300, SONDE_ROLE_UNKNOWN, 6000, 52000 };
		uint8_t su[32] = { 0, 0, 0, 17, 0, 3, 0, 0 };

		memcpy(su + 8, "user\0pg\0", 9);
		nspans = 0;
		ev(t, &k, IN, 10, 20, su, 17);
		n = 0;
		pgmsg(b, &n, 'R', "\0\0\0\0", 4);
		pgmsg(b, &n, 'Z', "I", 1);
		ev(t, &k, OUT, 30, 40, b, n);
		n = 0;
		pgmsg(b, &n, 'Q', "SELEC 1\0", 8);
		ev(t, &k, IN, 50, 1000, b, n);
		n = 0;
		pgmsg(b, &n, 'E', "SERROR\0C42601\0Mx\0\0", 19);
		pgmsg(b, &n, 'Z', "I", 1);
		ev(t, &k, OUT, 1200, 1300, b, n);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].kind, SPAN_SERVER);
		CHECK_EQ_STR(got[0].db_system, "postgresql");
		CHECK_EQ_STR(got[0].db_status, "42601");
		CHECK_EQ_STR(got[0].error_type, "42601");
		CHECK_EQ_STR(got[0].db_operation, "SELEC");
	}
	{
		struct sock k = { NO_PID - 3, 0x400, SONDE_ROLE_CLIENT, 53000, 6000 };
		uint8_t ssl[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
		uint8_t su[32] = { 0, 0, 0, 17, 0, 3, 0, 0 };

		claim_fn = (fake_claim);
		encrypted_fn = (fake_tls);
		memcpy(su + 8, "user\0pg\0", 9);
		nspans = 0;
		ev(t, &k, OUT, 10, 20, ssl, 8);
		ev(t, &k, IN, 25, 30, "N", 1);
		ev(t, &k, OUT, 40, 50, su, 17);
		CHECK_EQ_INT(tls_tgid, 0);	/* refused: plaintext */
		n = 0;
		pgmsg(b, &n, 'Z', "I", 1);
		ev(t, &k, IN, 60, 70, b, n);
		/* Execute of a statement prepared before the agent: the call's SQL names it */
		claim_ns = 950;
		claim_text = "UPDATE accounts SET balance = 7 WHERE id = 3";
		n = 0;
		pgmsg(b, &n, 'B', "\0s9\0\0\0\0\0\0\0", 10);
		pgmsg(b, &n, 'E', "\0\0\0\0\0", 5);
		pgmsg(b, &n, 'S', "", 0);
		ev(t, &k, OUT, 1000, 1010, b, n);
		n = 0;
		pgmsg(b, &n, '2', "", 0);
		pgmsg(b, &n, 'C', "UPDATE 1\0", 9);
		pgmsg(b, &n, 'Z', "I", 1);
		ev(t, &k, IN, 1500, 2000, b, n);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(claims, 1);
		CHECK_EQ_INT(got[0].kind, SPAN_CLIENT);
		CHECK_EQ_INT(got[0].start_ns, 950);	/* from the library call */
		CHECK_EQ_INT(got[0].end_ns, 2000);
		CHECK_EQ_STR(got[0].db_query, "UPDATE accounts SET balance = ? WHERE id = ?");
		CHECK_EQ_STR(got[0].db_collection, "accounts");
		claim_fn = (NULL);
	}
	{
		/* SSL accepted: the hook learns the process has a TLS connection */
		struct sock k = { NO_PID - 4, 0x500, SONDE_ROLE_CLIENT, 54000, 6000 };
		uint8_t ssl[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };

		ev(t, &k, OUT, 10, 20, ssl, 8);
		ev(t, &k, IN, 25, 30, "S", 1);
		CHECK_EQ_INT(tls_tgid, NO_PID - 4);
		encrypted_fn = (NULL);
	}

	/* a client that closes its connection before the answer gave up on
	 * the command: a failed span, not an unanswered count */
	{
		struct sock k = { NO_PID - 5, 0x600, SONDE_ROLE_CLIENT, 55000, 6379 };
		struct sonde_close_event c = { .sk = 0x600, .tgid = NO_PID - 5, .fd = 5 };

		nspans = 0;
		ev(t, &k, OUT, 10, 20, "*1\r\n$4\r\nPING\r\n", 14);
		c.hdr.ktime = 30;
		conn__close(t, &c);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].kind, SPAN_CLIENT);
		CHECK_EQ_STR(got[0].db_operation, "PING");
		CHECK_EQ_STR(got[0].error_type, SPAN_ERR_CANCELLED);
		CHECK_EQ_STR(got[0].db_status, "");
		CHECK_EQ_INT(got[0].start_ns, 10);
		CHECK_EQ_INT(got[0].end_ns, 30);
		CHECK_EQ_INT(st->proto[PROTO_REDIS].unanswered, 0);
		CHECK_EQ_INT(st->proto[PROTO_REDIS].failed, 1);
	}
	/* garbage on an inferred Redis connection: an inference failure, counted once */
	{
		struct sock k = { NO_PID - 6, 0x700, SONDE_ROLE_CLIENT, 56000, 7001 };

		ev(t, &k, OUT, 10, 20, "*1\r\n$4\r\nPING\r\n", 14);
		ev(t, &k, IN, 30, 40, "?garbage\r\n", 10);
		ev(t, &k, IN, 50, 60, "?more\r\n", 7);
		CHECK_EQ_INT(st->proto[PROTO_REDIS].inference_failures, 1);
		CHECK_EQ_INT(st->proto[PROTO_REDIS].parse_errors, 1);
	}
	CHECK_EQ_INT(st->proto[PROTO_PG].spans, 2);
	CHECK_EQ_INT(st->proto[PROTO_MYSQL].spans, 1);
	CHECK_EQ_INT(st->proto[PROTO_REDIS].spans, 2);
	test_fail(t, st);
	/* an HTTP connection is still HTTP */
	{
		struct sock k = { NO_PID - 7, 0x800, SONDE_ROLE_SERVER, 8080, 57000 };
		const char *req = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
		const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

		nspans = 0;
		ev(t, &k, IN, 10, 20, req, strlen(req));
		ev(t, &k, OUT, 30, 40, resp, strlen(resp));
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_INT(got[0].proto, SPAN_HTTP);
	}
	/* Redis: a reply lost with ring records; the next command's record
	 * says so: the first command is lost, the second pairs with its reply */
	{
		struct sock k = { NO_PID - 40, 0x4000, SONDE_ROLE_CLIENT, 45000, 6379 };
		const char *c1 = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
		const char *c2 = "*2\r\n$3\r\nDEL\r\n$1\r\nb\r\n";
		uint64_t lost0 = st->proto[PROTO_REDIS].lost;

		nspans = 0;
		ev(t, &k, OUT, 100, 110, c1, strlen(c1));
		ev_flags = SONDE_F_LOSS;
		ev(t, &k, OUT, 300, 310, c2, strlen(c2));
		ev_flags = 0;
		ev(t, &k, IN, 400, 500, ":1\r\n", 4);
		CHECK_EQ_INT(nspans, 1);
		CHECK_EQ_STR(got[0].db_operation, "DEL");
		CHECK_EQ_INT(got[0].start_ns, 300);
		CHECK_EQ_INT(got[0].end_ns, 500);
		CHECK_EQ_STR(got[0].error_type, "");
		CHECK_EQ_INT(st->proto[PROTO_REDIS].lost, lost0 + 1);
	}
	conn__free(t);
	span_builder__free(spans);
	tracectx__free(tc);
	return check_summary("test_db");
}
