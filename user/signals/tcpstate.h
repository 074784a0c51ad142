/* TCP health per service, from tcpstate.bpf.c's per-tgid counters:
 * connections, connect failures and latency, resets, retransmissions,
 * smoothed RTT at close, open connections and listener drops. */
#ifndef SONDE_TCPSTATE_H
#define SONDE_TCPSTATE_H

#include <stddef.h>

#include "metrics/metrics.h"

struct tcpstate;

/* Registers the families (cardinality cap max_series each). */
int tcpstate__new(struct tcpstate **out, struct metrics *m, size_t max_series);
void tcpstate__free(struct tcpstate *t);
/* Moves the kernel's counts (map fd from optional__tcp_stats_fd; -1: nothing
 * to do) into the registry. Called before each render. */
void tcpstate__collect(struct tcpstate *t, int stats_fd);

#endif
