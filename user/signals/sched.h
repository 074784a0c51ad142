/* Run-queue latency per service, from sched.bpf.c's per-CPU, per-tgid log2
 * histograms. */
#ifndef SONDE_SCHED_H
#define SONDE_SCHED_H

#include <stddef.h>

#include "metrics/metrics.h"

struct sched;

int sched__new(struct sched **out, struct metrics *m, size_t max_series);
void sched__free(struct sched *s);
/* Moves the kernel's histograms (map fd from optional__runq_fd, -1: nothing to
 * do; ncpus = possible CPUs) into the registry. Called before each render. */
void sched__collect(struct sched *s, int runq_fd, int ncpus);

#endif
