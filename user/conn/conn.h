/* The connection table: follows each traced TCP connection (tgid, sk),
 * bounded (LRU), finds its protocol through proto_ops and feeds it. It
 * knows no protocol: per-protocol state is opaque here. */
#ifndef SONDE_CONN_H
#define SONDE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "sonde.h"

struct conn_stats {
	uint64_t conns_evicted;		/* table full or idle */
	uint64_t conns_unsupported;	/* no protocol recognised (handed back to the kernel) */
	uint64_t conns_meta_missing;	/* first record came without its SONDE_OP_CONN: asked for */
	struct proto_stats proto[PROTO__COUNT];	/* by enum proto_id */
};

/* What the table tells the kernel side (probe/), never the layers above. */
struct conn_hooks {
	/* The connection speaks no supported protocol: the kernel may stop
	 * reporting it. */
	void (*ignore)(void *arg, uint32_t tgid, int32_t fd, uint64_t sk);
	/* A socket handed back by ignore was then recognised after all (a
	 * record already on its way when the kernel was told, or a first
	 * record misjudged): the kernel must go on reporting it. Optional. */
	void (*unignore)(void *arg, uint32_t tgid, int32_t fd, uint64_t sk);
	/* A plaintext client connection speaks a protocol whose requests can
	 * carry an injected traceparent; ev is the chunk that showed it,
	 * tuple the connection's addresses. */
	void (*injectable)(void *arg, const struct sonde_data_event *ev,
			   const struct sonde_tuple *tuple);
	/* The connection's protocol was found (proto: enum proto_id; role:
	 * SONDE_ROLE_*), or none is supported (proto: PROTO_NONE); ev is the
	 * chunk that showed it (SONDE_F_TLS in its flags: plaintext of TLS). */
	void (*classified)(void *arg, const struct sonde_data_event *ev,
			   const struct sonde_tuple *tuple, int proto, uint8_t role);
	/* A connection's first record came without its SONDE_OP_CONN record
	 * (lost, or the daemon had forgotten the connection): fill what the
	 * kernel still knows of (tgid, fd, sk) into out; false if nothing.
	 * Optional. */
	bool (*meta)(void *arg, uint32_t tgid, int32_t fd, uint64_t sk,
		     struct sonde_conn_event *out);
	void *arg;
};

#define PROTO_NONE (-1)	/* conn_hooks.classified: no supported protocol */

struct conn_table;

/* spans: where the protocols' spans go; calls: the database client-library
 * calls (NULL: none). Both must outlive the table. */
struct conn_table *conn__new(size_t max_conns, const struct conn_hooks *hooks,
			     struct span_builder *spans, const struct db_calls *calls);
void conn__free(struct conn_table *t);
void conn__data(struct conn_table *t, const struct sonde_data_event *ev);
/* A connection's addresses and process (SONDE_OP_CONN), ahead of its data. */
void conn__meta(struct conn_table *t, const struct sonde_conn_event *ev);
/* Only connections whose process (thread) name is comm are followed; the
 * others are handed back to the kernel. NULL: all (the default). */
void conn__set_comm(struct conn_table *t, const char *comm);
/* The last fd of a socket was closed. */
void conn__close(struct conn_table *t, const struct sonde_close_event *ev);
/* A client connection ended under a read or send (peer closed, reset...):
 * the requests waiting on it become failed spans. */
void conn__io_end(struct conn_table *t, const struct sonde_io_end_event *ev);
/* Every thread of process tgid exited (at ktime): its connections are over.
 * lost: records of the process were lost before (SONDE_F_LOSS on the exit
 * record): what its connections wait for is counted lost, not cancelled. */
void conn__exit(struct conn_table *t, uint32_t tgid, uint64_t ktime, bool lost);
/* Forgets connections idle since before idle_before_ns (monotonic). */
void conn__sweep(struct conn_table *t, uint64_t idle_before_ns);
/* Bounds on per-connection protocol state (0 fields keep the default). */
void conn__set_limits(struct conn_table *t, const struct proto_limits *l);
size_t conn__count(const struct conn_table *t);
const struct conn_stats *conn__stats(const struct conn_table *t);

#endif
