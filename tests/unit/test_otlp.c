/* Unit tests for the OTLP exporter's pure parts: environment parsing, the
 * retry policy, span and metric encoding (decoded back with the generated
 * protobuf-c code and checked field by field), gzip and responses. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "check.h"
#include "export/otlp.h"
#include "otlp.pb-c.h"

/* ---- a fake environment ---- */
static const char *const *fake_env;

static const char *fenv(const char *name)
{
	for (const char *const *p = fake_env; p && *p; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static int load(struct otlp_config *c, const char *const *env, const char *flag, char *err)
{
	fake_env = env;
	return otlp__config_load(c, fenv, flag, err, 256);
}

static void test_config(void)
{
	struct otlp_config c;
	char err[256];

	/* nothing set: no export, standard defaults */
	CHECK_EQ_INT(load(&c, (const char *const[]){ NULL }, NULL, err), 0);
	CHECK_EQ_STR(c.sig[OTLP_TRACES].url, "");
	CHECK_EQ_STR(c.sig[OTLP_METRICS].url, "");
	CHECK_EQ_INT(c.batch_size, 512);
	CHECK_EQ_INT(c.schedule_delay_ms, 5000);
	CHECK_EQ_INT(c.queue_size, 2048);
	CHECK_EQ_INT(c.metric_interval_ms, 60000);
	CHECK_EQ_INT(c.sig[OTLP_TRACES].timeout_ms, 10000);
	CHECK_EQ_INT(c.sig[OTLP_TRACES].gzip, 0);
	CHECK_EQ_INT(c.sampler.kind, SAMPLER_PARENT_ON);
	otlp__config_free(&c);

	/* base endpoint gets the signal paths; headers are %-decoded and trimmed */
	CHECK_EQ_INT(load(&c, (const char *const[]){
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr%3Dt%20x , x-tenant=acme,",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip",
		"OTEL_EXPORTER_OTLP_TIMEOUT", "2500",
		"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096",
		"OTEL_BSP_SCHEDULE_DELAY", "200",
		"OTEL_BSP_MAX_QUEUE_SIZE", "100",
		"OTEL_METRIC_EXPORT_INTERVAL", "1000",
		"OTEL_TRACES_SAMPLER", "traceidratio",
		"OTEL_TRACES_SAMPLER_ARG", "0.25",
		"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,k8s.node.name=node%2C1",
		NULL }, NULL, err), 0);
	CHECK_EQ_STR(c.sig[OTLP_TRACES].url, "http://collector:4318/v1/traces");
	CHECK_EQ_STR(c.sig[OTLP_METRICS].url, "http://collector:4318/v1/metrics");
	CHECK_EQ_INT(c.sig[OTLP_TRACES].nheaders, 2);
	CHECK_EQ_STR(c.sig[OTLP_TRACES].headers[0].key, "api-key");
	CHECK_EQ_STR(c.sig[OTLP_TRACES].headers[0].value, "s3cr=t x");
	CHECK_EQ_STR(c.sig[OTLP_TRACES].headers[1].key, "x-tenant");
	CHECK_EQ_STR(c.sig[OTLP_TRACES].headers[1].value, "acme");
	CHECK_EQ_INT(c.sig[OTLP_METRICS].nheaders, 2);
	CHECK_EQ_INT(c.sig[OTLP_TRACES].gzip, 1);
	CHECK_EQ_INT(c.sig[OTLP_METRICS].gzip, 1);
	CHECK_EQ_INT(c.sig[OTLP_TRACES].timeout_ms, 2500);
	CHECK_EQ_INT(c.sig[OTLP_METRICS].timeout_ms, 700);
	CHECK_EQ_INT(c.queue_size, 100);
	CHECK_EQ_INT(c.batch_size, 100);	/* capped at the queue size */
	CHECK_EQ_INT(c.schedule_delay_ms, 200);
	CHECK_EQ_INT(c.metric_interval_ms, 1000);
	CHECK_EQ_INT(c.sampler.kind, SAMPLER_RATIO);
	CHECK(c.sampler.ratio == 0.25);
	CHECK_EQ_INT(c.nresource, 2);
	CHECK_EQ_STR(c.resource[1].key, "k8s.node.name");
	CHECK_EQ_STR(c.resource[1].value, "node,1");
	otlp__config_free(&c);

	/* trailing slash; signal-specific endpoint used as given; specific
	 * headers and compression win; the flag replaces the base variable */
	CHECK_EQ_INT(load(&c, (const char *const[]){
		"OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example/custom/path",
		"OTEL_EXPORTER_OTLP_HEADERS", "a=1",
		"OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=2",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none",
		NULL }, "http://flag:4318/", err), 0);
	CHECK_EQ_STR(c.sig[OTLP_TRACES].url, "https://t.example/custom/path");
	CHECK_EQ_STR(c.sig[OTLP_METRICS].url, "http://flag:4318/v1/metrics");
	CHECK_EQ_STR(c.sig[OTLP_TRACES].headers[0].key, "a");
	CHECK_EQ_STR(c.sig[OTLP_METRICS].headers[0].key, "b");
	CHECK_EQ_INT(c.sig[OTLP_METRICS].nheaders, 1);
	CHECK_EQ_INT(c.sig[OTLP_TRACES].gzip, 0);
	CHECK_EQ_INT(c.sig[OTLP_METRICS].gzip, 1);
	otlp__config_free(&c);

	/* errors */
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_HEADERS", "novalue", NULL },
			  NULL, err), -EINVAL);
	CHECK(strstr(err, "OTEL_EXPORTER_OTLP_HEADERS") != NULL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_HEADERS", "k=a%0d%0aEvil: 1", NULL },
			  NULL, err), -EINVAL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_HEADERS", "k=%zz", NULL },
			  NULL, err), -EINVAL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_HEADERS", "=v", NULL },
			  NULL, err), -EINVAL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", NULL },
			  NULL, err), -EINVAL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", NULL },
			  NULL, err), -EINVAL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_BSP_SCHEDULE_DELAY", "5s", NULL }, NULL, err),
		     -EINVAL);
	CHECK(strstr(err, "OTEL_BSP_SCHEDULE_DELAY") != NULL);
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_TRACES_SAMPLER", "maybe", NULL }, NULL, err),
		     -EINVAL);
	otlp__config_free(&c);
	{
		struct otlp_kv kv[2];
		size_t n = 0;

		CHECK_EQ_INT(otlp__parse_kv_list("a=1,b=2,c=3", kv, 2, &n), -EINVAL);	/* too many */
		CHECK_EQ_INT(n, 2);
		for (size_t i = 0; i < n; i++)
			free(kv[i].key), free(kv[i].value);
	}
}

static void test_retry(void)
{
	CHECK_EQ_INT(otlp__classify(true, 200), OTLP_SUCCESS);
	CHECK_EQ_INT(otlp__classify(true, 204), OTLP_SUCCESS);
	CHECK_EQ_INT(otlp__classify(false, 0), OTLP_RETRY);
	CHECK_EQ_INT(otlp__classify(true, 429), OTLP_RETRY);
	CHECK_EQ_INT(otlp__classify(true, 502), OTLP_RETRY);
	CHECK_EQ_INT(otlp__classify(true, 503), OTLP_RETRY);
	CHECK_EQ_INT(otlp__classify(true, 504), OTLP_RETRY);
	CHECK_EQ_INT(otlp__classify(true, 400), OTLP_FAIL);
	CHECK_EQ_INT(otlp__classify(true, 404), OTLP_FAIL);
	CHECK_EQ_INT(otlp__classify(true, 500), OTLP_FAIL);
	CHECK_EQ_INT(otlp__classify(true, 301), OTLP_FAIL);
	/* 500 ms doubling to 16 s, jitter in [d/2, d) */
	CHECK_EQ_INT(otlp__backoff_ms(1, -1, 0.0), 250);
	CHECK_EQ_INT(otlp__backoff_ms(1, -1, 0.5), 375);
	CHECK_EQ_INT(otlp__backoff_ms(2, -1, 0.0), 500);
	CHECK_EQ_INT(otlp__backoff_ms(3, -1, 0.0), 1000);
	CHECK_EQ_INT(otlp__backoff_ms(6, -1, 0.0), 8000);
	CHECK_EQ_INT(otlp__backoff_ms(7, -1, 0.0), 8000);
	CHECK_EQ_INT(otlp__backoff_ms(100, -1, 0.999), 15992);
	CHECK_EQ_INT(otlp__backoff_ms(1, -1, 7.0), 250);	/* bad rnd: no jitter */
	CHECK_EQ_INT(otlp__backoff_ms(1, 3, 0.9), 3000);	/* Retry-After wins */
	CHECK_EQ_INT(otlp__backoff_ms(5, 0, 0.9), 0);
	CHECK_EQ_INT(otlp__parse_retry_after(" 7\r\n", 4), 7);
	CHECK_EQ_INT(otlp__parse_retry_after("120", 3), 120);
	CHECK_EQ_INT(otlp__parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", 29), -1);
	CHECK_EQ_INT(otlp__parse_retry_after(" \r\n", 3), -1);
	CHECK_EQ_INT(otlp__parse_retry_after("", 0), -1);
	CHECK_EQ_INT(otlp__parse_retry_after("99999999999", 11), 86400);
}

/* ---- spans ---- */

static void tuple4(struct sonde_tuple *t, const char *local, uint16_t lport, const char *peer,
		   uint16_t pport)
{
	memset(t, 0, sizeof(*t));
	t->family = AF_INET;
	inet_pton(AF_INET, local, t->saddr);
	inet_pton(AF_INET, peer, t->daddr);
	t->sport = lport;
	t->dport = pport;
}

static const Otlp__AnyValue *attr(Otlp__KeyValue **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0)
			return kv[i]->value;
	return NULL;
}

static const char *sattr(Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Otlp__AnyValue *v = attr(kv, n, key);

	return v && v->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE ? v->string_value : NULL;
}

static long long iattr(Otlp__KeyValue **kv, size_t n, const char *key)
{
	const Otlp__AnyValue *v = attr(kv, n, key);

	return v && v->value_case == OTLP__ANY_VALUE__VALUE_INT_VALUE ? v->int_value : -999;
}

static void fake_info(void *arg, uint32_t pid, char *exe, size_t exelen, char *cmd, size_t cmdlen)
{
	(void)arg;
	snprintf(exe, exelen, pid == 100 ? "nginx" : "");
	snprintf(cmd, cmdlen, pid == 100 ? "nginx -g daemon off;" : "");
}

static void test_spans(void)
{
	struct otlp_config c;
	char err[256];
	struct otlp_span_item it[3];
	uint8_t *buf;
	size_t len;
	Otlp__ExportTraceServiceRequest *r;

	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_RESOURCE_ATTRIBUTES", "env=test,host.name=dup",
						     NULL }, NULL, err), 0);
	snprintf(c.host_name, sizeof(c.host_name), "box1");
	snprintf(c.sdk_version, sizeof(c.sdk_version), "9.9.9");
	memset(it, 0, sizeof(it));
	/* [0] server span of pid 100, remote parent, tracestate */
	it[0].s.kind = SPAN_SERVER;
	it[0].s.start_ns = 1000;
	it[0].s.end_ns = 5000;
	it[0].s.tgid = 100;
	memcpy(it[0].s.comm, "nginx", 6);
	snprintf(it[0].service, sizeof(it[0].service), "nginx");
	tuple4(&it[0].s.tuple, "127.0.0.1", 8080, "127.0.0.2", 40000);
	snprintf(it[0].s.method, sizeof(it[0].s.method), "GET");
	snprintf(it[0].s.target, sizeof(it[0].s.target), "/users/42?x=1");
	snprintf(it[0].s.route, sizeof(it[0].s.route), "/users/{id}");
	it[0].s.status = 503;
	it[0].s.version_minor = 1;
	for (int i = 0; i < 16; i++)
		it[0].s.ctx.trace_id[i] = (uint8_t)(i + 1);
	memset(it[0].s.ctx.span_id, 0x22, 8);
	memset(it[0].s.ctx.parent_span_id, 0x33, 8);
	it[0].s.ctx.trace_flags = 1;
	it[0].s.ctx.remote_parent = 1;
	snprintf(it[0].s.ctx.tracestate, sizeof(it[0].s.ctx.tracestate), "vendor=abc");
	snprintf(it[0].s.request_id, sizeof(it[0].s.request_id), "req-7");
	snprintf(it[0].s.error_type, sizeof(it[0].s.error_type), "503");
	/* [1] a DB client span of pid 200 */
	it[1].s.kind = SPAN_CLIENT;
	it[1].s.proto = SPAN_DB;
	it[1].s.start_ns = 10;
	it[1].s.end_ns = 20;
	it[1].s.tgid = 200;
	memcpy(it[1].s.comm, "python3", 8);
	snprintf(it[1].service, sizeof(it[1].service), "app");
	tuple4(&it[1].s.tuple, "127.0.0.1", 50000, "127.0.0.1", 5432);
	it[1].s.db_system = "postgresql";
	snprintf(it[1].s.db_operation, sizeof(it[1].s.db_operation), "SELECT");
	snprintf(it[1].s.db_collection, sizeof(it[1].s.db_collection), "users");
	snprintf(it[1].s.db_query, sizeof(it[1].s.db_query), "SELECT * FROM users WHERE id = ?");
	memset(it[1].s.ctx.trace_id, 0x44, 16);
	memset(it[1].s.ctx.span_id, 0x55, 8);
	/* [2] a client HTTP span of pid 100 over TLS with an unknown method */
	it[2] = it[0];
	it[2].s.kind = SPAN_CLIENT;
	it[2].s.tls = 1;
	it[2].s.status = 200;
	it[2].s.error_type[0] = 0;
	it[2].s.request_id[0] = 0;
	it[2].s.ctx.tracestate[0] = 0;
	memset(it[2].s.ctx.parent_span_id, 0, 8);
	it[2].s.ctx.remote_parent = 0;
	snprintf(it[2].s.method, sizeof(it[2].s.method), "PURGE");
	snprintf(it[2].s.target, sizeof(it[2].s.target), "/cache/a");
	snprintf(it[2].s.route, sizeof(it[2].s.route), "/cache/a");
	tuple4(&it[2].s.tuple, "127.0.0.1", 40001, "10.0.0.9", 443);

	CHECK_EQ_INT(otlp__encode_spans(&c, it, 3, fake_info, NULL, &buf, &len), 0);
	r = otlp__export_trace_service_request__unpack(NULL, len, buf);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_EQ_INT(r->n_resource_spans, 2);
	{
		Otlp__ResourceSpans *rs = r->resource_spans[0];	/* pid 100 sorts first */
		Otlp__Resource *res = rs->resource;
		Otlp__ScopeSpans *ss = rs->scope_spans[0];
		Otlp__Span *sp = ss->spans[0], *cl = ss->spans[1];

		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "service.name"), "nginx");
		CHECK_EQ_INT(iattr(res->attributes, res->n_attributes, "process.pid"), 100);
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "process.executable.name"), "nginx");
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "process.command_line"),
			     "nginx -g daemon off;");
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "host.name"), "box1");
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "telemetry.sdk.name"), "sonde");
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "telemetry.sdk.version"), "9.9.9");
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "env"), "test");
		CHECK_EQ_INT(res->n_attributes, 8);	/* host.name=dup skipped */
		CHECK_EQ_STR(ss->scope->name, "sonde");
		CHECK_EQ_INT(rs->n_scope_spans, 1);
		CHECK_EQ_INT(ss->n_spans, 2);
		CHECK_EQ_STR(sp->name, "GET /users/{id}");
		CHECK_EQ_INT(sp->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
		CHECK_EQ_INT(sp->trace_id.len, 16);
		CHECK_EQ_INT(sp->trace_id.data[0], 1);
		CHECK_EQ_INT(sp->trace_id.data[15], 16);
		CHECK_EQ_INT(sp->span_id.len, 8);
		CHECK_EQ_INT(sp->span_id.data[7], 0x22);
		CHECK_EQ_INT(sp->parent_span_id.len, 8);
		CHECK_EQ_INT(sp->parent_span_id.data[0], 0x33);
		CHECK_EQ_STR(sp->trace_state, "vendor=abc");
		CHECK_EQ_INT(sp->flags, 0x301);
		CHECK_EQ_INT(sp->start_time_unix_nano, span__wall_ns(1000));
		CHECK_EQ_INT(sp->end_time_unix_nano, span__wall_ns(5000));
		CHECK_EQ_INT(sp->status->code, OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "error.type"), "503");
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "http.request.method"), "GET");
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "url.path"), "/users/42");
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "url.query"), "x=1");
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "url.scheme"), "http");
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "http.route"), "/users/{id}");
		CHECK_EQ_INT(iattr(sp->attributes, sp->n_attributes, "http.response.status_code"), 503);
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "server.address"), "127.0.0.1");
		CHECK_EQ_INT(iattr(sp->attributes, sp->n_attributes, "server.port"), 8080);
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "client.address"), "127.0.0.2");
		CHECK_EQ_INT(iattr(sp->attributes, sp->n_attributes, "client.port"), 40000);
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "network.peer.address"), "127.0.0.2");
		CHECK_EQ_INT(iattr(sp->attributes, sp->n_attributes, "network.peer.port"), 40000);
		CHECK_EQ_STR(sattr(sp->attributes, sp->n_attributes, "network.protocol.version"), "1.1");
		{
			const Otlp__AnyValue *v = attr(sp->attributes, sp->n_attributes,
						       "http.request.header.x-request-id");

			CHECK(v && v->value_case == OTLP__ANY_VALUE__VALUE_ARRAY_VALUE &&
			      v->array_value->n_values == 1 &&
			      strcmp(v->array_value->values[0]->string_value, "req-7") == 0);
		}
		CHECK(attr(sp->attributes, sp->n_attributes, "http.request.header.x-tracking-id") == NULL);
		CHECK(attr(sp->attributes, sp->n_attributes, "url.full") == NULL);
		/* the client span */
		CHECK_EQ_STR(cl->name, "HTTP /cache/a");
		CHECK_EQ_INT(cl->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
		CHECK_EQ_INT(cl->parent_span_id.len, 0);
		CHECK_EQ_INT(cl->flags, 0x101);
		CHECK_EQ_INT(cl->status->code, OTLP__STATUS__STATUS_CODE__STATUS_CODE_UNSET);
		CHECK_EQ_STR(sattr(cl->attributes, cl->n_attributes, "http.request.method"), "_OTHER");
		CHECK_EQ_STR(sattr(cl->attributes, cl->n_attributes, "http.request.method_original"), "PURGE");
		CHECK_EQ_STR(sattr(cl->attributes, cl->n_attributes, "url.full"), "https://10.0.0.9:443/cache/a");
		CHECK_EQ_STR(sattr(cl->attributes, cl->n_attributes, "url.scheme"), "https");
		CHECK_EQ_STR(sattr(cl->attributes, cl->n_attributes, "server.address"), "10.0.0.9");
		CHECK_EQ_INT(iattr(cl->attributes, cl->n_attributes, "server.port"), 443);
		CHECK(attr(cl->attributes, cl->n_attributes, "client.address") == NULL);
	}
	{
		Otlp__ResourceSpans *rs = r->resource_spans[1];
		Otlp__Resource *res = rs->resource;
		Otlp__Span *db = rs->scope_spans[0]->spans[0];

		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "service.name"), "app");
		CHECK_EQ_INT(iattr(res->attributes, res->n_attributes, "process.pid"), 200);
		/* no exe known: comm */
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "process.executable.name"), "python3");
		CHECK(attr(res->attributes, res->n_attributes, "process.command_line") == NULL);
		CHECK_EQ_STR(db->name, "SELECT users");
		CHECK_EQ_INT(db->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
		CHECK_EQ_INT(db->flags, 0x100);
		CHECK_EQ_STR(sattr(db->attributes, db->n_attributes, "db.system.name"), "postgresql");
		CHECK_EQ_STR(sattr(db->attributes, db->n_attributes, "db.operation.name"), "SELECT");
		CHECK_EQ_STR(sattr(db->attributes, db->n_attributes, "db.collection.name"), "users");
		CHECK_EQ_STR(sattr(db->attributes, db->n_attributes, "db.query.text"),
			     "SELECT * FROM users WHERE id = ?");
		CHECK(attr(db->attributes, db->n_attributes, "db.response.status_code") == NULL);
		CHECK_EQ_INT(iattr(db->attributes, db->n_attributes, "server.port"), 5432);
		CHECK(attr(db->attributes, db->n_attributes, "http.request.method") == NULL);
	}
	otlp__export_trace_service_request__free_unpacked(r, NULL);
	free(buf);
	/* an empty batch is a valid empty request */
	CHECK_EQ_INT(otlp__encode_spans(&c, it, 0, NULL, NULL, &buf, &len), 0);
	CHECK_EQ_INT(len, 0);
	free(buf);
	otlp__config_free(&c);
}

/* ---- metrics ---- */

static void test_metrics(void)
{
	static const double bounds[] = { 0.1, 1 };
	static const char *const hl[] = { "http_request_method", "http_response_status_code", "http_route",
					  "service_name", "server_port" };
	static const char *const cl[] = { "ring" };
	const char *v1[] = { "GET", "200", "/a", "svc", "8080" };
	const char *ring[] = { "events" };
	struct otlp_config c;
	struct metrics *m = metrics__new();
	char err[256];
	uint8_t *buf;
	size_t len, np;
	int fh, fc, fg;
	Otlp__ExportMetricsServiceRequest *r;

	CHECK_EQ_INT(load(&c, (const char *const[]){ NULL }, NULL, err), 0);
	fh = metrics__family(m, METRIC_HISTOGRAM, "http_server_request_duration_seconds", "d", hl, 5,
			     bounds, 2, 10);
	fc = metrics__family(m, METRIC_COUNTER, "sonde_ringbuf_events_total", "e", cl, 1, NULL, 0, 0);
	fg = metrics__family(m, METRIC_GAUGE, "sonde_connections_tracked", "g", NULL, 0, NULL, 0, 0);
	metrics__family(m, METRIC_GAUGE, "sonde_unused", "never set", NULL, 0, NULL, 0, 0);
	metrics__observe(m, fh, v1, 0.05);
	metrics__observe(m, fh, v1, 0.5);
	metrics__observe(m, fh, v1, 0.7);
	metrics__observe(m, fh, v1, 3);
	metrics__add(m, fc, ring, 42);
	metrics__set(m, fg, NULL, 7);
	CHECK_EQ_INT(otlp__encode_metrics(&c, m, 111, 222, &buf, &len, &np), 0);
	CHECK_EQ_INT(np, 3);
	r = otlp__export_metrics_service_request__unpack(NULL, len, buf);
	CHECK(r != NULL);
	if (r) {
		Otlp__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
		Otlp__Metric *h = sm->metrics[0], *cn = sm->metrics[1], *g = sm->metrics[2];
		Otlp__Resource *res = r->resource_metrics[0]->resource;

		CHECK_EQ_INT(r->n_resource_metrics, 1);
		CHECK_EQ_STR(sattr(res->attributes, res->n_attributes, "service.name"), "sonde");
		CHECK_EQ_STR(sm->scope->name, "sonde");
		CHECK_EQ_INT(sm->n_metrics, 3);	/* the family without series is left out */
		CHECK_EQ_STR(h->name, "http.server.request.duration");
		CHECK_EQ_STR(h->unit, "s");
		CHECK_EQ_INT(h->data_case, OTLP__METRIC__DATA_HISTOGRAM);
		CHECK_EQ_INT(h->histogram->aggregation_temporality,
			     OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
		{
			Otlp__HistogramDataPoint *p = h->histogram->data_points[0];

			CHECK_EQ_INT(h->histogram->n_data_points, 1);
			CHECK_EQ_INT(p->count, 4);
			CHECK(p->sum > 4.249 && p->sum < 4.251);
			CHECK_EQ_INT(p->n_explicit_bounds, 2);
			CHECK(p->explicit_bounds[0] == 0.1 && p->explicit_bounds[1] == 1);
			CHECK_EQ_INT(p->n_bucket_counts, 3);
			CHECK_EQ_INT(p->bucket_counts[0], 1);
			CHECK_EQ_INT(p->bucket_counts[1], 2);
			CHECK_EQ_INT(p->bucket_counts[2], 1);
			CHECK_EQ_INT(p->start_time_unix_nano, 111);
			CHECK_EQ_INT(p->time_unix_nano, 222);
			CHECK_EQ_STR(sattr(p->attributes, p->n_attributes, "http.request.method"), "GET");
			CHECK_EQ_INT(iattr(p->attributes, p->n_attributes, "http.response.status_code"), 200);
			CHECK_EQ_STR(sattr(p->attributes, p->n_attributes, "http.route"), "/a");
			CHECK_EQ_STR(sattr(p->attributes, p->n_attributes, "service.name"), "svc");
			CHECK_EQ_INT(iattr(p->attributes, p->n_attributes, "server.port"), 8080);
		}
		CHECK_EQ_STR(cn->name, "sonde_ringbuf_events");
		CHECK_EQ_INT(cn->data_case, OTLP__METRIC__DATA_SUM);
		CHECK_EQ_INT(cn->sum->is_monotonic, 1);
		CHECK_EQ_INT(cn->sum->aggregation_temporality,
			     OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
		CHECK(cn->sum->data_points[0]->as_double == 42);
		CHECK_EQ_STR(sattr(cn->sum->data_points[0]->attributes, cn->sum->data_points[0]->n_attributes,
				   "ring"), "events");
		CHECK_EQ_STR(g->name, "sonde_connections_tracked");
		CHECK_EQ_INT(g->data_case, OTLP__METRIC__DATA_GAUGE);
		CHECK(g->gauge->data_points[0]->as_double == 7);
		otlp__export_metrics_service_request__free_unpacked(r, NULL);
	}
	free(buf);
	{
		const char *unit, *n;
		char b[64];

		n = otlp__metric_name("db_client_operation_duration_seconds", METRIC_HISTOGRAM, b, sizeof(b), &unit);
		CHECK_EQ_STR(n, "db.client.operation.duration");
		CHECK_EQ_STR(unit, "s");
		n = otlp__metric_name("process_network_io_bytes_total", METRIC_COUNTER, b, sizeof(b), &unit);
		CHECK_EQ_STR(n, "process_network_io_bytes");
		CHECK_EQ_STR(unit, "By");
		CHECK_EQ_STR(otlp__attr_key("network_io_direction"), "network.io.direction");
		CHECK_EQ_STR(otlp__attr_key("ring"), "ring");
	}
	metrics__free(m);
	/* a capped family: the overflow series carries otel.metric.overflow=true */
	m = metrics__new();
	{
		static const char *const rl[] = { "route" };
		const char *a1[] = { "/a" }, *a2[] = { "/b" }, *a3[] = { "/c" };
		int f = metrics__family(m, METRIC_COUNTER, "hits_total", "h", rl, 1, NULL, 0, 1);

		metrics__add(m, f, a1, 1);
		metrics__add(m, f, a2, 2);
		metrics__add(m, f, a3, 3);
		CHECK_EQ_INT(otlp__encode_metrics(&c, m, 1, 2, &buf, &len, &np), 0);
		CHECK_EQ_INT(np, 2);
		r = otlp__export_metrics_service_request__unpack(NULL, len, buf);
		CHECK(r != NULL);
		if (r) {
			Otlp__Metric *h = r->resource_metrics[0]->scope_metrics[0]->metrics[0];
			Otlp__NumberDataPoint *o = h->sum->data_points[1];
			const Otlp__AnyValue *v = attr(o->attributes, o->n_attributes, "otel.metric.overflow");

			CHECK_EQ_STR(h->name, "hits");
			CHECK_EQ_INT(h->sum->n_data_points, 2);
			CHECK(h->sum->data_points[0]->as_double == 1);
			CHECK(o->as_double == 5);
			CHECK(v && v->value_case == OTLP__ANY_VALUE__VALUE_BOOL_VALUE && v->bool_value);
			CHECK_EQ_INT(o->n_attributes, 1);
			otlp__export_metrics_service_request__free_unpacked(r, NULL);
		}
		free(buf);
	}
	metrics__free(m);
	otlp__config_free(&c);
}

static void test_gzip_response(void)
{
	uint8_t in[5000], out[6000], *gz;
	size_t gzlen;
	z_stream z = { 0 };
	Otlp__ExportTraceServiceResponse resp = OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
	Otlp__ExportTracePartialSuccess ps = OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
	uint8_t body[128];
	size_t blen;
	int64_t rej;
	char msg[64];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 7);
	CHECK_EQ_INT(otlp__gzip(in, sizeof(in), &gz, &gzlen), 0);
	CHECK(gzlen > 10 && gzlen < sizeof(in));
	CHECK(gz[0] == 0x1f && gz[1] == 0x8b);
	inflateInit2(&z, 15 + 16);
	z.next_in = gz;
	z.avail_in = (uInt)gzlen;
	z.next_out = out;
	z.avail_out = sizeof(out);
	CHECK_EQ_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
	CHECK_EQ_INT(z.total_out, sizeof(in));
	CHECK(memcmp(in, out, sizeof(in)) == 0);
	inflateEnd(&z);
	free(gz);

	ps.rejected_spans = 3;
	ps.error_message = "bad span";
	resp.partial_success = &ps;
	blen = otlp__export_trace_service_response__pack(&resp, body);
	CHECK_EQ_INT(otlp__decode_response(OTLP_TRACES, body, blen, &rej, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(rej, 3);
	CHECK_EQ_STR(msg, "bad span");
	CHECK_EQ_INT(otlp__decode_response(OTLP_TRACES, body, 0, &rej, msg, sizeof(msg)), 0);
	CHECK_EQ_INT(rej, 0);
	CHECK_EQ_INT(otlp__decode_response(OTLP_METRICS, (const uint8_t *)"\xff\xff\xff", 3, &rej, msg,
					   sizeof(msg)), -EINVAL);
	{
		Otlp__ExportMetricsServiceResponse mr = OTLP__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
		Otlp__ExportMetricsPartialSuccess mps = OTLP__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;

		mps.rejected_data_points = 5;
		mr.partial_success = &mps;
		blen = otlp__export_metrics_service_response__pack(&mr, body);
		CHECK_EQ_INT(otlp__decode_response(OTLP_METRICS, body, blen, &rej, msg, sizeof(msg)), 0);
		CHECK_EQ_INT(rej, 5);
		CHECK_EQ_STR(msg, "");
	}
}

int main(void)
{
	test_config();
	test_retry();
	test_spans();
	test_metrics();
	test_gzip_response();
	return check_summary("test_otlp");
}
