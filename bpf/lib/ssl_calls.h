/* Types of the ssl_calls map (lib/maps.bpf.h): the thread's OpenSSL call in
 * progress, written by tls.bpf.c (uprobes on SSL_read/SSL_write/handshake)
 * and sock.bpf.c (the syscalls made inside the call bind it to its socket). */
#ifndef SONDE_SSL_CALLS_H
#define SONDE_SSL_CALLS_H

#include "vmlinux.h"

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

#endif
