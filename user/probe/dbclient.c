/* Database client uprobes, userspace half. Libraries are attached once per
 * file (dev, inode): those in the usual library directories at start, and
 * any other copy libwatch finds mapped (containers, private installs).
 * Dedup rule: a call is held per thread. A plaintext request the thread
 * writes on a database connection marks its earlier calls as on the wire;
 * the wire span, when its answer comes, claims the oldest (one span, timed
 * from the call). A call never seen on the wire (TLS, Unix socket) becomes
 * a span of its own once the wire had its chance: after the thread's next
 * call has been drained past (that call ends it), or at process exit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "probe/dbclient.h"
#include "dbclient.skel.h"
#include "probe/libwatch.h"
#include "probe/uprobe.h"
#include "util/log.h"
#include "span/builder.h"

#define FILES_MAX 32
#define CALLS_MAX 256		/* calls held, host-wide */
#define PREPS_MAX 128		/* prepared statements remembered (conn, name) → SQL */
#define CALL_TIMEOUT_NS (10ULL * 1000000000ULL)	/* no next call, no exit: give up waiting */
#define CLAIM_WINDOW_NS (1000ULL * 1000000ULL)	/* a call older than this is not the wire's */
#define TLS_TGIDS 64

struct lib_file {
	uint64_t dev, ino;
};

struct held_call {
	uint8_t used;
	uint8_t wire;		/* its request was seen on the wire: a wire span will claim it */
	uint8_t func;
	uint32_t tgid, tid;
	uint64_t ktime, next_ns, conn;
	char comm[SONDE_COMM_LEN];
	uint16_t len;
	char text[SONDE_DB_TEXT_MAX];
};

struct prep {
	uint8_t used;
	uint32_t tgid;
	uint64_t conn;
	uint32_t age;
	char name[64];
	char sql[SONDE_DB_TEXT_MAX];
};

struct dbclient {
	struct db_calls calls_api;	/* what the wire side calls (proto/db.c) */
	struct dbclient_bpf *skel;
	struct ring_buffer *rb;
	struct libwatch *watch;
	struct metrics *m;
	struct dbclient_opts o;
	struct lib_file files[FILES_MAX];
	int nfiles;
	struct uprobe_link links[FILES_MAX * 8];
	int nlinks;
	struct held_call calls[CALLS_MAX];
	int ncalls;		/* calls[] in use: the scans below are skipped at 0 */
	struct prep preps[PREPS_MAX];
	uint32_t clock;
	uint64_t joined, alone, evicted, records, filtered, expired;
	uint32_t tls_tgids[TLS_TGIDS];	/* ring of processes with TLS database connections */
	unsigned int tls_next;
	int fam_calls, fam_libs;
};

struct probe_def {
	const char *sym;
	int lib;	/* 0 libpq, 1 mysql */
};
static const struct probe_def probes[] = {
	{ "PQsendQuery", 0 }, { "PQsendQueryParams", 0 }, { "PQsendPrepare", 0 },
	{ "PQsendQueryPrepared", 0 }, { "mysql_real_query", 1 }, { "mysql_send_query", 1 },
	{ "mysql_stmt_prepare", 1 }, { "mysql_stmt_execute", 1 },
};

static struct bpf_program *probe_prog(struct dbclient_bpf *s, int i)
{
	struct bpf_program *p[] = { s->progs.pq_send_query, s->progs.pq_send_query_params,
				    s->progs.pq_send_prepare, s->progs.pq_send_query_prepared,
				    s->progs.mysql_real_query, s->progs.mysql_send_query,
				    s->progs.mysql_stmt_prepare, s->progs.mysql_stmt_execute };

	return p[i];
}

static int attach_file(struct dbclient *c, const char *path, int lib)
{
	struct stat st;
	int n = 0;

	if (stat(path, &st))
		return -errno;
	for (int i = 0; i < c->nfiles; i++)
		if (c->files[i].dev == st.st_dev && c->files[i].ino == st.st_ino)
			return 0;	/* same file by another path */
	if (c->nfiles == FILES_MAX)
		return 0;
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct bpf_program *prog = probe_prog(c->skel, (int)i);
		struct uprobe_link *l = &c->links[c->nlinks];
		int err;

		if (probes[i].lib != lib)
			continue;
		err = uprobe__attach(prog, path, probes[i].sym, 0, false, l);
		if (err) {
			/* libmariadb exports some calls under two symbol versions
			 * at one address, which libbpf's lookup rejects as
			 * ambiguous: attach at the first one's offset. */
			size_t off = uprobe__func_offset(path, probes[i].sym);

			if (off)
				err = uprobe__attach(prog, path, probes[i].sym, off, false, l);
		}
		if (err) {
			log_debug("database client symbol not probed", LS("path", path)
				  LS("symbol", probes[i].sym) LS("error", strerror(-err)));
			continue;
		}
		c->nlinks++;
		n++;
	}
	if (!n)
		return -ENOENT;
	c->files[c->nfiles].dev = st.st_dev;
	c->files[c->nfiles].ino = st.st_ino;
	c->nfiles++;
	log_info("database client library probed", LS("path", path) LI("uprobes", n));
	{
		const char *lv[] = { lib ? "mysql" : "libpq" };

		metrics__add(c->m, c->fam_libs, lv, 1);
	}
	return 0;
}

static int on_pq(void *arg, const char *path, uint32_t pid)
{
	(void)pid;
	return attach_file(arg, path, 0);
}

static int on_mysql(void *arg, const char *path, uint32_t pid)
{
	(void)pid;
	return attach_file(arg, path, 1);
}

static struct prep *prep_find(struct dbclient *c, uint32_t tgid, uint64_t conn, const char *name)
{
	for (int i = 0; i < PREPS_MAX; i++)
		if (c->preps[i].used && c->preps[i].tgid == tgid && c->preps[i].conn == conn &&
		    strcmp(c->preps[i].name, name) == 0)
			return &c->preps[i];
	return NULL;
}

static void prep_put(struct dbclient *c, uint32_t tgid, uint64_t conn, const char *name,
		     const char *sql)
{
	struct prep *p = prep_find(c, tgid, conn, name);

	if (!p) {
		p = &c->preps[0];
		for (int i = 0; i < PREPS_MAX; i++)
			if (!c->preps[i].used || c->preps[i].age < p->age) {
				p = &c->preps[i];
				if (!p->used)
					break;
			}
	}
	p->used = 1;
	p->tgid = tgid;
	p->conn = conn;
	p->age = ++c->clock;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->sql, sizeof(p->sql), "%s", sql);
}

static void encrypted_conn(void *arg, uint32_t tgid)
{
	struct dbclient *c = arg;

	for (int i = 0; i < TLS_TGIDS; i++)
		if (c->tls_tgids[i] == tgid)
			return;
	c->tls_tgids[c->tls_next++ % TLS_TGIDS] = tgid;
}

static bool tls_tgid(const struct dbclient *c, uint32_t tgid)
{
	for (int i = 0; i < TLS_TGIDS; i++)
		if (c->tls_tgids[i] == tgid)
			return true;
	return false;
}

/* A held call's slot is given back (counted in ncalls). */
static void call_free(struct dbclient *c, struct held_call *h)
{
	if (h->used) {
		h->used = 0;
		c->ncalls--;
	}
}

static void emit(struct dbclient *c, struct held_call *h, uint64_t end_ns, int incomplete)
{
	bool pg = h->func <= SONDE_DB_PQ_SEND_QUERY_PREPARED;

	if (c->o.filter_port && !tls_tgid(c, h->tgid)) {
		/* a connection the port filter hid from the wire side */
		call_free(c, h);
		c->filtered++;
		return;
	}

	{
		struct span_origin o = { .tgid = h->tgid, .tid = h->tid, .comm = h->comm };
		struct span_db d = { .system = pg ? "postgresql" : "mysql",
				     .dialect = pg ? SQL_POSTGRES : SQL_MYSQL, .sql = true,
				     .text = h->text, .text_len = h->len, .incomplete = incomplete };

		c->alone++;
		call_free(c, h);
		span_builder__db(c->o.spans, &o, h->ktime, end_ns, &d);
	}
}

static int on_call(void *ctx, void *data, size_t size)
{
	struct dbclient *c = ctx;
	const struct sonde_db_call_event *e = data;
	struct held_call *h = NULL;
	char text[SONDE_DB_TEXT_MAX];
	size_t len;

	if (size < sizeof(*e) || e->hdr.op != SONDE_OP_DB_CALL)
		return 0;
	c->records++;
	len = e->text_len < SONDE_DB_TEXT_MAX ? e->text_len : SONDE_DB_TEXT_MAX - 1;
	memcpy(text, e->text, len);
	text[len] = 0;
	switch (e->func) {
	case SONDE_DB_PQ_SEND_PREPARE: {
		/* "name\0query": remembered for PQsendQueryPrepared; not a span */
		size_t nl = strnlen(text, len);

		if (nl < len)
			prep_put(c, e->tgid, e->conn, text, text + nl + 1);
		return 0;
	}
	case SONDE_DB_MYSQL_STMT_PREPARE:
		prep_put(c, e->tgid, e->conn, "", text);
		return 0;
	case SONDE_DB_PQ_SEND_QUERY_PREPARED:
	case SONDE_DB_MYSQL_STMT_EXECUTE: {
		struct prep *p = prep_find(c, e->tgid, e->conn,
					   e->func == SONDE_DB_MYSQL_STMT_EXECUTE ? "" : text);

		len = p ? strlen(p->sql) : 0;
		memcpy(text, p ? p->sql : "", len + 1);
		break;
	}
	default:
		break;
	}
	for (int i = 0; i < CALLS_MAX; i++) {
		struct held_call *o = &c->calls[i];

		if (!o->used || o->tid != e->tid)
			continue;
		/* libmariadb's mysql_real_query calls mysql_send_query: one call */
		if (e->func == SONDE_DB_MYSQL_SEND_QUERY && o->func == SONDE_DB_MYSQL_REAL_QUERY &&
		    o->conn == e->conn && !o->next_ns && e->hdr.ktime - o->ktime < 1000000)
			return 0;
		if (!o->next_ns)
			o->next_ns = e->hdr.ktime;
	}
	for (int i = 0; i < CALLS_MAX && !h; i++)
		if (!c->calls[i].used)
			h = &c->calls[i];
	if (!h) {	/* full: the oldest goes out as it is */
		h = &c->calls[0];
		for (int i = 1; i < CALLS_MAX; i++)
			if (c->calls[i].ktime < h->ktime)
				h = &c->calls[i];
		c->evicted++;
		if (h->wire)	/* its wire span will simply not find it */
			call_free(c, h);
		else
			emit(c, h, h->next_ns ? h->next_ns : h->ktime, 1);
	}
	c->ncalls++;
	h->used = 1;
	h->wire = 0;
	h->func = e->func;
	h->tgid = e->tgid;
	h->tid = e->tid;
	h->ktime = e->hdr.ktime;
	h->next_ns = 0;
	h->conn = e->conn;
	memcpy(h->comm, e->comm, sizeof(h->comm));
	memcpy(h->text, text, len + 1);
	h->len = (uint16_t)len;
	return 0;
}

static int claim(void *arg, uint32_t tid, uint64_t start_ns, uint64_t *call_ns, char *text,
		 size_t n)
{
	struct dbclient *c = arg;
	struct held_call *best = NULL;

	for (int i = 0; i < CALLS_MAX && c->ncalls; i++) {
		struct held_call *h = &c->calls[i];

		if (h->used && h->tid == tid && h->ktime <= start_ns &&
		    start_ns - h->ktime < CLAIM_WINDOW_NS && (!best || h->ktime < best->ktime))
			best = h;
	}
	if (!best)
		return 0;
	*call_ns = best->ktime;
	if (n)
		snprintf(text, n, "%s", best->text);
	call_free(c, best);
	c->joined++;
	return 1;
}

static void wire(void *arg, uint32_t tid, uint64_t ns)
{
	struct dbclient *c = arg;

	for (int i = 0; i < CALLS_MAX && c->ncalls; i++)
		if (c->calls[i].used && c->calls[i].tid == tid && c->calls[i].ktime <= ns)
			c->calls[i].wire = 1;
}

void dbclient__tick(struct dbclient *c, uint64_t drained_ns)
{
	if (!c || !c->ncalls)
		return;
	for (int i = 0; i < CALLS_MAX; i++) {
		struct held_call *h = &c->calls[i];

		if (!h->used)
			continue;
		if (h->wire) {
			/* on the wire but never answered there: no span from here either */
			if (drained_ns > h->ktime + CALL_TIMEOUT_NS) {
				call_free(c, h);
				c->expired++;
			}
			continue;
		}
		/* the wire request and its answer come before the next call */
		if (h->next_ns && drained_ns > h->next_ns)
			emit(c, h, h->next_ns, 0);
		else if (drained_ns > h->ktime + CALL_TIMEOUT_NS)
			emit(c, h, h->ktime, 1);
	}
}

void dbclient__exit(struct dbclient *c, uint32_t tgid, uint64_t ktime)
{
	if (!c || !c->ncalls)
		return;
	for (int i = 0; i < CALLS_MAX; i++) {
		struct held_call *h = &c->calls[i];

		if (!h->used || h->tgid != tgid)
			continue;
		if (h->wire) {
			call_free(c, h);
			c->expired++;
		} else {
			emit(c, h, h->next_ns ? h->next_ns : ktime, 0);
		}
	}
}

void dbclient__poll(struct dbclient *c)
{
	if (c)
		ring_buffer__consume(c->rb);
}

void dbclient__collect(struct dbclient *c)
{
	static const char *const joined[] = { "joined" }, *const alone[] = { "alone" },
			  *const evicted[] = { "evicted" }, *const lost[] = { "lost" },
			  *const filtered[] = { "filtered" }, *const expired[] = { "expired" };
	uint64_t drops = 0;
	int ncpu = libbpf_num_possible_cpus();

	if (!c || ncpu <= 0)
		return;
	{
		uint64_t v[ncpu];
		uint32_t k = 0;

		if (!bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.db_counters), &k, v))
			for (int i = 0; i < ncpu; i++)
				drops += v[i];
	}
	metrics__set(c->m, c->fam_calls, joined, (double)c->joined);
	metrics__set(c->m, c->fam_calls, alone, (double)c->alone);
	metrics__set(c->m, c->fam_calls, evicted, (double)c->evicted);
	metrics__set(c->m, c->fam_calls, lost, (double)drops);
	metrics__set(c->m, c->fam_calls, filtered, (double)c->filtered);
	metrics__set(c->m, c->fam_calls, expired, (double)c->expired);
}

/* The usual places, attached at start whether or not a process maps them
 * yet: a client that starts, queries and exits between two scans is seen. */
static void attach_known(struct dbclient *c)
{
	static const char *const dirs[] = { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
					    "/lib64", "/usr/lib64", "/usr/lib", "/usr/local/lib" };
	static const char *const pq[] = { "libpq.so.5" };
	static const char *const my[] = { "libmariadb.so.3", "libmysqlclient.so.21",
					  "libmysqlclient.so.24" };
	char path[256];

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		for (size_t i = 0; i < sizeof(pq) / sizeof(pq[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dirs[d], pq[i]);
			if (access(path, R_OK) == 0)
				attach_file(c, path, 0);
		}
		for (size_t i = 0; i < sizeof(my) / sizeof(my[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dirs[d], my[i]);
			if (access(path, R_OK) == 0)
				attach_file(c, path, 1);
		}
	}
}

int dbclient__open(struct dbclient **out, const struct dbclient_opts *o, struct metrics *m,
		   struct libwatch *w)
{
	static const char *const l_outcome[] = { "outcome" }, *const l_lib[] = { "library" };
	struct dbclient *c = calloc(1, sizeof(*c));
	int err;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->m = m;
	c->fam_calls = metrics__family(m, METRIC_COUNTER, "sonde_db_client_calls_total",
				       "Database client library calls seen by uprobes: joined to a wire "
				       "span, alone (span from the uprobe only), evicted, lost (ring full), filtered "
				       "(--port: not a connection the filter kept), expired (sent on the wire, "
				       "never answered there).",
				       l_outcome, 1, NULL, 0, 0);
	c->fam_libs = metrics__family(m, METRIC_COUNTER, "sonde_db_client_libraries_probed_total",
				      "Database client library files given uprobes.", l_lib, 1, NULL, 0, 0);
	if (c->fam_calls < 0 || c->fam_libs < 0) {
		err = c->fam_calls < 0 ? c->fam_calls : c->fam_libs;
		goto fail;
	}
	c->skel = dbclient_bpf__open();
	if (!c->skel) {
		err = -errno;
		goto fail;
	}
	c->skel->rodata->self_tgid = o->self_tgid;
	c->skel->rodata->filter_tgid = o->filter_tgid;
	uprobe__prepare(c->skel->obj);
	if ((err = dbclient_bpf__load(c->skel)))
		goto fail;
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.db_calls), on_call, c, NULL);
	c->watch = w;
	if (!c->rb || !c->watch) {
		err = -ENOMEM;
		goto fail;
	}
	attach_known(c);
	if ((err = libwatch__add(c->watch, "libpq.so", on_pq, c)) ||
	    (err = libwatch__add(c->watch, "libmysqlclient.so", on_mysql, c)) ||
	    (err = libwatch__add(c->watch, "libmariadb.so", on_mysql, c)))
		goto fail;
	c->calls_api = (struct db_calls){ .claim = claim, .encrypted = encrypted_conn, .wire = wire,
					  .arg = c };
	*out = c;
	return 0;
fail:
	dbclient__free(c);
	return err ? err : -EINVAL;
}

void dbclient__free(struct dbclient *c)
{
	if (!c)
		return;
	uprobe__detach(c->links, c->nlinks);
	ring_buffer__free(c->rb);
	if (c->watch)
		libwatch__forget(c->watch, c);
	dbclient_bpf__destroy(c->skel);
	free(c);
}

const struct db_calls *dbclient__calls(const struct dbclient *c)
{
	return c ? &c->calls_api : NULL;
}
