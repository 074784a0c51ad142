/* Database client library uprobes (libpq, libmysqlclient/libmariadb):
 * loads dbclient.bpf.c, attaches it to every distinct library file, and
 * keeps each call's SQL until the wire shows the same operation (one span)
 * or it is clear the wire never will (TLS: a span from the uprobe alone). */
#ifndef SONDE_DBCLIENT_H
#define SONDE_DBCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "proto/proto.h"

struct dbclient;

struct dbclient_opts {
	uint32_t self_tgid;
	uint32_t filter_tgid;
	uint16_t filter_port;	/* see dbclient__encrypted_conn */
	struct span_builder *spans;	/* where uprobe-only spans go */
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
/* What the wire side (proto/db.c) calls: claim a call for a wire span,
 * mark calls as on the wire, note processes with TLS database
 * connections. NULL when c is NULL. */
const struct db_calls *dbclient__calls(const struct dbclient *c);

#endif
