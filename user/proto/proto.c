/* The protocols sonde understands, in the order they are asked. Adding one
 * is its folder plus one line here (and its enum proto_id). */
#include "proto/proto.h"

extern const struct proto_ops http1_proto, pg_proto, mysql_proto, redis_proto, http2_proto;

const struct proto_ops *const proto_table[PROTO__COUNT] = {
	[PROTO_HTTP1] = &http1_proto,
	[PROTO_PG] = &pg_proto,
	[PROTO_MYSQL] = &mysql_proto,
	[PROTO_REDIS] = &redis_proto,
	[PROTO_HTTP2] = &http2_proto,
};
