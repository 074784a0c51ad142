/* Connection table (hash + LRU list, bounded) and the HTTP/1.x glue.
 * Timing: a server span runs from the read that returned the request's first
 * bytes to the write that finished the response; a client span from the
 * write(2) entry of the request to the read that finished the response. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conn/conn.h"
#include "util/proc.h"
#include "proto/http1/http1.h"
#include "span/route.h"
#include "span/tracectx.h"

#define PENDING_MAX 8		/* pipelined requests awaiting a response */
#define INFER_MAX_TRIES 8	/* chunks looked at before giving up on a socket of unknown role */

/* PROTO_OTHER: TLS plaintext of another protocol. The kernel cannot be told
 * to stop (the IGNORED mark is for wire bytes), so the connection is kept
 * and its records dropped here. */
enum conn_proto { PROTO_UNKNOWN = 0, PROTO_HTTP1 = 1, PROTO_DB = 2, PROTO_OTHER = 3 };

/* A connection is a socket as seen by one process: several fds may point at
 * it (inetd-style servers read stdin and write stdout, both the socket), so
 * the fd is not part of the identity. */
struct conn_key {
	uint32_t tgid;
	uint32_t pad;
	uint64_t sk;
};

struct pending {
	uint64_t start_ns;
	uint32_t tid;
	char method[HTTP1_METHOD_MAX];
	char target[HTTP1_TARGET_MAX];
	/* trace context, decided when the head was parsed (tracestate and the
	 * request ids, rarely present, live in http_state.extra) */
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	uint8_t trace_flags;
	uint8_t remote_parent;
	uint8_t has_extra;		/* extra[same index] holds this request's values */
};

/* Values few requests carry, kept out of struct pending so that a
 * connection pays for them only once one shows up. */
struct pending_extra {
	char tracestate[SPAN_TRACESTATE_MAX];
	char request_id[SPAN_HDR_ID_MAX];
	char tracking_id[SPAN_HDR_ID_MAX];
	char correlation_id[SPAN_HDR_ID_MAX];
};

struct http_state {
	struct http1_parser req, resp;
	struct pending q[PENDING_MAX];
	struct pending_extra *extra;	/* PENDING_MAX of them, or NULL until needed */
	uint8_t qhead, qlen;
	/* Span start of the request whose first bytes have been fed (server:
	 * exit of the read that returned them; client: entry of the write).
	 * Taken when a chunk begins between two requests, or when a request
	 * completes inside a chunk (the next one may begin in that chunk), so
	 * a head split over several syscalls starts at the first of them. */
	uint64_t req_start_ns;
	bool resp_unmatched;		/* current response has no request in q */
	bool resp_is_head;
	bool resp_open;			/* head delivered, body not finished */
	uint16_t resp_status;
	uint8_t resp_minor;
	bool resp_head;			/* on_head delivered (matched or not), on_complete not yet */
	bool upgraded;			/* 101 or CONNECT tunnel: no longer HTTP */
};

/* The connections of one process, so that its exit finds them at once. */
struct proc_conns {
	uint32_t tgid;
	struct proc_conns *hnext;
	struct conn *first;
};

struct conn {
	struct conn_key key;
	struct conn *hnext;
	struct conn *prev, *next;	/* LRU, most recent at head */
	struct proc_conns *proc;
	struct conn *pprev, *pnext;	/* same process */
	uint64_t last_ns;
	uint64_t last_resp_ns;		/* last chunk in the response direction */
	struct sonde_tuple tuple;
	char comm[SONDE_COMM_LEN];
	char exe[SONDE_EXE_LEN];
	uint8_t role;			/* enum sonde_role */
	uint8_t proto;			/* enum conn_proto */
	uint8_t tries;
	uint8_t tls;			/* fed from the TLS uprobes: wire bytes are ciphertext */
	struct http_state *http;
	struct dbconn *db;		/* PROTO_DB: dbconn.c */
};

struct conntrack {
	struct conn **buckets;
	struct proc_conns **pbuckets;	/* by tgid, nbuckets of them too */
	size_t nbuckets, count, max;
	struct conn *head, *tail;
	struct conntrack_ops ops;
	struct conntrack_stats stats;
};

/* What the parser callbacks need to know about the chunk being fed. */
struct feed_ctx {
	struct conntrack *t;
	struct conn *c;
	const struct sonde_data_event *ev;	/* NULL when completing at close */
	/* The connection failed under the requests still open (ev NULL):
	 * their spans end at end_ns with this error.type. */
	const char *fail;
	uint64_t end_ns;
};

static size_t key_hash(const struct conn_key *k)
{
	uint64_t h = ((uint64_t)k->tgid << 32) ^ (k->sk * 0x9e3779b97f4a7c15ULL);

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return (size_t)h;
}

struct conntrack *conntrack__new(size_t max_conns, const struct conntrack_ops *ops)
{
	struct conntrack *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max_conns ? max_conns : 1;
	t->nbuckets = 1;
	while (t->nbuckets < t->max * 2)
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->pbuckets = calloc(t->nbuckets, sizeof(*t->pbuckets));
	if (!t->buckets || !t->pbuckets) {
		free(t->buckets);
		free(t->pbuckets);
		free(t);
		return NULL;
	}
	t->ops = *ops;
	return t;
}

static void lru_unlink(struct conntrack *t, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		t->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		t->tail = c->prev;
	c->prev = c->next = NULL;
}

static void lru_push_head(struct conntrack *t, struct conn *c)
{
	c->next = t->head;
	c->prev = NULL;
	if (t->head)
		t->head->prev = c;
	t->head = c;
	if (!t->tail)
		t->tail = c;
}

static struct conn **bucket_slot(struct conntrack *t, const struct conn_key *k)
{
	struct conn **pp = &t->buckets[key_hash(k) & (t->nbuckets - 1)];

	while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static struct proc_conns **proc_slot(struct conntrack *t, uint32_t tgid)
{
	struct proc_conns **pp = &t->pbuckets[(tgid * 0x9e3779b1u) & (t->nbuckets - 1)];

	while (*pp && (*pp)->tgid != tgid)
		pp = &(*pp)->hnext;
	return pp;
}

static int proc_link(struct conntrack *t, struct conn *c)
{
	struct proc_conns **pp = proc_slot(t, c->key.tgid), *p = *pp;

	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->tgid = c->key.tgid;
		*pp = p;
	}
	c->proc = p;
	c->pprev = NULL;
	c->pnext = p->first;
	if (p->first)
		p->first->pprev = c;
	p->first = c;
	return 0;
}

static void proc_unlink(struct conntrack *t, struct conn *c)
{
	struct proc_conns *p = c->proc, **pp;

	if (c->pprev)
		c->pprev->pnext = c->pnext;
	else
		p->first = c->pnext;
	if (c->pnext)
		c->pnext->pprev = c->pprev;
	if (p->first)
		return;
	pp = proc_slot(t, p->tgid);
	*pp = p->hnext;
	free(p);
}

static void conn_free(struct conntrack *t, struct conn *c)
{
	struct conn **pp = bucket_slot(t, &c->key);

	if (*pp == c)
		*pp = c->hnext;
	lru_unlink(t, c);
	proc_unlink(t, c);
	if (c->http)
		t->stats.pending_dropped += c->http->qlen;
	if (c->http)
		free(c->http->extra);
	free(c->http);
	dbconn__free(c->db, &t->stats.db);
	free(c);
	t->count--;
}

void conntrack__free(struct conntrack *t)
{
	if (!t)
		return;
	while (t->head)
		conn_free(t, t->head);
	free(t->buckets);
	free(t->pbuckets);
	free(t);
}

static struct conn *conn_get(struct conntrack *t, const struct sonde_data_event *ev)
{
	struct conn_key k = { .tgid = ev->tgid, .sk = ev->sk };
	struct conn **pp = bucket_slot(t, &k);
	struct conn *c = *pp;

	if (c) {
		lru_unlink(t, c);
		lru_push_head(t, c);
		return c;
	}
	if (t->count >= t->max && t->tail) {
		t->stats.conns_evicted++;
		conn_free(t, t->tail);
		pp = bucket_slot(t, &k);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->key = k;
	c->role = ev->role;
	if (proc_link(t, c)) {
		free(c);
		return NULL;
	}
	*pp = c;
	lru_push_head(t, c);
	t->count++;
	return c;
}

/* ---- HTTP/1.x pairing ---- */

static bool is_server(const struct conn *c)
{
	return c->role == SONDE_ROLE_SERVER;
}

/* Does this chunk travel in the request direction of the connection? */
static bool is_request_dir(const struct conn *c, uint8_t dir)
{
	return is_server(c) ? dir == SONDE_DIR_INGRESS : dir == SONDE_DIR_EGRESS;
}

static int req_on_head(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->c->http;
	struct span_ctx ctx;
	struct pending *p;

	if (h->qlen == PENDING_MAX) {
		/* Pipelined deeper than we follow: forget the oldest. */
		h->qhead = (h->qhead + 1) % PENDING_MAX;
		h->qlen--;
		x->t->stats.pending_dropped++;
	}
	p = &h->q[(h->qhead + h->qlen) % PENDING_MAX];
	h->qlen++;
	/* A server may block in read() long before the request arrives, so its
	 * span starts when the read returns; a client's starts at write entry. */
	p->start_ns = h->req_start_ns;
	p->tid = x->ev->tid;
	memcpy(p->method, m->method, sizeof(p->method));
	memcpy(p->target, m->target, sizeof(p->target));
	/* Now, not at the response: the kernel record for this request and the
	 * thread's server context are only current while the head is parsed. */
	if (is_server(x->c))
		tracectx__server_request(x->c->key.tgid, p->tid, &x->c->tuple, m, &ctx);
	else
		tracectx__client_request(x->c->key.tgid, p->tid, &x->c->tuple, m, &ctx);
	memcpy(p->trace_id, ctx.trace_id, sizeof(p->trace_id));
	memcpy(p->span_id, ctx.span_id, sizeof(p->span_id));
	memcpy(p->parent_span_id, ctx.parent_span_id, sizeof(p->parent_span_id));
	p->trace_flags = ctx.trace_flags;
	p->remote_parent = ctx.remote_parent;
	p->has_extra = 0;
	if (ctx.tracestate[0] || m->request_id[0] || m->tracking_id[0] || m->correlation_id[0]) {
		struct pending_extra *e;

		if (!h->extra)
			h->extra = calloc(PENDING_MAX, sizeof(*h->extra));
		if (!h->extra)
			return 0;	/* out of memory: the span goes without them */
		e = &h->extra[p - h->q];
		snprintf(e->tracestate, sizeof(e->tracestate), "%s", ctx.tracestate);
		snprintf(e->request_id, sizeof(e->request_id), "%s", m->request_id);
		snprintf(e->tracking_id, sizeof(e->tracking_id), "%s", m->tracking_id);
		snprintf(e->correlation_id, sizeof(e->correlation_id), "%s", m->correlation_id);
		p->has_extra = 1;
	}
	return 0;
}

/* Start time of a request whose first bytes are in this chunk. */
static uint64_t chunk_start_ns(const struct conn *c, const struct sonde_data_event *ev)
{
	return is_server(c) ? ev->hdr.ktime : ev->enter_ns;
}

static void req_on_complete(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;

	(void)m;
	/* A pipelined request that follows in this same chunk starts here. */
	x->c->http->req_start_ns = chunk_start_ns(x->c, x->ev);
}

static void on_error(void *arg, enum http1_error err)
{
	struct feed_ctx *x = arg;

	if ((size_t)err < sizeof(x->t->stats.parse_errors) / sizeof(x->t->stats.parse_errors[0]))
		x->t->stats.parse_errors[err]++;
}

static int resp_on_head(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->c->http;

	h->resp_head = true;
	/* After 101 the bytes are another protocol in both directions: stop
	 * parsing the connection (the request side would count an error). */
	if (m->status == 101)
		h->upgraded = true;
	h->resp_unmatched = h->qlen == 0;
	if (h->resp_unmatched) {
		x->t->stats.unmatched_responses++;
		h->resp_is_head = false;
		return 0;
	}
	/* A 2xx answer to CONNECT opens a tunnel (http1.h contract): the span
	 * ends with this head, rather than the tunnel being taken for a
	 * close-delimited body that only ends when the connection closes. */
	if (strcmp(h->q[h->qhead].method, "CONNECT") == 0 && m->status >= 200 &&
	    m->status < 300) {
		h->upgraded = true;
		h->resp_is_head = false;
		return HTTP1_HEAD_TUNNEL;
	}
	h->resp_is_head = strcmp(h->q[h->qhead].method, "HEAD") == 0;
	h->resp_open = true;
	h->resp_status = m->status;
	h->resp_minor = m->version_minor;
	return h->resp_is_head;
}

/* Reports the oldest open request of the connection as a span, answered
 * by status (0: no response came), and takes it off the queue. */
static void emit_span(struct feed_ctx *x, uint16_t status, uint8_t version_minor,
		      uint8_t incomplete)
{
	struct conn *c = x->c;
	struct http_state *h = c->http;
	struct pending *p = &h->q[h->qhead];
	struct span s;

	h->qhead = (h->qhead + 1) % PENDING_MAX;
	h->qlen--;

	memset(&s, 0, sizeof(s));
	s.kind = is_server(c) ? SPAN_SERVER : SPAN_CLIENT;
	s.start_ns = p->start_ns;
	s.end_ns = x->ev ? x->ev->hdr.ktime : x->fail ? x->end_ns : c->last_resp_ns;
	if (s.end_ns < s.start_ns)
		s.end_ns = s.start_ns;
	s.tgid = c->key.tgid;
	s.tid = p->tid;
	memcpy(s.comm, c->comm, sizeof(s.comm));
	s.service = proc__service(c->key.tgid, c->exe, c->comm);
	s.tuple = c->tuple;
	memcpy(s.method, p->method, sizeof(s.method));
	memcpy(s.target, p->target, sizeof(s.target));
	route__normalize(s.target, strlen(s.target), s.route, sizeof(s.route));
	s.status = status;
	s.version_minor = version_minor;
	s.incomplete = incomplete;
	memcpy(s.ctx.trace_id, p->trace_id, sizeof(s.ctx.trace_id));
	memcpy(s.ctx.span_id, p->span_id, sizeof(s.ctx.span_id));
	memcpy(s.ctx.parent_span_id, p->parent_span_id, sizeof(s.ctx.parent_span_id));
	s.ctx.trace_flags = p->trace_flags;
	s.ctx.remote_parent = p->remote_parent;
	if (p->has_extra && h->extra) {
		const struct pending_extra *e = &h->extra[p - h->q];

		memcpy(s.ctx.tracestate, e->tracestate, sizeof(s.ctx.tracestate));
		memcpy(s.request_id, e->request_id, sizeof(s.request_id));
		memcpy(s.tracking_id, e->tracking_id, sizeof(s.tracking_id));
		memcpy(s.correlation_id, e->correlation_id, sizeof(s.correlation_id));
	}
	/* A transport failure says more than the status of a cut response. */
	if (x->fail)
		snprintf(s.error_type, sizeof(s.error_type), "%s", x->fail);
	else
		tracectx__error_type(s.error_type, sizeof(s.error_type), is_server(c), s.status);
	if (is_server(c))
		tracectx__server_done(s.tgid, s.tid, &s.ctx);
	s.tls = c->tls;
	x->t->stats.spans++;
	if (x->fail)
		x->t->stats.failed_spans++;
	if (x->t->ops.on_span)
		x->t->ops.on_span(x->t->ops.arg, &s);
}

static void resp_on_complete(void *arg, const struct http1_message *m)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->c->http;

	h->resp_open = false;
	h->resp_head = false;
	if (h->resp_unmatched || h->qlen == 0) {
		h->resp_unmatched = false;
		return;
	}
	emit_span(x, m->status, m->version_minor, m->head_incomplete);
}

static const struct http1_callbacks req_cb = {
	.on_head = req_on_head,
	.on_complete = req_on_complete,
	.on_error = on_error,
};

static void resp_on_error(void *arg, enum http1_error err)
{
	struct feed_ctx *x = arg;
	struct http_state *h = x->c->http;

	on_error(arg, err);
	/* A response lost before its head was delivered still answered the
	 * oldest request: drop that request, or every later response on the
	 * connection would be paired with the request before its own. (With
	 * the head delivered, the parser completes it and a span results.) */
	if (!h->resp_head && h->qlen) {
		h->qhead = (h->qhead + 1) % PENDING_MAX;
		h->qlen--;
		x->t->stats.pending_dropped++;
	}
}

static const struct http1_callbacks resp_cb = {
	.on_head = resp_on_head,
	.on_complete = resp_on_complete,
	.on_error = resp_on_error,
};

/* Decides whether the connection speaks HTTP/1.x, and its role when the
 * socket predates the agent. Returns true when the chunk should be parsed. */
static bool classify(struct conntrack *t, struct conn *c, const struct sonde_data_event *ev)
{
	const uint8_t *d = ev->data;
	size_t n = ev->cap_len;
	bool req = http1__looks_like_request(d, n);
	bool resp = !req && http1__looks_like_response(d, n);

	if (c->role == SONDE_ROLE_UNKNOWN && (req || resp)) {
		bool ingress = ev->dir == SONDE_DIR_INGRESS;

		c->role = (req == ingress) ? SONDE_ROLE_SERVER : SONDE_ROLE_CLIENT;
	}
	if (c->role != SONDE_ROLE_UNKNOWN) {
		bool want_req = is_request_dir(c, ev->dir);

		if ((want_req && req) || (!want_req && resp))
			goto http;
		/* Seen from its first byte (accept/connect) and not HTTP: give
		 * up now, except for a response-side chunk of a server socket,
		 * which cannot come first in HTTP. */
		if (ev->role != SONDE_ROLE_UNKNOWN || ++c->tries >= INFER_MAX_TRIES)
			return false;
		return true;
	}
	return ++c->tries < INFER_MAX_TRIES;
http:
	c->http = calloc(1, sizeof(*c->http));
	if (!c->http)
		return false;
	http1__init(&c->http->req, HTTP1_REQUESTS);
	http1__init(&c->http->resp, HTTP1_RESPONSES);
	c->proto = PROTO_HTTP1;
	/* Its later requests, and later connections to this port, can get a
	 * traceparent injected (never over TLS: sk_msg sees ciphertext). */
	if (c->role == SONDE_ROLE_CLIENT && !c->tls && t->ops.on_http_client)
		t->ops.on_http_client(t->ops.arg, ev);
	return true;
}

/* The connection as dbconn.c needs to know it for its spans. */
static struct dbconn_peer db_peer(struct conntrack *t, struct conn *c)
{
	return (struct dbconn_peer){ .tgid = c->key.tgid, .role = c->role, .comm = c->comm,
				     .exe = c->exe, .tuple = &c->tuple, .on_span = t->ops.on_span,
				     .arg = t->ops.arg, .stats = &t->stats.db };
}

/* Databases are recognised by their first message (a MySQL server speaks
 * first), so this runs before the HTTP inference gives up on the socket. */
static bool classify_db(struct conn *c, const struct sonde_data_event *ev)
{
	uint8_t role = c->role;
	bool from_start;
	enum dbconn_proto p = dbconn__infer(ev, &role, &from_start);

	if (p == DBCONN_NONE)
		return false;
	/* reclassified (TLS plaintext replacing the wire): a fresh parser */
	dbconn__free(c->db, NULL);
	if (!(c->db = dbconn__new(p, from_start)))
		return false;
	c->role = role;
	c->proto = PROTO_DB;
	return true;
}

/* A TLS record header (RFC 8446 §5.1: content type 20..23, legacy version
 * 3.x), or the lone first byte of one (nginx peeks at a single byte). */
static bool looks_like_tls(const uint8_t *d, size_t n)
{
	if (n == 0 || d[0] < 0x14 || d[0] > 0x17)
		return false;
	return n == 1 || (d[1] == 0x03 && (n == 2 || d[2] <= 0x04));
}

void conntrack__data(struct conntrack *t, const struct sonde_data_event *ev)
{
	struct conn *c = conn_get(t, ev);
	struct feed_ctx x = { .t = t, .c = c, .ev = ev };

	if (!c)
		return;
	/* The plaintext of a TLS connection replaces its wire bytes: whatever
	 * was made of ciphertext so far is dropped, and wire bytes that still
	 * come (a connection older than the binding) are skipped. */
	if (ev->hdr.flags & SONDE_F_TLS) {
		if (!c->tls) {
			if (c->http) {
				t->stats.pending_dropped += c->http->qlen;
				free(c->http->extra);
			}
			free(c->http);
			c->http = NULL;
			dbconn__free(c->db, &t->stats.db);
			c->db = NULL;
			c->proto = PROTO_UNKNOWN;
			c->tries = 0;
			c->tls = 1;
		}
	} else if (c->tls) {
		return;
	}
	if (c->proto == PROTO_OTHER)
		return;
	c->last_ns = ev->hdr.ktime;
	c->tuple = ev->tuple;
	memcpy(c->comm, ev->comm, sizeof(c->comm));
	memcpy(c->exe, ev->exe, sizeof(c->exe));
	if (c->proto == PROTO_UNKNOWN) {
		/* sendfile and failed copies carry no bytes to judge by */
		if (ev->cap_len == 0)
			return;
		/* Ciphertext seen before the TLS uprobes bound the socket (bytes
		 * read ahead of SSL_do_handshake): the plaintext follows. A TLS
		 * stack without uprobes (Go, rustls) is given up after a few. */
		if (!c->tls && looks_like_tls(ev->data, ev->cap_len) && ++c->tries < INFER_MAX_TRIES)
			return;
		if (!classify_db(c, ev) && !classify(t, c, ev)) {
			t->stats.conns_not_http++;
			if (c->tls) {
				c->proto = PROTO_OTHER;
				return;
			}
			if (t->ops.on_ignore)
				t->ops.on_ignore(t->ops.arg, ev->tgid, ev->fd, ev->sk);
			conn_free(t, c);
			return;
		}
		if (c->proto == PROTO_UNKNOWN)
			return;
	}
	if (c->proto == PROTO_DB) {
		struct dbconn_peer p = db_peer(t, c);

		dbconn__feed(c->db, &p, ev);
		return;
	}
	if (c->http->upgraded)	/* 101 / CONNECT: the rest is not HTTP */
		return;
	if (is_request_dir(c, ev->dir)) {
		/* Timing rule: a request starts with the syscall that carried
		 * its first bytes, not the one that completed its head. */
		if (http1__between_messages(&c->http->req))
			c->http->req_start_ns = chunk_start_ns(c, ev);
		http1__feed(&c->http->req, ev->data, ev->cap_len, ev->len, &req_cb, &x);
	} else {
		c->last_resp_ns = ev->hdr.ktime;
		http1__feed(&c->http->resp, ev->data, ev->cap_len, ev->len, &resp_cb, &x);
	}
}

/* Client requests whose response did not (fully) come before the
 * connection failed: the response being read, if any, is reported with its
 * status, and every request still waiting as a span with no status; all
 * with error.type x->fail. Leaves the connection between messages. */
static void fail_open_requests(struct feed_ctx *x)
{
	struct http_state *h = x->c->http;

	if (h->resp_open) {
		h->resp_open = false;
		h->resp_head = false;
		if (!h->resp_unmatched && h->qlen)
			emit_span(x, h->resp_status, h->resp_minor, 1);
	}
	while (h->qlen)
		emit_span(x, 0, 1, 0);
	h->resp_unmatched = false;
	http1__init(&h->req, HTTP1_REQUESTS);
	http1__init(&h->resp, HTTP1_RESPONSES);
}

/* Database operations still waiting on a client connection that failed
 * (dbconn.c ends them as spans). */
static void db_fail(struct conntrack *t, struct conn *c, const char *error_type, uint64_t end_ns)
{
	struct dbconn_peer p = db_peer(t, c);

	dbconn__fail(c->db, &p, error_type, end_ns);
}

/* The connection is over: a response that runs to the end of the
 * connection completes now, and one whose head was read but not all its
 * body (a client that stopped reading: wget exits on a 404 head) is still
 * reported, status known and marked incomplete. A client whose own process
 * closed the connection, or exited, before a response came gave up on the
 * request (its timeout, or a cancellation). The peer hanging up was
 * reported before this (conntrack__io_end). */
static void conn_finish(struct conntrack *t, struct conn *c, uint64_t end_ns)
{
	struct feed_ctx x = { .t = t, .c = c, .ev = NULL, .end_ns = end_ns };

	if (c->http)
		http1__close(&c->http->resp, &resp_cb, &x);
	if (c->http && c->http->resp_open) {
		struct http1_message m = { .status = c->http->resp_status,
					   .version_minor = c->http->resp_minor,
					   .head_incomplete = 1 };

		resp_on_complete(&x, &m);
	}
	if (c->http && !is_server(c) && !c->http->upgraded && c->http->qlen) {
		x.fail = SPAN_ERR_CANCELLED;
		fail_open_requests(&x);
	}
	if (c->proto == PROTO_DB && !is_server(c))
		db_fail(t, c, SPAN_ERR_CANCELLED, end_ns);
	conn_free(t, c);
}

/* errno of a SONDE_OP_IO_END record → error.type of the requests it ends. */
static const char *io_end_error(int32_t err)
{
	switch (err) {
	case 0:
		return SPAN_ERR_CLOSED;
	case ETIMEDOUT:
		return SPAN_ERR_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return SPAN_ERR_UNREACHABLE;
	default:	/* ECONNRESET, EPIPE, ECONNABORTED */
		return SPAN_ERR_RESET;
	}
}

void conntrack__io_end(struct conntrack *t, const struct sonde_io_end_event *ev)
{
	struct conn_key k = { .tgid = ev->tgid, .sk = ev->sk };
	struct conn *c = *bucket_slot(t, &k);
	struct feed_ctx x = { .t = t, .c = c, .ev = NULL, .end_ns = ev->hdr.ktime };
	struct http_state *h;

	if (c && !is_server(c) && c->proto == PROTO_DB) {
		db_fail(t, c, io_end_error(ev->err), ev->hdr.ktime);
		return;
	}
	if (!c || is_server(c) || c->proto != PROTO_HTTP1 || !(h = c->http) || h->upgraded)
		return;
	if (ev->err == 0) {
		/* A body delimited by the end of the connection ends well. */
		http1__close(&h->resp, &resp_cb, &x);
		if (!h->resp_open && h->qlen == 0)
			return;
	}
	x.fail = io_end_error(ev->err);
	fail_open_requests(&x);
}

void conntrack__close(struct conntrack *t, const struct sonde_close_event *ev)
{
	struct conn_key k = { .tgid = ev->tgid, .sk = ev->sk };
	struct conn *c = *bucket_slot(t, &k);

	if (c)
		conn_finish(t, c, ev->hdr.ktime);
}

void conntrack__exit(struct conntrack *t, uint32_t tgid, uint64_t ktime)
{
	struct proc_conns *p = *proc_slot(t, tgid);

	/* conn_finish frees p together with the last connection */
	while (p && p->first) {
		struct conn *c = p->first;
		bool last = c->pnext == NULL;

		conn_finish(t, c, ktime);
		if (last)
			break;
	}
}

void conntrack__sweep(struct conntrack *t, uint64_t idle_before_ns)
{
	while (t->tail && t->tail->last_ns < idle_before_ns) {
		t->stats.conns_evicted++;
		conn_free(t, t->tail);
	}
}

size_t conntrack__count(const struct conntrack *t)
{
	return t->count;
}

const struct conntrack_stats *conntrack__stats(const struct conntrack *t)
{
	return &t->stats;
}
