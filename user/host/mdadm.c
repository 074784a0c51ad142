/* mdadm collector: software RAID arrays from /proc/mdstat, with the rules
 * node_exporter 1.5 applies (prometheus/procfs's reading of the md
 * driver's md_seq_show text): node_md_state{state}, node_md_disks{state},
 * node_md_disks_required, node_md_blocks, node_md_blocks_synced. A file
 * that does not read as mdstat fails the whole collector, as there. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

#define MD_MAX 256		/* arrays reported */
#define MD_LINES 8192

enum { ST_ACTIVE, ST_INACTIVE, ST_RECOVERING, ST_RESYNC, ST_CHECK, ST_OTHER };

struct md {
	char name[64];
	int state;
	int64_t active, total, failed, spare, size, synced;
};

static struct md mds[MD_MAX];
static char *lines[MD_LINES];

static int blank(const char *s)
{
	return !s[strspn(s, " \t\r\n\v\f")];
}

static int count(const char *s, const char *sub)
{
	int n = 0;
	size_t len = strlen(sub);

	for (const char *p = strstr(s, sub); p; p = strstr(p + len, sub))
		n++;
	return n;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
	char tmp[24], *end;

	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	*out = strtoll(tmp, &end, 10);
	return *end || errno || tmp[0] == ' ' ? -EINVAL : 0;
}

/* Go's strconv.ParseFloat on s[0..n) (enough for "27.6", "0.1"). */
static int float_ok(const char *s, size_t n)
{
	char tmp[64], *end;

	if (n == 0 || n >= sizeof(tmp) || s[0] == ' ')
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (strpbrk(tmp, "xXpP_( \t"))
		return 0;
	strtod(tmp, &end);
	return !*end;
}

static const char *digits_end(const char *p)
{
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

/* `(\d+) blocks .*\[(\d+)/(\d+)\] \[([U_]+)\]`: the last "[total/active]
 * [UU_]" after the first "<n> blocks ". */
static int status_re(const char *s, int64_t *total, int64_t *active)
{
	const char *b = NULL, *found = NULL, *p;

	for (p = strstr(s, " blocks "); p; p = strstr(p + 1, " blocks "))
		if (p > s && p[-1] >= '0' && p[-1] <= '9') {
			b = p + 8;
			break;
		}
	if (!b)
		return -EINVAL;
	for (p = strchr(b, '['); p; p = strchr(p + 1, '[')) {
		const char *t = digits_end(p + 1), *a, *u;

		if (t == p + 1 || *t != '/')
			continue;
		a = digits_end(t + 1);
		if (a == t + 1 || a[0] != ']' || a[1] != ' ' || a[2] != '[')
			continue;
		u = a + 3;
		while (*u == 'U' || *u == '_')
			u++;
		if (u == a + 3 || *u != ']')
			continue;
		found = p;
	}
	if (!found)
		return -EINVAL;
	p = digits_end(found + 1);
	if (parse_i64(found + 1, (size_t)(p - found - 1), total))
		return -EINVAL;
	return parse_i64(p + 1, (size_t)(digits_end(p + 1) - p - 1), active);
}

/* The sync line: "(done/total)" gives the blocks synced; the percentage,
 * finish time and speed must read as numbers as well. */
static int recovery(const char *s, int64_t *synced)
{
	const char *p, *q, *last;

	*synced = -1;
	for (p = strchr(s, '('); p; p = strchr(p + 1, '(')) {
		const char *d = digits_end(p + 1), *e;

		if (d == p + 1 || *d != '/')
			continue;
		e = digits_end(d + 1);
		if (e == d + 1 || *e != ')')
			continue;
		if (parse_i64(p + 1, (size_t)(d - p - 1), synced))
			return -EINVAL;
		break;
	}
	if (*synced < 0)
		return -EINVAL;
	/* `= (.+)%`: from the first "= " to the last '%' */
	if (!(p = strstr(s, "= ")) || !(last = strrchr(p + 2, '%')) || last == p + 2)
		return -EINVAL;
	p += 2;
	while (p < last && *p == ' ')	/* TrimSpace */
		p++;
	q = last;
	while (q > p && q[-1] == ' ')
		q--;
	if (!float_ok(p, (size_t)(q - p)))
		return -EINVAL;
	/* `finish=(.+)min`: to the last "min" */
	if (!(p = strstr(s, "finish=")))
		return -EINVAL;
	p += 7;
	for (last = NULL, q = strstr(p + 1, "min"); q; q = strstr(q + 1, "min"))
		last = q;
	if (!last || !float_ok(p, (size_t)(last - p)))
		return -EINVAL;
	/* `speed=(.+)[A-Z]`: to the last capital letter */
	if (!(p = strstr(s, "speed=")))
		return -EINVAL;
	p += 6;
	for (last = NULL, q = p + 1; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			last = q;
	if (!last || !float_ok(p, (size_t)(last - p)))
		return -EINVAL;
	return 0;
}

static int parse(char *text, int *nout)
{
	int nl = 0, n = 0;
	char *cur = text;

	/* strings.Split(text, "\n"): a trailing newline leaves one "" */
	for (;;) {
		char *nlp = strchr(cur, '\n');

		if (nl == MD_LINES)
			return -E2BIG;
		lines[nl++] = cur;
		if (!nlp)
			break;
		*nlp = '\0';
		cur = nlp + 1;
	}
	for (int i = 0; i < nl; i++) {
		char *line = lines[i], copy[512], *f[4];
		struct md *m;
		const char *sl, *sync;
		int nf, si;

		if (blank(line) || line[0] == ' ' || !strncmp(line, "Personalities", 13) ||
		    !strncmp(line, "unused", 6))
			continue;
		snprintf(copy, sizeof(copy), "%s", line);
		for (char *c = copy; *c; c++)
			if (*c == '\t' || *c == '\r' || *c == '\v' || *c == '\f')
				*c = ' ';
		nf = host_util__fields(copy, f, 4);
		if (nf < 3 || i + 3 >= nl)
			return -EINVAL;
		if (n == MD_MAX)
			break;
		m = &mds[n];
		memset(m, 0, sizeof(*m));
		snprintf(m->name, sizeof(m->name), "%s", f[0]);
		m->state = !strcmp(f[2], "active") ? ST_ACTIVE :
			   !strcmp(f[2], "inactive") ? ST_INACTIVE : ST_OTHER;
		m->failed = count(line, "(F)");
		m->spare = count(line, "(S)");
		sl = lines[i + 1];
		{	/* the status line's first field is the size */
			const char *b = sl + strspn(sl, " \t\r\v\f");

			if (parse_i64(b, strcspn(b, " \t\r\v\f"), &m->size))
				return -EINVAL;
		}
		if (strstr(line, "raid0") || strstr(line, "linear")) {
			m->total = m->active = count(line, "[");
		} else if (strstr(line, "inactive")) {
			m->total = m->active = 0;
		} else if (status_re(sl, &m->total, &m->active)) {
			return -EINVAL;
		}
		si = i + 2 + (strstr(lines[i + 2], "bitmap") != NULL);
		sync = lines[si];
		m->synced = m->size;
		if (strstr(sync, "recovery") || strstr(sync, "resync") || strstr(sync, "check")) {
			m->state = strstr(sync, "recovery") ? ST_RECOVERING :
				   strstr(sync, "check") ? ST_CHECK : ST_RESYNC;
			if (strstr(sync, "PENDING") || strstr(sync, "DELAYED"))
				m->synced = 0;
			else if (recovery(sync, &m->synced))
				return -EINVAL;
		}
		n++;
	}
	*nout = n;
	return 0;
}

static void per_md(struct host_w *w, int n, const char *name, const char *help, size_t off)
{
	host_util__family(w, name, HOST_GAUGE, help);
	for (int i = 0; i < n; i++) {
		host_util__begin(w, name);
		host_util__label(w, "device", mds[i].name);
		host_util__end(w, (double)*(const int64_t *)((const char *)&mds[i] + off));
	}
}

int host_mdadm__collect(struct host_w *w)
{
	static const char *const states[] = { "active", "inactive", "recovering", "resync", "check" };
	static int fd = -1;
	static char buf[1 << 18];
	ssize_t len = host_util__read(&fd, "/proc/mdstat", buf, sizeof(buf));
	int n, err;

	if (len < 0)
		return (int)len;
	if ((err = parse(buf, &n)))
		return err;
	per_md(w, n, "node_md_blocks", "Total number of blocks on device.", offsetof(struct md, size));
	per_md(w, n, "node_md_blocks_synced", "Number of blocks synced on device.",
	       offsetof(struct md, synced));
	host_util__family(w, "node_md_disks", HOST_GAUGE, "Number of active/failed/spare disks of device.");
	for (int i = 0; i < n; i++) {
		const int64_t v[3] = { mds[i].active, mds[i].failed, mds[i].spare };
		static const char *const st[3] = { "active", "failed", "spare" };

		for (int k = 0; k < 3; k++) {
			host_util__begin(w, "node_md_disks");
			host_util__label(w, "device", mds[i].name);
			host_util__label(w, "state", st[k]);
			host_util__end(w, (double)v[k]);
		}
	}
	per_md(w, n, "node_md_disks_required", "Total number of disks of device.",
	       offsetof(struct md, total));
	host_util__family(w, "node_md_state", HOST_GAUGE, "Indicates the state of md-device.");
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 5; k++) {
			host_util__begin(w, "node_md_state");
			host_util__label(w, "device", mds[i].name);
			host_util__label(w, "state", states[k]);
			host_util__end(w, mds[i].state == k);
		}
	return 0;
}
