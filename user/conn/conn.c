/* The connection table: hash + LRU list, bounded, plus a per-process list
 * so that an exit finds its connections at once. Finds each connection's
 * protocol by asking proto_table, then feeds it; knows no protocol. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/conn.h"
#include "proto/http2/h2.h"

#define INFER_MAX_TRIES 8	/* chunks looked at before giving up on a socket of unknown role */
/* Hash buckets (and per-process buckets) start at this many and double
 * while connections outnumber them: sized to what is live, not to the
 * table's bound (65,536 connections would be 2 MiB of buckets). */
#define BUCKETS_MIN 256
/* TLS plaintext of a protocol sonde does not know: the kernel cannot be told
 * to stop (the IGNORED mark is for wire bytes), so the connection is kept
 * and its records dropped here. */
#define PROTO_ID_OTHER 0xfe
#define PROTO_ID_UNKNOWN 0xff

/* A connection is a socket as seen by one process: several fds may point at
 * it (inetd-style servers read stdin and write stdout, both the socket), so
 * the fd is not part of the identity. */
struct conn_key {
	uint32_t tgid;
	uint32_t pad;
	uint64_t sk;
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
	struct sonde_tuple tuple;
	char comm[SONDE_COMM_LEN];
	char exe[SONDE_EXE_LEN];
	uint8_t role;			/* enum sonde_role */
	uint8_t proto;			/* enum proto_id, or PROTO_ID_OTHER / _UNKNOWN */
	uint8_t tries;
	uint8_t tls;			/* fed from the TLS uprobes: wire bytes are ciphertext */
	void *state;			/* the protocol's, opaque here */
};

#define IGNORED_RECENT 64

struct conn_table {
	struct conn **buckets;
	struct proc_conns **pbuckets;	/* by tgid, nbuckets of them too */
	size_t nbuckets, count, max;	/* nbuckets: a power of two, grows with count */
	struct conn *head, *tail;
	struct conn_hooks hooks;
	struct db_calls calls;
	struct proto_env env;		/* stats point into stats.proto, cache into cache */
	void *cache[PROTO__COUNT];
	struct conn_stats stats;
	/* The last sockets handed back as unsupported (hooks.ignore): the
	 * kernel stops reporting one only at its next call, so records of
	 * it may still come, be recognised, and must then undo the ignore. */
	struct ignored_sock {
		uint32_t tgid;
		int32_t fd;
		uint64_t sk;
	} ignored[IGNORED_RECENT];
	unsigned int ignored_next;
	char comm[SONDE_COMM_LEN];	/* conn__set_comm; "" for every process */
};

static size_t key_hash(const struct conn_key *k)
{
	uint64_t h = ((uint64_t)k->tgid << 32) ^ (k->sk * 0x9e3779b97f4a7c15ULL);

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 29;
	return (size_t)h;
}

struct conn_table *conn__new(size_t max_conns, const struct conn_hooks *hooks,
			     struct span_builder *spans, const struct db_calls *calls)
{
	struct conn_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max_conns ? max_conns : 1;
	t->nbuckets = BUCKETS_MIN;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->pbuckets = calloc(t->nbuckets, sizeof(*t->pbuckets));
	if (!t->buckets || !t->pbuckets) {
		free(t->buckets);
		free(t->pbuckets);
		free(t);
		return NULL;
	}
	if (hooks)
		t->hooks = *hooks;
	if (calls)
		t->calls = *calls;
	t->env = (struct proto_env){ .spans = spans, .stats = t->stats.proto, .cache = t->cache,
				     .db_calls = calls ? &t->calls : NULL,
				     .limits = { .h2_max_streams = PROTO_H2_MAX_STREAMS_DEFAULT,
						 .h2_max_header_block = H2_DEFAULT_BLOCK_MAX } };
	return t;
}

static void lru_unlink(struct conn_table *t, struct conn *c)
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

static void lru_push_head(struct conn_table *t, struct conn *c)
{
	c->next = t->head;
	c->prev = NULL;
	if (t->head)
		t->head->prev = c;
	t->head = c;
	if (!t->tail)
		t->tail = c;
}

static struct conn **bucket_slot(struct conn_table *t, const struct conn_key *k)
{
	struct conn **pp = &t->buckets[key_hash(k) & (t->nbuckets - 1)];

	while (*pp && ((*pp)->key.sk != k->sk || (*pp)->key.tgid != k->tgid))
		pp = &(*pp)->hnext;
	return pp;
}

static struct proc_conns **proc_slot(struct conn_table *t, uint32_t tgid)
{
	struct proc_conns **pp = &t->pbuckets[(tgid * 0x9e3779b1u) & (t->nbuckets - 1)];

	while (*pp && (*pp)->tgid != tgid)
		pp = &(*pp)->hnext;
	return pp;
}

static int proc_link(struct conn_table *t, struct conn *c)
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

static void proc_unlink(struct conn_table *t, struct conn *c)
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

static bool has_proto(const struct conn *c)
{
	return c->proto < PROTO__COUNT;
}

/* The connection as its protocol sees it. */
static struct proto_conn pconn(const struct conn_table *t, const struct conn *c)
{
	return (struct proto_conn){ .env = &t->env, .tgid = c->key.tgid, .role = c->role,
				    .tls = c->tls, .comm = c->comm, .exe = c->exe,
				    .tuple = &c->tuple };
}

static void proto_free(struct conn_table *t, struct conn *c)
{
	if (has_proto(c) && c->state)
		proto_table[c->proto]->free(c->state, t->stats.proto);
	c->state = NULL;
}

static void conn_free(struct conn_table *t, struct conn *c)
{
	struct conn **pp = bucket_slot(t, &c->key);

	if (*pp == c)
		*pp = c->hnext;
	lru_unlink(t, c);
	proc_unlink(t, c);
	proto_free(t, c);
	free(c);
	t->count--;
}

void conn__free(struct conn_table *t)
{
	if (!t)
		return;
	while (t->head)
		conn_free(t, t->head);
	for (int id = 0; id < PROTO__COUNT; id++)
		if (t->cache[id] && proto_table[id]->cache_free)
			proto_table[id]->cache_free(t->cache[id]);
	free(t->buckets);
	free(t->pbuckets);
	free(t);
}

/* Doubles both bucket arrays, rehashing every connection and process
 * (their chains are rebuilt; LRU and per-process lists are untouched).
 * Out of memory: stays as it is, only the chains get longer. */
static void grow(struct conn_table *t)
{
	size_t n = t->nbuckets * 2, i;
	struct conn **b = calloc(n, sizeof(*b));
	struct proc_conns **pb = calloc(n, sizeof(*pb));

	if (!b || !pb) {
		free(b);
		free(pb);
		return;
	}
	for (i = 0; i < t->nbuckets; i++) {
		struct conn *c = t->buckets[i], *next;
		struct proc_conns *p = t->pbuckets[i], *pnext;

		for (; c; c = next) {
			size_t at = key_hash(&c->key) & (n - 1);

			next = c->hnext;
			c->hnext = b[at];
			b[at] = c;
		}
		for (; p; p = pnext) {
			size_t at = (p->tgid * 0x9e3779b1u) & (n - 1);

			pnext = p->hnext;
			p->hnext = pb[at];
			pb[at] = p;
		}
	}
	free(t->buckets);
	free(t->pbuckets);
	t->buckets = b;
	t->pbuckets = pb;
	t->nbuckets = n;
}

/* *created: the connection was not in the table. */
static struct conn *conn_get(struct conn_table *t, uint32_t tgid, uint64_t sk, uint8_t role,
			     bool *created)
{
	struct conn_key k = { .tgid = tgid, .sk = sk };
	struct conn **pp = bucket_slot(t, &k);
	struct conn *c = *pp;

	*created = false;
	if (c) {
		if (c != t->head) {
			lru_unlink(t, c);
			lru_push_head(t, c);
		}
		return c;
	}
	if (t->count >= t->max && t->tail) {
		t->stats.conns_evicted++;
		conn_free(t, t->tail);
		pp = bucket_slot(t, &k);
	}
	if (t->count >= t->nbuckets && t->nbuckets < t->max * 2) {
		grow(t);
		pp = bucket_slot(t, &k);
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->key = k;
	c->role = role;
	c->proto = PROTO_ID_UNKNOWN;
	if (proc_link(t, c)) {
		free(c);
		return NULL;
	}
	*pp = c;
	lru_push_head(t, c);
	t->count++;
	*created = true;
	return c;
}

void conn__set_comm(struct conn_table *t, const char *comm)
{
	snprintf(t->comm, sizeof(t->comm), "%s", comm ? comm : "");
}

/* Takes the connection's addresses and process; false when the process is
 * not one conn__set_comm asked for: the connection is then handed back to
 * the kernel and kept as a tombstone, so that records already on their way
 * are dropped here (idle, it is swept like any other). */
static bool conn_set_meta(struct conn_table *t, struct conn *c, const struct sonde_conn_event *m)
{
	c->tuple = m->tuple;
	memcpy(c->comm, m->comm, sizeof(c->comm));
	memcpy(c->exe, m->exe, sizeof(c->exe));
	if (!t->comm[0] || strncmp(c->comm, t->comm, sizeof(c->comm)) == 0)
		return true;
	if (c->proto == PROTO_ID_OTHER)
		return false;
	proto_free(t, c);
	c->proto = PROTO_ID_OTHER;
	if (t->hooks.ignore && !c->tls)
		t->hooks.ignore(t->hooks.arg, m->tgid, m->fd, m->sk);
	return false;
}

void conn__meta(struct conn_table *t, const struct sonde_conn_event *ev)
{
	bool created;
	struct conn *c = conn_get(t, ev->tgid, ev->sk, ev->role, &created);

	if (c)
		conn_set_meta(t, c, ev);
}


/* Asks every protocol, strongest sign first. PROTO_YES: c->proto, its
 * state and role are set. */
static enum proto_verdict infer(struct conn_table *t, struct conn *c,
				const struct sonde_data_event *ev)
{
	bool maybe = false;

	for (int pass = 0; pass < PROTO_PASS__COUNT; pass++) {
		for (int id = 0; id < PROTO__COUNT; id++) {
			const struct proto_ops *ops = proto_table[id];
			uint8_t role = c->role;
			enum proto_verdict v = ops->infer(ev, &c->tuple, (enum proto_pass)pass,
							  &role);

			if (v == PROTO_MAYBE) {
				maybe = true;
				c->role = role;
			}
			if (v != PROTO_YES)
				continue;
			/* reclassified (TLS plaintext replacing the wire): a fresh state */
			proto_free(t, c);
			if (!(c->state = ops->open((enum proto_pass)pass)))
				return PROTO_NO;
			c->role = role;
			c->proto = (uint8_t)id;
			/* Its later requests, and later connections to this port,
			 * can get a traceparent injected (never over TLS: sk_msg
			 * sees ciphertext). */
			if (ops->injectable && role == SONDE_ROLE_CLIENT && !c->tls && t->hooks.injectable)
				t->hooks.injectable(t->hooks.arg, ev, &c->tuple);
			if (t->hooks.classified)
				t->hooks.classified(t->hooks.arg, ev, &c->tuple, id, role);
			return PROTO_YES;
		}
	}
	return maybe && ++c->tries < INFER_MAX_TRIES ? PROTO_MAYBE : PROTO_NO;
}

/* A TLS record header (RFC 8446 §5.1: content type 20..23, legacy version
 * 3.x), or the lone first byte of one (nginx peeks at a single byte). */
static bool looks_like_tls(const uint8_t *d, size_t n)
{
	if (n == 0 || d[0] < 0x14 || d[0] > 0x17)
		return false;
	return n == 1 || (d[1] == 0x03 && (n == 2 || d[2] <= 0x04));
}

/* The protocol of c switched in the chunk ev just fed (proto_ops.handoff):
 * the new one takes the connection and the rest of the chunk. */
static void handoff(struct conn_table *t, struct conn *c, const struct sonde_data_event *ev)
{
	void *next = NULL;
	size_t off = 0;
	int id = proto_table[c->proto]->handoff(c->state, &next, &off);
	struct sonde_data_event *rest;
	struct proto_conn pc;

	if (id < 0)
		return;
	proto_free(t, c);
	if (id >= PROTO__COUNT || !next) {
		c->proto = PROTO_ID_OTHER;	/* out of memory: a tombstone */
		return;
	}
	c->proto = (uint8_t)id;
	c->state = next;
	/* Not reported as classified: the port still speaks HTTP/1.1 first
	 * (an h2c upgrade request can carry an injected traceparent), and
	 * sk_msg leaves what follows alone (no request line). */
	if (off >= ev->cap_len)
		return;
	pc = pconn(t, c);
	rest = malloc(sizeof(*rest) + ev->cap_len - off);
	if (!rest) {
		proto_table[id]->lost(c->state, &pc);
		return;
	}
	*rest = *ev;
	rest->hdr.size = (uint32_t)(sizeof(*rest) + ev->cap_len - off);
	rest->hdr.flags &= (uint8_t)~SONDE_F_LOSS;	/* handled before the switch */
	rest->cap_len = (uint32_t)(ev->cap_len - off);
	rest->len = (uint32_t)(ev->len - off);
	memcpy(rest->data, ev->data + off, rest->cap_len);
	proto_table[id]->feed(c->state, &pc, rest);
	free(rest);
}

/* A socket just recognised that was handed back as unsupported moments ago
 * (its first record misjudged): without this the kernel-side ignore, taking
 * effect a little later, would cut the connection off with nothing counted. */
static void unignore_if_recent(struct conn_table *t, const struct sonde_data_event *ev)
{
	for (unsigned int i = 0; i < IGNORED_RECENT; i++) {
		struct ignored_sock *s = &t->ignored[i];

		if (s->sk != ev->sk || s->tgid != ev->tgid)
			continue;
		if (t->hooks.unignore)
			t->hooks.unignore(t->hooks.arg, s->tgid, s->fd, s->sk);
		s->sk = 0;
	}
}

void conn__data(struct conn_table *t, const struct sonde_data_event *ev)
{
	bool created;
	struct conn *c = conn_get(t, ev->tgid, ev->sk, ev->role, &created);
	struct proto_conn pc;

	if (!c)
		return;
	if (created) {
		struct sonde_conn_event m = { .sk = ev->sk, .tgid = ev->tgid, .fd = ev->fd };

		t->stats.conns_meta_missing++;
		if (t->hooks.meta)
			t->hooks.meta(t->hooks.arg, ev->tgid, ev->fd, ev->sk, &m);
		if (!conn_set_meta(t, c, &m))
			return;
	}
	/* The plaintext of a TLS connection replaces its wire bytes: whatever
	 * was made of ciphertext so far is dropped, and wire bytes that still
	 * come (a connection older than the binding) are skipped. */
	if (ev->hdr.flags & SONDE_F_TLS) {
		if (!c->tls) {
			proto_free(t, c);
			c->proto = PROTO_ID_UNKNOWN;
			c->tries = 0;
			c->tls = 1;
		}
	} else if (c->tls) {
		return;
	}
	if (c->proto == PROTO_ID_OTHER)
		return;
	c->last_ns = ev->hdr.ktime;
	if (!has_proto(c)) {
		enum proto_verdict v;

		/* sendfile and failed copies carry no bytes to judge by */
		if (ev->cap_len == 0)
			return;
		/* Ciphertext seen before the TLS uprobes bound the socket (bytes
		 * read ahead of SSL_do_handshake): the plaintext follows. A TLS
		 * stack without uprobes (Go, rustls) is given up after a few. */
		if (!c->tls && looks_like_tls(ev->data, ev->cap_len) && ++c->tries < INFER_MAX_TRIES)
			return;
		v = infer(t, c, ev);
		if (v == PROTO_MAYBE)
			return;
		if (v == PROTO_NO) {
			t->stats.conns_unsupported++;
			if (t->hooks.classified)
				t->hooks.classified(t->hooks.arg, ev, &c->tuple, PROTO_NONE,
						    c->role);
			if (c->tls) {
				c->proto = PROTO_ID_OTHER;
				return;
			}
			if (t->hooks.ignore) {
				t->hooks.ignore(t->hooks.arg, ev->tgid, ev->fd, ev->sk);
				t->ignored[t->ignored_next++ % IGNORED_RECENT] =
					(struct ignored_sock){ ev->tgid, ev->fd, ev->sk };
			}
			conn_free(t, c);
			return;
		}
		unignore_if_recent(t, ev);
	}
	pc = pconn(t, c);
	if (ev->hdr.flags & SONDE_F_LOSS)
		proto_table[c->proto]->lost(c->state, &pc);
	proto_table[c->proto]->feed(c->state, &pc, ev);
	if (proto_table[c->proto]->handoff)
		handoff(t, c, ev);
	if (!has_proto(c))
		return;
	if (proto_table[c->proto]->given_up && proto_table[c->proto]->given_up(c->state)) {
		/* Kept as a tombstone, so that records already on their way
		 * are dropped here rather than taken for a new connection; not
		 * counted unsupported (the protocol counted why). */
		proto_free(t, c);
		c->proto = PROTO_ID_OTHER;
		if (!c->tls && t->hooks.ignore)
			t->hooks.ignore(t->hooks.arg, ev->tgid, ev->fd, ev->sk);
	}
}

/* The connection is over (closed, or its process exited); lost: records
 * of it were lost before the close (SONDE_F_LOSS). */
static void conn_finish(struct conn_table *t, struct conn *c, uint64_t end_ns, bool lost)
{
	if (has_proto(c)) {
		struct proto_conn pc = pconn(t, c);

		if (lost)
			proto_table[c->proto]->lost(c->state, &pc);
		proto_table[c->proto]->close(c->state, &pc, end_ns);
	}
	conn_free(t, c);
}

void conn__io_end(struct conn_table *t, const struct sonde_io_end_event *ev)
{
	struct conn_key k = { .tgid = ev->tgid, .sk = ev->sk };
	struct conn *c = *bucket_slot(t, &k);
	struct proto_conn pc;

	if (!c || c->role == SONDE_ROLE_SERVER || !has_proto(c))
		return;
	pc = pconn(t, c);
	if (ev->hdr.flags & SONDE_F_LOSS)
		proto_table[c->proto]->lost(c->state, &pc);
	proto_table[c->proto]->fail(c->state, &pc, ev->err, ev->hdr.ktime);
}

void conn__close(struct conn_table *t, const struct sonde_close_event *ev)
{
	struct conn_key k = { .tgid = ev->tgid, .sk = ev->sk };
	struct conn *c = *bucket_slot(t, &k);

	if (c)
		conn_finish(t, c, ev->hdr.ktime, ev->hdr.flags & SONDE_F_LOSS);
}

void conn__exit(struct conn_table *t, uint32_t tgid, uint64_t ktime, bool lost)
{
	struct proc_conns *p = *proc_slot(t, tgid);

	/* conn_finish frees p together with the last connection */
	while (p && p->first) {
		struct conn *c = p->first;
		bool last = c->pnext == NULL;

		conn_finish(t, c, ktime, lost);
		if (last)
			break;
	}
}

void conn__sweep(struct conn_table *t, uint64_t idle_before_ns)
{
	while (t->tail && t->tail->last_ns < idle_before_ns) {
		t->stats.conns_evicted++;
		conn_free(t, t->tail);
	}
}

void conn__set_limits(struct conn_table *t, const struct proto_limits *l)
{
	if (l->h2_max_streams)
		t->env.limits.h2_max_streams = l->h2_max_streams;
	if (l->h2_max_header_block)
		t->env.limits.h2_max_header_block = l->h2_max_header_block;
}

size_t conn__count(const struct conn_table *t)
{
	return t->count;
}

const struct conn_stats *conn__stats(const struct conn_table *t)
{
	return &t->stats;
}
