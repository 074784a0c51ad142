/* Database wire protocols: parser operations → spans (see db.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/db.h"
#include "span/builder.h"
#include "span/semconv.h"

struct db_conn {
	const struct db_wire *w;
	uint8_t parsed_ok;	/* at least one operation reported */
	uint8_t inference_counted;
	uint8_t encrypted_told;
	uint8_t tls;		/* fed plaintext from the TLS uprobes */
	uint64_t last_resp_ns;	/* last chunk in the result direction */
	_Alignas(8) uint8_t sess[];	/* the parser's session, w->session_size bytes */
};

struct feed {
	struct db_conn *d;
	const struct proto_conn *c;
	const struct sonde_data_event *ev;	/* NULL: failing (db__fail) */
	const char *fail;	/* error.type of the operations reported failed */
	uint64_t end_ns;	/* when the connection failed */
};

bool db__has_port(const struct sonde_tuple *tuple, uint16_t port)
{
	return tuple->sport == port || tuple->dport == port;
}

enum proto_verdict db__role_fits(const struct sonde_data_event *ev, bool sender_is_client,
				 uint8_t *role)
{
	bool egress = ev->dir == SONDE_DIR_EGRESS;
	uint8_t r = egress == sender_is_client ? SONDE_ROLE_CLIENT : SONDE_ROLE_SERVER;

	if (*role != SONDE_ROLE_UNKNOWN && *role != r)
		return PROTO_NO;
	*role = r;
	return PROTO_YES;
}

void *db__open(const struct db_wire *w, enum proto_pass pass)
{
	struct db_conn *d = calloc(1, sizeof(*d) + w->session_size);

	if (!d)
		return NULL;
	d->w = w;
	w->init(d->sess, pass == PROTO_PASS_START);
	return d;
}

void db__free(void *st, struct proto_stats *stats)
{
	struct db_conn *d = st;

	if (!d)
		return;
	if (stats)
		stats[d->w->id].unanswered += d->w->pending(d->sess);
	free(d);
}

static void on_op(void *arg, const struct db_op *op)
{
	struct feed *x = arg;
	const struct proto_conn *c = x->c;
	struct db_conn *d = x->d;
	const struct db_calls *calls = c->env->db_calls;
	struct proto_stats *st = &c->env->stats[d->w->id];
	struct span_origin o = { .tgid = c->tgid, .tid = op->tid,
				 .server = c->role == SONDE_ROLE_SERVER,
				 .tls = d->tls, .comm = c->comm, .exe = c->exe, .tuple = c->tuple };
	struct span_db s = { .system = d->w->system(d->sess), .dialect = d->w->dialect,
			     .sql = d->w->sql, .name = op->name, .text = op->text,
			     .text_len = op->text_len, .prepared = op->prepared,
			     .incomplete = op->incomplete, .status = op->status, .error = op->error,
			     .fail = op->failed ? x->fail : NULL };
	char claimed[DBOP_TEXT_MAX];
	uint64_t start_ns = op->start_ns, end_ns, call_ns;

	/* a result not seen to its end ends with the last result bytes seen;
	 * one the connection failed under, when it failed */
	if (op->failed)
		end_ns = x->end_ns;
	else
		end_ns = op->incomplete || !x->ev ? d->last_resp_ns : x->ev->hdr.ktime;
	if (!o.server && d->w->uprobes && calls &&
	    calls->claim(calls->arg, op->tid, op->start_ns, &call_ns, claimed, sizeof(claimed))) {
		/* the library call that sent this request (uprobe): one span,
		 * timed from the call; its SQL names a statement prepared
		 * before the agent started */
		start_ns = call_ns;
		if (!op->text_len && claimed[0]) {
			s.text = claimed;
			s.text_len = strlen(claimed);
		}
	}
	d->parsed_ok = 1;
	st->spans++;
	if (op->failed)
		st->failed++;
	span_builder__db(c->env->spans, &o, start_ns, end_ns, &s);
}

static void on_error(void *arg, int reason)
{
	struct feed *x = arg;
	struct db_conn *d = x->d;
	struct proto_stats *st = &x->c->env->stats[d->w->id];

	switch (d->w->err_kind(reason)) {
	case DB_ERR_UNMATCHED:
		st->unmatched++;
		return;
	case DB_ERR_UNANSWERED:
		/* forgotten operations (a lost answer, pipelining deeper than
		 * followed) are not malformed input */
		st->unanswered++;
		return;
	case DB_ERR_MALFORMED:
		break;
	}
	st->parse_errors++;
	/* garbage before anything parsed: the inference was probably wrong */
	if (!d->parsed_ok && !d->inference_counted) {
		d->inference_counted = 1;
		st->inference_failures++;
	}
}

static const struct db_callbacks callbacks = { .on_op = on_op, .on_error = on_error };

void db__feed(void *st, const struct proto_conn *c, const struct sonde_data_event *ev)
{
	struct db_conn *d = st;
	struct feed x = { .d = d, .c = c, .ev = ev };
	const struct db_calls *calls = c->env->db_calls;
	bool server = c->role == SONDE_ROLE_SERVER;
	bool request = server ? ev->dir == SONDE_DIR_INGRESS : ev->dir == SONDE_DIR_EGRESS;
	/* a server's read may block long before the request comes: start at
	 * its return; a client's request starts when it begins writing */
	uint64_t start = server ? ev->hdr.ktime : ev->enter_ns;
	bool encrypted;

	if (!request)
		d->last_resp_ns = ev->hdr.ktime;
	d->tls = (ev->hdr.flags & SONDE_F_TLS) != 0;
	d->w->feed(d->sess, request, ev->data, ev->cap_len, ev->len, start, ev->tid, &callbacks, &x);
	encrypted = d->w->encrypted && d->w->encrypted(d->sess);
	if (!calls || !d->w->uprobes)
		return;
	if (!server && request && !encrypted)
		calls->wire(calls->arg, ev->tid, ev->enter_ns);
	if (encrypted && !d->encrypted_told) {
		d->encrypted_told = 1;
		calls->encrypted(calls->arg, c->tgid);
	}
}

/* Every operation still waiting on a client connection that failed becomes
 * a client span with this error.type, no db_status, ending at end_ns. One
 * the server had already answered with an error (PostgreSQL's FATAL before
 * it hangs up) keeps that error. */
static void fail_waiting(struct db_conn *d, const struct proto_conn *c, const char *error_type,
			 uint64_t end_ns)
{
	struct feed x = { .d = d, .c = c, .ev = NULL, .fail = error_type, .end_ns = end_ns };

	if (!d || c->role == SONDE_ROLE_SERVER)
		return;
	d->w->fail(d->sess, &callbacks, &x);
}

void db__fail(void *st, const struct proto_conn *c, int32_t err, uint64_t end_ns)
{
	fail_waiting(st, c, semconv__transport_error_type(err), end_ns);
}

void db__lost(void *st, const struct proto_conn *c)
{
	struct db_conn *d = st;

	c->env->stats[d->w->id].lost += d->w->lost(d->sess);
}

void db__close(void *st, const struct proto_conn *c, uint64_t end_ns)
{
	fail_waiting(st, c, SPAN_ERR_CANCELLED, end_ns);
}
