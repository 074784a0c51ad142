/* Runs the host collectors for one /metrics scrape and reports, per
 * collector, whether it worked and what it cost. */
#include <errno.h>
#include <time.h>

#include "host/collectors.h"
#include "host/host.h"

static const struct {
	const char *name;
	int (*collect)(struct host_w *w);
} collectors[] = {
	{ "arp", host_arp__collect },
	{ "bonding", host_bonding__collect },
	{ "conntrack", host_conntrack__collect },
	{ "cpu", host_cpu__collect },
	{ "diskstats", host_diskstats__collect },
	{ "edac", host_edac__collect },
	{ "entropy", host_entropy__collect },
	{ "filefd", host_filefd__collect },
	{ "filesystem", host_filesystem__collect },
	{ "hwmon", host_hwmon__collect },
	{ "loadavg", host_loadavg__collect },
	{ "mdadm", host_mdadm__collect },
	{ "meminfo", host_meminfo__collect },
	{ "netclass", host_netclass__collect },
	{ "netdev", host_netdev__collect },
	{ "netstat", host_netstat__collect },
	{ "nvme", host_nvme__collect },
	{ "os", host_os__collect },
	{ "powersupplyclass", host_powersupplyclass__collect },
	{ "pressure", host_pressure__collect },
	{ "schedstat", host_schedstat__collect },
	{ "sockstat", host_sockstat__collect },
	{ "softnet", host_softnet__collect },
	{ "stat", host_stat__collect },
	{ "thermal_zone", host_thermal_zone__collect },
	{ "time", host_time__collect },
	{ "timex", host_timex__collect },
	{ "uname", host_uname__collect },
	{ "vmstat", host_vmstat__collect },
	/* last: it leaves out families the page already has */
	{ "textfile", host_textfile__collect },
};
#define NCOLLECTORS (sizeof(collectors) / sizeof(collectors[0]))

static int accounting;
static double cpu_sum[NCOLLECTORS];

void host__account(int on)
{
	accounting = on;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void host__print_cost(FILE *f, long runs)
{
	double total = 0;

	for (size_t i = 0; i < NCOLLECTORS; i++) {
		fprintf(f, "%s\t%.1f\n", collectors[i].name, cpu_sum[i] / (double)runs * 1e6);
		total += cpu_sum[i];
	}
	fprintf(f, "total\t%.1f\n", total / (double)runs * 1e6);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int host__collect(struct metrics_buf *out)
{
	struct host_w w = { .buf = out };
	size_t start = out->len, i;
	uint64_t ns[NCOLLECTORS];	/* whole: printed without snprintf */
	int ok[NCOLLECTORS];

	for (i = 0; i < NCOLLECTORS; i++) {
		size_t mark = out->len;
		uint64_t t0 = now_ns();
		double c0 = accounting ? cpu_s() : 0;

		ok[i] = collectors[i].collect(&w) == 0;
		ns[i] = now_ns() - t0;
		if (accounting)
			cpu_sum[i] += cpu_s() - c0;
		if (w.err)
			break;
		if (!ok[i]) {	/* no half-written families */
			out->len = mark;
			if (out->data)
				out->data[mark] = '\0';
		}
	}
	host_util__family(&w, "sonde_host_collector_success", HOST_GAUGE,
			  "Whether the node_* host collector succeeded in the last scrape (1) or its source was unavailable (0).");
	for (i = 0; i < NCOLLECTORS && !w.err; i++) {
		host_util__begin(&w, "sonde_host_collector_success");
		host_util__label(&w, "collector", collectors[i].name);
		host_util__end(&w, ok[i]);
	}
	host_util__family(&w, "sonde_host_collector_duration_seconds", HOST_GAUGE,
			  "Wall time the node_* host collector took in the last scrape.");
	for (i = 0; i < NCOLLECTORS && !w.err; i++) {
		host_util__begin(&w, "sonde_host_collector_duration_seconds");
		host_util__label(&w, "collector", collectors[i].name);
		host_util__end_ns(&w, ns[i]);
	}
	if (w.err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		return w.err;
	}
	return 0;
}
