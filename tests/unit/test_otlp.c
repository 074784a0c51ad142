/* Unit tests for the OTLP exporter's pure parts: environment parsing, the
 * retry policy, span and metric encoding (decoded back with the generated
 * protobuf-c code and checked field by field; spans, written without
 * protobuf-c, must also be what protobuf-c itself packs, byte for byte),
 * the span queue ring, gzip and responses. */
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

/* Endpoint URLs: the exact accept/reject table, and the reason given. */
static void test_check_url(void)
{
	static const char *const ok[] = {
		"http://collector:4318", "https://collector", "http://collector:4318/",
		"http://127.0.0.1:4318/v1/traces", "http://[::1]:4318", "http://[::1]",
		"https://[2001:db8::7]:443/otlp/v1/metrics", "http://[::ffff:127.0.0.1]:1",
		"https://user:pw@collector.example:443/x?y=1", "http://otel_collector.obs.svc:65535",
		"http://a:1",
	};
	static const struct { const char *url, *why; } bad[] = {
		{ "http://[::1", "'[' of an IPv6 host without its ']'" },
		{ "http://[::1/v1/traces", "'[' of an IPv6 host without its ']'" },
		{ "http://[::1]x", "unexpected 'x' after the IPv6 address" },
		{ "http://[::1]:", "port '' not in 1..65535" },
		{ "http://[zz::1]:4318", "invalid IPv6 address 'zz::1'" },
		{ "http://[127.0.0.1]:80", "invalid IPv6 address '127.0.0.1'" },
		{ "http://[]:80", "invalid IPv6 address ''" },
		{ "http://:4318", "no host" },
		{ "http://", "no host" },
		{ "https:///v1/traces", "no host" },
		{ "http://host:0", "port '0' not in 1..65535" },
		{ "http://host:65536", "port '65536' not in 1..65535" },
		{ "http://host:99999999", "port '99999999' not in 1..65535" },
		{ "http://host:12ab", "port '12ab' not in 1..65535" },
		{ "http://host:", "port '' not in 1..65535" },
		{ "http://host:-1", "port '-1' not in 1..65535" },
		{ "http://ho]st:1", "']' in the host name" },
		{ "http://ho st:1", "blank or control character at byte 9" },
		{ "http://host:1/a b", "blank or control character at byte 15" },
		{ "http://host:1/\x01", "blank or control character at byte 14" },
		{ "ftp://host:21", "must start with http:// or https://" },
		{ "collector:4318", "must start with http:// or https://" },
		{ "HTTP://host", "must start with http:// or https://" },
	};
	char why[96];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why[0] = 0;
		CHECK_EQ_INT(otlp__check_url(ok[i], why, sizeof(why)), 0);
		CHECK_EQ_STR(why, "");
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(otlp__check_url(bad[i].url, why, sizeof(why)), -EINVAL);
		CHECK_EQ_STR(why, bad[i].why);
	}
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
	/* the URL: accepted before, then every export failed forever */
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1", NULL },
			  NULL, err), -EINVAL);
	CHECK_EQ_STR(err, "OTEL_EXPORTER_OTLP_ENDPOINT: OTLP endpoint 'http://[::1/v1/traces': "
		     "'[' of an IPv6 host without its ']'");
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ NULL }, "http://collector:99999", err), -EINVAL);
	CHECK_EQ_STR(err, "--otlp-endpoint: OTLP endpoint 'http://collector:99999/v1/traces': "
		     "port '99999' not in 1..65535");
	otlp__config_free(&c);
	CHECK_EQ_INT(load(&c, (const char *const[]){ "OTEL_EXPORTER_OTLP_ENDPOINT", "http://ok:4318",
			  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://[::1]:0/v1/metrics", NULL },
			  NULL, err), -EINVAL);
	CHECK_EQ_STR(err, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: OTLP endpoint 'http://[::1]:0/v1/metrics': "
		     "port '0' not in 1..65535");
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

/* The request decodes, and protobuf-c packs the decoded message into the
 * very same bytes: the direct writer emits canonical protobuf. */
static Otlp__ExportTraceServiceRequest *decode_canonical(const uint8_t *buf, size_t len)
{
	Otlp__ExportTraceServiceRequest *r = otlp__export_trace_service_request__unpack(NULL, len, buf);
	uint8_t *again;
	size_t n;

	CHECK(r != NULL);
	if (!r)
		return NULL;
	n = otlp__export_trace_service_request__get_packed_size(r);
	again = malloc(n ? n : 1);
	CHECK_EQ_INT(otlp__export_trace_service_request__pack(r, again), len);
	CHECK_EQ_INT(n, len);
	CHECK(n == len && memcmp(again, buf, len) == 0);
	free(again);
	return r;
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
	r = decode_canonical(buf, len);
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

static void http_item(struct otlp_span_item *it, uint32_t pid, const char *svc, uint8_t id)
{
	memset(it, 0, sizeof(*it));
	it->s.kind = SPAN_CLIENT;
	it->s.tgid = pid;
	it->s.start_ns = 100;
	it->s.end_ns = 200;
	memcpy(it->s.comm, "curl", 5);
	snprintf(it->service, sizeof(it->service), "%s", svc);
	tuple4(&it->s.tuple, "127.0.0.1", 41000, "127.0.0.1", 80);
	snprintf(it->s.method, sizeof(it->s.method), "GET");
	snprintf(it->s.target, sizeof(it->s.target), "/");
	it->s.status = 200;
	it->s.version_minor = 1;
	memset(it->s.ctx.trace_id, id, 16);
	memset(it->s.ctx.span_id, id, 8);
}

/* HTTP/2: a gRPC server span (rpc.* attributes, name service/method, an
 * OTel server error status) and a plain HTTP/2 client span (version "2"). */
static void test_rpc_spans(void)
{
	struct otlp_config c;
	char err[256];
	struct otlp_span_item it[2];
	uint8_t *buf;
	size_t len;
	Otlp__ExportTraceServiceRequest *r;

	CHECK_EQ_INT(load(&c, (const char *const[]){ NULL }, NULL, err), 0);
	http_item(&it[0], 300, "grpcsvc", 7);
	it[0].s.kind = SPAN_SERVER;
	it[0].s.proto = SPAN_RPC;
	it[0].s.version_major = 2;
	tuple4(&it[0].s.tuple, "127.0.0.1", 50051, "127.0.0.3", 41000);
	snprintf(it[0].s.method, sizeof(it[0].s.method), "POST");
	snprintf(it[0].s.target, sizeof(it[0].s.target), "/demo.Echo/Unary");
	snprintf(it[0].s.route, sizeof(it[0].s.route), "/demo.Echo/Unary");
	snprintf(it[0].s.rpc_service, sizeof(it[0].s.rpc_service), "demo.Echo");
	snprintf(it[0].s.rpc_method, sizeof(it[0].s.rpc_method), "Unary");
	it[0].s.rpc_status = 13;
	snprintf(it[0].s.error_type, sizeof(it[0].s.error_type), "INTERNAL");
	http_item(&it[1], 300, "grpcsvc", 8);
	it[1].s.version_major = 2;
	it[1].s.version_minor = 0;
	CHECK_EQ_INT(otlp__encode_spans(&c, it, 2, NULL, NULL, &buf, &len), 0);
	r = decode_canonical(buf, len);
	if (!r)
		return;
	CHECK_EQ_INT(r->n_resource_spans, 1);
	if (r->n_resource_spans == 1 && r->resource_spans[0]->scope_spans[0]->n_spans == 2) {
		Otlp__Span *g = r->resource_spans[0]->scope_spans[0]->spans[0];
		Otlp__Span *h = r->resource_spans[0]->scope_spans[0]->spans[1];

		CHECK_EQ_STR(g->name, "demo.Echo/Unary");
		CHECK_EQ_INT(g->kind, OTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
		CHECK_EQ_STR(sattr(g->attributes, g->n_attributes, "rpc.system"), "grpc");
		CHECK_EQ_STR(sattr(g->attributes, g->n_attributes, "rpc.service"), "demo.Echo");
		CHECK_EQ_STR(sattr(g->attributes, g->n_attributes, "rpc.method"), "Unary");
		CHECK_EQ_INT(iattr(g->attributes, g->n_attributes, "rpc.grpc.status_code"), 13);
		CHECK_EQ_STR(sattr(g->attributes, g->n_attributes, "error.type"), "INTERNAL");
		CHECK_EQ_INT(g->status->code, OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
		CHECK_EQ_INT(iattr(g->attributes, g->n_attributes, "server.port"), 50051);
		CHECK_EQ_STR(sattr(g->attributes, g->n_attributes, "client.address"), "127.0.0.3");
		CHECK(attr(g->attributes, g->n_attributes, "http.request.method") == NULL);
		CHECK_EQ_STR(h->name, "GET");
		CHECK_EQ_STR(sattr(h->attributes, h->n_attributes, "network.protocol.version"), "2");
		CHECK(attr(h->attributes, h->n_attributes, "rpc.system") == NULL);
	} else {
		CHECK(0);
	}
	otlp__export_trace_service_request__free_unpacked(r, NULL);
	free(buf);
	otlp__config_free(&c);
}

/* Fields at their limits, IPv6 and absolute-form URLs, HTTP/1.0, a DB span
 * without operation or system, error.type on a DB span. */
static void test_span_edges(void)
{
	struct otlp_config c;
	char err[256];
	struct otlp_span_item *it = calloc(5, sizeof(*it));
	uint8_t *buf;
	size_t len;
	Otlp__ExportTraceServiceRequest *r;

	CHECK_EQ_INT(load(&c, (const char *const[]){ NULL }, NULL, err), 0);
	/* [0] everything full: each string one byte short of its buffer */
	http_item(&it[0], 7, "", 1);
	it[0].s.kind = SPAN_SERVER;
	memset(it[0].service, 's', sizeof(it[0].service) - 1);
	memset(it[0].s.comm, 'c', sizeof(it[0].s.comm));	/* comm may fill its buffer */
	memset(it[0].s.method, 'M', sizeof(it[0].s.method) - 1);
	memset(it[0].s.target, 't', sizeof(it[0].s.target) - 1);
	it[0].s.target[0] = '/';
	it[0].s.target[100] = '?';
	memset(it[0].s.route, 'r', sizeof(it[0].s.route) - 1);
	memset(it[0].s.ctx.tracestate, 'x', sizeof(it[0].s.ctx.tracestate) - 1);
	memset(it[0].s.request_id, 'q', sizeof(it[0].s.request_id) - 1);
	memset(it[0].s.tracking_id, 'k', sizeof(it[0].s.tracking_id) - 1);
	memset(it[0].s.correlation_id, 'o', sizeof(it[0].s.correlation_id) - 1);
	memset(it[0].s.error_type, 'e', sizeof(it[0].s.error_type) - 1);
	it[0].s.status = 65535;
	it[0].s.version_minor = 255;
	it[0].s.tuple.sport = 65535;
	it[0].s.tuple.dport = 65535;
	/* [1] IPv6 peer, HTTP/1.0 */
	http_item(&it[1], 8, "v6", 2);
	it[1].s.tuple.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", it[1].s.tuple.saddr);
	inet_pton(AF_INET6, "2001:db8::2", it[1].s.tuple.daddr);
	it[1].s.version_minor = 0;
	/* [2] IPv4-mapped peer, absolute-form target (a proxy request) */
	http_item(&it[2], 8, "v6", 3);
	it[2].s.tuple.family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.9.8.7", it[2].s.tuple.saddr);
	inet_pton(AF_INET6, "::ffff:10.9.8.6", it[2].s.tuple.daddr);
	snprintf(it[2].s.target, sizeof(it[2].s.target), "http://example.com/x");
	/* [3] DB span: system only, failed */
	http_item(&it[3], 9, "db", 4);
	it[3].s.proto = SPAN_DB;
	it[3].s.db_system = "redis";
	snprintf(it[3].s.error_type, sizeof(it[3].s.error_type), "ERR");
	snprintf(it[3].s.db_status, sizeof(it[3].s.db_status), "ERR");
	/* [4] DB span: nothing known */
	http_item(&it[4], 9, "db", 5);
	it[4].s.proto = SPAN_DB;
	memset(it[4].s.db_query, 'Q', sizeof(it[4].s.db_query) - 1);

	CHECK_EQ_INT(otlp__encode_spans(&c, it, 5, NULL, NULL, &buf, &len), 0);
	r = decode_canonical(buf, len);
	if (r) {
		Otlp__Span *full, *v6, *mapped, *db1, *db2;
		Otlp__Resource *res = r->resource_spans[0]->resource;
		char want[300];

		CHECK_EQ_INT(r->n_resource_spans, 3);
		full = r->resource_spans[0]->scope_spans[0]->spans[0];
		v6 = r->resource_spans[1]->scope_spans[0]->spans[0];
		mapped = r->resource_spans[1]->scope_spans[0]->spans[1];
		db1 = r->resource_spans[2]->scope_spans[0]->spans[0];
		db2 = r->resource_spans[2]->scope_spans[0]->spans[1];
		CHECK_EQ_INT(strlen(sattr(res->attributes, res->n_attributes, "service.name")), PROC_NAME_MAX - 1);
		CHECK_EQ_INT(strlen(sattr(res->attributes, res->n_attributes, "process.executable.name")),
			     SONDE_COMM_LEN);
		CHECK_EQ_STR(sattr(full->attributes, full->n_attributes, "http.request.method"), "_OTHER");
		CHECK_EQ_INT(strlen(sattr(full->attributes, full->n_attributes, "http.request.method_original")),
			     SPAN_METHOD_MAX - 1);
		CHECK_EQ_INT(strlen(full->name), 4 + 1 + SPAN_TARGET_MAX - 1);	/* "HTTP " + route */
		CHECK_EQ_INT(strlen(sattr(full->attributes, full->n_attributes, "url.path")), 100);
		CHECK_EQ_INT(strlen(sattr(full->attributes, full->n_attributes, "url.query")),
			     SPAN_TARGET_MAX - 1 - 101);
		CHECK_EQ_INT(strlen(full->trace_state), SPAN_TRACESTATE_MAX - 1);
		CHECK_EQ_INT(strlen(sattr(full->attributes, full->n_attributes, "error.type")),
			     SPAN_ERROR_TYPE_MAX - 1);
		CHECK_EQ_INT(iattr(full->attributes, full->n_attributes, "http.response.status_code"), 65535);
		CHECK_EQ_INT(iattr(full->attributes, full->n_attributes, "server.port"), 65535);
		CHECK_EQ_STR(sattr(full->attributes, full->n_attributes, "network.protocol.version"), "1.255");
		CHECK_EQ_INT(full->n_attributes, 18);
		CHECK_EQ_STR(sattr(v6->attributes, v6->n_attributes, "url.full"), "http://[2001:db8::2]:80/");
		CHECK_EQ_STR(sattr(v6->attributes, v6->n_attributes, "server.address"), "2001:db8::2");
		CHECK_EQ_STR(sattr(v6->attributes, v6->n_attributes, "network.protocol.version"), "1.0");
		CHECK_EQ_STR(v6->name, "GET");
		CHECK_EQ_STR(sattr(mapped->attributes, mapped->n_attributes, "url.full"), "http://example.com/x");
		CHECK_EQ_STR(sattr(mapped->attributes, mapped->n_attributes, "network.peer.address"), "10.9.8.6");
		snprintf(want, sizeof(want), "redis");
		CHECK_EQ_STR(db1->name, want);
		CHECK_EQ_INT(db1->status->code, OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
		CHECK_EQ_STR(sattr(db1->attributes, db1->n_attributes, "error.type"), "ERR");
		CHECK_EQ_STR(sattr(db1->attributes, db1->n_attributes, "db.response.status_code"), "ERR");
		CHECK_EQ_STR(db2->name, "db");
		CHECK_EQ_INT(strlen(sattr(db2->attributes, db2->n_attributes, "db.query.text")),
			     SPAN_DB_QUERY_MAX - 1);
		CHECK(attr(db2->attributes, db2->n_attributes, "db.system.name") == NULL);
		otlp__export_trace_service_request__free_unpacked(r, NULL);
	}
	free(buf);
	free(it);
	otlp__config_free(&c);
}

/* 600 spans of 150 resources interleaved: one ResourceSpans per (pid,
 * service) in order of first appearance, arrival order inside each; the
 * same service name in two pids is two resources. Encoded twice with one
 * encoder (buffers reused), plain and gzip'd. */
static void test_span_groups(void)
{
	enum { N = 600, NRES = 150 };
	struct otlp_config c;
	char err[256];
	struct otlp_span_item *it = calloc(N, sizeof(*it));
	uint8_t *mem = malloc((size_t)N * OTLP_REC_MAX), *plain;
	const void **recs = malloc(N * sizeof(*recs));
	struct otlp_enc *e = otlp__enc_new();
	const uint8_t *body;
	size_t len, off = 0, plen;
	Otlp__ExportTraceServiceRequest *r;

	CHECK_EQ_INT(load(&c, (const char *const[]){ NULL }, NULL, err), 0);
	for (size_t i = 0; i < N; i++) {
		char svc[16];

		snprintf(svc, sizeof(svc), "svc%zu", i % 75);
		http_item(&it[i], 1000 + (uint32_t)(i % NRES) / 75 * 7, svc, (uint8_t)i);
		it[i].s.ctx.span_id[0] = (uint8_t)(i >> 8);
	}
	for (size_t i = 0; i < N; i++) {
		uint16_t lens[OTLP_REC_NSTR];
		size_t sz = otlp__rec_size(&it[i].s, it[i].service, lens);

		CHECK_EQ_INT(sz % 8, 0);
		otlp__rec_write(mem + off, &it[i].s, &it[i].s.ctx, it[i].service, lens, sz);
		CHECK_EQ_INT(otlp__rec_len(mem + off), sz);
		recs[i] = mem + off;
		off += sz;
	}
	CHECK_EQ_INT(otlp__enc_spans(e, &c, recs, N, NULL, NULL, false, &body, &len), 0);
	plain = malloc(len);
	memcpy(plain, body, len);
	plen = len;
	r = decode_canonical(body, len);
	if (r) {
		size_t total = 0;
		bool order = true;

		CHECK_EQ_INT(r->n_resource_spans, NRES);
		for (size_t g = 0; g < r->n_resource_spans; g++) {
			Otlp__ResourceSpans *rs = r->resource_spans[g];
			Otlp__ScopeSpans *ss = rs->scope_spans[0];
			char svc[16];

			snprintf(svc, sizeof(svc), "svc%zu", g % 75);
			order &= strcmp(sattr(rs->resource->attributes, rs->resource->n_attributes,
					      "service.name"), svc) == 0;
			order &= iattr(rs->resource->attributes, rs->resource->n_attributes, "process.pid") ==
				 1000 + (long long)(g / 75 * 7);
			order &= ss->n_spans == N / NRES;
			for (size_t k = 0; k < ss->n_spans; k++) {
				size_t i = g + k * NRES;	/* the k-th arrival of group g */

				order &= ss->spans[k]->span_id.data[0] == (uint8_t)(i >> 8) &&
					 ss->spans[k]->span_id.data[1] == (uint8_t)i;
			}
			total += ss->n_spans;
		}
		CHECK(order);
		CHECK_EQ_INT(total, N);
		otlp__export_trace_service_request__free_unpacked(r, NULL);
	}
	/* again, gzip'd: the same request once inflated, and again (the
	 * deflate stream is reset, not remade) */
	for (int round = 0; round < 2; round++) {
		uint8_t *out = malloc(plen);
		z_stream z = { 0 };

		CHECK_EQ_INT(otlp__enc_spans(e, &c, recs, N, NULL, NULL, true, &body, &len), 0);
		CHECK(len > 18 && len < plen / 4 && body[0] == 0x1f && body[1] == 0x8b);
		inflateInit2(&z, 15 + 16);
		z.next_in = (Bytef *)body;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)plen;
		CHECK_EQ_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
		CHECK_EQ_INT(z.total_out, plen);
		CHECK(memcmp(out, plain, plen) == 0);
		inflateEnd(&z);
		free(out);
	}
	otlp__enc_free(e);
	free(plain);
	free(recs);
	free(mem);
	free(it);
	otlp__config_free(&c);
}

/* The queue ring: fill to refusal, take, release, wrap with a gap mark,
 * take across the wrap, drain to empty; records come back intact, in
 * order, and the byte count returns to 0. */
static void test_ring(void)
{
	struct otlp_ring q;
	struct otlp_span_item it;
	const void *got[64];
	uint32_t next_in = 0, next_out = 0;
	size_t head, taken, queued = 0;
	uint16_t lens[OTLP_REC_NSTR];
	bool intact = true;

	CHECK_EQ_INT(otlp__ring_init(&q, 100), 0);
	CHECK_EQ_INT(q.cap, 2 * OTLP_REC_MAX);	/* at least two of the largest records */
	http_item(&it, 0, "svc", 1);
	for (int round = 0; round < 40; round++) {
		/* push records of varying size until the ring refuses one */
		for (;;) {
			size_t sz;
			void *p;

			it.s.tgid = next_in;
			memset(it.s.target, 0, sizeof(it.s.target));
			memset(it.s.target, '/', 1 + (next_in * 37) % 250);
			sz = otlp__rec_size(&it.s, it.service, lens);
			p = otlp__ring_reserve(&q, sz);
			if (!p)
				break;
			CHECK((uint8_t *)p + sz <= q.buf + q.cap);
			otlp__rec_write(p, &it.s, &it.s.ctx, it.service, lens, sz);
			next_in++;
			queued++;
		}
		CHECK(q.used > q.cap - 2 * OTLP_REC_MAX / 4);	/* refused only when nearly full */
		/* take a few, check them, release */
		{
			size_t n = queued < 7 ? queued : 7;
			Otlp__ExportTraceServiceRequest *r;
			struct otlp_config c = { 0 };
			struct otlp_enc *e = otlp__enc_new();
			const uint8_t *body;
			size_t len;

			taken = otlp__ring_take(&q, got, n, &head);
			CHECK_EQ_INT(otlp__enc_spans(e, &c, got, n, NULL, NULL, false, &body, &len), 0);
			r = otlp__export_trace_service_request__unpack(NULL, len, body);
			CHECK(r != NULL);
			for (size_t i = 0; r && i < r->n_resource_spans; i++) {
				Otlp__ResourceSpans *rs = r->resource_spans[i];
				Otlp__Span *sp = rs->scope_spans[0]->spans[0];
				const char *url = sattr(sp->attributes, sp->n_attributes, "url.full");

				intact &= iattr(rs->resource->attributes, rs->resource->n_attributes,
						"process.pid") == next_out;
				intact &= url && strlen(url) == strlen("http://127.0.0.1:80") +
									1 + (next_out * 37) % 250;
				next_out++;
			}
			if (r)
				otlp__export_trace_service_request__free_unpacked(r, NULL);
			otlp__enc_free(e);
			otlp__ring_release(&q, head, taken);
			queued -= n;
		}
	}
	CHECK(intact);
	CHECK(next_in > 200);	/* the ring went round several times */
	taken = otlp__ring_take(&q, got, queued, &head);
	otlp__ring_release(&q, head, taken);
	CHECK_EQ_INT(q.used, 0);
	free(q.buf);
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
	test_check_url();
	test_config();
	test_retry();
	test_spans();
	test_span_edges();
	test_rpc_spans();
	test_span_groups();
	test_ring();
	test_metrics();
	test_gzip_response();
	return check_summary("test_otlp");
}
