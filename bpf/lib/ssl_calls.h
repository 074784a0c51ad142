/* The thread's OpenSSL call in progress, shared by tls.bpf.c (uprobes on
 * SSL_read/SSL_write/handshake, which insert and delete) and sock.bpf.c
 * (the syscalls made inside the call, which bind it to its socket). The
 * loader gives both objects the same map fd. */
#ifndef SONDE_SSL_CALLS_H
#define SONDE_SSL_CALLS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum ssl_call_op {
	SSL_CALL_READ = 1,
	SSL_CALL_WRITE = 2,
	SSL_CALL_HANDSHAKE = 3,	/* SSL_do_handshake/SSL_connect/SSL_accept: bind only */
};

struct ssl_call {
	__u64 ssl;		/* SSL * */
	__u64 buf;		/* plaintext buffer of the caller */
	__u64 lenp;		/* _ex variants: size_t * of the byte count; else 0 */
	__u64 enter_ns;
	__u64 sk;		/* set by sock.bpf.c when bound */
	__s32 fd;		/* set by sock.bpf.c when bound */
	__u8 op;		/* enum ssl_call_op */
	__u8 bound;		/* a syscall on a TCP socket happened inside the call */
	__u8 pad[2];
};

/* key: pid_tgid (the thread); value: struct ssl_call. Inserted at SSL_*
 * entry, deleted at its return. LRU, and collected by the daemon for
 * threads that no longer exist, because a thread killed inside SSL_read
 * never returns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

#endif
