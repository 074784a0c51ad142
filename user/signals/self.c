/* sonde_* self metrics and per-service TCP bytes (see self.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conn/conn.h"
#include "identity/identity.h"
#include "probe/inject.h"
#include "probe/loader.h"
#include "probe/sock.h"
#include "probe/mapdrain.h"
#include "proto/proto.h"
#include "signals/self.h"
#include "span/tracectx.h"
#include "util/proc.h"

/* Bytes of recorded calls per process since the last collect: open
 * addressing on tgid (0 free). Full: everything goes to the counters at
 * once and the table starts empty. */
#define LEDGER_SLOTS 1024
struct ledger_slot {
	uint32_t tgid;
	uint64_t tx, rx;
};

struct self_metrics {
	struct metrics *m;
	struct ledger_slot ledger[LEDGER_SLOTS];
	unsigned int ledger_used;
	const char *version;
	int fam_netio, fam_probe, fam_events, fam_drops, fam_read_fail;
	int fam_parse_err, fam_unmatched, fam_unanswered, fam_conns, fam_evicted, fam_not_http;
	int fam_meta_missing;
	int fam_bad_records, fam_rss, fam_cpu, fam_build, fam_args_gc;
	int fam_tp_invalid, fam_injected, fam_inject_skipped, fam_inject_adopted, fam_inject_dropped;
	int fam_db_infer, fam_db_unanswered, fam_db_unmatched, fam_lost, fam_h2;
	int fam_unseen_calls, fam_unseen_bytes;
};

int self__new(struct self_metrics **out, struct metrics *m, size_t max_series,
	      const char *version)
{
	static const char *const l_netio[] = { "service_name", "network_io_direction", IDENT_LABELS };
	static const char *const l_probe[] = { "hook", "mode" };
	static const char *const l_ring[] = { "ring" };
	static const char *const l_proto[] = { "protocol" };
	static const char *const l_version[] = { "version" };
	static const char *const l_reason[] = { "reason" };
	static const char *const l_via[] = { "via" };
	struct self_metrics *s = calloc(1, sizeof(*s));
	size_t cap = max_series;

	if (!s)
		return -ENOMEM;
	s->m = m;
	s->version = version;
#define L(x) x, sizeof(x) / sizeof(x[0])
#define NOL NULL, 0
#define LN(x, n) x, (n)	/* the first n labels of x */
#define FAM(var, type, name, help, labels, bounds, nb, max)                                  \
	do {                                                                                 \
		s->var = metrics__family(m, type, name, help, labels, bounds, nb, max);       \
		if (s->var < 0) {                                                            \
			int err_ = s->var;                                                   \
			free(s);                                                             \
			return err_;                                                         \
		}                                                                            \
	} while (0)
	FAM(fam_db_infer, METRIC_COUNTER, "sonde_protocol_inference_failures_total",
	    "Connections taken for a database protocol whose first messages did not parse.",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_db_unanswered, METRIC_COUNTER, "sonde_db_unanswered_operations_total",
	    "Database operations forgotten without a result (closed, lost or pipelined too deep).",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_db_unmatched, METRIC_COUNTER, "sonde_db_unmatched_replies_total",
	    "Database replies seen with no operation waiting (e.g. pub/sub messages).",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_lost, METRIC_COUNTER, "sonde_requests_lost_total",
	    "Requests and database operations whose response or framing was lost with ring "
	    "records (ring full, see sonde_ringbuf_drops_total): no span, and not a failure.",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_h2, METRIC_COUNTER, "sonde_http2_dropped_total",
	    "HTTP/2 connections and requests not traced, by reason: missed_start (connection older "
	    "than the agent), desync (bytes not captured or invalid framing: decoding stopped), "
	    "too_many_streams (--h2-max-streams), header_block_too_big, unanswered, unmatched.",
	    L(l_reason), NULL, 0, 0);
	FAM(fam_netio, METRIC_COUNTER, "process_network_io_bytes_total",
	    "Bytes sent and received on TCP sockets, per service.",
	    LN(l_netio, 2 + identity__nlabels()), NULL, 0, cap);
	FAM(fam_probe, METRIC_GAUGE, "sonde_probe_info",
	    "Attach mode chosen for each hook (1 = attached, 0 = unavailable).", L(l_probe), NULL, 0, 0);
	FAM(fam_events, METRIC_COUNTER, "sonde_ringbuf_events_total",
	    "Records written by BPF programs to a ring buffer.", L(l_ring), NULL, 0, 0);
	FAM(fam_drops, METRIC_COUNTER, "sonde_ringbuf_drops_total",
	    "Records lost because a ring buffer was full.", L(l_ring), NULL, 0, 0);
	FAM(fam_read_fail, METRIC_COUNTER, "sonde_payload_read_failures_total",
	    "Payloads the kernel side could not copy from process memory.", NOL, NULL, 0, 0);
	FAM(fam_unseen_calls, METRIC_COUNTER, "sonde_payload_unseen_calls_total",
	    "Socket sends and receives whose bytes were counted but whose payload could not be "
	    "read, by why: sendfile, splice, mmsg (sendmmsg/recvmmsg), no_syscall (io_uring, "
	    "kernel threads, other syscalls; socket and fentry tiers only).", L(l_via), NULL, 0, 0);
	FAM(fam_unseen_bytes, METRIC_COUNTER, "sonde_payload_unseen_bytes_total",
	    "Bytes of the calls in sonde_payload_unseen_calls_total.", L(l_via), NULL, 0, 0);
	FAM(fam_parse_err, METRIC_COUNTER, "sonde_parse_errors_total",
	    "Malformed protocol messages skipped (connection resynchronised).", L(l_proto), NULL, 0, 0);
	FAM(fam_unmatched, METRIC_COUNTER, "sonde_http_unmatched_responses_total",
	    "HTTP responses seen without their request (e.g. request before the agent started).",
	    NOL, NULL, 0, 0);
	FAM(fam_unanswered, METRIC_COUNTER, "sonde_http_unanswered_requests_total",
	    "HTTP requests forgotten without a response (closed, evicted or pipelined too deep).",
	    NOL, NULL, 0, 0);
	FAM(fam_conns, METRIC_GAUGE, "sonde_connections_tracked",
	    "Connections followed in userspace.", NOL, NULL, 0, 0);
	FAM(fam_evicted, METRIC_COUNTER, "sonde_connections_evicted_total",
	    "Connections forgotten because the table was full or they were idle.", NOL, NULL, 0, 0);
	FAM(fam_not_http, METRIC_COUNTER, "sonde_connections_unsupported_total",
	    "Connections handed back to the kernel as not a supported protocol.", NOL, NULL, 0, 0);
	FAM(fam_meta_missing, METRIC_COUNTER, "sonde_connections_meta_missing_total",
	    "Connections whose first record came without the record naming them (lost, or "
	    "the connection forgotten since): named from the kernel's entry instead.",
	    NOL, NULL, 0, 0);
	FAM(fam_bad_records, METRIC_COUNTER, "sonde_ringbuf_bad_records_total",
	    "Ring records with an unknown type or an inconsistent size.", NOL, NULL, 0, 0);
	FAM(fam_args_gc, METRIC_COUNTER, "sonde_syscall_args_collected_total",
	    "Saved syscall arguments of threads that died inside the syscall, removed.", NOL, NULL, 0, 0);
	FAM(fam_rss, METRIC_GAUGE, "sonde_process_resident_memory_bytes",
	    "Resident memory of the agent.", NOL, NULL, 0, 0);
	FAM(fam_cpu, METRIC_COUNTER, "sonde_process_cpu_seconds_total",
	    "CPU time used by the agent (user + system).", NOL, NULL, 0, 0);
	FAM(fam_build, METRIC_GAUGE, "sonde_build_info", "sonde version.", L(l_version), NULL, 0, 0);
	FAM(fam_tp_invalid, METRIC_COUNTER, "sonde_traceparent_invalid_total",
	    "Incoming traceparent headers ignored as invalid (W3C Trace Context).", NOL, NULL, 0, 0);
	FAM(fam_injected, METRIC_COUNTER, "sonde_injected_total",
	    "Outgoing HTTP/1.x requests given a traceparent header.", NOL, NULL, 0, 0);
	FAM(fam_inject_skipped, METRIC_COUNTER, "sonde_inject_skipped_total",
	    "Outgoing requests left untouched by traceparent injection, by reason (not_http_port: connections of an HTTP process to a port known to carry another protocol, never put under injection).", L(l_reason),
	    NULL, 0, 0);
	FAM(fam_inject_adopted, METRIC_COUNTER, "sonde_inject_connections_adopted_total",
	    "Established HTTP client connections put under injection after their first request "
	    "(connected before the agent, or before their port was learnt).", NOL, NULL, 0, 0);
	FAM(fam_inject_dropped, METRIC_COUNTER, "sonde_inject_connections_dropped_total",
	    "Client connections of HTTP-speaking processes taken out of injection once seen to "
	    "carry another protocol.", NOL, NULL, 0, 0);
#undef FAM
#undef L
#undef LN
#undef NOL
	*out = s;
	return 0;
}

void self__free(struct self_metrics *s)
{
	free(s);
}

static void self_usage(double *cpu_s, double *rss_bytes)
{
	static int fd = -2;	/* /proc/self/statm, kept open; -1: unavailable */
	static long page_size;
	struct rusage ru;
	char buf[128], *p;
	long pages = 0;
	ssize_t n;

	getrusage(RUSAGE_SELF, &ru);
	*cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (fd == -2) {
		fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
		page_size = sysconf(_SC_PAGESIZE);
	}
	/* "size resident shared ...": the second field, in pages */
	if (fd >= 0 && (n = pread(fd, buf, sizeof(buf) - 1, 0)) > 0) {
		buf[n] = '\0';
		p = strchr(buf, ' ');
		if (p)
			pages = strtol(p + 1, NULL, 10);
	}
	*rss_bytes = (double)pages * (double)page_size;
}

/* Per-process TCP byte counts from the kernel, into per-service counters. */
static void tcp_bytes_cb(void *arg, uint32_t tgid, const void *value)
{
	struct self_metrics *s = arg;
	const struct sonde_tcp_bytes *v = value;
	const struct identity *id = identity__get(tgid, NULL, "");
	const char *tx[2 + IDENT_LABELS_MAX] = { id->service_name, "transmit" };
	const char *rx[2 + IDENT_LABELS_MAX] = { id->service_name, "receive" };

	identity__label_values(id, tx + 2);
	identity__label_values(id, rx + 2);
	if (v->tx)
		metrics__add(s->m, s->fam_netio, tx, (double)v->tx);
	if (v->rx)
		metrics__add(s->m, s->fam_netio, rx, (double)v->rx);
}

/* The ledger's bytes into the counters; the ledger is empty after. */
static void ledger_flush(struct self_metrics *s)
{
	for (unsigned int i = 0; i < LEDGER_SLOTS && s->ledger_used; i++) {
		struct ledger_slot *e = &s->ledger[i];
		struct sonde_tcp_bytes v = { .tx = e->tx, .rx = e->rx };

		if (!e->tgid)
			continue;
		/* a gone process's slot stays taken, emptied: nothing to name */
		if (e->tx || e->rx)
			tcp_bytes_cb(s, e->tgid, &v);
		s->ledger_used--;
	}
	memset(s->ledger, 0, sizeof(s->ledger));
	s->ledger_used = 0;
}

static struct ledger_slot *ledger_find(struct self_metrics *s, uint32_t tgid, bool add)
{
	unsigned int i = (tgid * 2654435761U) % LEDGER_SLOTS;

	for (unsigned int k = 0; k < LEDGER_SLOTS; k++, i = (i + 1) % LEDGER_SLOTS) {
		if (s->ledger[i].tgid == tgid)
			return &s->ledger[i];
		if (!s->ledger[i].tgid) {
			if (!add)
				return NULL;
			if (s->ledger_used * 4 >= LEDGER_SLOTS * 3) {	/* 3/4 full */
				ledger_flush(s);
				return ledger_find(s, tgid, true);
			}
			s->ledger[i].tgid = tgid;
			s->ledger_used++;
			return &s->ledger[i];
		}
	}
	return NULL;
}

void self__record_bytes(struct self_metrics *s, uint32_t tgid, bool tx, uint32_t n)
{
	struct ledger_slot *e = s && tgid ? ledger_find(s, tgid, true) : NULL;

	if (!e)
		return;
	if (tx)
		e->tx += n;
	else
		e->rx += n;
}

void self__process_gone(struct self_metrics *s, uint32_t tgid)
{
	struct ledger_slot *e = s && tgid ? ledger_find(s, tgid, false) : NULL;
	struct sonde_tcp_bytes v;

	if (!e || !(e->tx || e->rx))
		return;
	v.tx = e->tx;
	v.rx = e->rx;
	tcp_bytes_cb(s, tgid, &v);
	e->tx = e->rx = 0;	/* the slot stays taken: a probe chain must not break */
}

static void collect_tcp_bytes(struct self_metrics *s, struct loader *ld)
{
	struct sonde_tcp_bytes v;

	mapdrain__u32(sock_probe__tcp_bytes_fd(ld), &v, tcp_bytes_cb, s);
	ledger_flush(s);
}

static void collect_unseen(struct self_metrics *s, const struct loader *ld)
{
	static const char *const via[SONDE_UNSEEN__MAX] = {
		[SONDE_UNSEEN_SENDFILE] = "sendfile", [SONDE_UNSEEN_SPLICE] = "splice",
		[SONDE_UNSEEN_MMSG] = "mmsg", [SONDE_UNSEEN_NO_SYSCALL] = "no_syscall",
	};
	struct sonde_unseen_count u[SONDE_UNSEEN__MAX];

	if (sock_probe__unseen(ld, u))
		return;
	for (int i = 0; i < SONDE_UNSEEN__MAX; i++) {
		const char *lv[] = { via[i] };

		metrics__set(s->m, s->fam_unseen_calls, lv, (double)u[i].calls);
		metrics__set(s->m, s->fam_unseen_bytes, lv, (double)u[i].bytes);
	}
}

void self__collect(struct self_metrics *s, const struct self_sources *src)
{
	static const char *const ring[] = { "events" };
	const struct conn_stats *st = conn__stats(src->conns);
	const char *version[] = { s->version };
	const struct probe_info *p;
	size_t np = loader__probes(src->ld, &p);
	double cpu, rss;

	collect_tcp_bytes(s, src->ld);
	for (size_t i = 0; i < np; i++) {
		const char *lv[] = { p[i].hook, p[i].mode };

		metrics__set(s->m, s->fam_probe, lv, p[i].attached ? 1 : 0);
	}
	metrics__set(s->m, s->fam_events, ring, (double)sock_probe__counter(src->ld, SONDE_CNT_EVENTS));
	metrics__set(s->m, s->fam_drops, ring, (double)sock_probe__counter(src->ld, SONDE_CNT_RING_DROPS));
	metrics__set(s->m, s->fam_read_fail, NULL, (double)sock_probe__counter(src->ld, SONDE_CNT_READ_FAIL));
	collect_unseen(s, src->ld);
	for (int id = 0; id < PROTO__COUNT; id++) {
		const struct proto_stats *ps = &st->proto[id];
		const char *lv[] = { proto_table[id]->name };

		metrics__set(s->m, s->fam_parse_err, lv, (double)ps->parse_errors);
		metrics__set(s->m, s->fam_lost, lv, (double)ps->lost);
		if (id == PROTO_HTTP2) {
			const struct { const char *reason; uint64_t v; } r[] = {
				{ "missed_start", ps->missed_start }, { "desync", ps->desync },
				{ "too_many_streams", ps->too_many },
				{ "header_block_too_big", ps->too_big },
				{ "unanswered", ps->unanswered }, { "unmatched", ps->unmatched },
			};

			for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
				const char *rl[] = { r[i].reason };

				metrics__set(s->m, s->fam_h2, rl, (double)r[i].v);
			}
			continue;
		}
		/* HTTP/1.x keeps the families it had before the databases came */
		if (id == PROTO_HTTP1) {
			metrics__set(s->m, s->fam_unmatched, NULL, (double)ps->unmatched);
			metrics__set(s->m, s->fam_unanswered, NULL, (double)ps->unanswered);
			continue;
		}
		metrics__set(s->m, s->fam_db_infer, lv, (double)ps->inference_failures);
		metrics__set(s->m, s->fam_db_unanswered, lv, (double)ps->unanswered);
		metrics__set(s->m, s->fam_db_unmatched, lv, (double)ps->unmatched);
	}
	metrics__set(s->m, s->fam_conns, NULL, (double)conn__count(src->conns));
	metrics__set(s->m, s->fam_evicted, NULL, (double)st->conns_evicted);
	metrics__set(s->m, s->fam_not_http, NULL, (double)st->conns_unsupported);
	metrics__set(s->m, s->fam_meta_missing, NULL, (double)st->conns_meta_missing);
	metrics__set(s->m, s->fam_bad_records, NULL, (double)src->bad_records);
	metrics__set(s->m, s->fam_args_gc, NULL, (double)src->args_gc);
	self_usage(&cpu, &rss);
	metrics__set(s->m, s->fam_rss, NULL, rss);
	metrics__set(s->m, s->fam_cpu, NULL, cpu);
	metrics__set(s->m, s->fam_build, version, 1);
	metrics__set(s->m, s->fam_tp_invalid, NULL, (double)tracectx__stats(src->tc)->traceparent_invalid);
	metrics__set(s->m, s->fam_injected, NULL, (double)inject__counter(src->inject, SONDE_INJ_DONE));
	metrics__set(s->m, s->fam_inject_adopted, NULL, (double)inject__adopted(src->inject));
	metrics__set(s->m, s->fam_inject_dropped, NULL, (double)inject__dropped(src->inject));
	{
		static const char *const reasons[SONDE_INJ__MAX] = {
			[SONDE_INJ_HAS_HEADER] = "has_header", [SONDE_INJ_SPLIT] = "split",
			[SONDE_INJ_HEAD_TOO_LONG] = "head_too_long", [SONDE_INJ_PIPELINED] = "pipelined",
			[SONDE_INJ_TOO_BIG] = "too_big", [SONDE_INJ_FAILED] = "failed",
			[SONDE_INJ_NOT_HTTP_PORT] = "not_http_port",
		};

		for (int i = 0; i < SONDE_INJ__MAX; i++) {
			const char *lv[] = { reasons[i] };

			if (reasons[i])
				metrics__set(s->m, s->fam_inject_skipped, lv,
					     (double)inject__counter(src->inject, (enum sonde_inject_counter)i));
		}
	}
}
