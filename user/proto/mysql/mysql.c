/* MySQL / MariaDB protocol follower. The classic protocol is strictly
 * request → response, so one command is pending at a time; its response is
 * skipped packet by packet (column count, column definitions, optional EOF,
 * rows, then EOF/OK; SERVER_MORE_RESULTS_EXISTS loops). A packet of
 * 0xffffff bytes continues in the next one: they form one logical packet. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "proto/mysql/mysql.h"

enum phase { PH_GREETING = 0, PH_LOGIN, PH_AUTH, PH_COMMAND, PH_DONE };
enum rstate { RS_IDLE = 0, RS_FIRST, RS_COLDEFS, RS_COLEOF, RS_ROWS, RS_SKIP };

#define COM_QUIT 0x01
#define COM_QUERY 0x03
#define COM_STMT_PREPARE 0x16
#define COM_STMT_EXECUTE 0x17
#define COM_STMT_SEND_LONG_DATA 0x18
#define COM_STMT_CLOSE 0x19
#define SERVER_MORE_RESULTS_EXISTS 0x0008
#define PKT_MAX 0xffffffu

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le24(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static uint32_t le32(const uint8_t *p)
{
	return le24(p) | (uint32_t)p[3] << 24;
}

void mysql__init(struct mysql_session *s, bool from_start)
{
	memset(&s->c2s, 0, sizeof(s->c2s));
	memset(&s->s2c, 0, sizeof(s->s2c));
	s->phase = from_start ? PH_GREETING : PH_COMMAND;
	s->mariadb = 0;
	s->cmd = 0;
	s->rstate = RS_IDLE;
	s->emit = 0;
	s->tls = 0;
	/* mid-stream: modern clients and servers both set DEPRECATE_EOF */
	s->caps = from_start ? 0 : MYSQL_CLIENT_DEPRECATE_EOF | MYSQL_CLIENT_PROTOCOL_41;
	s->left = 0;
	s->clock = 0;
	s->ops = 0;
	s->version[0] = 0;
	memset(s->stmts, 0, sizeof(s->stmts));
}

size_t mysql__pending(const struct mysql_session *s)
{
	return s->cmd && s->emit;
}

size_t mysql__lost(struct mysql_session *s)
{
	size_t n = mysql__pending(s);

	memset(&s->c2s, 0, sizeof(s->c2s));
	memset(&s->s2c, 0, sizeof(s->s2c));
	s->c2s.lost = s->s2c.lost = 1;
	if (s->phase < PH_COMMAND)
		s->phase = PH_COMMAND;
	s->cmd = 0;
	s->rstate = RS_IDLE;
	s->emit = 0;
	s->left = 0;
	return n;
}

bool mysql__encrypted(const struct mysql_session *s)
{
	return s->tls;
}

bool mysql__looks_like_greeting(const uint8_t *d, size_t n)
{
	size_t plen, i;

	if (n < 6 || d[3] != 0 || d[4] != 0x0a)
		return false;
	plen = le24(d);
	if (plen < 20 || plen > 1024)
		return false;
	/* version: printable up to its NUL */
	for (i = 5; i < n && d[i]; i++)
		if (d[i] < 0x20 || d[i] > 0x7e || i - 5 > 60)
			return false;
	return i > 5;
}

bool mysql__looks_like_command(const uint8_t *d, size_t n)
{
	return n >= 5 && d[3] == 0 && (d[4] == COM_QUERY || d[4] == COM_STMT_PREPARE) &&
	       le24(d) + 4 == n && le24(d) > 1;
}

static void error(const struct db_callbacks *cb, void *ctx, enum mysql_error e)
{
	if (cb->on_error)
		cb->on_error(ctx, e);
}

/* Length-encoded integer at *p (advanced); false when cut. */
static bool lenenc(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint8_t c;
	int n;

	if (*p >= end)
		return false;
	c = *(*p)++;
	if (c < 0xfb) {
		*v = c;
		return true;
	}
	n = c == 0xfc ? 2 : c == 0xfd ? 3 : c == 0xfe ? 8 : -1;
	if (n < 0 || end - *p < n)
		return false;
	*v = 0;
	for (int i = n - 1; i >= 0; i--)
		*v = *v << 8 | (*p)[i];
	*p += n;
	return true;
}

static void finish(struct mysql_session *s, const struct db_callbacks *cb, void *ctx)
{
	if (s->emit) {
		s->ops++;
		if (cb->on_op)
			cb->on_op(ctx, &s->op);
	}
	s->cmd = 0;
	s->emit = 0;
	s->rstate = RS_IDLE;
}

static struct mysql_stmt *stmt_find(struct mysql_session *s, uint32_t id)
{
	for (int i = 0; i < MYSQL_STMTS; i++)
		if (s->stmts[i].used && s->stmts[i].id == id)
			return &s->stmts[i];
	return NULL;
}

static void command(struct mysql_session *s, const struct db_callbacks *cb, void *ctx)
{
	const struct mysql_stream *st = &s->c2s;
	uint8_t cmd = st->blen ? st->body[0] : 0;

	if (s->cmd) {
		/* the previous response was not seen to its end */
		if (s->emit) {
			s->op.incomplete = 1;
			finish(s, cb, ctx);
		}
		error(cb, ctx, MYSQL_ERR_UNANSWERED);
		s->cmd = 0;
	}
	/* a response may have been half lost: realign on this command */
	memset(&s->s2c, 0, offsetof(struct mysql_stream, body));
	if (!cmd || cmd == COM_QUIT || cmd == COM_STMT_SEND_LONG_DATA)
		return;
	if (cmd == COM_STMT_CLOSE) {
		struct mysql_stmt *m = st->blen >= 5 ? stmt_find(s, le32(st->body + 1)) : NULL;

		if (m)
			m->used = 0;
		return;
	}
	s->cmd = cmd;
	s->rstate = RS_FIRST;
	memset(&s->op, 0, offsetof(struct db_op, text));
	s->op.text[0] = 0;
	s->op.start_ns = st->start_ns;
	s->op.tid = st->tid;
	if (cmd == COM_QUERY || cmd == COM_STMT_PREPARE) {
		/* prepare: not a span itself, the text is kept for its id */
		s->emit = cmd == COM_QUERY;
		dbop__set_text(&s->op, st->body + 1, st->blen - 1u, st->cut);
	} else if (cmd == COM_STMT_EXECUTE) {
		struct mysql_stmt *m = st->blen >= 5 ? stmt_find(s, le32(st->body + 1)) : NULL;

		s->emit = 1;
		s->op.prepared = 1;
		if (m) {
			m->used = ++s->clock;
			dbop__set_text(&s->op, m->sql, m->len, m->cut);
		}
	}
}

static void err_packet(struct mysql_session *s, const struct mysql_stream *st)
{
	s->op.error = 1;
	if (st->blen >= 3)
		snprintf(s->op.status, sizeof(s->op.status), "%u", le16(st->body + 1));
}

static void prepared(struct mysql_session *s, const struct mysql_stream *st)
{
	struct mysql_stmt *m;
	uint32_t ncols, nparams;
	bool eof = !(s->caps & MYSQL_CLIENT_DEPRECATE_EOF);
	int i = 0;

	if (st->blen < 12) {
		s->rstate = RS_IDLE;
		return;
	}
	for (int j = 0; j < MYSQL_STMTS; j++)
		if (s->stmts[j].used < s->stmts[i].used)
			i = j;
	m = &s->stmts[i];
	m->id = le32(st->body + 1);
	m->used = ++s->clock;
	memcpy(m->sql, s->op.text, s->op.text_len + 1u);
	m->len = s->op.text_len;
	m->cut = s->op.text_cut;
	ncols = le16(st->body + 5);
	nparams = le16(st->body + 7);
	s->left = nparams + ncols + (eof && nparams) + (eof && ncols);
	s->rstate = s->left ? RS_SKIP : RS_IDLE;
}

/* OK/EOF status flags say another result set follows. */
static bool more_results(const struct mysql_session *s, const struct mysql_stream *st)
{
	const uint8_t *p = st->body + 1, *end = st->body + st->blen;
	uint64_t v;

	if (st->body[0] == 0xfe && st->plen < 9)	/* EOF: warnings, status */
		return st->blen >= 5 && (le16(st->body + 3) & SERVER_MORE_RESULTS_EXISTS);
	(void)s;
	if (!lenenc(&p, end, &v) || !lenenc(&p, end, &v) || end - p < 2)
		return false;
	return le16(p) & SERVER_MORE_RESULTS_EXISTS;
}

static void response(struct mysql_session *s, const struct db_callbacks *cb, void *ctx)
{
	const struct mysql_stream *st = &s->s2c;
	uint8_t b = st->blen ? st->body[0] : 0;
	bool deprecate = s->caps & MYSQL_CLIENT_DEPRECATE_EOF;
	uint64_t n;

	switch (s->rstate) {
	case RS_IDLE:
		return;		/* nothing asked (or a response already over) */
	case RS_FIRST:
		if (b == 0xff) {
			err_packet(s, st);
			finish(s, cb, ctx);
		} else if (b == 0x00 && s->cmd == COM_STMT_PREPARE) {
			prepared(s, st);
			if (s->rstate == RS_IDLE)
				finish(s, cb, ctx);
		} else if (b == 0x00 || (b == 0xfe && st->plen < 9)) {
			if (!more_results(s, st))
				finish(s, cb, ctx);
		} else if (b == 0xfb) {
			/* LOCAL INFILE: the client sends the file, then OK/ERR */
		} else {
			const uint8_t *p = st->body;

			if (!lenenc(&p, st->body + st->blen, &n) || n == 0) {
				error(cb, ctx, MYSQL_ERR_BAD_PACKET);
				s->op.incomplete = 1;
				finish(s, cb, ctx);
				return;
			}
			s->left = n;
			s->rstate = RS_COLDEFS;
		}
		return;
	case RS_COLDEFS:
		if (--s->left == 0)
			s->rstate = deprecate ? RS_ROWS : RS_COLEOF;
		return;
	case RS_COLEOF:
		s->rstate = RS_ROWS;
		return;
	case RS_ROWS:
		if (b == 0xff) {
			err_packet(s, st);
			finish(s, cb, ctx);
		} else if (b == 0xfe && (deprecate ? st->plen < PKT_MAX : st->plen < 9)) {
			if (more_results(s, st))
				s->rstate = RS_FIRST;
			else
				finish(s, cb, ctx);
		}
		return;
	case RS_SKIP:
		if (--s->left == 0)
			finish(s, cb, ctx);
		return;
	}
}

void mysql__fail(struct mysql_session *s, const struct db_callbacks *cb, void *ctx)
{
	if (s->cmd && s->emit) {
		if (s->s2c.lost) {
			error(cb, ctx, MYSQL_ERR_UNANSWERED);
		} else {
			s->op.failed = 1;
			s->op.incomplete = s->rstate != RS_FIRST || s->s2c.in_body || s->s2c.hlen;
			finish(s, cb, ctx);
		}
	}
	s->cmd = 0;
	s->emit = 0;
	s->rstate = RS_IDLE;
	memset(&s->c2s, 0, offsetof(struct mysql_stream, body));
	memset(&s->s2c, 0, offsetof(struct mysql_stream, body));
}

static void greeting(struct mysql_session *s, const struct mysql_stream *st)
{
	const uint8_t *z;
	size_t vlen, off;

	if (st->blen < 2 || st->body[0] != 0x0a) {
		s->phase = PH_DONE;	/* ERR instead of a greeting: refused */
		return;
	}
	z = memchr(st->body + 1, 0, st->blen - 1u);
	vlen = z ? (size_t)(z - st->body - 1) : st->blen - 1u;
	if (vlen >= sizeof(s->version))
		vlen = sizeof(s->version) - 1;
	memcpy(s->version, st->body + 1, vlen);
	s->version[vlen] = 0;
	s->mariadb = strstr(s->version, "MariaDB") != NULL;
	/* thread id (4), auth data (8), filler (1), capabilities low (2),
	 * charset (1), status (2), capabilities high (2) */
	off = 1 + vlen + 1 + 4 + 8 + 1;
	s->caps = 0;
	if (z && off + 2 <= st->blen)
		s->caps = le16(st->body + off);
	if (z && off + 7 <= st->blen)
		s->caps |= le16(st->body + off + 5) << 16;
	s->phase = PH_LOGIN;
}

static void packet(struct mysql_session *s, bool client, const struct db_callbacks *cb, void *ctx)
{
	const struct mysql_stream *st = client ? &s->c2s : &s->s2c;

	switch (s->phase) {
	case PH_GREETING:
		if (!client)
			greeting(s, st);
		return;
	case PH_LOGIN:
		if (client && st->blen >= 4) {
			uint32_t caps = le32(st->body);

			s->caps &= caps;
			/* a 32-byte SSLRequest: TLS from here on */
			s->tls = (caps & MYSQL_CLIENT_SSL) && st->plen == 32;
			s->phase = s->tls ? PH_DONE : PH_AUTH;
		}
		return;
	case PH_AUTH:
		if (!client && st->blen && (st->body[0] == 0x00 || st->body[0] == 0xff))
			s->phase = st->body[0] == 0x00 ? PH_COMMAND : PH_DONE;
		return;
	case PH_COMMAND:
		if (client) {
			if (st->seq == 0)
				command(s, cb, ctx);
		} else {
			response(s, cb, ctx);
		}
		return;
	default:
		return;
	}
}

static void reset(struct mysql_stream *st)
{
	st->hlen = 0;
	st->in_body = 0;
	st->cut = 0;
	st->blen = 0;
	st->remaining = 0;
}

void mysql__feed(struct mysql_session *s, bool client, const uint8_t *d, size_t cap, size_t len,
		 uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx)
{
	struct mysql_stream *st = client ? &s->c2s : &s->s2c;
	size_t i = 0, gap = len > cap ? len - cap : 0;

	if (s->phase == PH_DONE)
		return;
	if (st->lost) {
		/* the client side realigns on a command (sequence 0); the server
		 * side is realigned by the next command (see command()) */
		if (!client || cap < 5 || d[3] != 0)
			return;
		st->lost = 0;
		reset(st);
	}
	while (i < cap) {
		if (!st->in_body) {
			if (st->hlen == 0 && st->blen == 0) {
				st->start_ns = start_ns;
				st->tid = tid;
			}
			while (st->hlen < 4 && i < cap)
				st->hdr[st->hlen++] = d[i++];
			if (st->hlen < 4)
				break;
			st->plen = le24(st->hdr);
			st->seq = st->hdr[3];
			st->remaining = st->plen;
			st->in_body = 1;
			st->hlen = 0;
		}
		{
			size_t n = cap - i, keep;

			if (n > st->remaining)
				n = st->remaining;
			keep = n;
			if (keep > (size_t)(MYSQL_BODY_MAX - st->blen))
				keep = (size_t)(MYSQL_BODY_MAX - st->blen);
			if (keep) {
				memcpy(st->body + st->blen, d + i, keep);
				st->blen += (uint16_t)keep;
			}
			if (keep < n)
				st->cut = 1;
			i += n;
			st->remaining -= (uint32_t)n;
		}
		if (!st->remaining) {
			st->in_body = 0;
			if (st->plen == PKT_MAX)
				continue;	/* the logical packet goes on */
			packet(s, client, cb, ctx);
			reset(st);
			if (s->phase == PH_DONE)
				return;
		}
	}
	if (!gap)
		return;
	if (st->in_body && gap <= st->remaining) {
		st->remaining -= (uint32_t)gap;
		st->cut = 1;
		if (!st->remaining && st->plen != PKT_MAX) {
			packet(s, client, cb, ctx);
			reset(st);
		} else if (!st->remaining) {
			st->in_body = 0;
		}
		return;
	}
	if (st->in_body && client) {	/* a long query: its text is what was kept */
		st->cut = 1;
		packet(s, client, cb, ctx);
	}
	reset(st);
	st->lost = 1;
	error(cb, ctx, MYSQL_ERR_LOST);
}
