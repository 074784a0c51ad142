/* Host collectors: node_exporter-compatible node_* metrics read from /proc
 * and /sys, written straight into the /metrics page. */
#ifndef SONDE_HOST_H
#define SONDE_HOST_H

#include "metrics/metrics.h"

/*
 * Appends the node_* families of every host collector (cpu, meminfo,
 * loadavg, stat, vmstat, diskstats, filesystem, netdev, netstat, sockstat,
 * pressure, uname, time, filefd, entropy, conntrack, softnet, os) and
 * sonde_host_collector_{success,duration_seconds}{collector} as Prometheus
 * text 0.0.4. Names, types, labels and filters are node_exporter 1.5's
 * defaults. A collector whose source is missing contributes only
 * success 0. Single-threaded (static buffers; some fds stay open).
 * Returns 0, or -ENOMEM with out left as it was.
 */
int host__collect(struct metrics_buf *out);

#endif
