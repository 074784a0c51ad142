/* Redis RESP2/RESP3 follower: frames commands (arrays of bulk strings, or
 * inline commands) and replies on one connection, pairs them in order
 * (pipelining: N commands then N replies) and reports each command with
 * its name and argument count only: keys and values are never kept. */
#ifndef SONDE_PROTO_REDIS_H
#define SONDE_PROTO_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/dbop.h"

enum redis_error {		/* numbered explicitly, for counters */
	REDIS_ERR_SYNTAX = 1,		/* not RESP: bad type byte, length or nesting */
	REDIS_ERR_LOST = 2,		/* a capture gap hid a message boundary */
	REDIS_ERR_UNMATCHED = 3,	/* a reply with no command waiting (pub/sub, lost) */
	REDIS_ERR_OVERFLOW = 4,		/* pipelined deeper than followed: oldest forgotten */
	REDIS_ERR_UNANSWERED = 5,	/* connection failed under a command whose reply a gap may have hidden */
};

#define REDIS_DEPTH 8		/* nesting of aggregates followed */
#define REDIS_LINE_MAX 48	/* bytes of a type line kept */
#define REDIS_PENDING 32

struct redis_stream {
	uint8_t state;
	uint8_t type;		/* type byte of the element being read */
	uint8_t depth;
	uint8_t lost;
	uint8_t llen;
	uint8_t inline_cmd;	/* request stream: an inline command line */
	uint8_t push;		/* reply stream: the message is an out-of-band push */
	uint8_t error;		/* reply stream: the message is an error */
	uint8_t name_len;
	uint32_t argc, argi;
	uint64_t bulk_left;	/* payload bytes + CRLF still to skip */
	int64_t left[REDIS_DEPTH];
	uint32_t tid;
	uint64_t start_ns;
	char line[REDIS_LINE_MAX];
	char name[DBOP_NAME_MAX];
	char status[DBOP_STATUS_MAX];
};

struct redis_cmd {
	uint64_t start_ns;
	uint32_t tid, argc;
	char name[DBOP_NAME_MAX];
};

struct redis_session {
	struct redis_stream req, rep;
	uint8_t qhead, qlen;
	uint64_t ops;
	struct redis_cmd q[REDIS_PENDING];
};

void redis__init(struct redis_session *s);
/* request: the chunk travels client → server. */
void redis__feed(struct redis_session *s, bool request, const uint8_t *data, size_t cap,
		 size_t len, uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb,
		 void *ctx);
size_t redis__pending(const struct redis_session *s);
/* Records of the connection were lost (ring full): the waiting commands
 * are forgotten (returned: how many), both directions wait for a message
 * start. */
size_t redis__lost(struct redis_session *s);
/* The connection failed (peer hung up, reset, or the client gave up):
 * every command still waiting is reported through cb->on_op with failed
 * set (the oldest also incomplete when its reply was being read), or
 * counted (REDIS_ERR_UNANSWERED) while the reply stream is lost; a QUIT
 * left waiting is no failure (dropped). Leaves both directions between
 * messages. */
void redis__fail(struct redis_session *s, const struct db_callbacks *cb, void *ctx);
/* A command array "*N\r\n$L\r\n" at d[0]. */
bool redis__looks_like_command(const uint8_t *d, size_t n);

#endif
