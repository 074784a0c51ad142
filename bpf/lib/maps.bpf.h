/* Maps shared by several BPF objects, each defined once, here (the way
 * Cilium's conntrack_map.h is). The loader creates each map with one object
 * and hands its fd to the others (bpf_map__reuse_fd, through the typed
 * loader__*_fd() accessors), never by name.
 *
 * libbpf creates every map of an object's .maps section, even one that no
 * program references. An object therefore defines SONDE_MAP_<NAME> for each
 * map it uses before its first include of this header (lib/tcp_bytes.h and
 * lib/tracectx.h include it too); the others are left out of its ELF. */
#ifndef SONDE_MAPS_BPF_H
#define SONDE_MAPS_BPF_H

#if !defined(SONDE_MAP_RINGS) && !defined(SONDE_MAP_CONNS) && !defined(SONDE_MAP_SSL_CALLS) && \
	!defined(SONDE_MAP_THREAD_CTX) && !defined(SONDE_MAP_TCP_BYTES) && !defined(SONDE_MAP_MEMBIO)
#error "define the SONDE_MAP_* of the maps this object uses before including lib/maps.bpf.h"
#endif

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sonde.h"
#include "lib/ssl_calls.h"
#include "lib/membio.h"

#ifdef SONDE_MAP_RINGS
/* One ring of records per CPU: a single shared ring costs a cross-CPU
 * spinlock and cache-line transfers on every record (measured ~300-600 ns
 * per record with two busy CPUs). The daemon merges them by ktime.
 * key: CPU id; value: a ring buffer map. max_entries is set to the CPU
 * count by the loader. Inserted by the daemon (user/probe/ring.c creates
 * every ring, size set there, before any program is attached); never
 * deleted, freed with the map. Written to by sock.bpf.c (data and close
 * records), tls.bpf.c (TLS plaintext) and inject.bpf.c (client trace
 * context). */
struct ring_inner {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 21);
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);		/* set to the CPU count by the loader */
	__type(key, __u32);
	__array(values, struct ring_inner);
} rings SEC(".maps");
#endif

#ifdef SONDE_MAP_CONNS
/* key: tgid << 32 | fd; value: struct sonde_conn.
 * Inserted by sock.bpf.c on accept/connect exit (syscall tier) or on the
 * first send/receive of an untracked socket; deleted by it on close(2)
 * (socket and fentry tiers: the state change close(2) makes, or the
 * socket's destruction). LRU because exit(2) closes fds unseen. The daemon sets SONDE_CONN_IGNORED on connections
 * that are not HTTP; tls.bpf.c only looks connections up. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sonde_conn);
} conns SEC(".maps");
#endif

#ifdef SONDE_MAP_SSL_CALLS
/* The thread's OpenSSL call in progress (types in lib/ssl_calls.h).
 * key: pid_tgid (the thread); value: struct ssl_call. Inserted by tls.bpf.c
 * at SSL_* entry, deleted by it at the return; sock.bpf.c binds the
 * syscalls made inside the call to it (writes fd, sk, bound). LRU, and
 * collected by the daemon for threads that no longer exist, because a
 * thread killed inside SSL_read never returns. The loader shrinks it to 1
 * entry when TLS tracing is off. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");
#endif

#ifdef SONDE_MAP_MEMBIO
/* Processes that made a BIO pair (BIO_new_bio_pair: gRPC core's TLS), whose
 * SSLs are bound to sockets by content (lib/membio.h). key: tgid; value:
 * unused. Inserted by tls.bpf.c; read by sock.bpf.c at each receive.
 * LRU, and collected by the daemon for processes that no longer exist. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} membio_tgids SEC(".maps");

/* The last receive of each thread of those processes (lib/membio.h).
 * key: pid_tgid; value: struct membio_recv. Written by sock.bpf.c,
 * consumed (deleted) by tls.bpf.c when it binds. LRU, collected by the
 * daemon for threads that no longer exist. The loader shrinks both maps
 * to 1 entry when TLS tracing is off. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct membio_recv);
} membio_recv SEC(".maps");
#endif

#ifdef SONDE_MAP_THREAD_CTX
/* key: pid_tgid; value: struct sonde_thread_ctx. Written by sock.bpf.c
 * (lib/tracectx.h) when a server thread reads the first bytes of a
 * request, deactivated when it writes on that server socket; read by
 * inject.bpf.c. Never deleted: LRU, threads die without telling. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sonde_thread_ctx);
} thread_ctx SEC(".maps");
#endif

#ifdef SONDE_MAP_TCP_BYTES
/* Per-process TCP byte totals, counted by tcp.bpf.c (fentry/kprobe on
 * tcp_sendmsg/tcp_recvmsg) or, when neither attaches, by sock.bpf.c at the
 * syscall exits (lib/tcp_bytes.h). key: tgid; value: struct
 * sonde_tcp_bytes. Inserted on a process's first counted send/receive;
 * deleted by the daemon when it collects (lookup-and-delete); entries of
 * exited processes age out (LRU). The loader creates it with tcp.bpf.c
 * when that loads, and sock.bpf.c reuses it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct sonde_tcp_bytes);
} tcp_bytes SEC(".maps");
#endif

#endif
