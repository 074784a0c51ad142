/* sonde daemon: options, the single epoll event loop (ring buffer, timer,
 * signals, /metrics), and the wiring from spans to metrics and stdout. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "conn/conn.h"
#include "probe/dbclient.h"
#include "export/otlp.h"
#include "probe/inject.h"
#include "span/tracectx.h"
#include "export/prom.h"
#include "host/host.h"
#include "probe/loader.h"
#include "util/log.h"
#include "probe/mapdrain.h"
#include "metrics/metrics.h"
#include "util/proc.h"
#include "signals/procstat.h"
#include "probe/ring.h"
#include "signals/sched.h"
#include "span/span.h"
#include "signals/tcpstate.h"
#include "probe/tls.h"

#define SONDE_VERSION "0.1.0"
#define TICK_MS 25			/* ring drain period; wakeups are batched */
/* Records younger than this stay in their ring until the next drain, so
 * one still being written on another CPU cannot be overtaken. */
#define DRAIN_HORIZON_NS 1000000ULL
#define IDLE_CONN_NS (300ULL * 1000000000ULL)
#define LIB_RESCAN_S 10			/* /proc/PID/maps rescan for libraries dlopen()ed late */

struct options {
	const char *listen;
	bool print_spans;
	uint32_t pid;
	uint16_t port;
	const char *comm;
	const char *service_name;
	uint32_t capture_bytes;
	uint32_t ring_bytes;
	uint32_t max_conns;
	uint32_t max_series;
	bool no_host_metrics;
	bool no_tcp_health;
	bool no_sched;
	bool no_db_uprobes;
	bool no_tls;
	enum loader_args_store args_store;
	enum loader_attach_mode attach_mode;
	const char *otlp_endpoint;	/* NULL: OTEL_EXPORTER_OTLP_ENDPOINT */
	bool no_inject;
	bool no_inject_learn;
	uint16_t inject_ports[16];	/* --inject-port, 0-terminated */
};

struct agent {
	struct options opt;
	struct loader *ld;
	struct conntrack *ct;
	struct metrics *m;
	struct prom_server *prom;
	struct tcpstate *tcpstate;	/* TCP health per service */
	struct sched *sched;		/* run-queue latency per service */
	struct procstat *procstat;	/* /proc resource metrics per service */
	struct otlp *otlp;		/* OTLP/HTTP export; NULL when off */
	struct inject *inject;		/* NULL: --no-inject or it could not attach */
	struct dbclient *dbc;		/* libpq/libmysqlclient uprobes; NULL when off */
	struct tls *tls;		/* OpenSSL uprobes; NULL when off or unavailable */
	struct libwatch *watch;		/* libraries to uprobe, found in /proc/PID/maps */
	bool attached;
	bool print_failed;
	uint64_t bad_records;
	uint64_t args_gc;		/* syscall-args entries of dead threads removed */
	int fam_server, fam_client, fam_netio, fam_probe, fam_events, fam_drops, fam_read_fail;
	int fam_parse_err, fam_unmatched, fam_unanswered, fam_conns, fam_evicted, fam_not_http;
	int fam_spans, fam_bad_records, fam_rss, fam_cpu, fam_build, fam_args_gc;
	int fam_tp_invalid, fam_injected, fam_inject_skipped, fam_inject_adopted;
	uint64_t inject_adopted;	/* connections put in the sockhash by on_http_client */
	uint64_t inject_learnt_ns;	/* ktime of the last port learnt */
	int fam_db_client, fam_db_server, fam_db_infer, fam_db_unanswered, fam_db_unmatched;
};

/* OpenTelemetry's advised bucket bounds for HTTP request durations (s). */
static const double http_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
				      0.5,   0.75, 1,     2.5,  5,     7.5, 10 };

/* OpenTelemetry's advised bucket bounds for db.client.operation.duration (s). */
static const double db_bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10 };

static const char usage[] =
"Usage: sonde [OPTIONS]\n"
"\n"
"eBPF observability agent: traces TCP traffic of every process on this host,\n"
"rebuilds HTTP/1.x requests and PostgreSQL, MySQL/MariaDB and Redis operations\n"
"into spans and serves RED metrics on /metrics.\n"
"No change to the observed programs. Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).\n"
"\n"
"Options:\n"
"  --listen HOST:PORT      serve /metrics and /healthz here (default 0.0.0.0:9464,\n"
"                          env SONDE_LISTEN; \"none\" disables the server)\n"
"  --print spans           print one JSON object per finished request on stdout\n"
"  --pid PID               trace only this process (filtered in the kernel)\n"
"  --port PORT             trace only connections with this local or remote port\n"
"                          (filtered in the kernel)\n"
"  --comm NAME             report only processes whose comm is NAME (userspace)\n"
"  --service-name NAME     service_name for the traced process; needs --pid\n"
"                          (env OTEL_SERVICE_NAME is used the same way)\n"
"  --capture-bytes N       payload bytes captured per syscall, 64..4096\n"
"                          (default 1024, env SONDE_CAPTURE_BYTES)\n"
"  --ring-bytes N          event ring memory for all CPUs together, split into one\n"
"                          ring per CPU of at least 256 KiB (default 4194304)\n"
"  --max-connections N     connections followed in userspace (default 16384)\n"
"  --max-series N          cardinality cap per metric (default 2000)\n"
"  --attach-mode MODE      hooks with several implementations (tcp_sendmsg/tcp_recvmsg\n"
"                          byte accounting): auto (fentry, else kprobe, else syscall\n"
"                          tracepoints), or force fentry, kprobe or tracepoint; a forced\n"
"                          mode the kernel cannot attach is an error (default auto)\n"
"  --syscall-args MODE     where in-flight syscall arguments are kept: auto (task-local\n"
"                          storage when the kernel allows it; else a hash),\n"
"                          task, or hash (default auto)\n"
"  --no-host-metrics       leave out the node_exporter-compatible node_* host metrics\n"
"                          (cpu, memory, disks, filesystems, network, ...) on /metrics\n"
"  --no-tcp-health         leave out the per-service TCP health metrics (sonde_tcp_*:\n"
"                          connections, connect failures, resets, retransmits, RTT)\n"
"  --no-sched              leave out run-queue latency (sonde_runqueue_latency_seconds;\n"
"                          its hooks run on every context switch)\n"
"  --otlp-endpoint URL     send spans and metrics as OTLP/HTTP (protobuf) to URL/v1/traces\n"
"                          and URL/v1/metrics (env OTEL_EXPORTER_OTLP_ENDPOINT; unset: no\n"
"                          export). Also read: OTEL_EXPORTER_OTLP_{TRACES_,METRICS_}ENDPOINT,\n"
"                          _HEADERS, _COMPRESSION (gzip|none), _TIMEOUT (ms, 10000);\n"
"                          OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512), OTEL_BSP_SCHEDULE_DELAY (ms,\n"
"                          5000), OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_METRIC_EXPORT_INTERVAL\n"
"                          (ms, 60000), OTEL_TRACES_SAMPLER(_ARG) (parentbased_always_on),\n"
"                          OTEL_RESOURCE_ATTRIBUTES, SONDE_OTLP_RETRY_MAX_ELAPSED (ms, 60000)\n"
"  --no-inject             do not insert a W3C traceparent header into outgoing plaintext\n"
"                          HTTP/1.x requests (sockops + sk_msg; on by default); spans\n"
"                          are then linked in userspace only\n"
"  --inject-port PORT      inject into requests to this remote port from the start\n"
"                          (repeatable, up to 15); ports that client connections are\n"
"                          seen speaking HTTP/1.x to are added as they are learnt, and\n"
"                          the connection that taught it (or one older than the agent)\n"
"                          is injected from its next request on\n"
"  --no-inject-learn       inject only into requests to --inject-port / --port ports\n"
"  --no-db-uprobes        leave out the uprobes on libpq (PQsend*) and libmysqlclient /\n"
"                          libmariadb (mysql_real_query, ...): database spans then come\n"
"                          from the wire only, none for TLS connections\n"
"  --no-tls                leave out HTTPS: no uprobes on OpenSSL's SSL_read/SSL_write\n"
"                          (libssl.so* and static executables, found in /proc/*/maps)\n"
"  --log-level LEVEL       debug, info, warn or error (default info, env SONDE_LOG_LEVEL)\n"
"  --version               print the version and exit\n"
"  -h, --help              this text\n"
"\n"
"Logs are JSON lines on stderr. SIGINT/SIGTERM detach every probe and exit.\n"
"\n"
"Examples:\n"
"  sonde                                  # host agent: every process, /metrics on :9464\n"
"  sonde --print spans --port 8080        # watch requests to/from port 8080 live\n"
"  sonde --print spans --pid 4242 --listen none\n"
"  sonde --print spans --comm nginx | jq 'select(.duration_ms > 100)'\n"
"  curl -s localhost:9464/metrics | grep http_server_request_duration\n";

static int parse_u32(const char *s, const char *what, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || !*s || *end || v < min || v > max) {
		fprintf(stderr, "sonde: invalid %s '%s' (want %u..%u)\n", what, s, min, max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum { O_LISTEN = 256, O_PRINT, O_PID, O_PORT, O_COMM, O_SVC, O_CAP, O_RING, O_CONNS,
	       O_SERIES, O_LOG, O_VERSION, O_ARGS, O_ATTACH, O_NO_HOST, O_NO_TCP, O_NO_SCHED,
	       O_OTLP,
	       O_NO_INJECT, O_INJECT_PORT, O_NO_INJECT_LEARN, O_NO_DBU = 300,
	       O_NO_TLS };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "print", required_argument, NULL, O_PRINT },
		{ "pid", required_argument, NULL, O_PID },
		{ "port", required_argument, NULL, O_PORT },
		{ "comm", required_argument, NULL, O_COMM },
		{ "service-name", required_argument, NULL, O_SVC },
		{ "capture-bytes", required_argument, NULL, O_CAP },
		{ "ring-bytes", required_argument, NULL, O_RING },
		{ "max-connections", required_argument, NULL, O_CONNS },
		{ "max-series", required_argument, NULL, O_SERIES },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "syscall-args", required_argument, NULL, O_ARGS },
		{ "attach-mode", required_argument, NULL, O_ATTACH },
		{ "no-host-metrics", no_argument, NULL, O_NO_HOST },
		{ "no-tcp-health", no_argument, NULL, O_NO_TCP },
		{ "no-sched", no_argument, NULL, O_NO_SCHED },
		{ "otlp-endpoint", required_argument, NULL, O_OTLP },
		{ "no-inject", no_argument, NULL, O_NO_INJECT },
		{ "inject-port", required_argument, NULL, O_INJECT_PORT },
		{ "no-inject-learn", no_argument, NULL, O_NO_INJECT_LEARN },
		{ "no-db-uprobes", no_argument, NULL, O_NO_DBU },
		{ "no-tls", no_argument, NULL, O_NO_TLS },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env, *level = getenv("SONDE_LOG_LEVEL");
	uint32_t v;
	int c;

	o->listen = getenv("SONDE_LISTEN") ? getenv("SONDE_LISTEN") : "0.0.0.0:9464";
	o->capture_bytes = SONDE_CAPTURE_DEFAULT;
	o->ring_bytes = 4u << 20;
	o->max_conns = 16384;
	o->max_series = 2000;
	env = getenv("SONDE_CAPTURE_BYTES");
	if (env && parse_u32(env, "SONDE_CAPTURE_BYTES", 64, SONDE_CAPTURE_MAX, &o->capture_bytes))
		return -EINVAL;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: o->listen = optarg; break;
		case O_PRINT:
			if (strcmp(optarg, "spans") != 0) {
				fprintf(stderr, "sonde: --print takes 'spans'\n");
				return -EINVAL;
			}
			o->print_spans = true;
			break;
		case O_PID:
			if (parse_u32(optarg, "--pid", 1, 0x7fffffff, &o->pid))
				return -EINVAL;
			break;
		case O_PORT:
			if (parse_u32(optarg, "--port", 1, 65535, &v))
				return -EINVAL;
			o->port = (uint16_t)v;
			break;
		case O_COMM: o->comm = optarg; break;
		case O_SVC: o->service_name = optarg; break;
		case O_CAP:
			if (parse_u32(optarg, "--capture-bytes", 64, SONDE_CAPTURE_MAX, &o->capture_bytes))
				return -EINVAL;
			break;
		case O_RING:
			if (parse_u32(optarg, "--ring-bytes", 256 * 1024, 1u << 30, &o->ring_bytes))
				return -EINVAL;
			break;
		case O_CONNS:
			if (parse_u32(optarg, "--max-connections", 16, 1u << 22, &o->max_conns))
				return -EINVAL;
			break;
		case O_SERIES:
			if (parse_u32(optarg, "--max-series", 1, 1u << 20, &o->max_series))
				return -EINVAL;
			break;
		case O_LOG: level = optarg; break;
		case O_NO_HOST: o->no_host_metrics = true; break;
		case O_NO_TCP: o->no_tcp_health = true; break;
		case O_NO_SCHED: o->no_sched = true; break;
		case O_OTLP: o->otlp_endpoint = optarg; break;
		case O_NO_INJECT: o->no_inject = true; break;
		case O_NO_INJECT_LEARN: o->no_inject_learn = true; break;
		case O_INJECT_PORT: {
			size_t n = 0;

			while (o->inject_ports[n])
				n++;
			if (parse_u32(optarg, "--inject-port", 1, 65535, &v))
				return -EINVAL;
			if (n + 1 >= sizeof(o->inject_ports) / sizeof(o->inject_ports[0])) {
				fprintf(stderr, "sonde: too many --inject-port\n");
				return -EINVAL;
			}
			o->inject_ports[n] = (uint16_t)v;
			break;
		}
		case O_NO_DBU: o->no_db_uprobes = true; break;
		case O_NO_TLS: o->no_tls = true; break;
		case O_ATTACH: {
			static const char *const modes[] = { "auto", "fentry", "kprobe", "tracepoint" };
			int i;

			for (i = 0; i < 4 && strcmp(optarg, modes[i]) != 0; i++)
				;
			if (i == 4) {
				fprintf(stderr, "sonde: --attach-mode takes auto, fentry, kprobe or tracepoint\n");
				return -EINVAL;
			}
			o->attach_mode = (enum loader_attach_mode)i;
			break;
		}
		case O_ARGS:
			if (strcmp(optarg, "auto") == 0)
				o->args_store = ARGS_AUTO;
			else if (strcmp(optarg, "task") == 0)
				o->args_store = ARGS_TASK;
			else if (strcmp(optarg, "hash") == 0)
				o->args_store = ARGS_HASH;
			else {
				fprintf(stderr, "sonde: --syscall-args takes auto, task or hash\n");
				return -EINVAL;
			}
			break;
		case O_VERSION: printf("sonde %s\n", SONDE_VERSION); exit(0);
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sonde: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (level) {
		static const char *const names[] = { "debug", "info", "warn", "error" };
		int i;

		for (i = 0; i < 4 && strcmp(level, names[i]) != 0; i++)
			;
		if (i == 4) {
			fprintf(stderr, "sonde: unknown log level '%s'\n", level);
			return -EINVAL;
		}
		log__set_level((enum log_level)i);
	}
	/* A service name only makes sense for one process; with every process
	 * traced, each keeps its executable's name. */
	if (!o->service_name && o->pid && getenv("OTEL_SERVICE_NAME") && *getenv("OTEL_SERVICE_NAME"))
		o->service_name = getenv("OTEL_SERVICE_NAME");
	if (o->service_name && !o->pid) {
		fprintf(stderr, "sonde: --service-name needs --pid\n");
		return -EINVAL;
	}
	return 0;
}

/* ---- spans → metrics / stdout ---- */

static const char *method_label(const char *m)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT",
					     "OPTIONS", "TRACE", "PATCH" };

	/* Semantic conventions: unknown methods collapse to _OTHER (cardinality). */
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(m, known[i]) == 0)
			return m;
	return "_OTHER";
}

/* Decimal without stdio: called twice per span on the hot path. */
static const char *utoa(unsigned int v, char *buf, size_t n)
{
	char *p = buf + n;

	*--p = 0;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v && p > buf);
	return p;
}

/* server_address label of a client span. Formatting an address costs a
 * printf; consecutive spans mostly share the peer, so remember the last. */
static const char *peer_label(const struct sonde_tuple *t)
{
	static struct sonde_tuple last;
	static char last_str[64];

	if (!last_str[0] || t->family != last.family || memcmp(t->daddr, last.daddr, 16) != 0) {
		span__addr(t, 1, last_str, sizeof(last_str));
		last = *t;
	}
	return last_str;
}

static void on_span(void *arg, const struct span *s)
{
	struct agent *a = arg;
	double secs = (double)(s->end_ns - s->start_ns) / 1e9;
	char status_buf[8], port_buf[8];
	const char *peer;
	/* no response (a failed client request): no status code */
	const char *status = s->status ? utoa(s->status, status_buf, sizeof(status_buf)) : "";
	const char *port;

	static const char *const kind_server[] = { "server" }, *const kind_client[] = { "client" };

	/* database uprobe spans do not pass through on_record's --comm filter */
	if (a->opt.comm && strncmp(s->comm, a->opt.comm, SONDE_COMM_LEN) != 0)
		return;

	metrics__add(a->m, a->fam_spans, s->kind == SPAN_SERVER ? kind_server : kind_client, 1);
	if (s->proto == SPAN_DB) {
		const char *lv[] = { s->db_system, s->db_operation, s->db_collection, s->error_type,
				     s->service };

		metrics__observe(a->m, s->kind == SPAN_SERVER ? a->fam_db_server : a->fam_db_client,
				 lv, secs);
	} else if (s->kind == SPAN_SERVER) {
		port = utoa(s->tuple.sport, port_buf, sizeof(port_buf));
		const char *lv[] = { method_label(s->method), status, s->route, s->service, port,
				     s->error_type };

		metrics__observe(a->m, a->fam_server, lv, secs);
	} else {
		port = utoa(s->tuple.dport, port_buf, sizeof(port_buf));
		peer = peer_label(&s->tuple);
		const char *lv[] = { method_label(s->method), status, s->route, s->service, peer, port,
				     s->error_type };

		metrics__observe(a->m, a->fam_client, lv, secs);
	}
	otlp__span(a->otlp, s);
	if (a->opt.print_spans && !a->print_failed && span__print_json(stdout, s) < 0) {
		a->print_failed = true;
		log_warn("stdout closed; no longer printing spans", LS("error", strerror(errno)));
	}
}

/* Tell the kernel to stop reporting a connection that is not HTTP. */
static void on_ignore(void *arg, uint32_t tgid, int32_t fd, uint64_t sk)
{
	struct agent *a = arg;
	uint64_t key = (uint64_t)tgid << 32 | (uint32_t)fd;
	struct sonde_conn c;
	int mfd = loader__conns_fd(a->ld);

	if (bpf_map_lookup_elem(mfd, &key, &c) == 0 && c.sk == sk) {
		c.flags |= SONDE_CONN_IGNORED;
		bpf_map_update_elem(mfd, &key, &c, BPF_EXIST);
	}
}

#define ADOPT_WINDOW_NS 2000000000ULL

/* A client connection speaks HTTP/1.x: its port is learnt for injection,
 * and a connection sockops could not have put in the sockhash (older than
 * the agent, or than the learning of its port) is adopted, so that its
 * next requests get a traceparent too (keep-alive pools). */
static void on_http_client(void *arg, const struct sonde_data_event *ev)
{
	struct agent *a = arg;
	uint16_t port = ev->tuple.dport;
	const char *colon = strrchr(a->opt.listen, ':');
	bool learnt = false;
	int err;

	/* Requests to the agent's own /metrics are never traced: no point. */
	if (!a->inject || (colon && strtoul(colon + 1, NULL, 10) == port))
		return;
	if (!a->opt.no_inject_learn)
		learnt = inject__add_port(a->inject, port);
	if (learnt)
		a->inject_learnt_ns = ev->hdr.ktime;
	/* Connected after the agent to a port known before: sockops has it.
	 * Around a learning, a pool's other connections (opened together,
	 * classified one after another) need adopting too: tried for 2 s. */
	if (!inject__has_port(a->inject, port) ||
	    (ev->role != SONDE_ROLE_UNKNOWN && ev->hdr.ktime - a->inject_learnt_ns > ADOPT_WINDOW_NS))
		return;
	err = inject__add_socket(a->inject, ev->tgid, ev->fd, &ev->tuple);
	if (err == 0)
		a->inject_adopted++;
	else if (err != -EEXIST)	/* EEXIST: sockops was first */
		log_debug("could not adopt a connection for injection", LI("pid", ev->tgid)
			  LI("fd", ev->fd) LS("error", strerror(-err)));
}

static void on_record(void *ctx, const void *data, size_t size)
{
	/* the smallest valid record of each op this ring carries (0: none) */
	static const size_t min_size[] = {
		[SONDE_OP_DATA] = sizeof(struct sonde_data_event),
		[SONDE_OP_CLOSE] = sizeof(struct sonde_close_event),
		[SONDE_OP_EXIT] = sizeof(struct sonde_exit_event),
		[SONDE_OP_TRACE_CTX] = sizeof(struct sonde_trace_ctx_event),
		[SONDE_OP_IO_END] = sizeof(struct sonde_io_end_event),
	};
	struct agent *a = ctx;
	const struct sonde_event_hdr *h = data;

	if (size < sizeof(*h) || h->size > size || h->op >= sizeof(min_size) / sizeof(min_size[0]) ||
	    !min_size[h->op] || size < min_size[h->op]) {
		a->bad_records++;
		return;
	}
	switch (h->op) {
	case SONDE_OP_DATA: {
		const struct sonde_data_event *ev = data;

		if (ev->cap_len > size - sizeof(*ev) || ev->cap_len > ev->len) {
			a->bad_records++;
			return;
		}
		if (a->opt.comm && strncmp(ev->comm, a->opt.comm, SONDE_COMM_LEN) != 0)
			return;
		conntrack__data(a->ct, ev);
		break;
	}
	case SONDE_OP_TRACE_CTX:
		tracectx__kernel((const struct sonde_trace_ctx_event *)data);
		break;
	case SONDE_OP_CLOSE:
		conntrack__close(a->ct, (const struct sonde_close_event *)data);
		break;
	case SONDE_OP_IO_END:
		conntrack__io_end(a->ct, (const struct sonde_io_end_event *)data);
		break;
	case SONDE_OP_EXIT:
		conntrack__exit(a->ct, ((const struct sonde_exit_event *)data)->tgid, h->ktime);
		dbclient__exit(a->dbc, ((const struct sonde_exit_event *)data)->tgid, h->ktime);
		break;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Everything committed up to shortly before now, in timestamp order. */
static void drain(struct agent *a, bool everything)
{
	uint64_t now = mono_ns();
	uint64_t horizon = everything ? UINT64_MAX : now - DRAIN_HORIZON_NS;

	dbclient__poll(a->dbc);	/* a call is known before the request it wrote */
	ring_set__drain(loader__rings(a->ld), horizon, on_record, a);
	dbclient__tick(a->dbc, everything ? now : horizon);
}

/* ---- /metrics ---- */

static int register_metrics(struct agent *a)
{
	static const char *const server_labels[] = { "http_request_method", "http_response_status_code",
						     "http_route", "service_name", "server_port",
						     "error_type" };
	static const char *const client_labels[] = { "http_request_method", "http_response_status_code",
						     "http_route", "service_name", "server_address",
						     "server_port", "error_type" };
	static const char *const db_labels[] = { "db_system_name", "db_operation_name",
						 "db_collection_name", "error_type", "service_name" };
	static const char *const l_netio[] = { "service_name", "network_io_direction" };
	static const char *const l_probe[] = { "hook", "mode" };
	static const char *const l_ring[] = { "ring" };
	static const char *const l_proto[] = { "protocol" };
	static const char *const l_kind[] = { "kind" };
	static const char *const l_version[] = { "version" };
	static const char *const l_reason[] = { "reason" };
	struct metrics *m = a->m;
	size_t cap = a->opt.max_series;
	int err;

#define L(x) x, sizeof(x) / sizeof(x[0])
#define NOL NULL, 0
#define FAM(var, type, name, help, labels, bounds, nb, max)                                  \
	do {                                                                                 \
		a->var = metrics__family(m, type, name, help, labels, bounds, nb, max);       \
		if (a->var < 0)                                                              \
			return a->var;                                                       \
	} while (0)
	FAM(fam_server, METRIC_HISTOGRAM, "http_server_request_duration_seconds",
	    "Duration of HTTP server requests, observed in the server process.", L(server_labels),
	    http_bounds, sizeof(http_bounds) / sizeof(double), cap);
	FAM(fam_client, METRIC_HISTOGRAM, "http_client_request_duration_seconds",
	    "Duration of HTTP client requests, observed in the client process.", L(client_labels),
	    http_bounds, sizeof(http_bounds) / sizeof(double), cap);
	FAM(fam_db_client, METRIC_HISTOGRAM, "db_client_operation_duration_seconds",
	    "Duration of database operations, observed in the client process.", L(db_labels),
	    db_bounds, sizeof(db_bounds) / sizeof(double), cap);
	FAM(fam_db_server, METRIC_HISTOGRAM, "db_server_operation_duration_seconds",
	    "Duration of database operations, observed in the database server process.",
	    L(db_labels), db_bounds, sizeof(db_bounds) / sizeof(double), cap);
	FAM(fam_db_infer, METRIC_COUNTER, "sonde_protocol_inference_failures_total",
	    "Connections taken for a database protocol whose first messages did not parse.",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_db_unanswered, METRIC_COUNTER, "sonde_db_unanswered_operations_total",
	    "Database operations forgotten without a result (closed, lost or pipelined too deep).",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_db_unmatched, METRIC_COUNTER, "sonde_db_unmatched_replies_total",
	    "Database replies seen with no operation waiting (e.g. pub/sub messages).",
	    L(l_proto), NULL, 0, 0);
	FAM(fam_netio, METRIC_COUNTER, "process_network_io_bytes_total",
	    "Bytes sent and received on TCP sockets, per service.", L(l_netio), NULL, 0, cap);
	FAM(fam_probe, METRIC_GAUGE, "sonde_probe_info",
	    "Attach mode chosen for each hook (1 = attached, 0 = unavailable).", L(l_probe), NULL, 0, 0);
	FAM(fam_events, METRIC_COUNTER, "sonde_ringbuf_events_total",
	    "Records written by BPF programs to a ring buffer.", L(l_ring), NULL, 0, 0);
	FAM(fam_drops, METRIC_COUNTER, "sonde_ringbuf_drops_total",
	    "Records lost because a ring buffer was full.", L(l_ring), NULL, 0, 0);
	FAM(fam_read_fail, METRIC_COUNTER, "sonde_payload_read_failures_total",
	    "Payloads the kernel side could not copy from process memory.", NOL, NULL, 0, 0);
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
	FAM(fam_spans, METRIC_COUNTER, "sonde_spans_total", "Spans finished.", L(l_kind), NULL, 0, 0);
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
	    "Outgoing requests left untouched by traceparent injection, by reason.", L(l_reason),
	    NULL, 0, 0);
	FAM(fam_inject_adopted, METRIC_COUNTER, "sonde_inject_connections_adopted_total",
	    "Established HTTP client connections put under injection after their first request "
	    "(connected before the agent, or before their port was learnt).", NOL, NULL, 0, 0);
#undef FAM
#undef L
#undef NOL
	if ((!a->opt.no_tcp_health && (err = tcpstate__new(&a->tcpstate, m, cap))) ||
	    (!a->opt.no_sched && (err = sched__new(&a->sched, m, cap))) ||
	    (err = procstat__new(&a->procstat, m, cap, a->opt.pid, a->opt.service_name)))
		return err;
	return 0;
}

static void self_usage(double *cpu_s, double *rss_bytes)
{
	struct rusage ru;
	long pages = 0;
	FILE *f;

	getrusage(RUSAGE_SELF, &ru);
	*cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%*s %ld", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	*rss_bytes = (double)pages * (double)sysconf(_SC_PAGESIZE);
}

/* Per-process TCP byte counts from the kernel, into per-service counters. */
static void tcp_bytes_cb(void *arg, uint32_t tgid, const void *value)
{
	struct agent *a = arg;
	const struct sonde_tcp_bytes *v = value;
	const char *svc = proc__service(tgid, NULL, "");
	const char *tx[] = { svc, "transmit" }, *rx[] = { svc, "receive" };

	if (v->tx)
		metrics__add(a->m, a->fam_netio, tx, (double)v->tx);
	if (v->rx)
		metrics__add(a->m, a->fam_netio, rx, (double)v->rx);
}

static void collect_tcp_bytes(struct agent *a)
{
	struct sonde_tcp_bytes v;

	mapdrain__u32(loader__tcp_bytes_fd(a->ld), &v, tcp_bytes_cb, a);
}

/* Brings every family up to date: before a scrape and before an OTLP export. */
static void collect_metrics(void *arg)
{
	struct agent *a = arg;
	const struct conntrack_stats *st = conntrack__stats(a->ct);
	static const char *const ring[] = { "events" };
	static const char *const http1[] = { "http1" };
	static const char *const version[] = { SONDE_VERSION };
	const struct probe_info *p;
	size_t np = loader__probes(a->ld, &p);
	uint64_t perr = 0;
	double cpu, rss;

	/* Drain first so the page reflects every request finished so far. */
	drain(a, false);
	collect_tcp_bytes(a);
	tcpstate__collect(a->tcpstate, loader__tcp_stats_fd(a->ld));
	sched__collect(a->sched, loader__runq_fd(a->ld), loader__ncpus(a->ld));
	procstat__collect(a->procstat);
	dbclient__collect(a->dbc);
	tls__collect(a->tls);
	for (size_t i = 0; i < np; i++) {
		const char *lv[] = { p[i].hook, p[i].mode };

		metrics__set(a->m, a->fam_probe, lv, p[i].attached ? 1 : 0);
	}
	metrics__set(a->m, a->fam_events, ring, (double)loader__counter(a->ld, SONDE_CNT_EVENTS));
	metrics__set(a->m, a->fam_drops, ring, (double)loader__counter(a->ld, SONDE_CNT_RING_DROPS));
	metrics__set(a->m, a->fam_read_fail, NULL, (double)loader__counter(a->ld, SONDE_CNT_READ_FAIL));
	for (size_t i = 0; i < sizeof(st->parse_errors) / sizeof(st->parse_errors[0]); i++)
		perr += st->parse_errors[i];
	metrics__set(a->m, a->fam_parse_err, http1, (double)perr);
	for (int p = DBCONN_PG; p < DBCONN__MAX; p++) {
		const char *lv[] = { dbconn__proto_name(p) };

		metrics__set(a->m, a->fam_parse_err, lv, (double)st->db.parse_errors[p]);
		metrics__set(a->m, a->fam_db_infer, lv, (double)st->db.inference_failures[p]);
		metrics__set(a->m, a->fam_db_unanswered, lv, (double)st->db.unanswered[p]);
		metrics__set(a->m, a->fam_db_unmatched, lv, (double)st->db.unmatched[p]);
	}
	metrics__set(a->m, a->fam_unmatched, NULL, (double)st->unmatched_responses);
	metrics__set(a->m, a->fam_unanswered, NULL, (double)st->pending_dropped);
	metrics__set(a->m, a->fam_conns, NULL, (double)conntrack__count(a->ct));
	metrics__set(a->m, a->fam_evicted, NULL, (double)st->conns_evicted);
	metrics__set(a->m, a->fam_not_http, NULL, (double)st->conns_not_http);
	metrics__set(a->m, a->fam_bad_records, NULL, (double)a->bad_records);
	metrics__set(a->m, a->fam_args_gc, NULL, (double)a->args_gc);
	self_usage(&cpu, &rss);
	metrics__set(a->m, a->fam_rss, NULL, rss);
	metrics__set(a->m, a->fam_cpu, NULL, cpu);
	metrics__set(a->m, a->fam_build, version, 1);
	metrics__set(a->m, a->fam_tp_invalid, NULL, (double)tracectx__stats()->traceparent_invalid);
	metrics__set(a->m, a->fam_injected, NULL, (double)inject__counter(a->inject, SONDE_INJ_DONE));
	metrics__set(a->m, a->fam_inject_adopted, NULL, (double)a->inject_adopted);
	{
		static const char *const reasons[SONDE_INJ__MAX] = {
			[SONDE_INJ_HAS_HEADER] = "has_header", [SONDE_INJ_SPLIT] = "split",
			[SONDE_INJ_HEAD_TOO_LONG] = "head_too_long", [SONDE_INJ_PIPELINED] = "pipelined",
			[SONDE_INJ_TOO_BIG] = "too_big", [SONDE_INJ_FAILED] = "failed",
		};

		for (int i = 0; i < SONDE_INJ__MAX; i++) {
			const char *lv[] = { reasons[i] };

			if (reasons[i])
				metrics__set(a->m, a->fam_inject_skipped, lv,
					     (double)inject__counter(a->inject, (enum sonde_inject_counter)i));
		}
	}
}

static int render_metrics(void *arg, struct metrics_buf *out)
{
	struct agent *a = arg;

	collect_metrics(a);
	if (metrics__render(a->m, out))
		return -ENOMEM;
	return a->opt.no_host_metrics ? 0 : host__collect(out);
}

static bool health(void *arg, char *msg, size_t n)
{
	struct agent *a = arg;
	const struct probe_info *p;
	size_t np, off;

	if (!a->attached) {
		snprintf(msg, n, "starting: probes not attached yet");
		return false;
	}
	if (loader__healthy(a->ld)) {
		snprintf(msg, n, "ok");
		return true;
	}
	np = loader__probes(a->ld, &p);
	off = (size_t)snprintf(msg, n, "hooks not attached:");
	for (size_t i = 0; i < np && off < n; i++)
		if (p[i].required && !p[i].attached)
			off += (size_t)snprintf(msg + off, n - off, " %s", p[i].hook);
	return false;
}

/* ---- event loop ---- */

enum { TAG_RING = 1, TAG_TIMER, TAG_SIGNAL, TAG_HTTP };

static int epoll_add(int ep, int fd, uint64_t tag)
{
	/* Rings are edge-triggered: a drain leaves the newest records behind
	 * (see DRAIN_HORIZON_NS), and a level-triggered ring would then wake
	 * the loop again at once; the BPF side's forced wakeups and the timer
	 * are what should wake it. */
	struct epoll_event e = { .events = EPOLLIN | (tag == TAG_RING ? EPOLLET : 0), .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;
}


static int run(struct agent *a)
{
	struct itimerspec its = { .it_interval = { 0, TICK_MS * 1000000L },
				  .it_value = { 0, TICK_MS * 1000000L } };
	int ep = -1, tfd = -1, sfd = -1, err = 0;
	unsigned int ticks = 0;
	sigset_t mask;
	bool stop = false;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ep < 0 || tfd < 0 || sfd < 0 || timerfd_settime(tfd, 0, &its, NULL)) {
		err = -errno;
		log_error("event loop setup failed", LS("error", strerror(-err)));
		goto cleanup;
	}
	for (int i = 0; i < ring_set__count(loader__rings(a->ld)); i++)
		if ((err = epoll_add(ep, ring_set__fd(loader__rings(a->ld), i), TAG_RING)))
			goto cleanup;
	if ((err = epoll_add(ep, tfd, TAG_TIMER)) || (err = epoll_add(ep, sfd, TAG_SIGNAL)) ||
	    (a->prom && (err = epoll_add(ep, prom__epoll_fd(a->prom), TAG_HTTP))))
		goto cleanup;

	while (!stop) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case TAG_RING:
				drain(a, false);
				break;
			case TAG_TIMER: {
				uint64_t exp;

				if (read(tfd, &exp, sizeof(exp)) < 0) {
					/* spurious wakeup */
				}
				drain(a, false);
				otlp__tick(a->otlp);
				tls__tick(a->tls, mono_ns());
				if (a->opt.print_spans)
					fflush(stdout);
				if (++ticks % (1000 / TICK_MS) == 0) {
					struct timespec now;

					clock_gettime(CLOCK_MONOTONIC, &now);
					uint64_t ns = (uint64_t)now.tv_sec * 1000000000ULL + now.tv_nsec;
					if (ns > IDLE_CONN_NS)
						conntrack__sweep(a->ct, ns - IDLE_CONN_NS);
					loader__preexisting_tick(a->ld);
					if (ticks % (5 * 1000 / TICK_MS) == 0)
						a->args_gc += (uint64_t)loader__gc_args(a->ld);
					if (a->watch && ticks % (LIB_RESCAN_S * 1000 / TICK_MS) == 0) {
						uint64_t t0 = mono_ns();

						libwatch__scan_all(a->watch);
						log_debug("libraries rescanned",
							  LI("scan_us", (mono_ns() - t0) / 1000));
					}
					if (a->prom)
						prom__run(a->prom);
				}
				break;
			}
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) == sizeof(si))
					log_info("signal received; detaching", LI("signal", si.ssi_signo));
				stop = true;
				break;
			}
			case TAG_HTTP:
				prom__run(a->prom);
				break;
			}
		}
	}
	drain(a, true);
	fflush(stdout);
cleanup:
	if (ep >= 0)
		close(ep);
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	return err;
}

int main(int argc, char **argv)
{
	struct agent a = { 0 };
	struct loader_opts lo = { 0 };
	sigset_t mask;
	int err;

	if (parse_options(argc, argv, &a.opt))
		return 2;
	/* Signals are read from a signalfd in the loop, so block them first. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	span__init_clock();
	if (a.opt.service_name)
		proc__set_override(a.opt.service_name);

	a.m = metrics__new();
	err = a.m ? register_metrics(&a) : -ENOMEM;
	if (err) {
		log_error("metrics registry setup failed", LS("error", strerror(-err)));
		return 1;
	}
	if ((err = otlp__setup(&a.otlp, a.m, a.opt.otlp_endpoint, SONDE_VERSION, collect_metrics, &a)))
		return err == -EINVAL ? 2 : 1;
	struct conntrack_ops ops = { .on_span = on_span, .on_ignore = on_ignore,
				     .on_http_client = on_http_client, .arg = &a };
	a.ct = conntrack__new(a.opt.max_conns, &ops);
	if (!a.ct)
		return 1;

	/* Serve /healthz (503) before attaching so orchestrators see "starting". */
	if (strcmp(a.opt.listen, "none") != 0) {
		struct prom_handlers h = { .render = render_metrics, .health = health, .arg = &a };

		err = prom__start(&a.prom, a.opt.listen, &h);
		if (err)
			goto cleanup;
	}

	lo.self_tgid = (uint32_t)getpid();
	lo.filter_tgid = a.opt.pid;
	lo.filter_port = a.opt.port;
	lo.capture_bytes = a.opt.capture_bytes;
	lo.ring_bytes = a.opt.ring_bytes;
	lo.args_store = a.opt.args_store;
	lo.attach_mode = a.opt.attach_mode;
	lo.no_tcp_health = a.opt.no_tcp_health;
	lo.no_sched = a.opt.no_sched;
	lo.no_inject = a.opt.no_inject;
	lo.tls = !a.opt.no_tls;
	err = loader__open(&a.ld, &lo);
	if (err) {
		log_error("cannot start tracing", LS("error", strerror(-err)));
		goto cleanup;
	}
	loader__seed_preexisting(a.ld, &lo);
	if (!a.opt.no_inject && inject__open(&a.inject, a.ld, lo.self_tgid, a.opt.pid) == 0) {
		for (size_t i = 0; a.opt.inject_ports[i]; i++)
			inject__add_port(a.inject, a.opt.inject_ports[i]);
		inject__add_port(a.inject, a.opt.port);
	}
	/* Uprobe users register with one libwatch, then one scan serves all. */
	a.watch = libwatch__new();
	if (!a.watch) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (!a.opt.no_db_uprobes) {
		struct dbclient_opts dco = { .self_tgid = lo.self_tgid, .filter_tgid = lo.filter_tgid,
					     .filter_port = lo.filter_port, .on_span = on_span,
					     .arg = &a };
		int derr = dbclient__open(&a.dbc, &dco, a.m, a.watch);

		if (derr)
			log_warn("database client uprobes unavailable; database spans from the wire only",
				 LS("error", strerror(-derr)));
		else
		{
			dbconn__set_claim(dbclient__claim);
			dbconn__set_encrypted_hook(dbclient__encrypted_conn);
			dbconn__set_wire_hook(dbclient__wire);
		}
	}
	if (!a.opt.no_tls) {
		struct tls_opts to = { .self_tgid = lo.self_tgid, .filter_tgid = lo.filter_tgid,
				       .capture_bytes = lo.capture_bytes,
				       .rings_fd = loader__rings_fd(a.ld),
				       .conns_fd = loader__conns_fd(a.ld),
				       .ssl_calls_fd = loader__ssl_calls_fd(a.ld) };
		int terr = tls__open(&a.tls, &to, a.m, a.watch);

		if (terr)
			log_warn("TLS tracer unavailable; HTTPS is not traced",
				 LS("error", strerror(-terr)));
		/* per file: sonde_tls_probe_info */
		loader__add_probe(a.ld, "ssl_read_write", terr ? "unavailable" : "uprobe", !terr,
				  terr ? strerror(-terr) : NULL);
		loader__add_probe(a.ld, "tls:sched_process_exec",
				  tls__exec_hooked(a.tls) ? "tracepoint" : "unavailable",
				  tls__exec_hooked(a.tls), NULL);
	}
	{
		uint64_t t0 = mono_ns();

		libwatch__scan_all(a.watch);
		log_info("libraries scanned for uprobes", LI("openssl_files", tls__files(a.tls))
			 LI("processes", libwatch__stats(a.watch)->scans)
			 LI("executables_checked", libwatch__stats(a.watch)->exes_checked)
			 LI("scan_us", (mono_ns() - t0) / 1000) LI("rescan_s", LIB_RESCAN_S));
	}
	a.attached = true;
	log_info("sonde running", LS("version", SONDE_VERSION) LI("pid", getpid())
		 LS("print", a.opt.print_spans ? "spans" : "none") LI("filter_pid", a.opt.pid)
		 LI("filter_port", a.opt.port) LS("filter_comm", a.opt.comm));
	err = run(&a);
cleanup:
	inject__close(a.inject);	/* shares maps of the loader's objects */
	dbclient__free(a.dbc);
	tls__free(a.tls);	/* its uprobes write into the loader's rings */
	libwatch__free(a.watch);
	loader__close(a.ld);
	otlp__free(a.otlp);	/* after the final drain; flushes for at most 2 s */
	prom__stop(a.prom);
	conntrack__free(a.ct);
	tcpstate__free(a.tcpstate);
	sched__free(a.sched);
	procstat__free(a.procstat);
	metrics__free(a.m);
	log_info("sonde stopped", LI("status", err));
	return err ? 1 : 0;
}
