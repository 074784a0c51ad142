// SPDX-License-Identifier: GPL-2.0
/* TCP byte accounting per process at tcp_sendmsg/tcp_recvmsg: sees what the
 * read/write tracepoints miss (sendfile, splice, io_uring). Two variants,
 * picked by the loader: fexit (cheapest) or kprobe+kretprobe. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 self_tgid = 0;
const volatile __u32 filter_tgid = 0;

/* key: tgid; value: struct sonde_tcp_bytes. Shared with sock.bpf.c (same
 * fd); inserted on a process's first TCP send/receive, aged out by LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct sonde_tcp_bytes);
} tcp_bytes SEC(".maps");

static __always_inline int account(long ret, bool tx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct sonde_tcp_bytes *b;

	if (ret <= 0 || tgid == self_tgid || (filter_tgid && tgid != filter_tgid))
		return 0;
	b = bpf_map_lookup_elem(&tcp_bytes, &tgid);
	if (!b) {
		struct sonde_tcp_bytes init = {};

		bpf_map_update_elem(&tcp_bytes, &tgid, &init, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&tcp_bytes, &tgid);
		if (!b)
			return 0;
	}
	if (tx)
		__sync_fetch_and_add(&b->tx, ret);
	else
		__sync_fetch_and_add(&b->rx, ret);
	return 0;
}

/* bpf_get_func_ret instead of a trailing BPF_PROG argument: tcp_recvmsg lost
 * its nonblock parameter in 5.19 (commit ec095263a965), which would move the
 * return value's slot. */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(fexit_tcp_sendmsg)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return account((int)ret, true);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return account((int)ret, false);
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(kret_tcp_sendmsg, int ret)
{
	return account(ret, true);
}

SEC("kretprobe/tcp_recvmsg")
int BPF_KRETPROBE(kret_tcp_recvmsg, int ret)
{
	return account(ret, false);
}
