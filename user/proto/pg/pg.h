/* PostgreSQL v3 wire protocol follower: frames both directions of one
 * connection from captured syscall chunks and reports each query (simple
 * or extended protocol) when its result is known. */
#ifndef SONDE_PROTO_PG_H
#define SONDE_PROTO_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/dbop.h"

enum pg_error {			/* numbered explicitly, for counters */
	PG_ERR_BAD_HEADER = 1,	/* unknown message type or impossible length */
	PG_ERR_LOST = 2,	/* a capture gap hid a message boundary: resynchronising */
	PG_ERR_OVERFLOW = 3,	/* more pipelined queries than followed: oldest forgotten */
	PG_ERR_UNANSWERED = 4,	/* connection failed under a query whose answer a capture gap may have hidden */
};

#define PG_BODY_MAX 1024	/* bytes of a message body kept for decoding */
#define PG_STMTS 12		/* prepared statements remembered per connection */
#define PG_PORTALS 4
#define PG_PENDING 8		/* queries awaiting their result */
#define PG_NAME_MAX 64

struct pg_stream {
	uint8_t hdr[5];
	uint8_t hlen;
	uint8_t in_body;
	uint8_t lost;		/* waiting for a chunk that starts a message */
	uint8_t cut;		/* part of the body was not captured */
	uint8_t type;		/* 0 for the untyped startup packets */
	uint16_t blen;
	uint32_t remaining;
	uint32_t tid;
	uint64_t start_ns;
	uint8_t body[PG_BODY_MAX];
};

struct pg_stmt {
	char name[PG_NAME_MAX];
	uint32_t used;		/* 0: free; else LRU clock */
	uint16_t len;
	uint8_t cut;
	char sql[DBOP_TEXT_MAX];
};

struct pg_portal {
	char name[PG_NAME_MAX];
	int8_t stmt;		/* index in stmts, -1 unknown */
	uint8_t used;
	uint32_t stmt_used;	/* stmts[stmt].used at bind: detects reuse of the slot */
};

/* Fixed size, no pointers: zero-fill then pg__init(). */
struct pg_session {
	struct pg_stream fe, be;	/* frontend (client → server), backend */
	uint8_t startup;	/* frontend still sends untyped startup packets */
	uint8_t ssl_answer;	/* backend's next byte answers SSLRequest/GSSENCRequest */
	uint8_t encrypted;	/* TLS/GSS negotiated: the wire is ciphertext from here on */
	uint8_t qhead, qlen;
	uint8_t answering;	/* the backend has begun answering the oldest query */
	uint8_t unsure;		/* oldest queries queued before a backend capture gap */
	uint8_t qkind[PG_PENDING];
	uint32_t clock;
	uint64_t ops;		/* operations reported */
	struct pg_stmt stmts[PG_STMTS];
	struct pg_portal portals[PG_PORTALS];
	struct db_op q[PG_PENDING];
};

/* expect_startup: the connection was seen from its first byte (else the
 * frontend is assumed past its startup packet). */
void pg__init(struct pg_session *s, bool expect_startup);
/* One syscall's worth of one direction: len bytes, the first cap (<= len)
 * in data. start_ns/tid are recorded for a request whose first byte is in
 * this chunk. */
void pg__feed(struct pg_session *s, bool frontend, const uint8_t *data, size_t cap, size_t len,
	      uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx);
/* Pending queries whose result will never be seen (connection over). */
size_t pg__pending(const struct pg_session *s);
/* Records of the connection were lost (ring full): the waiting queries are
 * forgotten (returned: how many) and both directions wait for a chunk that
 * starts a message. Prepared statements and TLS state are kept. */
size_t pg__lost(struct pg_session *s);
/* The connection failed (peer hung up, reset, or the client gave up):
 * every query still waiting is reported through cb->on_op with failed set
 * (and incomplete when its result was being read), except one the backend
 * had already answered with an ErrorResponse (a FATAL before hanging up:
 * reported with its SQLSTATE) and ones whose answer a capture gap may have
 * hidden (PG_ERR_UNANSWERED). Leaves both directions between messages. */
void pg__fail(struct pg_session *s, const struct db_callbacks *cb, void *ctx);

/* Inference over the first bytes a client sends: a startup packet,
 * SSLRequest, GSSENCRequest or CancelRequest. */
bool pg__looks_like_startup(const uint8_t *d, size_t n);
/* A typed frontend message that carries SQL (Q or P) starting at d[0],
 * for connections that predate the agent. */
bool pg__looks_like_query(const uint8_t *d, size_t n);

#endif
