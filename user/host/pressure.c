/* pressure collector: PSI stall totals from /proc/pressure/{cpu,io,memory}
 * ("some" = waiting, "full" = stalled), in seconds. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

/* total= of the "some" or "full" line, in microseconds. */
static int psi_total(const char *text, const char *kind, double *out)
{
	const char *line = text;

	while (line && *line) {
		if (!strncmp(line, kind, strlen(kind))) {
			const char *t = strstr(line, "total=");
			const char *nl = strchr(line, '\n');

			if (!t || (nl && t > nl))
				return -EINVAL;
			/* as node_exporter computes it, so values agree to the bit */
			*out = strtod(t + 6, NULL) / 1000.0 / 1000.0;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -ENOENT;
}

int host_pressure__collect(struct host_w *w)
{
	static int fds[3] = { -1, -1, -1 };
	static const char *const paths[3] = { "/proc/pressure/cpu", "/proc/pressure/io",
					      "/proc/pressure/memory" };
	char buf[3][256];
	double cpu_some, io_some, io_full, mem_some, mem_full;

	for (int i = 0; i < 3; i++) {
		ssize_t n = host_util__read(&fds[i], paths[i], buf[i], sizeof(buf[i]));

		if (n < 0)
			return (int)n;
	}
	if (psi_total(buf[0], "some", &cpu_some) || psi_total(buf[1], "some", &io_some) ||
	    psi_total(buf[1], "full", &io_full) || psi_total(buf[2], "some", &mem_some) ||
	    psi_total(buf[2], "full", &mem_full))
		return -EINVAL;
	host_util__single(w, "node_pressure_cpu_waiting_seconds_total", HOST_COUNTER,
			  "Total time in seconds that processes have waited for CPU time", cpu_some);
	host_util__single(w, "node_pressure_io_waiting_seconds_total", HOST_COUNTER,
			  "Total time in seconds that processes have waited due to IO congestion", io_some);
	host_util__single(w, "node_pressure_io_stalled_seconds_total", HOST_COUNTER,
			  "Total time in seconds no process could make progress due to IO congestion", io_full);
	host_util__single(w, "node_pressure_memory_waiting_seconds_total", HOST_COUNTER,
			  "Total time in seconds that processes have waited for memory", mem_some);
	host_util__single(w, "node_pressure_memory_stalled_seconds_total", HOST_COUNTER,
			  "Total time in seconds no process could make progress due to memory congestion", mem_full);
	return 0;
}
