/* Database connections (PostgreSQL, MySQL/MariaDB, Redis): protocol
 * inference from a connection's first bytes, per-connection parser state,
 * and the spans made from the operations the parsers report. */
#ifndef SONDE_DBCONN_H
#define SONDE_DBCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sonde.h"
#include "span/span.h"

enum dbconn_proto { DBCONN_NONE = 0, DBCONN_PG = 1, DBCONN_MYSQL = 2, DBCONN_REDIS = 3,
		    DBCONN__MAX = 4 };

struct dbconn_stats {		/* indexed by enum dbconn_proto */
	uint64_t parse_errors[DBCONN__MAX];	/* malformed / lost input, resynchronised */
	uint64_t inference_failures[DBCONN__MAX];	/* inferred, but the first bytes did not parse */
	uint64_t unanswered[DBCONN__MAX];	/* operations whose result was never seen */
	uint64_t unmatched[DBCONN__MAX];	/* results with no operation waiting */
	uint64_t spans[DBCONN__MAX];
	uint64_t failed[DBCONN__MAX];	/* of spans: client operations the connection failed under */
};

/* The connection as conntrack knows it, for the spans. */
struct dbconn_peer {
	uint32_t tgid;
	uint8_t role;			/* enum sonde_role, known by now */
	const char *comm;		/* SONDE_COMM_LEN bytes */
	const char *exe;		/* SONDE_EXE_LEN bytes */
	const struct sonde_tuple *tuple;
	void (*on_span)(void *arg, const struct span *s);
	void *arg;
	struct dbconn_stats *stats;
};

struct dbconn;

/* Is this chunk (the first with bytes on the connection) the start of a
 * database protocol? role: the connection's role, SONDE_ROLE_UNKNOWN if not
 * known; set from the direction of the bytes when inferred. *from_start:
 * the chunk is the protocol's first message (else a later query, only
 * accepted on the protocol's usual port). */
enum dbconn_proto dbconn__infer(const struct sonde_data_event *ev, uint8_t *role, bool *from_start);
struct dbconn *dbconn__new(enum dbconn_proto p, bool from_start);
void dbconn__free(struct dbconn *d, struct dbconn_stats *stats);
void dbconn__feed(struct dbconn *d, const struct dbconn_peer *peer,
		  const struct sonde_data_event *ev);
/* A client connection failed (end_ns: when the kernel or the close saw
 * it): every operation still waiting for its result becomes a client span
 * with this error.type (SPAN_ERR_*), no db_status, ending at end_ns. An
 * operation the server had already answered with an error (PostgreSQL's
 * FATAL before it hangs up) keeps that error. Nothing for server roles. */
void dbconn__fail(struct dbconn *d, const struct dbconn_peer *peer, const char *error_type,
		  uint64_t end_ns);
/* Where client spans look for the client library call that made them
 * (dbclient__claim: uprobes); NULL: none. */
typedef int (*dbconn_claim_fn)(uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text,
			       size_t n);
void dbconn__set_claim(dbconn_claim_fn fn);
/* Told once per connection that turns to TLS (PostgreSQL SSLRequest
 * answered 'S', MySQL SSL login): its operations are not on the wire. */
typedef void (*dbconn_encrypted_fn)(uint32_t tgid);
void dbconn__set_encrypted_hook(dbconn_encrypted_fn fn);
/* Told of each plaintext request chunk a client thread writes on a
 * database connection: the library calls it made before ns reached the
 * wire, so they will have a wire span (even when its answer comes late). */
typedef void (*dbconn_wire_fn)(uint32_t tid, uint64_t ns);
void dbconn__set_wire_hook(dbconn_wire_fn fn);
/* The protocol's name for the sonde_* counters ("postgresql", ...). */
const char *dbconn__proto_name(enum dbconn_proto p);

#endif
