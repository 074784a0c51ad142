/* MySQL / MariaDB client/server protocol follower: frames both directions
 * of one connection (3-byte length + sequence id), follows the handshake
 * and reports COM_QUERY and COM_STMT_EXECUTE operations when their
 * response (OK, ERR or a whole result set) has been seen. */
#ifndef SONDE_PROTO_MYSQL_H
#define SONDE_PROTO_MYSQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/dbop.h"

enum mysql_error {		/* numbered explicitly, for counters */
	MYSQL_ERR_BAD_PACKET = 1,	/* impossible header or a packet out of place */
	MYSQL_ERR_LOST = 2,		/* a capture gap hid a packet boundary */
	MYSQL_ERR_UNANSWERED = 3,	/* a new command came before the previous response ended */
};

#define MYSQL_BODY_MAX 1024
#define MYSQL_STMTS 12
#define MYSQL_VERSION_MAX 48

#define MYSQL_CLIENT_SSL 0x00000800u
#define MYSQL_CLIENT_PROTOCOL_41 0x00000200u
#define MYSQL_CLIENT_DEPRECATE_EOF 0x01000000u

struct mysql_stream {
	uint8_t hdr[4];
	uint8_t hlen;
	uint8_t in_body;
	uint8_t lost;
	uint8_t cut;
	uint8_t seq;
	uint8_t pad;
	uint16_t blen;
	uint32_t plen;		/* payload length of the packet being read */
	uint32_t remaining;
	uint32_t tid;
	uint64_t start_ns;
	uint8_t body[MYSQL_BODY_MAX];
};

struct mysql_stmt {
	uint32_t id;
	uint32_t used;		/* 0: free; else LRU clock */
	uint16_t len;
	uint8_t cut;
	char sql[DBOP_TEXT_MAX];
};

/* Fixed size, no pointers: zero-fill then mysql__init(). */
struct mysql_session {
	struct mysql_stream c2s, s2c;
	uint8_t phase;		/* enum in mysql.c */
	uint8_t mariadb;	/* server version string says MariaDB */
	uint8_t cmd;		/* command awaiting its response, 0 none */
	uint8_t rstate;		/* where in the response */
	uint8_t emit;		/* the pending command becomes a span */
	uint8_t tls;		/* SSLRequest in the login */
	uint32_t caps;		/* capabilities both sides announced */
	uint64_t left;		/* packets still to skip in this response state */
	uint32_t clock;
	uint64_t ops;
	char version[MYSQL_VERSION_MAX];
	struct db_op op;	/* the pending command */
	struct mysql_stmt stmts[MYSQL_STMTS];
};

/* from_start: seen from the connection's first byte (the server greeting
 * comes first); otherwise commands are followed from the next one. */
void mysql__init(struct mysql_session *s, bool from_start);
/* client: the chunk travels client → server. */
void mysql__feed(struct mysql_session *s, bool client, const uint8_t *data, size_t cap,
		 size_t len, uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb,
		 void *ctx);
size_t mysql__pending(const struct mysql_session *s);
/* Records of the connection were lost (ring full): the waiting command is
 * forgotten (returned: 0 or 1), both directions wait for a packet start,
 * and a login in progress is taken as done. Statements, TLS and server
 * facts are kept. */
size_t mysql__lost(struct mysql_session *s);
/* The connection failed (peer hung up, reset, or the client gave up): the
 * command still waiting is reported through cb->on_op with failed set (and
 * incomplete when its response was being read), or counted
 * (MYSQL_ERR_UNANSWERED) when a capture gap may have hidden its response.
 * Leaves both directions between packets. */
void mysql__fail(struct mysql_session *s, const struct db_callbacks *cb, void *ctx);
/* The login asked for TLS: the rest of the connection is ciphertext. */
bool mysql__encrypted(const struct mysql_session *s);

/* The server greeting (protocol 10) at d[0]. */
bool mysql__looks_like_greeting(const uint8_t *d, size_t n);
/* A whole COM_QUERY / COM_STMT_PREPARE packet (sequence 0) at d[0]. */
bool mysql__looks_like_command(const uint8_t *d, size_t n);

#endif
