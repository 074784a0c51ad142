/* The one span builder: every span (HTTP, databases on the wire, database
 * client-library calls seen only by uprobes) gets its common fields here:
 * process and service, timing, trace context, error.type; then it goes to
 * the sink (signals/: metrics, OTLP, --print spans). */
#ifndef SONDE_SPAN_BUILDER_H
#define SONDE_SPAN_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "span/span.h"
#include "span/sql.h"

struct redact;
struct tracectx;
struct tracectx_hdr;

/* Where finished spans go. */
struct span_sink {
	void (*emit)(void *arg, const struct span *s);
	void *arg;
};

/* Who made the span and on which connection. */
struct span_origin {
	uint32_t tgid, tid;
	bool server;
	bool tls;			/* plaintext seen through the TLS uprobes */
	const char *comm;		/* SONDE_COMM_LEN bytes */
	const char *exe;		/* SONDE_EXE_LEN bytes, or NULL when not known */
	const struct sonde_tuple *tuple;	/* NULL: not known (uprobe-only spans) */
};

/* An HTTP request and its outcome. */
struct span_http {
	const char *method, *target;	/* NUL-terminated, cut to fit */
	uint16_t status;		/* 0: no response */
	uint8_t version_minor;
	uint8_t version_major;		/* 2: HTTP/2; 0 or 1: HTTP/1.x */
	bool incomplete;		/* response framing guessed */
	const char *fail;		/* SPAN_ERR_*: the connection failed under it; else NULL */
	const struct span_ctx *ctx;	/* decided when the request head was parsed */
	/* X-Request-ID & co, "" or NULL when absent */
	const char *request_id, *tracking_id, *correlation_id;
};

/* A database operation and its outcome. */
struct span_db {
	const char *system;		/* "postgresql", "mysql", "mariadb", "redis" */
	enum sql_dialect dialect;	/* SQL systems */
	bool sql;			/* text is SQL (else a Redis command: name + text) */
	const char *name;		/* Redis: the command name */
	const char *text;		/* request text, not NUL-terminated */
	size_t text_len;
	bool prepared;			/* execution of a statement prepared earlier */
	bool incomplete;
	const char *status;		/* SQLSTATE, MySQL error number, "" on success */
	bool error;			/* the server answered with an error */
	const char *fail;		/* SPAN_ERR_*: the connection failed under it; else NULL */
};

/* A gRPC call (HTTP/2 with content-type application/grpc*) and its outcome. */
struct span_rpc {
	const char *path;		/* :path, "/pkg.Service/Method" */
	uint16_t http_status;		/* 0: no response headers */
	int grpc_status;		/* -1: none came */
	bool incomplete;
	const char *fail;		/* SPAN_ERR_*: the stream or connection failed under it */
	const struct span_ctx *ctx;
};

struct span_builder;

/* redact: the rule for request targets (copied; NULL: the default,
 * REDACT_REDACT with no extra key). */
struct span_builder *span_builder__new(struct tracectx *tc, const struct span_sink *sink,
				       const struct redact *redact);
void span_builder__free(struct span_builder *b);
struct tracectx *span_builder__tracectx(struct span_builder *b);
/* Trace context of a request whose head was just parsed (h: its trace
 * headers, NULL when the protocol carries none). */
void span_builder__request_ctx(struct span_builder *b, const struct span_origin *o,
			       const struct tracectx_hdr *h, struct span_ctx *out);
void span_builder__http(struct span_builder *b, const struct span_origin *o, uint64_t start_ns,
			uint64_t end_ns, const struct span_http *h);
void span_builder__rpc(struct span_builder *b, const struct span_origin *o, uint64_t start_ns,
		       uint64_t end_ns, const struct span_rpc *r);
void span_builder__db(struct span_builder *b, const struct span_origin *o, uint64_t start_ns,
		      uint64_t end_ns, const struct span_db *d);

#endif
