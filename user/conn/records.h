/* The ring records the daemon takes (include/sonde.h SONDE_OP_*), checked
 * and handed to the connection table, trace context and identity: one
 * path for the agent (user/agent.c) and its replay bench
 * (tests/bench/replay.c). */
#ifndef SONDE_RECORDS_H
#define SONDE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn_table;
struct tracectx;

/* The caller's part; any pointer may be NULL (nothing to do). */
struct records_hooks {
	/* A process exited: what it also ends beyond the connection table
	 * (the agent's database calls, injection state, byte ledger), called
	 * after its connections are ended and before its identity is dropped
	 * (spans made then are still named). */
	void (*exit)(void *arg, uint32_t tgid, uint64_t ktime);
	/* n bytes a process sent (tx) or received in a call with a data
	 * record (not TLS plaintext): set when the kernel leaves those to
	 * the daemon (sock_probe__bytes_in_records). */
	void (*bytes)(void *arg, uint32_t tgid, bool tx, uint32_t n);
	void *arg;
};

/* Returns the record's op, or -1 for a record too short for its op, of
 * an op the rings do not carry, or whose lengths disagree (the caller
 * counts it). */
int records__handle(struct conn_table *ct, struct tracectx *tc, const struct records_hooks *hk,
		    const void *data, size_t size);

#endif
