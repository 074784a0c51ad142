/* The ring records the daemon takes (include/sonde.h SONDE_OP_*), checked
 * and handed to the connection table, trace context and identity: one
 * path for the agent (user/agent.c) and its replay bench
 * (tests/bench/replay.c). */
#ifndef SONDE_RECORDS_H
#define SONDE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

struct conn_table;
struct tracectx;

/* What a process's exit also ends beyond the connection table (the
 * agent's database calls and injection state): called after its
 * connections are ended, before its identity is dropped (spans made then
 * are still named). NULL: nothing. */
struct records_exit {
	void (*fn)(void *arg, uint32_t tgid, uint64_t ktime);
	void *arg;
};

/* Returns the record's op, or -1 for a record too short for its op, of
 * an op the rings do not carry, or whose lengths disagree (the caller
 * counts it). */
int records__handle(struct conn_table *ct, struct tracectx *tc, const struct records_exit *ex,
		    const void *data, size_t size);

#endif
