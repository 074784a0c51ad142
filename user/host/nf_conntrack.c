/* conntrack collector: netfilter connection tracking table size, limit and
 * the per-CPU statistics of /proc/net/stat/nf_conntrack summed over CPUs
 * (gauges, as node_exporter 1.5 exposes them). Needs nf_conntrack loaded. */
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

static const struct {
	const char *col, *name, *help;
} stats[] = {
	{ "found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful." },
	{ "invalid", "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked." },
	{ "ignore", "node_nf_conntrack_stat_ignore", "Number of packets seen which are already connected to a conntrack entry." },
	{ "insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list." },
	{ "insert_failed", "node_nf_conntrack_stat_insert_failed", "Number of entries for which list insertion was attempted but failed." },
	{ "drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure." },
	{ "early_drop", "node_nf_conntrack_stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached." },
	{ "search_restart", "node_nf_conntrack_stat_search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes." },
};
#define NSTATS (sizeof(stats) / sizeof(stats[0]))
#define MAX_COLS 32

int host_conntrack__collect(struct host_w *w)
{
	static int fd_count = -1, fd_max = -1, fd_stat = -1;
	static char buf[1 << 19];
	char *cur = buf, *line, *f[MAX_COLS];
	int col[NSTATS], ncols, have_stat = 0;
	double sum[NSTATS] = { 0 };
	uint64_t count, max;
	size_t i;
	int err;

	err = host_util__read_u64(&fd_count, "/proc/sys/net/netfilter/nf_conntrack_count", &count);
	if (!err)
		err = host_util__read_u64(&fd_max, "/proc/sys/net/netfilter/nf_conntrack_max", &max);
	if (err)
		return err;
	host_util__single(w, "node_nf_conntrack_entries", HOST_GAUGE,
			  "Number of currently allocated flow entries for connection tracking.",
			  (double)count);
	host_util__single(w, "node_nf_conntrack_entries_limit", HOST_GAUGE,
			  "Maximum size of connection tracking table.", (double)max);

	/* Columns differ between kernels: find them by the header's names. */
	if (host_util__read(&fd_stat, "/proc/net/stat/nf_conntrack", buf, sizeof(buf)) < 0)
		return 0;
	line = host_util__line(&cur);
	ncols = line ? host_util__fields(line, f, MAX_COLS) : 0;
	for (i = 0; i < NSTATS; i++) {
		col[i] = -1;
		for (int c = 0; c < ncols; c++)
			if (!strcmp(f[c], stats[i].col))
				col[i] = c;
	}
	while ((line = host_util__line(&cur))) {
		int n = host_util__fields(line, f, MAX_COLS);

		for (i = 0; i < NSTATS; i++)
			if (col[i] >= 0 && col[i] < n)
				sum[i] += (double)strtoull(f[col[i]], NULL, 16);
		have_stat = 1;
	}
	for (i = 0; i < NSTATS && have_stat; i++)
		if (col[i] >= 0)
			host_util__single(w, stats[i].name, HOST_GAUGE, stats[i].help, sum[i]);
	return 0;
}
