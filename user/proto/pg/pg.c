/* PostgreSQL v3 protocol follower. Framing: 1-byte type + 4-byte
 * big-endian length (the length counts itself), except the frontend's
 * startup packets which have no type byte. Pairing: queries are queued in
 * the order the frontend sent them; CommandComplete/ErrorResponse answer
 * the oldest Execute, ReadyForQuery ends a simple query or a Sync. */
#include <string.h>

#include "proto/pg/pg.h"

#define PG_SSL_CODE 80877103u
#define PG_GSS_CODE 80877104u
#define PG_CANCEL_CODE 80877102u
#define PG_PROTO_3 0x00030000u
#define PG_MAX_LEN (1u << 30)

enum { K_SIMPLE = 1, K_EXEC = 2, K_SYNC = 3 };

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool fe_type(uint8_t t)
{
	return t && strchr("QPBESDCHFXpdcf", t);
}

static bool be_type(uint8_t t)
{
	return t && strchr("RSKZTDCIENA123ntsGHWdcVv", t);
}

void pg__init(struct pg_session *s, bool expect_startup)
{
	memset(&s->fe, 0, sizeof(s->fe));
	memset(&s->be, 0, sizeof(s->be));
	s->startup = expect_startup;
	s->ssl_answer = s->encrypted = 0;
	s->qhead = s->qlen = 0;
	s->answering = s->unsure = 0;
	s->clock = 0;
	s->ops = 0;
	memset(s->stmts, 0, sizeof(s->stmts));
	memset(s->portals, 0, sizeof(s->portals));
}

size_t pg__pending(const struct pg_session *s)
{
	size_t n = 0;

	for (uint8_t i = 0; i < s->qlen; i++)
		n += s->qkind[(s->qhead + i) % PG_PENDING] != K_SYNC;
	return n;
}

size_t pg__lost(struct pg_session *s)
{
	size_t n = pg__pending(s);

	memset(&s->fe, 0, sizeof(s->fe));
	memset(&s->be, 0, sizeof(s->be));
	s->fe.lost = s->be.lost = 1;
	s->startup = s->ssl_answer = 0;
	s->qhead = s->qlen = 0;
	s->answering = s->unsure = 0;
	return n;
}

bool pg__looks_like_startup(const uint8_t *d, size_t n)
{
	uint32_t len, code;

	if (n < 8)
		return false;
	len = be32(d);
	code = be32(d + 4);
	if (code == PG_SSL_CODE || code == PG_GSS_CODE)
		return len == 8;
	if (code == PG_CANCEL_CODE)
		return len == 16;
	return code == PG_PROTO_3 && len >= 8 && len <= 10000;
}

bool pg__looks_like_query(const uint8_t *d, size_t n)
{
	uint32_t len;

	if (n < 6 || (d[0] != 'Q' && d[0] != 'P'))
		return false;
	len = be32(d + 1);
	/* the whole message in this chunk: its SQL ends with a NUL at the end */
	return len >= 5 && len < PG_MAX_LEN && (size_t)len + 1 == n && d[n - 1] == 0;
}

static void error(const struct db_callbacks *cb, void *ctx, enum pg_error e)
{
	if (cb->on_error)
		cb->on_error(ctx, e);
}

/* NUL-terminated string at body[*off], bounded by blen; NULL if cut. */
static const char *cstr(const struct pg_stream *st, size_t *off, size_t *len)
{
	const uint8_t *p = st->body + *off, *z;

	if (*off >= st->blen)
		return NULL;
	z = memchr(p, 0, st->blen - *off);
	if (!z)
		return NULL;
	*len = (size_t)(z - p);
	*off += *len + 1;
	return (const char *)p;
}

static void pop(struct pg_session *s)
{
	s->qhead = (s->qhead + 1) % PG_PENDING;
	s->qlen--;
	s->answering = 0;
	if (s->unsure)
		s->unsure--;
}

static struct db_op *push(struct pg_session *s, int kind, const struct pg_stream *st,
			  const struct db_callbacks *cb, void *ctx)
{
	struct db_op *op;
	uint8_t i;

	if (s->qlen == PG_PENDING) {
		pop(s);
		error(cb, ctx, PG_ERR_OVERFLOW);
	}
	i = (s->qhead + s->qlen) % PG_PENDING;
	s->qlen++;
	s->qkind[i] = (uint8_t)kind;
	op = &s->q[i];
	memset(op, 0, offsetof(struct db_op, text));
	op->text[0] = 0;
	op->start_ns = st->start_ns;
	op->tid = st->tid;
	return op;
}

static void reset(struct pg_stream *st);

static void finish_head(struct pg_session *s, const struct db_callbacks *cb, void *ctx)
{
	struct db_op *op = &s->q[s->qhead];

	s->ops++;
	if (cb->on_op)
		cb->on_op(ctx, op);
	pop(s);
}

static int stmt_find(const struct pg_session *s, const char *name, size_t len)
{
	if (len >= PG_NAME_MAX)
		return -1;
	for (int i = 0; i < PG_STMTS; i++)
		if (s->stmts[i].used && strlen(s->stmts[i].name) == len &&
		    memcmp(s->stmts[i].name, name, len) == 0)
			return i;
	return -1;
}

static void on_parse(struct pg_session *s, const struct pg_stream *st)
{
	size_t off = 0, nlen, qlen;
	const char *name = cstr(st, &off, &nlen), *sql;
	bool cut = false;
	int i;

	if (!name || nlen >= PG_NAME_MAX)
		return;
	sql = cstr(st, &off, &qlen);
	if (!sql) {	/* SQL longer than what was kept: use what there is */
		sql = (const char *)st->body + off;
		qlen = st->blen - off;
		cut = true;
	}
	i = stmt_find(s, name, nlen);
	if (i < 0) {	/* a free slot, else the least recently used */
		i = 0;
		for (int j = 0; j < PG_STMTS; j++)
			if (s->stmts[j].used < s->stmts[i].used)
				i = j;
	}
	memcpy(s->stmts[i].name, name, nlen);
	s->stmts[i].name[nlen] = 0;
	if (qlen >= DBOP_TEXT_MAX) {
		qlen = DBOP_TEXT_MAX - 1;
		cut = true;
	}
	memcpy(s->stmts[i].sql, sql, qlen);
	s->stmts[i].sql[qlen] = 0;
	s->stmts[i].len = (uint16_t)qlen;
	s->stmts[i].cut = cut;
	s->stmts[i].used = ++s->clock;
}

static struct pg_portal *portal_find(struct pg_session *s, const char *name, size_t len)
{
	if (len >= PG_NAME_MAX)
		return NULL;
	for (int i = 0; i < PG_PORTALS; i++)
		if (s->portals[i].used && strlen(s->portals[i].name) == len &&
		    memcmp(s->portals[i].name, name, len) == 0)
			return &s->portals[i];
	return NULL;
}

static void on_bind(struct pg_session *s, const struct pg_stream *st)
{
	size_t off = 0, plen, slen;
	const char *portal = cstr(st, &off, &plen), *stmt;
	struct pg_portal *p;
	int i;

	if (!portal || plen >= PG_NAME_MAX || !(stmt = cstr(st, &off, &slen)))
		return;
	p = portal_find(s, portal, plen);
	if (!p) {
		/* the unnamed portal is by far the most common: keep slot 0 for it */
		p = &s->portals[plen ? 1 + s->clock % (PG_PORTALS - 1) : 0];
		memcpy(p->name, portal, plen);
		p->name[plen] = 0;
		p->used = 1;
	}
	i = stmt_find(s, stmt, slen);
	p->stmt = (int8_t)i;
	if (i >= 0) {
		s->stmts[i].used = ++s->clock;
		p->stmt_used = s->stmts[i].used;
	}
}

static void on_execute(struct pg_session *s, const struct pg_stream *st,
		       const struct db_callbacks *cb, void *ctx)
{
	size_t off = 0, plen;
	const char *portal = cstr(st, &off, &plen);
	struct pg_portal *p = portal ? portal_find(s, portal, plen) : NULL;
	struct db_op *op = push(s, K_EXEC, st, cb, ctx);

	op->prepared = 1;
	if (p && p->stmt >= 0 && s->stmts[p->stmt].used == p->stmt_used) {
		const struct pg_stmt *ps = &s->stmts[p->stmt];

		dbop__set_text(op, ps->sql, ps->len, ps->cut);
	}
}

static void on_close(struct pg_session *s, const struct pg_stream *st)
{
	size_t off = 1, len;
	const char *name;

	if (st->blen < 2)
		return;
	name = cstr(st, &off, &len);
	if (!name)
		return;
	if (st->body[0] == 'S') {
		int i = stmt_find(s, name, len);

		if (i >= 0)
			s->stmts[i].used = 0;
	} else if (st->body[0] == 'P') {
		struct pg_portal *p = portal_find(s, name, len);

		if (p)
			p->used = 0;
	}
}

static void frontend_msg(struct pg_session *s, const struct db_callbacks *cb, void *ctx)
{
	struct pg_stream *st = &s->fe;
	size_t off = 0, len;

	if (st->type == 0) {	/* startup packet */
		uint32_t code = st->blen >= 4 ? be32(st->body) : 0;

		if (code == PG_SSL_CODE || code == PG_GSS_CODE)
			s->ssl_answer = 1;
		else if (code == PG_PROTO_3)
			s->startup = 0;
		return;
	}
	switch (st->type) {
	case 'Q': {
		const char *sql = cstr(st, &off, &len);
		struct db_op *op = push(s, K_SIMPLE, st, cb, ctx);

		if (sql)
			dbop__set_text(op, sql, len, st->cut);
		else	/* cut by capture: what was kept */
			dbop__set_text(op, (const char *)st->body, st->blen, true);
		break;
	}
	case 'P': on_parse(s, st); break;
	case 'B': on_bind(s, st); break;
	case 'E': on_execute(s, st, cb, ctx); break;
	case 'S': push(s, K_SYNC, st, cb, ctx); break;
	case 'C': on_close(s, st); break;
	default: break;	/* Flush, Describe, COPY data, FunctionCall, Terminate */
	}
}

/* ErrorResponse: fields of a type byte and a string; 'C' is the SQLSTATE. */
static void error_code(const struct pg_stream *st, struct db_op *op)
{
	size_t off = 0, len;

	op->error = 1;
	while (off < st->blen && st->body[off]) {
		uint8_t f = st->body[off++];
		const char *v = cstr(st, &off, &len);

		if (!v)
			return;
		if (f == 'C') {
			if (len >= DBOP_STATUS_MAX)
				len = DBOP_STATUS_MAX - 1;
			memcpy(op->status, v, len);
			op->status[len] = 0;
			return;
		}
	}
}

static void backend_msg(struct pg_session *s, const struct db_callbacks *cb, void *ctx)
{
	struct pg_stream *st = &s->be;
	uint8_t kind = s->qlen ? s->qkind[s->qhead] : 0, qlen = s->qlen;

	switch (st->type) {
	case 'C': case 'I': case 's':	/* CommandComplete, EmptyQuery, PortalSuspended */
		if (kind == K_EXEC)
			finish_head(s, cb, ctx);
		break;
	case 'E':
		if (kind == K_EXEC) {
			error_code(st, &s->q[s->qhead]);
			finish_head(s, cb, ctx);
		} else if (kind == K_SIMPLE && !s->q[s->qhead].error) {
			error_code(st, &s->q[s->qhead]);
		}
		break;
	case 'Z':
		/* Executes still queued before the Sync were skipped by the
		 * server after an error: they never ran. */
		while (s->qlen) {
			kind = s->qkind[s->qhead];
			if (kind == K_SIMPLE) {
				finish_head(s, cb, ctx);
				break;
			}
			pop(s);
			if (kind == K_SYNC)
				break;
		}
		return;
	case 'N': case 'S': case 'A': case 'K': case 'R':
		return;	/* notices, parameters, notifications: not a result */
	default:
		break;
	}
	/* row descriptions, rows, a statement of a multi-statement query
	 * done: the oldest query's result is on its way (still open unless
	 * the message above finished it) */
	if (s->qlen == qlen && qlen && kind != K_SYNC)
		s->answering = 1;
}

void pg__fail(struct pg_session *s, const struct db_callbacks *cb, void *ctx)
{
	while (s->qlen) {
		uint8_t kind = s->qkind[s->qhead];
		struct db_op *op = &s->q[s->qhead];

		if (kind == K_SYNC) {
			pop(s);
		} else if (s->unsure || s->be.lost) {
			error(cb, ctx, PG_ERR_UNANSWERED);
			pop(s);
		} else {
			/* an ErrorResponse already answered it (a FATAL such as
			 * 57P01 comes before the hang-up): that is its outcome */
			if (!op->error) {
				op->failed = 1;
				op->incomplete = s->answering;
			}
			finish_head(s, cb, ctx);
		}
	}
	reset(&s->fe);
	reset(&s->be);
	s->fe.lost = s->be.lost = 0;
	s->ssl_answer = 0;
}

static void reset(struct pg_stream *st)
{
	st->hlen = 0;
	st->in_body = 0;
	st->cut = 0;
	st->blen = 0;
	st->remaining = 0;
}

static void deliver(struct pg_session *s, bool fe, const struct db_callbacks *cb, void *ctx)
{
	if (fe)
		frontend_msg(s, cb, ctx);
	else
		backend_msg(s, cb, ctx);
	reset(fe ? &s->fe : &s->be);
}

void pg__feed(struct pg_session *s, bool fe, const uint8_t *d, size_t cap, size_t len,
	      uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx)
{
	struct pg_stream *st = fe ? &s->fe : &s->be;
	size_t i = 0, gap = len > cap ? len - cap : 0;

	if (s->encrypted)
		return;
	if (st->lost) {
		/* resynchronise only on a chunk that starts with a plausible header */
		if (cap < 5 || !(fe ? fe_type(d[0]) : be_type(d[0])) || be32(d + 1) < 4 ||
		    be32(d + 1) > PG_MAX_LEN)
			return;
		st->lost = 0;
		reset(st);
	}
	while (i < cap) {
		if (!fe && s->ssl_answer) {
			s->ssl_answer = 0;
			if (d[i] == 'S' || d[i] == 'G') {
				s->encrypted = 1;
				return;
			}
			i++;	/* 'N': startup follows in plaintext */
			continue;
		}
		if (!st->in_body) {
			size_t need = (fe && s->startup) ? 4 : 5;
			uint32_t mlen;

			if (st->hlen == 0) {
				st->start_ns = start_ns;
				st->tid = tid;
			}
			while (st->hlen < need && i < cap)
				st->hdr[st->hlen++] = d[i++];
			if (st->hlen < need)
				break;
			st->type = need == 5 ? st->hdr[0] : 0;
			mlen = be32(st->hdr + need - 4);
			if (mlen < 4 || mlen > PG_MAX_LEN ||
			    (need == 5 && !(fe ? fe_type(st->type) : be_type(st->type))) ||
			    (need == 4 && mlen > 10000)) {
				error(cb, ctx, PG_ERR_BAD_HEADER);
				reset(st);
				st->lost = 1;
				if (!fe)
					s->unsure = s->qlen;
				return;
			}
			st->remaining = mlen - 4;
			st->in_body = 1;
			if (!st->remaining)
				deliver(s, fe, cb, ctx);
			continue;
		}
		{
			size_t n = cap - i, keep;

			if (n > st->remaining)
				n = st->remaining;
			keep = n;
			if (keep > (size_t)(PG_BODY_MAX - st->blen))
				keep = (size_t)(PG_BODY_MAX - st->blen);
			if (keep > 0) {
				memcpy(st->body + st->blen, d + i, keep);
				st->blen += (uint16_t)keep;
			}
			if (keep < n)
				st->cut = 1;
			i += n;
			st->remaining -= (uint32_t)n;
			if (!st->remaining)
				deliver(s, fe, cb, ctx);
			if (s->encrypted)
				return;
		}
	}
	if (!gap)
		return;
	if (st->in_body && gap <= st->remaining) {
		st->remaining -= (uint32_t)gap;
		st->cut = 1;
		if (!st->remaining)
			deliver(s, fe, cb, ctx);
		return;
	}
	/* the gap runs past the message being read: what follows is unknown */
	if (st->in_body) {
		st->cut = 1;
		deliver(s, fe, cb, ctx);
	}
	reset(st);
	st->lost = 1;
	if (!fe)	/* answers may be in the gap */
		s->unsure = s->qlen;
	error(cb, ctx, PG_ERR_LOST);
}
