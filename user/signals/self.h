/* The agent's own health on /metrics (sonde_*: events, drops per ring,
 * parse errors per protocol, connections, injection, CPU and memory) and
 * the per-service TCP byte counters, read from the modules that count. */
#ifndef SONDE_SELF_H
#define SONDE_SELF_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics/metrics.h"

struct loader;
struct conn_table;
struct inject;
struct tracectx;

/* Where the numbers come from; the pointers may be NULL (module off). */
struct self_sources {
	struct loader *ld;
	const struct conn_table *conns;
	const struct inject *inject;
	const struct tracectx *tc;
	uint64_t bad_records;		/* ring records with a bad type or size */
	uint64_t args_gc;		/* syscall-args entries of dead threads removed */
};

struct self_metrics;

int self__new(struct self_metrics **out, struct metrics *m, size_t max_series,
	      const char *version);
void self__free(struct self_metrics *s);
void self__collect(struct self_metrics *s, const struct self_sources *src);
/* n bytes of a data record of process tgid (tx: sent), for
 * process_network_io_bytes_total when the kernel leaves recorded calls to
 * the daemon (sock_probe__bytes_in_records). Kept per process until the
 * next collect, or until the process exits (self__process_gone). */
void self__record_bytes(struct self_metrics *s, uint32_t tgid, bool tx, uint32_t n);
/* tgid exited: its bytes go to the counters while its identity is known. */
void self__process_gone(struct self_metrics *s, uint32_t tgid);

#endif
