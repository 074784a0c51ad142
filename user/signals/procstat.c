/* Process resource metrics per service: every user-space process in /proc
 * (bounded by PROCSTAT_MAX_PIDS per scrape) grouped by its identity's labels
 * (identity/identity.h: service_name, service_namespace, k8s_namespace_name,
 * and with --metrics-pod-labels k8s_pod_name and container_id), as the RED
 * series are. Gauges are sums over the service's live processes;
 * CPU time is a counter built from per-process deltas, so processes that
 * exit never make it go down.
 *
 * Cost per scrape: /proc is listed with getdents64 on a descriptor kept
 * open, from where its pid entries start, and only when the kernel handed
 * out a pid since the last listing (the last pid in /proc/loadavg moved);
 * otherwise the processes of the last scrape are read again, and those
 * that exited drop out when their read fails. A process is known from one
 * scrape to the next by pid and start time (as the CPU deltas always were);
 * a kernel thread by pid and the inode number of its /proc/<pid> directory
 * (a new process under a reused pid gets a new inode), so once seen it
 * costs nothing more. A
 * user process costs a pread of its /proc/<pid>/stat and an fstat of its
 * /proc/<pid>/fd (both kept open while it lives, within a budget of a quarter
 * of the agent's open-file limit) plus prlimit, and a lookup of its identity
 * in the identity cache by pid and the start time just read (resolved from
 * /proc once per process); when its comm or memory layout (which exec
 * replaces) changed, the identity is read again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/identity.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/textlen.h"
#include "signals/procstat.h"

#define PF_KTHREAD 0x00200000	/* /proc/<pid>/stat flags: kernel thread */
#define SVC_SLOTS 16384		/* > PROCSTAT_MAX_PIDS: a table that never fills */
/* Entries of the pid table: user processes (at most PROCSTAT_MAX_PIDS) and
 * the kernel threads remembered so they are not read again. */
#define PID_SLOTS (2 * PROCSTAT_MAX_PIDS)
#define DENTS_BUF (64 * 1024)

enum {
	PE_KTHREAD = 1,		/* kernel thread: skipped while its inode stays */
	PE_NAMED = 2,		/* the identity was taken with the image sig tells */
	PE_CPU = 4,		/* start, utime, stime are a baseline */
};

/* One /proc/<pid>, sorted by pid. */
struct pent {
	uint32_t pid, flags;
	uint64_t ino;			/* d_ino of /proc/<pid>; 0 with --pid */
	unsigned long long start;	/* start time: a reused pid is another process */
	unsigned long utime, stime;	/* clock ticks */
	uint64_t sig;			/* hash of comm and mm layout when last seen */
	int stat_fd, fd_dir;		/* kept open, or -1 */
};

/* The labels a service's series carry (unused ones ""). */
struct svc_id {
	char name[PROC_NAME_MAX];
	char ns[IDENT_SHORT_MAX];	/* service_namespace */
	char k8s_ns[IDENT_SHORT_MAX];	/* k8s_namespace_name */
	char pod[IDENT_NAME_MAX];	/* k8s_pod_name (--metrics-pod-labels) */
	char cid[IDENT_CID_MAX];	/* container_id (--metrics-pod-labels) */
};

struct svc {
	struct svc_id id;		/* id.name[0] = free slot */
	double user_s, system_s;	/* CPU time since the last scrape */
	double rss, threads, fds, fd_ratio, procs;
};

struct procstat {
	struct metrics *m;
	uint32_t only_tgid;
	const char *service_name;	/* --service-name, or NULL */
	long tick_hz, page_size;
	int fam_cpu, fam_mem, fam_threads, fam_fds, fam_fd_ratio, fam_procs;
	bool pod_labels;		/* svc_id's pod and cid are filled */
	struct pent *prev, *cur;	/* sorted by pid */
	size_t nprev, ncur, nusers;	/* nusers: user processes in cur */
	size_t pcursor;			/* merge position in prev */
	bool unsorted;			/* /proc listed out of pid order */
	uint32_t last_pid;		/* last pid looked up: cursor valid while ascending */
	size_t nkept, keep_budget;	/* /proc fds kept open, and the most allowed */
	int proc_fd;			/* /proc, listed when a pid was handed out */
	off_t pids_off;			/* where its pid entries start (after "thread-self") */
	int loadavg_fd;			/* /proc/loadavg: its 5th field, the last pid handed out */
	uint32_t listed_at;		/* that pid when /proc was last listed; 0: never */
	bool same_ns;			/* /proc is of the pid namespace loadavg speaks of */
	char *dents;			/* DENTS_BUF */
	struct svc *svcs;		/* open addressing by svc_id */
	uint32_t *used;			/* slots of svcs in use this scrape */
	size_t nused;
	struct svc_id *shown;		/* services given gauge values last scrape */
	size_t nshown;
	bool warned_limit;
};

int procstat__new(struct procstat **out, struct metrics *m, size_t cap, uint32_t only_tgid,
		  const char *service_name)
{
	static const char *const l_svc[] = { "service_name", IDENT_LABELS };
	static const char *const l_mode[] = { "service_name", "cpu_mode", IDENT_LABELS };
	struct procstat *p = calloc(1, sizeof(*p));
	size_t nid = identity__nlabels();
	struct rlimit rl;

	if (!p)
		return -ENOMEM;
	p->m = m;
	p->only_tgid = only_tgid;
	p->service_name = service_name;
	p->pod_labels = identity__pod_labels();
	p->proc_fd = -1;
	p->loadavg_fd = -1;
	p->tick_hz = sysconf(_SC_CLK_TCK);
	p->page_size = sysconf(_SC_PAGESIZE);
	/* Keep at most a quarter of the open-file limit for /proc descriptors:
	 * the agent's own fd utilization stays far from alerting levels. */
	p->keep_budget = 2 * (size_t)PROCSTAT_MAX_PIDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 < p->keep_budget)
		p->keep_budget = (size_t)(rl.rlim_cur / 4);
	p->prev = calloc(PID_SLOTS, sizeof(*p->prev));
	p->cur = calloc(PID_SLOTS, sizeof(*p->cur));
	p->dents = malloc(DENTS_BUF);
	p->svcs = calloc(SVC_SLOTS, sizeof(*p->svcs));
	p->used = calloc(SVC_SLOTS, sizeof(*p->used));
	p->shown = calloc(PROCSTAT_MAX_PIDS, sizeof(*p->shown));
	if (!p->prev || !p->cur || !p->dents || !p->svcs || !p->used || !p->shown) {
		procstat__free(p);
		return -ENOMEM;
	}
#define FAM(var, type, name, help, labels, nl)                                             \
	do {                                                                               \
		p->var = metrics__family(m, type, name, help, labels, nl, NULL, 0, cap);   \
		if (p->var < 0) {                                                          \
			int err = p->var;                                                  \
			procstat__free(p);                                                 \
			return err;                                                        \
		}                                                                          \
	} while (0)
	FAM(fam_cpu, METRIC_COUNTER, "process_cpu_time_seconds_total",
	    "CPU time of the service's processes (cpu_mode user or system), from /proc.",
	    l_mode, 2 + nid);
	FAM(fam_mem, METRIC_GAUGE, "process_memory_usage_bytes",
	    "Resident memory (RSS) of the service's processes, summed.", l_svc, 1 + nid);
	FAM(fam_threads, METRIC_GAUGE, "process_threads",
	    "Threads of the service's processes, summed.", l_svc, 1 + nid);
	FAM(fam_fds, METRIC_GAUGE, "process_open_file_descriptors",
	    "Open file descriptors of the service's processes, summed.", l_svc, 1 + nid);
	FAM(fam_fd_ratio, METRIC_GAUGE, "sonde_process_open_file_descriptor_utilization_ratio",
	    "Highest share of its open-file limit (RLIMIT_NOFILE soft) any process of the "
	    "service uses (0..1).", l_svc, 1 + nid);
	FAM(fam_procs, METRIC_GAUGE, "sonde_processes",
	    "Processes of the service.", l_svc, 1 + nid);
#undef FAM
	*out = p;
	return 0;
}

static void close_kept(struct procstat *p, int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		p->nkept--;
		*fd = -1;
	}
}

static void pent_release(struct procstat *p, struct pent *e)
{
	close_kept(p, &e->stat_fd);
	close_kept(p, &e->fd_dir);
}

void procstat__free(struct procstat *p)
{
	if (!p)
		return;
	if (p->prev)
		for (size_t i = 0; i < p->nprev; i++)
			pent_release(p, &p->prev[i]);
	if (p->proc_fd >= 0)
		close(p->proc_fd);
	if (p->loadavg_fd >= 0)
		close(p->loadavg_fd);
	free(p->prev);
	free(p->cur);
	free(p->dents);
	free(p->svcs);
	free(p->used);
	free(p->shown);
	free(p);
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0x1f) * 1099511628211ULL;	/* "a","bc" and "ab","c" differ */
}

static uint64_t name_hash(const char *s)
{
	return hash_str(1469598103934665603ULL, s);
}

static uint64_t id_hash(const struct svc_id *id)
{
	uint64_t h = name_hash(id->name);

	h = hash_str(h, id->ns);
	h = hash_str(h, id->k8s_ns);
	h = hash_str(h, id->pod);
	return hash_str(h, id->cid);
}

static bool id_eq(const struct svc_id *a, const struct svc_id *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->ns, b->ns) == 0 &&
	       strcmp(a->k8s_ns, b->k8s_ns) == 0 && strcmp(a->pod, b->pod) == 0 &&
	       strcmp(a->cid, b->cid) == 0;
}

/* The label values of id, in the families' order after their own labels. */
static void id_values(const struct svc_id *id, const char **lv)
{
	lv[0] = id->ns;
	lv[1] = id->k8s_ns;
	lv[2] = id->pod;
	lv[3] = id->cid;
}

static struct svc *svc_find(struct procstat *p, const struct svc_id *id, bool add)
{
	size_t i = id_hash(id) & (SVC_SLOTS - 1);

	for (size_t n = 0; n < SVC_SLOTS; n++, i = (i + 1) & (SVC_SLOTS - 1)) {
		struct svc *s = &p->svcs[i];

		if (!s->id.name[0]) {
			if (!add)
				return NULL;
			s->id = *id;
			p->used[p->nused++] = (uint32_t)i;
			return s;
		}
		if (id_eq(&s->id, id))
			return s;
	}
	return NULL;
}

/* The labels of a process's series from its identity. */
static void svc_id_of(const struct procstat *p, const struct identity *ident, const char *name,
		      struct svc_id *id)
{
	const char *v[IDENT_LABELS_MAX];

	identity__label_values(ident, v);
	text_copy(id->name, sizeof(id->name), name);
	text_copy(id->ns, sizeof(id->ns), v[0]);
	text_copy(id->k8s_ns, sizeof(id->k8s_ns), v[1]);
	text_copy(id->pod, sizeof(id->pod), p->pod_labels ? v[2] : "");
	text_copy(id->cid, sizeof(id->cid), p->pod_labels ? v[3] : "");
}

static int cmp_pid(const void *a, const void *b)
{
	uint32_t x = ((const struct pent *)a)->pid, y = ((const struct pent *)b)->pid;

	return x < y ? -1 : x > y;
}

/* Fields of /proc/<pid>/stat, numbered as in proc(5); the ones after the
 * comm that are read. */
enum {
	F_FLAGS = 9, F_UTIME = 14, F_STIME = 15, F_THREADS = 20, F_START = 22, F_RSS = 24,
	F_STARTCODE = 26, F_ENDCODE = 27, F_STARTSTACK = 28, F_STARTDATA = 45, F_ENVEND = 51,
	F_MAX = F_ENVEND,
};

struct stat_fields {
	unsigned long long v[F_MAX + 1];	/* negative values read as 0 */
	int nf;				/* last field present */
	char comm[64];
};

/* Parses one stat line (NUL-terminated). */
static int parse_stat(char *buf, size_t n, struct stat_fields *f)
{
	char *lp = memchr(buf, '(', n), *q, *end = buf + n;
	int field = 3;
	size_t len;

	q = memrchr(buf, ')', n);	/* comm may hold spaces and parentheses */
	if (!lp || !q || q < lp)
		return -EIO;
	len = (size_t)(q - lp - 1) < sizeof(f->comm) - 1 ? (size_t)(q - lp - 1) : sizeof(f->comm) - 1;
	memcpy(f->comm, lp + 1, len);
	f->comm[len] = 0;
	f->nf = 0;
	for (q++; q < end && field <= F_MAX; field++) {
		unsigned long long x = 0;
		bool neg = false;

		while (q < end && *q == ' ')
			q++;
		if (q >= end || *q == '\n')
			break;
		if (*q == '-') {
			neg = true;
			q++;
		}
		for (; q < end && (unsigned)(*q - '0') < 10; q++)
			x = x * 10 + (unsigned)(*q - '0');
		while (q < end && *q != ' ' && *q != '\n')	/* the state letter */
			q++;
		f->v[field] = neg ? 0 : x;
		f->nf = field;
	}
	if (f->nf < F_RSS)
		return -EIO;
	for (field = f->nf + 1; field <= F_MAX; field++)
		f->v[field] = 0;
	return 0;
}

/* What exec replaces: the comm and the memory layout (code, stack,
 * data, arguments; randomized by ASLR). 0 when the layout is not shown
 * (no mm: a zombie; or no permission), so the name is read every time. */
static uint64_t exec_sig(const struct stat_fields *f)
{
	uint64_t h = name_hash(f->comm);

	if (!f->v[F_STARTCODE] && !f->v[F_ENDCODE] && !f->v[F_STARTSTACK])
		return 0;
	h = (h ^ f->v[F_STARTCODE]) * 1099511628211ULL;
	h = (h ^ f->v[F_ENDCODE]) * 1099511628211ULL;
	h = (h ^ f->v[F_STARTSTACK]) * 1099511628211ULL;
	for (int i = F_STARTDATA; i <= F_ENVEND; i++)
		h = (h ^ f->v[i]) * 1099511628211ULL;
	return h ? h : 1;
}

static char *fmt_path(char *buf, uint32_t pid, const char *leaf)
{
	char digits[12], *d = digits + sizeof(digits), *o = buf;

	do
		*--d = (char)('0' + pid % 10);
	while (pid /= 10);
	memcpy(o, "/proc/", 6);
	o += 6;
	memcpy(o, d, (size_t)(digits + sizeof(digits) - d));
	o += digits + sizeof(digits) - d;
	*o++ = '/';
	strcpy(o, leaf);
	return buf;
}

/* Opens /proc/<pid>/<leaf>; keeps it in *slot when the budget allows. */
static int open_proc(struct procstat *p, uint32_t pid, const char *leaf, int flags, int *slot,
		     bool *kept)
{
	char path[40];
	int fd = open(fmt_path(path, pid, leaf), flags | O_RDONLY | O_CLOEXEC);

	*kept = false;
	if (fd >= 0 && p->nkept < p->keep_budget) {
		*slot = fd;
		p->nkept++;
		*kept = true;
	}
	return fd;
}

/* Reads /proc/<pid>/stat into buf (NUL-terminated), from the kept
 * descriptor when there is one. */
static ssize_t read_stat(struct procstat *p, struct pent *e, char *buf, size_t size)
{
	ssize_t n;
	bool kept;
	int fd;

	if (e->stat_fd >= 0) {
		n = pread(e->stat_fd, buf, size - 1, 0);
		if (n > 0) {
			buf[n] = 0;
			return n;
		}
		/* gone (ESRCH): whatever has the pid now is another process,
		 * told apart by its start time */
		pent_release(p, e);
	}
	fd = open_proc(p, e->pid, "stat", 0, &e->stat_fd, &kept);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, size - 1, 0);
	if (!kept)
		close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	return n;
}

static long count_dir(int dfd)
{
	char buf[4096];
	long n = 0;
	ssize_t r;

	if (lseek(dfd, 0, SEEK_SET) < 0)
		return -1;
	while ((r = getdents64(dfd, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < r;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			n += d->d_name[0] != '.';
			off += d->d_reclen;
		}
	return r < 0 ? -1 : n;
}

/* Open fds of the process: the size of /proc/<pid>/fd (Linux 6.2+ reports
 * the count there), else by listing the directory. */
static long count_fds(struct procstat *p, struct pent *e)
{
	struct stat st;
	bool kept = true;
	long n;
	int fd = e->fd_dir;

	if (fd < 0)
		fd = open_proc(p, e->pid, "fd", O_DIRECTORY, &e->fd_dir, &kept);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size > 0)
		n = (long)st.st_size;
	else
		n = count_dir(fd);
	if (!kept)
		close(fd);
	return n;
}

/* The process's identity (identity/identity.h: resolved once per pid and
 * start time, then a cache hit), read afresh after an exec: the cache may
 * hold what a child was between fork and exec. Kernel threads are skipped
 * before. */
static const struct identity *identity_of(struct pent *e, const struct stat_fields *f)
{
	uint64_t sig = exec_sig(f);

	if ((e->flags & PE_NAMED) && sig && sig != e->sig && e->start == f->v[F_START])
		identity__exec(e->pid);
	e->flags &= ~(uint32_t)PE_NAMED;
	e->sig = sig;
	if (sig)
		e->flags |= PE_NAMED;
	return identity__get_at(e->pid, f->v[F_START], NULL, f->comm);
}

/* The entry pid had last scrape, or NULL. */
static struct pent *find_prev(struct procstat *p, uint32_t pid)
{
	struct pent *old = NULL;

	if (pid < p->last_pid)
		p->pcursor = 0;	/* not ascending: start over */
	p->last_pid = pid;
	while (p->pcursor < p->nprev && p->prev[p->pcursor].pid < pid)
		p->pcursor++;
	if (p->pcursor < p->nprev && p->prev[p->pcursor].pid == pid)
		old = &p->prev[p->pcursor];
	return old;
}

static void sample(struct procstat *p, uint32_t pid, uint64_t ino)
{
	struct stat_fields f;
	struct pent *e, *old;
	char buf[1024];
	struct rlimit rl;
	struct svc_id id;
	const struct identity *ident;
	struct svc *s;
	unsigned long utime, stime;
	ssize_t n;
	long fds;

	if (p->nusers >= PROCSTAT_MAX_PIDS)
		return;
	e = &p->cur[p->ncur];	/* free: at most PROCSTAT_MAX_PIDS of each kind */
	old = find_prev(p, pid);
	if (old) {
		*e = *old;
		old->stat_fd = old->fd_dir = -1;	/* moved */
		if (e->ino != ino) {
			/* Another process (kept descriptors pin the inode), or
			 * the inode was evicted and made anew: read afresh. The
			 * start time and the exec signature still decide whether
			 * the CPU baseline and the name carry over. */
			pent_release(p, e);
			e->flags &= ~(uint32_t)PE_KTHREAD;
		}
		if (e->flags & PE_KTHREAD) {
			if (p->ncur - p->nusers < PROCSTAT_MAX_PIDS)
				p->ncur++;
			return;
		}
	} else {
		e->pid = pid;
		e->flags = 0;
		e->stat_fd = e->fd_dir = -1;
	}
	e->ino = ino;
	n = read_stat(p, e, buf, sizeof(buf));
	if (n <= 0 || parse_stat(buf, (size_t)n, &f)) {
		pent_release(p, e);
		return;
	}
	if (f.v[F_FLAGS] & PF_KTHREAD) {
		pent_release(p, e);
		e->flags = PE_KTHREAD;
		/* remembered when it can be told apart, and room is left */
		if (ino && p->ncur - p->nusers < PROCSTAT_MAX_PIDS)
			p->ncur++;
		return;
	}
	ident = identity_of(e, &f);
	svc_id_of(p, ident, p->service_name ? p->service_name : ident->service_name, &id);
	s = svc_find(p, &id, true);
	if (!s) {
		pent_release(p, e);
		return;
	}
	p->ncur++;
	p->nusers++;
	utime = (unsigned long)f.v[F_UTIME];
	stime = (unsigned long)f.v[F_STIME];
	if ((e->flags & PE_CPU) && e->start == f.v[F_START] && utime >= e->utime &&
	    stime >= e->stime) {
		s->user_s += (double)(utime - e->utime) / (double)p->tick_hz;
		s->system_s += (double)(stime - e->stime) / (double)p->tick_hz;
	} else {		/* first seen: all its CPU time so far */
		s->user_s += (double)utime / (double)p->tick_hz;
		s->system_s += (double)stime / (double)p->tick_hz;
	}
	e->flags |= PE_CPU;
	e->start = f.v[F_START];
	e->utime = utime;
	e->stime = stime;
	s->rss += (double)f.v[F_RSS] * (double)p->page_size;
	s->threads += (double)f.v[F_THREADS];
	s->procs += 1;
	fds = count_fds(p, e);
	if (fds >= 0) {
		s->fds += (double)fds;
		if (prlimit((pid_t)pid, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur &&
		    rl.rlim_cur != RLIM_INFINITY && (double)fds / (double)rl.rlim_cur > s->fd_ratio)
			s->fd_ratio = (double)fds / (double)rl.rlim_cur;
	}
}

/* The last pid the kernel handed out in our pid namespace (the 5th field of
 * /proc/loadavg), or 0 when it cannot be told. */
static uint32_t last_pid_given(struct procstat *p)
{
	char buf[128], *f;
	ssize_t n;

	if (p->loadavg_fd < 0) {
		char self[16];

		/* /proc/self is our own pid only when /proc shows our namespace */
		n = readlink("/proc/self", self, sizeof(self) - 1);
		self[n > 0 ? n : 0] = 0;
		p->same_ns = n > 0 && strtoul(self, NULL, 10) == (unsigned long)getpid();
		p->loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
		if (p->loadavg_fd < 0)
			return 0;
	}
	if (!p->same_ns || (n = pread(p->loadavg_fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = 0;
	f = strrchr(buf, ' ');	/* "0.00 0.01 0.05 1/94 14669\n" */
	return f ? (uint32_t)strtoul(f + 1, NULL, 10) : 0;
}

/* Samples the processes of the last scrape again, without listing /proc:
 * valid while no pid was handed out since (a new process, or an old pid
 * reused, takes one). Those that exited fail their read and drop out. */
static void rescan_known(struct procstat *p)
{
	size_t n = p->nprev;

	for (size_t i = 0; i < n && p->nusers < PROCSTAT_MAX_PIDS; i++)
		sample(p, p->prev[i].pid, p->prev[i].ino);
}

/* Lists /proc and samples every process; returns those left out. */
static size_t scan_proc(struct procstat *p)
{
	size_t skipped = 0;
	bool seen_pid = false;
	ssize_t r;

	if (p->proc_fd < 0) {
		p->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (p->proc_fd < 0)
			return 0;
	} else if (lseek(p->proc_fd, p->pids_off, SEEK_SET) < 0) {
		return 0;
	}
	while ((r = getdents64(p->proc_fd, p->dents, DENTS_BUF)) > 0) {
		for (ssize_t off = 0; off < r;) {
			struct dirent64 *d = (struct dirent64 *)(p->dents + off);
			const char *c = d->d_name;
			uint32_t pid = 0;

			off += d->d_reclen;
			if ((unsigned)(*c - '0') >= 10) {
				/* /proc lists its own entries, then the pids: the
				 * next scrape starts after the last of its own. */
				if (!seen_pid)
					p->pids_off = d->d_off;
				continue;
			}
			seen_pid = true;
			for (; (unsigned)(*c - '0') < 10; c++)
				pid = pid * 10 + (uint32_t)(*c - '0');
			if (*c)
				continue;
			if (p->nusers >= PROCSTAT_MAX_PIDS) {
				skipped++;
				continue;
			}
			if (pid < p->last_pid)
				p->unsorted = true;
			sample(p, pid, (uint64_t)d->d_ino);
		}
	}
	return skipped;
}

void procstat__collect(struct procstat *p)
{
	struct pent *swap;
	size_t skipped = 0, nshown = 0;

	if (!p)
		return;
	for (size_t i = 0; i < p->nused; i++)
		memset(&p->svcs[p->used[i]], 0, sizeof(*p->svcs));
	p->nused = 0;
	p->ncur = p->nusers = 0;
	p->pcursor = 0;
	p->last_pid = 0;
	p->unsorted = false;
	if (p->only_tgid) {
		sample(p, p->only_tgid, 0);
	} else {
		/* getdents of /proc costs a dentry lookup per pid: skipped
		 * while the set of pids can only have shrunk */
		uint32_t given = last_pid_given(p);

		if (given && given == p->listed_at) {
			rescan_known(p);
		} else {
			skipped = scan_proc(p);
			p->listed_at = given;
		}
	}
	/* Processes gone (or left out): their descriptors are closed. */
	for (size_t i = 0; i < p->nprev; i++)
		pent_release(p, &p->prev[i]);
	if (skipped && !p->warned_limit) {
		log_warn("more processes than procstat reads per scrape; the rest are left out",
			 LI("limit", PROCSTAT_MAX_PIDS) LI("skipped", skipped));
		p->warned_limit = true;
	}
	/* Services gone since the last scrape: their gauges drop to 0. */
	for (size_t i = 0; i < p->nshown; i++) {
		const struct svc_id *id = &p->shown[i];
		const char *lv[1 + IDENT_LABELS_MAX] = { id->name };

		if (svc_find(p, id, false))
			continue;
		id_values(id, lv + 1);
		metrics__set(p->m, p->fam_mem, lv, 0);
		metrics__set(p->m, p->fam_threads, lv, 0);
		metrics__set(p->m, p->fam_fds, lv, 0);
		metrics__set(p->m, p->fam_fd_ratio, lv, 0);
		metrics__set(p->m, p->fam_procs, lv, 0);
	}
	for (size_t i = 0; i < p->nused; i++) {
		struct svc *s = &p->svcs[p->used[i]];
		const char *lv[1 + IDENT_LABELS_MAX] = { s->id.name };
		const char *user[2 + IDENT_LABELS_MAX] = { s->id.name, "user" };
		const char *sys[2 + IDENT_LABELS_MAX] = { s->id.name, "system" };

		id_values(&s->id, lv + 1);
		id_values(&s->id, user + 2);
		id_values(&s->id, sys + 2);
		metrics__add(p->m, p->fam_cpu, user, s->user_s);
		metrics__add(p->m, p->fam_cpu, sys, s->system_s);
		metrics__set(p->m, p->fam_mem, lv, s->rss);
		metrics__set(p->m, p->fam_threads, lv, s->threads);
		metrics__set(p->m, p->fam_fds, lv, s->fds);
		metrics__set(p->m, p->fam_fd_ratio, lv, s->fd_ratio);
		metrics__set(p->m, p->fam_procs, lv, s->procs);
		if (nshown < PROCSTAT_MAX_PIDS)
			p->shown[nshown++] = s->id;
	}
	p->nshown = nshown;
	if (p->unsorted)	/* never seen: /proc lists pids in ascending order */
		qsort(p->cur, p->ncur, sizeof(*p->cur), cmp_pid);
	swap = p->prev;
	p->prev = p->cur;
	p->cur = swap;
	p->nprev = p->ncur;
}
