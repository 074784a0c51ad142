/* stat collector: boot time, context switches, forks, interrupts and
 * runnable/blocked processes from /proc/stat. */
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

/* The number after "\n<key> " in /proc/stat, or -1 when absent. */
static double field(const char *text, const char *key)
{
	size_t k = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (!strncmp(l, key, k) && l[k] == ' ')
			return strtod(l + k + 1, NULL);
	return -1;
}

int host_stat__collect(struct host_w *w)
{
	const char *text;
	size_t len;
	int err = host_util__proc_stat(w, &text, &len);

	if (err)
		return err;
	/* intr: the first number is the total of all interrupts. */
	host_util__single(w, "node_intr_total", HOST_COUNTER,
			  "Total number of interrupts serviced.", field(text, "intr"));
	host_util__single(w, "node_context_switches_total", HOST_COUNTER,
			  "Total number of context switches.", field(text, "ctxt"));
	host_util__single(w, "node_forks_total", HOST_COUNTER, "Total number of forks.",
			  field(text, "processes"));
	host_util__single(w, "node_boot_time_seconds", HOST_GAUGE,
			  "Node boot time, in unixtime.", field(text, "btime"));
	host_util__single(w, "node_procs_running", HOST_GAUGE,
			  "Number of processes in runnable state.", field(text, "procs_running"));
	host_util__single(w, "node_procs_blocked", HOST_GAUGE,
			  "Number of processes blocked waiting for I/O to complete.",
			  field(text, "procs_blocked"));
	return 0;
}
