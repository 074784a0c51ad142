/* /proc walk for pre-existing TCP sockets: socket inodes in ESTABLISHED or
 * CLOSE_WAIT state are read once per network namespace from
 * /proc/<pid>/net/tcp{,6}, then matched against each process's fd links. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "util/log.h"
#include "probe/seed.h"

struct u64set {
	uint64_t *v;
	size_t n, cap;
};

static int set_add(struct u64set *s, uint64_t x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int set_has(const struct u64set *s, uint64_t x)
{
	return s->n && bsearch(&x, s->v, s->n, sizeof(x), cmp_u64) != NULL;
}

/* Adds inodes of connected TCP sockets listed in one /proc/.../net/tcp file. */
static void read_tcp_table(const char *path, struct u64set *inodes)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	if (!fgets(line, sizeof(line), f)) {	/* header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned int st;
		unsigned long long ino;

		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %llu", &st, &ino) != 2)
			continue;
		if ((st == 0x01 || st == 0x08) && ino)
			set_add(inodes, ino);
	}
	fclose(f);
}

static int is_pid(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int seed__preexisting(int map_fd, uint32_t self_tgid, uint32_t only_tgid, uint32_t max)
{
	struct u64set inodes = { 0 }, netns = { 0 };
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int added = 0;

	if (!proc)
		return -errno;
	/* Pass 1: socket tables, once per network namespace. */
	while ((de = readdir(proc))) {
		char path[300], link[64];
		unsigned long long ns;
		ssize_t n;

		if (!is_pid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (sscanf(link, "net:[%llu]", &ns) != 1)
			continue;
		if (netns.n)	/* qsort wants a non-NULL base even for 0 elements */
			qsort(netns.v, netns.n, sizeof(uint64_t), cmp_u64);
		if (set_has(&netns, ns))
			continue;
		set_add(&netns, ns);
		snprintf(path, sizeof(path), "/proc/%s/net/tcp", de->d_name);
		read_tcp_table(path, &inodes);
		snprintf(path, sizeof(path), "/proc/%s/net/tcp6", de->d_name);
		read_tcp_table(path, &inodes);
	}
	qsort(inodes.v, inodes.n, sizeof(uint64_t), cmp_u64);

	/* Pass 2: fds that point at one of those sockets. */
	rewinddir(proc);
	while ((de = readdir(proc)) && (uint32_t)added < max) {
		char path[600], link[64];
		uint32_t tgid;
		struct dirent *fe;
		DIR *fds;

		if (!is_pid(de->d_name))
			continue;
		tgid = (uint32_t)strtoul(de->d_name, NULL, 10);
		if (tgid == self_tgid || (only_tgid && tgid != only_tgid))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((fe = readdir(fds)) && (uint32_t)added < max) {
			unsigned long long ino;
			ssize_t n;

			if (!is_pid(fe->d_name))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/fd/%s", de->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (sscanf(link, "socket:[%llu]", &ino) != 1 || !set_has(&inodes, ino))
				continue;
			uint64_t key = (uint64_t)tgid << 32 | (uint32_t)strtoul(fe->d_name, NULL, 10);
			uint8_t one = 1;

			if (bpf_map_update_elem(map_fd, &key, &one, BPF_ANY) == 0)
				added++;
		}
		closedir(fds);
	}
	closedir(proc);
	free(inodes.v);
	free(netns.v);
	return added;
}
