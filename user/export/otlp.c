/* The OTLP exporter: the loop thread samples and queues spans (bounded) and
 * snapshots the metrics registry; one worker thread per signal encodes and
 * POSTs with libcurl, retrying with backoff, so the loop never waits on the
 * network. Losses are counted in sonde_export_dropped_total. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "export/otlp.h"
#include "export/otlp_curl.h"
#include "export/otlp_proc.h"
#include "util/log.h"

#define RESP_MAX 65536			/* response bytes kept (partial_success) */
#define SHUTDOWN_FLUSH_NS 2000000000ULL
/* Bytes of queue per span of OTEL_BSP_MAX_QUEUE_SIZE: a record of a typical
 * HTTP span takes ~200 bytes, a database span with its query ~300. */
#define QUEUE_REC_BYTES 384
#define WORKER_SOCKS 4			/* sockets curl may have open at once (happy eyeballs) */

static struct otlp_curl cu;		/* filled once by start_workers */
static const char *const signal_name[] = { "traces", "metrics" };
static const char *const drop_name[] = { "queue_full", "retries_exhausted", "rejected",
					 "partial_success", "shutdown" };

struct worker {
	struct otlp *o;
	enum otlp_signal sig;
	pthread_t th;
	bool started;
	bool failing;			/* last attempt failed: log only transitions */
	pthread_cond_t cond;
	CURL *curl;
	struct curl_slist *hdrs;
	uint8_t resp[RESP_MAX];
	size_t resp_len;
	long retry_after;
	bool done;			/* the thread has returned (under o->mu) */
	/* curl's open sockets (under o->mu; -1: free slot): shut down at the
	 * end of the shutdown flush, so a request to a receiver that never
	 * answers ends then and not at its own timeout */
	int socks[WORKER_SOCKS];
	/* traces: the records of the batch being encoded, and the encoder */
	const void **recs;
	struct otlp_enc *enc;
};

struct otlp {
	struct otlp_config cfg;
	struct metrics *m;
	void (*refresh)(void *arg);
	void *refresh_arg;
	bool running;			/* workers started (loop thread; see start_workers) */
	bool curl_loaded;		/* cu filled */
	bool curl_ready;		/* curl_global_init done */
	bool dead;			/* workers could not start: export off */
	pthread_mutex_t mu;		/* everything below up to the counters */
	pthread_cond_t done_cond;	/* a worker has returned */
	bool stop;
	uint64_t deadline_ns;		/* shutdown: give up after this */
	/* Queued spans as records, at most cfg.queue_size of them. The traces
	 * worker encodes straight from the ring and releases what it took
	 * once the request is built. */
	struct otlp_ring ring;
	size_t qlen;			/* records queued and not taken */
	uint64_t last_export_ns;
	uint8_t *mbody;			/* metrics snapshot waiting to be sent */
	size_t mlen, mpoints;
	struct worker w[OTLP_NSIGNALS];
	/* loop thread only */
	uint64_t start_unix_ns, last_metrics_ns;
	uint8_t rpool[4096];		/* getrandom() bytes for ids, one syscall per 170 spans */
	size_t rleft;
	int fam_dropped, fam_requests, fam_spans, fam_points, fam_queue;
	/* traces worker only */
	struct otlp_proc_cache pcache;
	/* written by any thread with __atomic ops */
	uint64_t dropped[OTLP_NSIGNALS][OTLP_NDROPS];
	uint64_t ok[OTLP_NSIGNALS], failed[OTLP_NSIGNALS];
	uint64_t exported[OTLP_NSIGNALS];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static void drop(struct otlp *o, enum otlp_signal sig, enum otlp_drop why, uint64_t n)
{
	count(&o->dropped[sig][why], n);
}

/* Waits on w->cond (mu held) until the monotonic time `until` or a signal. */
static void wait_until(struct worker *w, uint64_t until)
{
	struct timespec ts = { (time_t)(until / 1000000000ULL), (long)(until % 1000000000ULL) };

	pthread_cond_timedwait(&w->cond, &w->o->mu, &ts);
}

/* Resource facts for the traces worker's batches: the cache lives in o. */
static void proc_info(void *arg, uint32_t pid, char *exe, size_t exelen, char *cmd, size_t cmdlen)
{
	const struct otlp_proc *p = otlp_proc__get(&((struct otlp *)arg)->pcache, pid, mono_ns());

	snprintf(exe, exelen, "%s", p->exe);
	snprintf(cmd, cmdlen, "%s", p->cmd);
}

/* ---- transport ---- */

static size_t on_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct worker *w = arg;
	size_t n = sz * nm, room = RESP_MAX - w->resp_len;

	memcpy(w->resp + w->resp_len, p, n < room ? n : room);
	w->resp_len += n < room ? n : room;
	return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *arg)
{
	struct worker *w = arg;
	size_t n = sz * nm;

	if (n > 12 && strncasecmp(p, "retry-after:", 12) == 0)
		w->retry_after = otlp__parse_retry_after(p + 12, n - 12);
	return n;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct worker *w = arg;
	int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

	(void)purpose;
	if (fd < 0)
		return CURL_SOCKET_BAD;
	pthread_mutex_lock(&w->o->mu);
	for (int i = 0; i < WORKER_SOCKS; i++)
		if (w->socks[i] < 0) {
			w->socks[i] = fd;
			break;
		}
	pthread_mutex_unlock(&w->o->mu);
	return fd;
}

static int close_socket(void *arg, curl_socket_t fd)
{
	struct worker *w = arg;

	/* forgotten before it is closed: its number may be reused at once */
	pthread_mutex_lock(&w->o->mu);
	for (int i = 0; i < WORKER_SOCKS; i++)
		if (w->socks[i] == fd)
			w->socks[i] = -1;
	pthread_mutex_unlock(&w->o->mu);
	return close(fd);
}

static int worker_curl(struct worker *w, const char *version)
{
	const struct otlp_signal_config *sc = &w->o->cfg.sig[w->sig];
	char line[8192];

	w->curl = cu.easy_init();
	if (!w->curl)
		return -ENOMEM;
	snprintf(line, sizeof(line), "User-Agent: sonde/%s", version);
	w->hdrs = cu.slist_append(w->hdrs, "Content-Type: application/x-protobuf");
	/* no 100-continue round trip before larger bodies */
	w->hdrs = cu.slist_append(w->hdrs, "Expect:");
	w->hdrs = cu.slist_append(w->hdrs, line);
	if (sc->gzip)
		w->hdrs = cu.slist_append(w->hdrs, "Content-Encoding: gzip");
	for (size_t i = 0; i < sc->nheaders; i++) {
		snprintf(line, sizeof(line), "%s: %s", sc->headers[i].key, sc->headers[i].value);
		w->hdrs = cu.slist_append(w->hdrs, line);
	}
	if (!w->hdrs)
		return -ENOMEM;
	cu.easy_setopt(w->curl, CURLOPT_URL, sc->url);
	cu.easy_setopt(w->curl, CURLOPT_POST, 1L);
	cu.easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->hdrs);
	cu.easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(w->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cu.easy_setopt(w->curl, CURLOPT_ACCEPT_ENCODING, "");
	cu.easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_body);
	cu.easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
	cu.easy_setopt(w->curl, CURLOPT_HEADERFUNCTION, on_header);
	cu.easy_setopt(w->curl, CURLOPT_HEADERDATA, w);
	cu.easy_setopt(w->curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	cu.easy_setopt(w->curl, CURLOPT_OPENSOCKETDATA, w);
	cu.easy_setopt(w->curl, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	cu.easy_setopt(w->curl, CURLOPT_CLOSESOCKETDATA, w);
	return 0;
}

/* One request with retries; n items (spans or data points) in it. Called
 * without the lock. */
static void send_body(struct worker *w, const uint8_t *body, size_t len, uint64_t n)
{
	struct otlp *o = w->o;
	const struct otlp_signal_config *sc = &o->cfg.sig[w->sig];
	const char *sig = signal_name[w->sig];
	uint64_t first = mono_ns();
	unsigned int retry = 0;

	cu.easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
	cu.easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	for (;;) {
		uint64_t now = mono_ns(), tmo = sc->timeout_ms, delay, stop_at;
		long status = 0;
		CURLcode cc;
		enum otlp_outcome out;
		bool stopping;

		pthread_mutex_lock(&o->mu);
		stopping = o->stop;
		stop_at = o->deadline_ns;
		pthread_mutex_unlock(&o->mu);
		if (stopping) {
			if (now >= stop_at) {
				drop(o, w->sig, OTLP_DROP_SHUTDOWN, n);
				return;
			}
			if (tmo > (stop_at - now) / 1000000 + 1)
				tmo = (stop_at - now) / 1000000 + 1;
		}
		cu.easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)tmo);
		w->resp_len = 0;
		w->retry_after = -1;
		cc = cu.easy_perform(w->curl);
		if (cc == CURLE_OK)
			cu.easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
		out = otlp__classify(cc == CURLE_OK, status);
		if (out == OTLP_SUCCESS) {
			int64_t rejected = 0;
			char msg[256];

			count(&o->ok[w->sig], 1);
			if (w->failing)
				log_info("OTLP export recovered", LS("signal", sig) LI("retries", retry));
			w->failing = false;
			if (otlp__decode_response(w->sig, w->resp, w->resp_len, &rejected, msg, sizeof(msg)))
				log_warn("OTLP response body does not decode", LS("signal", sig)
					 LI("bytes", w->resp_len));
			if (rejected < 0 || (uint64_t)rejected > n)
				rejected = (int64_t)n;
			if (rejected) {
				drop(o, w->sig, OTLP_DROP_PARTIAL_SUCCESS, (uint64_t)rejected);
				log_warn("OTLP receiver rejected part of a request", LS("signal", sig)
					 LI("rejected", rejected) LS("message", msg));
			}
			count(&o->exported[w->sig], n - (uint64_t)rejected);
			return;
		}
		count(&o->failed[w->sig], 1);
		if (out == OTLP_FAIL) {
			drop(o, w->sig, OTLP_DROP_REJECTED, n);
			log_warn("OTLP receiver refused a request; dropped", LS("signal", sig)
				 LS("url", sc->url) LI("status", status) LI("items", n));
			return;
		}
		if (!w->failing)
			log_warn("OTLP export failing; retrying", LS("signal", sig) LS("url", sc->url)
				 LI("status", status) LS("error", cc == CURLE_OK ? "" : cu.easy_strerror(cc)));
		w->failing = true;
		delay = otlp__backoff_ms(++retry, w->retry_after, (double)(random() % 1000000) / 1e6);
		now = mono_ns();
		if ((now - first) / 1000000 + delay > o->cfg.max_retry_ms) {
			drop(o, w->sig, OTLP_DROP_RETRIES_EXHAUSTED, n);
			log_warn("OTLP export gave up after retries; dropped", LS("signal", sig)
				 LI("retries", retry - 1) LI("items", n));
			return;
		}
		pthread_mutex_lock(&o->mu);
		for (uint64_t end = now + delay * 1000000ULL;;) {
			uint64_t until = o->stop && o->deadline_ns < end ? o->deadline_ns : end;

			if (mono_ns() >= until)
				break;
			wait_until(w, until);
		}
		pthread_mutex_unlock(&o->mu);
	}
}

static void *traces_main(void *arg)
{
	struct worker *w = arg;
	struct otlp *o = w->o;
	uint64_t delay = (uint64_t)o->cfg.schedule_delay_ms * 1000000ULL;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		uint64_t now = mono_ns();
		const uint8_t *body = NULL;
		size_t n, len = 0, taken, head;
		int rc;

		if (o->stop && (!o->qlen || now >= o->deadline_ns))
			break;
		if (o->qlen < o->cfg.batch_size && !(o->qlen && (o->stop || now - o->last_export_ns >= delay))) {
			wait_until(w, o->qlen ? o->last_export_ns + delay : now + delay);
			continue;
		}
		n = o->qlen < o->cfg.batch_size ? o->qlen : o->cfg.batch_size;
		taken = otlp__ring_take(&o->ring, w->recs, n, &head);
		o->qlen -= n;
		o->last_export_ns = now;
		pthread_mutex_unlock(&o->mu);

		rc = otlp__enc_spans(w->enc, &o->cfg, w->recs, n, proc_info, o,
				     o->cfg.sig[OTLP_TRACES].gzip, &body, &len);
		/* the request is built: the records' room goes back to the loop */
		pthread_mutex_lock(&o->mu);
		otlp__ring_release(&o->ring, head, taken);
		pthread_mutex_unlock(&o->mu);
		if (rc) {
			/* only allocation fails here; count it where a full queue would */
			drop(o, OTLP_TRACES, OTLP_DROP_QUEUE_FULL, n);
			log_warn("OTLP span encoding out of memory; dropped", LI("spans", n));
		} else {
			send_body(w, body, len, n);
		}
		pthread_mutex_lock(&o->mu);
	}
	if (o->qlen) {
		drop(o, OTLP_TRACES, OTLP_DROP_SHUTDOWN, o->qlen);
		o->qlen = 0;
	}
	w->done = true;
	pthread_cond_broadcast(&o->done_cond);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

static void *metrics_main(void *arg)
{
	struct worker *w = arg;
	struct otlp *o = w->o;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		if (o->mbody) {
			uint8_t *body = o->mbody;
			size_t len = o->mlen, n = o->mpoints;

			o->mbody = NULL;
			pthread_mutex_unlock(&o->mu);
			send_body(w, body, len, n);
			free(body);
			pthread_mutex_lock(&o->mu);
			continue;
		}
		if (o->stop)
			break;
		pthread_cond_wait(&w->cond, &o->mu);
	}
	w->done = true;
	pthread_cond_broadcast(&o->done_cond);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* ---- loop side ---- */

static bool random_bytes(struct otlp *o, uint8_t *dst, size_t n)
{
	if (o->rleft < n) {
		if (getrandom(o->rpool, sizeof(o->rpool), 0) != (ssize_t)sizeof(o->rpool))
			return false;
		o->rleft = sizeof(o->rpool);
	}
	memcpy(dst, o->rpool + sizeof(o->rpool) - o->rleft, n);
	o->rleft -= n;
	return true;
}

void otlp__span(struct otlp *o, const struct span *s)
{
	struct span_ctx ctx;
	uint16_t lens[OTLP_REC_NSTR];
	const char *service;
	void *rec;
	size_t sz;
	bool parent;

	if (!o || o->dead || !o->cfg.sig[OTLP_TRACES].url[0])
		return;
	ctx = s->ctx;
	/* Until trace context is known, every span starts its own sampled
	 * trace; ids must exist before sampling, which reads the trace id. */
	if (!memcmp(ctx.trace_id, (uint8_t[16]){ 0 }, 16)) {
		if (!random_bytes(o, ctx.trace_id, 16))
			return;
		ctx.trace_flags |= 1;
	}
	if (!memcmp(ctx.span_id, (uint8_t[8]){ 0 }, 8) && !random_bytes(o, ctx.span_id, 8))
		return;
	parent = memcmp(ctx.parent_span_id, (uint8_t[8]){ 0 }, 8) != 0;
	if (!sampler__decide(&o->cfg.sampler, ctx.trace_id, parent, ctx.trace_flags & 1))
		return;
	service = s->service ? s->service : "";
	sz = otlp__rec_size(s, service, lens);
	pthread_mutex_lock(&o->mu);
	if (o->qlen == o->cfg.queue_size || !(rec = otlp__ring_reserve(&o->ring, sz))) {
		pthread_mutex_unlock(&o->mu);
		drop(o, OTLP_TRACES, OTLP_DROP_QUEUE_FULL, 1);
		return;
	}
	otlp__rec_write(rec, s, &ctx, service, lens, sz);
	if (++o->qlen == o->cfg.batch_size)
		pthread_cond_signal(&o->w[OTLP_TRACES].cond);
	pthread_mutex_unlock(&o->mu);
}

static uint64_t load(uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static void mirror(struct otlp *o)
{
	size_t qlen;

	for (int s = 0; s < OTLP_NSIGNALS; s++) {
		if (!o->cfg.sig[s].url[0])
			continue;
		for (int d = 0; d < OTLP_NDROPS; d++) {
			const char *lv[] = { signal_name[s], drop_name[d] };

			metrics__set(o->m, o->fam_dropped, lv, (double)load(&o->dropped[s][d]));
		}
		const char *okv[] = { signal_name[s], "success" }, *fv[] = { signal_name[s], "failure" };

		metrics__set(o->m, o->fam_requests, okv, (double)load(&o->ok[s]));
		metrics__set(o->m, o->fam_requests, fv, (double)load(&o->failed[s]));
	}
	if (o->cfg.sig[OTLP_TRACES].url[0]) {
		metrics__set(o->m, o->fam_spans, NULL, (double)load(&o->exported[OTLP_TRACES]));
		pthread_mutex_lock(&o->mu);
		qlen = o->qlen;
		pthread_mutex_unlock(&o->mu);
		metrics__set(o->m, o->fam_queue, NULL, (double)qlen);
	}
	if (o->cfg.sig[OTLP_METRICS].url[0])
		metrics__set(o->m, o->fam_points, NULL, (double)load(&o->exported[OTLP_METRICS]));
}

static uint64_t unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* refresh: not at shutdown, where the tracer the refresh reads is gone */
static void snapshot_metrics(struct otlp *o, bool refresh)
{
	uint8_t *body = NULL, *gz = NULL;
	size_t len = 0, gzlen = 0, npoints = 0;
	int rc;

	if (refresh && o->refresh)
		o->refresh(o->refresh_arg);
	mirror(o);
	rc = otlp__encode_metrics(&o->cfg, o->m, o->start_unix_ns, unix_ns(), &body, &len, &npoints);
	if (!rc && o->cfg.sig[OTLP_METRICS].gzip) {
		rc = otlp__gzip(body, len, &gz, &gzlen);
		free(body);
		body = gz;
		len = gzlen;
	}
	if (rc) {
		log_warn("OTLP metrics encoding out of memory; skipped", LI("error", rc));
		return;
	}
	pthread_mutex_lock(&o->mu);
	if (o->mbody) {
		/* the worker is still busy with an older snapshot: cumulative
		 * values make the newer one a superset, the older is lost */
		drop(o, OTLP_METRICS, OTLP_DROP_QUEUE_FULL, o->mpoints);
		free(o->mbody);
	}
	o->mbody = body;
	o->mlen = len;
	o->mpoints = npoints;
	pthread_cond_signal(&o->w[OTLP_METRICS].cond);
	pthread_mutex_unlock(&o->mu);
}

static int start_workers(struct otlp *o);

void otlp__tick(struct otlp *o)
{
	uint64_t now;

	if (!o)
		return;
	if (!o->running && !o->dead)
		start_workers(o);
	if (o->dead) {
		mirror(o);
		return;
	}
	now = mono_ns();
	if (o->cfg.sig[OTLP_METRICS].url[0] &&
	    now - o->last_metrics_ns >= (uint64_t)o->cfg.metric_interval_ms * 1000000ULL) {
		o->last_metrics_ns = now;
		snapshot_metrics(o, true);
	} else {
		mirror(o);
	}
}

static int register_families(struct otlp *o)
{
	static const char *const l_drop[] = { "signal", "reason" };
	static const char *const l_req[] = { "signal", "result" };
	struct metrics *m = o->m;

	o->fam_dropped = metrics__family(m, METRIC_COUNTER, "sonde_export_dropped_total",
					 "Spans / metric data points lost by the OTLP exporter, by reason.",
					 l_drop, 2, NULL, 0, 0);
	o->fam_requests = metrics__family(m, METRIC_COUNTER, "sonde_export_requests_total",
					  "OTLP export HTTP attempts (result: success or failure; "
					  "each retry counts).", l_req, 2, NULL, 0, 0);
	o->fam_spans = metrics__family(m, METRIC_COUNTER, "sonde_export_spans_total",
				       "Spans accepted by the OTLP receiver.", NULL, 0, NULL, 0, 0);
	o->fam_points = metrics__family(m, METRIC_COUNTER, "sonde_export_metric_points_total",
					"Metric data points accepted by the OTLP receiver.", NULL, 0, NULL, 0, 0);
	o->fam_queue = metrics__family(m, METRIC_GAUGE, "sonde_export_queue_spans",
				       "Spans waiting in the OTLP export queue.", NULL, 0, NULL, 0, 0);
	if (o->fam_dropped < 0)
		return o->fam_dropped;
	if (o->fam_requests < 0)
		return o->fam_requests;
	if (o->fam_spans < 0)
		return o->fam_spans;
	if (o->fam_points < 0)
		return o->fam_points;
	return o->fam_queue < 0 ? o->fam_queue : 0;
}

static void *(*const worker_main[])(void *) = { traces_main, metrics_main };

/* libcurl, its global state, the handles and the worker threads. They start
 * on the loop's first tick rather than in otlp__setup: libcurl's mappings
 * and OpenSSL's initialisation inside curl_global_init take ~5 MiB of RSS,
 * which should not stack on the agent's start-up peak (BPF objects loading,
 * the first process scan). On failure export is off for good (logged). 0 or
 * negative errno. */
static int start_workers(struct otlp *o)
{
	char err[256];
	int rc;

	o->running = true;
	if ((rc = otlp_curl__load(&cu, err, sizeof(err)))) {
		log_error("OTLP export impossible", LS("error", err));
		goto fail;
	}
	o->curl_loaded = true;
	if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = -ENOMEM;
		goto fail;
	}
	o->curl_ready = true;
	for (int s = 0; s < OTLP_NSIGNALS; s++) {
		struct worker *w = &o->w[s];

		if (!o->cfg.sig[s].url[0])
			continue;
		if ((rc = worker_curl(w, o->cfg.sdk_version)))
			goto fail;
		if ((rc = -pthread_create(&w->th, NULL, worker_main[s], w)))
			goto fail;
		w->started = true;
		log_info("OTLP export on", LS("signal", signal_name[s]) LS("url", o->cfg.sig[s].url)
			 LS("compression", o->cfg.sig[s].gzip ? "gzip" : "none")
			 LI("timeout_ms", o->cfg.sig[s].timeout_ms)
			 LS("sampler", s == OTLP_TRACES ? sampler__name(&o->cfg.sampler) : "")
			 LI("batch", o->cfg.batch_size) LI("queue", o->cfg.queue_size)
			 LI("interval_ms", s == OTLP_TRACES ? o->cfg.schedule_delay_ms
							    : o->cfg.metric_interval_ms));
	}
	return 0;
fail:
	log_error("OTLP exporter could not start; export off", LS("error", strerror(-rc)));
	/* a worker already running stops at once; what is queued is lost */
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	o->deadline_ns = mono_ns();
	drop(o, OTLP_TRACES, OTLP_DROP_SHUTDOWN, o->qlen);
	o->qlen = 0;
	for (int s = 0; s < OTLP_NSIGNALS; s++)
		pthread_cond_broadcast(&o->w[s].cond);
	pthread_mutex_unlock(&o->mu);
	for (int s = 0; s < OTLP_NSIGNALS; s++)
		if (o->w[s].started) {
			pthread_join(o->w[s].th, NULL);
			o->w[s].started = false;
		}
	o->dead = true;
	return rc;
}

int otlp__setup(struct otlp **out, struct metrics *m, const char *endpoint, const char *version,
		const struct redact *redact, void (*refresh)(void *arg), void *refresh_arg)
{
	struct otlp *o;
	pthread_condattr_t ca;
	char err[256];
	int rc;

	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	rc = otlp__config_load(&o->cfg, (otlp_getenv_fn)getenv, endpoint, err, sizeof(err));
	if (rc) {
		log_error("invalid OTLP configuration", LS("error", err));
		goto fail;
	}
	if (!o->cfg.sig[OTLP_TRACES].url[0] && !o->cfg.sig[OTLP_METRICS].url[0]) {
		log_info("OTLP export off: no endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT or "
			 "--otlp-endpoint)", LS("signal", "traces,metrics"));
		otlp__config_free(&o->cfg);
		free(o);
		return 0;
	}
	snprintf(o->cfg.sdk_version, sizeof(o->cfg.sdk_version), "%s", version);
	o->m = m;
	o->refresh = refresh;
	o->refresh_arg = refresh_arg;
	if (redact)
		o->pcache.redact = *redact;
	if ((rc = register_families(o)))
		goto fail;
	o->w[OTLP_TRACES].recs = malloc(o->cfg.batch_size * sizeof(*o->w[OTLP_TRACES].recs));
	o->w[OTLP_TRACES].enc = otlp__enc_new();
	if (otlp__ring_init(&o->ring, (size_t)o->cfg.queue_size * QUEUE_REC_BYTES) ||
	    !o->w[OTLP_TRACES].recs || !o->w[OTLP_TRACES].enc) {
		rc = -ENOMEM;
		goto fail;
	}
	o->start_unix_ns = unix_ns();
	o->last_metrics_ns = o->last_export_ns = mono_ns();
	/* fail at start when libcurl is missing, but map it only later */
	if ((rc = otlp_curl__probe(err, sizeof(err)))) {
		log_error("OTLP export impossible", LS("error", err));
		goto fail;
	}
	srandom((unsigned int)(o->start_unix_ns ^ (uint64_t)getpid()));
	pthread_mutex_init(&o->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->done_cond, &ca);
	for (int s = 0; s < OTLP_NSIGNALS; s++) {
		o->w[s].o = o;
		o->w[s].sig = (enum otlp_signal)s;
		pthread_cond_init(&o->w[s].cond, &ca);
		for (int i = 0; i < WORKER_SOCKS; i++)
			o->w[s].socks[i] = -1;
	}
	pthread_condattr_destroy(&ca);
	*out = o;
	return 0;
fail:
	otlp__config_free(&o->cfg);
	free(o->ring.buf);
	free(o->w[OTLP_TRACES].recs);
	otlp__enc_free(o->w[OTLP_TRACES].enc);
	free(o);
	return rc;
}

void otlp__free(struct otlp *o)
{
	uint64_t t0 = mono_ns();

	if (!o)
		return;
	/* stopped before the first tick: start now, so what is queued is sent */
	if (!o->running && !o->dead)
		start_workers(o);
	/* one last snapshot so counts made since the previous interval arrive */
	if (o->cfg.sig[OTLP_METRICS].url[0] && o->w[OTLP_METRICS].started)
		snapshot_metrics(o, false);
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	o->deadline_ns = mono_ns() + SHUTDOWN_FLUSH_NS;
	for (int s = 0; s < OTLP_NSIGNALS; s++)
		pthread_cond_broadcast(&o->w[s].cond);
	/* From the deadline on, a request still waiting for its answer is cut:
	 * its socket is shut down (again every 50 ms, should curl open another),
	 * curl returns, and the worker drops and counts what it held. */
	for (uint64_t until = o->deadline_ns;;) {
		struct timespec ts = { (time_t)(until / 1000000000ULL), (long)(until % 1000000000ULL) };
		bool all_done = true;

		for (int s = 0; s < OTLP_NSIGNALS; s++)
			all_done &= !o->w[s].started || o->w[s].done;
		if (all_done)
			break;
		if (pthread_cond_timedwait(&o->done_cond, &o->mu, &ts) != ETIMEDOUT)
			continue;
		for (int s = 0; s < OTLP_NSIGNALS; s++)
			for (int i = 0; i < WORKER_SOCKS; i++)
				if (o->w[s].socks[i] >= 0)
					shutdown(o->w[s].socks[i], SHUT_RDWR);
		until = mono_ns() + 50000000ULL;
	}
	pthread_mutex_unlock(&o->mu);
	for (int s = 0; s < OTLP_NSIGNALS; s++) {
		struct worker *w = &o->w[s];

		if (w->started)
			pthread_join(w->th, NULL);
		if (w->curl)
			cu.easy_cleanup(w->curl);
		if (w->hdrs)
			cu.slist_free_all(w->hdrs);
		pthread_cond_destroy(&w->cond);
	}
	if (o->mbody)
		drop(o, OTLP_METRICS, OTLP_DROP_SHUTDOWN, o->mpoints);
	log_info("OTLP exporter stopped", LI("flush_ms", (mono_ns() - t0) / 1000000)
		 LI("spans_exported", load(&o->exported[OTLP_TRACES]))
		 LI("spans_dropped_shutdown", load(&o->dropped[OTLP_TRACES][OTLP_DROP_SHUTDOWN])));
	free(o->mbody);
	pthread_cond_destroy(&o->done_cond);
	pthread_mutex_destroy(&o->mu);
	if (o->curl_ready)
		cu.global_cleanup();
	otlp__config_free(&o->cfg);
	free(o->ring.buf);
	free(o->w[OTLP_TRACES].recs);
	otlp__enc_free(o->w[OTLP_TRACES].enc);
	free(o);
}
