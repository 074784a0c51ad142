/* Unit tests for user/proto/pg.c with byte fixtures: startup and SSL
 * negotiation, simple and extended (pipelined) queries, errors, capture
 * gaps, byte-by-byte feeds and garbage, and queries the connection failed
 * under (pg__fail). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/pg/pg.h"

static struct db_op ops[16];
static int nops, nerr[5];

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
	if (e >= 0 && e < 5)
		nerr[e]++;
}

static const struct db_callbacks cb = { on_op, on_error };

struct buf {
	uint8_t d[4096];
	size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (n)
		memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void be32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

	put(b, x, 4);
}

/* typed message; body given as bytes (may contain NULs) */
static void msg(struct buf *b, char type, const void *body, size_t n)
{
	put(b, &type, 1);
	be32(b, (uint32_t)n + 4);
	put(b, body, n);
}

static void msg_str(struct buf *b, char type, const char *s)
{
	msg(b, type, s, strlen(s) + 1);
}

static void reset(struct pg_session *s, bool startup)
{
	pg__init(s, startup);
	nops = 0;
	memset(nerr, 0, sizeof(nerr));
	memset(ops, 0, sizeof(ops));
}

static void feed(struct pg_session *s, bool fe, const struct buf *b, uint64_t t)
{
	/* exact-size copy so sanitizers catch reads past the chunk */
	uint8_t *c = malloc(b->n ? b->n : 1);

	memcpy(c, b->d, b->n);
	pg__feed(s, fe, c, b->n, b->n, t, 7, &cb, NULL);
	free(c);
}

static void ready(struct buf *b)
{
	msg(b, 'Z', "I", 1);
}

static void complete(struct buf *b, const char *tag)
{
	msg_str(b, 'C', tag);
}

static void error_resp(struct buf *b, const char *code)
{
	struct buf e = { .n = 0 };

	put(&e, "SERROR", 7);
	put(&e, "C", 1);
	put(&e, code, strlen(code) + 1);
	put(&e, "Msyntax error", 14);
	put(&e, "", 1);
	msg(b, 'E', e.d, e.n);
}

static struct pg_session S;

static void test_startup_and_simple(void)
{
	struct buf b = { .n = 0 };
	static const uint8_t ssl[] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	uint8_t startup[64];
	size_t sl;

	CHECK(pg__looks_like_startup(ssl, sizeof(ssl)));
	CHECK(!pg__looks_like_startup(ssl, 7));
	reset(&S, true);
	put(&b, ssl, sizeof(ssl));
	feed(&S, true, &b, 1);
	b.n = 0;
	put(&b, "N", 1);
	feed(&S, false, &b, 2);
	/* startup: length, protocol 3.0, "user\0postgres\0\0" */
	memcpy(startup + 8, "user\0postgres\0", 14);
	startup[22] = 0;
	sl = 23;
	startup[0] = 0; startup[1] = 0; startup[2] = 0; startup[3] = (uint8_t)sl;
	startup[4] = 0; startup[5] = 3; startup[6] = 0; startup[7] = 0;
	CHECK(pg__looks_like_startup(startup, sl));
	b.n = 0;
	put(&b, startup, sl);
	feed(&S, true, &b, 3);
	b.n = 0;
	msg(&b, 'R', "\0\0\0\0", 4);
	msg(&b, 'S', "client_encoding\0UTF8\0", 21);
	msg(&b, 'K', "\0\0\0\1\0\0\0\2", 8);
	ready(&b);
	feed(&S, false, &b, 4);
	CHECK_EQ_INT(nops, 0);

	b.n = 0;
	msg_str(&b, 'Q', "SELECT 1");
	CHECK(pg__looks_like_query(b.d, b.n));
	CHECK(!pg__looks_like_query(b.d, b.n - 1));
	feed(&S, true, &b, 100);
	b.n = 0;
	msg(&b, 'T', "\0\0", 2);
	msg(&b, 'D', "\0\1\0\0\0\1" "1", 7);
	msg_str(&b, 'N', "SNOTICE");	/* notice: skipped */
	complete(&b, "SELECT 1");
	ready(&b);
	feed(&S, false, &b, 200);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].text, "SELECT 1");
	CHECK_EQ_INT(ops[0].start_ns, 100);
	CHECK_EQ_INT(ops[0].tid, 7);
	CHECK_EQ_INT(ops[0].error, 0);
	CHECK_EQ_STR(ops[0].status, "");
	CHECK_EQ_INT(ops[0].prepared, 0);

	/* syntax error: SQLSTATE from field C */
	b.n = 0;
	msg_str(&b, 'Q', "SELEC 1");
	feed(&S, true, &b, 300);
	b.n = 0;
	error_resp(&b, "42601");
	ready(&b);
	feed(&S, false, &b, 400);
	CHECK_EQ_INT(nops, 2);
	CHECK_EQ_INT(ops[1].error, 1);
	CHECK_EQ_STR(ops[1].status, "42601");
	CHECK_EQ_INT(pg__pending(&S), 0);
	CHECK_EQ_INT(nerr[1] + nerr[2] + nerr[3], 0);
}

static void parse_msg(struct buf *b, const char *name, const char *sql)
{
	struct buf m = { .n = 0 };

	put(&m, name, strlen(name) + 1);
	put(&m, sql, strlen(sql) + 1);
	put(&m, "\0\0", 2);
	msg(b, 'P', m.d, m.n);
}

static void bind_msg(struct buf *b, const char *portal, const char *stmt)
{
	struct buf m = { .n = 0 };

	put(&m, portal, strlen(portal) + 1);
	put(&m, stmt, strlen(stmt) + 1);
	put(&m, "\0\0\0\0\0\0", 6);
	msg(b, 'B', m.d, m.n);
}

static void exec_msg(struct buf *b, const char *portal)
{
	struct buf m = { .n = 0 };

	put(&m, portal, strlen(portal) + 1);
	put(&m, "\0\0\0\0", 4);
	msg(b, 'E', m.d, m.n);
}

static void test_extended(void)
{
	struct buf b = { .n = 0 };

	reset(&S, false);
	/* prepare once (P + S), execute twice later by name */
	parse_msg(&b, "s1", "UPDATE t SET a = $1 WHERE id = $2");
	msg(&b, 'S', NULL, 0);
	feed(&S, true, &b, 10);
	b.n = 0;
	msg(&b, '1', NULL, 0);
	ready(&b);
	feed(&S, false, &b, 11);
	CHECK_EQ_INT(nops, 0);
	/* two pipelined executions, one Sync each */
	b.n = 0;
	for (int i = 0; i < 2; i++) {
		bind_msg(&b, "", "s1");
		msg(&b, 'D', "P\0", 2);
		exec_msg(&b, "");
		msg(&b, 'S', NULL, 0);
	}
	feed(&S, true, &b, 20);
	CHECK_EQ_INT(pg__pending(&S), 2);
	b.n = 0;
	msg(&b, '2', NULL, 0);
	msg(&b, 'n', NULL, 0);
	complete(&b, "UPDATE 1");
	ready(&b);
	feed(&S, false, &b, 30);
	CHECK_EQ_INT(nops, 1);
	b.n = 0;
	msg(&b, '2', NULL, 0);
	error_resp(&b, "23505");
	ready(&b);
	feed(&S, false, &b, 40);
	CHECK_EQ_INT(nops, 2);
	CHECK_EQ_STR(ops[0].text, "UPDATE t SET a = $1 WHERE id = $2");
	CHECK_EQ_INT(ops[0].prepared, 1);
	CHECK_EQ_INT(ops[0].error, 0);
	CHECK_EQ_INT(ops[0].start_ns, 20);
	CHECK_EQ_STR(ops[1].text, "UPDATE t SET a = $1 WHERE id = $2");
	CHECK_EQ_STR(ops[1].status, "23505");

	/* an error in Parse: the server skips to Sync; both executes before
	 * it: one error span, the second never ran */
	b.n = 0;
	parse_msg(&b, "", "SELEC x");
	bind_msg(&b, "", "");
	exec_msg(&b, "");
	parse_msg(&b, "", "SELECT 2");
	bind_msg(&b, "", "");
	exec_msg(&b, "");
	msg(&b, 'S', NULL, 0);
	feed(&S, true, &b, 50);
	b.n = 0;
	error_resp(&b, "42601");
	ready(&b);
	feed(&S, false, &b, 60);
	CHECK_EQ_INT(nops, 3);
	CHECK_EQ_STR(ops[2].text, "SELEC x");
	CHECK_EQ_STR(ops[2].status, "42601");
	CHECK_EQ_INT(pg__pending(&S), 0);

	/* Close statement: a later Execute of it has no SQL */
	b.n = 0;
	msg(&b, 'C', "Ss1\0", 4);
	bind_msg(&b, "", "s1");
	exec_msg(&b, "");
	msg(&b, 'S', NULL, 0);
	feed(&S, true, &b, 70);
	b.n = 0;
	msg(&b, '3', NULL, 0);
	complete(&b, "SELECT 0");
	ready(&b);
	feed(&S, false, &b, 80);
	CHECK_EQ_INT(nops, 4);
	CHECK_EQ_STR(ops[3].text, "");
	CHECK_EQ_INT(ops[3].prepared, 1);
	CHECK_EQ_INT(nerr[1] + nerr[2] + nerr[3], 0);
}

static void test_bytewise_gaps_garbage(void)
{
	struct buf b = { .n = 0 }, r = { .n = 0 };
	uint8_t one;

	/* byte by byte in both directions */
	reset(&S, false);
	msg_str(&b, 'Q', "SELECT 'a'");
	for (size_t i = 0; i < b.n; i++) {
		one = b.d[i];
		pg__feed(&S, true, &one, 1, 1, 100 + i, 9, &cb, NULL);
	}
	complete(&r, "SELECT 1");
	ready(&r);
	for (size_t i = 0; i < r.n; i++) {
		one = r.d[i];
		pg__feed(&S, false, &one, 1, 1, 500, 9, &cb, NULL);
	}
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].text, "SELECT 'a'");
	CHECK_EQ_INT(ops[0].start_ns, 100);

	/* a query longer than captured: text is what was captured */
	reset(&S, false);
	b.n = 0;
	msg_str(&b, 'Q', "SELECT * FROM big_table WHERE x = 1");
	pg__feed(&S, true, b.d, 20, b.n, 1, 1, &cb, NULL);
	feed(&S, false, &r, 2);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].text, "SELECT * FROM b");
	CHECK_EQ_INT(ops[0].text_cut, 1);

	/* a result whose middle is not captured, gap inside one message */
	reset(&S, false);
	b.n = 0;
	msg_str(&b, 'Q', "SELECT 1");
	feed(&S, true, &b, 1);
	b.n = 0;
	{
		char big[600];

		memset(big, 'x', sizeof(big));
		msg(&b, 'D', big, sizeof(big));
	}
	complete(&b, "SELECT 1");
	ready(&b);
	{
		/* 10 bytes captured, 590 of the DataRow not: then the rest */
		uint8_t *tail = b.d + 605;

		pg__feed(&S, false, b.d, 10, 605, 2, 1, &cb, NULL);
		pg__feed(&S, false, tail, b.n - 605, b.n - 605, 3, 1, &cb, NULL);
	}
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_INT(nerr[PG_ERR_LOST], 0);

	/* a gap across a message boundary: lost, then resync on a new message */
	reset(&S, false);
	b.n = 0;
	msg_str(&b, 'Q', "SELECT 1");
	feed(&S, true, &b, 1);
	pg__feed(&S, false, (const uint8_t *)"D\0\0\0\x05x", 5, 4000, 2, 1, &cb, NULL);
	CHECK_EQ_INT(nerr[PG_ERR_LOST], 1);
	b.n = 0;
	complete(&b, "SELECT 1");
	ready(&b);
	feed(&S, false, &b, 3);
	CHECK_EQ_INT(nops, 1);

	/* garbage: counted, never a crash; then a valid exchange works */
	reset(&S, false);
	{
		uint8_t g[512];

		srand(4);
		for (int round = 0; round < 200; round++) {
			size_t n = (size_t)(rand() % (int)sizeof(g));

			for (size_t i = 0; i < n; i++)
				g[i] = (uint8_t)rand();
			pg__feed(&S, round & 1, g, n, n + (size_t)(rand() % 3) * 100, 1, 1, &cb, NULL);
		}
	}
	CHECK(nerr[PG_ERR_BAD_HEADER] > 0);
	reset(&S, false);
	b.n = 0;
	msg_str(&b, 'Q', "SELECT 3");
	feed(&S, true, &b, 1);
	b.n = 0;
	complete(&b, "SELECT 1");
	ready(&b);
	feed(&S, false, &b, 2);
	CHECK_EQ_INT(nops, 1);

	/* SSL accepted: the rest is ciphertext, ignored */
	reset(&S, true);
	b.n = 0;
	put(&b, "\0\0\0\x08\x04\xd2\x16\x2f", 8);
	feed(&S, true, &b, 1);
	pg__feed(&S, false, (const uint8_t *)"S\x16\x03\x01", 4, 4, 2, 1, &cb, NULL);
	pg__feed(&S, true, (const uint8_t *)"\x16\x03\x01\x02\x00", 5, 5, 3, 1, &cb, NULL);
	CHECK_EQ_INT(S.encrypted, 1);
	CHECK_EQ_INT(nerr[PG_ERR_BAD_HEADER] + nerr[PG_ERR_LOST], 0);

	/* pipelining deeper than followed: oldest forgotten, counted */
	reset(&S, false);
	b.n = 0;
	for (int i = 0; i < PG_PENDING + 2; i++)
		msg_str(&b, 'Q', "SELECT 1");
	feed(&S, true, &b, 1);
	CHECK_EQ_INT(nerr[PG_ERR_OVERFLOW], 2);
	CHECK_EQ_INT(pg__pending(&S), PG_PENDING);
}

/* The connection fails under waiting queries: each becomes a failed op;
 * one cut off mid-result is also incomplete; a FATAL already read keeps its
 * SQLSTATE (no second report); nothing pending, nothing reported. */
static void test_fail(void)
{
	struct buf b = { .n = 0 };

	/* nothing pending */
	reset(&S, false);
	pg__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 0);

	/* a simple query, no answer at all */
	b.n = 0;
	msg_str(&b, 'Q', "SELECT pg_sleep(5)");
	feed(&S, true, &b, 100);
	CHECK_EQ_INT(pg__pending(&S), 1);
	pg__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].text, "SELECT pg_sleep(5)");
	CHECK_EQ_INT(ops[0].start_ns, 100);
	CHECK_EQ_INT(ops[0].tid, 7);
	CHECK_EQ_INT(ops[0].failed, 1);
	CHECK_EQ_INT(ops[0].incomplete, 0);
	CHECK_EQ_INT(ops[0].error, 0);
	CHECK_EQ_STR(ops[0].status, "");
	CHECK_EQ_INT(pg__pending(&S), 0);
	pg__fail(&S, &cb, NULL);	/* twice: nothing more */
	CHECK_EQ_INT(nops, 1);

	/* a result set cut off: row description and a row, then the end */
	b.n = 0;
	msg_str(&b, 'Q', "SELECT * FROM t");
	feed(&S, true, &b, 200);
	b.n = 0;
	msg(&b, 'T', "\0\0", 2);
	msg(&b, 'D', "\0\1\0\0\0\1" "1", 7);
	put(&b, "D\0\0\0\x20" "abc", 8);	/* and half a row */
	feed(&S, false, &b, 250);
	pg__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 2);
	CHECK_EQ_STR(ops[1].text, "SELECT * FROM t");
	CHECK_EQ_INT(ops[1].failed, 1);
	CHECK_EQ_INT(ops[1].incomplete, 1);
	/* between messages again: the next exchange parses */
	b.n = 0;
	msg_str(&b, 'Q', "SELECT 2");
	feed(&S, true, &b, 300);
	b.n = 0;
	complete(&b, "SELECT 1");
	ready(&b);
	feed(&S, false, &b, 350);
	CHECK_EQ_INT(nops, 3);
	CHECK_EQ_STR(ops[2].text, "SELECT 2");
	CHECK_EQ_INT(ops[2].failed, 0);
	CHECK_EQ_INT(ops[2].incomplete, 0);

	/* pg_terminate_backend: FATAL 57P01, no ReadyForQuery, then EOF */
	b.n = 0;
	msg_str(&b, 'Q', "SELECT pg_sleep(5)");
	feed(&S, true, &b, 400);
	b.n = 0;
	error_resp(&b, "57P01");
	feed(&S, false, &b, 450);
	CHECK_EQ_INT(nops, 3);
	pg__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 4);
	CHECK_EQ_INT(ops[3].error, 1);
	CHECK_EQ_STR(ops[3].status, "57P01");
	CHECK_EQ_INT(ops[3].failed, 0);
	CHECK_EQ_INT(ops[3].incomplete, 0);
	CHECK_EQ_INT(pg__pending(&S), 0);

	/* extended, pipelined: three executes and a Sync, the first answered */
	reset(&S, false);
	b.n = 0;
	parse_msg(&b, "s1", "UPDATE a SET x = $1");
	for (int i = 0; i < 3; i++) {
		bind_msg(&b, "", "s1");
		exec_msg(&b, "");
	}
	msg(&b, 'S', "", 0);
	feed(&S, true, &b, 500);
	b.n = 0;
	msg(&b, '1', "", 0);
	msg(&b, '2', "", 0);
	complete(&b, "UPDATE 1");
	feed(&S, false, &b, 550);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_INT(ops[0].failed, 0);
	pg__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 3);
	for (int i = 1; i < 3; i++) {
		CHECK_EQ_STR(ops[i].text, "UPDATE a SET x = $1");
		CHECK_EQ_INT(ops[i].failed, 1);
		CHECK_EQ_INT(ops[i].incomplete, 0);
		CHECK_EQ_INT(ops[i].prepared, 1);
		CHECK_EQ_INT(ops[i].start_ns, 500);
	}
	CHECK_EQ_INT(pg__pending(&S), 0);
	CHECK_EQ_INT(S.qlen, 0);	/* the Sync marker too */

	/* answers possibly hidden by a capture gap: counted, not failed */
	reset(&S, false);
	b.n = 0;
	msg_str(&b, 'Q', "SELECT 1");
	feed(&S, true, &b, 1);
	pg__feed(&S, false, (const uint8_t *)"D\0\0\0\x05x", 5, 4000, 2, 1, &cb, NULL);
	b.n = 0;
	msg_str(&b, 'Q', "SELECT 2");
	feed(&S, true, &b, 3);
	pg__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 0);
	CHECK_EQ_INT(nerr[PG_ERR_UNANSWERED], 2);
	CHECK_EQ_INT(pg__pending(&S), 0);
	CHECK_EQ_INT(S.be.lost, 0);
}

int main(void)
{
	test_startup_and_simple();
	test_extended();
	test_bytewise_gaps_garbage();
	test_fail();
	return check_summary("test_pg");
}
