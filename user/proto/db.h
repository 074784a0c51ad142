/* Shared glue for the database wire protocols (PostgreSQL, MySQL/MariaDB,
 * Redis): each protocol folder describes its parser in a struct db_wire,
 * and db.c turns the operations the parser reports into spans. Timing
 * follows the HTTP rule: a server span runs from the read that returned
 * the request's first bytes to the write that finished the result; a
 * client span from the write(2) entry of the request to the read that
 * finished the result. */
#ifndef SONDE_PROTO_DB_H
#define SONDE_PROTO_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/dbop.h"
#include "proto/proto.h"
#include "span/sql.h"

/* What a parser's error reason means for the counters. */
enum db_err_kind { DB_ERR_MALFORMED = 0, DB_ERR_UNANSWERED = 1, DB_ERR_UNMATCHED = 2 };

struct db_wire {
	enum proto_id id;
	bool sql;			/* operations are SQL text (else Redis commands) */
	enum sql_dialect dialect;
	bool uprobes;			/* client library calls exist for it (libpq, libmysql) */
	size_t session_size;
	void (*init)(void *sess, bool from_start);
	void (*feed)(void *sess, bool request, const uint8_t *data, size_t cap, size_t len,
		     uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx);
	void (*fail)(void *sess, const struct db_callbacks *cb, void *ctx);
	size_t (*pending)(const void *sess);
	size_t (*lost)(void *sess);	/* forget what waits (returned: how many), resync */
	bool (*encrypted)(const void *sess);	/* the wire turned to TLS; NULL: never */
	const char *(*system)(const void *sess);	/* db.system.name */
	enum db_err_kind (*err_kind)(int reason);
};

/* The role the sender of a message must have for it to fit (sender_is_client
 * for requests): PROTO_YES with *role set, or PROTO_NO when the connection's
 * known role says otherwise. */
enum proto_verdict db__role_fits(const struct sonde_data_event *ev, bool sender_is_client,
				 uint8_t *role);
bool db__has_port(const struct sonde_tuple *tuple, uint16_t port);

/* The proto_ops functions, shared by the database protocols. */
void *db__open(const struct db_wire *w, enum proto_pass pass);
void db__feed(void *st, const struct proto_conn *c, const struct sonde_data_event *ev);
void db__close(void *st, const struct proto_conn *c, uint64_t end_ns);
void db__fail(void *st, const struct proto_conn *c, int32_t err, uint64_t end_ns);
void db__lost(void *st, const struct proto_conn *c);
void db__free(void *st, struct proto_stats *stats);

#endif
