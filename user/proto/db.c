/* Glue between conntrack and the database wire parsers. Timing follows the
 * HTTP rule: a server span runs from the read that returned the request's
 * first bytes to the write that finished the result; a client span from
 * the write(2) entry of the request to the read that finished the result. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "util/proc.h"
#include "proto/mysql/mysql.h"
#include "proto/pg/pg.h"
#include "proto/redis/redis.h"
#include "span/sql.h"
#include "span/tracectx.h"

#define PG_PORT 5432
#define MYSQL_PORT 3306

struct dbconn {
	uint8_t proto;		/* enum dbconn_proto */
	uint8_t parsed_ok;	/* at least one operation reported */
	uint8_t inference_counted;
	uint8_t encrypted_told;
	uint8_t tls;		/* fed plaintext from the TLS uprobes */
	uint64_t last_resp_ns;	/* last chunk in the result direction */
	union {
		struct pg_session pg;
		struct mysql_session my;
		struct redis_session redis;
	} u;
};

struct feed {
	struct dbconn *d;
	const struct dbconn_peer *peer;
	const struct sonde_data_event *ev;	/* NULL: failing (dbconn__fail) */
	const char *fail;	/* error.type of the operations reported failed */
	uint64_t end_ns;	/* when the connection failed */
};

static dbconn_claim_fn claim;
static dbconn_encrypted_fn encrypted_hook;
static dbconn_wire_fn wire_hook;

void dbconn__set_wire_hook(dbconn_wire_fn fn)
{
	wire_hook = fn;
}

void dbconn__set_encrypted_hook(dbconn_encrypted_fn fn)
{
	encrypted_hook = fn;
}

void dbconn__set_claim(dbconn_claim_fn fn)
{
	claim = fn;
}

const char *dbconn__proto_name(enum dbconn_proto p)
{
	switch (p) {
	case DBCONN_PG: return "postgresql";
	case DBCONN_MYSQL: return "mysql";
	case DBCONN_REDIS: return "redis";
	default: return "unknown";
	}
}

static bool has_port(const struct sonde_data_event *ev, uint16_t port)
{
	return ev->tuple.sport == port || ev->tuple.dport == port;
}

/* sender_is_client: who wrote the bytes in this protocol. */
static bool role_fits(const struct sonde_data_event *ev, bool sender_is_client, uint8_t *role)
{
	bool egress = ev->dir == SONDE_DIR_EGRESS;
	uint8_t r = egress == sender_is_client ? SONDE_ROLE_CLIENT : SONDE_ROLE_SERVER;

	if (*role != SONDE_ROLE_UNKNOWN && *role != r)
		return false;
	*role = r;
	return true;
}

enum dbconn_proto dbconn__infer(const struct sonde_data_event *ev, uint8_t *role, bool *from_start)
{
	const uint8_t *d = ev->data;
	size_t n = ev->cap_len;

	*from_start = true;
	if (pg__looks_like_startup(d, n) && role_fits(ev, true, role))
		return DBCONN_PG;
	/* MySQL: the server speaks first */
	if (mysql__looks_like_greeting(d, n) && role_fits(ev, false, role))
		return DBCONN_MYSQL;
	if (redis__looks_like_command(d, n) && role_fits(ev, true, role))
		return DBCONN_REDIS;
	/* Connections older than the agent: a query, on the usual port only
	 * (the bytes alone are too weak a sign elsewhere). */
	*from_start = false;
	if (has_port(ev, PG_PORT) && pg__looks_like_query(d, n) && role_fits(ev, true, role))
		return DBCONN_PG;
	if (has_port(ev, MYSQL_PORT) && mysql__looks_like_command(d, n) && role_fits(ev, true, role))
		return DBCONN_MYSQL;
	return DBCONN_NONE;
}

struct dbconn *dbconn__new(enum dbconn_proto p, bool from_start)
{
	size_t sz = offsetof(struct dbconn, u);
	struct dbconn *d;

	switch (p) {
	case DBCONN_PG: sz += sizeof(struct pg_session); break;
	case DBCONN_MYSQL: sz += sizeof(struct mysql_session); break;
	case DBCONN_REDIS: sz += sizeof(struct redis_session); break;
	default: return NULL;
	}
	/* only the union member in use is allocated */
	d = calloc(1, sz < sizeof(*d) ? sz : sizeof(*d));
	if (!d)
		return NULL;
	d->proto = (uint8_t)p;
	if (p == DBCONN_PG)
		pg__init(&d->u.pg, from_start);
	else if (p == DBCONN_MYSQL)
		mysql__init(&d->u.my, from_start);
	else
		redis__init(&d->u.redis);
	return d;
}

void dbconn__free(struct dbconn *d, struct dbconn_stats *stats)
{
	size_t pending = 0;

	if (!d)
		return;
	if (d->proto == DBCONN_PG)
		pending = pg__pending(&d->u.pg);
	else if (d->proto == DBCONN_MYSQL)
		pending = mysql__pending(&d->u.my);
	else if (d->proto == DBCONN_REDIS)
		pending = redis__pending(&d->u.redis);
	if (stats)
		stats->unanswered[d->proto] += pending;
	free(d);
}

static const char *system_name(const struct dbconn *d)
{
	switch (d->proto) {
	case DBCONN_PG: return "postgresql";
	case DBCONN_MYSQL: return d->u.my.mariadb ? "mariadb" : "mysql";
	default: return "redis";
	}
}

static void on_op(void *arg, const struct db_op *op)
{
	struct feed *x = arg;
	const struct dbconn_peer *p = x->peer;
	struct dbconn *d = x->d;
	const char *text = op->text;
	size_t text_len = op->text_len;
	char claimed[DBOP_TEXT_MAX];
	uint64_t call_ns;
	struct span s;

	memset(&s, 0, sizeof(s));
	s.kind = p->role == SONDE_ROLE_SERVER ? SPAN_SERVER : SPAN_CLIENT;
	s.start_ns = op->start_ns;
	/* a result not seen to its end ends with the last result bytes seen;
	 * one the connection failed under, when it failed */
	if (op->failed)
		s.end_ns = x->end_ns;
	else
		s.end_ns = op->incomplete || !x->ev ? d->last_resp_ns : x->ev->hdr.ktime;
	if (s.end_ns < s.start_ns)
		s.end_ns = s.start_ns;
	s.tgid = p->tgid;
	s.tid = op->tid;
	memcpy(s.comm, p->comm, sizeof(s.comm));
	s.service = proc__service(p->tgid, p->exe, p->comm);
	s.tuple = *p->tuple;
	s.proto = SPAN_DB;
	s.incomplete = op->incomplete;
	/* plaintext from the TLS uprobes (SSL_read/SSL_write), not the wire */
	s.tls = d->tls;
	s.db_system = system_name(d);
	if (s.kind == SPAN_CLIENT && d->proto != DBCONN_REDIS && claim &&
	    claim(op->tid, op->start_ns, &call_ns, claimed, sizeof(claimed))) {
		/* the library call that sent this request (uprobe): one span,
		 * timed from the call; its SQL names a statement prepared
		 * before the agent started */
		s.start_ns = call_ns;
		if (!op->text_len && claimed[0]) {
			text = claimed;
			text_len = strlen(claimed);
		}
	}
	/* Trace context: a client span is a child of the server span its
	 * thread is serving (tracectx.c, as for HTTP client requests; a
	 * database request carries no traceparent of its own). A server span
	 * has no incoming context: a root. */
	if (s.kind == SPAN_CLIENT) {
		static const struct http1_message no_headers;

		tracectx__client_request(p->tgid, op->tid, p->tuple, &no_headers, &s.ctx);
	} else {
		tracectx__random_id(s.ctx.trace_id, 16);
		tracectx__random_id(s.ctx.span_id, 8);
		s.ctx.trace_flags = 0x01;
	}
	if (d->proto == DBCONN_REDIS) {
		snprintf(s.db_operation, sizeof(s.db_operation), "%s", op->name);
		snprintf(s.db_query, sizeof(s.db_query), "%s", op->text);
	} else {
		enum sql_dialect dl = d->proto == DBCONN_PG ? SQL_POSTGRES : SQL_MYSQL;

		sql__normalize(text, text_len, dl, s.db_query, sizeof(s.db_query));
		sql__operation(text, text_len, s.db_operation, sizeof(s.db_operation));
		sql__collection(text, text_len, s.db_collection, sizeof(s.db_collection));
		if (!s.db_operation[0] && op->prepared)	/* prepared before the agent started */
			snprintf(s.db_operation, sizeof(s.db_operation), "EXECUTE");
	}
	snprintf(s.db_status, sizeof(s.db_status), "%s", op->status);
	if (op->error)
		snprintf(s.error_type, sizeof(s.error_type), "%s", op->status[0] ? op->status : "_OTHER");
	else if (op->failed)
		snprintf(s.error_type, sizeof(s.error_type), "%s", x->fail);
	d->parsed_ok = 1;
	p->stats->spans[d->proto]++;
	if (op->failed)
		p->stats->failed[d->proto]++;
	if (p->on_span)
		p->on_span(p->arg, &s);
}

static void on_error(void *arg, int reason)
{
	struct feed *x = arg;
	struct dbconn *d = x->d;
	struct dbconn_stats *st = x->peer->stats;

	if (d->proto == DBCONN_REDIS && reason == REDIS_ERR_UNMATCHED) {
		st->unmatched[d->proto]++;
		return;
	}
	/* forgotten operations (a lost answer, pipelining deeper than
	 * followed) are not malformed input */
	if ((d->proto == DBCONN_MYSQL && reason == MYSQL_ERR_UNANSWERED) ||
	    (d->proto == DBCONN_PG && (reason == PG_ERR_OVERFLOW || reason == PG_ERR_UNANSWERED)) ||
	    (d->proto == DBCONN_REDIS &&
	     (reason == REDIS_ERR_OVERFLOW || reason == REDIS_ERR_UNANSWERED))) {
		st->unanswered[d->proto]++;
		return;
	}
	st->parse_errors[d->proto]++;
	/* garbage before anything parsed: the inference was probably wrong */
	if (!d->parsed_ok && !d->inference_counted) {
		d->inference_counted = 1;
		st->inference_failures[d->proto]++;
	}
}

static const struct db_callbacks callbacks = { .on_op = on_op, .on_error = on_error };

void dbconn__feed(struct dbconn *d, const struct dbconn_peer *peer,
		  const struct sonde_data_event *ev)
{
	struct feed x = { .d = d, .peer = peer, .ev = ev };
	bool server = peer->role == SONDE_ROLE_SERVER;
	bool request = server ? ev->dir == SONDE_DIR_INGRESS : ev->dir == SONDE_DIR_EGRESS;
	/* a server's read may block long before the request comes: start at
	 * its return; a client's request starts when it begins writing */
	uint64_t start = server ? ev->hdr.ktime : ev->enter_ns;

	if (!request)
		d->last_resp_ns = ev->hdr.ktime;
	d->tls = (ev->hdr.flags & SONDE_F_TLS) != 0;
	switch (d->proto) {
	case DBCONN_PG:
		pg__feed(&d->u.pg, request, ev->data, ev->cap_len, ev->len, start, ev->tid,
			 &callbacks, &x);
		break;
	case DBCONN_MYSQL:
		mysql__feed(&d->u.my, request, ev->data, ev->cap_len, ev->len, start, ev->tid,
			    &callbacks, &x);
		break;
	case DBCONN_REDIS:
		redis__feed(&d->u.redis, request, ev->data, ev->cap_len, ev->len, start, ev->tid,
			    &callbacks, &x);
		break;
	}
	if (wire_hook && !server && request && d->proto != DBCONN_REDIS &&
	    !(d->proto == DBCONN_PG && d->u.pg.encrypted) &&
	    !(d->proto == DBCONN_MYSQL && mysql__encrypted(&d->u.my)))
		wire_hook(ev->tid, ev->enter_ns);
	if (!d->encrypted_told && encrypted_hook &&
	    ((d->proto == DBCONN_PG && d->u.pg.encrypted) ||
	     (d->proto == DBCONN_MYSQL && mysql__encrypted(&d->u.my)))) {
		d->encrypted_told = 1;
		encrypted_hook(peer->tgid);
	}
}

void dbconn__fail(struct dbconn *d, const struct dbconn_peer *peer, const char *error_type,
		  uint64_t end_ns)
{
	struct feed x = { .d = d, .peer = peer, .ev = NULL, .fail = error_type, .end_ns = end_ns };

	if (!d || peer->role == SONDE_ROLE_SERVER)
		return;
	switch (d->proto) {
	case DBCONN_PG:
		pg__fail(&d->u.pg, &callbacks, &x);
		break;
	case DBCONN_MYSQL:
		mysql__fail(&d->u.my, &callbacks, &x);
		break;
	case DBCONN_REDIS:
		redis__fail(&d->u.redis, &callbacks, &x);
		break;
	}
}
