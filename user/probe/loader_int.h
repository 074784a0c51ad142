/* Inside the loader: the state every BPF object's user side in probe/
 * shares (the probe registry, the rings), and the entry points loader.c
 * calls in order. Not for use outside user/probe/. */
#ifndef SONDE_PROBE_LOADER_INT_H
#define SONDE_PROBE_LOADER_INT_H

#include "probe/loader.h"
#include "util/log.h"

#define MAX_PROBES 64

struct loader {
	struct sock_bpf *sock;		/* sock.c */
	struct tcp_bpf *tcp;		/* tcp.c; NULL when tcp_* hooks fell back to syscalls */
	struct tcpstate_bpf *tcpstate;	/* optional.c; NULL when off or it could not load */
	struct sched_bpf *sched;	/* optional.c; NULL when off or it could not load */
	bool tcp_sendpage;		/* tcp_sendpage hooked too (kernels before 6.5) */
	bool args_in_task;		/* syscall args in task storage (else the args hash) */
	/* Where payload is captured (sock.c): socket tracepoints, fexit on the
	 * TCP send/receive functions, or syscall tracepoints. */
	enum capture_tier { TIER_SYSCALL = 0, TIER_SOCKET = 1, TIER_FENTRY = 2 } tier;
	/* Per-process TCP bytes of calls with a data record are counted from
	 * the record (bpf/sock.bpf.c bytes_unrecorded): socket and fentry
	 * tiers when no tcp.bpf.c counts them all. */
	bool bytes_in_records;
	struct ring_set *rings;
	uint32_t ring_bytes;		/* per CPU */
	struct probe_info probes[MAX_PROBES];
	size_t nprobes;
	int ncpus;
};

/* Whether the running kernel's BTF has name of kind (BTF_KIND_FUNC,
 * BTF_KIND_TYPEDEF, ...). */
bool loader__kernel_has(const char *name, int kind);
/* The capture tier attaches no syscall tracepoint. */
static inline bool loader__no_syscall_hooks(const struct loader *l)
{
	return l->tier != TIER_SYSCALL;
}
/* A new entry in the registry behind sonde_probe_info and /healthz
 * (mode "unavailable" until set); NULL when full. */
struct probe_info *loader__probe_add(struct loader *l, const char *hook, bool required);
/* The last warnings libbpf printed (the verifier's log): forgotten before a
 * load, logged when it finally fails. */
void loader__libbpf_clear(void);
void loader__libbpf_dump_at(enum log_level level, const char *what);
void loader__libbpf_dump(const char *what);

/* tcp.c: tcp.bpf.c in the cheapest mode that works, reported per hook. */
int tcp__probe(struct loader *l, const struct loader_opts *o);
/* sock.c: sock.bpf.c loaded (syscall-argument store chosen), its rings
 * created and every program attached, each reported. */
int sock__open(struct loader *l, const struct loader_opts *o);
/* optional.c: tcpstate.bpf.c and sched.bpf.c, when asked for; never fatal. */
void optional__open(struct loader *l, const struct loader_opts *o);

#endif
