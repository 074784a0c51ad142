/* Process resource metrics per service from /proc: CPU time, resident
 * memory, threads, open file descriptors and their use of the limit. */
#ifndef SONDE_PROCSTAT_H
#define SONDE_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"

/* Processes read per scrape at most; the rest of /proc is skipped (and
 * counted in the log once). */
#define PROCSTAT_MAX_PIDS 8192

struct procstat;

/* only_tgid: 0 = every process, else just that one (--pid), named
 * service_name when that is not NULL (--service-name). */
int procstat__new(struct procstat **out, struct metrics *m, size_t max_series,
		  uint32_t only_tgid, const char *service_name);
void procstat__free(struct procstat *p);
/* Scans /proc and sets the families. Called before each render. */
void procstat__collect(struct procstat *p);

#endif
