/* Loads and attaches sonde's BPF objects: mounts tracefs when missing, picks
 * an attach mode per hook by probing the running kernel, reports each hook. */
#ifndef SONDE_LOADER_H
#define SONDE_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sonde.h"

struct loader_opts {
	uint32_t self_tgid;
	uint32_t filter_tgid;		/* 0 = all */
	uint16_t filter_port;		/* 0 = all */
	uint32_t capture_bytes;
	uint32_t ring_bytes;		/* total for all CPUs; split per CPU, each >= 256 KiB */
	enum loader_args_store { ARGS_AUTO = 0, ARGS_TASK = 1, ARGS_HASH = 2 } args_store;
	/* For hooks with several implementations: auto picks the cheapest
	 * that works; a forced mode that cannot attach fails loader__open.
	 * fentry/kprobe force the tcp_* byte hooks; socket forces the
	 * socket-level capture tier; tracepoint forces syscall tracepoints
	 * for both. */
	enum loader_attach_mode {
		ATTACH_AUTO = 0, ATTACH_FENTRY = 1, ATTACH_KPROBE = 2, ATTACH_TRACEPOINT = 3,
		ATTACH_SOCKET = 4,
	} attach_mode;
	bool no_tcp_health;		/* leave out tcpstate.bpf.c (TCP health per process) */
	bool no_sched;			/* leave out sched.bpf.c (run-queue wait) */
	bool runq_histogram;		/* also its scheduler hooks (--runqueue-histogram) */
	bool no_inject;			/* no kernel trace context (sock.bpf.c trace_ctx_on) */
	bool tls;			/* sock.bpf.c binds SSL calls to sockets (tls.bpf.c runs) */
};

struct probe_info {
	char hook[40];			/* e.g. "sys_enter_read", "tcp_sendmsg" */
	char mode[16];			/* "fentry", "kprobe", "tracepoint", "unavailable" */
	bool required;			/* the agent is unhealthy without it */
	bool attached;
	char detail[160];		/* why other modes were not used */
};

struct loader;

int loader__open(struct loader **out, const struct loader_opts *o);
void loader__close(struct loader *l);
/* The per-CPU event rings (created and registered before any attach). */
struct ring_set *loader__rings(const struct loader *l);
/* bytes of each per-CPU ring */
uint32_t loader__ring_bytes(const struct loader *l);
int loader__ncpus(const struct loader *l);
size_t loader__probes(const struct loader *l, const struct probe_info **out);
/* Reports a hook attached by another module (sonde_probe_info, /healthz). */
void loader__add_probe(struct loader *l, const char *hook, const char *mode, bool attached,
		       const char *detail);
/* every required hook attached */
bool loader__healthy(const struct loader *l);

#endif
