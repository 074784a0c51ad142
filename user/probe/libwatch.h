/* Finds shared libraries (and executables) mapped by processes on the host, at start and when
 * processes exec or map new files later, and reports each distinct file once. */
#ifndef SONDE_LIBWATCH_H
#define SONDE_LIBWATCH_H

#include <stddef.h>
#include <stdint.h>

struct libwatch;

/* path: a path the agent can open, e.g. "/proc/<pid>/root/usr/lib/x86_64-linux-gnu/libssl.so.3"
 * (works across mount namespaces / containers) — hand it to bpf_program__attach_uprobe_opts
 * with pid -1. Return 0 if attached (the file is remembered), <0 to retry on a later sighting. */
typedef int (*libwatch_fn)(void *arg, const char *path, uint32_t pid);

struct libwatch *libwatch__new(void);
void libwatch__free(struct libwatch *w);
/* Calls fn for every distinct mapped file whose basename starts with prefix
 * (e.g. "libssl.so", "libpq.so", "libmysqlclient.so", "libmariadb.so"). */
int libwatch__add(struct libwatch *w, const char *prefix, libwatch_fn fn, void *arg);
/* Calls fn for executables that contain symbol sym (statically linked, found with libelf). */
int libwatch__add_exe_symbol(struct libwatch *w, const char *sym, libwatch_fn fn, void *arg);
void libwatch__scan_all(struct libwatch *w);          /* every /proc/<pid>/maps; at start */
void libwatch__scan_pid(struct libwatch *w, uint32_t pid); /* after exec, or on a periodic cheap rescan */

/* ---- beyond the shared interface ---- */

/* Stops calling the watchers registered with arg (their owner is going
 * away, e.g. its BPF object failed to load after registering). */
void libwatch__forget(struct libwatch *w, void *arg);

/* One file-backed line of /proc/<pid>/maps. */
struct libwatch_mapping {
	uint64_t dev;		/* makedev(major, minor) as in st_dev */
	uint64_t ino;
	const char *path;	/* into the parsed line; absolute */
	size_t path_len;
	int exec;		/* mapped executable ("r-xp") */
};
/* Parses one maps line (with or without its newline). 0 on a file-backed
 * mapping, -1 for anonymous, special ("[heap]"), deleted or malformed lines. */
int libwatch__parse_maps_line(const char *line, struct libwatch_mapping *m);

struct libwatch_stats {
	uint64_t scans;		/* /proc/<pid>/maps files read */
	uint64_t files_seen;	/* distinct (dev, inode) remembered */
	uint64_t files_dropped;	/* not remembered: table full */
	uint64_t calls;		/* fn called */
	uint64_t call_failures;	/* fn returned < 0 */
	uint64_t exes_checked;	/* executables opened with libelf */
};
const struct libwatch_stats *libwatch__stats(const struct libwatch *w);

#endif
