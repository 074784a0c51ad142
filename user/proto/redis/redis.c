/* RESP follower. Every element starts with a type byte and a CRLF-ended
 * line; bulk types ($ ! =) carry a length-prefixed payload, aggregates
 * (* % ~ | >) a count of elements (pairs for maps and attributes). A
 * message is complete when the top-level element is. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/redis/redis.h"

enum { S_START = 0, S_LINE, S_BULK };

#define BULK_MAX (512ull << 20)	/* Redis's own proto-max-bulk-len default */
#define COUNT_MAX (1ll << 32)

void redis__init(struct redis_session *s)
{
	memset(s, 0, sizeof(*s));
}

size_t redis__pending(const struct redis_session *s)
{
	return s->qlen;
}

size_t redis__lost(struct redis_session *s)
{
	size_t n = s->qlen;

	memset(&s->req, 0, sizeof(s->req));
	memset(&s->rep, 0, sizeof(s->rep));
	s->req.lost = s->rep.lost = 1;
	s->qhead = s->qlen = 0;
	return n;
}

bool redis__looks_like_command(const uint8_t *d, size_t n)
{
	size_t i = 1;

	if (n < 4 || d[0] != '*' || !isdigit(d[1]))
		return false;
	while (i < n && i < 12 && isdigit(d[i]))
		i++;
	if (i + 1 >= n || d[i] != '\r' || d[i + 1] != '\n')
		return false;
	return i + 2 == n || d[i + 2] == '$';
}

static void error(const struct db_callbacks *cb, void *ctx, enum redis_error e)
{
	if (cb->on_error)
		cb->on_error(ctx, e);
}

static bool type_byte(uint8_t c)
{
	return c && strchr("+-:$*_,#!=(%~|>", c);
}

/* Reports the oldest waiting command and takes it off the queue. status:
 * the error reply's prefix, NULL on success; failed: no (whole) reply,
 * the connection failed (2: its reply was being read). */
static void report(struct redis_session *s, const char *status, int failed,
		   const struct db_callbacks *cb, void *ctx)
{
	struct redis_cmd *c = &s->q[s->qhead];
	struct db_op op;
	size_t off;

	s->qhead = (s->qhead + 1) % REDIS_PENDING;
	s->qlen--;
	memset(&op, 0, sizeof(op));
	op.start_ns = c->start_ns;
	op.tid = c->tid;
	memcpy(op.name, c->name, sizeof(op.name));
	/* "SET ? ?": the shape of the command, never its arguments */
	off = (size_t)snprintf(op.text, sizeof(op.text), "%s", c->name);
	for (uint32_t i = 1; i < c->argc && i <= 8; i++)
		off += (size_t)snprintf(op.text + off, sizeof(op.text) - off, " ?");
	if (c->argc > 9)
		off += (size_t)snprintf(op.text + off, sizeof(op.text) - off, " ...");
	op.text_len = (uint16_t)off;
	if (status) {
		op.error = 1;
		snprintf(op.status, sizeof(op.status), "%s", status);
	}
	op.failed = failed != 0;
	op.incomplete = failed == 2;
	s->ops++;
	if (cb->on_op)
		cb->on_op(ctx, &op);
}

void redis__fail(struct redis_session *s, const struct db_callbacks *cb, void *ctx)
{
	/* a reply cut short (bulk payload, aggregate elements, a line) */
	bool partial = s->rep.state != S_START || s->rep.depth;

	while (s->qlen) {
		/* the server hangs up after QUIT; a client need not wait for +OK */
		if (!strcmp(s->q[s->qhead].name, "QUIT")) {
			s->qhead = (s->qhead + 1) % REDIS_PENDING;
			s->qlen--;
			continue;
		}
		if (s->rep.lost) {
			s->qhead = (s->qhead + 1) % REDIS_PENDING;
			s->qlen--;
			error(cb, ctx, REDIS_ERR_UNANSWERED);
			continue;
		}
		report(s, NULL, partial ? 2 : 1, cb, ctx);
		partial = false;
	}
	memset(&s->req, 0, sizeof(s->req));
	memset(&s->rep, 0, sizeof(s->rep));
}

static void message_done(struct redis_session *s, bool request, const struct db_callbacks *cb,
			 void *ctx)
{
	struct redis_stream *st = request ? &s->req : &s->rep;

	if (request) {
		struct redis_cmd *c;

		if (!st->name[0])
			return;
		if (s->qlen == REDIS_PENDING) {
			s->qhead = (s->qhead + 1) % REDIS_PENDING;
			s->qlen--;
			error(cb, ctx, REDIS_ERR_OVERFLOW);
		}
		c = &s->q[(s->qhead + s->qlen) % REDIS_PENDING];
		s->qlen++;
		c->start_ns = st->start_ns;
		c->tid = st->tid;
		c->argc = st->argc;
		memcpy(c->name, st->name, sizeof(c->name));
	} else if (!st->push) {
		if (!s->qlen) {
			error(cb, ctx, REDIS_ERR_UNMATCHED);
			return;
		}
		report(s, st->error ? st->status : NULL, 0, cb, ctx);
	}
}

/* An element is complete: unwind finished aggregates; true when the whole
 * message is. */
static bool element_done(struct redis_stream *st)
{
	while (st->depth) {
		if (--st->left[st->depth - 1] > 0)
			return false;
		st->depth--;
	}
	return true;
}

static void begin_message(struct redis_stream *st, uint64_t start_ns, uint32_t tid)
{
	st->start_ns = start_ns;
	st->tid = tid;
	st->depth = 0;
	st->inline_cmd = st->push = st->error = 0;
	st->name[0] = 0;
	st->name_len = 0;
	st->status[0] = 0;
	st->argc = st->argi = 0;
}

static void set_upper(char *dst, size_t n, const char *src, size_t k)
{
	size_t i;

	for (i = 0; i < k && i < n - 1; i++)
		dst[i] = (char)toupper((unsigned char)src[i]);
	dst[i] = 0;
}

/* A complete type line (without CRLF) is in st->line; returns -1 on bad
 * input, 1 when the message is complete, 0 otherwise. */
static int line_done(struct redis_stream *st, bool request)
{
	char *end;
	long long v;

	if (st->inline_cmd) {
		/* inline command: words separated by spaces; the first names it */
		size_t w = strcspn(st->line, " ");

		set_upper(st->name, sizeof(st->name), st->line, w);
		st->argc = 0;
		for (size_t i = 0; i < st->llen; i++)
			if (st->line[i] != ' ' && (i == 0 || st->line[i - 1] == ' '))
				st->argc++;
		return 1;
	}
	switch (st->type) {
	case '-':
		if (st->depth == 0) {
			st->error = 1;
			set_upper(st->status, sizeof(st->status), st->line, strcspn(st->line, " "));
		}
		return element_done(st);
	case '+': case ':': case '_': case ',': case '#': case '(':
		return element_done(st);
	case '$': case '!': case '=':
		v = strtoll(st->line, &end, 10);
		if (end == st->line || *end || v < -1 || (v > 0 && (unsigned long long)v > BULK_MAX))
			return -1;
		if (st->type == '!' && st->depth == 0) {
			st->error = 1;
			snprintf(st->status, sizeof(st->status), "ERR");
		}
		if (v == -1)
			return element_done(st);
		st->bulk_left = (uint64_t)v + 2;
		st->state = S_BULK;
		return 0;
	default:	/* aggregates */
		v = strtoll(st->line, &end, 10);
		if (end == st->line || *end || v < -1 || v > COUNT_MAX)
			return -1;
		if (st->type == '>' && st->depth == 0)
			st->push = 1;
		if (request && st->depth == 0)
			st->argc = (uint32_t)(v > 0 ? v : 0);
		if (st->type == '%')	/* map: key and value per entry */
			v *= 2;
		if (st->type == '|')	/* attribute pairs, then the element they describe */
			v = v * 2 + 1;
		if (v <= 0)
			return element_done(st);
		if (st->depth == REDIS_DEPTH)
			return -1;
		st->left[st->depth++] = v;
		return 0;
	}
}

void redis__feed(struct redis_session *s, bool request, const uint8_t *d, size_t cap, size_t len,
		 uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx)
{
	struct redis_stream *st = request ? &s->req : &s->rep;
	size_t i = 0, gap = len > cap ? len - cap : 0;
	int r;

	if (st->lost) {
		if (!cap || !type_byte(d[0]) || (request && d[0] != '*'))
			return;
		st->lost = 0;
		st->state = S_START;
	}
	while (i < cap) {
		switch (st->state) {
		case S_START:
			if (st->depth == 0)
				begin_message(st, start_ns, tid);
			st->type = d[i];
			st->llen = 0;
			st->line[0] = 0;
			if (type_byte(d[i])) {
				i++;
			} else if (request && st->depth == 0 && d[i] != '\r' && d[i] != '\n') {
				st->inline_cmd = 1;
			} else if (d[i] == '\r' || d[i] == '\n') {
				i++;	/* blank lines between inline commands */
				break;
			} else {
				goto bad;
			}
			st->state = S_LINE;
			break;
		case S_LINE: {
			uint8_t c = d[i++];

			if (c == '\n') {
				if (st->llen && st->line[st->llen - 1] == '\r')
					st->llen--;
				st->line[st->llen] = 0;
				st->state = S_START;
				r = line_done(st, request);
				if (r < 0)
					goto bad;
				if (r > 0)
					message_done(s, request, cb, ctx);
			} else if (st->llen < REDIS_LINE_MAX - 1) {
				st->line[st->llen++] = (char)c;
			} else if (!st->inline_cmd && st->type != '-' && st->type != '+') {
				goto bad;	/* numbers are never this long */
			}
			break;
		}
		case S_BULK: {
			size_t n = cap - i;

			if (n > st->bulk_left)
				n = (size_t)st->bulk_left;
			/* the command name is the first bulk string of the array */
			if (request && st->depth == 1 && st->argi == 0) {
				size_t room = sizeof(st->name) - 1 - st->name_len;
				size_t k = n;

				if (st->bulk_left <= 2)
					k = 0;
				else if (k > st->bulk_left - 2)
					k = (size_t)(st->bulk_left - 2);
				if (k > room)
					k = room;
				for (size_t j = 0; j < k; j++)
					st->name[st->name_len++] = (char)toupper(d[i + j]);
				st->name[st->name_len] = 0;
			}
			i += n;
			st->bulk_left -= n;
			if (!st->bulk_left) {
				st->state = S_START;
				if (request && st->depth == 1)
					st->argi++;
				if (element_done(st))
					message_done(s, request, cb, ctx);
			}
			break;
		}
		}
	}
	if (!gap)
		return;
	if (st->state == S_BULK && gap < st->bulk_left) {
		st->bulk_left -= gap;
		return;
	}
	if (st->state == S_BULK && gap == st->bulk_left) {
		st->bulk_left = 0;
		st->state = S_START;
		if (element_done(st))
			message_done(s, request, cb, ctx);
		return;
	}
	error(cb, ctx, REDIS_ERR_LOST);
	goto lost;
bad:
	error(cb, ctx, REDIS_ERR_SYNTAX);
lost:
	st->lost = 1;
	st->state = S_START;
	st->depth = 0;
	if (!request)	/* which replies were lost is unknown: forget the waiting commands */
		s->qlen = 0;
}
