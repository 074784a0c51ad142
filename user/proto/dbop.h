/* One database operation as the wire parsers (pg, mysql, redis) report it
 * when its response completes: raw request text (the glue normalises it;
 * never exported as is), when and on which thread the request started,
 * and the outcome. */
#ifndef SONDE_PROTO_DBOP_H
#define SONDE_PROTO_DBOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DBOP_TEXT_MAX 512	/* SQL / command text kept per operation */
#define DBOP_NAME_MAX 32	/* Redis command name */
#define DBOP_STATUS_MAX 16	/* SQLSTATE, MySQL error number, Redis error prefix */

struct db_op {
	uint64_t start_ns;	/* as given to the feed that carried the request's first byte */
	uint32_t tid;
	uint16_t text_len;
	uint8_t text_cut;	/* text longer than captured/kept */
	uint8_t error;		/* the server answered with an error */
	uint8_t incomplete;	/* end guessed: the response was not seen whole */
	uint8_t prepared;	/* extended protocol / prepared statement execution */
	uint8_t failed;		/* no (whole) result: the connection failed under it (xx__fail) */
	char name[DBOP_NAME_MAX];	/* Redis: command uppercased; SQL: "" (from text) */
	char status[DBOP_STATUS_MAX];	/* "" on success */
	char text[DBOP_TEXT_MAX];	/* text_len bytes, NUL-terminated */
};

/* Keeps the first len bytes of a request's text (cut to fit, marked cut). */
static inline void dbop__set_text(struct db_op *op, const void *p, size_t len, bool cut)
{
	if (len >= DBOP_TEXT_MAX) {
		len = DBOP_TEXT_MAX - 1;
		cut = true;
	}
	memcpy(op->text, p, len);
	op->text[len] = 0;
	op->text_len = (uint16_t)len;
	op->text_cut = cut;
}

/* Called once per finished operation, in request order; also by the
 * parsers' xx__fail() for each operation still waiting when the connection
 * failed (failed set; incomplete set too when its result was being read). */
typedef void (*db_op_fn)(void *ctx, const struct db_op *op);

/* Where the parsers report malformed input (reason codes per protocol). */
typedef void (*db_err_fn)(void *ctx, int reason);

struct db_callbacks {
	db_op_fn on_op;
	db_err_fn on_error;
};

#endif
