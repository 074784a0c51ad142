/* W3C Trace Context for HTTP spans: traceparent parsing and formatting,
 * random ids, the ids the kernel chose (SONDE_OP_TRACE_CTX) and the
 * per-thread link from client requests to the server request being served. */
#ifndef SONDE_TRACECTX_H
#define SONDE_TRACECTX_H

#include <stddef.h>
#include <stdint.h>

#include "sonde.h"
#include "span/span.h"
#include "proto/http1/http1.h"

/* A traceparent header, parsed. */
struct tracectx_tp {
	uint8_t version;
	uint8_t trace_id[16];
	uint8_t parent_id[8];
	uint8_t flags;
};

#define TRACECTX_TP_LEN 55	/* version 00: 2 + 1 + 32 + 1 + 16 + 1 + 2 */

struct tracectx_stats {
	uint64_t traceparent_invalid;	/* malformed incoming header, ignored */
	uint64_t kernel_server;		/* server spans with ids chosen in the kernel */
	uint64_t kernel_client;		/* client spans whose header the kernel injected */
	uint64_t kernel_overridden;	/* kernel missed a header userspace parsed */
	uint64_t thread_linked;		/* client spans linked to the thread's server span */
	uint64_t own_header;		/* client requests that carried their own traceparent */
};

/* 0 and *out filled when s[0..n) is a valid traceparent: version 00 exactly
 * 55 bytes; a higher version (not ff) at least 55 with '-' after the flags;
 * lowercase hex; trace and parent ids not all zero. -1 otherwise. */
int tracectx__parse(const char *s, size_t n, struct tracectx_tp *out);
/* "00-<trace>-<span>-<flags>" plus NUL into out (>= TRACECTX_TP_LEN + 1 bytes). */
void tracectx__format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8],
		      uint8_t flags);
/* lowercase hex of n bytes plus NUL into out (2n + 1 bytes) */
void tracectx__hex(char *out, const uint8_t *b, size_t n);
/* n random bytes, never all zero (getrandom, buffered). */
void tracectx__random_id(uint8_t *out, size_t n);

/* A kernel record: kept until the request it describes is parsed. */
void tracectx__kernel(const struct sonde_trace_ctx_event *ev);
/* Ids of a request whose head was just parsed: tid sent it (client) or read
 * it (server) on a connection with tuple t; m is the request head. */
void tracectx__server_request(uint32_t tgid, uint32_t tid, const struct sonde_tuple *t,
			      const struct http1_message *m, struct span_ctx *out);
void tracectx__client_request(uint32_t tgid, uint32_t tid, const struct sonde_tuple *t,
			      const struct http1_message *m, struct span_ctx *out);
/* The server span of tid finished: later client requests of tid are not its children. */
void tracectx__server_done(uint32_t tgid, uint32_t tid, const struct span_ctx *ctx);
/* error.type of an HTTP span (server: 5xx; client: 4xx and 5xx), "" when none. */
void tracectx__error_type(char *out, size_t n, int server, uint16_t status);
const struct tracectx_stats *tracectx__stats(void);
/* Forgets everything (tests). */
void tracectx__reset(void);

#endif
