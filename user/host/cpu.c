/* cpu collector: per-CPU time by mode from /proc/stat, isolated CPUs, and
 * thermal throttle counts where the hardware reports them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/collectors.h"

#define CPU_MAX 4096		/* CPUs beyond this index are not reported */
#define NFIELDS 10		/* user nice system idle iowait irq softirq steal guest guest_nice */
#define JUMP_BACK_S 3.0		/* an idle drop this large is a hotplug: start over */

/* Highest value reported so far per CPU and field: /proc/stat's idle and
 * iowait can step backwards a little and counters must not (node_exporter
 * 1.5 does the same). Bounded by CPU_MAX, not by history. */
static double last[CPU_MAX][NFIELDS];
static double cur[CPU_MAX][NFIELDS];
static unsigned char seen[CPU_MAX];

static const char *const modes[] = { "user", "nice", "system", "idle", "iowait", "irq",
				     "softirq", "steal" };

static void cpu_label(struct host_w *w, int cpu)
{
	char s[12];

	snprintf(s, sizeof(s), "%d", cpu);
	host_util__label(w, "cpu", s);
}

static int parse(const char *text, double hz, int *ncpu)
{
	int max = -1;

	memset(seen, 0, sizeof(seen));
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *p;
		char *end;
		double v[NFIELDS] = { 0 };
		long cpu;

		if (strncmp(l, "cpu", 3) || l[3] < '0' || l[3] > '9')
			continue;
		cpu = strtol(l + 3, &end, 10);
		if (cpu < 0 || cpu >= CPU_MAX)
			continue;
		p = end;
		for (int i = 0; i < NFIELDS; i++, p = end) {
			v[i] = (double)strtoull(p, &end, 10) / hz;
			if (end == p)
				break;	/* older kernels have fewer fields */
		}
		if (last[cpu][3] - v[3] >= JUMP_BACK_S)
			memset(last[cpu], 0, sizeof(last[cpu]));
		for (int i = 0; i < NFIELDS; i++) {
			if (v[i] > last[cpu][i])
				last[cpu][i] = v[i];
			cur[cpu][i] = last[cpu][i];
		}
		seen[cpu] = 1;
		if (cpu > max)
			max = (int)cpu;
	}
	*ncpu = max + 1;
	return max < 0 ? -EINVAL : 0;
}

/* node_cpu_isolated{cpu} 1 for each CPU in /sys/devices/system/cpu/isolated
 * ("1,3-5"), the family only when there is one. */
static void isolated(struct host_w *w)
{
	static int fd = -1;
	char buf[4096], *p = buf, *end;
	int any = 0;

	if (host_util__read(&fd, "/sys/devices/system/cpu/isolated", buf, sizeof(buf)) <= 0)
		return;
	while (*p >= '0' && *p <= '9') {
		long a = strtol(p, &end, 10), b = a;

		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long c = a; c <= b && c < CPU_MAX; c++) {
			if (!any++)
				host_util__family(w, "node_cpu_isolated", HOST_GAUGE,
						  "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.");
			host_util__begin(w, "node_cpu_isolated");
			cpu_label(w, (int)c);
			host_util__end(w, 1);
		}
		p = *end == ',' ? end + 1 : end;
	}
}

static int sys_u64(int cpu, const char *file, uint64_t *v)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/%s", cpu, file);
	return host_util__read_u64(NULL, path, v);
}

/* Thermal throttle counters, per core (deduplicated over SMT siblings) and
 * per package; absent on most VMs, which is checked once. */
static void throttles(struct host_w *w, int ncpu)
{
	static int present = -1;
	uint64_t core, pkg, v;
	char s[24], path[512];
	int any;

	if (present < 0)
		present = access(host_util__path("/sys/devices/system/cpu/cpu0/thermal_throttle",
						   path, sizeof(path)), F_OK) == 0;
	if (!present)
		return;
	any = 0;
	for (int c = 0; c < ncpu; c++) {
		int dup = 0;

		if (!seen[c] || sys_u64(c, "topology/core_id", &core) ||
		    sys_u64(c, "topology/physical_package_id", &pkg) ||
		    sys_u64(c, "thermal_throttle/core_throttle_count", &v))
			continue;
		/* the first CPU of each (package, core) speaks for the core */
		for (int d = 0; d < c && !dup; d++) {
			uint64_t dc, dp;

			dup = seen[d] && !sys_u64(d, "topology/core_id", &dc) &&
			      !sys_u64(d, "topology/physical_package_id", &dp) && dc == core && dp == pkg;
		}
		if (dup)
			continue;
		if (!any++)
			host_util__family(w, "node_cpu_core_throttles_total", HOST_COUNTER,
					  "Number of times this CPU core has been throttled.");

		host_util__begin(w, "node_cpu_core_throttles_total");
		snprintf(s, sizeof(s), "%llu", (unsigned long long)core);
		host_util__label(w, "core", s);
		snprintf(s, sizeof(s), "%llu", (unsigned long long)pkg);
		host_util__label(w, "package", s);
		host_util__end_u64(w, v);
	}
	any = 0;
	for (int c = 0; c < ncpu; c++) {
		int dup = 0;

		if (!seen[c] || sys_u64(c, "topology/physical_package_id", &pkg) ||
		    sys_u64(c, "thermal_throttle/package_throttle_count", &v))
			continue;
		for (int d = 0; d < c && !dup; d++) {
			uint64_t dp;

			dup = seen[d] && !sys_u64(d, "topology/physical_package_id", &dp) && dp == pkg;
		}
		if (dup)
			continue;
		if (!any++)
			host_util__family(w, "node_cpu_package_throttles_total", HOST_COUNTER,
					  "Number of times this CPU package has been throttled.");
		host_util__begin(w, "node_cpu_package_throttles_total");
		snprintf(s, sizeof(s), "%llu", (unsigned long long)pkg);
		host_util__label(w, "package", s);
		host_util__end_u64(w, v);
	}
}

int host_cpu__collect(struct host_w *w)
{
	static double hz;
	const char *text;
	size_t len;
	int ncpu, err = host_util__proc_stat(w, &text, &len);

	if (err)
		return err;
	if (!hz)
		hz = sysconf(_SC_CLK_TCK) > 0 ? (double)sysconf(_SC_CLK_TCK) : 100;
	err = parse(text, hz, &ncpu);
	if (err)
		return err;
	host_util__family(w, "node_cpu_seconds_total", HOST_COUNTER,
			  "Seconds the CPUs spent in each mode.");
	for (int c = 0; c < ncpu; c++) {
		if (!seen[c])
			continue;
		for (int m = 0; m < 8; m++) {
			host_util__begin(w, "node_cpu_seconds_total");
			cpu_label(w, c);
			host_util__label(w, "mode", modes[m]);
			host_util__end(w, cur[c][m]);
		}
	}
	host_util__family(w, "node_cpu_guest_seconds_total", HOST_COUNTER,
			  "Seconds the CPUs spent in guests (VMs) for each mode.");
	for (int c = 0; c < ncpu; c++) {
		if (!seen[c])
			continue;
		for (int m = 0; m < 2; m++) {
			host_util__begin(w, "node_cpu_guest_seconds_total");
			cpu_label(w, c);
			host_util__label(w, "mode", modes[m]);
			host_util__end(w, cur[c][8 + m]);
		}
	}
	isolated(w);
	throttles(w, ncpu);
	return 0;
}
