/* The identity cache: one entry per tgid (direct-mapped; a reused tgid is
 * told apart by its start time), filled on first sight from /proc (cgroup,
 * environ, exe, cmdline: a few small reads, timed) and completed later by the
 * container runtime's answer, which a worker thread fetches so a slow,
 * hanging or absent runtime never holds up the event loop. The table is the
 * loop thread's; the worker only touches the container table, under lock. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "identity/identity.h"
#include "identity/runtime.h"
#include "metrics/metrics.h"
#include "util/log.h"
#include "util/proc.h"

#define IDENT_SLOTS 4096
#define IDENT_WAYS 4		/* a tgid may sit in any of 4 slots: two busy
				 * processes that hash alike do not evict each
				 * other on every span */
#define CMETA_SLOTS 512		/* containers with a lookup answered or pending */
#define REQ_MAX 128		/* lookups waiting for the worker */
#define RECHECK_NS (5ULL * 1000000000ULL)	/* trust a cached start time this long */
#define EXIT_GRACE_NS (10ULL * 1000000000ULL)	/* spans in flight after an exit (default) */
#define SWEEP_NS (30ULL * 1000000000ULL)	/* processes gone without an exit seen */
#define FAIL_RETRY_NS (30ULL * 1000000000ULL)	/* a failed lookup is tried again after */
#define ENVIRON_MAX (128 * 1024)	/* environ bytes read: OTEL_* sit early in practice */
#define RESCAN_NS (10ULL * 1000000000ULL)	/* default */
#define CGTAB_SLOTS 8192	/* cgroups reported by the kernel side, by tgid */
#define CGROUP2_SUPER_MAGIC 0x63677270
#define FILEID_KERNFS 0xfe	/* the file handle type of cgroupfs: the node's 64-bit id */

enum cmeta_state { CM_FREE = 0, CM_PENDING, CM_OK, CM_FAILED };

/* One container's runtime answer. */
struct cmeta {
	char cid[IDENT_CID_MAX];
	enum ident_runtime rt;
	enum cmeta_state state;
	struct ident_k8s k8s;
	char name[IDENT_SHORT_MAX];	/* the runtime's container name (docker, podman) */
	uint64_t done_ns;
	uint64_t used_ns;		/* last asked for by a process */
	uint64_t added_ns;
	uint64_t seen_gen;		/* the last worker rescan that found a process in it */
};

static struct {
	struct ident_opts o;
	char host[256];
	struct identity *tab;		/* IDENT_SLOTS */
	/* bit i: tab[i].used. The walks made at every scrape (the live count,
	 * sonde_target_info) and every tick visit only these slots: reading
	 * the flag of 4096 entries of 3.6 KB each costs a cache miss apiece. */
	uint64_t inuse[IDENT_SLOTS / 64];
	/* each slot's sonde_target_info line as last rendered, and the gen it
	 * was rendered from (gen only grows in a slot, see drop) */
	struct { char *text; uint32_t len, gen; } *lines;
	struct ident_stats st;
	char *envbuf;			/* ENVIRON_MAX */
	uint64_t last_sweep_ns;
	uint64_t exit_grace_ns, rescan_ns;	/* opts, or the defaults */
	/* the cgroup each tgid last reported (SONDE_OP_CGROUP), direct-mapped */
	struct { uint32_t tgid; uint64_t id; } *cgtab;
	int cg2_fd;			/* the cgroup2 mount, for open_by_handle_at; -1: none */
	char cg2_path[256];		/* its path, as readlink shows paths under it */
	bool cg_warned;
	/* the clock as of the last identity__tick (or init): the per-span hit
	 * compares against it instead of reading the clock (~20 ns a call) */
	uint64_t tick_ns;
	/* runtime worker */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t worker;
	bool worker_on, stopping;
	struct cmeta *cm;		/* CMETA_SLOTS, under mu */
	char req[REQ_MAX][IDENT_CID_MAX];	/* ring of container ids, under mu */
	enum ident_runtime req_rt[REQ_MAX];
	size_t req_head, req_n;
	uint64_t req_dropped;
	/* per runtime: 1 answered, 0 unknown, -errno of the last failure */
	int rt_state[IDENT_RT_PODMAN + 1];
	uint64_t rescan_ns_last, rescans;
	uint32_t containers;		/* entries of cm in use, as of the last rescan */
	/* metrics */
	struct metrics *m;
	int fam_resolved, fam_resolve_s, fam_live, fam_lookups, fam_runtime, fam_rescan, fam_containers;
	int fam_by_cgid;
	bool ready;
} g;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Up to cap - 1 bytes of a /proc file (NUL added); -1 when unreadable. */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while (got < cap - 1 && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = 0;
	return (ssize_t)got;
}

/* Start time (clock ticks after boot) of tgid, 0 when gone; *alive (may
 * be NULL) tells a running process from a zombie. */
static unsigned long long start_time2(uint32_t tgid, bool *alive)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	char *p;

	if (alive)
		*alive = false;
	snprintf(path, sizeof(path), "%s/%u/stat", g.o.proc_root, tgid);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	/* comm may hold spaces and parentheses: fields resume after the last ')' */
	p = strrchr(buf, ')');
	if (alive && p && p[1] == ' ')
		*alive = p[2] != 'Z' && p[2] != 'X' && p[2] != 0;
	/* each step lands on the blank before the next field: 20 of them to field 22 */
	for (int field = 3; field <= 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p + 1, "%llu", &start);
	return start;
}

static unsigned long long start_time(uint32_t tgid)
{
	return start_time2(tgid, NULL);
}

/* ---- the container table (under g.mu) ---- */

static struct cmeta *cmeta_find(const char *cid)
{
	uint32_t h = 2166136261u;

	for (const char *p = cid; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (size_t i = 0; i < 8; i++) {	/* a short probe; the oldest of them is reused */
		struct cmeta *c = &g.cm[(h + i) % CMETA_SLOTS];

		if (c->state != CM_FREE && strcmp(c->cid, cid) == 0)
			return c;
	}
	return NULL;
}

static struct cmeta *cmeta_add(const char *cid, enum ident_runtime rt, uint64_t now)
{
	uint32_t h = 2166136261u;
	struct cmeta *victim = NULL;

	for (const char *p = cid; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (size_t i = 0; i < 8; i++) {
		struct cmeta *c = &g.cm[(h + i) % CMETA_SLOTS];

		if (c->state == CM_FREE) {
			victim = c;
			break;
		}
		if (c->state != CM_PENDING && (!victim || c->used_ns < victim->used_ns))
			victim = c;
	}
	if (!victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->cid, sizeof(victim->cid), "%s", cid);
	victim->rt = rt;
	victim->state = CM_PENDING;
	victim->used_ns = victim->added_ns = now;
	return victim;
}

/* Asks the worker for cid; false when the queue is full (counted). */
static bool request(const char *cid, enum ident_runtime rt)
{
	size_t slot;

	if (g.req_n == REQ_MAX) {
		g.req_dropped++;
		return false;
	}
	slot = (g.req_head + g.req_n++) % REQ_MAX;
	snprintf(g.req[slot], sizeof(g.req[slot]), "%s", cid);
	g.req_rt[slot] = rt;
	pthread_cond_signal(&g.cv);
	return true;
}

/* The runtime's answer for cid, or (ask) a lookup started: true when known
 * (c filled), false when pending or failed. Loop thread. */
static bool container_meta(const char *cid, enum ident_runtime rt, bool ask, struct cmeta *out,
			   bool *pending)
{
	uint64_t now = mono_ns();
	struct cmeta *c;
	bool ok = false;

	*pending = false;
	if (!g.worker_on || !runtime__socket(&g.o, rt))
		return false;
	pthread_mutex_lock(&g.mu);
	c = cmeta_find(cid);
	if (!c && !ask) {
		pthread_mutex_unlock(&g.mu);
		return false;
	}
	if (c && ask && c->state == CM_FAILED && now - c->done_ns > FAIL_RETRY_NS) {
		c->state = CM_PENDING;
		if (!request(cid, rt))
			c->state = CM_FAILED;
	}
	if (!c && (c = cmeta_add(cid, rt, now)) && !request(cid, rt))
		c->state = CM_FREE, c = NULL;
	if (c) {
		c->used_ns = now;
		if (c->state == CM_OK) {
			*out = *c;
			ok = true;
		}
		*pending = c->state == CM_PENDING;
	}
	pthread_mutex_unlock(&g.mu);
	return ok;
}

/* ---- resolution (loop thread) ---- */

static void basename_of(const char *path, char *out, size_t n)
{
	char tmp[IDENT_SHORT_MAX];

	proc__service_name(NULL, path, NULL, tmp, sizeof(tmp));
	snprintf(out, n, "%s", tmp);
}

/* Fills the runtime part of e (k8s, owner, container name) from its cgroup
 * and the container table; sets e->pending while the runtime has not answered.
 * ask: start a lookup when the table has none (not for a process that has
 * exited: a container gone leaves nothing behind). */
static void apply_container(struct identity *e, bool ask)
{
	struct cmeta cm;
	bool pending;

	e->pending = 0;
	if (!e->container_id[0])
		return;
	if (container_meta(e->container_id, e->runtime, ask, &cm, &pending)) {
		char pod_uid[IDENT_UID_MAX];

		memcpy(pod_uid, e->k8s.pod_uid, sizeof(pod_uid));
		e->k8s = cm.k8s;
		if (!e->k8s.pod_uid[0])
			memcpy(e->k8s.pod_uid, pod_uid, sizeof(pod_uid));
		memcpy(e->container_name, cm.name, sizeof(e->container_name));
	}
	e->pending = pending;
	e->owner = ident__owner(&e->k8s, e->owner_name, sizeof(e->owner_name), e->job_name,
				sizeof(e->job_name));
}

static void derive(struct identity *e, const struct ident_env *env)
{
	ident__derive(e, env, g.host);
	if (g.o.override)
		snprintf(e->service_name, sizeof(e->service_name), "%s", g.o.override);
	e->gen++;
}

/* ---- cgroups by id (short-lived processes) ---- */

void identity__cgroup(uint32_t tgid, uint64_t cgroup_id)
{
	if (!g.cgtab)
		return;
	g.cgtab[tgid % CGTAB_SLOTS].tgid = tgid;
	g.cgtab[tgid % CGTAB_SLOTS].id = cgroup_id;
}

/* The cgroup2 mount: the one configured, else a hybrid host's
 * /sys/fs/cgroup/unified, else /sys/fs/cgroup; -1 when there is none
 * (cgroup v1 only: the ids name nothing sonde can open). */
static int cgroup2_open(const char *want)
{
	static const char *const where[] = { "/sys/fs/cgroup/unified", "/sys/fs/cgroup" };

	for (size_t i = 0; i < 2; i++) {
		const char *p = want ? want : where[i];
		struct statfs sf;
		int fd;

		if (statfs(p, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC &&
		    (fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			if (!realpath(p, g.cg2_path))
				snprintf(g.cg2_path, sizeof(g.cg2_path), "%s", p);
			return fd;
		}
		if (want)
			break;
	}
	return -1;
}

/* "0::<path>\n" of the cgroup whose id (the inode number of its directory
 * on the cgroup2 mount) is id, into buf, as /proc/<pid>/cgroup would have
 * said it; the byte count, or 0 when it cannot be found (gone with its
 * last process, the root, no cgroup2 mount, no CAP_DAC_READ_SEARCH). */
static ssize_t cgroup_line(uint64_t id, char *buf, size_t n)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	char link[64], path[4096];
	size_t root = strlen(g.cg2_path);
	ssize_t len;
	int fd;

	if (g.cg2_fd < 0 || id <= 1)
		return 0;
	h.fh.handle_bytes = sizeof(id);
	h.fh.handle_type = FILEID_KERNFS;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(g.cg2_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if ((errno == EPERM || errno == EOPNOTSUPP) && !g.cg_warned) {
			log_warn("cannot open cgroups by id: a process gone before its /proc is read "
				 "is named by its executable alone", LS("error", strerror(errno))
				 LS("needs", "CAP_DAC_READ_SEARCH"));
			g.cg_warned = true;
		}
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, path, sizeof(path) - 1);
	close(fd);
	if (len <= 0 || (size_t)len < root || strncmp(path, g.cg2_path, root) != 0)
		return 0;
	path[len] = 0;
	len = snprintf(buf, n, "0::%s\n", path[root] ? path + root : "/");
	return len > 0 && (size_t)len < n ? len : 0;
}

static void mark_used(const struct identity *e)
{
	size_t i = (size_t)(e - g.tab);

	g.inuse[i / 64] |= 1ULL << (i % 64);
}

static void drop(struct identity *e)
{
	size_t i = (size_t)(e - g.tab);
	uint32_t gen = e->gen;

	memset(e, 0, sizeof(*e));
	e->gen = gen + 1;	/* the slot's next identity has another gen */
	g.inuse[i / 64] &= ~(1ULL << (i % 64));
}

/* The next slot in use from *i on (ascending), or NULL. */
static struct identity *next_used(size_t *i)
{
	while (*i < IDENT_SLOTS) {
		uint64_t bits = g.inuse[*i / 64] >> (*i % 64);

		if (bits) {
			*i += (size_t)__builtin_ctzll(bits);
			return &g.tab[(*i)++];
		}
		*i = (*i / 64 + 1) * 64;
	}
	return NULL;
}

/* Reads /proc for tgid into e. */
static void resolve(struct identity *e, uint32_t tgid, unsigned long long start, const char *exe,
		    const char *comm)
{
	char path[96], buf[4096];
	struct ident_cgroup cg;
	struct ident_env env = { 0 };
	uint64_t t0 = mono_ns();
	uint32_t gen = e->gen;
	ssize_t n;

	memset(e, 0, sizeof(*e));
	e->gen = gen;
	e->used = 1;
	mark_used(e);
	e->tgid = tgid;
	e->start = start;
	e->checked_ns = e->used_ns = g.tick_ns;

	snprintf(path, sizeof(path), "%s/%u/exe", g.o.proc_root, tgid);
	n = readlink(path, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	if (buf[0])
		basename_of(buf, e->exe, sizeof(e->exe));
	else if (exe && exe[0])
		basename_of(exe, e->exe, sizeof(e->exe));
	else
		snprintf(e->exe, sizeof(e->exe), "%s", comm && comm[0] ? comm : "unknown");

	snprintf(path, sizeof(path), "%s/%u/cmdline", g.o.proc_root, tgid);
	if (read_file(path, buf, sizeof(buf)) > 0) {
		size_t cn = strnlen(buf, sizeof(e->command) - 1);	/* argv[0], cut to fit */

		memcpy(e->command, buf, cn);
		e->command[cn] = 0;
	}

	snprintf(path, sizeof(path), "%s/%u/cgroup", g.o.proc_root, tgid);
	n = read_file(path, buf, sizeof(buf));
	if (n <= 0 && g.cgtab && g.cgtab[tgid % CGTAB_SLOTS].tgid == tgid) {
		/* gone already: the cgroup the kernel side reported for it */
		n = cgroup_line(g.cgtab[tgid % CGTAB_SLOTS].id, buf, sizeof(buf));
		if (n > 0 && ident__parse_cgroup(buf, (size_t)n, &cg))
			g.st.by_cgroup_id++;
	}
	if (n > 0 && ident__parse_cgroup(buf, (size_t)n, &cg)) {
		memcpy(e->container_id, cg.container_id, sizeof(e->container_id));
		memcpy(e->k8s.pod_uid, cg.pod_uid, sizeof(e->k8s.pod_uid));
		memcpy(e->unit, cg.unit, sizeof(e->unit));
		e->runtime = cg.runtime;
	}
	snprintf(path, sizeof(path), "%s/%u/environ", g.o.proc_root, tgid);
	if (g.envbuf && (n = read_file(path, g.envbuf, ENVIRON_MAX)) > 0)
		ident__parse_environ(g.envbuf, (size_t)n, &env);
	e->env = env;
	apply_container(e, true);
	derive(e, &e->env);
	if (!start) {
		/* Gone before it could be read (a short-lived process whose
		 * events are read after its exit, perhaps after the exit itself):
		 * kept for the spans in flight like an exited one, never listed
		 * on sonde_target_info, dropped after the grace. */
		e->exited = 1;
		e->exited_ns = mono_ns();
	}
	g.st.resolved++;
	g.st.resolve_ns += mono_ns() - t0;
}

/* The runtime answered (or gave up) since e was resolved: its k8s part,
 * then everything derived from it, again; /proc is not read again (the
 * process may be gone by now). */
static void complete(struct identity *e)
{
	bool pending;

	pthread_mutex_lock(&g.mu);
	{
		struct cmeta *c = cmeta_find(e->container_id);

		pending = c && c->state == CM_PENDING;
	}
	pthread_mutex_unlock(&g.mu);
	if (pending)
		return;
	apply_container(e, !e->exited);
	derive(e, &e->env);
}

/* tgid's entry; when absent, NULL, or (make) the slot to fill: a free one
 * of its set, else an exited one, else the least recently used. */
static struct identity *slot_of(uint32_t tgid, bool make)
{
	struct identity *set = &g.tab[((tgid * 2654435761u) >> 20) % (IDENT_SLOTS / IDENT_WAYS) * IDENT_WAYS];
	struct identity *pick = NULL;

	for (int i = 0; i < IDENT_WAYS; i++)
		if (set[i].used && set[i].tgid == tgid)
			return &set[i];
	if (!make)
		return NULL;
	for (int i = 0; i < IDENT_WAYS; i++) {
		struct identity *e = &set[i];

		if (!e->used)
			return e;
		if (!pick || (e->exited && !pick->exited) ||
		    (e->exited == pick->exited && e->used_ns < pick->used_ns))
			pick = e;
	}
	g.st.evicted++;
	return pick;
}

/* The basename rule alone, when the cache cannot be set up. */
static const struct identity *fallback(uint32_t tgid, const char *exe, const char *comm)
{
	static struct identity none;

	memset(&none, 0, sizeof(none));
	none.tgid = tgid;
	proc__service_name(NULL, exe, comm, none.service_name, sizeof(none.service_name));
	return &none;
}

static bool ensure_init(void)
{
	/* first use without identity__init (tests of other modules): the
	 * defaults, no runtime */
	static const struct ident_opts defaults;

	return g.tab || identity__init(&defaults, NULL) == 0;
}

const struct identity *identity__get(uint32_t tgid, const char *exe, const char *comm)
{
	struct identity *e;
	unsigned long long start;
	uint64_t now;
	bool alive;

	if (!ensure_init())
		return fallback(tgid, exe, comm);
	e = slot_of(tgid, true);
	if (e->used && e->tgid == tgid) {
		e->used_ns = g.tick_ns;
		if (e->pending)
			complete(e);
		now = g.tick_ns;
		if (!e->exited && !e->execd && now - e->checked_ns < RECHECK_NS)
			return e;
		start = start_time2(tgid, &alive);
		e->checked_ns = now;
		/* The same process, another image; or one that exec'd and is
		 * gone already (a short command: its spans come after its exit),
		 * named from what the caller knows of it rather than from the
		 * image before. */
		if (e->execd && !e->exited && (!alive || start == e->start))
			goto again;
		/* Gone (or a zombie): keep what was known for the counters still
		 * in flight. After an exit was seen, a live process under the tgid
		 * is another one even when it started in the same clock tick (the
		 * start time's resolution); without one, the start time tells. */
		if (e->exited ? !alive : (start == 0 || e->start == 0 || start == e->start))
			return e;
		g.st.reused++;
	} else {
		start = start_time2(tgid, &alive);
	}
again:
	resolve(e, tgid, start, exe, comm);
	return e;
}

const struct identity *identity__get_at(uint32_t tgid, unsigned long long start, const char *exe,
					const char *comm)
{
	struct identity *e;

	if (!ensure_init())
		return fallback(tgid, exe, comm);
	e = slot_of(tgid, true);
	if (e->used && e->tgid == tgid) {
		e->used_ns = g.tick_ns;
		if (e->pending)
			complete(e);
		/* the caller has just seen this start time: no /proc read */
		if (!e->execd && (start == 0 || start == e->start)) {
			if (!e->exited)
				e->checked_ns = g.tick_ns;
			return e;
		}
		if (start != e->start)
			g.st.reused++;
	}
	resolve(e, tgid, start, exe, comm);
	return e;
}

void identity__exec(uint32_t tgid)
{
	struct identity *e = g.tab ? slot_of(tgid, false) : NULL;

	if (e && !e->exited)
		e->execd = 1;
}

size_t identity__nlabels(void)
{
	return g.o.pod_labels ? IDENT_LABELS_MAX : 2;
}

void identity__label_values(const struct identity *id, const char **out)
{
	out[0] = id ? id->service_namespace : "";
	out[1] = id ? id->k8s.namespace : "";
	out[2] = id ? id->k8s.pod_name : "";
	out[3] = id ? id->container_id : "";
}

void identity__exit(uint32_t tgid)
{
	struct identity *e;

	if (!g.tab)
		return;
	e = slot_of(tgid, false);
	if (e && !e->exited) {
		e->exited = 1;
		e->exited_ns = mono_ns();
	}
}

bool identity__pod_labels(void)
{
	return g.o.pod_labels;
}

void identity__stats(struct ident_stats *s)
{
	uint32_t live = 0;

	for (size_t i = 0; i < IDENT_SLOTS / 64; i++)
		live += (uint32_t)__builtin_popcountll(g.inuse[i]);
	*s = g.st;
	s->live = live;
	if (g.cm) {
		pthread_mutex_lock(&g.mu);
		s->runtime_pending = g.req_n;
		s->containers = g.containers;
		pthread_mutex_unlock(&g.mu);
	}
}

/* Drops identities of processes that exited (after the grace) or are gone
 * without an exit seen. */
void identity__tick(void)
{
	uint64_t now = mono_ns();
	struct identity *e;
	bool sweep;

	if (!g.tab)
		return;
	g.tick_ns = now;
	sweep = now - g.last_sweep_ns > SWEEP_NS;
	if (sweep)
		g.last_sweep_ns = now;
	for (size_t i = 0; (e = next_used(&i));) {
		if (e->pending)
			complete(e);
		if ((e->exited && now - e->exited_ns > g.exit_grace_ns) ||
		    (sweep && !e->exited && start_time(e->tgid) != e->start)) {
			drop(e);
			g.st.dropped++;
		}
	}
	/* container answers: the worker's rescan drops those of containers
	 * with no process left */
}

/* ---- the worker ---- */

/* Every container id in /proc/<pid>/cgroup, looked up ahead of its first
 * request; timed (sonde_identity_rescan_seconds). Worker thread. */
static void rescan(void)
{
	static uint64_t gen;
	char path[96], buf[4096];
	struct ident_cgroup cg;
	uint64_t t0 = mono_ns();
	struct dirent *d;
	DIR *dir = opendir(g.o.proc_root);
	uint32_t live = 0;
	ssize_t n;

	if (!dir)
		return;
	gen++;
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "%.64s/%.16s/cgroup", g.o.proc_root, d->d_name);
		if ((n = read_file(path, buf, sizeof(buf))) <= 0 || !ident__parse_cgroup(buf, (size_t)n, &cg) ||
		    !cg.container_id[0] || !runtime__socket(&g.o, cg.runtime))
			continue;
		pthread_mutex_lock(&g.mu);
		{
			struct cmeta *c = cmeta_find(cg.container_id);

			if (!c && (c = cmeta_add(cg.container_id, cg.runtime, mono_ns())) &&
			    !request(cg.container_id, cg.runtime))
				c->state = CM_FREE;
			if (c && c->state != CM_FREE)
				c->seen_gen = gen;
		}
		pthread_mutex_unlock(&g.mu);
	}
	closedir(dir);
	pthread_mutex_lock(&g.mu);
	/* A container with no process left (it died, perhaps before its
	 * lookup completed) leaves nothing behind: its answer, or its pending
	 * request, goes now. Not one added since the scan began: its process
	 * may have come after the scan passed it. */
	for (size_t i = 0; i < CMETA_SLOTS; i++) {
		struct cmeta *c = &g.cm[i];

		if (c->state == CM_FREE)
			continue;
		if (c->seen_gen != gen && c->added_ns < t0)
			c->state = CM_FREE;
		else
			live++;
	}
	g.containers = live;
	g.rescan_ns_last = mono_ns() - t0;
	g.rescans++;
	pthread_mutex_unlock(&g.mu);
}

static void *worker(void *arg)
{
	uint64_t next_rescan = 0;

	(void)arg;
	pthread_mutex_lock(&g.mu);
	while (!g.stopping) {
		char cid[IDENT_CID_MAX];
		enum ident_runtime rt;
		struct ident_k8s k = { 0 };
		char name[IDENT_SHORT_MAX] = "";
		struct cmeta *c;
		int err;

		if (!g.req_n) {
			struct timespec until;
			uint64_t now = mono_ns();

			if (now >= next_rescan) {
				pthread_mutex_unlock(&g.mu);
				rescan();
				pthread_mutex_lock(&g.mu);
				next_rescan = mono_ns() + g.rescan_ns;
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&g.cv, &g.mu, &until);
			continue;
		}
		memcpy(cid, g.req[g.req_head], sizeof(cid));
		rt = g.req_rt[g.req_head];
		g.req_head = (g.req_head + 1) % REQ_MAX;
		g.req_n--;
		if (!(c = cmeta_find(cid)) || c->state != CM_PENDING)
			continue;	/* its container went before its turn came */
		pthread_mutex_unlock(&g.mu);

		err = runtime__lookup(rt, &g.o, cid, &k, name, sizeof(name));

		pthread_mutex_lock(&g.mu);
		/* logged when the runtime's state changes, not per lookup */
		if (err && err != -ENOENT && g.rt_state[rt] != err)
			log_warn("container runtime not answering; containers keep their cgroup identity "
				 "(container.id) until it does", LS("runtime", runtime__name(rt))
				 LS("socket", runtime__socket(&g.o, rt)) LS("error", strerror(-err)));
		if ((!err || err == -ENOENT) && g.rt_state[rt] != 1)
			log_info("container runtime answered", LS("runtime", runtime__name(rt))
				 LS("socket", runtime__socket(&g.o, rt)));
		g.rt_state[rt] = err && err != -ENOENT ? err : 1;
		if ((c = cmeta_find(cid)) && c->state == CM_PENDING) {
			c->state = err ? CM_FAILED : CM_OK;
			c->k8s = k;
			memcpy(c->name, name, sizeof(c->name));
			c->done_ns = mono_ns();
		}
		if (err)
			g.st.runtime_failed++;
		else
			g.st.runtime_ok++;
	}
	pthread_mutex_unlock(&g.mu);
	return NULL;
}

/* ---- setup, metrics ---- */

int identity__init(const struct ident_opts *o, struct metrics *m)
{
	static const char *const l_result[] = { "result" };
	static const char *const l_rt[] = { "runtime", "socket" };

	memset(&g, 0, sizeof(g));
	g.o = *o;
	if (!g.o.proc_root)
		g.o.proc_root = "/proc";
	if (!g.o.containerd_ns || !g.o.containerd_ns[0])
		g.o.containerd_ns = "k8s.io";
	if (!g.o.timeout_ms)
		g.o.timeout_ms = 1000;
	g.exit_grace_ns = o->exit_grace_ms ? o->exit_grace_ms * 1000000ULL : EXIT_GRACE_NS;
	g.rescan_ns = o->rescan_ms ? o->rescan_ms * 1000000ULL : RESCAN_NS;
	if (o->host_name)
		snprintf(g.host, sizeof(g.host), "%s", o->host_name);
	else if (gethostname(g.host, sizeof(g.host) - 1))
		g.host[0] = 0;
	g.tab = calloc(IDENT_SLOTS, sizeof(*g.tab));
	g.envbuf = malloc(ENVIRON_MAX);
	g.cm = calloc(CMETA_SLOTS, sizeof(*g.cm));
	g.cgtab = calloc(CGTAB_SLOTS, sizeof(*g.cgtab));
	g.cg2_fd = cgroup2_open(o->cgroup2_root);
	if (!g.tab || !g.envbuf || !g.cm || !g.cgtab) {
		identity__fini();
		return -ENOMEM;
	}
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	g.tick_ns = g.last_sweep_ns = mono_ns();
	g.m = m;
	if (m) {
		g.fam_resolved = metrics__family(m, METRIC_COUNTER, "sonde_identity_resolutions_total",
			"Process identities resolved from /proc (once per process; again when a tgid is reused).",
			NULL, 0, NULL, 0, 0);
		g.fam_resolve_s = metrics__family(m, METRIC_COUNTER, "sonde_identity_resolve_seconds_total",
			"Time the event loop spent reading /proc to resolve identities.", NULL, 0, NULL, 0, 0);
		g.fam_live = metrics__family(m, METRIC_GAUGE, "sonde_identity_processes",
			"Process identities cached.", NULL, 0, NULL, 0, 0);
		g.fam_lookups = metrics__family(m, METRIC_COUNTER, "sonde_runtime_lookups_total",
			"Container metadata lookups by the runtime worker, by result (ok, failed, "
			"queue_full).", l_result, 1, NULL, 0, 0);
		g.fam_runtime = metrics__family(m, METRIC_GAUGE, "sonde_runtime_info",
			"Container runtime sockets: 1 when the last lookup was answered, 0 when it failed "
			"or none was made yet.", l_rt, 2, NULL, 0, 0);
		g.fam_rescan = metrics__family(m, METRIC_GAUGE, "sonde_identity_rescan_seconds",
			"Duration of the runtime worker's last /proc rescan for container ids.",
			NULL, 0, NULL, 0, 0);
		g.fam_by_cgid = metrics__family(m, METRIC_COUNTER, "sonde_identity_cgroup_id_resolutions_total",
			"Processes gone before their /proc/<pid>/cgroup was read, named from the cgroup "
			"the kernel side reported with their first connection.", NULL, 0, NULL, 0, 0);
		g.fam_containers = metrics__family(m, METRIC_GAUGE, "sonde_identity_containers",
			"Containers whose runtime metadata is cached or being looked up, as of the "
			"worker's last /proc rescan (a container with no process left is dropped then).",
			NULL, 0, NULL, 0, 0);
		if (g.fam_resolved < 0 || g.fam_resolve_s < 0 || g.fam_live < 0 || g.fam_lookups < 0 ||
		    g.fam_runtime < 0 || g.fam_rescan < 0 || g.fam_containers < 0 || g.fam_by_cgid < 0) {
			identity__fini();
			return -EINVAL;
		}
	}
	if (runtime__socket(&g.o, IDENT_RT_CONTAINERD) || runtime__socket(&g.o, IDENT_RT_DOCKER) ||
	    runtime__socket(&g.o, IDENT_RT_PODMAN) || runtime__socket(&g.o, IDENT_RT_CRIO)) {
		if (pthread_create(&g.worker, NULL, worker, NULL) == 0)
			g.worker_on = true;
		else
			log_warn("cannot start the container runtime worker; no runtime metadata",
				 LS("error", "pthread_create failed"));
	}
	g.ready = true;
	return 0;
}

void identity__fini(void)
{
	if (g.worker_on) {
		pthread_mutex_lock(&g.mu);
		g.stopping = true;
		pthread_cond_signal(&g.cv);
		pthread_mutex_unlock(&g.mu);
		pthread_join(g.worker, NULL);
		g.worker_on = false;
	}
	if (g.ready) {
		pthread_mutex_destroy(&g.mu);
		pthread_cond_destroy(&g.cv);
	}
	for (size_t i = 0; g.lines && i < IDENT_SLOTS; i++)
		free(g.lines[i].text);
	free(g.lines);
	free(g.tab);
	free(g.envbuf);
	free(g.cm);
	free(g.cgtab);
	if (g.cg2_fd > 0)
		close(g.cg2_fd);
	memset(&g, 0, sizeof(g));
}

void identity__collect(void)
{
	static const char *const ok[] = { "ok" }, *const failed[] = { "failed" },
			     *const full[] = { "queue_full" };
	struct ident_stats s;
	int state[IDENT_RT_PODMAN + 1];
	uint64_t rescan, dropped;
	uint32_t containers;

	if (!g.m || !g.tab)
		return;
	identity__stats(&s);
	metrics__set(g.m, g.fam_resolved, NULL, (double)s.resolved);
	metrics__set(g.m, g.fam_resolve_s, NULL, (double)s.resolve_ns / 1e9);
	metrics__set(g.m, g.fam_by_cgid, NULL, (double)s.by_cgroup_id);
	metrics__set(g.m, g.fam_live, NULL, (double)s.live);
	if (!g.worker_on)
		return;
	pthread_mutex_lock(&g.mu);
	memcpy(state, g.rt_state, sizeof(state));
	rescan = g.rescan_ns_last;
	dropped = g.req_dropped;
	containers = g.containers;
	pthread_mutex_unlock(&g.mu);
	metrics__set(g.m, g.fam_lookups, ok, (double)s.runtime_ok);
	metrics__set(g.m, g.fam_lookups, failed, (double)s.runtime_failed);
	metrics__set(g.m, g.fam_lookups, full, (double)dropped);
	for (int rt = IDENT_RT_CONTAINERD; rt <= IDENT_RT_PODMAN; rt++) {
		const char *lv[] = { runtime__name(rt), runtime__socket(&g.o, rt) };

		if (lv[1])
			metrics__set(g.m, g.fam_runtime, lv, state[rt] == 1 ? 1 : 0);
	}
	metrics__set(g.m, g.fam_rescan, NULL, (double)rescan / 1e9);
	metrics__set(g.m, g.fam_containers, NULL, (double)containers);
}

/* One label of sonde_target_info, when it has a value. */
static int label(struct metrics_buf *out, bool *first, const char *k, const char *v)
{
	char esc[512];
	size_t n = 0;

	if (!v || !v[0])
		return 0;
	for (const char *p = v; *p && n + 3 < sizeof(esc); p++) {
		if (*p == '\\' || *p == '"') {
			esc[n++] = '\\';
			esc[n++] = *p;
		} else if (*p == '\n') {
			esc[n++] = '\\';
			esc[n++] = 'n';
		} else {
			/* control bytes, and bytes past ASCII (not checked as UTF-8 here) */
			esc[n++] = (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x80 ? '_' : *p;
		}
	}
	esc[n] = 0;
	if ((!*first && metrics_buf__append(out, ",", 1)) || metrics_buf__append(out, k, strlen(k)) ||
	    metrics_buf__append(out, "=\"", 2) || metrics_buf__append(out, esc, n) ||
	    metrics_buf__append(out, "\"", 1))
		return -ENOMEM;
	*first = false;
	return 0;
}

/* e's sonde_target_info line. */
static int render_line(struct metrics_buf *out, const struct identity *e)
{
	char pid[16], key[48];
	bool first = true;
	int rc = 0;

	snprintf(pid, sizeof(pid), "%u", e->tgid);
	rc |= metrics_buf__append(out, "sonde_target_info{", 18);
	rc |= label(out, &first, "service_name", e->service_name);
	rc |= label(out, &first, "service_namespace", e->service_namespace);
	rc |= label(out, &first, "service_instance_id", e->instance_id);
	rc |= label(out, &first, "process_pid", pid);
	rc |= label(out, &first, "process_executable_name", e->exe);
	rc |= label(out, &first, "k8s_namespace_name", e->k8s.namespace);
	rc |= label(out, &first, "k8s_pod_name", e->k8s.pod_name);
	rc |= label(out, &first, "k8s_pod_uid", e->k8s.pod_uid);
	rc |= label(out, &first, "k8s_container_name", e->k8s.container_name);
	if (e->owner != IDENT_OWN_NONE) {
		snprintf(key, sizeof(key), "k8s_%s_name", ident__owner_kind(e->owner));
		rc |= label(out, &first, key, e->owner_name);
	}
	if (e->owner == IDENT_OWN_CRONJOB)
		rc |= label(out, &first, "k8s_job_name", e->job_name);
	rc |= label(out, &first, "container_id", e->container_id);
	rc |= label(out, &first, "container_name", e->k8s.known ? "" : e->container_name);
	rc |= label(out, &first, "systemd_unit", e->unit);
	rc |= metrics_buf__append(out, "} 1\n", 4);
	return rc ? -ENOMEM : 0;
}

/* The line of slot i, from what was rendered for the same gen when it can. */
static int append_line(struct metrics_buf *out, size_t i, const struct identity *e)
{
	static struct metrics_buf tmp;
	char *text;

	if (!g.lines && !(g.lines = calloc(IDENT_SLOTS, sizeof(*g.lines))))
		return render_line(out, e);
	if (g.lines[i].text && g.lines[i].gen == e->gen)
		return metrics_buf__append(out, g.lines[i].text, g.lines[i].len);
	tmp.len = 0;
	if (render_line(&tmp, e))
		return -ENOMEM;
	if ((text = realloc(g.lines[i].text, tmp.len))) {
		memcpy(text, tmp.data, tmp.len);
		g.lines[i].text = text;
		g.lines[i].len = (uint32_t)tmp.len;
		g.lines[i].gen = e->gen;
	}
	return metrics_buf__append(out, tmp.data, tmp.len);
}

int identity__render(struct metrics_buf *out)
{
	static const char head[] = "# HELP sonde_target_info The identity of each traced process "
		"(service instance), for joins on service_name and service_instance_id.\n"
		"# TYPE sonde_target_info gauge\n";
	const struct identity *e;
	int rc = 0;

	if (!g.tab)
		return 0;
	rc |= metrics_buf__append(out, head, sizeof(head) - 1);
	for (size_t i = 0; !rc && (e = next_used(&i));)
		if (!e->exited)
			rc |= append_line(out, i - 1, e);
	return rc ? -ENOMEM : 0;
}
