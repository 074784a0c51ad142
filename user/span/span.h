/* A finished request as sonde reports it, and its JSON-lines form for
 * `--print spans`. */
#ifndef SONDE_SPAN_H
#define SONDE_SPAN_H

#include <stdint.h>
#include <stdio.h>

#include "sonde.h"

struct identity;

enum span_kind { SPAN_SERVER = 1, SPAN_CLIENT = 2 };
/* What the span describes: which group of fields below is meaningful. */
enum span_proto { SPAN_HTTP = 0, SPAN_DB = 1, SPAN_RPC = 2 };

#define SPAN_METHOD_MAX 16
#define SPAN_TARGET_MAX 256	/* request target and route, cut to fit */
#define SPAN_HDR_ID_MAX 64	/* recorded X-Request-ID & co, cut to fit */
#define SPAN_TRACESTATE_MAX 256
#define SPAN_DB_OP_MAX 32
#define SPAN_DB_COLLECTION_MAX 64
#define SPAN_DB_QUERY_MAX 512
#define SPAN_DB_STATUS_MAX 16
#define SPAN_ERROR_TYPE_MAX 32
#define SPAN_RPC_SERVICE_MAX 128
#define SPAN_RPC_METHOD_MAX 64

/* error.type of a client request the connection failed under (no status,
 * or a response cut short). The set is closed: dashboards can rely on it. */
#define SPAN_ERR_CLOSED "connection_closed"	/* the server hung up (EOF) */
#define SPAN_ERR_RESET "connection_reset"	/* ECONNRESET, EPIPE, ECONNABORTED */
#define SPAN_ERR_TIMEOUT "timeout"		/* ETIMEDOUT: the kernel gave up */
#define SPAN_ERR_UNREACHABLE "host_unreachable"	/* EHOSTUNREACH, ENETUNREACH */
#define SPAN_ERR_CANCELLED "request_cancelled"	/* the client closed or exited first */
/* HTTP/2: the stream, or the connection, was ended under the request */
#define SPAN_ERR_STREAM_RESET "stream_reset"	/* RST_STREAM (other than CANCEL) */
#define SPAN_ERR_GOAWAY "goaway"		/* GOAWAY: the server will not answer it */

/* W3C trace context of a span. All-zero parent_span_id: a root span. */
struct span_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	uint8_t trace_flags;		/* bit 0: sampled */
	uint8_t remote_parent;		/* parent came from an incoming traceparent */
	char tracestate[SPAN_TRACESTATE_MAX];	/* as received, "" when none */
};

struct span {
	enum span_kind kind;
	uint64_t start_ns;		/* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	uint64_t end_ns;
	uint32_t tgid, tid;
	char comm[SONDE_COMM_LEN];
	const char *service;
	/* who the process is (identity__get; valid while the span is handled,
	 * NULL when not known): namespace, pod, container, resource attributes */
	const struct identity *ident;
	struct sonde_tuple tuple;	/* local / remote as seen by this process */
	char method[SPAN_METHOD_MAX];
	char target[SPAN_TARGET_MAX];
	char route[SPAN_TARGET_MAX];
	uint16_t status;
	uint8_t version_minor;
	uint8_t version_major;		/* HTTP and RPC: 2 for HTTP/2, else HTTP/1.x */
	uint8_t incomplete;		/* framing was guessed (capture gap) */
	uint8_t proto;			/* enum span_proto */
	uint8_t tls;			/* seen in plaintext through TLS uprobes (url.scheme https) */
	struct span_ctx ctx;
	/* HTTP: X-Request-ID, X-Tracking-ID, X-Correlation-ID ("" when absent) */
	char request_id[SPAN_HDR_ID_MAX];
	char tracking_id[SPAN_HDR_ID_MAX];
	char correlation_id[SPAN_HDR_ID_MAX];
	/* error.type per the semantic conventions ("500", "connection_refused",
	 * a SQLSTATE...), "" when the span is not an error */
	char error_type[SPAN_ERROR_TYPE_MAX];
	/* SPAN_DB */
	const char *db_system;		/* "postgresql", "mysql", "mariadb", "redis" */
	char db_operation[SPAN_DB_OP_MAX];	/* "SELECT", "GET", ... */
	char db_collection[SPAN_DB_COLLECTION_MAX];	/* first table, "" if unknown */
	char db_query[SPAN_DB_QUERY_MAX];	/* normalised: no literals */
	char db_status[SPAN_DB_STATUS_MAX];	/* SQLSTATE / MySQL error code, "" on success */
	/* SPAN_RPC (gRPC): method holds the HTTP method, target the :path */
	char rpc_service[SPAN_RPC_SERVICE_MAX];	/* "pkg.Service" */
	char rpc_method[SPAN_RPC_METHOD_MAX];	/* "Method" */
	int16_t rpc_status;		/* grpc-status, -1 when none came */
};

/* Offset from CLOCK_MONOTONIC to CLOCK_REALTIME, measured once at start. */
void span__init_clock(void);
uint64_t span__wall_ns(uint64_t mono_ns);
/* "a.b.c.d" / "x::y" (IPv4-mapped IPv6 shown as IPv4) */
void span__addr(const struct sonde_tuple *t, int remote, char *out, size_t n);
/* one JSON object and a newline */
int span__print_json(FILE *f, const struct span *s);

#endif
