/* Run-queue wait per service.
 *
 * Default: sched.bpf.c's task iterator lists every user-space thread with
 * the kernel's sched_info (run_delay: time runnable but not running;
 * pcount: times switched in). The kernel keeps these anyway; reading them at
 * each collection costs the scrape a few µs per thread and adds nothing to
 * any context switch. Each thread's growth since the last pass is added to
 * its service's counters, so the counters never go back when a thread
 * exits (what a thread waited between the last pass and its exit is not
 * seen).
 *
 * --runqueue-histogram: also sums sched.bpf.c's per-CPU histograms of each
 * tgid into the service's Prometheus histogram, deleting the kernel entry
 * so each sample is counted once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "identity/identity.h"
#include "metrics/log2hist.h"
#include "signals/runq_threads.h"
#include "signals/sched.h"

#define SCHED_BATCH 2048		/* tgids moved per scrape (the map's size) */

/* ---- the families ---- */

struct sched {
	struct metrics *m;
	int fam_wait, fam_slices, fam_runq;	/* fam_runq -1: no histogram */
	struct runq_threads *threads;
	struct sonde_runq_task *buf;
	size_t buf_cap;
};

int sched__new(struct sched **out, struct metrics *m, size_t cap, bool histogram)
{
	static const char *const l_svc[] = { "service_name", IDENT_LABELS };
	struct sched *s = calloc(1, sizeof(*s));
	int err = -ENOMEM;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->fam_runq = -1;
	s->threads = runq_threads__new();
	if (!s->threads)
		goto fail;
	s->fam_wait = metrics__family(m, METRIC_COUNTER, "sonde_runqueue_wait_seconds_total",
				      "Time the service's threads spent runnable, waiting for a "
				      "CPU (the kernel's sched_info run_delay).",
				      l_svc, 1 + identity__nlabels(), NULL, 0, cap);
	err = s->fam_wait;
	if (err < 0)
		goto fail;
	s->fam_slices = metrics__family(m, METRIC_COUNTER, "sonde_runqueue_timeslices_total",
					"Times the service's threads were switched onto a CPU "
					"(sched_info pcount): wait / timeslices is the mean wait.",
					l_svc, 1 + identity__nlabels(), NULL, 0, cap);
	err = s->fam_slices;
	if (err < 0)
		goto fail;
	if (histogram) {
		s->fam_runq = metrics__family(m, METRIC_HISTOGRAM, "sonde_runqueue_latency_seconds",
					      "Time the service's threads waited on a CPU run queue, "
					      "from wakeup (or preemption) to running.",
					      l_svc, 1 + identity__nlabels(), log2hist__bounds(),
					      LOG2HIST_NBOUNDS, cap);
		err = s->fam_runq;
		if (err < 0)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	runq_threads__free(s->threads);
	free(s);
	return err;
}

void sched__free(struct sched *s)
{
	if (!s)
		return;
	runq_threads__free(s->threads);
	free(s->buf);
	free(s);
}

static void add_wait(uint32_t tgid, uint64_t wait_ns, uint64_t slices, void *arg)
{
	struct sched *s = arg;
	const struct identity *id = identity__get(tgid, "", "");
	const char *lv[1 + IDENT_LABELS_MAX] = { id->service_name };

	identity__label_values(id, lv + 1);
	metrics__add(s->m, s->fam_wait, lv, (double)wait_ns / 1e9);
	metrics__add(s->m, s->fam_slices, lv, (double)slices);
}

/* Reads every record of the iterator fd into s->buf. Returns the count. */
static size_t read_tasks(struct sched *s, int fd)
{
	size_t n = 0;

	for (;;) {
		ssize_t got;

		if (n == s->buf_cap) {
			size_t cap = s->buf_cap ? 2 * s->buf_cap : 1024;
			struct sonde_runq_task *b;

			if (cap > RUNQ_MAX_THREADS)
				break;
			b = realloc(s->buf, cap * sizeof(*b));
			if (!b)
				break;
			s->buf = b;
			s->buf_cap = cap;
		}
		got = read(fd, s->buf + n, (s->buf_cap - n) * sizeof(*s->buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got / sizeof(*s->buf);
	}
	return n;
}

static void collect_histograms(struct sched *s, int fd, int ncpus)
{
	static uint32_t keys[SCHED_BATCH];
	struct sonde_runq_stats *v;
	uint64_t buckets[SONDE_HIST_SLOTS];
	uint32_t key, next;
	size_t n = 0;
	int err;

	v = calloc((size_t)ncpus, sizeof(*v));
	if (!v)
		return;
	err = bpf_map_get_next_key(fd, NULL, &next);
	while (!err && n < SCHED_BATCH) {
		keys[n++] = next;
		key = next;
		err = bpf_map_get_next_key(fd, &key, &next);
	}
	for (size_t i = 0; i < n; i++) {
		char exe[SONDE_EXE_LEN + 1] = "";
		uint64_t sum_ns = 0, total = 0;

		if (bpf_map_lookup_and_delete_elem(fd, &keys[i], v) != 0) {
			if (bpf_map_lookup_elem(fd, &keys[i], v) != 0)
				continue;
			bpf_map_delete_elem(fd, &keys[i]);
		}
		memset(buckets, 0, sizeof(buckets));
		for (int c = 0; c < ncpus; c++) {
			if (!exe[0] && v[c].exe[0])
				memcpy(exe, v[c].exe, SONDE_EXE_LEN);
			sum_ns += v[c].sum_ns;
			for (int k = 0; k < SONDE_HIST_SLOTS; k++) {
				buckets[k] += v[c].hist[k];
				total += v[c].hist[k];
			}
		}
		if (!total)
			continue;
		{
			const struct identity *id = identity__get(keys[i], exe, "");
			const char *lv[1 + IDENT_LABELS_MAX] = { id->service_name };

			identity__label_values(id, lv + 1);
			metrics__observe_buckets(s->m, s->fam_runq, lv, buckets, (double)sum_ns / 1e9);
		}
	}
	free(v);
}

void sched__collect(struct sched *s, int iter_fd, int runq_fd, int ncpus)
{
	if (s && iter_fd >= 0)
		runq_threads__pass(s->threads, s->buf, read_tasks(s, iter_fd), add_wait, s);
	if (iter_fd >= 0)
		close(iter_fd);
	if (s && s->fam_runq >= 0 && runq_fd >= 0 && ncpus > 0)
		collect_histograms(s, runq_fd, ncpus);
}
