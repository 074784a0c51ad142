/* TLS tracer (tls.bpf.c): loads it against the socket tracer's maps, probes
 * every OpenSSL found by libwatch (shared libssl.so* and static executables)
 * and keeps its per-thread/per-SSL state from leaking. */
#ifndef SONDE_TLS_USER_H
#define SONDE_TLS_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe/libwatch.h"
#include "metrics/metrics.h"

struct tls_opts {
	uint32_t self_tgid;
	uint32_t filter_tgid;		/* 0 = all */
	uint32_t capture_bytes;
	uint16_t filter_port;		/* 0 = all */
	/* sock.bpf.c's maps, shared (bpf/lib/maps.bpf.h): sock_probe__rings_fd,
	 * sock_probe__conns_fd, sock_probe__ssl_calls_fd,
	 * sock_probe__membio_tgids_fd, sock_probe__membio_recv_fd */
	int rings_fd;
	int conns_fd;
	int ssl_calls_fd;
	int membio_tgids_fd;
	int membio_recv_fd;
};

struct tls;

/* Registers the families, loads tls.bpf.c, attaches the exec hook and
 * registers libssl.so* and static SSL_write executables with w (shared
 * with other uprobe users; the caller runs libwatch__scan_all once every
 * user has registered, and the periodic rescans). On error the agent runs
 * on without TLS (the caller logs). */
int tls__open(struct tls **out, const struct tls_opts *o, struct metrics *m, struct libwatch *w);
void tls__free(struct tls *t);
/* From the event loop's timer: processes that exec'd are scanned (on the
 * shared libwatch) 100 ms and 1 s later; state of dead threads collected. */
void tls__tick(struct tls *t, uint64_t now_ns);
/* Takes the execs reported so far (their library scans become due; each
 * exec'd process is named again at its next identity lookup). The agent
 * calls it before handing over data records, so that an exec'd image's
 * first requests are never named after the image before it. */
void tls__poll_execs(struct tls *t);
/* Readable when a process exec'd (the agent's loop then calls tls__tick
 * at once, not at its next timer tick); -1 without TLS tracing. */
int tls__exec_fd(const struct tls *t);
/* Exec'd processes wait for their library scan: the loop keeps its short
 * period meanwhile, so the uprobes come before their first TLS call. */
bool tls__pending(const struct tls *t);
/* OpenSSL files probed so far (for the start-up log) */
int tls__files(const struct tls *t);
/* the exec hook attached (else new processes wait for the periodic rescan) */
bool tls__exec_hooked(const struct tls *t);
/* Before each render: counters and sonde_tls_probe_info. */
void tls__collect(struct tls *t);

#endif
