/* TCP health per service: moves tcpstate.bpf.c's per-tgid counts into the
 * metrics registry at scrape time (lookup-and-delete, so each event is
 * counted once and exited processes' entries go away). */
#include <errno.h>
#include <stdlib.h>

#include <bpf/bpf.h>

#include "identity/identity.h"
#include "metrics/log2hist.h"
#include "probe/mapdrain.h"
#include "util/proc.h"
#include "sonde.h"
#include "signals/tcpstate.h"


struct tcpstate {
	struct metrics *m;
	int fam_opened, fam_connect_dur, fam_fail, fam_resets, fam_retrans, fam_srtt;
	int fam_open, fam_listen_drops;
};

static const char *const fail_reason[SONDE_TCP_FAIL__MAX] = {
	[SONDE_TCP_FAIL_REFUSED] = "refused",
	[SONDE_TCP_FAIL_TIMEOUT] = "timeout",
	[SONDE_TCP_FAIL_UNREACHABLE] = "unreachable",
	[SONDE_TCP_FAIL_ABORTED] = "aborted",
	[SONDE_TCP_FAIL_OTHER] = "other",
};

int tcpstate__new(struct tcpstate **out, struct metrics *m, size_t cap)
{
	/* the identity labels end each set, as on the RED series */
	static const char *const l_svc[] = { "service_name", IDENT_LABELS };
	static const char *const l_dir[] = { "service_name", "direction", IDENT_LABELS };
	static const char *const l_reason[] = { "service_name", "reason", IDENT_LABELS };
	size_t nid = identity__nlabels();
	struct tcpstate *t = calloc(1, sizeof(*t));
	const double *b = log2hist__bounds();

	if (!t)
		return -ENOMEM;
	t->m = m;
#define FAM(var, type, name, help, labels, nl, bounds, nb)                                  \
	do {                                                                                \
		t->var = metrics__family(m, type, name, help, labels, nl, bounds, nb, cap); \
		if (t->var < 0) {                                                           \
			int err = t->var;                                                   \
			free(t);                                                            \
			return err;                                                         \
		}                                                                           \
	} while (0)
	FAM(fam_opened, METRIC_COUNTER, "sonde_tcp_connections_opened_total",
	    "TCP connections opened by the service: direction=outbound for connect() that "
	    "reached ESTABLISHED, inbound for accept().", l_dir, 2 + nid, NULL, 0);
	FAM(fam_connect_dur, METRIC_HISTOGRAM, "sonde_tcp_connect_duration_seconds",
	    "Time from SYN sent to ESTABLISHED of the service's successful connects.",
	    l_svc, 1 + nid, b, LOG2HIST_NBOUNDS);
	FAM(fam_fail, METRIC_COUNTER, "sonde_tcp_connect_failures_total",
	    "connect() attempts that never reached ESTABLISHED, by the error the socket got "
	    "(refused, timeout, unreachable, aborted = closed before completion, other).",
	    l_reason, 2 + nid, NULL, 0);
	FAM(fam_resets, METRIC_COUNTER, "sonde_tcp_resets_total",
	    "TCP resets sent and received on the service's sockets.", l_dir, 2 + nid, NULL, 0);
	FAM(fam_retrans, METRIC_COUNTER, "sonde_tcp_retransmits_total",
	    "TCP segments retransmitted on the service's sockets.", l_svc, 1 + nid, NULL, 0);
	FAM(fam_srtt, METRIC_HISTOGRAM, "sonde_tcp_srtt_seconds",
	    "Smoothed round-trip time of the service's TCP connections, sampled at close.",
	    l_svc, 1 + nid, b, LOG2HIST_NBOUNDS);
	FAM(fam_open, METRIC_GAUGE, "sonde_tcp_open_connections",
	    "TCP connections of the service opened since the agent started and not yet closed.",
	    l_svc, 1 + nid, NULL, 0);
	FAM(fam_listen_drops, METRIC_COUNTER, "sonde_tcp_listen_drops_total",
	    "SYNs and completed handshakes dropped by the service's listening sockets "
	    "(accept queue overflows and SYN queue drops), seen at its next accept().",
	    l_svc, 1 + nid, NULL, 0);
#undef FAM
	*out = t;
	return 0;
}

void tcpstate__free(struct tcpstate *t)
{
	free(t);
}

static void add_nonzero(struct metrics *m, int fam, const char *const *lv, double v)
{
	if (v != 0)
		metrics__add(m, fam, lv, v);
}

static void tcpstate__account(struct tcpstate *t, uint32_t tgid, const struct sonde_tcp_stats *v)
{
	struct metrics *m = t->m;
	char exe[SONDE_EXE_LEN + 1] = "";
	uint64_t n = 0, b[SONDE_HIST_SLOTS];
	const struct identity *id = NULL;
	const char *svc, *idv[IDENT_LABELS_MAX];

	/* The kernel wrote the name in process context; tgid 0 holds events
	 * on sockets no known process owns. */
	for (size_t i = 0; i < SONDE_EXE_LEN && v->exe[i]; i++)
		exe[i] = v->exe[i];
	if (tgid && v->cgroup_id)
		identity__cgroup(tgid, v->cgroup_id);	/* before: the process may be gone */
	if (tgid)
		id = identity__get(tgid, exe, "");
	svc = id ? id->service_name : "unknown";
	identity__label_values(id, idv);
	{
#define ID idv[0], idv[1], idv[2], idv[3]
		const char *out[] = { svc, "outbound", ID }, *in[] = { svc, "inbound", ID };
		const char *sent[] = { svc, "sent", ID }, *recv[] = { svc, "received", ID };
		const char *one[] = { svc, ID };

		add_nonzero(m, t->fam_opened, out, (double)v->connects);
		add_nonzero(m, t->fam_opened, in, (double)v->accepts);
		add_nonzero(m, t->fam_resets, sent, (double)v->resets_sent);
		add_nonzero(m, t->fam_resets, recv, (double)v->resets_received);
		add_nonzero(m, t->fam_retrans, one, (double)v->retransmits);
		add_nonzero(m, t->fam_listen_drops, one, (double)v->listen_drops);
		if (v->open_delta)
			metrics__add(m, t->fam_open, one, (double)v->open_delta);
		for (int r = 0; r < SONDE_TCP_FAIL__MAX; r++) {
			const char *lv[] = { svc, fail_reason[r], ID };

			if (v->fails[r] && fail_reason[r])
				metrics__add(m, t->fam_fail, lv, (double)v->fails[r]);
		}
		for (int i = 0; i < SONDE_HIST_SLOTS; i++)
			n |= (b[i] = v->connect_hist[i]);
		if (n)
			metrics__observe_buckets(m, t->fam_connect_dur, one, b,
						 (double)v->connect_sum_ns / 1e9);
		n = 0;
		for (int i = 0; i < SONDE_HIST_SLOTS; i++)
			n |= (b[i] = v->srtt_hist[i]);
		if (n)
			metrics__observe_buckets(m, t->fam_srtt, one, b, (double)v->srtt_sum_us / 1e6);
#undef ID
	}
}

static void tcpstate__account_cb(void *arg, uint32_t tgid, const void *v)
{
	tcpstate__account(arg, tgid, v);
}

void tcpstate__collect(struct tcpstate *t, int fd)
{
	struct sonde_tcp_stats v;

	if (!t || fd < 0)
		return;
	mapdrain__u32(fd, &v, tcpstate__account_cb, t);
}
