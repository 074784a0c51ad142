/* OTLP encoding cost: spans per second per core for writing
 * ExportTraceServiceRequest batches, raw and with gzip (level 1), as `make
 * bench` reports it. Usage: otlp-bench [SECONDS] [BATCH] */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "export/otlp.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void info(void *arg, uint32_t pid, char *exe, size_t el, char *cmd, size_t cl)
{
	(void)arg;
	snprintf(exe, el, "svc%u", pid);
	snprintf(cmd, cl, "/usr/bin/svc%u --port 8080 --workers 4", pid);
}

/* spans per second; bytes per span of the last batch in *bps. Each batch
 * goes the agent's way: spans into queue records (the loop thread's part),
 * then records into a request by one reused encoder (the worker's part). */
static double run(const struct otlp_config *c, struct otlp_span_item *it, size_t n, double secs, bool gz,
		  double *bps)
{
	struct otlp_enc *e = otlp__enc_new();
	uint8_t *mem = malloc(n * OTLP_REC_MAX);
	const void **recs = malloc(n * sizeof(*recs));
	double t0 = now(), t;
	uint64_t spans = 0;

	if (!e || !mem || !recs)
		exit(1);
	do {
		for (int k = 0; k < 10; k++) {
			const uint8_t *body;
			size_t len, off = 0;

			for (size_t i = 0; i < n; i++) {
				uint16_t lens[OTLP_REC_NSTR];
				size_t sz = otlp__rec_size(&it[i].s, it[i].service, lens);

				otlp__rec_write(mem + off, &it[i].s, &it[i].s.ctx, it[i].service, lens, sz);
				recs[i] = mem + off;
				off += sz;
			}
			if (otlp__enc_spans(e, c, recs, n, info, NULL, gz, &body, &len))
				exit(1);
			*bps = (double)len / (double)n;
			spans += n;
		}
		t = now();
	} while (t - t0 < secs);
	otlp__enc_free(e);
	free(mem);
	free(recs);
	return (double)spans / (t - t0);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0, bps_raw, bps_gz, raw, gz;
	size_t n = argc > 2 ? (size_t)atoi(argv[2]) : 512;
	struct otlp_config c = { 0 };
	struct otlp_span_item *it = calloc(n, sizeof(*it));
	static const char *const routes[] = { "/", "/api/users/{id}", "/api/orders", "/static/app.js" };

	snprintf(c.host_name, sizeof(c.host_name), "bench-host");
	snprintf(c.sdk_version, sizeof(c.sdk_version), "0.1.0");
	for (size_t i = 0; i < n; i++) {
		struct span *s = &it[i].s;

		s->kind = i % 3 ? SPAN_SERVER : SPAN_CLIENT;
		s->tgid = 1000 + (uint32_t)(i % 4);
		snprintf(it[i].service, sizeof(it[i].service), "svc%u", s->tgid);
		memcpy(s->comm, "svc", 4);
		s->start_ns = 1000000000ULL * i;
		s->end_ns = s->start_ns + 1234567;
		s->tuple.family = AF_INET;
		inet_pton(AF_INET, "10.1.2.3", s->tuple.saddr);
		inet_pton(AF_INET, "10.1.2.4", s->tuple.daddr);
		s->tuple.sport = 8080;
		s->tuple.dport = (uint16_t)(40000 + i);
		snprintf(s->method, sizeof(s->method), "GET");
		snprintf(s->route, sizeof(s->route), "%s", routes[i % 4]);
		snprintf(s->target, sizeof(s->target), "%s?page=%zu", routes[i % 4], i);
		s->status = i % 10 ? 200 : 500;
		s->version_minor = 1;
		for (int b = 0; b < 16; b++)
			s->ctx.trace_id[b] = (uint8_t)(rand());
		for (int b = 0; b < 8; b++)
			s->ctx.span_id[b] = (uint8_t)(rand());
		s->ctx.trace_flags = 1;
	}
	raw = run(&c, it, n, secs / 2, false, &bps_raw);
	gz = run(&c, it, n, secs / 2, true, &bps_gz);
	printf("OTLP span encoding (batches of %zu spans, one core, %.1f s each)\n", n, secs / 2);
	printf("  encode only:              %10.0f spans/s  %6.1f bytes/span\n", raw, bps_raw);
	printf("  encode + gzip (level 1): %10.0f spans/s  %6.1f bytes/span\n", gz, bps_gz);
	free(it);
	return 0;
}
