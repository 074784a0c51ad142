/* Redis behind proto_ops: inference and the parser as db.c drives it. */
#include "proto/db.h"
#include "proto/redis/redis.h"

static enum proto_verdict redis_infer(const struct sonde_data_event *ev,
				      const struct sonde_tuple *tuple, enum proto_pass pass,
				      uint8_t *role)
{
	(void)tuple;	/* no port of its own */
	if (pass == PROTO_PASS_START && redis__looks_like_command(ev->data, ev->cap_len))
		return db__role_fits(ev, true, role);
	return PROTO_NO;
}

static void w_init(void *s, bool from_start) { (void)from_start; redis__init(s); }
static size_t w_pending(const void *s) { return redis__pending(s); }
static size_t w_lost(void *s) { return redis__lost(s); }
static const char *w_system(const void *s) { (void)s; return "redis"; }

static void w_feed(void *s, bool request, const uint8_t *data, size_t cap, size_t len,
		   uint64_t start_ns, uint32_t tid, const struct db_callbacks *cb, void *ctx)
{
	redis__feed(s, request, data, cap, len, start_ns, tid, cb, ctx);
}

static void w_fail(void *s, const struct db_callbacks *cb, void *ctx)
{
	redis__fail(s, cb, ctx);
}

static enum db_err_kind w_err_kind(int reason)
{
	if (reason == REDIS_ERR_UNMATCHED)
		return DB_ERR_UNMATCHED;
	return reason == REDIS_ERR_OVERFLOW || reason == REDIS_ERR_UNANSWERED ? DB_ERR_UNANSWERED
									      : DB_ERR_MALFORMED;
}

static const struct db_wire redis_wire = {
	.id = PROTO_REDIS, .sql = false, .session_size = sizeof(struct redis_session),
	.init = w_init, .feed = w_feed, .fail = w_fail, .pending = w_pending, .lost = w_lost,
	.system = w_system, .err_kind = w_err_kind,
};

static void *redis_open(enum proto_pass pass)
{
	return db__open(&redis_wire, pass);
}

const struct proto_ops redis_proto = {
	.name = "redis", .infer = redis_infer, .open = redis_open, .feed = db__feed,
	.close = db__close, .fail = db__fail, .lost = db__lost, .free = db__free,
};
