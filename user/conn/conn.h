/* Userspace connection tracker: follows each traced TCP connection
 * (tgid, fd, sk), infers its protocol and role, feeds the HTTP/1.x parser
 * per direction and pairs requests with responses into spans. */
#ifndef SONDE_CONNTRACK_H
#define SONDE_CONNTRACK_H

#include <stddef.h>
#include <stdint.h>

#include "proto/db.h"
#include "sonde.h"
#include "span/span.h"

struct conntrack_stats {
	uint64_t parse_errors[4];	/* HTTP/1.x, by enum http1_error */
	uint64_t unmatched_responses;	/* response with no request seen */
	uint64_t pending_dropped;	/* request never answered, no span (evicted, overflow, server) */
	uint64_t failed_spans;		/* client spans ended by the connection failing */
	uint64_t conns_evicted;		/* table full or idle */
	uint64_t conns_not_http;	/* handed back to the kernel as ignored */
	uint64_t spans;
	struct dbconn_stats db;		/* PostgreSQL, MySQL/MariaDB, Redis (dbconn.c) */
};

struct conntrack_ops {
	void (*on_span)(void *arg, const struct span *s);
	/* The connection is not HTTP: the kernel may stop reporting it. */
	void (*on_ignore)(void *arg, uint32_t tgid, int32_t fd, uint64_t sk);
	/* A plaintext client connection was found to speak HTTP/1.x; ev is the
	 * chunk that showed it (may be NULL). */
	void (*on_http_client)(void *arg, const struct sonde_data_event *ev);
	void *arg;
};

struct conntrack;

struct conntrack *conntrack__new(size_t max_conns, const struct conntrack_ops *ops);
void conntrack__free(struct conntrack *t);
void conntrack__data(struct conntrack *t, const struct sonde_data_event *ev);
/* The last fd of a socket was closed. */
void conntrack__close(struct conntrack *t, const struct sonde_close_event *ev);
/* A client connection ended under a read or send (peer closed, reset...):
 * the requests waiting on it become failed spans. */
void conntrack__io_end(struct conntrack *t, const struct sonde_io_end_event *ev);
/* Every thread of process tgid exited (at ktime): its connections are over. */
void conntrack__exit(struct conntrack *t, uint32_t tgid, uint64_t ktime);
/* Forgets connections idle since before idle_before_ns (monotonic). */
void conntrack__sweep(struct conntrack *t, uint64_t idle_before_ns);
size_t conntrack__count(const struct conntrack *t);
const struct conntrack_stats *conntrack__stats(const struct conntrack *t);

#endif
