/* W3C Trace Context for spans: traceparent parsing and formatting,
 * random ids, the ids the kernel chose (SONDE_OP_TRACE_CTX) and the
 * per-thread link from client requests to the server request being served. */
#ifndef SONDE_TRACECTX_H
#define SONDE_TRACECTX_H

#include <stddef.h>
#include <stdint.h>

#include "sonde.h"
#include "span/span.h"

/* A request's trace headers, as its protocol parsed them. */
struct tracectx_hdr {
	const char *traceparent;	/* NUL-terminated, "" when absent */
	const char *tracestate;		/* NUL-terminated, "" or NULL when absent */
	uint8_t traceparent_lines;	/* field lines seen (> 1: invalid) */
	uint8_t traceparent_cut;	/* longer than the protocol kept: invalid */
	uint8_t tracestate_cut;		/* cut list: not forwarded */
};

/* The trace state of the agent: kernel records waiting for their request,
 * each thread's active server span, id randomness. One per agent. */
struct tracectx;

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
struct tracectx *tracectx__new(void);
void tracectx__free(struct tracectx *tc);
/* n random bytes, never all zero (getrandom, buffered). */
void tracectx__random_id(struct tracectx *tc, uint8_t *out, size_t n);

/* A kernel record: kept until the request it describes is parsed. */
void tracectx__kernel(struct tracectx *tc, const struct sonde_trace_ctx_event *ev);
/* Ids of a request whose head was just parsed: tid sent it (client) or read
 * it (server) on a connection with tuple t; h: its trace headers (NULL:
 * a protocol that carries none, e.g. SQL). */
void tracectx__server_request(struct tracectx *tc, uint32_t tgid, uint32_t tid,
			      const struct sonde_tuple *t, const struct tracectx_hdr *h,
			      struct span_ctx *out);
void tracectx__client_request(struct tracectx *tc, uint32_t tgid, uint32_t tid,
			      const struct sonde_tuple *t, const struct tracectx_hdr *h,
			      struct span_ctx *out);
/* The server span of tid finished: later client requests of tid are not its children. */
void tracectx__server_done(struct tracectx *tc, uint32_t tgid, uint32_t tid,
			   const struct span_ctx *ctx);
/* A new root context (sampled), for spans with no incoming context. */
void tracectx__root(struct tracectx *tc, struct span_ctx *out);
const struct tracectx_stats *tracectx__stats(const struct tracectx *tc);

#endif
