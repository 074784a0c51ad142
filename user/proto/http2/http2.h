/* HTTP/2 entered from HTTP/1.1 (h2c upgrade, RFC 7540 §3.2): the HTTP/1
 * protocol hands the connection over (proto_ops.handoff) in the state
 * after the 101 Switching Protocols. */
#ifndef SONDE_PROTO_HTTP2_H
#define SONDE_PROTO_HTTP2_H

#include <stdbool.h>
#include <stdint.h>

#include "span/span.h"

/* The request that asked for the upgrade: stream 1, half-closed by the
 * client, its response to come in HTTP/2 frames. */
struct h2c_upgrade {
	bool has_request;		/* false: the HTTP/1 request was not followed */
	uint64_t start_ns;
	uint32_t tid;
	const char *method;
	const char *path;
	const struct span_ctx *ctx;	/* decided when its head was parsed */
	/* SETTINGS_HEADER_TABLE_SIZE of its HTTP2-Settings (the 101 is their
	 * acknowledgement), UINT32_MAX when none */
	uint32_t table_size;
	uint32_t max_streams;		/* proto_limits.h2_max_streams */
};

/* State for http2_proto in which the server's frames come next one way
 * and the client preface the other; NULL when out of memory. */
void *http2__open_upgraded(const struct h2c_upgrade *u);

#endif
