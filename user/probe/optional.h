/* User side of the optional tracers (tcpstate.bpf.c, sched.bpf.c): their
 * maps, read by signals/tcpstate.c and signals/sched.c. */
#ifndef SONDE_PROBE_OPTIONAL_H
#define SONDE_PROBE_OPTIONAL_H

#include "probe/loader.h"

/* fd of tcpstate.bpf.c's per-tgid stats (key tgid, value sonde_tcp_stats),
 * -1 when that object is not loaded */
int optional__tcp_stats_fd(const struct loader *l);
/* fd of sched.bpf.c's per-CPU run-queue stats (key tgid, value
 * sonde_runq_stats), -1 when not loaded or without --runqueue-histogram */
int optional__runq_fd(const struct loader *l);
/* A new fd to read sched.bpf.c's task iterator from (struct sonde_runq_task
 * records until EOF; the caller closes it), -1 when not loaded */
int optional__runq_iter_open(const struct loader *l);

#endif
