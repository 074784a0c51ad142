/* TLS tracer, userspace half: every distinct OpenSSL that libwatch finds gets
 * uprobes on SSL_read/SSL_write(_ex) and the handshake calls, once per file
 * (pid -1: every process mapping it, now and later). libcrypto gets the
 * three BIO probes that bind SSLs over a BIO pair (gRPC core) to their
 * sockets (bpf/lib/membio.h); a static executable gets both sets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "probe/libwatch.h"
#include "probe/uprobe.h"
#include "util/log.h"
#include "sonde_tls.h"
#include "identity/identity.h"
#include "probe/tls.h"
#include "tls.skel.h"

#define LIBS_MAX 64		/* distinct OpenSSL files probed */
#define LINKS_PER_LIB 18	/* libssl's and libcrypto's, for a static executable */
#define PENDING_MAX 256		/* exec'd processes waiting for their delayed scans */
#define EXEC_SCAN_DELAY_NS (100ULL * 1000000ULL)	/* ld.so has mapped DT_NEEDED libs by then */
#define EXEC_SCAN_AGAIN_NS (1000ULL * 1000000ULL)	/* early dlopen()s (Python's import ssl) */
#define GC_PERIOD_NS (5ULL * 1000000000ULL)

enum linkage { LINK_SHARED = 0, LINK_STATIC = 1 };
enum lib_kind { KIND_SSL = 1, KIND_CRYPTO = 2 };	/* which probe sets a file gets (bits) */

struct tls_lib {
	char path[256];		/* as the host sees it, without /proc/<pid>/root */
	enum linkage linkage;
	struct uprobe_link links[LINKS_PER_LIB];
	int nlinks;
};

struct pending_scan {
	uint32_t pid;
	uint8_t left;		/* scans still to do */
	uint64_t due_ns;
};

struct tls {
	struct tls_bpf *skel;
	struct libwatch *watch;
	struct ring_buffer *execs;
	struct metrics *m;
	struct tls_lib libs[LIBS_MAX];
	int nlibs;
	uint64_t now_ns;
	struct pending_scan pend[PENDING_MAX];
	unsigned int phead, plen;
	uint64_t next_gc_ns;
	uint64_t exec_queue_drops, collected, attach_failures;
	int ncpus;
	int fam_info, fam_events, fam_drops, fam_unbound, fam_noconn, fam_readfail, fam_collected;
	int fam_attach_fail, fam_membio_bound, fam_membio_unmatched;
};

/* What to probe: which set, symbol, return probe, needed for the file to
 * count as probed (a required probe of a set the file is not asked for
 * is not needed). */
struct probe_def {
	enum lib_kind kind;
	const char *sym;
	bool ret;
	bool required;
};
static const struct probe_def probe_defs[LINKS_PER_LIB] = {
	{ KIND_SSL, "SSL_write", false, true },		{ KIND_SSL, "SSL_write", true, true },
	{ KIND_SSL, "SSL_read", false, true },		{ KIND_SSL, "SSL_read", true, true },
	{ KIND_SSL, "SSL_write_ex", false, false },	{ KIND_SSL, "SSL_write_ex", true, false },
	{ KIND_SSL, "SSL_read_ex", false, false },	{ KIND_SSL, "SSL_read_ex", true, false },
	{ KIND_SSL, "SSL_do_handshake", false, false }, { KIND_SSL, "SSL_do_handshake", true, false },
	{ KIND_SSL, "SSL_connect", false, false },	{ KIND_SSL, "SSL_connect", true, false },
	{ KIND_SSL, "SSL_accept", false, false },	{ KIND_SSL, "SSL_accept", true, false },
	/* SSLs over a BIO pair (bpf/lib/membio.h) */
	{ KIND_SSL, "SSL_set_bio", false, false },
	{ KIND_CRYPTO, "BIO_new_bio_pair", false, true },
	{ KIND_CRYPTO, "BIO_new_bio_pair", true, true },
	{ KIND_CRYPTO, "BIO_write", false, true },
};

static struct bpf_program *probe_prog(struct tls_bpf *s, const struct probe_def *d)
{
	if (strcmp(d->sym, "SSL_set_bio") == 0)
		return s->progs.ssl_set_bio_enter;
	if (strcmp(d->sym, "BIO_new_bio_pair") == 0)
		return d->ret ? s->progs.bio_pair_exit : s->progs.bio_pair_enter;
	if (strcmp(d->sym, "BIO_write") == 0)
		return s->progs.bio_write_enter;
	if (strcmp(d->sym, "SSL_write") == 0)
		return d->ret ? s->progs.ssl_write_exit : s->progs.ssl_write_enter;
	if (strcmp(d->sym, "SSL_read") == 0)
		return d->ret ? s->progs.ssl_read_exit : s->progs.ssl_read_enter;
	if (strcmp(d->sym, "SSL_write_ex") == 0)
		return d->ret ? s->progs.ssl_write_ex_exit : s->progs.ssl_write_ex_enter;
	if (strcmp(d->sym, "SSL_read_ex") == 0)
		return d->ret ? s->progs.ssl_read_ex_exit : s->progs.ssl_read_ex_enter;
	return d->ret ? s->progs.ssl_handshake_exit : s->progs.ssl_handshake_enter;
}

static void lib__detach(struct tls_lib *lib)
{
	uprobe__detach(lib->links, lib->nlinks);
	lib->nlinks = 0;
}

/* "/proc/<pid>/root/usr/lib/x.so" → "/usr/lib/x.so" */
static const char *host_path(const char *path)
{
	const char *p;

	if (strncmp(path, "/proc/", 6) != 0)
		return path;
	p = strstr(path + 6, "/root/");
	return p ? p + 5 : path;
}

/* kinds: the probe sets (enum lib_kind bits). A static executable is asked
 * for both, libcrypto's optional there (an executable may use OpenSSL
 * without BIO pairs, or have lost the symbols to the linker). */
static int attach_file(struct tls *t, const char *path, uint32_t pid, enum linkage linkage,
		       unsigned int kinds)
{
	struct tls_lib *lib;
	int missing_optional = 0;

	if (t->nlibs == LIBS_MAX) {
		log_warn("too many OpenSSL files; not probed", LS("path", host_path(path))
			 LI("max", LIBS_MAX));
		return 0;	/* remembered: asking again would not help */
	}
	lib = &t->libs[t->nlibs];
	memset(lib, 0, sizeof(*lib));
	snprintf(lib->path, sizeof(lib->path), "%s", host_path(path));
	lib->linkage = linkage;
	for (int i = 0; i < LINKS_PER_LIB; i++) {
		const struct probe_def *d = &probe_defs[i];
		bool required = d->required && !(kinds & KIND_SSL && d->kind == KIND_CRYPTO);
		int err;

		if (!(kinds & d->kind))
			continue;
		err = uprobe__attach(probe_prog(t->skel, d), path, d->sym, 0, d->ret,
				     &lib->links[lib->nlinks]);
		if (err) {
			if (required) {
				log_warn("cannot probe OpenSSL", LS("path", lib->path)
					 LI("pid", pid) LS("symbol", d->sym) LS("error", strerror(-err)));
				lib__detach(lib);
				t->attach_failures++;
				return err;
			}
			missing_optional++;	/* OpenSSL 1.1.0 has no _ex; handshake optional */
			continue;
		}
		lib->nlinks++;
	}
	t->nlibs++;
	log_info("OpenSSL probed", LS("path", lib->path)
		 LS("linkage", linkage == LINK_STATIC ? "static" : "shared")
		 LS("probes", kinds == KIND_CRYPTO ? "bio" : kinds == KIND_SSL ? "ssl" : "ssl+bio")
		 LI("pid", pid)
		 LI("uprobes", lib->nlinks) LI("symbols_missing", missing_optional));
	return 0;
}

static int on_shared(void *arg, const char *path, uint32_t pid)
{
	return attach_file(arg, path, pid, LINK_SHARED, KIND_SSL);
}

static int on_crypto(void *arg, const char *path, uint32_t pid)
{
	return attach_file(arg, path, pid, LINK_SHARED, KIND_CRYPTO);
}

static int on_static(void *arg, const char *path, uint32_t pid)
{
	return attach_file(arg, path, pid, LINK_STATIC, KIND_SSL | KIND_CRYPTO);
}

static int on_exec(void *ctx, void *data, size_t size)
{
	struct tls *t = ctx;
	struct pending_scan *p;

	if (size < sizeof(uint32_t))
		return 0;
	/* A process named between its fork and this exec (a collector or a
	 * span of the parent's image) is named again at its next lookup: the
	 * start time an identity is checked by does not change at exec. */
	identity__exec(*(const uint32_t *)data);
	if (t->plen == PENDING_MAX) {
		t->exec_queue_drops++;	/* the periodic rescan still finds it */
		return 0;
	}
	p = &t->pend[(t->phead + t->plen) % PENDING_MAX];
	t->plen++;
	p->pid = *(const uint32_t *)data;
	p->left = 2;
	p->due_ns = t->now_ns + EXEC_SCAN_DELAY_NS;
	return 0;
}

static int register_families(struct tls *t, struct metrics *m)
{
	static const char *const l_info[] = { "library", "linkage" };
	static const char *const l_reason[] = { "reason" };

#define FAM(var, type, name, help, labels, n)                                               \
	do {                                                                                 \
		t->var = metrics__family(m, type, name, help, labels, n, NULL, 0, 0);        \
		if (t->var < 0)                                                              \
			return t->var;                                                       \
	} while (0)
	FAM(fam_info, METRIC_GAUGE, "sonde_tls_probe_info",
	    "OpenSSL files with SSL_read/SSL_write uprobes (linkage: shared library or static "
	    "executable).", l_info, 2);
	FAM(fam_events, METRIC_COUNTER, "sonde_tls_events_total",
	    "Plaintext records from SSL_read/SSL_write uprobes.", NULL, 0);
	FAM(fam_drops, METRIC_COUNTER, "sonde_tls_drops_total",
	    "Plaintext records lost because the ring was full.", NULL, 0);
	FAM(fam_unbound, METRIC_COUNTER, "sonde_tls_unbound_calls_total",
	    "SSL calls with data whose socket was not known (e.g. begun before the agent).",
	    NULL, 0);
	FAM(fam_noconn, METRIC_COUNTER, "sonde_tls_untracked_socket_total",
	    "SSL calls whose socket was no longer tracked (closed or fd reused).", NULL, 0);
	FAM(fam_readfail, METRIC_COUNTER, "sonde_tls_read_failures_total",
	    "Plaintext buffers the kernel side could not copy.", NULL, 0);
	FAM(fam_collected, METRIC_COUNTER, "sonde_tls_state_collected_total",
	    "Per-thread and per-SSL entries of exited threads/processes removed.", NULL, 0);
	FAM(fam_attach_fail, METRIC_COUNTER, "sonde_tls_attach_failures_total",
	    "OpenSSL files that could not be probed (retried on later sightings).", NULL, 0);
	FAM(fam_membio_bound, METRIC_COUNTER, "sonde_tls_membio_bindings_total",
	    "SSLs over a BIO pair (gRPC core) bound to their socket by the ciphertext fed to them.",
	    NULL, 0);
	FAM(fam_membio_unmatched, METRIC_COUNTER, "sonde_tls_membio_unmatched_total",
	    "Ciphertext fed to an unbound SSL's BIO pair that bound nothing: the thread had "
	    "received nothing (no_receive) or not these bytes last (mismatch).", l_reason, 1);
#undef FAM
	return 0;
}

int tls__open(struct tls **out, const struct tls_opts *o, struct metrics *m, struct libwatch *w)
{
	struct tls *t = calloc(1, sizeof(*t));
	struct bpf_link *exec_link;
	int err;

	if (!t)
		return -ENOMEM;
	t->m = m;
	t->ncpus = libbpf_num_possible_cpus();
	t->watch = w;
	err = register_families(t, m);
	if (err)
		goto fail;
	t->skel = tls_bpf__open();
	if (!t->skel) {
		err = -errno;
		goto fail;
	}
	t->skel->rodata->self_tgid = o->self_tgid;
	t->skel->rodata->filter_tgid = o->filter_tgid;
	t->skel->rodata->capture_bytes = o->capture_bytes;
	t->skel->rodata->filter_port = o->filter_port;
	bpf_map__set_max_entries(t->skel->maps.rings, (uint32_t)t->ncpus);
	if ((err = bpf_map__reuse_fd(t->skel->maps.rings, o->rings_fd)) ||
	    (err = bpf_map__reuse_fd(t->skel->maps.conns, o->conns_fd)) ||
	    (err = bpf_map__reuse_fd(t->skel->maps.ssl_calls, o->ssl_calls_fd)) ||
	    (err = bpf_map__reuse_fd(t->skel->maps.membio_tgids, o->membio_tgids_fd)) ||
	    (err = bpf_map__reuse_fd(t->skel->maps.membio_recv, o->membio_recv_fd)))
		goto fail;
	uprobe__prepare(t->skel->obj);
	err = tls_bpf__load(t->skel);
	if (err)
		goto fail;
	exec_link = bpf_program__attach(t->skel->progs.tls_exec);
	if (!exec_link) {
		/* still useful: the periodic rescan finds new processes, later */
		log_warn("exec hook not attached; new processes are found by the periodic rescan",
			 LS("hook", "sched_process_exec") LS("error", strerror(errno)));
	} else {
		t->skel->links.tls_exec = exec_link;
	}
	t->execs = ring_buffer__new(bpf_map__fd(t->skel->maps.execs), on_exec, t, NULL);
	if (!t->execs) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = libwatch__add(t->watch, "libssl.so", on_shared, t)) ||
	    (err = libwatch__add(t->watch, "libcrypto.so", on_crypto, t)) ||
	    (err = libwatch__add_exe_symbol(t->watch, "SSL_write", on_static, t))) {
		libwatch__forget(t->watch, t);
		goto fail;
	}
	*out = t;
	return 0;
fail:
	tls__free(t);
	return err;
}

void tls__free(struct tls *t)
{
	struct uprobe_link *all;
	int n = 0;

	if (!t)
		return;
	/* every file's links in one go: their detach waits overlap */
	all = calloc((size_t)t->nlibs * LINKS_PER_LIB + 1, sizeof(*all));
	for (int i = 0; i < t->nlibs; i++) {
		if (!all) {
			lib__detach(&t->libs[i]);
			continue;
		}
		memcpy(all + n, t->libs[i].links, sizeof(*all) * (size_t)t->libs[i].nlinks);
		n += t->libs[i].nlinks;
		t->libs[i].nlinks = 0;
	}
	if (all)
		uprobe__detach(all, n);
	free(all);
	ring_buffer__free(t->execs);
	tls_bpf__destroy(t->skel);
	free(t);
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 || errno != ENOENT;
}

/* Entries of a map keyed by pid_tgid whose thread is gone. */
static void gc_threads(struct tls *t, int fd)
{
	uint64_t key, next, *cur = NULL;
	char path[64];

	while (bpf_map_get_next_key(fd, cur, &next) == 0) {
		key = next;
		cur = &key;
		snprintf(path, sizeof(path), "/proc/%u/task/%u", (uint32_t)(key >> 32), (uint32_t)key);
		if (!path_exists(path) && bpf_map_delete_elem(fd, &key) == 0)
			t->collected++;
	}
}

/* Entries of a map whose key (ksize bytes, at most 16) holds a tgid at
 * toff, whose process is gone. */
static void gc_procs(struct tls *t, int fd, size_t ksize, size_t toff)
{
	uint8_t key[16], next[16];
	void *cur = NULL;
	uint32_t tgid;
	char path[64];

	while (bpf_map_get_next_key(fd, cur, next) == 0) {
		memcpy(key, next, ksize);
		cur = key;
		memcpy(&tgid, key + toff, sizeof(tgid));
		snprintf(path, sizeof(path), "/proc/%u", tgid);
		if (!path_exists(path) && bpf_map_delete_elem(fd, key) == 0)
			t->collected++;
	}
}

/* Entries of threads (ssl_calls, membio_recv, pair_calls) and processes
 * (ssl_socks, membio_bios, membio_tgids) that are gone: a thread killed
 * inside SSL_read never reaches the return probe. */
static void gc(struct tls *t)
{
	gc_threads(t, bpf_map__fd(t->skel->maps.ssl_calls));
	gc_threads(t, bpf_map__fd(t->skel->maps.membio_recv));
	gc_threads(t, bpf_map__fd(t->skel->maps.pair_calls));
	gc_procs(t, bpf_map__fd(t->skel->maps.ssl_socks), 16, 8);	/* struct ssl_key */
	gc_procs(t, bpf_map__fd(t->skel->maps.membio_bios), 16, 8);	/* struct bio_key */
	gc_procs(t, bpf_map__fd(t->skel->maps.membio_tgids), 4, 0);
}

void tls__poll_execs(struct tls *t)
{
	if (t)
		ring_buffer__consume(t->execs);
}

void tls__tick(struct tls *t, uint64_t now_ns)
{
	if (!t)
		return;
	t->now_ns = now_ns;
	ring_buffer__consume(t->execs);
	while (t->plen && t->pend[t->phead].due_ns <= now_ns) {
		struct pending_scan p = t->pend[t->phead];

		t->phead = (t->phead + 1) % PENDING_MAX;
		t->plen--;
		libwatch__scan_pid(t->watch, p.pid);
		if (--p.left && t->plen < PENDING_MAX) {
			p.due_ns = now_ns + EXEC_SCAN_AGAIN_NS;
			t->pend[(t->phead + t->plen) % PENDING_MAX] = p;
			t->plen++;
		}
	}
	if (now_ns >= t->next_gc_ns) {
		if (t->next_gc_ns)
			gc(t);
		t->next_gc_ns = now_ns + GC_PERIOD_NS;
	}
}

int tls__exec_fd(const struct tls *t)
{
	return t && t->execs ? bpf_map__fd(t->skel->maps.execs) : -1;
}

bool tls__pending(const struct tls *t)
{
	return t && t->plen;
}

int tls__files(const struct tls *t)
{
	return t ? t->nlibs : 0;
}

bool tls__exec_hooked(const struct tls *t)
{
	return t && t->skel->links.tls_exec;
}

static uint64_t counter(struct tls *t, enum sonde_tls_counter idx)
{
	uint64_t vals[t->ncpus > 0 ? t->ncpus : 1], sum = 0;
	uint32_t key = idx;

	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.tls_counters), &key, vals))
		return 0;
	for (int i = 0; i < t->ncpus; i++)
		sum += vals[i];
	return sum;
}

void tls__collect(struct tls *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nlibs; i++) {
		const char *lv[] = { t->libs[i].path,
				     t->libs[i].linkage == LINK_STATIC ? "static" : "shared" };

		metrics__set(t->m, t->fam_info, lv, 1);
	}
	metrics__set(t->m, t->fam_events, NULL, (double)counter(t, SONDE_TLS_CNT_EVENTS));
	metrics__set(t->m, t->fam_drops, NULL, (double)counter(t, SONDE_TLS_CNT_RING_DROPS));
	metrics__set(t->m, t->fam_unbound, NULL, (double)counter(t, SONDE_TLS_CNT_UNBOUND));
	metrics__set(t->m, t->fam_noconn, NULL, (double)counter(t, SONDE_TLS_CNT_NO_CONN));
	metrics__set(t->m, t->fam_readfail, NULL, (double)counter(t, SONDE_TLS_CNT_READ_FAIL));
	metrics__set(t->m, t->fam_collected, NULL, (double)t->collected);
	metrics__set(t->m, t->fam_attach_fail, NULL, (double)t->attach_failures);
	metrics__set(t->m, t->fam_membio_bound, NULL, (double)counter(t, SONDE_TLS_CNT_MEMBIO_BOUND));
	metrics__set(t->m, t->fam_membio_unmatched, (const char *[]){ "no_receive" },
		     (double)counter(t, SONDE_TLS_CNT_MEMBIO_NO_RECV));
	metrics__set(t->m, t->fam_membio_unmatched, (const char *[]){ "mismatch" },
		     (double)counter(t, SONDE_TLS_CNT_MEMBIO_MISMATCH));
}
