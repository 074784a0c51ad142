/* The daemon's cost per request without BPF and without the noise of a
 * live run: ring records an agent dumped (SONDE_RECORD_DUMP=FILE) are fed
 * again and again through the same path on_record takes in user/agent.c
 * (connection table, protocols, span builder, signals, metrics), and the
 * CPU time per server span (one per request under wrk against nginx) is
 * reported. Each pass moves the records' times past the previous pass, so
 * time only goes forward. A dump of bpf_cost.py's run (nginx under wrk):
 *   SONDE_RECORD_DUMP=/tmp/records.bin flock /tmp/sonde-agent.lock \
 *       python3 tests/bench/bpf_cost.py --seconds 2 cur=build/sonde
 *   replay FILE [PASSES]   ns per request, per pass, the median and the fastest
 *   replay --check FILE    one pass: every span (JSON, times left out by
 *                          the caller if it compares runs) and the final
 *                          /metrics text, to tell that a change kept the
 *                          signals the same */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn/conn.h"
#include "conn/records.h"
#include "export/prom_text.h"
#include "identity/identity.h"
#include "metrics/metrics.h"
#include "signals/signals.h"
#include "span/builder.h"
#include "span/span.h"
#include "span/tracectx.h"
#include "sonde.h"

struct replay {
	struct conn_table *ct;
	struct tracectx *tc;
	struct signals *sig;
	uint64_t spans, server_spans, bad;
};

static struct signals *counted_signals;

static void count_span(void *arg, const struct span *s)
{
	struct replay *r = arg;

	r->spans++;
	r->server_spans += s->kind == SPAN_SERVER;
	signals__span(counted_signals, s);
}

/* The ids of spans without a kernel trace context come from getrandom:
 * here from a fixed sequence instead (this definition takes the place of
 * libc's), so that two runs give the same spans (--check). */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	static uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint8_t *p = buf;

	(void)flags;
	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[k] = (uint8_t)x;
	}
	return (ssize_t)len;
}

/* user/agent.c's on_record: the same records__handle, without what needs
 * the kernel side at a process's exit (database client calls, injection) */
static void feed(struct replay *r, const void *data, size_t size)
{
	if (records__handle(r->ct, r->tc, NULL, data, size) < 0)
		r->bad++;
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The whole file, 8-aligned; its records are u64 size, bytes, padding. */
static uint8_t *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "re");
	uint8_t *buf = NULL;
	long len;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto fail;
	buf = aligned_alloc(64, ((size_t)len + 63) & ~(size_t)63);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len)
		goto fail;
	fclose(f);
	*n = (size_t)len;
	return buf;
fail:
	fprintf(stderr, "replay: %s: %s\n", path, strerror(errno ? errno : EIO));
	if (f)
		fclose(f);
	free(buf);
	return NULL;
}

/* Moves every record's times by d: the next pass comes after this one. */
static void shift(uint8_t *buf, size_t n, uint64_t d)
{
	for (size_t off = 0; off + 8 <= n;) {
		uint64_t size;
		struct sonde_event_hdr *h = (struct sonde_event_hdr *)(buf + off + 8);

		memcpy(&size, buf + off, 8);
		if (size >= sizeof(*h)) {
			h->ktime += d;
			if (h->op == SONDE_OP_DATA && size >= sizeof(struct sonde_data_event))
				((struct sonde_data_event *)h)->enter_ns += d;
		}
		off += 8 + ((size + 7) & ~7ULL);
	}
}

/* One pass; the span of record times it covered in *t0, *t1. */
/* not inlined: callgrind --toggle-collect=pass counts it alone */
static __attribute__((noinline)) void pass(struct replay *r, const uint8_t *buf, size_t n, uint64_t *t0, uint64_t *t1)
{
	*t0 = UINT64_MAX;
	*t1 = 0;
	for (size_t off = 0; off + 8 <= n;) {
		uint64_t size;

		memcpy(&size, buf + off, 8);
		if (size > n - off - 8)
			break;
		if (size >= sizeof(struct sonde_event_hdr)) {
			uint64_t t = ((const struct sonde_event_hdr *)(buf + off + 8))->ktime;

			*t0 = t < *t0 ? t : *t0;
			*t1 = t > *t1 ? t : *t1;
		}
		feed(r, buf + off + 8, (size_t)size);
		off += 8 + ((size + 7) & ~7ULL);
	}
}

/* A /proc of the dump's processes, which are gone by now: each one
 * alive, so that identity resolves it once as the agent did, not at every
 * span as it does a process that is gone. Returns the root (static). */
static const char *fake_proc(const uint8_t *buf, size_t n, uint32_t *tgids, size_t *ntgids)
{
	static char root[] = "/tmp/sonde-replay.XXXXXX";

	if (!mkdtemp(root))
		return NULL;
	*ntgids = 0;
	for (size_t off = 0; off + 8 <= n;) {
		uint64_t size;
		const struct sonde_conn_event *c = (const void *)(buf + off + 8);

		memcpy(&size, buf + off, 8);
		if (size >= sizeof(*c) && c->hdr.op == SONDE_OP_CONN) {
			size_t k;

			for (k = 0; k < *ntgids && tgids[k] != c->tgid; k++)
				;
			if (k == *ntgids && k < 64) {
				char path[96];
				FILE *f;

				tgids[(*ntgids)++] = c->tgid;
				snprintf(path, sizeof(path), "%s/%u", root, c->tgid);
				mkdir(path, 0755);
				snprintf(path, sizeof(path), "%s/%u/stat", root, c->tgid);
				if ((f = fopen(path, "we"))) {
					/* field 22, the start time, is what identity reads */
					fprintf(f, "%u (%.*s) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0\n",
						c->tgid, SONDE_COMM_LEN, c->comm);
					fclose(f);
				}
			}
		}
		off += 8 + ((size + 7) & ~7ULL);
	}
	return root;
}

static void fake_proc_free(const char *root, const uint32_t *tgids, size_t ntgids)
{
	char path[96];

	for (size_t k = 0; k < ntgids; k++) {
		snprintf(path, sizeof(path), "%s/%u/stat", root, tgids[k]);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%u", root, tgids[k]);
		rmdir(path);
	}
	rmdir(root);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	bool check = argc > 1 && strcmp(argv[1], "--check") == 0;
	const char *path = argv[1 + check];
	int passes = !check && argc > 2 ? atoi(argv[2]) : 1;
	struct ident_opts io = { 0 };
	struct metrics *m = metrics__new();
	struct signals_opts so = { .print_spans = check };
	struct replay r = { 0 };
	struct span_builder *spans;
	struct span_sink sink;
	double ns[256];
	uint32_t tgids[64];
	size_t n, ntgids = 0;
	uint8_t *buf;

	if (!path || passes < 1 || passes > 256) {
		fprintf(stderr, "usage: replay FILE [PASSES (1-256)] | replay --check FILE\n");
		return 2;
	}
	if (!(buf = load(path, &n)))
		return 1;
	span__init_clock();
	if (!(io.proc_root = fake_proc(buf, n, tgids, &ntgids))) {
		fprintf(stderr, "replay: cannot make a /proc for the dump's processes\n");
		return 1;
	}
	if (!m || identity__init(&io, m) || signals__new(&counted_signals, m, &so) ||
	    !(r.tc = tracectx__new())) {
		fprintf(stderr, "replay: setup failed\n");
		return 1;
	}
	sink = (struct span_sink){ .emit = count_span, .arg = &r };
	spans = span_builder__new(r.tc, &sink, NULL);
	r.ct = spans ? conn__new(65536, NULL, spans, NULL) : NULL;
	if (!r.ct) {
		fprintf(stderr, "replay: setup failed\n");
		return 1;
	}
	for (int k = 0; k < passes; k++) {
		uint64_t spans0 = r.server_spans, t0, t1;
		double c0 = cpu_ns();

		pass(&r, buf, n, &t0, &t1);
		ns[k] = (cpu_ns() - c0) / (double)(r.server_spans - spans0 ? r.server_spans - spans0 : 1);
		if (!check)
			printf("pass %d: %.0f ns per request (%llu server spans)\n", k + 1, ns[k],
			       (unsigned long long)(r.server_spans - spans0));
		if (t1 >= t0)
			shift(buf, n, t1 - t0 + 1000000000ULL);
	}
	if (check) {
		struct metrics_buf out = { 0 };

		fflush(stdout);
		signals__collect(counted_signals);
		if (prom_text__render(m, &out))
			return 1;
		fwrite(out.data, 1, out.len, stdout);
		metrics_buf__free(&out);
	} else {
		qsort(ns, (size_t)passes, sizeof(ns[0]), cmp_double);
		printf("median: %.0f ns per request, fastest %.0f; %llu spans, %llu bad records\n",
		       ns[passes / 2], ns[0], (unsigned long long)r.spans, (unsigned long long)r.bad);
	}
	conn__free(r.ct);
	span_builder__free(spans);
	tracectx__free(r.tc);
	signals__free(counted_signals);
	metrics__free(m);
	identity__fini();
	fake_proc_free(io.proc_root, tgids, ntgids);
	free(buf);
	return 0;
}
