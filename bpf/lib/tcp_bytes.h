/* Per-process TCP byte totals, shared by the two objects that may count
 * them: tcp.bpf.c (fentry/kprobe on tcp_sendmsg/tcp_recvmsg) and, when
 * neither attaches, sock.bpf.c at the syscall exits. The loader gives both
 * objects the same map fd; the daemon moves totals out with
 * lookup-and-delete. */
#ifndef SONDE_TCP_BYTES_H
#define SONDE_TCP_BYTES_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sonde.h"

/* key: tgid; value: struct sonde_tcp_bytes. Inserted on a process's first
 * counted send/receive; deleted by the daemon when it collects; entries of
 * exited processes age out (LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct sonde_tcp_bytes);
} tcp_bytes SEC(".maps");

static __always_inline void tcp_bytes__add(__u32 tgid, long n, bool tx)
{
	struct sonde_tcp_bytes *b = bpf_map_lookup_elem(&tcp_bytes, &tgid);

	if (!b) {
		struct sonde_tcp_bytes init = {};

		bpf_map_update_elem(&tcp_bytes, &tgid, &init, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&tcp_bytes, &tgid);
		if (!b)
			return;
	}
	if (tx)
		__sync_fetch_and_add(&b->tx, n);
	else
		__sync_fetch_and_add(&b->rx, n);
}

#endif
