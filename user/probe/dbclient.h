/* Database client library uprobes (libpq, libmysqlclient/libmariadb):
 * loads dbclient.bpf.c, attaches it to every distinct library file, and
 * keeps each call's SQL until the wire shows the same operation (one span)
 * or it is clear the wire never will (TLS: a span from the uprobe alone). */
#ifndef SONDE_DBCLIENT_H
#define SONDE_DBCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "span/span.h"

struct dbclient;

struct dbclient_opts {
	uint32_t self_tgid;
	uint32_t filter_tgid;
	uint16_t filter_port;	/* see dbclient__encrypted_conn */
	void (*on_span)(void *arg, const struct span *s);
	void *arg;
};

struct libwatch;

/* Registers its libraries on w (shared with the other uprobe users: the
 * caller's scans and exec rescans find them); w must outlive c. */
int dbclient__open(struct dbclient **out, const struct dbclient_opts *o, struct metrics *m,
		   struct libwatch *w);
void dbclient__free(struct dbclient *c);
/* Reads the call records committed so far. Call right before draining the
 * data rings, so a call is known before the wire request it made. */
void dbclient__poll(struct dbclient *c);
/* Uprobe-only spans for calls the wire did not claim, once data events up
 * to drained_ns have been processed; periodic library rescan. */
void dbclient__tick(struct dbclient *c, uint64_t drained_ns);
/* Every thread of tgid exited at ktime: its unclaimed calls end there. */
void dbclient__exit(struct dbclient *c, uint32_t tgid, uint64_t ktime);
void dbclient__collect(struct dbclient *c);
/* For dbconn.c: process tgid has a database connection in TLS. With a
 * --port filter, uprobe-only spans come only from such processes (the
 * filter saw their handshake), not from connections filtered out. */
void dbclient__encrypted_conn(uint32_t tgid);
/* For dbconn.c: thread tid wrote a plaintext database request at ns. */
void dbclient__wire(uint32_t tid, uint64_t ns);

/* For dbconn.c: the wire saw a client request of thread tid starting at
 * start_ns. Claims the oldest earlier unclaimed call of that thread: the
 * call's entry time in *call_ns and its SQL in text (n bytes, "" if none).
 * Returns 1 when a call was claimed, 0 otherwise. */
int dbclient__claim(uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text, size_t n);

#endif
