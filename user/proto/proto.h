/* The interface every protocol implements, so that the connection table
 * (conn/) never knows which protocol it feeds. A protocol is a folder
 * (proto/<p>/: parser and request/response pairing side by side) plus one
 * line in proto_table (proto.c). See proto/README.md. */
#ifndef SONDE_PROTO_H
#define SONDE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sonde.h"
#include "span/builder.h"

enum proto_id {			/* numbered explicitly: indexes the counters */
	PROTO_HTTP1 = 0,
	PROTO_PG = 1,
	PROTO_MYSQL = 2,
	PROTO_REDIS = 3,
	PROTO_HTTP2 = 4,
	PROTO__COUNT = 5,
};

/* Per protocol, for the sonde_* self metrics. */
struct proto_stats {
	uint64_t parse_errors;		/* malformed / lost input, resynchronised */
	uint64_t inference_failures;	/* inferred, but the first messages did not parse */
	uint64_t unanswered;		/* requests forgotten without a response */
	uint64_t unmatched;		/* responses with no request waiting */
	uint64_t spans;
	uint64_t failed;		/* of spans: client requests the connection failed under */
	uint64_t lost;			/* requests whose response or framing went with ring
					 * records the kernel could not write: not failures */
	/* Multiplexed protocols (HTTP/2), whose state spans the connection: */
	uint64_t missed_start;		/* connections caught mid-way: not decodable, nothing emitted */
	uint64_t desync;		/* connections that stopped being decoded (bytes not captured,
					 * bad framing, compression state lost) */
	uint64_t too_many;		/* requests not followed: the per-connection stream limit */
	uint64_t too_big;		/* header blocks over the limit (decoding stops) */
};

/* Bounds on per-connection state, from the configuration. */
struct proto_limits {
	uint32_t h2_max_streams;	/* concurrent HTTP/2 streams followed per connection */
	uint32_t h2_max_header_block;	/* bytes of one HTTP/2 header block */
};
#define PROTO_H2_MAX_STREAMS_DEFAULT 100

/* The database client-library calls the uprobes saw (probe/dbclient.c), as
 * the wire side uses them; arg is that module's object. */
struct db_calls {
	/* The wire saw a client request of thread tid starting at start_ns:
	 * claims the oldest earlier unclaimed call of the thread (its entry
	 * time in *call_ns, its SQL in text). 1 when claimed, else 0. */
	int (*claim)(void *arg, uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text,
		     size_t n);
	/* Process tgid has a database connection in TLS. */
	void (*encrypted)(void *arg, uint32_t tgid);
	/* Thread tid wrote a plaintext database request at ns. */
	void (*wire)(void *arg, uint32_t tid, uint64_t ns);
	void *arg;
};

struct span_builder;

/* What protocols report into; one per agent, passed in. */
struct proto_env {
	struct span_builder *spans;
	struct proto_stats *stats;	/* PROTO__COUNT of them */
	const struct db_calls *db_calls;	/* NULL: no uprobes */
	struct proto_limits limits;
	/* PROTO__COUNT slots (by enum proto_id), NULL at first, where a
	 * protocol may keep memory for reuse across its connections; the
	 * table hands each non-NULL one to that protocol's cache_free. */
	void **cache;
};

/* The connection as a protocol sees it (built by conn/ for each call). */
struct proto_conn {
	const struct proto_env *env;
	uint32_t tgid;
	uint8_t role;			/* enum sonde_role, known once inferred */
	uint8_t tls;			/* fed plaintext from the TLS uprobes */
	const char *comm;		/* SONDE_COMM_LEN bytes */
	const char *exe;		/* SONDE_EXE_LEN bytes */
	const struct sonde_tuple *tuple;
};

static inline bool proto_conn__is_server(const struct proto_conn *c)
{
	return c->role == SONDE_ROLE_SERVER;
}

/* Does a chunk going dir travel in the request direction of a connection
 * with this role? */
static inline bool proto__is_request_dir(uint8_t role, uint8_t dir)
{
	return role == SONDE_ROLE_SERVER ? dir == SONDE_DIR_INGRESS : dir == SONDE_DIR_EGRESS;
}

/* Where a span of this connection comes from, for the span builder. */
static inline struct span_origin proto_conn__origin(const struct proto_conn *c, uint32_t tid)
{
	return (struct span_origin){ .tgid = c->tgid, .tid = tid, .server = proto_conn__is_server(c),
				     .tls = c->tls, .comm = c->comm, .exe = c->exe,
				     .tuple = c->tuple };
}

enum proto_verdict {
	PROTO_NO = 0,			/* not this protocol */
	PROTO_MAYBE = 1,		/* cannot tell yet: look at the next chunk */
	PROTO_YES = 2,
};

/* Inference passes, strongest sign first: every protocol is asked at one
 * pass before any is asked at the next. */
enum proto_pass {
	PROTO_PASS_START = 0,		/* the protocol's first message */
	PROTO_PASS_PORT = 1,		/* a later message, on the protocol's usual port */
	PROTO_PASS_LAST = 2,		/* self-describing protocols (HTTP/1.x) */
	PROTO_PASS__COUNT = 3,
};

struct proto_ops {
	const char *name;		/* "http1", "postgresql": label of the sonde_* counters */
	/* Client connections of this protocol can carry an injected
	 * traceparent (plaintext HTTP/1.x). */
	bool injectable;
	/* Is this chunk (with bytes; the connection's protocol unknown) this
	 * protocol? On PROTO_YES *role is set (it may be known on entry); on
	 * PROTO_MAYBE it may be set too, as far as the chunk told it. tuple:
	 * the connection's addresses (PROTO_PASS_PORT looks at its ports). */
	enum proto_verdict (*infer)(const struct sonde_data_event *ev,
				    const struct sonde_tuple *tuple, enum proto_pass pass,
				    uint8_t *role);
	/* Per-connection state for a connection inferred at pass. */
	void *(*open)(enum proto_pass pass);
	void (*feed)(void *st, const struct proto_conn *c, const struct sonde_data_event *ev);
	/* The connection is over (closed, or its process exited) at end_ns:
	 * close-delimited responses complete, and a client's requests still
	 * waiting were given up by it (SPAN_ERR_CANCELLED). */
	void (*close)(void *st, const struct proto_conn *c, uint64_t end_ns);
	/* A client connection failed under a read or send (err: 0 for EOF,
	 * else the errno) at end_ns: its waiting requests end as failures. */
	void (*fail)(void *st, const struct proto_conn *c, int32_t err, uint64_t end_ns);
	/* Records of the connection were lost before the one about to be
	 * handled (SONDE_F_LOSS: the ring was full): what is waiting can no
	 * longer be paired. It is counted lost, never reported as a failure,
	 * and the parser waits for the start of a message. */
	void (*lost)(void *st, const struct proto_conn *c);
	/* Frees st; requests still waiting count as unanswered in stats. */
	void (*free)(void *st, struct proto_stats *stats);
	/* Optional: nothing more can ever be made of this connection (HTTP/2
	 * caught mid-way, or out of sync: its HPACK state is gone), so the
	 * table frees st and hands the connection back to the kernel, which
	 * stops capturing it. Asked after each feed. */
	bool (*given_up)(const void *st);
	/* Optional: the connection switched to another protocol in the chunk
	 * just fed (HTTP/1.1 101 to h2c). Returns that protocol's id, with its
	 * state for the connection (*next, opened by this protocol in the state
	 * after the switch) and where in the chunk its bytes begin (*off); the
	 * table frees st, and feeds the rest of the chunk to the new protocol.
	 * -1: no switch. Asked after each feed. */
	int (*handoff)(void *st, void **next, size_t *off);
	/* Optional: frees what the protocol kept in proto_env.cache. */
	void (*cache_free)(void *cache);
};

extern const struct proto_ops *const proto_table[PROTO__COUNT];

#endif
