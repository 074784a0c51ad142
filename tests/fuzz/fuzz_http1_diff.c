/* libFuzzer target: the HTTP/1.x parser's fast paths against its byte-wise
 * state machine (http1__feed_bytewise). The same stream, cut into the same
 * feeds and capture gaps, goes to both; every callback (with the whole
 * message it hands out) and the parser state after every feed must match.
 * Input: a flags byte (stream, on_head's answer), four bytes seeding the
 * cuts, then the stream. Each input is run under several cuts, the first
 * one whole heads at a time as the agent usually sees them. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1/http1.h"

enum { EV_HEAD = 1, EV_COMPLETE, EV_ERROR, EV_LOST };

struct event {
	int kind;
	int err;
	struct http1_message m;
};

struct side {
	struct event ev[2048];	/* a 4 KB feed holds at most a few hundred messages */
	int n;
	int head_ret;
};

static void push(struct side *s, int kind, int err, const struct http1_message *m)
{
	struct event *e;

	if (s->n == (int)(sizeof(s->ev) / sizeof(s->ev[0])))
		abort();
	e = &s->ev[s->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->err = err;
	if (m)
		e->m = *m;	/* padding included: both parsers start zeroed */
}

static int on_head(void *ctx, const struct http1_message *m)
{
	struct side *s = ctx;

	push(s, EV_HEAD, 0, m);
	return s->head_ret;
}

static void on_complete(void *ctx, const struct http1_message *m)
{
	push(ctx, EV_COMPLETE, 0, m);
}

static void on_error(void *ctx, enum http1_error err)
{
	push(ctx, EV_ERROR, (int)err, NULL);
}

static void on_lost(void *ctx)
{
	push(ctx, EV_LOST, 0, NULL);
}

static const struct http1_callbacks cb = { on_head, on_complete, on_error, on_lost };

#define SAME(field) do { if (a->field != b->field) { \
	fprintf(stderr, "differ: %s %llu vs %llu\n", #field, \
		(unsigned long long)a->field, (unsigned long long)b->field); abort(); } } while (0)

/* In a field name (state 8 of http1.c's enum) the name so far matters, in
 * a field value (9) what is known of the value; elsewhere these fields are
 * leftovers the next line resets, and the fast paths need not leave the
 * same ones. */
static void same_state(const struct http1_parser *a, const struct http1_parser *b)
{
	SAME(state);
	SAME(stream);
	SAME(cr);
	SAME(resyncing);
	SAME(head_sent);
	SAME(start_known);
	SAME(head_len);
	SAME(line_len);
	SAME(target_len);
	SAME(pos);
	SAME(remaining);
	SAME(num);
	SAME(te_seen);
	SAME(te_chunked);
	SAME(conn_ka);
	SAME(conn_close);
	if (a->state == 8 || a->state == 9) {
		SAME(tok_len);
		if (a->tok_len <= sizeof(a->tok) && memcmp(a->tok, b->tok, a->tok_len))
			abort();
	}
	if (a->state == 9) {
		SAME(hdr);
		SAME(vphase);
		SAME(nelem);
		SAME(vlen);
		SAME(b64_acc);
		SAME(b64_bits);
		SAME(set_n);
		if (memcmp(a->set, b->set, a->set_n < sizeof(a->set) ? a->set_n : sizeof(a->set)))
			abort();
	}
	if (http1__upgraded(a))
		SAME(upgraded_at);
	if (memcmp(&a->msg, &b->msg, sizeof(a->msg))) {
		fprintf(stderr, "differ: the message being parsed\n");
		abort();
	}
}

static void same_events(const struct side *a, const struct side *b)
{
	SAME(n);
	for (int k = 0; k < a->n; k++) {
		SAME(ev[k].kind);
		SAME(ev[k].err);
		if (memcmp(&a->ev[k].m, &b->ev[k].m, sizeof(a->ev[k].m))) {
			fprintf(stderr, "differ: message of event %d (kind %d)\n", k, a->ev[k].kind);
			abort();
		}
	}
}

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Feeds of the stream under cut `round`: round 0 cuts at each blank line
 * (whole heads), the others at random sizes, with gaps and losses. */
static size_t next_cut(const uint8_t *d, size_t i, size_t size, uint32_t *x, int round)
{
	size_t left = size - i, k;

	if (round == 0) {
		for (k = i; k + 3 < size; k++)
			if (!memcmp(d + k, "\r\n\r\n", 4))
				return k + 4 - i;
		return left;
	}
	switch (rnd(x) % 4) {
	case 0: return left;
	case 1: return 1 + rnd(x) % (left < 8 ? left : 8);
	default: return 1 + rnd(x) % left;
	}
}

static void run(const uint8_t *d, size_t size, enum http1_stream st, int head_ret,
		uint32_t seed, int round)
{
	static struct side fast, ref;
	struct http1_parser pf, pr;
	uint32_t x = seed * 2654435761u + (uint32_t)round * 40503u + 1;
	size_t i = 0;

	fast.head_ret = ref.head_ret = head_ret;
	http1__init(&pf, st);
	http1__init(&pr, st);
	while (i < size) {
		size_t cap = next_cut(d, i, size, &x, round), len = cap;
		uint8_t *copy;
		uint32_t r = round ? rnd(&x) : 3;	/* round 0: no gaps, no losses */

		if (r % 64 == 1) {	/* a feed of a gap alone */
			fast.n = ref.n = 0;
			http1__feed(&pf, d + i, 0, r % 300, &cb, &fast);
			http1__feed_bytewise(&pr, d + i, 0, r % 300, &cb, &ref);
			same_events(&fast, &ref);
			same_state(&pf, &pr);
		}
		if (r % 16 == 0)
			len += r % 700;		/* a capture gap after these bytes */
		copy = malloc(cap);	/* exact size: ASan sees reads past cap */
		if (!copy)
			abort();
		memcpy(copy, d + i, cap);
		fast.n = ref.n = 0;
		http1__feed(&pf, copy, cap, len, &cb, &fast);
		http1__feed_bytewise(&pr, copy, cap, len, &cb, &ref);
		free(copy);
		same_events(&fast, &ref);
		same_state(&pf, &pr);
		if (r % 128 == 2) {
			http1__lost(&pf);
			http1__lost(&pr);
			same_state(&pf, &pr);
		}
		i += cap;
	}
	fast.n = ref.n = 0;
	http1__close(&pf, &cb, &fast);
	http1__close(&pr, &cb, &ref);
	same_events(&fast, &ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum http1_stream st;
	uint32_t seed;
	int head_ret;

	if (size < 5)
		return 0;
	st = data[0] & 1 ? HTTP1_RESPONSES : HTTP1_REQUESTS;
	head_ret = (data[0] >> 1) % 3;	/* body, HEAD, tunnel */
	memcpy(&seed, data + 1, 4);
	for (int round = 0; round < 4; round++)
		run(data + 5, size - 5, st, head_ret, seed, round);
	return 0;
}
