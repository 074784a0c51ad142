/* Per-thread run-queue accounting (see runq_threads.h): open addressing on
 * tid, sized to the threads that live. */
#include <errno.h>
#include <stdlib.h>

#include "signals/runq_threads.h"


struct thread_slot {
	uint32_t tid;		/* 0: empty */
	uint32_t gen;		/* pass that last saw it */
	uint64_t start_ns;
	uint64_t run_delay_ns;
	uint64_t pcount;
};

/* growth of one process within a pass */
struct tgid_sum {
	uint32_t tgid;
	uint64_t wait_ns, slices;
};

struct runq_threads {
	struct thread_slot *slots;
	size_t cap, n;		/* cap a power of two, n used */
	uint32_t gen;
	struct tgid_sum *sums;	/* scratch for one pass */
	size_t sums_cap;
};

struct runq_threads *runq_threads__new(void)
{
	return calloc(1, sizeof(struct runq_threads));
}

void runq_threads__free(struct runq_threads *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t->sums);
	free(t);
}

size_t runq_threads__count(const struct runq_threads *t)
{
	return t ? t->n : 0;
}

static size_t tid_hash(uint32_t tid, size_t cap)
{
	return (size_t)(tid * 2654435761u) & (cap - 1);
}

static struct thread_slot *slot_find(struct runq_threads *t, uint32_t tid)
{
	size_t i = tid_hash(tid, t->cap);

	while (t->slots[i].tid && t->slots[i].tid != tid)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

/* Rebuilds the table at cap, keeping the threads seen in pass gen. */
static int slots_rebuild(struct runq_threads *t, size_t cap, uint32_t keep_gen)
{
	struct thread_slot *old = t->slots;
	size_t old_cap = t->cap;

	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->cap = cap;
	t->n = 0;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].tid || old[i].gen != keep_gen)
			continue;
		*slot_find(t, old[i].tid) = old[i];
		t->n++;
	}
	free(old);
	return 0;
}

static struct tgid_sum *sum_of(struct runq_threads *t, size_t *nsums, uint32_t tgid)
{
	/* Threads of a process mostly come one after another (the iterator
	 * walks tids in order): the last entry first, then a scan. */
	if (*nsums && t->sums[*nsums - 1].tgid == tgid)
		return &t->sums[*nsums - 1];
	for (size_t i = 0; i < *nsums; i++)
		if (t->sums[i].tgid == tgid)
			return &t->sums[i];
	if (*nsums == t->sums_cap)
		return NULL;	/* sized to the pass: cannot happen */
	t->sums[*nsums] = (struct tgid_sum){ .tgid = tgid };
	return &t->sums[(*nsums)++];
}

int runq_threads__pass(struct runq_threads *t, const struct sonde_runq_task *r, size_t n,
		       void (*fn)(uint32_t tgid, uint64_t wait_ns, uint64_t slices, void *arg),
		       void *arg)
{
	size_t nsums = 0, want;

	if (n > RUNQ_MAX_THREADS)
		n = RUNQ_MAX_THREADS;
	/* Room for every thread of this pass at most half full, and for
	 * the ones of the last pass until they are dropped below. */
	want = 64;
	while (want < 2 * (n + t->n) + 2)
		want <<= 1;
	if (want > t->cap && slots_rebuild(t, want, t->gen))
		return -ENOMEM;
	if (n > t->sums_cap) {
		struct tgid_sum *s = realloc(t->sums, n * sizeof(*s));

		if (!s)
			return -ENOMEM;
		t->sums = s;
		t->sums_cap = n;
	}
	t->gen++;
	for (size_t i = 0; i < n; i++) {
		struct thread_slot *s;
		struct tgid_sum *sum;
		uint64_t dw, ds;

		if (!r[i].tid)
			continue;
		s = slot_find(t, r[i].tid);
		if (s->tid && s->start_ns == r[i].start_ns) {
			if (s->gen == t->gen)
				continue;	/* listed twice in one pass */
			/* The kernel's counters only grow; guard anyway. */
			dw = r[i].run_delay_ns >= s->run_delay_ns ?
				     r[i].run_delay_ns - s->run_delay_ns : 0;
			ds = r[i].pcount >= s->pcount ? r[i].pcount - s->pcount : 0;
		} else {
			if (!s->tid)
				t->n++;
			dw = r[i].run_delay_ns;
			ds = r[i].pcount;
		}
		*s = (struct thread_slot){ .tid = r[i].tid, .gen = t->gen, .start_ns = r[i].start_ns,
					   .run_delay_ns = r[i].run_delay_ns, .pcount = r[i].pcount };
		if (!dw && !ds)
			continue;
		sum = sum_of(t, &nsums, r[i].tgid);
		if (sum) {
			sum->wait_ns += dw;
			sum->slices += ds;
		}
	}
	/* Threads gone since the last pass: dropped (rebuild at the same size,
	 * or smaller when far fewer live now). */
	want = t->cap;
	while (want > 64 && want / 4 > 2 * n + 2)
		want >>= 1;
	if (slots_rebuild(t, want, t->gen))
		return -ENOMEM;
	for (size_t i = 0; i < nsums; i++)
		fn(t->sums[i].tgid, t->sums[i].wait_ns, t->sums[i].slices, arg);
	return 0;
}

