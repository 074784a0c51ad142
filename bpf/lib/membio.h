/* Binding an SSL that runs over a BIO pair (gRPC core: the SSL reads and
 * writes a memory BIO, the application moves the ciphertext between the
 * pair's other end and the socket itself, so no syscall happens inside an
 * SSL call and sock.bpf.c's tls_bind_call never names the socket).
 *
 * The binding is by content, never by proximity alone:
 *  - sock.bpf.c notes, for each receive of a process that made a BIO pair,
 *    the first MEMBIO_HEAD bytes the thread received and from which socket
 *    (membio_recv, one entry per thread: the last receive);
 *  - tls.bpf.c sees the ciphertext handed to the network end of an SSL's
 *    pair (BIO_write) and binds that SSL to the socket only when those
 *    bytes are the ones the same thread last received, byte for byte
 *    (the first MEMBIO_HEAD, at least MEMBIO_MIN). Any other case is
 *    counted and binds nothing.
 * Types of the two shared maps (lib/maps.bpf.h, SONDE_MAP_MEMBIO). */
#ifndef SONDE_MEMBIO_H
#define SONDE_MEMBIO_H

#include "vmlinux.h"

#define MEMBIO_HEAD 32		/* bytes compared */
#define MEMBIO_MIN 16		/* fewer received bytes than this bind nothing */

struct membio_recv {
	__u64 sk;
	__s32 fd;
	__u32 len;		/* bytes of head[] that are valid */
	__u8 head[MEMBIO_HEAD];
};

#endif
