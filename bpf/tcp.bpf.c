// SPDX-License-Identifier: GPL-2.0
/* TCP byte accounting per process at tcp_sendmsg/tcp_recvmsg: sees what the
 * read/write tracepoints miss (sendfile, splice, io_uring). Two variants,
 * picked by the loader: fexit (cheapest) or kprobe+kretprobe. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
#include "lib/core_fixes.bpf.h"

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

/* Return value via core__fexit_int_ret(): see lib/core_fixes.bpf.h. */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(fexit_tcp_sendmsg)
{
	return account(core__fexit_int_ret(ctx), true);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg)
{
	return account(core__fexit_int_ret(ctx), false);
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
