/* PostgreSQL behind proto_ops: inference and the parser as db.c drives it. */
#include "proto/db.h"
#include "proto/pg/pg.h"

#define PG_PORT 5432

static enum proto_verdict pg_infer(const struct sonde_data_event *ev,
				   const struct sonde_tuple *tuple, enum proto_pass pass,
				   uint8_t *role)
{
	if (pass == PROTO_PASS_START && pg__looks_like_startup(ev->data, ev->cap_len))
		return db__role_fits(ev, true, role);
	/* Connections older than the agent: a query, on the usual port only
	 * (the bytes alone are too weak a sign elsewhere). */
	if (pass == PROTO_PASS_PORT && db__has_port(tuple, PG_PORT) &&
	    pg__looks_like_query(ev->data, ev->cap_len))
		return db__role_fits(ev, true, role);
	return PROTO_NO;
}

static void w_init(void *s, bool from_start) { pg__init(s, from_start); }
static size_t w_pending(const void *s) { return pg__pending(s); }
static size_t w_lost(void *s) { return pg__lost(s); }
static bool w_encrypted(const void *s) { return ((const struct pg_session *)s)->encrypted; }
static const char *w_system(const void *s) { (void)s; return "postgresql"; }

static void w_feed(void *s, bool request, const uint8_t *data, size_t cap, size_t len,
		   uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx)
{
	pg__feed(s, request, data, cap, len, start_ns, tid, cb, ctx);
}

static void w_fail(void *s, const struct db_callbacks *cb, void *ctx)
{
	pg__fail(s, cb, ctx);
}

static enum db_err_kind w_err_kind(int reason)
{
	return reason == PG_ERR_OVERFLOW || reason == PG_ERR_UNANSWERED ? DB_ERR_UNANSWERED
									: DB_ERR_MALFORMED;
}

static const struct db_wire pg_wire = {
	.id = PROTO_PG, .sql = true, .dialect = SQL_POSTGRES, .uprobes = true,
	.session_size = sizeof(struct pg_session), .init = w_init, .feed = w_feed,
	.fail = w_fail, .pending = w_pending, .lost = w_lost, .encrypted = w_encrypted, .system = w_system,
	.err_kind = w_err_kind,
};

static void *pg_open(enum proto_pass pass)
{
	return db__open(&pg_wire, pass);
}

const struct proto_ops pg_proto = {
	.name = "postgresql", .infer = pg_infer, .open = pg_open, .feed = db__feed,
	.close = db__close, .fail = db__fail, .lost = db__lost, .free = db__free,
};
