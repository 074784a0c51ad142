/* Run-queue wait per process from passes over every thread's sched_info
 * (sched.bpf.c's task iterator): what each thread waited since the last
 * pass, summed per process, so totals never go back when threads exit. */
#ifndef SONDE_RUNQ_THREADS_H
#define SONDE_RUNQ_THREADS_H

#include <stddef.h>
#include <stdint.h>

#include "sonde.h"

#define RUNQ_MAX_THREADS (1u << 20)	/* threads followed at most */

/* Takes the n records of one pass over every thread, adds each thread's
 * growth since the last pass to its process (fn(tgid, wait_ns, timeslices,
 * arg) once per tgid that grew) and forgets threads not in the pass. A thread seen for the first time counts
 * whole; a tid whose start time changed is a new thread. */
struct runq_threads;
struct runq_threads *runq_threads__new(void);
void runq_threads__free(struct runq_threads *t);
int runq_threads__pass(struct runq_threads *t, const struct sonde_runq_task *r, size_t n,
		       void (*fn)(uint32_t tgid, uint64_t wait_ns, uint64_t slices, void *arg),
		       void *arg);
/* threads followed now */
size_t runq_threads__count(const struct runq_threads *t);

#endif
