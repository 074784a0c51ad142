/* The protobuf Span of one queued record, written straight into the request
 * (no message objects, no packing pass): name, kind, times, the HTTP or
 * database attributes of the semantic conventions, status and flags. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "export/otlp.h"
#include "export/otlp_pb.h"
#include "export/otlp_rec.h"
#include "span/semconv.h"

/* Span attribute keys; the resource's are in otlp_batch.c. */
OTLP_PB_KEY(K_METHOD, "http.request.method");
OTLP_PB_KEY(K_METHOD_ORIG, "http.request.method_original");
OTLP_PB_KEY(K_URL_PATH, "url.path");
OTLP_PB_KEY(K_URL_QUERY, "url.query");
OTLP_PB_KEY(K_URL_FULL, "url.full");
OTLP_PB_KEY(K_URL_SCHEME, "url.scheme");
OTLP_PB_KEY(K_ROUTE, "http.route");
OTLP_PB_KEY(K_STATUS, "http.response.status_code");
OTLP_PB_KEY(K_SERVER_ADDR, "server.address");
OTLP_PB_KEY(K_SERVER_PORT, "server.port");
OTLP_PB_KEY(K_CLIENT_ADDR, "client.address");
OTLP_PB_KEY(K_CLIENT_PORT, "client.port");
OTLP_PB_KEY(K_PEER_ADDR, "network.peer.address");
OTLP_PB_KEY(K_PEER_PORT, "network.peer.port");
OTLP_PB_KEY(K_PROTO_VERSION, "network.protocol.version");
OTLP_PB_KEY(K_HDR_REQID, "http.request.header.x-request-id");
OTLP_PB_KEY(K_HDR_TRACKID, "http.request.header.x-tracking-id");
OTLP_PB_KEY(K_HDR_CORRID, "http.request.header.x-correlation-id");
OTLP_PB_KEY(K_ERROR_TYPE, "error.type");
OTLP_PB_KEY(K_DB_SYSTEM, "db.system.name");
OTLP_PB_KEY(K_DB_OP, "db.operation.name");
OTLP_PB_KEY(K_DB_COLL, "db.collection.name");
OTLP_PB_KEY(K_DB_QUERY, "db.query.text");
OTLP_PB_KEY(K_DB_STATUS, "db.response.status_code");
OTLP_PB_KEY(K_RPC_SYSTEM, "rpc.system");
OTLP_PB_KEY(K_RPC_SERVICE, "rpc.service");
OTLP_PB_KEY(K_RPC_METHOD, "rpc.method");
OTLP_PB_KEY(K_RPC_GRPC_STATUS, "rpc.grpc.status_code");

/* Header values are string arrays in the semantic conventions (a header
 * may repeat); sonde records one value. */
static uint8_t *kv_str_array(uint8_t *p, const struct otlp_pb_key *k, const char *v, size_t n)
{
	size_t inner = 1 + otlp_pb__vlen(n) + n, arr = 1 + otlp_pb__vlen(inner) + inner;

	p = otlp_pb__kv_head(p, 0x4a, k->s, k->n, 1 + otlp_pb__vlen(arr) + arr);
	*p++ = 0x2a;			/* AnyValue.array_value */
	p = otlp_pb__varint(p, arr);
	*p++ = 0x0a;			/* ArrayValue.values */
	p = otlp_pb__varint(p, inner);
	return otlp_pb__bytes(p, 0x0a, v, n);
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

#define STR(i) v->p[i], v->n[i]

/* The attributes of an HTTP span. */
static uint8_t *http_attrs(uint8_t *p, const struct otlp_rec *r, const struct otlp_rec_strs *v,
			   bool method, const char *local, size_t ln, const char *peer, size_t pn)
{
	bool server = r->kind == SPAN_SERVER;
	const char *scheme = r->tls ? "https" : "http", *t = v->p[R_TARGET];
	size_t sn = r->tls ? 5 : 4, tn = v->n[R_TARGET], rn = v->n[R_ROUTE];
	const char *q = memchr(t, '?', tn);
	char ver[16];

	if (method) {
		p = otlp_pb__kv_str(p, 0x4a, &K_METHOD, STR(R_METHOD));
	} else {
		p = otlp_pb__kv_str(p, 0x4a, &K_METHOD, "_OTHER", 6);
		p = otlp_pb__kv_str(p, 0x4a, &K_METHOD_ORIG, STR(R_METHOD));
	}
	if (server) {
		p = otlp_pb__kv_str(p, 0x4a, &K_URL_PATH, t, q ? (size_t)(q - t) : tn);
		if (q && (size_t)(q + 1 - t) < tn)
			p = otlp_pb__kv_str(p, 0x4a, &K_URL_QUERY, q + 1, tn - (size_t)(q + 1 - t));
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
		p = otlp_pb__kv_str(p, 0x4a, &K_URL_FULL, url, (size_t)(u - url));
	} else {
		/* absolute-form (proxy requests) is already a full URL */
		p = otlp_pb__kv_str(p, 0x4a, &K_URL_FULL, t, tn);
	}
	p = otlp_pb__kv_str(p, 0x4a, &K_URL_SCHEME, scheme, sn);
	if (rn)
		p = otlp_pb__kv_str(p, 0x4a, &K_ROUTE, STR(R_ROUTE));
	if (r->status)
		p = otlp_pb__kv_int(p, 0x4a, &K_STATUS, r->status);
	p = otlp_pb__kv_str(p, 0x4a, &K_SERVER_ADDR, server ? local : peer, server ? ln : pn);
	p = otlp_pb__kv_int(p, 0x4a, &K_SERVER_PORT, server ? r->tuple.sport : r->tuple.dport);
	if (server) {
		p = otlp_pb__kv_str(p, 0x4a, &K_CLIENT_ADDR, peer, pn);
		p = otlp_pb__kv_int(p, 0x4a, &K_CLIENT_PORT, r->tuple.dport);
	}
	p = otlp_pb__kv_str(p, 0x4a, &K_PEER_ADDR, peer, pn);
	p = otlp_pb__kv_int(p, 0x4a, &K_PEER_PORT, r->tuple.dport);
	if (r->version_major == 2) {
		p = otlp_pb__kv_str(p, 0x4a, &K_PROTO_VERSION, "2", 1);
	} else {
		ver[0] = '1';
		ver[1] = '.';
		p = otlp_pb__kv_str(p, 0x4a, &K_PROTO_VERSION, ver,
				    2 + utoa(ver + 2, r->version_minor));
	}
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
static size_t span_name(const struct otlp_rec *r, const struct otlp_rec_strs *v, bool method,
			char *name)
{
	size_t nn;

	if (r->proto == SPAN_RPC) {
		/* "{rpc.service}/{rpc.method}", or the path it came as */
		if (v->n[R_RPCSVC]) {
			memcpy(name, v->p[R_RPCSVC], v->n[R_RPCSVC]);
			nn = v->n[R_RPCSVC];
			name[nn++] = '/';
			memcpy(name + nn, v->p[R_RPCMETH], v->n[R_RPCMETH]);
			nn += v->n[R_RPCMETH];
		} else {
			memcpy(name, "grpc", 4);
			nn = 4;
		}
	} else if (r->proto != SPAN_DB) {
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

static uint8_t *db_attrs(uint8_t *p, const struct otlp_rec *r, const struct otlp_rec_strs *v,
			 const char *local, size_t ln, const char *peer, size_t pn)
{
	bool server = r->kind == SPAN_SERVER;

	if (v->n[R_DBSYS])
		p = otlp_pb__kv_str(p, 0x4a, &K_DB_SYSTEM, STR(R_DBSYS));
	if (v->n[R_DBOP])
		p = otlp_pb__kv_str(p, 0x4a, &K_DB_OP, STR(R_DBOP));
	if (v->n[R_DBCOLL])
		p = otlp_pb__kv_str(p, 0x4a, &K_DB_COLL, STR(R_DBCOLL));
	if (v->n[R_DBQUERY])
		p = otlp_pb__kv_str(p, 0x4a, &K_DB_QUERY, STR(R_DBQUERY));
	if (v->n[R_DBSTATUS])
		p = otlp_pb__kv_str(p, 0x4a, &K_DB_STATUS, STR(R_DBSTATUS));
	p = otlp_pb__kv_str(p, 0x4a, &K_SERVER_ADDR, server ? local : peer, server ? ln : pn);
	p = otlp_pb__kv_int(p, 0x4a, &K_SERVER_PORT, server ? r->tuple.sport : r->tuple.dport);
	p = otlp_pb__kv_str(p, 0x4a, &K_PEER_ADDR, peer, pn);
	p = otlp_pb__kv_int(p, 0x4a, &K_PEER_PORT, r->tuple.dport);
	return p;
}

static uint8_t *rpc_attrs(uint8_t *p, const struct otlp_rec *r, const struct otlp_rec_strs *v,
			  const char *local, size_t ln, const char *peer, size_t pn)
{
	bool server = r->kind == SPAN_SERVER;

	p = otlp_pb__kv_str(p, 0x4a, &K_RPC_SYSTEM, "grpc", 4);
	if (v->n[R_RPCSVC])
		p = otlp_pb__kv_str(p, 0x4a, &K_RPC_SERVICE, STR(R_RPCSVC));
	if (v->n[R_RPCMETH])
		p = otlp_pb__kv_str(p, 0x4a, &K_RPC_METHOD, STR(R_RPCMETH));
	if (r->rpc_status >= 0)
		p = otlp_pb__kv_int(p, 0x4a, &K_RPC_GRPC_STATUS, (uint64_t)r->rpc_status);
	p = otlp_pb__kv_str(p, 0x4a, &K_SERVER_ADDR, server ? local : peer, server ? ln : pn);
	p = otlp_pb__kv_int(p, 0x4a, &K_SERVER_PORT, server ? r->tuple.sport : r->tuple.dport);
	if (server) {
		p = otlp_pb__kv_str(p, 0x4a, &K_CLIENT_ADDR, peer, pn);
		p = otlp_pb__kv_int(p, 0x4a, &K_CLIENT_PORT, r->tuple.dport);
	}
	p = otlp_pb__kv_str(p, 0x4a, &K_PEER_ADDR, peer, pn);
	p = otlp_pb__kv_int(p, 0x4a, &K_PEER_PORT, r->tuple.dport);
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

int otlp_span__write(struct otlp_pb_buf *b, const struct otlp_rec *r)
{
	struct otlp_rec_strs v;
	char local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	char name[SPAN_TARGET_MAX + SPAN_DB_COLLECTION_MAX + 32];
	size_t ln, pn, nn;
	bool method;
	uint32_t flags;
	uint8_t *p;

	if (otlp_pb__reserve(b, span_bound(r)))
		return -ENOMEM;
	otlp_rec__strings(r, &v);
	method = semconv__http_method_known(v.p[R_METHOD], v.n[R_METHOD]);
	ln = addr_text(&r->tuple, 0, local);
	pn = addr_text(&r->tuple, 1, peer);
	nn = span_name(r, &v, method, name);
	p = b->p + b->len;
	p = otlp_pb__bytes(p, 0x0a, r->trace_id, 16);			/* trace_id = 1 */
	p = otlp_pb__bytes(p, 0x12, r->span_id, 8);			/* span_id = 2 */
	if (v.n[R_TRACESTATE])						/* trace_state = 3 */
		p = otlp_pb__bytes(p, 0x1a, v.p[R_TRACESTATE], v.n[R_TRACESTATE]);
	if (!all_zero(r->parent_span_id, 8))				/* parent_span_id = 4 */
		p = otlp_pb__bytes(p, 0x22, r->parent_span_id, 8);
	p = otlp_pb__bytes(p, 0x2a, name, nn);				/* name = 5 */
	*p++ = 0x30;							/* kind = 6 */
	*p++ = r->kind == SPAN_SERVER ? 2 : 3;
	p = otlp_pb__fixed64(p, 0x39, span__wall_ns(r->start_ns));	/* start_time_unix_nano = 7 */
	p = otlp_pb__fixed64(p, 0x41, span__wall_ns(r->end_ns));	/* end_time_unix_nano = 8 */
	if (r->proto == SPAN_DB)						/* attributes = 9 */
		p = db_attrs(p, r, &v, local, ln, peer, pn);
	else if (r->proto == SPAN_RPC)
		p = rpc_attrs(p, r, &v, local, ln, peer, pn);
	else
		p = http_attrs(p, r, &v, method, local, ln, peer, pn);
	if (v.n[R_ERRTYPE])
		p = otlp_pb__kv_str(p, 0x4a, &K_ERROR_TYPE, v.p[R_ERRTYPE], v.n[R_ERRTYPE]);
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
