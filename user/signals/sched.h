/* Run-queue wait per service: by default the kernel's own per-thread
 * accounting, read through sched.bpf.c's task iterator at each collection;
 * with --runqueue-histogram also its per-CPU, per-tgid log2 histograms. */
#ifndef SONDE_SCHED_H
#define SONDE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "sonde.h"

struct sched;

/* histogram: also the sonde_runqueue_latency_seconds family */
int sched__new(struct sched **out, struct metrics *m, size_t max_series, bool histogram);
void sched__free(struct sched *s);
/* Brings the families up to date before each render: iter_fd, an fd to read
 * the task iterator's records from (optional__runq_iter_open; -1: none; it
 * is closed here), runq_fd the histogram map (optional__runq_fd, -1: none),
 * ncpus the possible CPUs. */
void sched__collect(struct sched *s, int iter_fd, int runq_fd, int ncpus);

#endif
