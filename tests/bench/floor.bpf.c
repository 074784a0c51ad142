// SPDX-License-Identifier: GPL-2.0
/* Benchmark floor: the same syscall tracepoints as bpf/sock.bpf.c doing
 * nothing but a per-CPU count, to separate tracepoint cost from sonde's own
 * work. Built for build/sonde-floor (tests/bench/floor.c) only. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int hit(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &zero);

	if (v)
		*v += 1;
	return 0;
}

#define FLOOR(name)                                                            \
	SEC("tracepoint/syscalls/sys_enter_" #name)                           \
	int floor_enter_##name(void *ctx) { return hit(); }                    \
	SEC("tracepoint/syscalls/sys_exit_" #name)                            \
	int floor_exit_##name(void *ctx) { return hit(); }

FLOOR(read)
FLOOR(readv)
FLOOR(recvfrom)
FLOOR(recvmsg)
FLOOR(write)
FLOOR(writev)
FLOOR(sendto)
FLOOR(sendmsg)
FLOOR(sendfile64)
FLOOR(connect)

/* sock.bpf.c needs only these sides of accept and close. */
SEC("tracepoint/syscalls/sys_exit_accept")
int floor_exit_accept(void *ctx) { return hit(); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int floor_exit_accept4(void *ctx) { return hit(); }
SEC("tracepoint/syscalls/sys_enter_close")
int floor_enter_close(void *ctx) { return hit(); }
