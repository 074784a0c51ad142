/* schedstat collector: per-CPU run and wait time and timeslices from
 * /proc/schedstat (fields 7-9 of each "cpuN" line, in ns), as node_exporter
 * 1.5 exports them. Kernels without CONFIG_SCHEDSTATS have no such file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

#define SCHED_CPUS 8192

struct cpu_sched {
	char cpu[12];
	double run, wait, slices;
};

static struct cpu_sched cpus[SCHED_CPUS];

int host_schedstat__collect(struct host_w *w)
{
	static int fd = -1;
	static char buf[1 << 21];
	static const struct { const char *name, *help; size_t off; } fam[] = {
		{ "node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process.",
		  offsetof(struct cpu_sched, run) },
		{ "node_schedstat_timeslices_total", "Number of timeslices executed by CPU.",
		  offsetof(struct cpu_sched, slices) },
		{ "node_schedstat_waiting_seconds_total", "Number of seconds spent by processing waiting for this CPU.",
		  offsetof(struct cpu_sched, wait) },
	};
	static int absent;
	char *cur = buf, *line, *f[10];
	int n = 0;
	ssize_t len;

	/* the live kernel's file exists from boot or never (CONFIG_SCHEDSTATS):
	 * a failed open is not tried again every scrape */
	if (absent && host_util__procfs_live())
		return -ENOENT;
	len = host_util__read(&fd, "/proc/schedstat", buf, sizeof(buf));
	if (len == -ENOENT && host_util__procfs_live())
		absent = 1;
	if (len < 0)
		return (int)len;
	while ((line = host_util__line(&cur)) && n < SCHED_CPUS) {
		char *end;

		if (strncmp(line, "cpu", 3) || host_util__fields(line, f, 10) != 10)
			continue;
		if (strlen(f[0] + 3) >= sizeof(cpus[0].cpu))
			continue;
		strcpy(cpus[n].cpu, f[0] + 3);
		cpus[n].run = (double)strtoull(f[7], &end, 10) / 1e9;
		if (*end)
			return -EINVAL;
		cpus[n].wait = (double)strtoull(f[8], &end, 10) / 1e9;
		if (*end)
			return -EINVAL;
		cpus[n].slices = (double)strtoull(f[9], &end, 10);
		if (*end)
			return -EINVAL;
		n++;
	}
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]) && n; k++) {
		host_util__family(w, fam[k].name, HOST_COUNTER, fam[k].help);
		for (int i = 0; i < n; i++) {
			host_util__begin(w, fam[k].name);
			host_util__label(w, "cpu", cpus[i].cpu);
			host_util__end(w, *(const double *)((const char *)&cpus[i] + fam[k].off));
		}
	}
	return 0;
}
