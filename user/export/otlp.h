/* OTLP/HTTP (protobuf) export of spans and metrics: configuration from the
 * standard OTEL_* environment, encoders, retry policy, and the exporter that
 * ships batches from worker threads so the event loop never waits. */
#ifndef SONDE_EXPORT_OTLP_H
#define SONDE_EXPORT_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "util/proc.h"
#include "span/sampler.h"
#include "span/span.h"

#define OTLP_MAX_KV 32		/* headers / resource attributes per list */
#define OTLP_URL_MAX 1024

enum otlp_signal { OTLP_TRACES = 0, OTLP_METRICS = 1, OTLP_NSIGNALS };
/* Why exported data was lost; labels of sonde_export_dropped_total. */
enum otlp_drop {
	OTLP_DROP_QUEUE_FULL = 0,	/* span queue full / metrics snapshot superseded */
	OTLP_DROP_RETRIES_EXHAUSTED,	/* retryable failures for longer than the retry budget */
	OTLP_DROP_REJECTED,		/* 4xx other than 429, or another non-retryable answer */
	OTLP_DROP_PARTIAL_SUCCESS,	/* the receiver's rejected_spans / rejected_data_points */
	OTLP_DROP_SHUTDOWN,		/* still queued when the shutdown flush ran out of time */
	OTLP_NDROPS
};

struct otlp_kv {
	char *key, *value;
};

struct otlp_signal_config {
	char url[OTLP_URL_MAX];		/* "" = this signal is not exported */
	struct otlp_kv headers[OTLP_MAX_KV];
	size_t nheaders;
	bool gzip;
	uint32_t timeout_ms;
};

struct otlp_config {
	struct otlp_signal_config sig[OTLP_NSIGNALS];
	uint32_t batch_size;		/* OTEL_BSP_MAX_EXPORT_BATCH_SIZE */
	uint32_t schedule_delay_ms;	/* OTEL_BSP_SCHEDULE_DELAY */
	uint32_t queue_size;		/* OTEL_BSP_MAX_QUEUE_SIZE */
	uint32_t metric_interval_ms;	/* OTEL_METRIC_EXPORT_INTERVAL */
	uint32_t max_retry_ms;		/* SONDE_OTLP_RETRY_MAX_ELAPSED: retry budget per request */
	struct sampler sampler;
	struct otlp_kv resource[OTLP_MAX_KV];	/* OTEL_RESOURCE_ATTRIBUTES */
	size_t nresource;
	char host_name[256];
	char sdk_version[32];
};

typedef const char *(*otlp_getenv_fn)(const char *name);

/* Fills c from the environment (env is getenv outside tests); endpoint, when
 * not NULL, stands for OTEL_EXPORTER_OTLP_ENDPOINT. 0, or -EINVAL with a
 * reason in err. Free with otlp__config_free even after an error. */
int otlp__config_load(struct otlp_config *c, otlp_getenv_fn env, const char *endpoint,
		      char *err, size_t errlen);
void otlp__config_free(struct otlp_config *c);
/* "k=v,k2=v2" with %XX decoding of keys and values, blanks around entries
 * trimmed. Appends to out (at most max entries in all). 0, or -EINVAL for an
 * entry without '=' or with an empty key, a bad %-escape, a control
 * character in a key or value, or too many entries; -ENOMEM. */
int otlp__parse_kv_list(const char *s, struct otlp_kv *out, size_t max, size_t *n);
/* Whether url is one the exporter can ever reach: http:// or https://, a
 * host (a name, an IPv4 address or a bracketed IPv6 address), an optional
 * port 1..65535, then no blank or control character. 0, or -EINVAL with
 * the reason in why. */
int otlp__check_url(const char *url, char *why, size_t whylen);

/* ---- retry policy (pure) ---- */
enum otlp_outcome { OTLP_SUCCESS, OTLP_RETRY, OTLP_FAIL };
/* transport_ok: the HTTP exchange completed (else: connect/timeout/...). */
enum otlp_outcome otlp__classify(bool transport_ok, long http_status);
/* Delay before retry number `retry` (1 = first retry): Retry-After seconds
 * when the receiver gave one (>= 0), else exponential from 500 ms (x2, at
 * most 16 s) with jitter: rnd in [0,1) picks uniformly in [d/2, d). */
uint64_t otlp__backoff_ms(unsigned int retry, long retry_after_s, double rnd);
/* Retry-After as delta-seconds; -1 when absent or not a number (the
 * HTTP-date form is treated as absent). */
long otlp__parse_retry_after(const char *v, size_t len);

/* ---- encoders ---- */

/* A span as queued for export: a copy, with the service name copied too
 * (span.service points into a cache owned by the loop thread). */
struct otlp_span_item {
	struct span s;
	char service[PROC_NAME_MAX];
};

/* Process facts for a resource; exe/cmdline "" when unknown. */
typedef void (*otlp_proc_info_fn)(void *arg, uint32_t pid, char *exe, size_t exelen,
				  char *cmdline, size_t cmdlen);

/* otlp__enc_spans of items (through their records; otlp_batch.c). *out is
 * malloc'd. 0 or -ENOMEM. */
int otlp__encode_spans(const struct otlp_config *c, const struct otlp_span_item *items, size_t n,
		       otlp_proc_info_fn info, void *info_arg, uint8_t **out, size_t *outlen);
/* ExportMetricsServiceRequest with every family of the registry (cumulative;
 * histograms with the registry's bounds). Loop thread only. *npoints gets
 * the number of data points. 0 or -ENOMEM. */
int otlp__encode_metrics(const struct otlp_config *c, struct metrics *m, uint64_t start_unix_ns,
			 uint64_t now_unix_ns, uint8_t **out, size_t *outlen, size_t *npoints);
/* OTel name, unit and attribute key for a registry family / label. */
const char *otlp__metric_name(const char *prom_name, enum metric_type t, char *buf, size_t n,
			      const char **unit);
const char *otlp__attr_key(const char *label);
/* Rejected count and message of an Export*ServiceResponse body; 0 with
 * *rejected 0 for an empty body, -EINVAL for one that does not decode. */
int otlp__decode_response(enum otlp_signal sig, const uint8_t *body, size_t n, int64_t *rejected,
			  char *msg, size_t msglen);
/* gzip (RFC 1952) of in (otlp_batch.c); *out malloc'd. 0 or -ENOMEM. */
int otlp__gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen);

/* ---- queued spans (otlp_queue.c) ---- */

/* A span waits for export as a compact record: its numbers and only the
 * bytes of its strings (a few hundred bytes, where struct span is ~1.8 KiB).
 * Records are 8-aligned, at most OTLP_REC_MAX bytes, and start with their
 * size as a uint32_t. */
#define OTLP_REC_MAX 4096
#define OTLP_REC_NSTR 18
/* Size of s's record; lens[OTLP_REC_NSTR] gets its string lengths for
 * otlp__rec_write, which writes it to dst (8-aligned, size bytes). ctx
 * replaces s->ctx (ids made up at queueing); service replaces s->service. */
size_t otlp__rec_size(const struct span *s, const char *service, uint16_t lens[]);
void otlp__rec_write(void *dst, const struct span *s, const struct span_ctx *ctx, const char *service,
		     const uint16_t lens[], size_t size);
size_t otlp__rec_len(const void *rec);

/* The span queue: records back to back in a byte ring; a record never
 * wraps (a zero size at the end sends the reader to the start). One
 * producer and one consumer, under the caller's lock; the consumer reads
 * what it took without the lock and releases it afterwards. */
struct otlp_ring {
	uint8_t *buf;
	size_t cap, head, tail;
	size_t used;			/* bytes from head to tail, wrap gaps and taken records included */
};
/* cap bytes (rounded up to 8, at least 2 * OTLP_REC_MAX). 0 or -ENOMEM;
 * free buf. */
int otlp__ring_init(struct otlp_ring *r, size_t cap);
/* Room for a record of sz (8-aligned) bytes, or NULL when full. */
void *otlp__ring_reserve(struct otlp_ring *r, size_t sz);
/* The n oldest records into recs (the caller knows n are there). *head
 * gets where the ring starts once they are released; returns the bytes to
 * release. */
size_t otlp__ring_take(const struct otlp_ring *r, const void **recs, size_t n, size_t *head);
void otlp__ring_release(struct otlp_ring *r, size_t head, size_t taken);

/* ---- the batch encoder (otlp_batch.c; each span written by otlp_span.c) ---- */

/* Buffers reused from batch to batch: the request (spans written in place), gzip. */
struct otlp_enc;
struct otlp_enc *otlp__enc_new(void);
void otlp__enc_free(struct otlp_enc *e);
/* ExportTraceServiceRequest of n records: one ResourceSpans per (pid,
 * service) in order of first appearance, spans in arrival order, scope
 * "sonde"; gzip'd (level 1) when asked. *body points into e and stays valid
 * until e's next use. 0 or -ENOMEM. */
int otlp__enc_spans(struct otlp_enc *e, const struct otlp_config *c, const void *const *recs, size_t n,
		    otlp_proc_info_fn info, void *info_arg, bool gzip, const uint8_t **body, size_t *len);
int otlp__enc_gzip(struct otlp_enc *e, const uint8_t *in, size_t n, const uint8_t **out, size_t *outlen);

/* ---- the exporter (event loop side) ---- */
struct otlp;
struct redact;

/* Reads the environment (endpoint: the --otlp-endpoint flag or NULL) and
 * starts the workers. *out stays NULL when no endpoint is configured (logged
 * once). Registers sonde_export_* in m. refresh(arg), when not NULL, is
 * called on the loop thread before each metrics snapshot to bring families
 * that are only updated on demand up to date. redact: the rule applied to
 * each argument of process.command_line (NULL: the default). 0, or negative
 * errno (bad config is -EINVAL, logged). */
int otlp__setup(struct otlp **out, struct metrics *m, const char *endpoint, const char *version,
		const struct redact *redact, void (*refresh)(void *arg), void *refresh_arg);
/* One finished span: sampled, copied into the bounded queue (or counted as
 * dropped). Never blocks on the network. */
void otlp__span(struct otlp *o, const struct span *s);
/* Called on the loop's timer: metrics export when due, own counters. */
void otlp__tick(struct otlp *o);
/* Final metrics (without refresh), flush for at most 2 s, stop the workers.
 * NULL is a no-op. */
void otlp__free(struct otlp *o);

#endif
