/* Host collectors' common helpers: Prometheus text output with one sticky
 * error, label escaping, and bounded whole-file reads. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "host/util.h"

#define ROOT_MAX HOST_PATH_MAX
/* "" = the default (the canonical path as it is) */
static char procfs[ROOT_MAX + 1], sysfs[ROOT_MAX + 1], rootfs[ROOT_MAX + 1],
	udev_data[ROOT_MAX + 1], textfile_dir[ROOT_MAX + 1];

/* Copies a root without its trailing slashes; the default becomes "". */
static int set_root(char *dst, const char *src, const char *dflt)
{
	size_t n;

	if (!src || !*src) {
		dst[0] = '\0';
		return 0;
	}
	n = strlen(src);
	while (n > 1 && src[n - 1] == '/')
		n--;
	if (n > ROOT_MAX)
		return -ENAMETOOLONG;
	if (dflt && strlen(dflt) == n && !strncmp(src, dflt, n))
		n = 0;
	if (n == 1 && src[0] == '/' && !dflt)
		n = 0;		/* rootfs "/" */
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

static unsigned config_gen;

unsigned host_util__config_gen(void)
{
	return config_gen;
}

int host__configure(const struct host_opts *o)
{
	const char *const src[] = { o->procfs, o->sysfs, o->rootfs, o->udev_data, o->textfile_dir };

	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++)
		if (src[i] && strlen(src[i]) > ROOT_MAX)
			return -ENAMETOOLONG;
	config_gen++;
	set_root(procfs, o->procfs, "/proc");
	set_root(sysfs, o->sysfs, "/sys");
	set_root(rootfs, o->rootfs, NULL);
	set_root(udev_data, o->udev_data, "/run/udev/data");
	if (o->textfile_dir && *o->textfile_dir)
		strcpy(textfile_dir, o->textfile_dir);
	else
		textfile_dir[0] = '\0';
	return 0;
}

int host_util__sysfs_live(void)
{
	return !sysfs[0];
}

int host_util__procfs_live(void)
{
	return !procfs[0];
}

const char *host_util__textfile_dir(void)
{
	return textfile_dir[0] ? textfile_dir : NULL;
}

static int prefixed(const char *canon, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(canon, dir, n) && (canon[n] == '/' || canon[n] == '\0');
}

const char *host_util__path(const char *canon, char *out, size_t n)
{
	const char *root, *rest;
	int len;

	if (prefixed(canon, "/proc"))
		root = procfs, rest = canon + 5;
	else if (prefixed(canon, "/sys"))
		root = sysfs, rest = canon + 4;
	else if (prefixed(canon, "/run/udev/data"))
		root = udev_data, rest = canon + 14;
	else
		root = rootfs, rest = canon;
	if (!root[0])
		return canon;
	len = snprintf(out, n, "%s%s", root, rest);
	if (len < 0 || (size_t)len >= n)
		out[0] = '\0';
	return out;
}

const char *host_util__strip_rootfs(const char *path)
{
	size_t n = strlen(rootfs);

	if (!n || strncmp(path, rootfs, n))
		return path;
	if (path[n] == '\0')
		return "/";
	return path[n] == '/' ? path + n : path;
}

void host_util__append(struct host_w *w, const char *s, size_t n)
{
	if (!w->err)
		w->err = metrics_buf__append(w->buf, s, n);
}

static void puts_(struct host_w *w, const char *s)
{
	host_util__append(w, s, strlen(s));
}

void host_util__family(struct host_w *w, const char *name, enum host_type type,
		       const char *help)
{
	static const char *const types[] = { "gauge", "counter", "untyped", "summary", "histogram" };
	const char *p, *q;

	puts_(w, "# HELP ");
	puts_(w, name);
	host_util__append(w, " ", 1);
	/* HELP escapes only backslash and newline. */
	for (p = help; *(q = p + strcspn(p, "\\\n")); p = q + 1) {
		host_util__append(w, p, (size_t)(q - p));
		host_util__append(w, *q == '\\' ? "\\\\" : "\\n", 2);
	}
	host_util__append(w, p, (size_t)(q - p));
	puts_(w, "\n# TYPE ");
	puts_(w, name);
	host_util__append(w, " ", 1);
	puts_(w, types[type]);
	host_util__append(w, "\n", 1);
}

void host_util__begin(struct host_w *w, const char *name)
{
	w->nlabels = 0;
	puts_(w, name);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, c = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, c = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return len;
}

void host_util__labeln(struct host_w *w, const char *key, const char *val, size_t n)
{
	const unsigned char *s = (const unsigned char *)val;
	size_t i = 0, run = 0, l;

	host_util__append(w, w->nlabels++ ? "," : "{", 1);
	puts_(w, key);
	host_util__append(w, "=\"", 2);
	/* Copy runs of plain bytes; escape \ " newline; invalid UTF-8 (mount
	 * points are bytes) becomes U+FFFD so the page stays parseable. */
	while (i < n) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x80 && c != '\\' && c != '"') {
			i++;
			run++;
			continue;
		}
		host_util__append(w, (const char *)s + i - run, run);
		run = 0;
		if (c == '\\')
			host_util__append(w, "\\\\", 2), i++;
		else if (c == '"')
			host_util__append(w, "\\\"", 2), i++;
		else if (c == '\n')
			host_util__append(w, "\\n", 2), i++;
		else if (c < 0x80)	/* other control bytes are valid UTF-8 */
			host_util__append(w, (const char *)s + i, 1), i++;
		else if ((l = utf8_len(s + i, n - i)))
			host_util__append(w, (const char *)s + i, l), i += l;
		else
			host_util__append(w, "\xef\xbf\xbd", 3), i++;
	}
	host_util__append(w, (const char *)s + i - run, run);
	host_util__append(w, "\"", 1);
}

void host_util__label(struct host_w *w, const char *key, const char *val)
{
	host_util__labeln(w, key, val, strlen(val));
}

static size_t fmt_u64(char *out, uint64_t v)
{
	return metrics__format_u64(v, out);
}

static void finish(struct host_w *w, const char *num, size_t n)
{
	char line[40];

	if (w->nlabels)
		host_util__append(w, "}", 1);
	line[0] = ' ';
	memcpy(line + 1, num, n);
	line[n + 1] = '\n';
	host_util__append(w, line, n + 2);
}

void host_util__end_u64(struct host_w *w, uint64_t v)
{
	char num[24];

	finish(w, num, fmt_u64(num, v));
}

void host_util__end(struct host_w *w, double v)
{
	char num[32];
	int n, prec;

	if (isnan(v)) {
		finish(w, "NaN", 3);
		return;
	}
	if (isinf(v)) {
		finish(w, v > 0 ? "+Inf" : "-Inf", 4);
		return;
	}
	if ((n = (int)metrics__format_fast(v, num))) {
		finish(w, num, (size_t)n);
		return;
	}
	/* Shortest of %.15g..%.17g that reads back as the same double. */
	for (prec = 15;; prec++) {
		n = snprintf(num, sizeof(num), "%.*g", prec, v);
		if (prec == 17 || strtod(num, NULL) == v)
			break;
	}
	finish(w, num, (size_t)n);
}

void host_util__end_ns(struct host_w *w, uint64_t ns)
{
	char num[40], digits[24], *o = num;
	size_t len, trail = 0;
	int exp;

	if (ns >= 1000000000000000ULL) {	/* over 15 digits: the general path */
		host_util__end(w, (double)ns / 1e9);
		return;
	}
	if (!ns) {
		finish(w, "0", 1);
		return;
	}
	/* ns has at most 15 significant digits, so its decimal is the text
	 * %.15g gives for ns / 1e9 (and that text reads back as the same
	 * double): the digits of ns, trailing zeros dropped, placed by %g's
	 * rule (exponent form below 1e-4). */
	len = metrics__format_u64(ns, digits);
	while (digits[len - 1 - trail] == '0')
		trail++;
	exp = (int)len - 1 - 9;
	len -= trail;
	if (exp < -4) {
		*o++ = digits[0];
		if (len > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, len - 1);
			o += len - 1;
		}
		*o++ = 'e';
		*o++ = '-';
		*o++ = (char)('0' + -exp / 10);
		*o++ = (char)('0' + -exp % 10);
	} else if (exp < 0) {
		memcpy(o, "0.", 2);
		o += 2;
		for (int i = -1; i > exp; i--)
			*o++ = '0';
		memcpy(o, digits, len);
		o += len;
	} else {
		size_t il = (size_t)exp + 1;

		memcpy(o, digits, len < il ? len : il);
		o += len < il ? len : il;
		for (size_t i = len; i < il; i++)
			*o++ = '0';
		if (len > il) {
			*o++ = '.';
			memcpy(o, digits + il, len - il);
			o += len - il;
		}
	}
	finish(w, num, (size_t)(o - num));
}

void host_util__single(struct host_w *w, const char *name, enum host_type type,
		       const char *help, double v)
{
	host_util__family(w, name, type, help);
	host_util__begin(w, name);
	host_util__end(w, v);
}

ssize_t host_util__read(int *fdp, const char *path, char *buf, size_t size)
{
	int fd = fdp ? *fdp : -1, retried = 0;
	ssize_t n;

again:
	if (fd < 0) {
		char real[512];

		fd = open(host_util__path(path, real, sizeof(real)), O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fdp)
			*fdp = fd;
	}
	/* One read: proc and sysfs files produce their whole text when the
	 * buffer is large enough. A full buffer means it was not. */
	n = pread(fd, buf, size - 1, 0);
	if (n < 0) {
		int err = -errno;

		/* A file whose attribute refuses a read (EINVAL: speed of a
		 * link that is down) keeps its fd; one that went away is
		 * opened again by path (a device of the same name). */
		if (fdp && err != -ENODEV && err != -ESTALE && err != -EBADF && err != -ENOENT)
			return err;
		close(fd);
		if (fdp)
			*fdp = -1;
		fd = -1;
		if (fdp && !retried++)
			goto again;
		return err;
	}
	if (!fdp)
		close(fd);
	if ((size_t)n == size - 1)
		return -EFBIG;
	buf[n] = '\0';
	return n;
}

DIR *host_util__opendir(const char *canon)
{
	char real[512];

	return opendir(host_util__path(canon, real, sizeof(real)));
}

int host_util__read_u64(int *fdp, const char *path, uint64_t *out)
{
	char buf[64], *end;
	ssize_t n = host_util__read(fdp, path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	if (end == buf || errno)
		return -EINVAL;
	return 0;
}

int host_util__proc_stat(struct host_w *w, const char **text, size_t *len)
{
	/* 1 MiB: the intr line lists every IRQ; large hosts reach ~100 KiB. */
	static char buf[1 << 20];
	static int fd = -1;

	if (!w->stat && !w->stat_err) {
		ssize_t n = host_util__read(&fd, "/proc/stat", buf, sizeof(buf));

		if (n < 0)
			w->stat_err = (int)n;
		else
			w->stat = buf, w->stat_len = (size_t)n;
	}
	*text = w->stat;
	*len = w->stat_len;
	return w->stat_err;
}

char *host_util__line(char **cursor)
{
	char *s = *cursor, *nl;

	if (!s || !*s)
		return NULL;
	nl = strchr(s, '\n');
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = s + strlen(s);
	}
	return s;
}

int host_util__fields(char *s, char **f, int max)
{
	int n = 0;

	while (n < max) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		f[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (!*s)
			break;
		*s++ = '\0';
	}
	return n;
}
