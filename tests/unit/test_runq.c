/* Unit tests for user/signals/runq_threads.c: per-thread run-queue
 * accounting over passes of task-iterator records (struct sonde_runq_task),
 * summed per process with exact values. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "signals/runq_threads.h"

#define MAXP 64
static struct {
	uint32_t tgid;
	uint64_t wait, slices;
} got[MAXP];
static int ngot;

static void take(uint32_t tgid, uint64_t wait_ns, uint64_t slices, void *arg)
{
	(void)arg;
	if (ngot < MAXP)
		got[ngot++] = (typeof(got[0])){ tgid, wait_ns, slices };
}

/* growth reported for tgid in the last pass: wait (ns) or -1 if none */
static long long wait_of(uint32_t tgid)
{
	for (int i = 0; i < ngot; i++)
		if (got[i].tgid == tgid)
			return (long long)got[i].wait;
	return -1;
}

static long long slices_of(uint32_t tgid)
{
	for (int i = 0; i < ngot; i++)
		if (got[i].tgid == tgid)
			return (long long)got[i].slices;
	return -1;
}

static int pass(struct runq_threads *t, const struct sonde_runq_task *r, size_t n)
{
	ngot = 0;
	return runq_threads__pass(t, r, n, take, NULL);
}

#define T(tid, tgid, start, delay, pc) { tid, tgid, start, delay, pc }

static void test_growth_and_exit(void)
{
	struct runq_threads *t = runq_threads__new();
	/* process 100 with threads 100 and 101 (not contiguous with 101's
	 * sibling order), process 200 single-threaded */
	struct sonde_runq_task p1[] = {
		T(100, 100, 5, 1000, 10), T(200, 200, 7, 50, 2), T(101, 100, 6, 500, 4),
	};
	struct sonde_runq_task p2[] = {
		T(100, 100, 5, 1600, 13), T(200, 200, 7, 50, 2), T(101, 100, 6, 900, 5),
	};
	/* 101 exited; 100 grew; 200 grew */
	struct sonde_runq_task p3[] = {
		T(100, 100, 5, 1700, 14), T(200, 200, 7, 80, 3),
	};

	CHECK_EQ_INT(pass(t, p1, 3), 0);
	CHECK_EQ_INT(ngot, 2);
	CHECK_EQ_INT(wait_of(100), 1500);	/* first sight: whole */
	CHECK_EQ_INT(slices_of(100), 14);
	CHECK_EQ_INT(wait_of(200), 50);
	CHECK_EQ_INT(runq_threads__count(t), 3);

	CHECK_EQ_INT(pass(t, p2, 3), 0);
	CHECK_EQ_INT(ngot, 1);			/* 200 did not grow: not reported */
	CHECK_EQ_INT(wait_of(100), 600 + 400);
	CHECK_EQ_INT(slices_of(100), 3 + 1);
	CHECK_EQ_INT(wait_of(200), -1);

	CHECK_EQ_INT(pass(t, p3, 2), 0);
	CHECK_EQ_INT(ngot, 2);
	CHECK_EQ_INT(wait_of(100), 100);	/* 101 gone: no negative growth */
	CHECK_EQ_INT(wait_of(200), 30);
	CHECK_EQ_INT(runq_threads__count(t), 2);	/* 101 forgotten */
	runq_threads__free(t);
}

static void test_reuse_and_duplicates(void)
{
	struct runq_threads *t = runq_threads__new();
	struct sonde_runq_task p1[] = { T(300, 300, 10, 5000, 50) };
	/* tid 300 reused by a new process (other start time): counts whole */
	struct sonde_runq_task p2[] = { T(300, 301, 99, 70, 1), T(300, 301, 99, 70, 1) };
	/* a counter that went back (cannot happen in the kernel): no growth */
	struct sonde_runq_task p3[] = { T(300, 301, 99, 60, 1) };

	pass(t, p1, 1);
	CHECK_EQ_INT(wait_of(300), 5000);
	pass(t, p2, 2);
	CHECK_EQ_INT(ngot, 1);
	CHECK_EQ_INT(wait_of(301), 70);		/* listed twice: counted once */
	CHECK_EQ_INT(slices_of(301), 1);
	CHECK_EQ_INT(wait_of(300), -1);
	pass(t, p3, 1);
	CHECK_EQ_INT(ngot, 0);
	runq_threads__free(t);
}

/* Many threads: the table grows and shrinks; every process's sum exact. */
static void test_many(void)
{
	enum { N = 20000 };
	static struct sonde_runq_task r[N];
	struct runq_threads *t = runq_threads__new();
	uint64_t want = 0;

	for (uint32_t i = 0; i < N; i++) {
		r[i] = (struct sonde_runq_task)T(i + 1, 7, i, i, 1);
		want += i;
	}
	CHECK_EQ_INT(pass(t, r, N), 0);
	CHECK_EQ_INT(ngot, 1);
	CHECK_EQ_INT(wait_of(7), want);
	CHECK_EQ_INT(slices_of(7), N);
	CHECK_EQ_INT(runq_threads__count(t), N);
	for (uint32_t i = 0; i < N; i++)
		r[i].run_delay_ns += 3;
	CHECK_EQ_INT(pass(t, r, 10), 0);	/* the rest exited */
	CHECK_EQ_INT(wait_of(7), 30);
	CHECK_EQ_INT(runq_threads__count(t), 10);
	CHECK_EQ_INT(pass(t, r, 0), 0);
	CHECK_EQ_INT(runq_threads__count(t), 0);
	runq_threads__free(t);
}

int main(void)
{
	test_growth_and_exit();
	test_reuse_and_duplicates();
	test_many();
	return check_summary("test_runq");
}
