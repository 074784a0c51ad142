/* Host collectors: node_exporter-compatible node_* metrics read from /proc
 * and /sys, written straight into the /metrics page. */
#ifndef SONDE_HOST_H
#define SONDE_HOST_H

#include <stdio.h>

#include "metrics/metrics.h"

/* Where the host's trees are (node_exporter's --path.* flags): a DaemonSet
 * mounts the host's /proc at /host/proc, its / at /host/root. NULL or ""
 * keeps the default. */
struct host_opts {
	const char *procfs;		/* --path.procfs, default /proc */
	const char *sysfs;		/* --path.sysfs, default /sys */
	const char *rootfs;		/* --path.rootfs, default / */
	const char *udev_data;		/* --path.udev.data, default /run/udev/data */
	const char *textfile_dir;	/* --collector.textfile.directory, default none */
};

#define HOST_PATH_MAX 200

/* Sets the paths before the first host__collect; later calls only affect
 * files not opened yet. -ENAMETOOLONG (nothing changed) for a path over
 * HOST_PATH_MAX bytes. */
int host__configure(const struct host_opts *o);

/*
 * Appends the node_* families of every host collector (arp, bonding,
 * conntrack, cpu, diskstats, entropy, filefd, filesystem, loadavg, mdadm,
 * hwmon, edac, nvme, schedstat, meminfo, netclass, netdev, netstat, os, powersupplyclass,
 * pressure, sockstat, softnet,
 * stat, thermal_zone, time, timex, uname, vmstat, then textfile) and
 * sonde_host_collector_{success,duration_seconds}{collector} as Prometheus
 * text 0.0.4. Names, types, labels and filters are node_exporter 1.5's
 * defaults. A collector whose source is missing contributes only
 * success 0. Single-threaded (static buffers; some fds stay open).
 * Returns 0, or -ENOMEM with out left as it was.
 */
int host__collect(struct metrics_buf *out);

/* Cost accounting for the bench (tests/host/host_dump.c): adds each
 * collector's thread CPU time over the host__collect calls since the first
 * one and prints "collector<TAB>mean us" lines, then "total". It costs
 * two clock_gettime syscalls per collector, so the agent leaves it off. */
void host__print_cost(FILE *f, long runs);
void host__account(int on);

#endif
