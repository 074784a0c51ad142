/* Log2 latency slots (see SONDE_HIST_SLOTS in sonde.h), branch-light so the
 * hot sched_switch path stays short. */
#ifndef SONDE_HIST_H
#define SONDE_HIST_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sonde.h"

/* Slot of a duration in nanoseconds: 0 below 1 µs, k for [2^(k-1), 2^k) µs. */
static __always_inline __u32 hist__slot(__u64 ns)
{
	__u64 v = ns / 1000;
	__u32 r = 0, shift;

	if (!v)
		return 0;
	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	r += 1;			/* floor(log2(us)) + 1 */
	return r;
}

/* hist[slot of ns]++ (atomic when shared between CPUs). The bound check
 * sits behind barrier_var so the compiler cannot test a copy of the index
 * and hand the verifier the unchecked one. */
static __always_inline void hist__add(__u64 *hist, __u64 ns, bool atomic)
{
	__u32 slot = hist__slot(ns);

	barrier_var(slot);
	if (slot > SONDE_HIST_SLOTS - 1)
		slot = SONDE_HIST_SLOTS - 1;
	barrier_var(slot);
	if (slot >= SONDE_HIST_SLOTS)
		return;
	if (atomic)
		__sync_fetch_and_add(&hist[slot], 1);
	else
		hist[slot]++;
}

#endif
