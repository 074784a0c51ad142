/* Spans for OTLP: the compact record a span waits in the export queue as,
 * and a direct protobuf writer from records to ExportTraceServiceRequest
 * (no message objects, no packing pass), with reusable buffers and gzip. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "export/otlp.h"
#include "span/semconv.h"

/* ---- records ---- */

/* lens[] order: the strings of a record, concatenated after the header */
enum {
	R_SERVICE, R_COMM, R_METHOD, R_TARGET, R_ROUTE, R_TRACESTATE, R_REQID, R_TRACKID, R_CORRID,
	R_ERRTYPE, R_DBSYS, R_DBOP, R_DBCOLL, R_DBQUERY, R_DBSTATUS, R_NSTR
};

struct otlp_rec {
	uint32_t size;			/* header + strings, rounded up to 8; 0 = ring wrap mark */
	uint32_t tgid;
	uint64_t start_ns, end_ns;	/* CLOCK_MONOTONIC, as in struct span */
	struct sonde_tuple tuple;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	uint16_t status;
	uint8_t kind, proto, tls, version_minor, trace_flags, remote_parent;
	uint16_t len[R_NSTR];
	char str[];
};

_Static_assert(R_NSTR == OTLP_REC_NSTR, "otlp.h sizes lens[] with OTLP_REC_NSTR");
_Static_assert(sizeof(struct otlp_rec) % 8 == 0, "records stay 8-aligned in the ring");

static size_t field_len(const char *s, size_t max)
{
	return s ? strnlen(s, max) : 0;
}

size_t otlp__rec_size(const struct span *s, const char *service, uint16_t lens[])
{
	size_t n = sizeof(struct otlp_rec);

	lens[R_SERVICE] = (uint16_t)field_len(service, PROC_NAME_MAX - 1);
	lens[R_COMM] = (uint16_t)field_len(s->comm, sizeof(s->comm));
	lens[R_METHOD] = (uint16_t)field_len(s->method, sizeof(s->method));
	lens[R_TARGET] = (uint16_t)field_len(s->target, sizeof(s->target));
	lens[R_ROUTE] = (uint16_t)field_len(s->route, sizeof(s->route));
	lens[R_TRACESTATE] = (uint16_t)field_len(s->ctx.tracestate, sizeof(s->ctx.tracestate));
	lens[R_REQID] = (uint16_t)field_len(s->request_id, sizeof(s->request_id));
	lens[R_TRACKID] = (uint16_t)field_len(s->tracking_id, sizeof(s->tracking_id));
	lens[R_CORRID] = (uint16_t)field_len(s->correlation_id, sizeof(s->correlation_id));
	lens[R_ERRTYPE] = (uint16_t)field_len(s->error_type, sizeof(s->error_type));
	lens[R_DBSYS] = (uint16_t)field_len(s->db_system, 64);
	lens[R_DBOP] = (uint16_t)field_len(s->db_operation, sizeof(s->db_operation));
	lens[R_DBCOLL] = (uint16_t)field_len(s->db_collection, sizeof(s->db_collection));
	lens[R_DBQUERY] = (uint16_t)field_len(s->db_query, sizeof(s->db_query));
	lens[R_DBSTATUS] = (uint16_t)field_len(s->db_status, sizeof(s->db_status));
	for (int i = 0; i < R_NSTR; i++)
		n += lens[i];
	return (n + 7) & ~(size_t)7;
}

void otlp__rec_write(void *dst, const struct span *s, const struct span_ctx *ctx, const char *service,
		     const uint16_t lens[], size_t size)
{
	struct otlp_rec *r = dst;
	const char *src[R_NSTR] = {
		[R_SERVICE] = service, [R_COMM] = s->comm, [R_METHOD] = s->method,
		[R_TARGET] = s->target, [R_ROUTE] = s->route, [R_TRACESTATE] = ctx->tracestate,
		[R_REQID] = s->request_id, [R_TRACKID] = s->tracking_id,
		[R_CORRID] = s->correlation_id, [R_ERRTYPE] = s->error_type,
		[R_DBSYS] = s->db_system, [R_DBOP] = s->db_operation,
		[R_DBCOLL] = s->db_collection, [R_DBQUERY] = s->db_query,
		[R_DBSTATUS] = s->db_status,
	};
	char *p = r->str;

	r->size = (uint32_t)size;
	r->tgid = s->tgid;
	r->start_ns = s->start_ns;
	r->end_ns = s->end_ns;
	r->tuple = s->tuple;
	memcpy(r->trace_id, ctx->trace_id, 16);
	memcpy(r->span_id, ctx->span_id, 8);
	memcpy(r->parent_span_id, ctx->parent_span_id, 8);
	r->status = s->status;
	r->kind = (uint8_t)s->kind;
	r->proto = s->proto;
	r->tls = s->tls;
	r->version_minor = s->version_minor;
	r->trace_flags = ctx->trace_flags;
	r->remote_parent = ctx->remote_parent;
	for (int i = 0; i < R_NSTR; i++) {
		r->len[i] = lens[i];
		if (lens[i])
			memcpy(p, src[i], lens[i]);
		p += lens[i];
	}
	/* the padding too: the ring is sent nowhere, but stays deterministic */
	memset(p, 0, (size_t)((char *)dst + size - p));
}

/* the string bytes a record can carry (lens[] are bounded by the buffers) */
#define REC_STR_MAX (PROC_NAME_MAX + SONDE_COMM_LEN + SPAN_METHOD_MAX + 2 * SPAN_TARGET_MAX + \
		     SPAN_TRACESTATE_MAX + 3 * SPAN_HDR_ID_MAX + SPAN_ERROR_TYPE_MAX + 64 + \
		     SPAN_DB_OP_MAX + SPAN_DB_COLLECTION_MAX + SPAN_DB_QUERY_MAX + SPAN_DB_STATUS_MAX)
_Static_assert(sizeof(struct otlp_rec) + REC_STR_MAX + 8 <= OTLP_REC_MAX,
	       "OTLP_REC_MAX bounds every record");

size_t otlp__rec_len(const void *rec)
{
	return ((const struct otlp_rec *)rec)->size;
}

/* ---- the queue ---- */

int otlp__ring_init(struct otlp_ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	cap = (cap + 7) & ~(size_t)7;
	r->cap = cap < 2 * OTLP_REC_MAX ? 2 * OTLP_REC_MAX : cap;
	/* pages are touched as the ring first goes round, not here */
	r->buf = malloc(r->cap);
	return r->buf ? 0 : -ENOMEM;
}

void *otlp__ring_reserve(struct otlp_ring *r, size_t sz)
{
	uint8_t *p;

	if (!r->used)
		r->head = r->tail = 0;
	if (r->tail >= r->head && !(r->used && r->tail == r->head)) {
		/* free: [tail, cap) and [0, head) */
		if (r->cap - r->tail < sz) {
			if (r->head < sz)
				return NULL;
			/* a zero size sends the reader back to the start */
			if (r->tail < r->cap)
				*(uint32_t *)(r->buf + r->tail) = 0;
			r->used += r->cap - r->tail;
			r->tail = 0;
		}
	} else if (r->head - r->tail < sz) {
		return NULL;
	}
	p = r->buf + r->tail;
	r->tail += sz;
	r->used += sz;
	return p;
}

size_t otlp__ring_take(const struct otlp_ring *r, const void **recs, size_t n, size_t *head)
{
	size_t pos = r->head, taken = 0;

	for (size_t i = 0; i < n; i++) {
		size_t sz;

		if (pos == r->cap) {
			pos = 0;
		} else if (*(const uint32_t *)(r->buf + pos) == 0) {
			taken += r->cap - pos;
			pos = 0;
		}
		recs[i] = r->buf + pos;
		sz = otlp__rec_len(r->buf + pos);
		pos += sz;
		taken += sz;
	}
	*head = pos;
	return taken;
}

void otlp__ring_release(struct otlp_ring *r, size_t head, size_t taken)
{
	r->head = head;
	r->used -= taken;
}

/* ---- protobuf writing ---- */

struct obuf {
	uint8_t *p;
	size_t len, cap;
};

static int obuf_reserve(struct obuf *b, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (b->cap - b->len >= n)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = cap;
	return 0;
}

static size_t vlen(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *bytes(uint8_t *p, uint8_t tag, const void *v, size_t n)
{
	*p++ = tag;
	p = varint(p, n);
	memcpy(p, v, n);
	return p + n;
}

static uint8_t *fixed64(uint8_t *p, uint8_t tag, uint64_t v)
{
	*p++ = tag;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* Attribute keys: fixed strings whose length is known at compile time. */
struct okey {
	const char *s;
	uint8_t n;
};
#define KEY(name, str) static const struct okey name = { str, sizeof(str) - 1 }

KEY(K_SERVICE, "service.name");
KEY(K_PID, "process.pid");
KEY(K_EXE, "process.executable.name");
KEY(K_CMDLINE, "process.command_line");
KEY(K_HOST, "host.name");
KEY(K_SDK_NAME, "telemetry.sdk.name");
KEY(K_SDK_VERSION, "telemetry.sdk.version");
KEY(K_METHOD, "http.request.method");
KEY(K_METHOD_ORIG, "http.request.method_original");
KEY(K_URL_PATH, "url.path");
KEY(K_URL_QUERY, "url.query");
KEY(K_URL_FULL, "url.full");
KEY(K_URL_SCHEME, "url.scheme");
KEY(K_ROUTE, "http.route");
KEY(K_STATUS, "http.response.status_code");
KEY(K_SERVER_ADDR, "server.address");
KEY(K_SERVER_PORT, "server.port");
KEY(K_CLIENT_ADDR, "client.address");
KEY(K_CLIENT_PORT, "client.port");
KEY(K_PEER_ADDR, "network.peer.address");
KEY(K_PEER_PORT, "network.peer.port");
KEY(K_PROTO_VERSION, "network.protocol.version");
KEY(K_HDR_REQID, "http.request.header.x-request-id");
KEY(K_HDR_TRACKID, "http.request.header.x-tracking-id");
KEY(K_HDR_CORRID, "http.request.header.x-correlation-id");
KEY(K_ERROR_TYPE, "error.type");
KEY(K_DB_SYSTEM, "db.system.name");
KEY(K_DB_OP, "db.operation.name");
KEY(K_DB_COLL, "db.collection.name");
KEY(K_DB_QUERY, "db.query.text");
KEY(K_DB_STATUS, "db.response.status_code");

/* KeyValue framing around an AnyValue body of `any` bytes, written as field
 * `tag` of the enclosing message (Span.attributes, Resource.attributes). */
static uint8_t *kv_head(uint8_t *p, uint8_t tag, const char *key, size_t kn, size_t any)
{
	size_t kv = 1 + vlen(kn) + kn + 1 + vlen(any) + any;

	*p++ = tag;
	p = varint(p, kv);
	p = bytes(p, 0x0a, key, kn);	/* KeyValue.key */
	*p++ = 0x12;			/* KeyValue.value */
	return varint(p, any);
}

static uint8_t *kv_str(uint8_t *p, uint8_t tag, const struct okey *k, const char *v, size_t n)
{
	p = kv_head(p, tag, k->s, k->n, 1 + vlen(n) + n);
	return bytes(p, 0x0a, v, n);	/* AnyValue.string_value */
}

static uint8_t *kv_int(uint8_t *p, uint8_t tag, const struct okey *k, int64_t v)
{
	p = kv_head(p, tag, k->s, k->n, 1 + vlen((uint64_t)v));
	*p++ = 0x18;			/* AnyValue.int_value */
	return varint(p, (uint64_t)v);
}

/* Header values are string arrays in the semantic conventions (a header
 * may repeat); sonde records one value. */
static uint8_t *kv_str_array(uint8_t *p, const struct okey *k, const char *v, size_t n)
{
	size_t inner = 1 + vlen(n) + n, arr = 1 + vlen(inner) + inner;

	p = kv_head(p, 0x4a, k->s, k->n, 1 + vlen(arr) + arr);
	*p++ = 0x2a;			/* AnyValue.array_value */
	p = varint(p, arr);
	*p++ = 0x0a;			/* ArrayValue.values */
	p = varint(p, inner);
	return bytes(p, 0x0a, v, n);
}

/* Address text as span__addr writes it; IPv4 (and IPv4-mapped) by hand,
 * the rest through inet_ntop. Returns the length. */
static size_t addr_text(const struct sonde_tuple *t, int remote, char *out)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a = remote ? t->daddr : t->saddr;
	char *o = out;

	if (t->family == AF_INET6 && memcmp(a, v4mapped, 12) == 0)
		a += 12;
	else if (t->family == AF_INET6)
		return inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN) ? strlen(out) : 0;
	else if (t->family != AF_INET) {
		out[0] = '?';
		return 1;
	}
	for (int i = 0; i < 4; i++) {
		unsigned int b = a[i];

		if (b >= 100)
			*o++ = (char)('0' + b / 100);
		if (b >= 10)
			*o++ = (char)('0' + b / 10 % 10);
		*o++ = (char)('0' + b % 10);
		if (i < 3)
			*o++ = '.';
	}
	return (size_t)(o - out);
}

static size_t utoa(char *o, unsigned int v)
{
	char t[10];
	size_t n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		o[i] = t[n - 1 - i];
	return n;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A record's strings by index. */
struct rstr {
	const char *p[R_NSTR];
	size_t n[R_NSTR];
};

static void rec_strings(const struct otlp_rec *r, struct rstr *v)
{
	const char *p = r->str;

	for (int i = 0; i < R_NSTR; i++) {
		v->p[i] = p;
		v->n[i] = r->len[i];
		p += r->len[i];
	}
}

#define STR(i) v->p[i], v->n[i]

/* The attributes of an HTTP span. */
static uint8_t *http_attrs(uint8_t *p, const struct otlp_rec *r, const struct rstr *v, bool method,
			   const char *local, size_t ln, const char *peer, size_t pn)
{
	bool server = r->kind == SPAN_SERVER;
	const char *scheme = r->tls ? "https" : "http", *t = v->p[R_TARGET];
	size_t sn = r->tls ? 5 : 4, tn = v->n[R_TARGET], rn = v->n[R_ROUTE];
	const char *q = memchr(t, '?', tn);
	char ver[16];

	if (method) {
		p = kv_str(p, 0x4a, &K_METHOD, STR(R_METHOD));
	} else {
		p = kv_str(p, 0x4a, &K_METHOD, "_OTHER", 6);
		p = kv_str(p, 0x4a, &K_METHOD_ORIG, STR(R_METHOD));
	}
	if (server) {
		p = kv_str(p, 0x4a, &K_URL_PATH, t, q ? (size_t)(q - t) : tn);
		if (q && (size_t)(q + 1 - t) < tn)
			p = kv_str(p, 0x4a, &K_URL_QUERY, q + 1, tn - (size_t)(q + 1 - t));
	} else if (tn && t[0] == '/') {
		char url[SPAN_TARGET_MAX + INET6_ADDRSTRLEN + 24], *u = url;
		bool v6 = memchr(peer, ':', pn) != NULL;

		memcpy(u, scheme, sn);
		u += sn;
		memcpy(u, "://", 3);
		u += 3;
		if (v6)
			*u++ = '[';
		memcpy(u, peer, pn);
		u += pn;
		if (v6)
			*u++ = ']';
		*u++ = ':';
		u += utoa(u, r->tuple.dport);
		memcpy(u, t, tn);
		u += tn;
		p = kv_str(p, 0x4a, &K_URL_FULL, url, (size_t)(u - url));
	} else {
		/* absolute-form (proxy requests) is already a full URL */
		p = kv_str(p, 0x4a, &K_URL_FULL, t, tn);
	}
	p = kv_str(p, 0x4a, &K_URL_SCHEME, scheme, sn);
	if (rn)
		p = kv_str(p, 0x4a, &K_ROUTE, STR(R_ROUTE));
	if (r->status)
		p = kv_int(p, 0x4a, &K_STATUS, r->status);
	p = server ? kv_str(p, 0x4a, &K_SERVER_ADDR, local, ln) : kv_str(p, 0x4a, &K_SERVER_ADDR, peer, pn);
	p = kv_int(p, 0x4a, &K_SERVER_PORT, server ? r->tuple.sport : r->tuple.dport);
	if (server) {
		p = kv_str(p, 0x4a, &K_CLIENT_ADDR, peer, pn);
		p = kv_int(p, 0x4a, &K_CLIENT_PORT, r->tuple.dport);
	}
	p = kv_str(p, 0x4a, &K_PEER_ADDR, peer, pn);
	p = kv_int(p, 0x4a, &K_PEER_PORT, r->tuple.dport);
	ver[0] = '1';
	ver[1] = '.';
	p = kv_str(p, 0x4a, &K_PROTO_VERSION, ver, 2 + utoa(ver + 2, r->version_minor));
	if (v->n[R_REQID])
		p = kv_str_array(p, &K_HDR_REQID, STR(R_REQID));
	if (v->n[R_TRACKID])
		p = kv_str_array(p, &K_HDR_TRACKID, STR(R_TRACKID));
	if (v->n[R_CORRID])
		p = kv_str_array(p, &K_HDR_CORRID, STR(R_CORRID));
	return p;
}

/* Span.name: "{method} {route}" for HTTP, both kinds (sonde's normalised
 * route plays the part of url.template on the client side); "{operation}
 * {collection}" for databases. Returns the length. */
static size_t span_name(const struct otlp_rec *r, const struct rstr *v, bool method, char *name)
{
	size_t nn;

	if (r->proto != SPAN_DB) {
		nn = method ? v->n[R_METHOD] : 4;
		memcpy(name, method ? v->p[R_METHOD] : "HTTP", nn);
		if (v->n[R_ROUTE]) {
			name[nn++] = ' ';
			memcpy(name + nn, v->p[R_ROUTE], v->n[R_ROUTE]);
			nn += v->n[R_ROUTE];
		}
	} else if (v->n[R_DBOP]) {
		memcpy(name, v->p[R_DBOP], v->n[R_DBOP]);
		nn = v->n[R_DBOP];
		if (v->n[R_DBCOLL]) {
			name[nn++] = ' ';
			memcpy(name + nn, v->p[R_DBCOLL], v->n[R_DBCOLL]);
			nn += v->n[R_DBCOLL];
		}
	} else if (v->n[R_DBSYS]) {
		memcpy(name, v->p[R_DBSYS], v->n[R_DBSYS]);
		nn = v->n[R_DBSYS];
	} else {
		memcpy(name, "db", 2);
		nn = 2;
	}
	return nn;
}

static uint8_t *db_attrs(uint8_t *p, const struct otlp_rec *r, const struct rstr *v, const char *local,
			 size_t ln, const char *peer, size_t pn)
{
	bool server = r->kind == SPAN_SERVER;

	if (v->n[R_DBSYS])
		p = kv_str(p, 0x4a, &K_DB_SYSTEM, STR(R_DBSYS));
	if (v->n[R_DBOP])
		p = kv_str(p, 0x4a, &K_DB_OP, STR(R_DBOP));
	if (v->n[R_DBCOLL])
		p = kv_str(p, 0x4a, &K_DB_COLL, STR(R_DBCOLL));
	if (v->n[R_DBQUERY])
		p = kv_str(p, 0x4a, &K_DB_QUERY, STR(R_DBQUERY));
	if (v->n[R_DBSTATUS])
		p = kv_str(p, 0x4a, &K_DB_STATUS, STR(R_DBSTATUS));
	p = server ? kv_str(p, 0x4a, &K_SERVER_ADDR, local, ln) : kv_str(p, 0x4a, &K_SERVER_ADDR, peer, pn);
	p = kv_int(p, 0x4a, &K_SERVER_PORT, server ? r->tuple.sport : r->tuple.dport);
	p = kv_str(p, 0x4a, &K_PEER_ADDR, peer, pn);
	p = kv_int(p, 0x4a, &K_PEER_PORT, r->tuple.dport);
	return p;
}

/* Most a span body can take: fixed fields, every key with its framing,
 * and each string at most 4 times (route: name and http.route; target:
 * path and query, or url.full), addresses included in the constant. */
#define SPAN_BOUND_FIXED 2048
_Static_assert(SPAN_BOUND_FIXED + 4 * REC_STR_MAX < 16384, "a span's length takes at most 2 varint bytes");

static size_t span_bound(const struct otlp_rec *r)
{
	size_t n = SPAN_BOUND_FIXED;

	for (int i = 0; i < R_NSTR; i++)
		n += 4 * (size_t)r->len[i];
	return n;
}

/* Span message body (without its own tag and length) at the end of b. */
static int span_write(struct obuf *b, const struct otlp_rec *r)
{
	struct rstr v;
	char local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	char name[SPAN_TARGET_MAX + SPAN_DB_COLLECTION_MAX + 32];
	size_t ln, pn, nn;
	bool method;
	uint32_t flags;
	uint8_t *p;

	if (obuf_reserve(b, span_bound(r)))
		return -ENOMEM;
	rec_strings(r, &v);
	method = semconv__http_method_known(v.p[R_METHOD], v.n[R_METHOD]);
	ln = addr_text(&r->tuple, 0, local);
	pn = addr_text(&r->tuple, 1, peer);
	nn = span_name(r, &v, method, name);
	p = b->p + b->len;
	p = bytes(p, 0x0a, r->trace_id, 16);		/* trace_id = 1 */
	p = bytes(p, 0x12, r->span_id, 8);		/* span_id = 2 */
	if (v.n[R_TRACESTATE])				/* trace_state = 3 */
		p = bytes(p, 0x1a, v.p[R_TRACESTATE], v.n[R_TRACESTATE]);
	if (!all_zero(r->parent_span_id, 8))		/* parent_span_id = 4 */
		p = bytes(p, 0x22, r->parent_span_id, 8);
	p = bytes(p, 0x2a, name, nn);			/* name = 5 */
	*p++ = 0x30;					/* kind = 6 */
	*p++ = r->kind == SPAN_SERVER ? 2 : 3;
	p = fixed64(p, 0x39, span__wall_ns(r->start_ns));	/* start_time_unix_nano = 7 */
	p = fixed64(p, 0x41, span__wall_ns(r->end_ns));	/* end_time_unix_nano = 8 */
	p = r->proto == SPAN_DB ? db_attrs(p, r, &v, local, ln, peer, pn)	/* attributes = 9 */
				: http_attrs(p, r, &v, method, local, ln, peer, pn);
	if (v.n[R_ERRTYPE])
		p = kv_str(p, 0x4a, &K_ERROR_TYPE, v.p[R_ERRTYPE], v.n[R_ERRTYPE]);
	/* status = 15: always present, code ERROR when error.type is set */
	*p++ = 0x7a;
	if (semconv__span_status(v.n[R_ERRTYPE] ? v.p[R_ERRTYPE] : "") == SEMCONV_STATUS_ERROR) {
		*p++ = 2;
		*p++ = 0x18;
		*p++ = SEMCONV_STATUS_ERROR;
	} else {
		*p++ = 0;
	}
	/* flags = 16 (fixed32): W3C flags in the low byte; bit 8 says bit 9
	 * (parent is remote) is known */
	flags = r->trace_flags | 0x100u | (r->remote_parent ? 0x200u : 0);
	*p++ = 0x85;
	*p++ = 0x01;
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(flags >> (8 * i));
	b->len = (size_t)(p - b->p);
	return 0;
}

/* ---- batches ---- */

struct grp {
	uint32_t first, last;		/* records, chained through otlp_enc.next */
	const struct otlp_rec *rec;	/* the first: tgid, service, comm */
};

struct otlp_enc {
	struct obuf res;		/* one resource's attributes */
	struct obuf out;		/* the request */
	struct obuf gz;
	size_t ncap;			/* entries in the arrays below */
	uint32_t *next;			/* per record: the next of its group */
	struct grp *grp;
	uint32_t *slot;			/* hash of (tgid, service) -> group + 1; 2 * ncap */
	z_stream z;
	bool zinit;
};

struct otlp_enc *otlp__enc_new(void)
{
	return calloc(1, sizeof(struct otlp_enc));
}

void otlp__enc_free(struct otlp_enc *e)
{
	if (!e)
		return;
	if (e->zinit)
		deflateEnd(&e->z);
	free(e->res.p);
	free(e->out.p);
	free(e->gz.p);
	free(e->next);
	free(e->grp);
	free(e->slot);
	free(e);
}

static int enc_arrays(struct otlp_enc *e, size_t n)
{
	size_t cap = e->ncap ? e->ncap : 64;

	if (n <= e->ncap)
		return 0;
	while (cap < n)
		cap *= 2;
	free(e->next);
	free(e->grp);
	free(e->slot);
	e->next = malloc(cap * sizeof(*e->next));
	e->grp = malloc(cap * sizeof(*e->grp));
	e->slot = malloc(2 * cap * sizeof(*e->slot));
	if (!e->next || !e->grp || !e->slot) {
		e->ncap = 0;
		return -ENOMEM;
	}
	e->ncap = cap;
	return 0;
}

static bool same_resource(const struct otlp_rec *a, const struct otlp_rec *b)
{
	return a->tgid == b->tgid && a->len[R_SERVICE] == b->len[R_SERVICE] &&
	       memcmp(a->str, b->str, a->len[R_SERVICE]) == 0;
}

static uint32_t resource_hash(const struct otlp_rec *r)
{
	uint32_t h = r->tgid * 2654435761u;

	for (size_t i = 0; i < r->len[R_SERVICE]; i++)
		h = (h ^ (uint8_t)r->str[i]) * 16777619u;
	return h;
}

/* Groups records by resource (pid, service), in order of first appearance,
 * keeping arrival order inside a group. Returns the number of groups. */
static size_t group(struct otlp_enc *e, const struct otlp_rec *const *recs, size_t n)
{
	size_t mask = 2 * e->ncap - 1, ng = 0;

	memset(e->slot, 0, 2 * e->ncap * sizeof(*e->slot));
	for (size_t i = 0; i < n; i++) {
		size_t h = resource_hash(recs[i]) & mask;
		struct grp *g;

		while (e->slot[h] && !same_resource(e->grp[e->slot[h] - 1].rec, recs[i]))
			h = (h + 1) & mask;
		if (!e->slot[h]) {
			g = &e->grp[ng++];
			g->first = (uint32_t)i;
			g->rec = recs[i];
			e->slot[h] = (uint32_t)ng;
		} else {
			g = &e->grp[e->slot[h] - 1];
			e->next[g->last] = (uint32_t)i;
		}
		g->last = (uint32_t)i;
	}
	return ng;
}

/* One resource attribute (any key: OTEL_RESOURCE_ATTRIBUTES come from the
 * environment) appended to b. */
static int res_str(struct obuf *b, const char *key, size_t kn, const char *v, size_t vn)
{
	uint8_t *p;

	if (obuf_reserve(b, kn + vn + 32))
		return -ENOMEM;
	p = kv_head(b->p + b->len, 0x0a, key, kn, 1 + vlen(vn) + vn);
	p = bytes(p, 0x0a, v, vn);
	b->len = (size_t)(p - b->p);
	return 0;
}

static bool fixed_resource_key(const char *k, bool cmdline)
{
	static const struct okey *const fixed[] = { &K_SERVICE, &K_PID, &K_EXE, &K_HOST, &K_SDK_NAME,
						    &K_SDK_VERSION };

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(k, fixed[i]->s) == 0)
			return true;
	return cmdline && strcmp(k, K_CMDLINE.s) == 0;
}

/* Resource.attributes of one group: what sonde knows of the process, then
 * the host and SDK, then OTEL_RESOURCE_ATTRIBUTES. Each key appears once:
 * a configured key sonde already set, or set earlier, is skipped. */
static int resource_write(struct obuf *b, const struct otlp_config *c, const struct otlp_rec *r,
			  otlp_proc_info_fn info, void *info_arg)
{
	char exe[256] = "", cmd[1024] = "";
	struct rstr v;
	int rc = 0;

	b->len = 0;
	rec_strings(r, &v);
	if (info)
		info(info_arg, r->tgid, exe, sizeof(exe), cmd, sizeof(cmd));
	rc |= res_str(b, K_SERVICE.s, K_SERVICE.n, v.p[R_SERVICE], v.n[R_SERVICE]);
	if (obuf_reserve(b, 64))
		return -ENOMEM;
	b->len = (size_t)(kv_int(b->p + b->len, 0x0a, &K_PID, r->tgid) - b->p);
	if (exe[0])
		rc |= res_str(b, K_EXE.s, K_EXE.n, exe, strlen(exe));
	else
		rc |= res_str(b, K_EXE.s, K_EXE.n, v.p[R_COMM], v.n[R_COMM]);
	if (cmd[0])
		rc |= res_str(b, K_CMDLINE.s, K_CMDLINE.n, cmd, strlen(cmd));
	rc |= res_str(b, K_HOST.s, K_HOST.n, c->host_name, strlen(c->host_name));
	rc |= res_str(b, K_SDK_NAME.s, K_SDK_NAME.n, "sonde", 5);
	rc |= res_str(b, K_SDK_VERSION.s, K_SDK_VERSION.n, c->sdk_version, strlen(c->sdk_version));
	for (size_t i = 0; i < c->nresource; i++) {
		const char *k = c->resource[i].key;
		bool dup = fixed_resource_key(k, cmd[0]);

		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(k, c->resource[j].key) == 0;
		if (!dup)
			rc |= res_str(b, k, strlen(k), c->resource[i].value, strlen(c->resource[i].value));
	}
	return rc ? -ENOMEM : 0;
}

static size_t framed(size_t n)
{
	return 1 + vlen(n) + n;
}

/* A message of n bytes was written at body, after a length slot at slot
 * sized for the largest length: write the length there and close the gap. */
static void close_len(struct obuf *b, size_t slot, size_t body, size_t n)
{
	uint8_t *q = varint(b->p + slot, n);
	size_t gap = (size_t)(b->p + body - q);

	if (gap) {
		memmove(q, b->p + body, n);
		b->len -= gap;
	}
}

/* One ScopeSpans.spans entry: the span written in place after a two-byte
 * length slot (span_bound keeps every span under 16 KiB). */
static int span_frame(struct obuf *b, const struct otlp_rec *r)
{
	size_t slot, body;

	if (obuf_reserve(b, 3))
		return -ENOMEM;
	b->p[b->len] = 0x12;			/* ScopeSpans.spans = 2 */
	slot = b->len + 1;
	body = b->len = slot + 2;
	if (span_write(b, r))
		return -ENOMEM;
	close_len(b, slot, body, b->len - body);
	return 0;
}

int otlp__enc_spans(struct otlp_enc *e, const struct otlp_config *c, const void *const *recv, size_t n,
		    otlp_proc_info_fn info, void *info_arg, bool gzip, const uint8_t **body, size_t *len)
{
	const struct otlp_rec *const *recs = (const struct otlp_rec *const *)recv;
	uint8_t scope[64], *p;
	size_t ng, sn, vn = strnlen(c->sdk_version, sizeof(c->sdk_version));

	*body = NULL;
	*len = 0;
	if (enc_arrays(e, n))
		return -ENOMEM;
	ng = n ? group(e, recs, n) : 0;
	/* InstrumentationScope: the same for every group */
	p = bytes(scope, 0x0a, "sonde", 5);
	if (vn)
		p = bytes(p, 0x12, c->sdk_version, vn);
	sn = (size_t)(p - scope);
	e->out.len = 0;
	/* Lengths of the nested messages are known once their content is
	 * written: each gets a five-byte slot, filled and closed up after. */
	for (size_t g = 0; g < ng; g++) {
		const struct grp *gr = &e->grp[g];
		size_t rs_body, ss_body;

		if (resource_write(&e->res, c, gr->rec, info, info_arg) ||
		    obuf_reserve(&e->out, 12 + framed(e->res.len) + framed(sn)))
			return -ENOMEM;
		p = e->out.p + e->out.len;
		*p++ = 0x0a;			/* ExportTraceServiceRequest.resource_spans = 1 */
		p += 5;
		rs_body = (size_t)(p - e->out.p);
		p = bytes(p, 0x0a, e->res.p, e->res.len);	/* ResourceSpans.resource = 1 */
		*p++ = 0x12;			/* ResourceSpans.scope_spans = 2 */
		p += 5;
		ss_body = (size_t)(p - e->out.p);
		p = bytes(p, 0x0a, scope, sn);	/* ScopeSpans.scope = 1 */
		e->out.len = (size_t)(p - e->out.p);
		for (uint32_t i = gr->first;; i = e->next[i]) {
			if (span_frame(&e->out, recs[i]))
				return -ENOMEM;
			if (i == gr->last)
				break;
		}
		/* both lengths are known now: one move of the spans closes both gaps */
		{
			size_t ss = e->out.len - ss_body, head = ss_body - 5 - rs_body;	/* resource, tag */
			uint8_t *q = varint(e->out.p + rs_body - 5, head + vlen(ss) + ss);

			memmove(q, e->out.p + rs_body, head);
			q = varint(q + head, ss);
			memmove(q, e->out.p + ss_body, ss);
			e->out.len = (size_t)(q - e->out.p) + ss;
		}
	}
	if (!gzip) {
		*body = e->out.p;
		*len = e->out.len;
		return 0;
	}
	return otlp__enc_gzip(e, e->out.p, e->out.len, body, len);
}

int otlp__enc_gzip(struct otlp_enc *e, const uint8_t *in, size_t n, const uint8_t **out, size_t *outlen)
{
	int rc;

	*out = NULL;
	*outlen = 0;
	/* Z_BEST_SPEED: a batch of spans repeats its keys and resources, so
	 * level 1 already gets most of the ratio at a fraction of level 6's
	 * time. The stream (and its window) is kept across batches. */
	if (!e->zinit) {
		if (deflateInit2(&e->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		e->zinit = true;
	} else if (deflateReset(&e->z) != Z_OK) {
		return -ENOMEM;
	}
	if (obuf_reserve(&e->gz, deflateBound(&e->z, n) + 32))
		return -ENOMEM;
	e->z.next_in = (Bytef *)in;
	e->z.avail_in = (uInt)n;
	e->z.next_out = e->gz.p;
	e->z.avail_out = (uInt)e->gz.cap;
	rc = deflate(&e->z, Z_FINISH);
	if (rc != Z_STREAM_END)
		return -ENOMEM;
	*out = e->gz.p;
	*outlen = e->z.total_out;
	return 0;
}

int otlp__gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
	struct otlp_enc *e = otlp__enc_new();
	const uint8_t *z;
	int rc = e ? otlp__enc_gzip(e, in, n, &z, outlen) : -ENOMEM;

	*out = NULL;
	if (!rc) {
		/* the result is the caller's: hand over the buffer */
		*out = e->gz.p;
		e->gz.p = NULL;
	}
	otlp__enc_free(e);
	return rc;
}

int otlp__encode_spans(const struct otlp_config *c, const struct otlp_span_item *items, size_t n,
		       otlp_proc_info_fn info, void *info_arg, uint8_t **out, size_t *outlen)
{
	struct otlp_enc *e = otlp__enc_new();
	const void **recs = malloc((n ? n : 1) * sizeof(*recs));
	uint8_t *mem = NULL;
	const uint8_t *body;
	size_t total = 0, *sizes = malloc((n ? n : 1) * sizeof(*sizes));
	uint16_t lens[R_NSTR];
	int rc = -ENOMEM;

	*out = NULL;
	*outlen = 0;
	if (!e || !recs || !sizes)
		goto out;
	for (size_t i = 0; i < n; i++)
		total += sizes[i] = otlp__rec_size(&items[i].s, items[i].service, lens);
	mem = malloc(total ? total : 1);
	if (!mem)
		goto out;
	for (size_t i = 0, off = 0; i < n; off += sizes[i++]) {
		otlp__rec_size(&items[i].s, items[i].service, lens);
		otlp__rec_write(mem + off, &items[i].s, &items[i].s.ctx, items[i].service, lens, sizes[i]);
		recs[i] = mem + off;
	}
	rc = otlp__enc_spans(e, c, recs, n, info, info_arg, false, &body, outlen);
	if (!rc) {
		/* the request is the caller's: hand over the buffer */
		*out = e->out.p ? e->out.p : malloc(1);
		e->out.p = NULL;
		rc = *out ? 0 : -ENOMEM;
	}
out:
	otlp__enc_free(e);
	free(recs);
	free(sizes);
	free(mem);
	return rc;
}
