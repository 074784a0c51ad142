/* Shared by the host collectors: a sticky-error writer for Prometheus text
 * and bounded readers for /proc and /sys files. Internal to user/host/. */
#ifndef SONDE_HOST_UTIL_H
#define SONDE_HOST_UTIL_H

#include <dirent.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metrics/metrics.h"

/* Writer: every append is a no-op once err is set, so collectors write a
 * whole family and check err (or just return) at the end. */
struct host_w {
	struct metrics_buf *buf;
	int err;		/* 0 or -ENOMEM */
	int nlabels;		/* labels written in the current sample */
	/* /proc/stat, read at most once per scrape (cpu and stat share it) */
	const char *stat;
	size_t stat_len;
	int stat_err;
	/* the RTM_GETLINK dump, made at most once per scrape (netclass and
	 * netdev share it) */
	int links_done, nlinks;
};

/* A network interface as one RTM_GETLINK dump shows it. */
#define HOST_LINK_MAX 4096	/* interfaces beyond this are not reported */
enum {
	HL_STATS = 1, HL_MTU = 2, HL_TXQLEN = 4, HL_GROUP = 8, HL_LINK = 16, HL_LINKMODE = 32,
	HL_OPERSTATE = 64, HL_CARRIER = 128, HL_CARRIER_CHANGES = 256, HL_CARRIER_UP = 512,
	HL_CARRIER_DOWN = 1024,
};
struct host_link {
	char name[IF_NAMESIZE];
	int ifindex, iflink;	/* iflink: IFLA_LINK, sent when it is not ifindex */
	unsigned type, flags;	/* ifi_type; ifi_flags (dev_get_flags: IFF_DORMANT...) */
	unsigned have;		/* HL_* bits: attributes the kernel sent */
	uint32_t mtu, txqlen, group, carrier_changes, carrier_up, carrier_down;
	uint8_t linkmode, operstate, carrier, addr_len, broadcast_len;
	unsigned char addr[32], broadcast[32];
	struct rtnl_link_stats64 stats;
	char alias[256];	/* IFLA_IFALIAS, "" when unset; last (see link.c) */
};

enum host_type { HOST_GAUGE, HOST_COUNTER, HOST_UNTYPED, HOST_SUMMARY, HOST_HISTOGRAM };

void host_util__family(struct host_w *w, const char *name, enum host_type type,
		       const char *help);
/* name{k="v",...} value\n: begin, any number of labels, one end. */
void host_util__begin(struct host_w *w, const char *name);
void host_util__label(struct host_w *w, const char *key, const char *val);
void host_util__labeln(struct host_w *w, const char *key, const char *val, size_t n);
void host_util__end(struct host_w *w, double v);
void host_util__end_u64(struct host_w *w, uint64_t v);
/* ns / 1e9 as host_util__end prints it, without snprintf and strtod. */
void host_util__end_ns(struct host_w *w, uint64_t ns);
/* An unlabelled family with its one sample. */
void host_util__single(struct host_w *w, const char *name, enum host_type type,
		       const char *help, double v);
void host_util__append(struct host_w *w, const char *s, size_t n);

/*
 * The configured location of a canonical path: /proc/... under
 * --path.procfs, /sys/... under --path.sysfs, /run/udev/data/... under
 * --path.udev.data, anything else under --path.rootfs. Returns out, or
 * canon itself when no prefix is configured for it; an over-long result
 * becomes "" (which no open() finds).
 */
const char *host_util__path(const char *canon, char *out, size_t n);
/* A mount point as the host sees it: the rootfs prefix removed. */
const char *host_util__strip_rootfs(const char *path);
/* The textfile directory, or NULL when none is configured. */
const char *host_util__textfile_dir(void);

/*
 * Reads a whole file into buf (NUL-terminated) and returns its length, or
 * a negative errno: -EFBIG when it does not fit in size - 1 bytes. *fdp
 * caches the descriptor across scrapes (pread at offset 0); pass NULL for
 * files that may come and go (per-device sysfs files). path is canonical
 * (see host_util__path).
 */
ssize_t host_util__read(int *fdp, const char *path, char *buf, size_t size);
/* opendir of a canonical path (see host_util__path). */
DIR *host_util__opendir(const char *canon);
/* First number in a small file, or a negative errno. */
int host_util__read_u64(int *fdp, const char *path, uint64_t *out);
/* The interfaces of this scrape's RTM_GETLINK dump (user/host/link.c):
 * their number, or a negative errno. */
int host_util__links(struct host_w *w, const struct host_link **out);
/* Is --path.sysfs the default (/sys, the live kernel's)? */
int host_util__sysfs_live(void);
/* Is --path.procfs the default (/proc, the live kernel's)? */
int host_util__procfs_live(void);
/* Changes at every host__configure: what a collector kept from one
 * configuration's files is not used under another. */
unsigned host_util__config_gen(void);
/* /proc/stat for this scrape (see struct host_w). */
int host_util__proc_stat(struct host_w *w, const char **text, size_t *len);

/* strconv.ParseInt(s, 0, 64) as Go has it (0x, 0o, 0b and 0 prefixes,
 * '_' between digits): 0, or -EINVAL for a syntax or range error. */
int host_util__parse_go_int(const char *s, int64_t *out);
/* Line iteration over a NUL-terminated buffer: returns the next line with
 * its '\n' replaced by NUL, or NULL at the end. */
char *host_util__line(char **cursor);
/* Splits s at runs of blanks in place; returns the number of fields
 * stored (at most max). */
int host_util__fields(char *s, char **f, int max);

#endif
