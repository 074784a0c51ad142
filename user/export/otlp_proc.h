/* Process facts for OTLP resources (executable name, command line) per pid,
 * cached by the traces worker; the time is passed in. */
#ifndef SONDE_EXPORT_OTLP_PROC_H
#define SONDE_EXPORT_OTLP_PROC_H

#include <stdint.h>

#include "span/redact.h"

#define OTLP_PROC_CACHE 128

struct otlp_proc {
	uint32_t pid;
	uint64_t read_ns;		/* re-read after a TTL: pids are reused */
	char exe[64];			/* basename of /proc/<pid>/exe, "" when unknown */
	char cmd[512];			/* cmdline with NULs as spaces, each argument through
					 * the cache's redact rule; "" when unknown */
};

/* Zeroed to start (redact then holds the default rule); one thread at a
 * time. */
struct otlp_proc_cache {
	struct otlp_proc e[OTLP_PROC_CACHE];
	unsigned int next;		/* slot for the next pid not cached, round robin */
	/* --url-query on arguments too: `curl "http://h/login?password=x"`
	 * must not export the password as process.command_line */
	struct redact redact;
};

/* pid's facts, read from /proc when not cached or read more than 30 s
 * before now_ns (CLOCK_MONOTONIC). Valid until the next call on c. */
const struct otlp_proc *otlp_proc__get(struct otlp_proc_cache *c, uint32_t pid, uint64_t now_ns);

#endif
