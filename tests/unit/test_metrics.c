/* Unit tests for the metrics registry and its Prometheus text
 * (export/prom_text.c): exact bucket/sum/count values, the cardinality cap,
 * escaping, iteration, and promtool acceptance of output. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "export/prom_text.h"
#include "metrics/metrics.h"

static const double http_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
				      0.25,  0.5,  0.75,  1,    2.5,   5,
				      7.5,   10 };
#define NHTTP (sizeof(http_bounds) / sizeof(http_bounds[0]))

static const char *const http_labels[] = {
	"http_request_method", "http_response_status_code", "http_route",
	"service_name", "server_port",
};

/* Renders into a fresh NUL-terminated string the caller frees. */
static char *render(struct metrics *m)
{
	struct metrics_buf b = { 0 };

	CHECK_EQ_INT(prom_text__render(m, &b), 0);
	return b.data ? b.data : strdup("");
}

/* Is line an exact, whole line of text? */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
			return 1;
	return 0;
}

#define CHECK_LINE(text, line)                                               \
	do {                                                                 \
		int _ok = has_line((text), (line));                          \
		CHECK(_ok && #line);                                         \
		if (!_ok)                                                    \
			fprintf(stderr, "  missing line: %s\n", (line));     \
	} while (0)

static void test_histogram_values(void)
{
	struct metrics *m = metrics__new();
	const char *lv[] = { "GET" };
	const char *ln[] = { "http_request_method" };
	char *out;
	int h;

	h = metrics__family(m, METRIC_HISTOGRAM, "http_server_request_duration_seconds",
			    "Duration of HTTP server requests.", ln, 1,
			    http_bounds, NHTTP, 0);
	CHECK_EQ_INT(h, 0);
	metrics__observe(m, h, lv, 0.2);
	out = render(m);
	CHECK_LINE(out, "# HELP http_server_request_duration_seconds Duration of HTTP server requests.");
	CHECK_LINE(out, "# TYPE http_server_request_duration_seconds histogram");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.005\"} 0");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.075\"} 0");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.1\"} 0");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.25\"} 1");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"2.5\"} 1");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"10\"} 1");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"+Inf\"} 1");
	CHECK_LINE(out, "http_server_request_duration_seconds_sum{http_request_method=\"GET\"} 0.2");
	CHECK_LINE(out, "http_server_request_duration_seconds_count{http_request_method=\"GET\"} 1");
	free(out);

	/* le is inclusive: a value equal to a bound lands in that bucket. */
	metrics__observe(m, h, lv, 0.1);
	metrics__observe(m, h, lv, 10);
	metrics__observe(m, h, lv, 11);
	metrics__observe(m, h, lv, NAN);	/* ignored */
	out = render(m);
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.075\"} 0");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.1\"} 1");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"0.25\"} 2");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"7.5\"} 2");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"10\"} 3");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",le=\"+Inf\"} 4");
	CHECK_LINE(out, "http_server_request_duration_seconds_sum{http_request_method=\"GET\"} 21.3");
	CHECK_LINE(out, "http_server_request_duration_seconds_count{http_request_method=\"GET\"} 4");
	free(out);
	metrics__free(m);
}

/* Buckets aggregated elsewhere (BPF log2 slots) add up like observations. */
static void test_observe_buckets(void)
{
	struct metrics *m = metrics__new();
	static const double b[] = { 0.001, 0.002 };
	const char *ln[] = { "service_name" }, *lv[] = { "svc" };
	uint64_t c1[] = { 1, 2, 3 }, c2[] = { 0, 1, 0 };
	char *out;
	int h, g;

	h = metrics__family(m, METRIC_HISTOGRAM, "x_seconds", "X.", ln, 1, b, 2, 0);
	g = metrics__family(m, METRIC_GAUGE, "y", "Y.", ln, 1, NULL, 0, 0);
	metrics__observe_buckets(m, h, lv, c1, 0.5);
	metrics__observe_buckets(m, h, lv, c2, 0.25);
	metrics__observe_buckets(m, h, lv, c2, NAN);	/* ignored */
	metrics__observe_buckets(m, g, lv, c2, 1);	/* not a histogram: ignored */
	metrics__observe(m, h, lv, 0.0015);
	out = render(m);
	CHECK_LINE(out, "x_seconds_bucket{service_name=\"svc\",le=\"0.001\"} 1");
	CHECK_LINE(out, "x_seconds_bucket{service_name=\"svc\",le=\"0.002\"} 5");
	CHECK_LINE(out, "x_seconds_bucket{service_name=\"svc\",le=\"+Inf\"} 8");
	CHECK_LINE(out, "x_seconds_count{service_name=\"svc\"} 8");
	CHECK_LINE(out, "x_seconds_sum{service_name=\"svc\"} 0.7515");
	CHECK(strstr(out, "\ny{") == NULL);
	free(out);
	metrics__free(m);
}

/* The whole output for a small registry, to pin order and format. */
static void test_exact_render(void)
{
	struct metrics *m = metrics__new();
	const char *ln[] = { "route" };
	const double b[] = { 0.5, 1 };
	const char *a[] = { "/a" }, *z[] = { "/z" };
	char *out;
	int h, c, g;

	c = metrics__family(m, METRIC_COUNTER, "sonde_events_total",
			    "Events read.\\ Back\nslash", NULL, 0, NULL, 0, 0);
	h = metrics__family(m, METRIC_HISTOGRAM, "req_seconds", "Latency.", ln,
			    1, b, 2, 0);
	g = metrics__family(m, METRIC_GAUGE, "sonde_conns", "Open.", NULL, 0,
			    NULL, 0, 0);
	CHECK_EQ_INT(c, 0);
	CHECK_EQ_INT(h, 1);
	CHECK_EQ_INT(g, 2);
	metrics__add(m, c, NULL, 3);
	metrics__add(m, c, NULL, -1);	/* counters never go down */
	metrics__observe(m, h, z, 0.75);	/* created first: rendered first */
	metrics__observe(m, h, a, 0.5);
	metrics__observe(m, h, z, 2);
	out = render(m);
	CHECK_EQ_STR(out,
		"# HELP sonde_events_total Events read.\\\\ Back\\nslash\n"
		"# TYPE sonde_events_total counter\n"
		"sonde_events_total 3\n"
		"# HELP req_seconds Latency.\n"
		"# TYPE req_seconds histogram\n"
		"req_seconds_bucket{route=\"/z\",le=\"0.5\"} 0\n"
		"req_seconds_bucket{route=\"/z\",le=\"1\"} 1\n"
		"req_seconds_bucket{route=\"/z\",le=\"+Inf\"} 2\n"
		"req_seconds_sum{route=\"/z\"} 2.75\n"
		"req_seconds_count{route=\"/z\"} 2\n"
		"req_seconds_bucket{route=\"/a\",le=\"0.5\"} 1\n"
		"req_seconds_bucket{route=\"/a\",le=\"1\"} 1\n"
		"req_seconds_bucket{route=\"/a\",le=\"+Inf\"} 1\n"
		"req_seconds_sum{route=\"/a\"} 0.5\n"
		"req_seconds_count{route=\"/a\"} 1\n"
		"# HELP sonde_conns Open.\n"
		"# TYPE sonde_conns gauge\n"
		"# HELP sonde_metric_series_dropped_total Observations diverted to a family's otel_metric_overflow series because the family reached its series cap.\n"
		"# TYPE sonde_metric_series_dropped_total counter\n"
		"sonde_metric_series_dropped_total{metric=\"sonde_events_total\"} 0\n"
		"sonde_metric_series_dropped_total{metric=\"req_seconds\"} 0\n"
		"sonde_metric_series_dropped_total{metric=\"sonde_conns\"} 0\n");
	free(out);

	/* render appends to what the buffer already holds. */
	{
		struct metrics_buf buf = { 0 };
		size_t first;

		CHECK_EQ_INT(prom_text__render(m, &buf), 0);
		first = buf.len;
		CHECK_EQ_INT(prom_text__render(m, &buf), 0);
		CHECK_EQ_INT(buf.len, 2 * first);
		CHECK(memcmp(buf.data, buf.data + first, first) == 0);
		CHECK_EQ_INT(buf.data[buf.len], 0);
		metrics_buf__free(&buf);
		CHECK(buf.data == NULL && buf.len == 0 && buf.cap == 0);
	}
	metrics__free(m);
}

static void test_escaping_and_numbers(void)
{
	struct metrics *m = metrics__new();
	const char *ln[] = { "v" };
	const char *nasty[] = { "a\"b\\c\nd" };
	const char *bad1[] = { "x\xffy" }, *bad2[] = { "x\xfey" };
	const char *utf[] = { "caf\xc3\xa9" };
	const char *k[1];
	struct metrics_family_desc d;
	char *out;
	int g;

	g = metrics__family(m, METRIC_GAUGE, "sonde_test_value", "T.", ln, 1,
			    NULL, 0, 0);
	CHECK_EQ_INT(g, 0);
	metrics__set(m, g, nasty, 1);
	/* Invalid UTF-8 becomes U+FFFD; both map to the same series. */
	metrics__set(m, g, bad1, 2);
	metrics__add(m, g, bad2, 3);
	metrics__set(m, g, utf, -2.5);
	k[0] = "big";
	metrics__set(m, g, k, 1e20);
	k[0] = "huge";
	metrics__set(m, g, k, 1e300);
	k[0] = "third";
	metrics__set(m, g, k, 1.0 / 3);
	k[0] = "tiny";
	metrics__set(m, g, k, 1e-7);
	k[0] = "nan";
	metrics__set(m, g, k, NAN);
	k[0] = "inf";
	metrics__set(m, g, k, -INFINITY);
	k[0] = "negzero";
	metrics__set(m, g, k, -0.0);
	k[0] = "";
	metrics__set(m, g, k, 0.1);
	out = render(m);
	CHECK_LINE(out, "sonde_test_value{v=\"a\\\"b\\\\c\\nd\"} 1");
	CHECK_LINE(out, "sonde_test_value{v=\"x\xef\xbf\xbdy\"} 5");
	CHECK_LINE(out, "sonde_test_value{v=\"caf\xc3\xa9\"} -2.5");
	CHECK_LINE(out, "sonde_test_value{v=\"big\"} 100000000000000000000");
	CHECK_LINE(out, "sonde_test_value{v=\"huge\"} 1e+300");
	CHECK_LINE(out, "sonde_test_value{v=\"third\"} 0.3333333333333333");
	CHECK_LINE(out, "sonde_test_value{v=\"tiny\"} 1e-07");
	CHECK_LINE(out, "sonde_test_value{v=\"nan\"} NaN");
	CHECK_LINE(out, "sonde_test_value{v=\"inf\"} -Inf");
	CHECK_LINE(out, "sonde_test_value{v=\"negzero\"} 0");
	CHECK_LINE(out, "sonde_test_value{v=\"\"} 0.1");
	CHECK_EQ_INT(metrics__family_desc(m, g, &d), 0);
	CHECK_EQ_INT(d.nseries, 11);
	free(out);
	metrics__free(m);
}

struct collected {
	int n, overflow_seen;
	char labels[8][64];
	uint64_t count[8], buckets[8][3];
	double sum[8], value[8];
};

static void collect(void *arg, const struct metrics_series_view *s)
{
	struct collected *c = arg;
	int i = c->n++;

	if (i >= 8)
		return;
	if (s->overflow) {
		c->overflow_seen++;
		snprintf(c->labels[i], sizeof(c->labels[i]), "<overflow>");
		CHECK(s->label_values == NULL && s->nlabels == 0);
	} else {
		snprintf(c->labels[i], sizeof(c->labels[i]), "%s",
			 s->nlabels ? s->label_values[0] : "");
	}
	c->count[i] = s->count;
	c->sum[i] = s->sum;
	c->value[i] = s->value;
	if (s->bucket_counts)
		memcpy(c->buckets[i], s->bucket_counts, sizeof(c->buckets[i]));
}

/*
 * Cap 3, five distinct label sets observed once each: the first three get
 * series, the other two are diverted and counted, one count per diverted
 * observation.
 */
static void test_cap(void)
{
	struct metrics *m = metrics__new();
	const char *ln[] = { "http_route" };
	const double b[] = { 1, 2 };
	const char *r[5][1] = { { "/a" }, { "/b" }, { "/c" }, { "/d" }, { "/e" } };
	struct metrics_family_desc d;
	struct collected c = { 0 };
	char *out;
	int h, cnt;

	h = metrics__family(m, METRIC_HISTOGRAM, "capped_seconds", "Capped.",
			    ln, 1, b, 2, 3);
	cnt = metrics__family(m, METRIC_COUNTER, "capped_total", "Capped.",
			      ln, 1, NULL, 0, 1);
	CHECK_EQ_INT(h, 0);
	CHECK_EQ_INT(cnt, 1);
	for (int i = 0; i < 5; i++)
		metrics__observe(m, h, r[i], 0.5 + i);	/* 0.5 .. 4.5 */
	metrics__observe(m, h, r[0], 1.5);	/* existing series: not capped */

	CHECK_EQ_INT(metrics__family_desc(m, h, &d), 0);
	CHECK_EQ_INT(d.nseries, 3);
	CHECK_EQ_INT(d.dropped, 2);
	CHECK_EQ_INT(d.max_series, 3);

	out = render(m);
	CHECK_LINE(out, "capped_seconds_bucket{http_route=\"/a\",le=\"1\"} 1");
	CHECK_LINE(out, "capped_seconds_bucket{http_route=\"/a\",le=\"2\"} 2");
	CHECK_LINE(out, "capped_seconds_count{http_route=\"/a\"} 2");
	CHECK_LINE(out, "capped_seconds_sum{http_route=\"/a\"} 2");
	CHECK_LINE(out, "capped_seconds_count{http_route=\"/c\"} 1");
	CHECK(!strstr(out, "\"/d\""));
	CHECK(!strstr(out, "\"/e\""));
	CHECK_LINE(out, "capped_seconds_bucket{otel_metric_overflow=\"true\",le=\"1\"} 0");
	CHECK_LINE(out, "capped_seconds_bucket{otel_metric_overflow=\"true\",le=\"2\"} 0");
	CHECK_LINE(out, "capped_seconds_bucket{otel_metric_overflow=\"true\",le=\"+Inf\"} 2");
	CHECK_LINE(out, "capped_seconds_sum{otel_metric_overflow=\"true\"} 8");
	CHECK_LINE(out, "capped_seconds_count{otel_metric_overflow=\"true\"} 2");
	CHECK_LINE(out, "sonde_metric_series_dropped_total{metric=\"capped_seconds\"} 2");
	CHECK_LINE(out, "sonde_metric_series_dropped_total{metric=\"capped_total\"} 0");
	/* No overflow series for a family that never overflowed. */
	CHECK(!strstr(out, "capped_total{otel_metric_overflow"));
	free(out);

	metrics__foreach(m, h, collect, &c);
	CHECK_EQ_INT(c.n, 4);
	CHECK_EQ_INT(c.overflow_seen, 1);
	CHECK_EQ_STR(c.labels[0], "/a");
	CHECK_EQ_STR(c.labels[1], "/b");
	CHECK_EQ_STR(c.labels[2], "/c");
	CHECK_EQ_STR(c.labels[3], "<overflow>");
	CHECK_EQ_INT(c.count[0], 2);
	CHECK(c.sum[0] == 2.0);
	/* Non-cumulative: 0.5 in le=1, 1.5 in le=2, none in +Inf. */
	CHECK_EQ_INT(c.buckets[0][0], 1);
	CHECK_EQ_INT(c.buckets[0][1], 1);
	CHECK_EQ_INT(c.buckets[0][2], 0);
	CHECK_EQ_INT(c.count[1], 1);
	CHECK_EQ_INT(c.buckets[1][1], 1);	/* 1.5 */
	CHECK_EQ_INT(c.buckets[2][2], 1);	/* 2.5 */
	CHECK_EQ_INT(c.count[3], 2);
	CHECK(c.sum[3] == 8.0);
	CHECK_EQ_INT(c.buckets[3][0], 0);
	CHECK_EQ_INT(c.buckets[3][1], 0);
	CHECK_EQ_INT(c.buckets[3][2], 2);

	/* The rule is per diverted observation, repeats included. */
	metrics__observe(m, h, r[3], 3.5);
	CHECK_EQ_INT(metrics__family_desc(m, h, &d), 0);
	CHECK_EQ_INT(d.dropped, 3);
	CHECK_EQ_INT(d.nseries, 3);

	/* Counter at cap 1. */
	metrics__add(m, cnt, r[0], 1);
	metrics__add(m, cnt, r[1], 2);
	metrics__add(m, cnt, r[2], 4);
	metrics__add(m, cnt, r[0], 8);
	memset(&c, 0, sizeof(c));
	metrics__foreach(m, cnt, collect, &c);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_STR(c.labels[0], "/a");
	CHECK(c.value[0] == 9.0);
	CHECK_EQ_STR(c.labels[1], "<overflow>");
	CHECK(c.value[1] == 6.0);
	out = render(m);
	CHECK_LINE(out, "capped_total{http_route=\"/a\"} 9");
	CHECK_LINE(out, "capped_total{otel_metric_overflow=\"true\"} 6");
	CHECK_LINE(out, "sonde_metric_series_dropped_total{metric=\"capped_total\"} 2");
	CHECK_LINE(out, "sonde_metric_series_dropped_total{metric=\"capped_seconds\"} 3");
	free(out);
	metrics__free(m);
}

/* Enough series to force several table resizes; every one must be found
 * again rather than duplicated. */
static void test_many_series(void)
{
	struct metrics *m = metrics__new();
	const char *ln[] = { "a", "b" };
	struct metrics_family_desc d;
	char x[32], y[32];
	const char *lv[] = { x, y };
	int f, ok = 1;

	f = metrics__family(m, METRIC_COUNTER, "many_total", "Many.", ln, 2,
			    NULL, 0, 10000);
	CHECK_EQ_INT(f, 0);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 5000; i++) {
			snprintf(x, sizeof(x), "%d", i % 71);
			snprintf(y, sizeof(y), "%d", i);
			metrics__add(m, f, lv, 1);
		}
	CHECK_EQ_INT(metrics__family_desc(m, f, &d), 0);
	CHECK_EQ_INT(d.nseries, 5000);
	CHECK_EQ_INT(d.dropped, 0);
	{
		struct metrics_buf b = { 0 };

		CHECK_EQ_INT(prom_text__render(m, &b), 0);
		for (int i = 0; i < 5000; i += 997) {
			char line[96];

			snprintf(line, sizeof(line),
				 "many_total{a=\"%d\",b=\"%d\"} 2", i % 71, i);
			if (!has_line(b.data, line))
				ok = 0;
		}
		metrics_buf__free(&b);
	}
	CHECK(ok);
	/* Default cap. */
	f = metrics__family(m, METRIC_GAUGE, "dflt", "D.", ln, 1, NULL, 0, 0);
	CHECK_EQ_INT(metrics__family_desc(m, f, &d), 0);
	CHECK_EQ_INT(d.max_series, METRICS_DEFAULT_MAX_SERIES);
	metrics__free(m);
}

static void test_family_errors(void)
{
	struct metrics *m = metrics__new();
	const char *le[] = { "le" };
	const char *dup[] = { "a", "a" };
	const char *under[] = { "__x" };
	const char *ovf[] = { "otel_metric_overflow" };
	const char *bad[] = { "a-b" };
	/* one more label than METRICS_MAX_LABELS (12) */
	const char *nine[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m" };
	const double desc[] = { 1, 0.5 }, eq[] = { 1, 1 }, inf[] = { 1, INFINITY };
	char longname[300];
	int c;

	CHECK_EQ_INT(metrics__family(m, 0, "x", "", NULL, 0, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "1x", "", NULL, 0, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "a b", "", NULL, 0, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "", "", NULL, 0, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, NULL, "", NULL, 0, NULL, 0, 0), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, longname, "", NULL, 0, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_HISTOGRAM, "h", "", le, 1, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g", "", dup, 2, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g", "", under, 1, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g", "", ovf, 1, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g", "", bad, 1, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g", "", nine, 13, NULL, 0, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_HISTOGRAM, "h", "", NULL, 0, desc, 2, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_HISTOGRAM, "h", "", NULL, 0, eq, 2, 0), -EINVAL);
	CHECK_EQ_INT(metrics__family(m, METRIC_HISTOGRAM, "h", "", NULL, 0, inf, 2, 0), -EINVAL);
	CHECK_EQ_INT(metrics__nfamilies(m), 0);

	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g", "", nine, 12, NULL, 0, 0), 0);
	CHECK_EQ_INT(metrics__family(m, METRIC_COUNTER, "g", "", NULL, 0, NULL, 0, 0), -EEXIST);
	CHECK_EQ_INT(metrics__family(m, METRIC_HISTOGRAM, "h", "", NULL, 0, NULL, 0, 0), 1);
	CHECK_EQ_INT(metrics__family(m, METRIC_COUNTER, "h_count", "", NULL, 0, NULL, 0, 0), -EEXIST);
	CHECK_EQ_INT(metrics__family(m, METRIC_GAUGE, "g_sum", "", NULL, 0, NULL, 0, 0), 2);
	CHECK_EQ_INT(metrics__family(m, METRIC_HISTOGRAM, "g", "", NULL, 0, NULL, 0, 0), -EEXIST);
	CHECK_EQ_INT(metrics__family(m, METRIC_COUNTER, METRICS_DROPPED_NAME, "", NULL, 0, NULL, 0, 0), -EEXIST);
	CHECK_EQ_INT(metrics__nfamilies(m), 3);

	/* Wrong-type and bad-id calls are ignored, not fatal. */
	c = metrics__family(m, METRIC_COUNTER, "c_total", "C.", NULL, 0, NULL, 0, 0);
	metrics__observe(m, c, NULL, 1);
	metrics__add(m, 1, NULL, 1);
	metrics__set(m, 1, NULL, 1);
	metrics__add(m, 99, NULL, 1);
	metrics__add(m, -1, NULL, 1);
	metrics__set(m, c, NULL, 41);	/* mirror an external total */
	metrics__add(m, c, NULL, 1);
	metrics__add(m, c, NULL, NAN);
	{
		char *out = render(m);

		CHECK_LINE(out, "c_total 42");
		CHECK(!strstr(out, "h_count "));
		free(out);
	}
	metrics__foreach(m, 99, NULL, NULL);
	CHECK_EQ_INT(metrics__family_desc(m, 99, NULL), -EINVAL);
	metrics__free(m);
	metrics__free(NULL);
}

struct http_req {
	const char *method, *status, *route, *service, *port;
	double secs;
};

/* Runs promtool on text; returns its exit status and its output in buf. */
static int promtool_check(const char *text, char *buf, size_t bufsz)
{
	char in[] = "/tmp/sonde_metrics_XXXXXX";
	char cmd[256], outpath[64];
	FILE *fp;
	size_t n = 0;
	int fd, rc = -1;

	buf[0] = '\0';
	fd = mkstemp(in);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		goto out;
	}
	close(fd);
	snprintf(outpath, sizeof(outpath), "%s.out", in);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s 2>&1",
		 in, outpath);
	rc = system(cmd);
	fp = fopen(outpath, "r");
	if (fp) {
		n = fread(buf, 1, bufsz - 1, fp);
		buf[n] = '\0';
		fclose(fp);
	}
	unlink(outpath);
out:
	unlink(in);
	return rc;
}

static void test_promtool(void)
{
	static const struct http_req reqs[] = {
		{ "GET", "200", "/users/{id}", "shop", "8080", 0.2 },
		{ "GET", "200", "/users/{id}", "shop", "8080", 0.004 },
		{ "POST", "201", "/orders", "shop", "8080", 1.3 },
		{ "GET", "404", "/", "shop", "8080", 0.001 },
		{ "GET", "500", "/api/v1/items", "inventory", "9090", 12 },
		{ "_OTHER", "400", "/we\"ird\\path\nx", "shop", "8080", 0.05 },
		{ "GET", "200", "/caf\xc3\xa9/\xff", "shop", "8080", 0.3 },
	};
	struct metrics *m = metrics__new();
	const char *one[] = { "reason" };
	const char *svc[] = { "service_name" };
	char res[4096];
	char *out;
	int h, h2, c, g, capped, rc;

	h = metrics__family(m, METRIC_HISTOGRAM, "http_server_request_duration_seconds",
			    "Duration of HTTP server requests.", http_labels, 5,
			    http_bounds, NHTTP, 0);
	h2 = metrics__family(m, METRIC_HISTOGRAM, "http_client_request_duration_seconds",
			     "Duration of HTTP client requests (\\ and\nnewline in help).",
			     http_labels, 5, http_bounds, NHTTP, 2);
	c = metrics__family(m, METRIC_COUNTER, "sonde_events_lost_total",
			    "Ring buffer events lost.", one, 1, NULL, 0, 0);
	g = metrics__family(m, METRIC_GAUGE, "sonde_connections",
			    "Tracked TCP connections.", svc, 1, NULL, 0, 0);
	capped = metrics__family(m, METRIC_COUNTER, "sonde_capped_total",
				 "A family that overflows.", svc, 1, NULL, 0, 1);
	metrics__family(m, METRIC_GAUGE, "sonde_empty_bytes",
			"A family with no series.", NULL, 0, NULL, 0, 0);
	CHECK(h >= 0 && h2 >= 0 && c >= 0 && g >= 0 && capped >= 0);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const char *lv[] = { reqs[i].method, reqs[i].status,
				     reqs[i].route, reqs[i].service,
				     reqs[i].port };

		metrics__observe(m, h, lv, reqs[i].secs);
		metrics__observe(m, h2, lv, reqs[i].secs);	/* overflows */
	}
	{
		const char *r1[] = { "ringbuf_full" }, *s1[] = { "shop" },
			   *s2[] = { "inventory" };

		metrics__add(m, c, r1, 17);
		metrics__set(m, g, s1, 12);
		metrics__set(m, g, s2, 0);
		metrics__add(m, capped, s1, 1);
		metrics__add(m, capped, s2, 1);
	}
	out = render(m);
	CHECK_LINE(out, "sonde_metric_series_dropped_total{metric=\"http_client_request_duration_seconds\"} 4");
	CHECK_LINE(out, "sonde_metric_series_dropped_total{metric=\"sonde_capped_total\"} 1");
	CHECK_LINE(out, "http_server_request_duration_seconds_bucket{http_request_method=\"_OTHER\",http_response_status_code=\"400\",http_route=\"/we\\\"ird\\\\path\\nx\",service_name=\"shop\",server_port=\"8080\",le=\"0.05\"} 1");

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "FAIL: promtool not found in PATH; it is required to validate the exposition format\n");
		CHECK(!"promtool missing");
	} else {
		rc = promtool_check(out, res, sizeof(res));
		CHECK_EQ_INT(rc, 0);
		/* Lint findings are printed even when they do not fail. */
		CHECK_EQ_STR(res, "");
		if (rc != 0 || res[0])
			fprintf(stderr, "promtool said:\n%s\n--- input ---\n%s",
				res, out);
		/* And the checker itself must be able to fail. */
		rc = promtool_check("x{a=\"\n\"} 1\n", res, sizeof(res));
		CHECK(rc != 0);
	}
	free(out);
	metrics__free(m);
}

/* The last-series memo must never give a wrong series: alternating label
 * sets, a raw value that needs UTF-8 cleaning, its cleaned twin, and a cap
 * whose overflow series must not be memoised. */
static void test_last_series_memo(void)
{
	struct metrics *m = metrics__new();
	const char *ln[] = { "route" };
	const double b[] = { 1, 2 };
	const char *a[] = { "/a" }, *bb[] = { "/b" }, *raw[] = { "/x\xff" }, *clean[] = { "/x\xef\xbf\xbd" };
	const char *c3[] = { "/c" };
	struct collected c = { 0 };
	int fam = metrics__family(m, METRIC_HISTOGRAM, "memo_seconds", "memo test", ln, 1, b, 2, 3);

	metrics__observe(m, fam, a, 0.5);
	metrics__observe(m, fam, a, 0.5);
	metrics__observe(m, fam, bb, 1.5);
	metrics__observe(m, fam, a, 0.5);
	metrics__observe(m, fam, raw, 3);	/* 3rd series, stored cleaned */
	metrics__observe(m, fam, clean, 3);	/* same text after cleaning: same series */
	metrics__observe(m, fam, raw, 3);
	metrics__observe(m, fam, c3, 3);	/* 4th label set: overflow */
	metrics__observe(m, fam, c3, 3);
	metrics__observe(m, fam, a, 0.5);	/* after overflow, back to a real series */
	metrics__foreach(m, fam, collect, &c);
	CHECK_EQ_INT(c.n, 4);
	CHECK_EQ_STR(c.labels[0], "/a");
	CHECK_EQ_INT(c.count[0], 4);
	CHECK_EQ_STR(c.labels[1], "/b");
	CHECK_EQ_INT(c.count[1], 1);
	CHECK_EQ_STR(c.labels[2], "/x\xef\xbf\xbd");
	CHECK_EQ_INT(c.count[2], 3);
	CHECK_EQ_STR(c.labels[3], "<overflow>");
	CHECK_EQ_INT(c.count[3], 2);
	metrics__free(m);
}

/* The reference: the shortest "%.*g" that reads back as v; integers in full. */
static void slow_format(double v, char *buf, size_t sz)
{
	if (v == floor(v) && fabs(v) < 1e21) {
		snprintf(buf, sz, "%.0f", v == 0 ? 0.0 : v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sz, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* metrics__format_fast gives exactly the reference text whenever it takes
 * a value, over integers, N/10^k decimals of every size, and random bits. */
static void test_format_fast(void)
{
	static const double p10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7 };
	unsigned long long x = 88172645463325252ull;
	int taken = 0, wrong = 0, all = 0;
	char fast[40], slow[40];

	for (int i = 0; i < 400000; i++) {
		double v;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;	/* xorshift64 */
		switch (i % 4) {
		case 0: v = (double)(x % 100000000000ull) / p10[x % 8]; break;
		case 1: v = (double)(x % 1000) / p10[(x >> 20) % 8]; break;
		case 2: memcpy(&v, &x, sizeof(v)); break;
		default: v = (double)(int64_t)(x >> (x % 64)); break;
		}
		if (x & 1ull << 40)
			v = -v;
		if (isnan(v) || isinf(v))
			continue;
		all++;
		if (!metrics__format_fast(v, fast))
			continue;
		taken++;
		slow_format(v, slow, sizeof(slow));
		if (strcmp(fast, slow) && wrong++ < 5)
			fprintf(stderr, "format_fast(%.17g) = %s, want %s\n", v, fast, slow);
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK(taken > all / 2);		/* the fast path does the common cases */
	CHECK_EQ_INT(metrics__format_fast(1258.39, fast), 7);
	CHECK_EQ_STR(fast, "1258.39");
	CHECK_EQ_INT(metrics__format_fast(0.005, fast), 5);
	CHECK_EQ_STR(fast, "0.005");
	CHECK_EQ_INT(metrics__format_fast(-0.0, fast), 1);
	CHECK_EQ_STR(fast, "0");
	CHECK_EQ_INT(metrics__format_fast(0.1 + 0.2, fast), 0);	/* 0.30000000000000004 */
	CHECK_EQ_INT(metrics__format_fast(1e-5, fast), 0);	/* "1e-05" in %g */
	CHECK_EQ_INT(metrics__format_fast(NAN, fast), 0);
	CHECK_EQ_INT(metrics__format_u64(18446744073709551615ull, fast), 20);
	CHECK_EQ_STR(fast, "18446744073709551615");
}

/* The render cache (copied lines of series whose values did not change)
 * gives exactly the text of a render that formats everything afresh, over
 * random observations, sets, adds, new series, overflow and escaping. */
static void test_render_cache(void)
{
	struct metrics *m = metrics__new();
	const char *ln[] = { "svc", "code" };
	const double b[] = { 0.001, 0.5, 1, 2.5 };
	const char *svcs[] = { "a", "b\\q", "c\"d", "e\nf", "g\xff" };
	unsigned long long x = 0x9e3779b97f4a7c15ull;
	int hist = metrics__family(m, METRIC_HISTOGRAM, "rc_seconds", "cached \\ histogram", ln, 2, b, 4, 6);
	int ctr = metrics__family(m, METRIC_COUNTER, "rc_total", "cached counter", ln, 2, NULL, 0, 5);
	int gauge = metrics__family(m, METRIC_GAUGE, "rc_gauge", "cached\ngauge", NULL, 0, NULL, 0, 0);
	int bad = 0;

	CHECK(hist >= 0 && ctr >= 0 && gauge >= 0);
	for (int round = 0; round < 300; round++) {
		struct metrics_buf cached = { 0 }, fresh = { 0 };
		int ops = (int)(x % 4);

		for (int k = 0; k < ops; k++) {
			const char *lv[2];
			char code[8];

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			snprintf(code, sizeof(code), "%d", (int)(x >> 8) % 3);
			lv[0] = svcs[(x >> 16) % 5];
			lv[1] = code;
			switch ((x >> 24) % 5) {
			case 0: metrics__observe(m, hist, lv, (double)((x >> 32) % 4000) / 1000); break;
			case 1: metrics__add(m, ctr, lv, (double)((x >> 32) % 7) / 4); break;
			case 2: metrics__set(m, gauge, NULL, (double)((x >> 32) % 3) - 1.5); break;
			case 3: {
				uint64_t bc[5] = { 0, (x >> 40) % 2, 0, 0, (x >> 41) % 2 };

				metrics__observe_buckets(m, hist, lv, bc, 0.25);
				break;
			}
			default: metrics__add(m, ctr, lv, 0); break;
			}
		}
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		prom_text__cache(true);
		CHECK_EQ_INT(prom_text__render(m, &cached), 0);
		prom_text__cache(false);
		CHECK_EQ_INT(prom_text__render(m, &fresh), 0);
		prom_text__cache(true);
		if (cached.len != fresh.len || memcmp(cached.data, fresh.data, fresh.len)) {
			if (!bad++)
				fprintf(stderr, "round %d: cached render differs:\n%s\n--- fresh ---\n%s",
					round, cached.data, fresh.data);
		}
		metrics_buf__free(&cached);
		metrics_buf__free(&fresh);
	}
	CHECK_EQ_INT(bad, 0);
	metrics__free(m);
}

/* Sample values in the text are the reference's shortest round-trip form
 * (prom_text.c searches from 15 digits up, the reference from 1). */
static void test_render_numbers(void)
{
	enum { N = 60000 };
	struct metrics *m = metrics__new();
	const char *ln[] = { "i" };
	unsigned long long x = 0x2545f4914f6cdd1dull;
	int fam = metrics__family(m, METRIC_GAUGE, "num_gauge", "numbers", ln, 1, NULL, 0, N);
	static double want[N];
	struct metrics_buf b = { 0 };
	int wrong = 0, seen = 0;

	for (int i = 0; i < N; i++) {
		char idx[16];
		const char *lv[] = { idx };
		double v;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (i % 3 == 0)
			memcpy(&v, &x, sizeof(v));
		else if (i % 3 == 1)
			v = (double)(x % 1000000007ull) / (double)(1 + (x >> 40) % 100000);
		else
			v = (double)(x >> 11) * 0x1p-53 * 1e-3;
		if (isnan(v) || isinf(v))
			v = 1;
		want[i] = v;
		snprintf(idx, sizeof(idx), "%d", i);
		metrics__set(m, fam, lv, v);
	}
	CHECK_EQ_INT(prom_text__render(m, &b), 0);
	for (char *p = b.data; (p = strstr(p, "num_gauge{i=\"")); ) {
		char ref[40], *q;
		int i = (int)strtol(p + 13, &q, 10);
		char *sp = strchr(q, ' '), *nl = sp ? strchr(sp, '\n') : NULL;

		if (!sp || !nl || i < 0 || i >= N)
			break;
		slow_format(want[i], ref, sizeof(ref));
		if (strncmp(sp + 1, ref, (size_t)(nl - sp - 1)) || strlen(ref) != (size_t)(nl - sp - 1)) {
			if (wrong++ < 5)
				fprintf(stderr, "value %.17g rendered %.*s, want %s\n", want[i],
					(int)(nl - sp - 1), sp + 1, ref);
		}
		seen++;
		p = nl;
	}
	CHECK_EQ_INT(seen, N);
	CHECK_EQ_INT(wrong, 0);
	metrics_buf__free(&b);
	metrics__free(m);
}

int main(void)
{
	test_format_fast();
	test_render_cache();
	test_render_numbers();
	test_histogram_values();
	test_exact_render();
	test_observe_buckets();
	test_escaping_and_numbers();
	test_cap();
	test_many_series();
	test_family_errors();
	test_promtool();
	test_last_series_memo();
	return check_summary("test_metrics");
}
