/* Kernel differences the BPF programs must survive, in one place (in the
 * spirit of libbpf-tools' core_fixes.bpf.h). Each entry names the change. */
#ifndef SONDE_CORE_FIXES_H
#define SONDE_CORE_FIXES_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* struct sock_common has skc_v6_daddr / skc_v6_rcv_saddr only when the
 * kernel is built with CONFIG_IPV6 (include/net/sock.h, #if
 * IS_ENABLED(CONFIG_IPV6)). On such kernels no AF_INET6 socket exists, but
 * the reads must still relocate, so they are guarded. Returns 0 when read. */
static __always_inline int core__sk_v6_addrs(struct sock *sk, __u8 saddr[16], __u8 daddr[16])
{
	if (!bpf_core_field_exists(sk->__sk_common.skc_v6_daddr))
		return -1;
	bpf_core_read(saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	bpf_core_read(daddr, 16, &sk->__sk_common.skc_v6_daddr);
	return 0;
}

/* tcp_recvmsg() lost its `nonblock` parameter in Linux 5.19 (commit
 * ec095263a965, "net: remove noblock parameter from recvmsg() entities"),
 * which moves the return value's slot in an fexit program's context. So
 * fexit programs read it with bpf_get_func_ret() (Linux 5.17+) rather than
 * naming it as a trailing argument; kretprobes read the return register. */
static __always_inline int core__fexit_int_ret(void *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return (int)ret;
}

/* Open references to a struct file (how many fds, in this or other
 * processes, still hold it). Linux 6.13 replaced atomic_long_t f_count by
 * file_ref_t f_ref, whose counter is one less than the count (commit
 * 90ee6ed776c0, "fs: port files to file_ref"). */
struct file___pre613 {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

static __always_inline long core__file_refs(struct file *f)
{
	if (bpf_core_field_exists(f->f_ref))
		return (long)BPF_CORE_READ(f, f_ref.refcnt.counter) + 1;
	return BPF_CORE_READ((struct file___pre613 *)f, f_count.counter);
}

/* Drops counted on a socket (for a listener: SYNs and completed handshakes
 * it had to drop, tcp_listendrop()). Linux 6.18 added per-NUMA-node drop
 * counters that a socket may use instead of sk_drops (struct sock gained
 * sk_drop_counters with the NUMA-aware drop counting of the 6.18 net tree;
 * not present in 6.1); sk_drops_read() sums them when set. */
struct numa_drop_counters___new {
	atomic_t drops0;
	atomic_t drops1;
} __attribute__((preserve_access_index));
struct sock___new {
	struct numa_drop_counters___new *sk_drop_counters;
} __attribute__((preserve_access_index));

static __always_inline __u64 core__sk_drops(struct sock *sk)
{
	struct sock___new *s = (void *)sk;

	if (bpf_core_field_exists(s->sk_drop_counters)) {
		struct numa_drop_counters___new *c = BPF_CORE_READ(s, sk_drop_counters);

		if (c)
			return (__u32)BPF_CORE_READ(c, drops0.counter) +
			       (__u32)BPF_CORE_READ(c, drops1.counter);
	}
	return (__u32)BPF_CORE_READ(sk, sk_drops.counter);
}

/* Task-local storage (BPF_MAP_TYPE_TASK_STORAGE, Linux 5.11) may be refused
 * in tracepoint programs by some kernels; the loader tries it and falls back
 * to a hash map (see args_in_task in sock.bpf.c), so no BPF-side check is
 * needed. */

#endif
