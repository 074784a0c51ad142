/* Run-queue latency per service: sums sched.bpf.c's per-CPU histograms of
 * each tgid and adds them to the service's Prometheus histogram, deleting
 * the kernel entry so each sample is counted once. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "identity/identity.h"
#include "metrics/log2hist.h"
#include "util/proc.h"
#include "signals/sched.h"
#include "sonde.h"

#define SCHED_BATCH 2048	/* tgids moved per scrape (the map's size) */

struct sched {
	struct metrics *m;
	int fam_runq;
};

int sched__new(struct sched **out, struct metrics *m, size_t cap)
{
	static const char *const l_svc[] = { "service_name", IDENT_LABELS };
	struct sched *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->fam_runq = metrics__family(m, METRIC_HISTOGRAM, "sonde_runqueue_latency_seconds",
				      "Time the service's threads waited on a CPU run queue, from "
				      "wakeup (or preemption) to running.",
				      l_svc, 1 + identity__nlabels(), log2hist__bounds(),
				      LOG2HIST_NBOUNDS, cap);
	if (s->fam_runq < 0) {
		int err = s->fam_runq;

		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void sched__free(struct sched *s)
{
	free(s);
}

void sched__collect(struct sched *s, int fd, int ncpus)
{
	static uint32_t keys[SCHED_BATCH];
	struct sonde_runq_stats *v;
	uint64_t buckets[SONDE_HIST_SLOTS];
	uint32_t key, next;
	size_t n = 0;
	int err;

	if (!s || fd < 0 || ncpus <= 0)
		return;
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
