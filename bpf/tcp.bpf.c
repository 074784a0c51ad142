// SPDX-License-Identifier: GPL-2.0
/* TCP byte accounting per process at tcp_sendmsg/tcp_recvmsg: sees what the
 * read/write tracepoints miss (sendfile, splice, io_uring). Two variants,
 * picked by the loader: fexit (cheapest) or kprobe+kretprobe. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
#include "lib/core_fixes.bpf.h"
/* Shared with sock.bpf.c (lib/maps.bpf.h), created with this object. */
#define SONDE_MAP_TCP_BYTES
#include "lib/tcp_bytes.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 self_tgid = 0;
const volatile __u32 filter_tgid = 0;

static __always_inline int account(long ret, bool tx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (ret > 0 && tgid != self_tgid && !(filter_tgid && tgid != filter_tgid))
		tcp_bytes__add(tgid, ret, tx);
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

/* Before Linux 6.5, sendfile(2) and splice reach TCP through tcp_sendpage,
 * not tcp_sendmsg (commit c5c37af6ecad, "tcp: Convert do_tcp_sendpages()
 * to use MSG_SPLICE_PAGES", moved them). Loaded only where it exists. */
SEC("fexit/tcp_sendpage")
int BPF_PROG(fexit_tcp_sendpage)
{
	return account(core__fexit_int_ret(ctx), true);
}

SEC("kretprobe/tcp_sendpage")
int BPF_KRETPROBE(kret_tcp_sendpage, int ret)
{
	return account(ret, true);
}

/* Sockets in a sockhash with an sk_msg program (traceparent injection,
 * inject.bpf.c) send through tcp_bpf_sendmsg instead of tcp_sendmsg. It
 * returns the bytes taken from the caller, before any header is inserted. */
SEC("fexit/tcp_bpf_sendmsg")
int BPF_PROG(fexit_tcp_bpf_sendmsg)
{
	return account(core__fexit_int_ret(ctx), true);
}

SEC("kretprobe/tcp_bpf_sendmsg")
int BPF_KRETPROBE(kret_tcp_bpf_sendmsg, int ret)
{
	return account(ret, true);
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
