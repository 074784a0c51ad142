/* User side of sock.bpf.c (socket tracer): its maps and counters, for the
 * agent and the objects that share its maps (tls.c, inject.c). */
#ifndef SONDE_PROBE_SOCK_H
#define SONDE_PROBE_SOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "probe/loader.h"
#include "sonde.h"

/* sum over CPUs of counter idx */
uint64_t sock_probe__counter(const struct loader *l, enum sonde_counter idx);
/* The maps sock.bpf.c shares with other objects (bpf/lib/maps.bpf.h), for
 * bpf_map__reuse_fd before those load. */
/* fd of the per-CPU rings map (key CPU, value a ring buffer): tls, inject */
int sock_probe__rings_fd(const struct loader *l);
/* fd of the kernel connection table (key tgid << 32 | fd, value sonde_conn): tls */
int sock_probe__conns_fd(const struct loader *l);
/* fd of the OpenSSL calls in progress (key pid_tgid, value struct ssl_call): tls */
int sock_probe__ssl_calls_fd(const struct loader *l);
/* fds of the processes with BIO pairs and their threads' last receives
 * (bpf/lib/membio.h): tls */
int sock_probe__membio_tgids_fd(const struct loader *l);
int sock_probe__membio_recv_fd(const struct loader *l);
/* fd of the per-thread server trace context (key pid_tgid, value
 * sonde_thread_ctx): inject */
int sock_probe__thread_ctx_fd(const struct loader *l);
/* The TCP bytes of a call whose data record reaches the daemon are in
 * tcp_bytes only when this is false: when true, the daemon counts them
 * from the records (self__record_bytes), the kernel the rest. */
bool sock_probe__bytes_in_records(const struct loader *l);
/* Tells the kernel to stop reporting a connection that speaks no supported
 * protocol (when fd still holds socket sk). */
void sock_probe__ignore_conn(struct loader *l, uint32_t tgid, int32_t fd, uint64_t sk);
/* Undoes sock_probe__ignore_conn (when fd still holds socket sk). */
void sock_probe__unignore_conn(struct loader *l, uint32_t tgid, int32_t fd, uint64_t sk);
/* Seeds sockets that predate the agent; then, each call, turns the BPF side's
 * register-recovery path off once none of them is left. */
void sock_probe__seed_preexisting(struct loader *l, const struct loader_opts *o);
void sock_probe__preexisting_tick(struct loader *l);
/* Deletes syscall-argument entries of threads that no longer exist (a
 * thread killed inside a syscall never reaches its exit hook). Returns the
 * number removed. */
int sock_probe__gc_args(struct loader *l);
/* fd of the per-process TCP byte map (key tgid, value sonde_tcp_bytes) */
int sock_probe__tcp_bytes_fd(const struct loader *l);
/* Socket I/O whose payload was not read, by enum sonde_unseen (sums over
 * CPUs); negative errno when the map cannot be read. */
int sock_probe__unseen(const struct loader *l, struct sonde_unseen_count out[SONDE_UNSEEN__MAX]);
/* Payload capture runs at the socket-level hooks (no syscall tracepoints). */
bool sock_probe__socket_tier(const struct loader *l);

#endif
