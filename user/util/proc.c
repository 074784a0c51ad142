/* Service names per process: the rule, and a direct-mapped cache of its
 * result keyed by tgid where a stale entry (pid reuse) is detected by the
 * process start time. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/proc.h"

#define PROC_CACHE 4096

struct proc_entry {
	uint32_t tgid;
	unsigned long long start;	/* field 22 of /proc/<pid>/stat */
	time_t checked;			/* when start was last compared */
	char name[PROC_NAME_MAX];
};

static struct proc_entry cache[PROC_CACHE];
static const char *override;

void proc__set_override(const char *name)
{
	override = name;
}

static unsigned long long proc_start_time(uint32_t tgid)
{
	char path[64], buf[1024];
	unsigned long long start = 0;
	ssize_t n;
	char *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/stat", tgid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may contain spaces and parentheses: fields resume after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* after ") " come fields 3..; start time is field 22 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p + 1, "%llu", &start);
	return start;
}

const char *proc__service_name(const char *override, const char *exe, const char *comm,
			       char *out, size_t n)
{
	const char *slash;
	size_t len;

	if (override)
		return override;
	if (!exe || !exe[0]) {
		snprintf(out, n, "%s", comm && comm[0] ? comm : "unknown");
		return out;
	}
	len = strlen(exe);
	slash = strrchr(exe, '/');
	if (slash) {
		/* A path: readlink adds " (deleted)" to an executable replaced
		 * on disk (no '/' in it: slash stays the last one). A basename
		 * from the kernel is taken as it is. */
		if (len > 10 && strcmp(exe + len - 10, " (deleted)") == 0)
			len -= 10;
		len -= (size_t)(slash + 1 - exe);
		exe = slash + 1;
	}
	if (len > n - 1)
		len = n - 1;
	memcpy(out, exe, len);
	out[len] = 0;
	return out;
}

const char *proc__service(uint32_t tgid, const char *exe, const char *comm)
{
	struct proc_entry *e = &cache[tgid % PROC_CACHE];
	char path[64], link[512], name[PROC_NAME_MAX];
	unsigned long long start;
	struct timespec now;
	ssize_t n;

	/* proc__service_name takes the override before anything else: there
	 * is nothing to remember or read. */
	if (override)
		return override;
	if (exe && exe[0]) {
		/* Per span: the kernel's basename, already the cached name (a
		 * name the rule made holds no '/', so the rule would give exe
		 * back as it is). */
		if (e->tgid == tgid && strncmp(e->name, exe, sizeof(e->name)) == 0)
			return e->name;
		proc__service_name(NULL, exe, comm, name, sizeof(name));
		if (e->tgid != tgid || strcmp(e->name, name) != 0) {
			e->tgid = tgid;
			e->start = 0;	/* unknown; taken as a match below */
			memcpy(e->name, name, sizeof(e->name));
			clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
			e->checked = now.tv_sec;
		}
		return e->name;
	}
	/* Called per span: trust a hit for a few seconds, then re-check the
	 * start time so a reused pid does not keep a dead process's name. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (e->tgid == tgid && e->name[0] && now.tv_sec - e->checked < 5)
		return e->name;
	start = proc_start_time(tgid);
	e->checked = now.tv_sec;
	if (e->tgid == tgid && e->name[0] && (start == 0 || e->start == 0 || e->start == start))
		return e->name;
	e->tgid = tgid;
	e->start = start;
	snprintf(path, sizeof(path), "/proc/%u/exe", tgid);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	return proc__service_name(NULL, link, comm, e->name, sizeof(e->name));
}
