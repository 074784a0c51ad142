/* Unit tests for user/proto/mysql.c with byte fixtures: handshake (MySQL
 * vs MariaDB, DEPRECATE_EOF or not), COM_QUERY with OK/ERR/result sets,
 * prepared statements, multi-results, gaps, byte-wise feeds and garbage,
 * and a command the connection failed under (mysql__fail). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/mysql/mysql.h"

static struct db_op ops[16];
static int nops, nerr[4];

static void on_op(void *ctx, const struct db_op *op)
{
	(void)ctx;
	if (nops < 16)
		ops[nops] = *op;
	nops++;
}

static void on_error(void *ctx, int e)
{
	(void)ctx;
	if (e >= 0 && e < 4)
		nerr[e]++;
}

static const struct db_callbacks cb = { on_op, on_error };

struct buf {
	uint8_t d[8192];
	size_t n;
};

static void pkt(struct buf *b, uint8_t seq, const void *p, size_t n)
{
	b->d[b->n++] = (uint8_t)n;
	b->d[b->n++] = (uint8_t)(n >> 8);
	b->d[b->n++] = (uint8_t)(n >> 16);
	b->d[b->n++] = seq;
	if (n)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

static struct mysql_session S;

static void reset(bool from_start)
{
	mysql__init(&S, from_start);
	nops = 0;
	memset(nerr, 0, sizeof(nerr));
}

static void feed(bool client, struct buf *b, uint64_t t)
{
	uint8_t *c = malloc(b->n ? b->n : 1);

	memcpy(c, b->d, b->n);
	mysql__feed(&S, client, c, b->n, b->n, t, 5, &cb, NULL);
	free(c);
	b->n = 0;
}

static void handshake(const char *version, uint32_t caps)
{
	struct buf b = { .n = 0 };
	uint8_t g[128], r[64];
	size_t n = 0;

	g[n++] = 0x0a;
	memcpy(g + n, version, strlen(version) + 1);
	n += strlen(version) + 1;
	memset(g + n, 1, 4 + 8 + 1);	/* thread id, auth data, filler */
	n += 13;
	g[n++] = (uint8_t)caps;
	g[n++] = (uint8_t)(caps >> 8);
	g[n++] = 8;			/* charset */
	g[n++] = 2; g[n++] = 0;		/* status */
	g[n++] = (uint8_t)(caps >> 16);
	g[n++] = (uint8_t)(caps >> 24);
	memset(g + n, 0, 20);
	n += 20;
	pkt(&b, 0, g, n);
	CHECK(mysql__looks_like_greeting(b.d, b.n));
	feed(false, &b, 1);
	memset(r, 0, sizeof(r));
	r[0] = (uint8_t)caps; r[1] = (uint8_t)(caps >> 8);
	r[2] = (uint8_t)(caps >> 16); r[3] = (uint8_t)(caps >> 24);
	pkt(&b, 1, r, 40);
	feed(true, &b, 2);
	pkt(&b, 2, "\0\0\0\2\0\0\0", 7);	/* OK */
	feed(false, &b, 3);
}

static void query(const char *sql, uint64_t t)
{
	struct buf b = { .n = 0 };
	uint8_t q[512];

	q[0] = 0x03;
	memcpy(q + 1, sql, strlen(sql));
	pkt(&b, 0, q, strlen(sql) + 1);
	CHECK(mysql__looks_like_command(b.d, b.n));
	feed(true, &b, t);
}

/* a result set of one column and nrows rows, with or without EOF packets */
static void result_set(struct buf *b, int nrows, bool eof, uint16_t status)
{
	uint8_t seq = 1;
	uint8_t e[5] = { 0xfe, 0, 0, (uint8_t)status, (uint8_t)(status >> 8) };
	uint8_t ok[7] = { 0xfe, 0, 0, (uint8_t)status, (uint8_t)(status >> 8), 0, 0 };

	pkt(b, seq++, "\x01", 1);
	pkt(b, seq++, "\x03" "def\0\0\0\x01" "c\0\x0c\x3f\0\x0b\0\0\0\x03\0\0\0\0\0", 23);
	if (eof)
		pkt(b, seq++, e, 5);
	for (int i = 0; i < nrows; i++)
		pkt(b, seq++, "\x01" "7", 2);
	if (eof)
		pkt(b, seq++, e, 5);
	else
		pkt(b, seq++, ok, 7);
}

static void test_queries(bool deprecate)
{
	struct buf b = { .n = 0 };
	uint32_t caps = MYSQL_CLIENT_PROTOCOL_41 | (deprecate ? MYSQL_CLIENT_DEPRECATE_EOF : 0);

	reset(true);
	handshake("5.5.5-10.11.19-MariaDB-0+deb12u1", caps);
	CHECK_EQ_INT(S.mariadb, 1);
	CHECK_EQ_STR(S.version, "5.5.5-10.11.19-MariaDB-0+deb12u1");

	query("INSERT INTO t VALUES (1)", 10);
	pkt(&b, 1, "\0\1\0\2\0\0\0", 7);
	feed(false, &b, 11);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].text, "INSERT INTO t VALUES (1)");
	CHECK_EQ_INT(ops[0].start_ns, 10);
	CHECK_EQ_INT(ops[0].error, 0);

	query("SELECT c FROM t", 20);
	result_set(&b, 3, !deprecate, 2);
	feed(false, &b, 21);
	CHECK_EQ_INT(nops, 2);
	CHECK_EQ_STR(ops[1].text, "SELECT c FROM t");

	query("SELEC", 30);
	pkt(&b, 1, "\xff\x28\x04#42000You have an error", 26);
	feed(false, &b, 31);
	CHECK_EQ_INT(nops, 3);
	CHECK_EQ_INT(ops[2].error, 1);
	CHECK_EQ_STR(ops[2].status, "1064");

	/* two result sets (SERVER_MORE_RESULTS_EXISTS), delivered byte by byte */
	query("CALL p()", 40);
	result_set(&b, 1, !deprecate, 2 | 8);
	result_set(&b, 2, !deprecate, 2);
	{
		struct buf all = b;

		for (size_t i = 0; i < all.n; i++)
			mysql__feed(&S, false, all.d + i, 1, 1, 41, 5, &cb, NULL);
		b.n = 0;
	}
	CHECK_EQ_INT(nops, 4);
	CHECK_EQ_INT(mysql__pending(&S), 0);

	/* prepare (no span), execute twice (spans named by the SQL), close */
	{
		uint8_t p[64] = { 0x16 };
		const char *sql = "SELECT c FROM t WHERE id = ?";
		uint8_t ok[12] = { 0, 9, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0 };
		uint8_t ex[10] = { 0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0 };

		memcpy(p + 1, sql, strlen(sql));
		pkt(&b, 0, p, strlen(sql) + 1);
		feed(true, &b, 50);
		pkt(&b, 1, ok, 12);
		pkt(&b, 2, "\x03" "def\0\0\0\x01?\0\x0c\x3f\0\x0b\0\0\0\x03\0\0\0\0\0", 23);
		if (!deprecate)
			pkt(&b, 3, "\xfe\0\0\2\0", 5);
		pkt(&b, deprecate ? 3 : 4, "\x03" "def\0\0\0\x01" "c\0\x0c\x3f\0\x0b\0\0\0\x03\0\0\0\0\0", 23);
		if (!deprecate)
			pkt(&b, 5, "\xfe\0\0\2\0", 5);
		feed(false, &b, 51);
		CHECK_EQ_INT(nops, 4);
		for (int i = 0; i < 2; i++) {
			pkt(&b, 0, ex, 10);
			feed(true, &b, 60 + i * 10);
			result_set(&b, 1, !deprecate, 2);
			feed(false, &b, 61 + i * 10);
		}
		CHECK_EQ_INT(nops, 6);
		CHECK_EQ_STR(ops[4].text, sql);
		CHECK_EQ_INT(ops[4].prepared, 1);
		CHECK_EQ_INT(ops[5].start_ns, 70);
		pkt(&b, 0, "\x19\x09\0\0\0", 5);	/* COM_STMT_CLOSE: no response */
		feed(true, &b, 80);
		pkt(&b, 0, ex, 10);
		feed(true, &b, 90);
		pkt(&b, 1, "\xff\x13\x02#HY000Unknown prepared statement handler", 44);
		feed(false, &b, 91);
		CHECK_EQ_INT(nops, 7);
		CHECK_EQ_STR(ops[6].text, "");
		CHECK_EQ_STR(ops[6].status, "531");
	}
	CHECK_EQ_INT(nerr[1] + nerr[2] + nerr[3], 0);
}

static void test_gaps_garbage(void)
{
	struct buf b = { .n = 0 };

	/* mid-stream (agent started late); MySQL proper */
	reset(false);
	query("SELECT 1", 1);
	result_set(&b, 1, false, 2);
	feed(false, &b, 2);
	CHECK_EQ_INT(nops, 1);

	/* the end of a long result lost in a gap: the next command ends the
	 * span as incomplete */
	query("SELECT big FROM t", 10);
	result_set(&b, 40, false, 2);
	mysql__feed(&S, false, b.d, 40, b.n + 5000, 11, 5, &cb, NULL);
	b.n = 0;
	CHECK_EQ_INT(nerr[MYSQL_ERR_LOST], 1);
	CHECK_EQ_INT(nops, 1);
	query("SELECT 2", 20);
	CHECK_EQ_INT(nops, 2);
	CHECK_EQ_INT(ops[1].incomplete, 1);
	CHECK_EQ_INT(nerr[MYSQL_ERR_UNANSWERED], 1);
	pkt(&b, 1, "\0\0\0\2\0\0\0", 7);
	feed(false, &b, 21);
	CHECK_EQ_INT(nops, 3);
	CHECK_EQ_STR(ops[2].text, "SELECT 2");
	CHECK_EQ_INT(ops[2].incomplete, 0);

	/* a greeting that is an ERR (too many connections): nothing follows */
	reset(true);
	pkt(&b, 0, "\xff\x10\x04Too many connections", 23);
	feed(false, &b, 1);
	query("SELECT 1", 2);
	CHECK_EQ_INT(nops, 0);

	/* TLS requested in the login: stop */
	reset(true);
	handshake("8.0.36", MYSQL_CLIENT_PROTOCOL_41 | MYSQL_CLIENT_SSL);
	CHECK_EQ_INT(S.mariadb, 0);

	/* garbage */
	reset(true);
	{
		uint8_t g[700];

		srand(7);
		for (int round = 0; round < 300; round++) {
			size_t n = (size_t)(rand() % (int)sizeof(g));

			for (size_t i = 0; i < n; i++)
				g[i] = (uint8_t)rand();
			if (round == 0)
				g[4] = 0x0a;
			mysql__feed(&S, round & 1, g, n, n + (size_t)(rand() % 2) * 3000, 1, 1, &cb, NULL);
		}
	}
	/* the same session, re-initialised mid-stream, follows a valid exchange */
	reset(false);
	query("SELECT 1", 1);
	pkt(&b, 1, "\0\0\0\2\0\0\0", 7);
	feed(false, &b, 2);
	CHECK_EQ_INT(nops, 1);
	CHECK(!mysql__looks_like_greeting((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
	CHECK(!mysql__looks_like_command((const uint8_t *)"\x05\0\0\0\x03", 5));
}

/* The connection fails under the waiting command: one failed op (also
 * incomplete when its result set was being read); a KILL's ERR packet
 * already ended it (no second report); nothing waiting, nothing. */
static void test_fail(void)
{
	struct buf b = { .n = 0 };
	uint32_t caps = MYSQL_CLIENT_PROTOCOL_41 | MYSQL_CLIENT_DEPRECATE_EOF;

	reset(true);
	handshake("5.5.5-10.11.19-MariaDB-0+deb12u1", caps);
	mysql__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 0);

	query("SELECT SLEEP(5)", 100);
	CHECK_EQ_INT(mysql__pending(&S), 1);
	mysql__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].text, "SELECT SLEEP(5)");
	CHECK_EQ_INT(ops[0].start_ns, 100);
	CHECK_EQ_INT(ops[0].failed, 1);
	CHECK_EQ_INT(ops[0].incomplete, 0);
	CHECK_EQ_INT(ops[0].error, 0);
	CHECK_EQ_STR(ops[0].status, "");
	CHECK_EQ_INT(mysql__pending(&S), 0);
	mysql__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 1);

	/* a result set cut off after its column definition and half a row */
	query("SELECT c FROM t", 200);
	pkt(&b, 1, "\x01", 1);
	pkt(&b, 2, "\x03" "def\0\0\0\x01" "c\0\x0c\x3f\0\x0b\0\0\0\x03\0\0\0\0\0", 23);
	b.d[b.n++] = 9; b.d[b.n++] = 0; b.d[b.n++] = 0; b.d[b.n++] = 3; b.d[b.n++] = 8;
	feed(false, &b, 210);
	mysql__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 2);
	CHECK_EQ_STR(ops[1].text, "SELECT c FROM t");
	CHECK_EQ_INT(ops[1].failed, 1);
	CHECK_EQ_INT(ops[1].incomplete, 1);

	/* between packets again: the next exchange parses */
	query("INSERT INTO t VALUES (1)", 300);
	pkt(&b, 1, "\0\1\0\2\0\0\0", 7);
	feed(false, &b, 310);
	CHECK_EQ_INT(nops, 3);
	CHECK_EQ_INT(ops[2].failed, 0);
	CHECK_EQ_INT(ops[2].incomplete, 0);

	/* KILL <id>: ERR 1927 (connection killed), then the hang-up */
	query("SELECT SLEEP(5)", 400);
	pkt(&b, 1, "\xff\x87\x07#70100Connection was killed", 30);
	feed(false, &b, 450);
	CHECK_EQ_INT(nops, 4);
	CHECK_EQ_STR(ops[3].status, "1927");
	mysql__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 4);

	/* a prepare is not an operation of its own */
	{
		uint8_t p[32] = { 0x16 };

		memcpy(p + 1, "SELECT ?", 8);
		pkt(&b, 0, p, 9);
		feed(true, &b, 500);
		mysql__fail(&S, &cb, NULL);
		CHECK_EQ_INT(nops, 4);
	}

	/* a response lost in a capture gap: counted, not failed */
	query("SELECT big FROM t", 600);
	result_set(&b, 40, false, 2);
	mysql__feed(&S, false, b.d, 40, b.n + 5000, 610, 5, &cb, NULL);
	b.n = 0;
	CHECK_EQ_INT(nerr[MYSQL_ERR_LOST], 1);
	mysql__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 4);
	CHECK_EQ_INT(nerr[MYSQL_ERR_UNANSWERED], 1);
	CHECK_EQ_INT(mysql__pending(&S), 0);
	CHECK_EQ_INT(S.s2c.lost, 0);
}

int main(void)
{
	test_queries(true);
	test_queries(false);
	test_gaps_garbage();
	test_fail();
	return check_summary("test_mysql");
}
