/* Counting per-process TCP bytes into the tcp_bytes map (lib/maps.bpf.h),
 * for the two objects that may count them: tcp.bpf.c (fentry/kprobe on
 * tcp_sendmsg/tcp_recvmsg) and, when neither attaches, sock.bpf.c at the
 * syscall exits. */
#ifndef SONDE_TCP_BYTES_H
#define SONDE_TCP_BYTES_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sonde.h"
#ifndef SONDE_MAP_TCP_BYTES
#error "define SONDE_MAP_TCP_BYTES (lib/maps.bpf.h) before including lib/tcp_bytes.h"
#endif
#include "lib/maps.bpf.h"

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
