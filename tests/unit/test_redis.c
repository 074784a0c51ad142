/* Unit tests for user/proto/redis.c: RESP2/RESP3 commands and replies,
 * inline commands, pipelining, errors, nesting, gaps and garbage, and
 * commands the connection failed under (redis__fail). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/redis/redis.h"

static struct db_op ops[64];
static int nops, nerr[6];

static void on_op(void *ctx, const struct db_op *op)
{
	(void)ctx;
	if (nops < 64)
		ops[nops] = *op;
	nops++;
}

static void on_error(void *ctx, int e)
{
	(void)ctx;
	if (e >= 0 && e < 6)
		nerr[e]++;
}

static const struct db_callbacks cb = { on_op, on_error };
static struct redis_session S;

static void reset(void)
{
	redis__init(&S);
	nops = 0;
	memset(nerr, 0, sizeof(nerr));
}

static void feed(bool req, const char *s, uint64_t t)
{
	size_t n = strlen(s);
	uint8_t *c = malloc(n ? n : 1);

	memcpy(c, s, n);
	redis__feed(&S, req, c, n, n, t, 3, &cb, NULL);
	free(c);
}

/* The connection fails under waiting commands: each becomes a failed op
 * (the one whose reply was being read also incomplete); nothing waiting,
 * nothing; replies possibly lost in a gap: counted instead. */
static void test_fail(void)
{
	reset();
	redis__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 0);

	/* BLPOP, killed before any reply */
	feed(true, "*3\r\n$5\r\nBLPOP\r\n$4\r\nlist\r\n$1\r\n0\r\n", 100);
	CHECK_EQ_INT(redis__pending(&S), 1);
	redis__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].name, "BLPOP");
	CHECK_EQ_STR(ops[0].text, "BLPOP ? ?");
	CHECK_EQ_INT(ops[0].start_ns, 100);
	CHECK_EQ_INT(ops[0].tid, 3);
	CHECK_EQ_INT(ops[0].failed, 1);
	CHECK_EQ_INT(ops[0].incomplete, 0);
	CHECK_EQ_INT(ops[0].error, 0);
	CHECK_EQ_STR(ops[0].status, "");
	CHECK_EQ_INT(redis__pending(&S), 0);
	redis__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 1);

	/* pipelined: four commands, the first answered, the second's reply cut
	 * in its bulk payload, two more waiting */
	feed(true, "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
		   "*1\r\n$4\r\nINCR\r\n*1\r\n$4\r\nPING\r\n", 200);
	feed(false, "+x\r\n$10\r\nhel", 210);
	CHECK_EQ_INT(nops, 2);
	redis__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 5);
	CHECK_EQ_STR(ops[2].text, "GET ?");
	CHECK_EQ_INT(ops[2].failed, 1);
	CHECK_EQ_INT(ops[2].incomplete, 1);
	CHECK_EQ_STR(ops[3].name, "INCR");
	CHECK_EQ_INT(ops[3].failed, 1);
	CHECK_EQ_INT(ops[3].incomplete, 0);
	CHECK_EQ_STR(ops[4].name, "PING");
	CHECK_EQ_INT(ops[4].failed, 1);
	CHECK_EQ_INT(ops[4].incomplete, 0);
	CHECK_EQ_INT(ops[4].start_ns, 200);

	/* between messages again: the next exchange parses */
	feed(true, "*1\r\n$4\r\nPING\r\n", 300);
	feed(false, "+PONG\r\n", 310);
	CHECK_EQ_INT(nops, 6);
	CHECK_EQ_INT(ops[5].failed, 0);
	CHECK_EQ_INT(nerr[REDIS_ERR_SYNTAX] + nerr[REDIS_ERR_LOST] + nerr[REDIS_ERR_UNMATCHED], 0);

	/* QUIT then the hang-up, the +OK not read: no failure */
	feed(true, "*1\r\n$4\r\nQUIT\r\n", 350);
	redis__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 6);
	CHECK_EQ_INT(redis__pending(&S), 0);

	/* replies lost in a gap: the command sent after it is not known failed */
	redis__feed(&S, false, (const uint8_t *)"$100\r\nab", 9, 300, 400, 3, &cb, NULL);
	CHECK_EQ_INT(nerr[REDIS_ERR_LOST], 1);
	feed(true, "*1\r\n$4\r\nPING\r\n", 410);
	redis__fail(&S, &cb, NULL);
	CHECK_EQ_INT(nops, 6);
	CHECK_EQ_INT(nerr[REDIS_ERR_UNANSWERED], 1);
	CHECK_EQ_INT(redis__pending(&S), 0);
}

int main(void)
{
	const char *set = "*3\r\n$3\r\nset\r\n$8\r\nuser:123\r\n$6\r\nsecret\r\n";

	reset();
	CHECK(redis__looks_like_command((const uint8_t *)set, strlen(set)));
	CHECK(!redis__looks_like_command((const uint8_t *)"*3\r\nx", 5));
	CHECK(!redis__looks_like_command((const uint8_t *)"GET / HTTP/1.1", 14));
	feed(true, set, 10);
	feed(false, "+OK\r\n", 11);
	CHECK_EQ_INT(nops, 1);
	CHECK_EQ_STR(ops[0].name, "SET");
	CHECK_EQ_STR(ops[0].text, "SET ? ?");
	CHECK_EQ_INT(ops[0].start_ns, 10);
	CHECK_EQ_INT(ops[0].tid, 3);
	CHECK_EQ_INT(ops[0].error, 0);

	/* pipelined: 3 commands, then 3 replies (bulk, null, error) */
	feed(true, "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*1\r\n$4\r\nINCR\r\n", 20);
	CHECK_EQ_INT(redis__pending(&S), 3);
	feed(false, "$5\r\nhello\r\n$-1\r\n-ERR wrong number of arguments\r\n", 21);
	CHECK_EQ_INT(nops, 4);
	CHECK_EQ_STR(ops[1].text, "GET ?");
	CHECK_EQ_STR(ops[3].name, "INCR");
	CHECK_EQ_INT(ops[3].error, 1);
	CHECK_EQ_STR(ops[3].status, "ERR");
	CHECK_EQ_INT(ops[1].start_ns, 20);

	/* nested array reply and RESP3 map/attribute/push; push is no reply */
	feed(true, "*1\r\n$5\r\nHELLO\r\n", 30);
	feed(false, "%2\r\n+server\r\n+redis\r\n+modes\r\n*2\r\n:1\r\n#t\r\n", 31);
	CHECK_EQ_INT(nops, 5);
	feed(true, "*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n", 40);
	feed(false, ">2\r\n+invalidate\r\n*1\r\n$1\r\nk\r\n", 41);
	CHECK_EQ_INT(nops, 5);
	feed(false, "|1\r\n+ttl\r\n:3\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n", 42);
	CHECK_EQ_INT(nops, 6);
	CHECK_EQ_STR(ops[5].name, "KEYS");
	feed(true, "*1\r\n$3\r\nDEL\r\n", 45);
	feed(false, "!21\r\nSYNTAX invalid syntax\r\n", 46);
	CHECK_EQ_INT(nops, 7);
	CHECK_EQ_INT(ops[6].error, 1);

	/* byte by byte, and the command name split across feeds */
	{
		const char *c = "*2\r\n$6\r\nEXISTS\r\n$3\r\nkey\r\n", *r = ":1\r\n";

		for (size_t i = 0; i < strlen(c); i++)
			redis__feed(&S, true, (const uint8_t *)c + i, 1, 1, 50 + i, 3, &cb, NULL);
		for (size_t i = 0; i < strlen(r); i++)
			redis__feed(&S, false, (const uint8_t *)r + i, 1, 1, 99, 3, &cb, NULL);
	}
	CHECK_EQ_INT(nops, 8);
	CHECK_EQ_STR(ops[7].text, "EXISTS ?");
	CHECK_EQ_INT(ops[7].start_ns, 50);

	/* inline command */
	feed(true, "PING\r\n", 60);
	feed(false, "+PONG\r\n", 61);
	CHECK_EQ_INT(nops, 9);
	CHECK_EQ_STR(ops[8].name, "PING");
	CHECK_EQ_STR(ops[8].text, "PING");

	/* many arguments: shape capped */
	feed(true, "*12\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n"
		   "$1\r\nb\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nx\r\n", 70);
	feed(false, "+OK\r\n", 71);
	CHECK_EQ_INT(nops, 10);
	CHECK_EQ_STR(ops[9].text, "MSET ? ? ? ? ? ? ? ? ...");

	/* a large value whose middle is not captured: still framed */
	{
		char big[200];
		size_t n = (size_t)snprintf(big, sizeof(big), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000\r\nxxxx");

		redis__feed(&S, true, (const uint8_t *)big, n, n + 10000 - 4, 80, 3, &cb, NULL);
		feed(true, "\r\n", 80);
		feed(false, "+OK\r\n", 81);
	}
	CHECK_EQ_INT(nops, 11);
	CHECK_EQ_STR(ops[10].text, "SET ? ?");
	CHECK_EQ_INT(nerr[REDIS_ERR_LOST] + nerr[REDIS_ERR_SYNTAX], 0);

	/* a reply with no command (pub/sub message): counted */
	feed(false, "+stray\r\n", 90);
	CHECK_EQ_INT(nerr[REDIS_ERR_UNMATCHED], 1);

	/* garbage: counted, resync on the next array */
	reset();
	feed(true, "*x\r\n", 1);
	CHECK_EQ_INT(nerr[REDIS_ERR_SYNTAX], 1);
	feed(true, "junk", 2);
	feed(true, "*1\r\n$4\r\nPING\r\n", 3);
	feed(false, "+PONG\r\n", 4);
	CHECK_EQ_INT(nops, 1);
	feed(false, "?what\r\n", 5);
	CHECK_EQ_INT(nerr[REDIS_ERR_SYNTAX], 2);
	{
		uint8_t g[300];

		srand(11);
		for (int round = 0; round < 300; round++) {
			size_t n = (size_t)(rand() % (int)sizeof(g));

			for (size_t i = 0; i < n; i++)
				g[i] = (uint8_t)("*$:+-\r\n0123456789abc"[rand() % 21]);
			redis__feed(&S, round & 1, g, n, n + (size_t)(rand() % 2) * 50, 1, 1, &cb, NULL);
		}
	}
	CHECK(nerr[REDIS_ERR_SYNTAX] > 2);
	/* nesting deeper than followed is an error, not a stack overflow */
	reset();
	feed(false, "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 1);
	CHECK_EQ_INT(nerr[REDIS_ERR_SYNTAX], 1);
	/* pipelining deeper than followed */
	reset();
	for (int i = 0; i < REDIS_PENDING + 3; i++)
		feed(true, "*1\r\n$4\r\nPING\r\n", 1);
	CHECK_EQ_INT(nerr[REDIS_ERR_OVERFLOW], 3);
	CHECK_EQ_INT(redis__pending(&S), REDIS_PENDING);
	test_fail();
	return check_summary("test_redis");
}
