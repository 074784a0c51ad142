/* The agent: builds every module from the configuration, runs the one
 * epoll loop (rings, timer, signals, /metrics) and dispatches each ring
 * record to the connection table. Data flows one way from here:
 * probe → ring → conn/ → proto/ → span/ → signals/ → metrics/, export/. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "conn/conn.h"
#include "conn/records.h"
#include "export/otlp.h"
#include "export/prom.h"
#include "export/prom_text.h"
#include "host/host.h"
#include "metrics/metrics.h"
#include "probe/dbclient.h"
#include "probe/inject.h"
#include "probe/libwatch.h"
#include "probe/loader.h"
#include "probe/optional.h"
#include "probe/sock.h"
#include "probe/ring.h"
#include "probe/tls.h"
#include "signals/procstat.h"
#include "signals/sched.h"
#include "signals/self.h"
#include "signals/signals.h"
#include "signals/tcpstate.h"
#include "span/builder.h"
#include "span/tracectx.h"
#include "util/hostlock.h"
#include "util/log.h"
#include "identity/identity.h"
#include "util/proc.h"

#define TICK_MS 25			/* ring drain period; wakeups are batched */
#define IDLE_TICK_MS 250		/* the period once a second went by without a record */
/* Records younger than this stay in their ring until the next drain, so
 * one still being written on another CPU cannot be overtaken. */
#define DRAIN_HORIZON_NS 1000000ULL
#define IDLE_CONN_NS (300ULL * 1000000000ULL)
#define LIB_RESCAN_S 10			/* /proc/PID/maps rescan for libraries dlopen()ed late */
#define TRIM_S 30			/* malloc_trim period: freed heap pages back to the kernel */

struct agent {
	struct config opt;
	struct loader *ld;
	struct conn_table *ct;
	struct metrics *m;
	struct tracectx *tc;		/* trace context state (kernel records, threads) */
	struct span_builder *spans;
	struct signals *sig;		/* spans → RED metrics, OTLP, stdout */
	struct self_metrics *self;	/* sonde_* */
	struct records_hooks record_hooks;	/* on_record's part beyond the tables */
	struct prom_server *prom;
	struct tcpstate *tcpstate;	/* TCP health per service */
	struct sched *sched;		/* run-queue latency per service */
	struct procstat *procstat;	/* /proc resource metrics per service */
	struct otlp *otlp;		/* OTLP/HTTP export; NULL when off */
	struct inject *inject;		/* NULL: --no-inject or it could not attach */
	struct dbclient *dbc;		/* libpq/libmysqlclient uprobes; NULL when off */
	struct tls *tls;		/* OpenSSL uprobes; NULL when off or unavailable */
	struct libwatch *watch;		/* libraries to uprobe, found in /proc/PID/maps */
	struct hostlock *lock;		/* one agent per host; NULL: --allow-second-agent beside one */
	bool second;			/* another agent holds the host lock */
	pid_t other_agent;		/* its pid; 0: not known */
	bool attached;
	/* SONDE_RECORD_DUMP: every record as handled, in the format that
	 * tests/bench/replay.c reads back; NULL when not asked for */
	FILE *dump;
	uint64_t bad_records;
	uint64_t args_gc;		/* syscall-args entries of dead threads removed */
};

static uint64_t mono_ns(void);
static size_t drain(struct agent *a, bool everything);

/* One record: its size as a u64, then its bytes padded to 8, so that the
 * replay can hand each one over in place, aligned. */
static void dump_record(struct agent *a, const void *data, size_t size)
{
	static const uint8_t pad[8];
	uint64_t n = size;

	if (fwrite(&n, sizeof(n), 1, a->dump) != 1 || fwrite(data, 1, size, a->dump) != size ||
	    fwrite(pad, 1, (8 - size % 8) % 8, a->dump) != (8 - size % 8) % 8) {
		log_warn("SONDE_RECORD_DUMP: write failed; no longer dumping",
			 LS("error", strerror(errno)));
		fclose(a->dump);
		a->dump = NULL;
	}
}

/* A process exited: its held database calls, injection state and byte
 * ledger go too. */
static void process_gone(void *arg, uint32_t tgid, uint64_t ktime)
{
	struct agent *a = arg;

	dbclient__exit(a->dbc, tgid, ktime);
	inject__process_gone(a->inject, tgid);
	self__process_gone(a->self, tgid);
}

static void record_bytes(void *arg, uint32_t tgid, bool tx, uint32_t n)
{
	self__record_bytes(((struct agent *)arg)->self, tgid, tx, n);
}

static void on_record(void *ctx, const void *data, size_t size)
{
	struct agent *a = ctx;

	if (a->dump)
		dump_record(a, data, size);
	if (records__handle(a->ct, a->tc, &a->record_hooks, data, size) < 0)
		a->bad_records++;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Everything committed up to shortly before now, in timestamp order. */
/* Returns the records handed over. */
static size_t drain(struct agent *a, bool everything)
{
	uint64_t now = mono_ns();
	uint64_t horizon = everything ? UINT64_MAX : now - DRAIN_HORIZON_NS;
	size_t n;

	dbclient__poll(a->dbc);	/* a call is known before the request it wrote */
	tls__poll_execs(a->tls);	/* an exec is known before its image's requests */
	n = ring_set__drain(loader__rings(a->ld), horizon, on_record, a);
	dbclient__tick(a->dbc, everything ? now : horizon);
	return n;
}

/* The drain timer's period: TICK_MS while records come, IDLE_TICK_MS after
 * a second without one (an idle agent then wakes 4 times a second, not 40:
 * each wakeup cost ~90 us of CPU in a VM here). The first records after a
 * quiet spell wait up to IDLE_TICK_MS; a ring filling past its wakeup
 * level wakes the loop at once either way. */
static void set_tick(int tfd, long ms)
{
	struct itimerspec its = { .it_interval = { ms / 1000, (ms % 1000) * 1000000L },
				  .it_value = { ms / 1000, (ms % 1000) * 1000000L } };

	timerfd_settime(tfd, 0, &its, NULL);
}

/* Work came (records, an exec): back to TICK_MS if the timer had slowed. */
static void tick_busy(int tfd, bool *idle, unsigned int *quiet)
{
	*quiet = 0;
	if (*idle) {
		set_tick(tfd, TICK_MS);
		*idle = false;
	}
}

/* ---- /metrics ---- */

/* Brings every family up to date: before a scrape and before an OTLP export. */
static void collect_metrics(void *arg)
{
	struct agent *a = arg;
	struct self_sources src = { .ld = a->ld, .conns = a->ct, .inject = a->inject, .tc = a->tc,
				    .bad_records = a->bad_records, .args_gc = a->args_gc };

	/* Drain first so the page reflects every request finished so far. */
	drain(a, false);
	tcpstate__collect(a->tcpstate, optional__tcp_stats_fd(a->ld));
	sched__collect(a->sched, optional__runq_iter_open(a->ld), optional__runq_fd(a->ld),
		       loader__ncpus(a->ld));
	procstat__collect(a->procstat);
	dbclient__collect(a->dbc);
	tls__collect(a->tls);
	self__collect(a->self, &src);
	signals__collect(a->sig);
	identity__collect();
}

static int render_metrics(void *arg, struct metrics_buf *out)
{
	struct agent *a = arg;

	collect_metrics(a);
	if (prom_text__render(a->m, out) || identity__render(out))
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

enum { TAG_RING = 1, TAG_TIMER, TAG_SIGNAL, TAG_HTTP, TAG_EXEC };

static int epoll_add(int ep, int fd, uint64_t tag)
{
	/* Rings are edge-triggered: a drain leaves the newest records behind
	 * (see DRAIN_HORIZON_NS), and a level-triggered ring would then wake
	 * the loop again at once; the BPF side's forced wakeups and the timer
	 * are what should wake it. */
	struct epoll_event e = { .events = EPOLLIN | (tag == TAG_RING ? EPOLLET : 0), .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;
}


int agent__run(struct agent *a)
{
	struct itimerspec its = { .it_interval = { 0, TICK_MS * 1000000L },
				  .it_value = { 0, TICK_MS * 1000000L } };
	int ep = -1, tfd = -1, sfd = -1, err = 0;
	unsigned int quiet = 0, seconds = 0;	/* timer drains in a row without a record; seconds run */
	bool idle = false;			/* the timer runs at IDLE_TICK_MS */
	uint64_t next_second = mono_ns() + 1000000000ULL;
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
	    (a->prom && (err = epoll_add(ep, prom__epoll_fd(a->prom), TAG_HTTP))) ||
	    (tls__exec_fd(a->tls) >= 0 && (err = epoll_add(ep, tls__exec_fd(a->tls), TAG_EXEC))))
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
				if (drain(a, false))
					tick_busy(tfd, &idle, &quiet);
				break;
			case TAG_TIMER: {
				uint64_t exp, ns;

				if (read(tfd, &exp, sizeof(exp)) < 0) {
					/* spurious wakeup */
				}
				if (drain(a, false))
					tick_busy(tfd, &idle, &quiet);
				else if (!idle && ++quiet >= 1000 / TICK_MS && !tls__pending(a->tls)) {
					set_tick(tfd, IDLE_TICK_MS);
					idle = true;
				}
				ns = mono_ns();
				otlp__tick(a->otlp);
				tls__tick(a->tls, ns);
				if (a->opt.print_spans)
					fflush(stdout);
				if (ns >= next_second) {
					next_second = ns + 1000000000ULL;
					seconds++;
					if (ns > IDLE_CONN_NS)
						conn__sweep(a->ct, ns - IDLE_CONN_NS);
					sock_probe__preexisting_tick(a->ld);
					/* pages freed as connections went (the heap only
					 * shrinks from its top by itself) */
					if (seconds % TRIM_S == 0)
						malloc_trim(0);
					identity__tick();
					if (seconds % 5 == 0)
						a->args_gc += (uint64_t)sock_probe__gc_args(a->ld);
					if (a->watch && seconds % LIB_RESCAN_S == 0) {
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
			case TAG_EXEC:	/* its library scan is due in 100 ms */
				tls__tick(a->tls, mono_ns());
				if (tls__pending(a->tls))
					tick_busy(tfd, &idle, &quiet);
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


/* The kernel side hears back from the connection table through these two
 * (conn_hooks): which connections to stop reporting, and which client
 * connections traceparent injection should take over. */
static void hook_ignore(void *arg, uint32_t tgid, int32_t fd, uint64_t sk)
{
	sock_probe__ignore_conn(((struct agent *)arg)->ld, tgid, fd, sk);
}

static void hook_unignore(void *arg, uint32_t tgid, int32_t fd, uint64_t sk)
{
	sock_probe__unignore_conn(((struct agent *)arg)->ld, tgid, fd, sk);
}

static void hook_injectable(void *arg, const struct sonde_data_event *ev,
			    const struct sonde_tuple *tuple)
{
	inject__client_seen(((struct agent *)arg)->inject, ev, tuple);
}

/* A connection the table met without its SONDE_OP_CONN record: what the
 * kernel's entry still says (addresses, executable), and the process's
 * name from /proc. */
static bool hook_meta(void *arg, uint32_t tgid, int32_t fd, uint64_t sk,
		      struct sonde_conn_event *out)
{
	struct agent *a = arg;
	uint64_t key = (uint64_t)tgid << 32 | (uint32_t)fd;
	struct sonde_conn c;
	char path[64];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%u/comm", tgid);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f >= 0) {
		n = read(f, out->comm, sizeof(out->comm) - 1);
		close(f);
		if (n > 0 && out->comm[n - 1] == '\n')
			n--;
		out->comm[n > 0 ? n : 0] = 0;
	}
	if (bpf_map_lookup_elem(sock_probe__conns_fd(a->ld), &key, &c) != 0 || c.sk != sk)
		return f >= 0;
	out->tuple = c.tuple;
	memcpy(out->exe, c.exe, sizeof(out->exe));
	out->role = c.role;
	return true;
}

/* Feeds injection's process rule: processes that serve or send HTTP/1.x,
 * and ports that carry something else (another protocol, or TLS). The
 * port is the server's: the remote one of a client connection, the local
 * one of a server connection. */
static void hook_classified(void *arg, const struct sonde_data_event *ev,
			    const struct sonde_tuple *tuple, int proto, uint8_t role)
{
	struct inject *in = ((struct agent *)arg)->inject;
	bool plain_http = proto >= 0 && proto < PROTO__COUNT && proto_table[proto]->injectable &&
			  !(ev->hdr.flags & SONDE_F_TLS);
	uint16_t port = role == SONDE_ROLE_CLIENT ? tuple->dport :
			role == SONDE_ROLE_SERVER ? tuple->sport : 0;

	if (!in)
		return;
	if (proto >= 0 && proto < PROTO__COUNT && proto_table[proto]->injectable)
		inject__http_process(in, ev->tgid);
	if (!plain_http && port)
		inject__not_http_port(in, port);
	/* Passed through by sk_msg, but through tcp_bpf all the same (bulk
	 * throughput fell ~40% here): out of the sockhash. */
	if (!plain_http && role == SONDE_ROLE_CLIENT)
		inject__drop_socket(in, ev->tgid, ev->fd, tuple);
}

/* The port of --listen, which injection must leave alone; 0 when none. */
static uint16_t listen_port(const char *listen)
{
	const char *colon = strrchr(listen, ':');

	return colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
}

/* Uprobe users register with one libwatch, then one scan serves all. */
static void open_uprobes(struct agent *a, const struct loader_opts *lo)
{
	if (!a->opt.no_db_uprobes) {
		struct dbclient_opts dco = { .self_tgid = lo->self_tgid, .filter_tgid = lo->filter_tgid,
					     .filter_port = lo->filter_port, .spans = a->spans };
		int derr = dbclient__open(&a->dbc, &dco, a->m, a->watch);

		if (derr)
			log_warn("database client uprobes unavailable; database spans from the wire only",
				 LS("error", strerror(-derr)));
	}
	if (!a->opt.no_tls) {
		struct tls_opts to = { .self_tgid = lo->self_tgid, .filter_tgid = lo->filter_tgid,
				       .capture_bytes = lo->capture_bytes,
				       .filter_port = lo->filter_port,
				       .rings_fd = sock_probe__rings_fd(a->ld),
				       .conns_fd = sock_probe__conns_fd(a->ld),
				       .ssl_calls_fd = sock_probe__ssl_calls_fd(a->ld),
				       .membio_tgids_fd = sock_probe__membio_tgids_fd(a->ld),
				       .membio_recv_fd = sock_probe__membio_recv_fd(a->ld) };
		int terr = tls__open(&a->tls, &to, a->m, a->watch);

		if (terr)
			log_warn("TLS tracer unavailable; HTTPS is not traced",
				 LS("error", strerror(-terr)));
		/* per file: sonde_tls_probe_info */
		loader__add_probe(a->ld, "ssl_read_write", terr ? "unavailable" : "uprobe", !terr,
				  terr ? strerror(-terr) : NULL);
		loader__add_probe(a->ld, "tls:sched_process_exec",
				  tls__exec_hooked(a->tls) ? "tracepoint" : "unavailable",
				  tls__exec_hooked(a->tls), NULL);
	}
	{
		uint64_t t0 = mono_ns();

		libwatch__scan_all(a->watch);
		log_info("libraries scanned for uprobes", LI("openssl_files", tls__files(a->tls))
			 LI("processes", libwatch__stats(a->watch)->scans)
			 LI("executables_checked", libwatch__stats(a->watch)->exes_checked)
			 LI("scan_us", (mono_ns() - t0) / 1000) LI("rescan_s", LIB_RESCAN_S));
	}
}

/* Two agents' sockops/sk_msg programs break each other's injection (the
 * first sockhash a socket lands in does the injecting), and both would
 * count every request: a second agent refuses to start, unless allowed,
 * and then runs without injection. */
static int take_host_lock(struct agent *a)
{
	int err = hostlock__take(&a->lock, HOSTLOCK_PATH, &a->other_agent);
	char msg[256];

	if (err == -EBUSY && !a->opt.allow_second_agent) {
		snprintf(msg, sizeof(msg), "another sonde agent is running on this host (pid %d); "
			 "not starting a second one (--allow-second-agent starts it anyway, "
			 "without traceparent injection)", (int)a->other_agent);
		log_error(msg, LI("pid", a->other_agent) LS("lock", HOSTLOCK_PATH));
		return -EBUSY;
	}
	if (err == -EBUSY) {
		snprintf(msg, sizeof(msg), "another sonde agent is running on this host (pid %d); "
			 "starting anyway (--allow-second-agent) with traceparent injection off",
			 (int)a->other_agent);
		log_warn(msg, LI("pid", a->other_agent) LS("lock", HOSTLOCK_PATH));
		a->opt.no_inject = true;
		a->second = true;
		return 0;
	}
	if (err)	/* e.g. a read-only /run: nothing to compare with, run on */
		log_warn("cannot check for another sonde agent on this host",
			 LS("lock", HOSTLOCK_PATH) LS("error", strerror(-err)));
	return 0;
}

/* --pid of no process is most likely a typo, but the agent runs on: the
 * kernel filter takes whichever process gets that pid later (a service
 * being restarted), and an agent that exits would help nobody waiting for
 * it. A thread id is a mistake the filter (on the process id) never matches. */
static void check_filter_pid(uint32_t pid)
{
	char path[64], line[128];
	long tgid = -1;
	FILE *f;

	if (!pid)
		return;
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	f = fopen(path, "re");
	if (!f) {
		log_warn("--pid: no such process now; tracing whichever process gets this pid",
			 LI("pid", pid));
		return;
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %ld", &tgid) == 1)
			break;
	fclose(f);
	if (tgid > 0 && tgid != (long)pid)
		log_warn("--pid is a thread, not a process: nothing will match; pass the process id",
			 LI("pid", pid) LI("process", tgid));
}

int agent__open(struct agent **out, const struct config *c)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct loader_opts lo = { 0 };
	struct conn_hooks hooks;
	struct signals_opts so;
	struct span_sink sink;
	size_t cap = c->max_series;
	int err;

	if (!a)
		return -ENOMEM;
	*out = a;
	a->opt = *c;
	span__init_clock();
	if ((err = host__configure(&c->host)))
		return err;	/* config__parse checked the lengths */
	{
		struct ident_opts io = { .containerd_sock = c->containerd_sock,
					 .containerd_ns = c->containerd_ns,
					 .docker_sock = c->docker_sock,
					 .podman_sock = c->podman_sock,
					 .crio_sock = c->crio_sock,
					 .timeout_ms = c->runtime_timeout_ms,
					 .override = c->service_name,
					 .pod_labels = c->metrics_pod_labels };

		a->m = metrics__new();
		if (!a->m || (err = identity__init(&io, a->m))) {
			log_error("identity setup failed", LS("error", strerror(a->m ? -err : ENOMEM)));
			return a->m ? err : -ENOMEM;
		}
	}

	err = a->m ? self__new(&a->self, a->m, cap, SONDE_VERSION) : -ENOMEM;
	if (!err && !c->no_tcp_health)
		err = tcpstate__new(&a->tcpstate, a->m, cap);
	if (!err && !c->no_sched)
		err = sched__new(&a->sched, a->m, cap, c->runq_histogram);
	if (!err)
		err = procstat__new(&a->procstat, a->m, cap, c->pid, c->service_name);
	if (err) {
		log_error("metrics registry setup failed", LS("error", strerror(-err)));
		return err;
	}
	if ((err = otlp__setup(&a->otlp, a->m, c->otlp_endpoint, SONDE_VERSION, &c->url_redact,
				collect_metrics, a)))
		return err;
	so = (struct signals_opts){ .max_series = cap, .comm = c->comm,
				    .max_routes_per_service = c->max_routes_per_service,
				    .print_spans = c->print_spans, .otlp = a->otlp };
	if ((err = signals__new(&a->sig, a->m, &so)))
		return err;
	sink = (struct span_sink){ .emit = signals__span, .arg = a->sig };
	a->tc = tracectx__new();
	a->spans = a->tc ? span_builder__new(a->tc, &sink, &c->url_redact) : NULL;
	a->watch = libwatch__new();
	if (!a->spans || !a->watch)
		return -ENOMEM;

	if ((err = take_host_lock(a)))
		return err;
	check_filter_pid(c->pid);
	/* Serve /healthz (503) before attaching so orchestrators see "starting". */
	if (strcmp(c->listen, "none") != 0) {
		struct prom_handlers h = { .render = render_metrics, .health = health, .arg = a,
					   .gzip = !c->no_metrics_gzip };

		if ((err = prom__start(&a->prom, c->listen, &h)))
			return err == -EINVAL ? -EIO : err;	/* -EINVAL is for configuration */
	}

	lo.self_tgid = (uint32_t)getpid();
	lo.filter_tgid = c->pid;
	lo.filter_port = c->port;
	lo.capture_bytes = c->capture_bytes;
	lo.ring_bytes = c->ring_bytes;
	lo.args_store = c->args_store;
	lo.attach_mode = c->attach_mode;
	lo.no_tcp_health = c->no_tcp_health;
	lo.no_sched = c->no_sched;
	lo.runq_histogram = c->runq_histogram;
	lo.no_inject = a->opt.no_inject;
	lo.tls = !c->no_tls;
	if ((err = loader__open(&a->ld, &lo))) {
		log_error("cannot start tracing", LS("error", strerror(-err)));
		return err == -EINVAL ? -EIO : err;	/* -EINVAL is for configuration */
	}
	sock_probe__seed_preexisting(a->ld, &lo);
	if (a->second && !c->no_inject) {
		char why[80];

		snprintf(why, sizeof(why), "another sonde agent (pid %d) injects", (int)a->other_agent);
		inject__report_off(a->ld, why);
	}
	if (!a->opt.no_inject && inject__open(&a->inject, a->ld, lo.self_tgid, c->pid) == 0) {
		inject__set_policy(a->inject, !c->no_inject_learn,
				   strcmp(c->listen, "none") ? listen_port(c->listen) : 0);
		for (size_t i = 0; c->inject_ports[i]; i++)
			inject__add_port(a->inject, c->inject_ports[i]);
		inject__add_port(a->inject, c->port);
	}
	open_uprobes(a, &lo);
	hooks = (struct conn_hooks){ .ignore = hook_ignore, .unignore = hook_unignore,
				     .injectable = hook_injectable,
				     .classified = hook_classified, .meta = hook_meta, .arg = a };
	a->ct = conn__new(c->max_conns, &hooks, a->spans, dbclient__calls(a->dbc));
	if (a->ct && a->opt.comm)
		conn__set_comm(a->ct, a->opt.comm);
	if (a->ct)
		conn__set_limits(a->ct, &(struct proto_limits){
					.h2_max_streams = c->h2_max_streams,
					.h2_max_header_block = c->h2_max_header_block });
	if (!a->ct)
		return -ENOMEM;
	a->attached = true;
	a->record_hooks.exit = process_gone;
	a->record_hooks.bytes = a->self && sock_probe__bytes_in_records(a->ld) ? record_bytes : NULL;
	a->record_hooks.arg = a;
	if (getenv("SONDE_RECORD_DUMP") && !(a->dump = fopen(getenv("SONDE_RECORD_DUMP"), "we")))
		log_warn("SONDE_RECORD_DUMP: cannot open; not dumping",
			 LS("path", getenv("SONDE_RECORD_DUMP")) LS("error", strerror(errno)));
	/* Loading the BPF objects parsed the kernel's BTF (megabytes, freed
	 * since) below what start-up allocated after: give those pages back. */
	malloc_trim(0);
	if ((err = ring_set__map(loader__rings(a->ld)))) {
		log_error("cannot map the event rings", LS("error", strerror(-err)));
		return err == -EINVAL ? -EIO : err;
	}
	log_info("sonde running", LS("version", SONDE_VERSION) LI("pid", getpid())
		 LS("print", c->print_spans ? "spans" : "none") LI("filter_pid", c->pid)
		 LI("filter_port", c->port) LS("filter_comm", c->comm));
	return 0;
}

/* Detaching is slow: each perf-event link (syscall tracepoints; uprobes
 * before Linux 6.6) waits, when closed, for an RCU grace period under a
 * kernel-wide mutex (60-130 ms each here, serialised whatever the number of
 * threads). uprobe_multi links wait without it and are closed side by side
 * (probe/uprobe.c). It runs beside the OTLP flush. */
static void *close_probes(void *arg)
{
	struct agent *a = arg;
	uint64_t t0 = mono_ns();

	inject__close(a->inject);	/* shares maps of the loader's objects */
	dbclient__free(a->dbc);
	tls__free(a->tls);	/* its uprobes write into the loader's rings */
	libwatch__free(a->watch);
	loader__close(a->ld);
	if (a->ld)
		log_info("probes detached", LI("detach_ms", (mono_ns() - t0) / 1000000));
	return NULL;
}

void agent__close(struct agent *a)
{
	pthread_t th;
	bool threaded;

	if (!a)
		return;
	threaded = pthread_create(&th, NULL, close_probes, a) == 0;
	otlp__free(a->otlp);	/* after the final drain; flushes for at most 2 s */
	if (threaded)
		pthread_join(th, NULL);
	else
		close_probes(a);
	prom__stop(a->prom);
	conn__free(a->ct);
	span_builder__free(a->spans);
	tracectx__free(a->tc);
	signals__free(a->sig);
	self__free(a->self);
	tcpstate__free(a->tcpstate);
	sched__free(a->sched);
	procstat__free(a->procstat);
	metrics__free(a->m);
	identity__fini();
	hostlock__release(a->lock);	/* last: every probe is detached by now */
	if (a->dump)
		fclose(a->dump);
	free(a);
}
