/* OTLP protobuf encoding of the metrics registry, and response decoding.
 * Messages are built in an arena and packed by protobuf-c; spans, the hot
 * path, have their own writer (otlp_span.c, otlp_batch.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlp.h"
#include "otlp.pb-c.h"

/* ---- arena: every message of one request, freed at once ---- */

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_blk *head;
	bool failed;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk *b = a->head;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 60000 ? n : 60000;

		b = malloc(sizeof(*b) + cap);
		if (!b) {
			a->failed = true;
			return NULL;
		}
		b->next = a->head;
		b->used = 0;
		b->cap = cap;
		a->head = b;
	}
	p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_blk *n = a->head->next;

		free(a->head);
		a->head = n;
	}
}

static char *astr(struct arena *a, const char *s)
{
	size_t n = strlen(s);
	char *p = arena_alloc(a, n + 1);

	if (p)
		memcpy(p, s, n + 1);
	return p;
}

/* A growing list of attributes for one message. */
struct attrs {
	Otlp__KeyValue **kv;
	size_t n, cap;
};

static Otlp__AnyValue *any_new(struct arena *a)
{
	Otlp__AnyValue *v = arena_alloc(a, sizeof(*v));

	if (v)
		otlp__any_value__init(v);
	return v;
}

static Otlp__AnyValue *attr_add(struct arena *a, struct attrs *l, const char *key)
{
	Otlp__KeyValue *kv;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		Otlp__KeyValue **nk = arena_alloc(a, cap * sizeof(*nk));

		if (!nk)
			return NULL;
		if (l->n)
			memcpy(nk, l->kv, l->n * sizeof(*nk));
		l->kv = nk;
		l->cap = cap;
	}
	kv = arena_alloc(a, sizeof(*kv));
	if (!kv)
		return NULL;
	otlp__key_value__init(kv);
	kv->key = (char *)key;	/* keys are literals or arena/config strings */
	kv->value = any_new(a);
	if (!kv->value)
		return NULL;
	l->kv[l->n++] = kv;
	return kv->value;
}

static void attr_str(struct arena *a, struct attrs *l, const char *key, const char *val)
{
	Otlp__AnyValue *v = attr_add(a, l, key);
	char *s = astr(a, val);

	if (v && s) {
		v->value_case = OTLP__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = s;
	}
}

static void attr_int(struct arena *a, struct attrs *l, const char *key, int64_t val)
{
	Otlp__AnyValue *v = attr_add(a, l, key);

	if (v) {
		v->value_case = OTLP__ANY_VALUE__VALUE_INT_VALUE;
		v->int_value = val;
	}
}

static void attr_bool(struct arena *a, struct attrs *l, const char *key, bool val)
{
	Otlp__AnyValue *v = attr_add(a, l, key);

	if (v) {
		v->value_case = OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
		v->bool_value = val;
	}
}

static Otlp__InstrumentationScope *scope_new(struct arena *a, const struct otlp_config *c)
{
	Otlp__InstrumentationScope *s = arena_alloc(a, sizeof(*s));

	if (!s)
		return NULL;
	otlp__instrumentation_scope__init(s);
	s->name = "sonde";
	s->version = (char *)c->sdk_version;
	return s;
}

/* Resource attributes common to every resource; OTEL_RESOURCE_ATTRIBUTES
 * come first so that what sonde knows for certain (service.name, process.*)
 * is what a receiver keeping the last duplicate sees... and duplicates are
 * skipped instead, so each key appears once. */
static bool has_key(const struct attrs *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->kv[i]->key, key) == 0)
			return true;
	return false;
}

static void resource_common(struct arena *a, struct attrs *l, const struct otlp_config *c)
{
	attr_str(a, l, "host.name", c->host_name);
	attr_str(a, l, "telemetry.sdk.name", "sonde");
	attr_str(a, l, "telemetry.sdk.version", c->sdk_version);
	for (size_t i = 0; i < c->nresource; i++)
		if (!has_key(l, c->resource[i].key))
			attr_str(a, l, c->resource[i].key, c->resource[i].value);
}

static Otlp__Resource *resource_new(struct arena *a, struct attrs *l)
{
	Otlp__Resource *r = arena_alloc(a, sizeof(*r));

	if (!r)
		return NULL;
	otlp__resource__init(r);
	r->n_attributes = l->n;
	r->attributes = l->kv;
	return r;
}

static int pack(const ProtobufCMessage *msg, uint8_t **out, size_t *outlen)
{
	size_t n = protobuf_c_message_get_packed_size(msg);

	*out = malloc(n ? n : 1);
	if (!*out)
		return -ENOMEM;
	*outlen = protobuf_c_message_pack(msg, *out);
	return 0;
}

/* ---- metrics ---- */

const char *otlp__attr_key(const char *label)
{
	static const char *const map[][2] = {
		{ "http_request_method", "http.request.method" },
		{ "http_response_status_code", "http.response.status_code" },
		{ "http_route", "http.route" },
		{ "service_name", "service.name" },
		{ "server_address", "server.address" },
		{ "server_port", "server.port" },
		{ "db_system_name", "db.system.name" },
		{ "db_system", "db.system.name" },
		{ "db_operation_name", "db.operation.name" },
		{ "db_collection_name", "db.collection.name" },
		{ "db_response_status_code", "db.response.status_code" },
		{ "network_io_direction", "network.io.direction" },
		{ "error_type", "error.type" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(label, map[i][0]) == 0)
			return map[i][1];
	return label;
}

static bool int_attr(const char *key)
{
	return strcmp(key, "http.response.status_code") == 0 || strcmp(key, "server.port") == 0;
}

const char *otlp__metric_name(const char *prom, enum metric_type t, char *buf, size_t n,
			      const char **unit)
{
	static const char *const map[][2] = {
		{ "http_server_request_duration_seconds", "http.server.request.duration" },
		{ "http_client_request_duration_seconds", "http.client.request.duration" },
		{ "db_client_operation_duration_seconds", "db.client.operation.duration" },
	};
	size_t len = strlen(prom);

	*unit = "";
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(prom, map[i][0]) == 0) {
			*unit = "s";
			return map[i][1];
		}
	/* Prometheus appends _total to counters; OTLP names do not carry it */
	if (t == METRIC_COUNTER && len > 6 && strcmp(prom + len - 6, "_total") == 0)
		len -= 6;
	if (len >= 8 && strncmp(prom + len - 8, "_seconds", 8) == 0)
		*unit = "s";
	else if (len >= 6 && strncmp(prom + len - 6, "_bytes", 6) == 0)
		*unit = "By";
	snprintf(buf, n, "%.*s", (int)len, prom);
	return buf;
}

struct mctx {
	struct arena *a;
	const struct metrics_family_desc *d;
	uint64_t start, now;
	void **points;			/* NumberDataPoint* or HistogramDataPoint* */
	size_t n, cap;
};

static Otlp__KeyValue **point_attrs(struct mctx *x, const struct metrics_series_view *v, size_t *n)
{
	struct attrs l = { 0 };

	if (v->overflow) {
		attr_bool(x->a, &l, "otel.metric.overflow", true);
	} else {
		for (size_t i = 0; i < v->nlabels && i < x->d->nlabels; i++) {
			const char *key = otlp__attr_key(x->d->label_names[i]);
			const char *val = v->label_values[i] ? v->label_values[i] : "";
			char *end;
			long iv;

			/* an empty label is an absent attribute (error.type of a
			 * success, the status of a request never answered) */
			if (!*val)
				continue;
			iv = strtol(val, &end, 10);

			if (int_attr(key) && *val && !*end)
				attr_int(x->a, &l, key, iv);
			else
				attr_str(x->a, &l, key, val);
		}
	}
	*n = l.n;
	return l.kv;
}

static void on_series(void *arg, const struct metrics_series_view *v)
{
	struct mctx *x = arg;
	void *p;

	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		void **np = arena_alloc(x->a, cap * sizeof(*np));

		if (!np)
			return;
		if (x->n)
			memcpy(np, x->points, x->n * sizeof(*np));
		x->points = np;
		x->cap = cap;
	}
	if (x->d->type == METRIC_HISTOGRAM) {
		Otlp__HistogramDataPoint *h = arena_alloc(x->a, sizeof(*h));
		uint64_t *bc = arena_alloc(x->a, (x->d->nbounds + 1) * sizeof(*bc));

		if (!h || !bc)
			return;
		otlp__histogram_data_point__init(h);
		h->attributes = point_attrs(x, v, &h->n_attributes);
		h->start_time_unix_nano = x->start;
		h->time_unix_nano = x->now;
		h->count = v->count;
		h->sum = v->sum;
		memcpy(bc, v->bucket_counts, (x->d->nbounds + 1) * sizeof(*bc));
		h->n_bucket_counts = x->d->nbounds + 1;
		h->bucket_counts = bc;
		h->n_explicit_bounds = x->d->nbounds;
		h->explicit_bounds = (double *)x->d->bounds;
		p = h;
	} else {
		Otlp__NumberDataPoint *d = arena_alloc(x->a, sizeof(*d));

		if (!d)
			return;
		otlp__number_data_point__init(d);
		d->attributes = point_attrs(x, v, &d->n_attributes);
		d->start_time_unix_nano = x->d->type == METRIC_COUNTER ? x->start : 0;
		d->time_unix_nano = x->now;
		d->value_case = OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
		d->as_double = v->value;
		p = d;
	}
	x->points[x->n++] = p;
}

int otlp__encode_metrics(const struct otlp_config *c, struct metrics *m, uint64_t start_unix_ns,
			 uint64_t now_unix_ns, uint8_t **out, size_t *outlen, size_t *npoints)
{
	Otlp__ExportMetricsServiceRequest req = OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	struct arena a = { 0 };
	int nf = metrics__nfamilies(m), rc = -ENOMEM;
	Otlp__ResourceMetrics *rm = arena_alloc(&a, sizeof(*rm));
	Otlp__ScopeMetrics *sm = arena_alloc(&a, sizeof(*sm));
	Otlp__Metric **mv = arena_alloc(&a, (size_t)(nf > 0 ? nf : 1) * sizeof(*mv));
	struct attrs l = { 0 };
	size_t nm = 0;

	*out = NULL;
	*outlen = 0;
	*npoints = 0;
	if (!rm || !sm || !mv)
		goto out;
	otlp__resource_metrics__init(rm);
	otlp__scope_metrics__init(sm);
	/* One resource, the agent: the observed service is the service.name
	 * attribute of each data point (one agent reports many services). */
	attr_str(&a, &l, "service.name", "sonde");
	resource_common(&a, &l, c);
	rm->resource = resource_new(&a, &l);
	sm->scope = scope_new(&a, c);
	for (int f = 0; f < nf; f++) {
		struct metrics_family_desc d;
		struct mctx x = { .a = &a, .d = &d, .start = start_unix_ns, .now = now_unix_ns };
		Otlp__Metric *mt;
		const char *unit, *name;
		char nbuf[METRICS_MAX_NAME + 1];

		if (metrics__family_desc(m, f, &d))
			continue;
		metrics__foreach(m, f, on_series, &x);
		if (a.failed)
			goto out;
		if (!x.n)
			continue;
		mt = arena_alloc(&a, sizeof(*mt));
		if (!mt)
			goto out;
		otlp__metric__init(mt);
		name = otlp__metric_name(d.name, d.type, nbuf, sizeof(nbuf), &unit);
		mt->name = astr(&a, name);
		mt->description = (char *)d.help;
		mt->unit = (char *)unit;
		if (d.type == METRIC_HISTOGRAM) {
			Otlp__Histogram *h = arena_alloc(&a, sizeof(*h));

			if (!h)
				goto out;
			otlp__histogram__init(h);
			h->aggregation_temporality = OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
			h->n_data_points = x.n;
			h->data_points = (Otlp__HistogramDataPoint **)x.points;
			mt->data_case = OTLP__METRIC__DATA_HISTOGRAM;
			mt->histogram = h;
		} else if (d.type == METRIC_COUNTER) {
			Otlp__Sum *s = arena_alloc(&a, sizeof(*s));

			if (!s)
				goto out;
			otlp__sum__init(s);
			s->aggregation_temporality = OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
			s->is_monotonic = 1;
			s->n_data_points = x.n;
			s->data_points = (Otlp__NumberDataPoint **)x.points;
			mt->data_case = OTLP__METRIC__DATA_SUM;
			mt->sum = s;
		} else {
			Otlp__Gauge *g = arena_alloc(&a, sizeof(*g));

			if (!g)
				goto out;
			otlp__gauge__init(g);
			g->n_data_points = x.n;
			g->data_points = (Otlp__NumberDataPoint **)x.points;
			mt->data_case = OTLP__METRIC__DATA_GAUGE;
			mt->gauge = g;
		}
		mv[nm++] = mt;
		*npoints += x.n;
	}
	if (a.failed)
		goto out;
	sm->n_metrics = nm;
	sm->metrics = mv;
	rm->n_scope_metrics = 1;
	rm->scope_metrics = &sm;
	req.n_resource_metrics = 1;
	req.resource_metrics = &rm;
	rc = pack(&req.base, out, outlen);
out:
	arena_free(&a);
	return rc;
}

/* ---- responses ---- */

int otlp__decode_response(enum otlp_signal sig, const uint8_t *body, size_t n, int64_t *rejected,
			  char *msg, size_t msglen)
{
	*rejected = 0;
	if (msglen)
		msg[0] = 0;
	if (!n)
		return 0;
	if (sig == OTLP_TRACES) {
		Otlp__ExportTraceServiceResponse *r =
			otlp__export_trace_service_response__unpack(NULL, n, body);

		if (!r)
			return -EINVAL;
		if (r->partial_success) {
			*rejected = r->partial_success->rejected_spans;
			snprintf(msg, msglen, "%s", r->partial_success->error_message);
		}
		otlp__export_trace_service_response__free_unpacked(r, NULL);
	} else {
		Otlp__ExportMetricsServiceResponse *r =
			otlp__export_metrics_service_response__unpack(NULL, n, body);

		if (!r)
			return -EINVAL;
		if (r->partial_success) {
			*rejected = r->partial_success->rejected_data_points;
			snprintf(msg, msglen, "%s", r->partial_success->error_message);
		}
		otlp__export_metrics_service_response__free_unpacked(r, NULL);
	}
	return 0;
}
