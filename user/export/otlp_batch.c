/* ExportTraceServiceRequest batches of queued records: one ResourceSpans
 * per (pid, service), the Resource attributes, length framing around the
 * spans, and gzip, in buffers reused from batch to batch. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "export/otlp.h"
#include "export/otlp_pb.h"
#include "export/otlp_rec.h"

/* Resource attribute keys sonde sets itself. */
OTLP_PB_KEY(K_SERVICE, "service.name");
OTLP_PB_KEY(K_PID, "process.pid");
OTLP_PB_KEY(K_EXE, "process.executable.name");
OTLP_PB_KEY(K_CMDLINE, "process.command_line");
OTLP_PB_KEY(K_HOST, "host.name");
OTLP_PB_KEY(K_SDK_NAME, "telemetry.sdk.name");
OTLP_PB_KEY(K_SDK_VERSION, "telemetry.sdk.version");

struct grp {
	uint32_t first, last;		/* records, chained through otlp_enc.next */
	const struct otlp_rec *rec;	/* the first: tgid, service, comm */
};

struct otlp_enc {
	struct otlp_pb_buf res;	/* one resource's attributes */
	struct otlp_pb_buf out;	/* the request */
	struct otlp_pb_buf gz;
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

/* Where a record's identity blob starts (the strings before it skipped). */
static const char *ident_of(const struct otlp_rec *r)
{
	const char *p = r->str;

	for (int i = 0; i < R_IDENT; i++)
		p += r->len[i];
	return p;
}

static bool same_resource(const struct otlp_rec *a, const struct otlp_rec *b)
{
	return a->tgid == b->tgid && a->len[R_SERVICE] == b->len[R_SERVICE] &&
	       memcmp(a->str, b->str, a->len[R_SERVICE]) == 0 && a->len[R_IDENT] == b->len[R_IDENT] &&
	       memcmp(ident_of(a), ident_of(b), a->len[R_IDENT]) == 0;
}

static uint32_t resource_hash(const struct otlp_rec *r)
{
	uint32_t h = r->tgid * 2654435761u;

	for (size_t i = 0; i < r->len[R_SERVICE]; i++)
		h = (h ^ (uint8_t)r->str[i]) * 16777619u;
	return h;
}

/* Groups records by resource (pid, service, identity), in order of first appearance,
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
static int res_str(struct otlp_pb_buf *b, const char *key, size_t kn, const char *v, size_t vn)
{
	uint8_t *p;

	if (otlp_pb__reserve(b, kn + vn + 32))
		return -ENOMEM;
	p = otlp_pb__kv_head(b->p + b->len, 0x0a, key, kn, 1 + otlp_pb__vlen(vn) + vn);
	p = otlp_pb__bytes(p, 0x0a, v, vn);
	b->len = (size_t)(p - b->p);
	return 0;
}

/* Whether the identity blob (key SEP value END ...) holds key k. */
static bool ident_has(const char *b, size_t n, const char *k)
{
	size_t kn = strlen(k);

	for (size_t i = 0; i < n;) {
		const char *sep = memchr(b + i, IDENT_ATTR_SEP, n - i);
		const char *end = memchr(b + i, IDENT_ATTR_END, n - i);

		if (!sep || !end || end < sep)
			return false;
		if ((size_t)(sep - b - i) == kn && memcmp(b + i, k, kn) == 0)
			return true;
		i = (size_t)(end - b) + 1;
	}
	return false;
}

/* The identity blob's attributes, as strings. */
static int ident_write(struct otlp_pb_buf *b, const char *p, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n;) {
		const char *sep = memchr(p + i, IDENT_ATTR_SEP, n - i);
		const char *end = memchr(p + i, IDENT_ATTR_END, n - i);

		if (!sep || !end || end < sep)
			break;
		rc |= res_str(b, p + i, (size_t)(sep - p - i), sep + 1, (size_t)(end - sep - 1));
		i = (size_t)(end - p) + 1;
	}
	return rc;
}

static bool fixed_resource_key(const char *k, bool cmdline)
{
	static const struct otlp_pb_key *const fixed[] = { &K_SERVICE, &K_PID, &K_EXE, &K_HOST, &K_SDK_NAME,
						    &K_SDK_VERSION };

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(k, fixed[i]->s) == 0)
			return true;
	return cmdline && strcmp(k, K_CMDLINE.s) == 0;
}

/* Resource.attributes of one group: what sonde knows of the process, then
 * the host and SDK, then its identity (namespace, instance, k8s.*,
 * container.*), then the agent's OTEL_RESOURCE_ATTRIBUTES. Each key appears once:
 * a configured key sonde already set, or set earlier, is skipped. */
static int resource_write(struct otlp_pb_buf *b, const struct otlp_config *c, const struct otlp_rec *r,
			  otlp_proc_info_fn info, void *info_arg)
{
	char exe[256] = "", cmd[1024] = "";
	struct otlp_rec_strs v;
	int rc = 0;

	b->len = 0;
	otlp_rec__strings(r, &v);
	if (info)
		info(info_arg, r->tgid, exe, sizeof(exe), cmd, sizeof(cmd));
	rc |= res_str(b, K_SERVICE.s, K_SERVICE.n, v.p[R_SERVICE], v.n[R_SERVICE]);
	if (otlp_pb__reserve(b, 64))
		return -ENOMEM;
	b->len = (size_t)(otlp_pb__kv_int(b->p + b->len, 0x0a, &K_PID, r->tgid) - b->p);
	if (exe[0])
		rc |= res_str(b, K_EXE.s, K_EXE.n, exe, strlen(exe));
	else
		rc |= res_str(b, K_EXE.s, K_EXE.n, v.p[R_COMM], v.n[R_COMM]);
	if (cmd[0])
		rc |= res_str(b, K_CMDLINE.s, K_CMDLINE.n, cmd, strlen(cmd));
	rc |= res_str(b, K_HOST.s, K_HOST.n, c->host_name, strlen(c->host_name));
	rc |= res_str(b, K_SDK_NAME.s, K_SDK_NAME.n, "sonde", 5);
	rc |= res_str(b, K_SDK_VERSION.s, K_SDK_VERSION.n, c->sdk_version, strlen(c->sdk_version));
	rc |= ident_write(b, v.p[R_IDENT], v.n[R_IDENT]);
	for (size_t i = 0; i < c->nresource; i++) {
		const char *k = c->resource[i].key;
		bool dup = fixed_resource_key(k, cmd[0]) || ident_has(v.p[R_IDENT], v.n[R_IDENT], k);

		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(k, c->resource[j].key) == 0;
		if (!dup)
			rc |= res_str(b, k, strlen(k), c->resource[i].value, strlen(c->resource[i].value));
	}
	return rc ? -ENOMEM : 0;
}

static size_t framed(size_t n)
{
	return 1 + otlp_pb__vlen(n) + n;
}

/* A message of n bytes was written at body, after a length slot at slot
 * sized for the largest length: write the length there and close the gap. */
static void close_len(struct otlp_pb_buf *b, size_t slot, size_t body, size_t n)
{
	uint8_t *q = otlp_pb__varint(b->p + slot, n);
	size_t gap = (size_t)(b->p + body - q);

	if (gap) {
		memmove(q, b->p + body, n);
		b->len -= gap;
	}
}

/* One ScopeSpans.spans entry: the span written in place after a two-byte
 * length slot (span_bound keeps every span under 16 KiB). */
static int span_frame(struct otlp_pb_buf *b, const struct otlp_rec *r)
{
	size_t slot, body;

	if (otlp_pb__reserve(b, 3))
		return -ENOMEM;
	b->p[b->len] = 0x12;			/* ScopeSpans.spans = 2 */
	slot = b->len + 1;
	body = b->len = slot + 2;
	if (otlp_span__write(b, r))
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
	p = otlp_pb__bytes(scope, 0x0a, "sonde", 5);
	if (vn)
		p = otlp_pb__bytes(p, 0x12, c->sdk_version, vn);
	sn = (size_t)(p - scope);
	e->out.len = 0;
	/* Lengths of the nested messages are known once their content is
	 * written: each gets a five-byte slot, filled and closed up after. */
	for (size_t g = 0; g < ng; g++) {
		const struct grp *gr = &e->grp[g];
		size_t rs_body, ss_body;

		if (resource_write(&e->res, c, gr->rec, info, info_arg) ||
		    otlp_pb__reserve(&e->out, 12 + framed(e->res.len) + framed(sn)))
			return -ENOMEM;
		p = e->out.p + e->out.len;
		*p++ = 0x0a;			/* ExportTraceServiceRequest.resource_spans = 1 */
		p += 5;
		rs_body = (size_t)(p - e->out.p);
		p = otlp_pb__bytes(p, 0x0a, e->res.p, e->res.len);	/* ResourceSpans.resource = 1 */
		*p++ = 0x12;			/* ResourceSpans.scope_spans = 2 */
		p += 5;
		ss_body = (size_t)(p - e->out.p);
		p = otlp_pb__bytes(p, 0x0a, scope, sn);			/* ScopeSpans.scope = 1 */
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
			uint8_t *q = otlp_pb__varint(e->out.p + rs_body - 5, head + otlp_pb__vlen(ss) + ss);

			memmove(q, e->out.p + rs_body, head);
			q = otlp_pb__varint(q + head, ss);
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
	if (otlp_pb__reserve(&e->gz, deflateBound(&e->z, n) + 32))
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
