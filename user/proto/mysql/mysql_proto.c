/* MySQL/MariaDB behind proto_ops: inference and the parser as db.c drives it. */
#include "proto/db.h"
#include "proto/mysql/mysql.h"

#define MYSQL_PORT 3306

static enum proto_verdict mysql_infer(const struct sonde_data_event *ev,
				      const struct sonde_tuple *tuple, enum proto_pass pass,
				      uint8_t *role)
{
	/* the server speaks first */
	if (pass == PROTO_PASS_START && mysql__looks_like_greeting(ev->data, ev->cap_len))
		return db__role_fits(ev, false, role);
	if (pass == PROTO_PASS_PORT && db__has_port(tuple, MYSQL_PORT) &&
	    mysql__looks_like_command(ev->data, ev->cap_len))
		return db__role_fits(ev, true, role);
	return PROTO_NO;
}

static void w_init(void *s, bool from_start) { mysql__init(s, from_start); }
static size_t w_pending(const void *s) { return mysql__pending(s); }
static size_t w_lost(void *s) { return mysql__lost(s); }
static bool w_encrypted(const void *s) { return mysql__encrypted(s); }

static const char *w_system(const void *s)
{
	return ((const struct mysql_session *)s)->mariadb ? "mariadb" : "mysql";
}

static void w_feed(void *s, bool request, const uint8_t *data, size_t cap, size_t len,
		   uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx)
{
	mysql__feed(s, request, data, cap, len, start_ns, tid, cb, ctx);
}

static void w_fail(void *s, const struct db_callbacks *cb, void *ctx)
{
	mysql__fail(s, cb, ctx);
}

static enum db_err_kind w_err_kind(int reason)
{
	return reason == MYSQL_ERR_UNANSWERED ? DB_ERR_UNANSWERED : DB_ERR_MALFORMED;
}

static const struct db_wire mysql_wire = {
	.id = PROTO_MYSQL, .sql = true, .dialect = SQL_MYSQL, .uprobes = true,
	.session_size = sizeof(struct mysql_session), .init = w_init, .feed = w_feed,
	.fail = w_fail, .pending = w_pending, .lost = w_lost, .encrypted = w_encrypted, .system = w_system,
	.err_kind = w_err_kind,
};

static void *mysql_open(enum proto_pass pass)
{
	return db__open(&mysql_wire, pass);
}

const struct proto_ops mysql_proto = {
	.name = "mysql", .infer = mysql_infer, .open = mysql_open, .feed = db__feed,
	.close = db__close, .fail = db__fail, .lost = db__lost, .free = db__free,
};
