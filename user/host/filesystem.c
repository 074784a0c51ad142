/* filesystem collector: statfs(2) of each mount in /proc/1/mounts, with
 * node_exporter 1.5's default exclusions of mount points and virtual fs
 * types. Network filesystems are skipped too: statfs of a hung NFS or CIFS
 * server blocks, and this runs on the agent's only thread.
 *
 * The mount table is read and parsed again only when it may have changed:
 * poll() on the kept /proc descriptor reports POLLPRI after any mount,
 * umount or remount (bind remounts too) in pid 1's namespace. A filesystem
 * the kernel turns read-only by itself (errors=remount-ro) sends no such
 * event, so every scrape's statfs flags are compared with the table's "ro":
 * any difference, a statfs error, or a table that is not procfs (a
 * --path.procfs fixture) and the table is read at that scrape, as before. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include "host/collectors.h"

#define FS_MAX 4096		/* mounts beyond this are not reported */

struct fs {
	const char *device, *mountpoint, *fstype;
	int error, readonly;
	double size, free, avail, files, files_free;
};

#define FS_SLOTS (2 * FS_MAX)	/* open-addressing set over fss[], rebuilt per scrape */

static struct fs fss[FS_MAX];
static short slots[FS_SLOTS];	/* index + 1; 0 = empty */

static unsigned hash(const char *a, const char *b, const char *c)
{
	unsigned h = 2166136261u;

	for (const char *const *p = (const char *const[]){ a, b, c, NULL }; *p; p++)
		for (const unsigned char *s = (const unsigned char *)*p; ; s++) {
			h = (h ^ *s) * 16777619u;
			if (!*s)
				break;
		}
	return h;
}

/* Adds fss[n] to the set unless an equal (device, mountpoint, fstype)
 * is there already: the same mount can be listed twice. */
static int seen_before(int n)
{
	const struct fs *e = &fss[n];
	unsigned i = hash(e->device, e->mountpoint, e->fstype) % FS_SLOTS;

	for (; slots[i]; i = (i + 1) % FS_SLOTS) {
		const struct fs *o = &fss[slots[i] - 1];

		if (!strcmp(o->mountpoint, e->mountpoint) && !strcmp(o->device, e->device) &&
		    !strcmp(o->fstype, e->fstype))
			return 1;
	}
	slots[i] = (short)(n + 1);
	return 0;
}

static int in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return 1;
	return 0;
}

/* --collector.filesystem.fs-types-exclude default, plus network types. */
static int fstype_excluded(const char *t)
{
	static const char *const virt[] = {
		"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
		"devpts", "devtmpfs", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs",
		"overlay", "proc", "procfs", "pstore", "rpc_pipefs", "securityfs", "selinuxfs",
		"squashfs", "sysfs", "tracefs", NULL };
	static const char *const net[] = {
		"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "ceph", "afs", "lustre",
		"glusterfs", "fuse.glusterfs", "fuse.sshfs", "fuse.s3fs", "fuse.rclone", NULL };

	return in(t, virt) || in(t, net);
}

/* prefix followed by end of string or '/' */
static int under(const char *m, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(m, prefix, n) && (m[n] == '\0' || m[n] == '/');
}

/* --collector.filesystem.mount-points-exclude default:
 * ^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/) */
static int mount_excluded(const char *m)
{
	static const char *const deep[] = { "/run/credentials/", "/var/lib/docker/",
					    "/var/lib/containers/storage/", NULL };

	if (under(m, "/dev") || under(m, "/proc") || under(m, "/sys"))
		return 1;
	for (const char *const *p = deep; *p; p++)
		if (!strncmp(m, *p, strlen(*p)) && m[strlen(*p)] != '\0')
			return 1;
	return 0;
}

/* Mount tables escape space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int has_opt(const char *opts, const char *opt)
{
	size_t n = strlen(opt);

	for (const char *p = opts; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (!strncmp(p, opt, n) && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

static void family(struct host_w *w, int n, const char *name, const char *help, size_t off)
{
	host_util__family(w, name, HOST_GAUGE, help);
	for (int i = 0; i < n; i++) {
		const struct fs *f = &fss[i];

		if (f->error && off != offsetof(struct fs, error))
			continue;
		host_util__begin(w, name);
		host_util__label(w, "device", f->device);
		host_util__label(w, "fstype", f->fstype);
		host_util__label(w, "mountpoint", f->mountpoint);
		if (off == offsetof(struct fs, error) || off == offsetof(struct fs, readonly))
			host_util__end(w, *(const int *)((const char *)f + off));
		else
			host_util__end(w, *(const double *)((const char *)f + off));
	}
}

/* The mounts of text (NUL-separated in place) into fss[]; their count. */
static int parse(char *text)
{
	char *cur = text, *line, *f[4];
	int n = 0;

	memset(slots, 0, sizeof(slots));
	while ((line = host_util__line(&cur)) && n < FS_MAX) {
		struct fs *e = &fss[n];

		if (host_util__fields(line, f, 4) < 4)
			continue;
		unescape(f[1]);
		/* with --path.rootfs=/host: "/host/var" is the host's /var */
		f[1] = (char *)host_util__strip_rootfs(f[1]);
		if (mount_excluded(f[1]) || fstype_excluded(f[2]))
			continue;
		e->device = f[0];
		e->mountpoint = f[1];
		e->fstype = f[2];
		if (seen_before(n))
			continue;
		e->readonly = has_opt(f[3], "ro");
		n++;
	}
	return n;
}

/* statfs of each; true when every one answered and agrees with the
 * table's "ro" (the table as parsed still holds). */
static int stat_all(int n)
{
	char path[4608];
	int agree = 1;

	for (int i = 0; i < n; i++) {
		struct fs *e = &fss[i];
		struct statfs st;

		e->error = statfs(host_util__path(e->mountpoint, path, sizeof(path)), &st) != 0;
		if (e->error) {
			agree = 0;
			continue;
		}
		agree &= !!(st.f_flags & ST_RDONLY) == e->readonly;
		e->size = (double)st.f_blocks * (double)st.f_bsize;
		e->free = (double)st.f_bfree * (double)st.f_bsize;
		e->avail = (double)st.f_bavail * (double)st.f_bsize;
		e->files = (double)st.f_files;
		e->files_free = (double)st.f_ffree;
	}
	return agree;
}

/* Has the mount namespace of the procfs mounts file fd changed since the
 * last poll (or its open)? */
static int table_changed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, 0) != 0 || (p.revents & (POLLPRI | POLLERR));
}

static int is_procfs(int fd)
{
	struct statfs st;

	return fd >= 0 && fstatfs(fd, &st) == 0 && st.f_type == 0x9fa0;	/* PROC_SUPER_MAGIC */
}

int host_filesystem__collect(struct host_w *w)
{
	static int fd1 = -1, fd_self = -1, *src, n, cached;
	static unsigned gen;
	static char buf[1 << 20];

	if (gen != host_util__config_gen()) {	/* another tree: its own table */
		gen = host_util__config_gen();
		cached = 0;
	}
	if (!(cached && !table_changed(*src) && stat_all(n))) {
		/* pid 1's view: the host's mounts when sonde runs in a
		 * container sharing the host pid namespace */
		cached = 0;
		src = &fd1;
		if (host_util__read(&fd1, "/proc/1/mounts", buf, sizeof(buf)) < 0) {
			src = &fd_self;
			if (host_util__read(&fd_self, "/proc/self/mounts", buf, sizeof(buf)) < 0)
				return -ENOENT;
		}
		n = parse(buf);
		cached = stat_all(n) && is_procfs(*src);
	}
	family(w, n, "node_filesystem_device_error",
	       "Whether an error occurred while getting statistics for the given device.",
	       offsetof(struct fs, error));
	family(w, n, "node_filesystem_size_bytes", "Filesystem size in bytes.", offsetof(struct fs, size));
	family(w, n, "node_filesystem_free_bytes", "Filesystem free space in bytes.", offsetof(struct fs, free));
	family(w, n, "node_filesystem_avail_bytes",
	       "Filesystem space available to non-root users in bytes.", offsetof(struct fs, avail));
	family(w, n, "node_filesystem_files", "Filesystem total file nodes.", offsetof(struct fs, files));
	family(w, n, "node_filesystem_files_free", "Filesystem total free file nodes.",
	       offsetof(struct fs, files_free));
	family(w, n, "node_filesystem_readonly", "Filesystem read-only status.",
	       offsetof(struct fs, readonly));
	return 0;
}
