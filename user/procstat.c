/* Process resource metrics per service: every user-space process in /proc
 * (bounded by PROCSTAT_MAX_PIDS per scrape) grouped by service name, the
 * executable's basename. Gauges are sums over the service's live processes;
 * CPU time is a counter built from per-process deltas, so processes that
 * exit never make it go down. */
#define _GNU_SOURCE
#include <ctype.h>
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

#include "log.h"
#include "proc.h"
#include "procstat.h"

#define PF_KTHREAD 0x00200000	/* /proc/<pid>/stat flags: kernel thread */
#define SVC_SLOTS 16384		/* > PROCSTAT_MAX_PIDS: a table that never fills */

struct proc_cpu {
	uint32_t pid;
	unsigned long long start;	/* start time: a reused pid is another process */
	unsigned long utime, stime;	/* clock ticks */
};

struct svc {
	char name[PROC_NAME_MAX];
	double user_s, system_s;	/* CPU time since the last scrape */
	double rss, threads, fds, fd_ratio, procs;
};

struct procstat {
	struct metrics *m;
	uint32_t only_tgid;
	const char *service_name;	/* --service-name, or NULL */
	long tick_hz, page_size;
	int fam_cpu, fam_mem, fam_threads, fam_fds, fam_fd_ratio, fam_procs;
	struct proc_cpu *prev, *cur;	/* sorted by pid */
	size_t nprev, ncur;
	struct svc *svcs;		/* open addressing by name; name[0] = free */
	char (*shown)[PROC_NAME_MAX];	/* services given gauge values last scrape */
	size_t nshown;
	bool warned_limit;
};

int procstat__new(struct procstat **out, struct metrics *m, size_t cap, uint32_t only_tgid,
		  const char *service_name)
{
	static const char *const l_svc[] = { "service_name" };
	static const char *const l_mode[] = { "service_name", "cpu_mode" };
	struct procstat *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->m = m;
	p->only_tgid = only_tgid;
	p->service_name = service_name;
	p->tick_hz = sysconf(_SC_CLK_TCK);
	p->page_size = sysconf(_SC_PAGESIZE);
	p->prev = calloc(PROCSTAT_MAX_PIDS, sizeof(*p->prev));
	p->cur = calloc(PROCSTAT_MAX_PIDS, sizeof(*p->cur));
	p->svcs = calloc(SVC_SLOTS, sizeof(*p->svcs));
	p->shown = calloc(PROCSTAT_MAX_PIDS, sizeof(*p->shown));
	if (!p->prev || !p->cur || !p->svcs || !p->shown) {
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
	    l_mode, 2);
	FAM(fam_mem, METRIC_GAUGE, "process_memory_usage_bytes",
	    "Resident memory (RSS) of the service's processes, summed.", l_svc, 1);
	FAM(fam_threads, METRIC_GAUGE, "process_threads",
	    "Threads of the service's processes, summed.", l_svc, 1);
	FAM(fam_fds, METRIC_GAUGE, "process_open_file_descriptors",
	    "Open file descriptors of the service's processes, summed.", l_svc, 1);
	FAM(fam_fd_ratio, METRIC_GAUGE, "sonde_process_open_file_descriptor_utilization_ratio",
	    "Highest share of its open-file limit (RLIMIT_NOFILE soft) any process of the "
	    "service uses (0..1).", l_svc, 1);
	FAM(fam_procs, METRIC_GAUGE, "sonde_processes",
	    "Processes running the service's executable.", l_svc, 1);
#undef FAM
	*out = p;
	return 0;
}

void procstat__free(struct procstat *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->cur);
	free(p->svcs);
	free(p->shown);
	free(p);
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct svc *svc_get(struct procstat *p, const char *name)
{
	size_t i = name_hash(name) & (SVC_SLOTS - 1);

	for (size_t n = 0; n < SVC_SLOTS; n++, i = (i + 1) & (SVC_SLOTS - 1)) {
		struct svc *s = &p->svcs[i];

		if (!s->name[0]) {
			snprintf(s->name, sizeof(s->name), "%s", name);
			return s;
		}
		if (strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

static int cmp_pid(const void *a, const void *b)
{
	uint32_t x = ((const struct proc_cpu *)a)->pid, y = ((const struct proc_cpu *)b)->pid;

	return x < y ? -1 : x > y;
}

/* Fields of /proc/<pid>/stat after the comm: 0 = field 3 (state). */
struct stat_fields {
	unsigned long flags, utime, stime;
	long threads, rss_pages;
	unsigned long long start;
	char comm[32];
};

static int read_stat(uint32_t pid, struct stat_fields *f)
{
	char path[40], buf[1024], *p, *lp, *tok, *save = NULL;
	ssize_t n;
	int fd, field = 3;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	lp = strchr(buf, '(');
	p = strrchr(buf, ')');	/* comm may hold spaces and parentheses */
	if (!lp || !p || p < lp)
		return -EIO;
	snprintf(f->comm, sizeof(f->comm), "%.*s", (int)(p - lp - 1), lp + 1);
	for (tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		switch (field) {
		case 9: f->flags = strtoul(tok, NULL, 10); break;
		case 14: f->utime = strtoul(tok, NULL, 10); break;
		case 15: f->stime = strtoul(tok, NULL, 10); break;
		case 20: f->threads = strtol(tok, NULL, 10); break;
		case 22: f->start = strtoull(tok, NULL, 10); break;
		case 24: f->rss_pages = strtol(tok, NULL, 10); return 0;
		}
	}
	return -EIO;
}

/* Open fds of pid: the size of /proc/<pid>/fd (Linux 6.2+ reports the count
 * there), else by listing the directory. */
static long count_fds(uint32_t pid)
{
	char path[40];
	struct stat st;
	struct dirent *d;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%u/fd", pid);
	if (stat(path, &st) == 0 && st.st_size > 0)
		return (long)st.st_size;
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* Service name of pid as proc.c derives it from /proc/<pid>/exe, read
 * afresh: proc.c's cache may hold the name a child had between fork and
 * exec. Falls back to comm (kernel threads are skipped before). */
static const char *service_of(struct procstat *p, uint32_t pid, const char *comm,
			      char *buf, size_t n)
{
	char path[40], link[512];
	const char *base;
	ssize_t len;

	if (p->service_name)
		return p->service_name;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	len = readlink(path, link, sizeof(link) - 1);
	if (len <= 0)
		return comm[0] ? comm : "unknown";
	link[len] = 0;
	if (len > 10 && strcmp(link + len - 10, " (deleted)") == 0)
		link[len - 10] = 0;
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	len = (ssize_t)strnlen(base, n - 1);	/* cut as proc.c cuts */
	memcpy(buf, base, (size_t)len);
	buf[len] = 0;
	return buf;
}

static void sample(struct procstat *p, uint32_t pid)
{
	struct stat_fields f = { 0 };
	struct proc_cpu *c, key = { .pid = pid }, *old;
	char name[PROC_NAME_MAX];
	struct rlimit rl;
	struct svc *s;
	long fds;

	if (read_stat(pid, &f) || (f.flags & PF_KTHREAD) || p->ncur >= PROCSTAT_MAX_PIDS)
		return;
	s = svc_get(p, service_of(p, pid, f.comm, name, sizeof(name)));
	if (!s)
		return;
	c = &p->cur[p->ncur++];
	c->pid = pid;
	c->start = f.start;
	c->utime = f.utime;
	c->stime = f.stime;
	old = p->nprev ? bsearch(&key, p->prev, p->nprev, sizeof(key), cmp_pid) : NULL;
	if (old && old->start == f.start && f.utime >= old->utime && f.stime >= old->stime) {
		s->user_s += (double)(f.utime - old->utime) / (double)p->tick_hz;
		s->system_s += (double)(f.stime - old->stime) / (double)p->tick_hz;
	} else {		/* first seen: all its CPU time so far */
		s->user_s += (double)f.utime / (double)p->tick_hz;
		s->system_s += (double)f.stime / (double)p->tick_hz;
	}
	s->rss += (double)f.rss_pages * (double)p->page_size;
	s->threads += (double)f.threads;
	s->procs += 1;
	fds = count_fds(pid);
	if (fds >= 0) {
		s->fds += (double)fds;
		if (prlimit((pid_t)pid, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.rlim_cur &&
		    rl.rlim_cur != RLIM_INFINITY && (double)fds / (double)rl.rlim_cur > s->fd_ratio)
			s->fd_ratio = (double)fds / (double)rl.rlim_cur;
	}
}

void procstat__collect(struct procstat *p)
{
	struct proc_cpu *swap;
	struct dirent *d;
	size_t skipped = 0, nshown = 0;
	DIR *dir;

	if (!p)
		return;
	memset(p->svcs, 0, SVC_SLOTS * sizeof(*p->svcs));
	p->ncur = 0;
	if (p->only_tgid) {
		sample(p, p->only_tgid);
	} else if ((dir = opendir("/proc"))) {
		while ((d = readdir(dir))) {
			if (!isdigit((unsigned char)d->d_name[0]))
				continue;
			if (p->ncur >= PROCSTAT_MAX_PIDS) {
				skipped++;
				continue;
			}
			sample(p, (uint32_t)strtoul(d->d_name, NULL, 10));
		}
		closedir(dir);
	}
	if (skipped && !p->warned_limit) {
		log_warn("more processes than procstat reads per scrape; the rest are left out",
			 LI("limit", PROCSTAT_MAX_PIDS) LI("skipped", skipped));
		p->warned_limit = true;
	}
	/* Services gone since the last scrape: their gauges drop to 0. */
	for (size_t i = 0; i < p->nshown; i++) {
		const char *lv[] = { p->shown[i] };
		bool alive = false;
		size_t j = name_hash(p->shown[i]) & (SVC_SLOTS - 1);

		for (; p->svcs[j].name[0]; j = (j + 1) & (SVC_SLOTS - 1))
			if (strcmp(p->svcs[j].name, p->shown[i]) == 0) {
				alive = true;
				break;
			}
		if (alive)
			continue;
		metrics__set(p->m, p->fam_mem, lv, 0);
		metrics__set(p->m, p->fam_threads, lv, 0);
		metrics__set(p->m, p->fam_fds, lv, 0);
		metrics__set(p->m, p->fam_fd_ratio, lv, 0);
		metrics__set(p->m, p->fam_procs, lv, 0);
	}
	for (size_t i = 0; i < SVC_SLOTS; i++) {
		struct svc *s = &p->svcs[i];
		const char *lv[] = { s->name };
		const char *user[] = { s->name, "user" }, *sys[] = { s->name, "system" };

		if (!s->name[0])
			continue;
		metrics__add(p->m, p->fam_cpu, user, s->user_s);
		metrics__add(p->m, p->fam_cpu, sys, s->system_s);
		metrics__set(p->m, p->fam_mem, lv, s->rss);
		metrics__set(p->m, p->fam_threads, lv, s->threads);
		metrics__set(p->m, p->fam_fds, lv, s->fds);
		metrics__set(p->m, p->fam_fd_ratio, lv, s->fd_ratio);
		metrics__set(p->m, p->fam_procs, lv, s->procs);
		if (nshown < PROCSTAT_MAX_PIDS)
			memcpy(p->shown[nshown++], s->name, PROC_NAME_MAX);
	}
	p->nshown = nshown;
	qsort(p->cur, p->ncur, sizeof(*p->cur), cmp_pid);
	swap = p->prev;
	p->prev = p->cur;
	p->cur = swap;
	p->nprev = p->ncur;
}
