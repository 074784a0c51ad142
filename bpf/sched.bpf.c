// SPDX-License-Identifier: GPL-2.0
/* Run-queue wait per process, two ways.
 *
 * By default only the task iterator below runs: at each collection it reads
 * the kernel's own per-thread accounting (sched_info.run_delay and pcount,
 * kept by the scheduler whatever sonde does), so nothing is added to any
 * context switch on the host.
 *
 * With --runqueue-histogram, the hooks further down also build a log2
 * histogram per tgid of each wait (wakeup or preemption → running).
 * sched_switch fires on every context switch of every process, so that
 * path is two hash operations and a per-CPU add on each (0.4–1.3 µs per
 * HTTP request in make bench): opt-in. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
#include "lib/hist.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 filter_tgid = 0;	/* 0 = every process */

#define PF_KTHREAD 0x00200000	/* include/linux/sched.h, unchanged since 2.6 */

/* key: thread id; value: bpf_ktime_get_ns() when it became runnable.
 * Inserted at sched_wakeup/sched_wakeup_new and when a runnable thread is
 * switched out; deleted when it is switched in. A plain preallocated hash
 * (as libbpf-tools' runqlat): these run under the run-queue lock, where
 * allocating (task storage) is best avoided. Stale entries of threads that
 * died runnable are overwritten by pid reuse or stay until then (bounded). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} runnable_since SEC(".maps");

/* key: tgid; value: struct sonde_runq_stats, per CPU (no atomics, no shared
 * cache lines). Inserted on the first sample of a process; deleted by the
 * daemon when it collects. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2048);
	__type(key, __u32);
	__type(value, struct sonde_runq_stats);
} runq SEC(".maps");

static __always_inline void enqueued(struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid);
	__u64 now;

	/* kernel threads belong to no service */
	if (!pid || (BPF_CORE_READ(p, flags) & PF_KTHREAD) ||
	    (filter_tgid && BPF_CORE_READ(p, tgid) != filter_tgid))
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&runnable_since, &pid, &now, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	enqueued(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	enqueued(p);
	return 0;
}

/* A process that calls execve() becomes another service: forget the
 * samples of its old image (it mostly has none: the fork → exec window),
 * so that the entry is made again with the new executable's name. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	bpf_map_delete_elem(&runq, &tgid);
	return 0;
}

/* One record per user-space thread (struct sonde_runq_task). Kernel threads
 * belong to no service; a thread that is exiting may still be listed. */
SEC("iter/task")
int runq_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct sonde_runq_task r;

	if (!t || (t->flags & PF_KTHREAD) || (filter_tgid && t->tgid != filter_tgid))
		return 0;
	r.tid = t->pid;
	r.tgid = t->tgid;
	r.start_ns = t->start_time;
	r.run_delay_ns = t->sched_info.run_delay;
	r.pcount = t->sched_info.pcount;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

/* Basename of a task's executable, read once per process and collection. */
static __always_inline void task_exe(struct task_struct *t, char out[SONDE_EXE_LEN])
{
	const unsigned char *name = BPF_CORE_READ(t, mm, exe_file, f_path.dentry, d_name.name);

	if (name)
		bpf_probe_read_kernel_str(out, SONDE_EXE_LEN, name);
}

/* prev_state is the tracepoint's fourth argument since Linux 5.18
 * ("sched/tracing: Don't re-read p->state when emitting sched_switch
 * event"); both kernels this project runs on have it (checked in their
 * BTF: btf_trace_sched_switch takes 4 arguments on 6.1 and 6.18). A
 * preempted thread stays on the run queue whatever its state says. */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct sonde_runq_stats *st;
	__u32 pid, tgid;
	__u64 *since, d;

	if (preempt || prev_state == 0 /* TASK_RUNNING */)
		enqueued(prev);
	pid = next->pid;
	since = pid ? bpf_map_lookup_elem(&runnable_since, &pid) : NULL;
	if (!since)
		return 0;
	d = bpf_ktime_get_ns() - *since;
	bpf_map_delete_elem(&runnable_since, &pid);
	tgid = next->tgid;
	st = bpf_map_lookup_elem(&runq, &tgid);
	if (!st) {
		struct sonde_runq_stats init = {};

		task_exe(next, init.exe);
		bpf_map_update_elem(&runq, &tgid, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&runq, &tgid);
		if (!st)
			return 0;
	}
	/* Other CPUs' copies of the entry keep exe empty: the daemon takes
	 * the one that is set. */
	st->sum_ns += d;
	hist__add(st->hist, d, false);
	return 0;
}
