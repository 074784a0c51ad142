/* netstat collector: /proc/net/netstat, snmp and snmp6 counters selected by
 * node_exporter's default --collector.netstat.fields, as
 * node_netstat_<Proto>_<Field> (untyped). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

#define MAX_FIELDS 512

static int in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return 1;
	return 0;
}

/* The default allowlist, written out:
 * ^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|
 *   Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|
 *   Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|
 *   Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$ */
static int wanted(const char *p, const char *f)
{
	static const char *const octets[] = { "InOctets", "OutOctets", NULL };
	static const char *const msgs[] = { "InMsgs", "OutMsgs", NULL };
	static const char *const tcpext[] = { "TCPSynRetrans", "TCPTimeouts", NULL };
	static const char *const tcp[] = { "ActiveOpens", "InSegs", "OutSegs", "OutRsts",
					   "PassiveOpens", "RetransSegs", "CurrEstab", NULL };
	static const char *const udp[] = { "InDatagrams", "OutDatagrams", "NoPorts",
					   "RcvbufErrors", "SndbufErrors", NULL };
	size_t fl = strlen(f);

	/* ".*_" may swallow underscores of the field itself */
	if ((fl >= 9 && !strcmp(f + fl - 9, "_InErrors")) || (fl >= 7 && !strcmp(f + fl - 7, "_InErrs")) ||
	    !strcmp(f, "InErrors") || !strcmp(f, "InErrs"))
		return 1;
	if (!strcmp(p, "Ip"))
		return !strcmp(f, "Forwarding");
	if (!strcmp(p, "Ip6") || !strcmp(p, "IpExt"))
		return in(f, octets);
	if (!strcmp(p, "Icmp") || !strcmp(p, "Icmp6"))
		return in(f, msgs);
	if (!strcmp(p, "TcpExt"))
		return !strncmp(f, "Listen", 6) || !strncmp(f, "Syncookies", 10) || in(f, tcpext);
	if (!strcmp(p, "Tcp"))
		return in(f, tcp);
	if (!strcmp(p, "Udp") || !strcmp(p, "Udp6"))
		return in(f, udp);
	return 0;
}

/*
 * The kernel writes the same names in the same order every time, so what
 * the names decide (which fields are wanted, and each one's family text up
 * to the value) is worked out once per file and kept with the names it was
 * worked out from; a scrape compares the names (one memcmp) and only parses
 * the values. Different names (a kernel that grew a field) rebuild it.
 */
#define MAX_LINES 256
#define MAX_VALS 4096

struct want {
	uint16_t line, field;		/* which value */
	uint32_t pre, pre_len;		/* its "# HELP ...\nname" in text */
};

struct names_cache {
	struct metrics_buf names;	/* the names it was built from */
	struct metrics_buf text;	/* family texts, back to back */
	struct want *want;
	int nwant, cap;
	int valid;
};

/* One parse of a file: value tokens by line, and the names' text. */
struct parsed {
	struct metrics_buf names;
	int nlines;
	int start[MAX_LINES + 1];	/* line i's values: vals[start[i]..start[i+1]) */
	char *vals[MAX_VALS];
	char *proto[MAX_LINES];		/* the protocol of each line */
	char *fields[MAX_LINES];	/* netstat/snmp: the header line's names (unsplit) */
	char *field6[MAX_LINES];	/* snmp6: the field, after the protocol */
};

static int add_want(struct names_cache *c, struct host_w *tmp, int line, int field,
		    const char *proto, const char *f)
{
	char name[300], help[300];
	size_t start = c->text.len;

	if (!wanted(proto, f) || strlen(proto) + strlen(f) > 120)
		return 0;
	snprintf(name, sizeof(name), "node_netstat_%s_%s", proto, f);
	snprintf(help, sizeof(help), "Statistic %s%s.", proto, f);
	host_util__family(tmp, name, HOST_UNTYPED, help);
	host_util__append(tmp, name, strlen(name));
	if (tmp->err)
		return tmp->err;
	if (c->nwant == c->cap) {
		int cap = c->cap ? 2 * c->cap : 64;
		struct want *nw = realloc(c->want, (size_t)cap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		c->want = nw;
		c->cap = cap;
	}
	c->want[c->nwant++] = (struct want){ (uint16_t)line, (uint16_t)field, (uint32_t)start,
					     (uint32_t)(c->text.len - start) };
	return 0;
}

static int rebuild(struct names_cache *c, struct parsed *p)
{
	struct host_w tmp = { .buf = &c->text };
	static char *names[MAX_FIELDS];
	int err = 0;

	c->valid = 0;
	c->nwant = 0;
	c->text.len = 0;
	for (int i = 0; i < p->nlines && !err; i++) {
		int nv = p->start[i + 1] - p->start[i];

		if (p->field6[i]) {
			err = add_want(c, &tmp, i, 0, p->proto[i], p->field6[i]);
			continue;
		}
		{
			/* split a copy: the names text is compared next time */
			static char copy[1 << 16];
			size_t n = strlen(p->fields[i]);
			int nn;

			if (n >= sizeof(copy))
				return -EINVAL;
			memcpy(copy, p->fields[i], n + 1);
			nn = host_util__fields(copy, names, MAX_FIELDS);
			for (int k = 0; k < nn && k < nv && !err; k++)
				err = add_want(c, &tmp, i, k, p->proto[i], names[k]);
		}
	}
	if (err)
		return err;
	c->names.len = 0;
	if ((err = metrics_buf__append(&c->names, p->names.data ? p->names.data : "", p->names.len)))
		return err;
	c->valid = 1;
	return 0;
}

static void emit_all(struct host_w *w, struct names_cache *c, struct parsed *p)
{
	for (int i = 0; i < c->nwant; i++) {
		const struct want *x = &c->want[i];

		/* the same names, so the same values: a short row is skipped */
		if (x->line >= p->nlines || p->start[x->line] + x->field >= p->start[x->line + 1])
			continue;
		host_util__append(w, c->text.data + x->pre, x->pre_len);
		w->nlabels = 0;
		host_util__end(w, strtod(p->vals[p->start[x->line] + x->field], NULL));
	}
}

static int names_add(struct parsed *p, const char *s)
{
	return metrics_buf__append(&p->names, s, strlen(s)) || metrics_buf__append(&p->names, "\n", 1);
}

/* netstat and snmp: a "Proto: names..." line, then "Proto: values...". */
static int pairs(struct host_w *w, char *text, struct names_cache *c)
{
	static struct parsed p;
	char *cur = text, *hdr, *row;
	int nv = 0;

	p.names.len = 0;
	p.nlines = 0;
	while ((hdr = host_util__line(&cur)) && (row = host_util__line(&cur))) {
		char *c1 = strchr(hdr, ':'), *c2 = strchr(row, ':');

		if (!c1 || !c2)
			return -EINVAL;
		if (p.nlines == MAX_LINES || names_add(&p, hdr))
			break;
		*c1 = '\0';
		p.proto[p.nlines] = hdr;
		p.fields[p.nlines] = c1 + 1;
		p.field6[p.nlines] = NULL;
		p.start[p.nlines] = nv;
		nv += host_util__fields(c2 + 1, p.vals + nv, MAX_VALS - nv < MAX_FIELDS ? MAX_VALS - nv : MAX_FIELDS);
		p.nlines++;
	}
	p.start[p.nlines] = nv;
	if (!c->valid || c->names.len != p.names.len ||
	    memcmp(c->names.data, p.names.data, p.names.len)) {
		int err = rebuild(c, &p);

		if (err)
			return err;
	}
	emit_all(w, c, &p);
	return 0;
}

/* snmp6: "Ip6InOctets 123"; the protocol ends at the first '6'. */
static void snmp6(struct host_w *w, char *text, struct names_cache *c)
{
	static struct parsed p;
	static char protos[MAX_LINES][32];
	char *cur = text, *line, *f[2];
	int nv = 0;

	p.names.len = 0;
	p.nlines = 0;
	while ((line = host_util__line(&cur)) && p.nlines < MAX_LINES) {
		char *six;

		if (host_util__fields(line, f, 2) != 2 || !(six = strchr(f[0], '6')) ||
		    (size_t)(six - f[0]) + 1 >= sizeof(protos[0]))
			continue;
		if (names_add(&p, f[0]))
			break;
		memcpy(protos[p.nlines], f[0], (size_t)(six - f[0]) + 1);
		protos[p.nlines][six - f[0] + 1] = '\0';
		p.proto[p.nlines] = protos[p.nlines];
		p.field6[p.nlines] = six + 1;
		p.start[p.nlines] = nv;
		p.vals[nv++] = f[1];
		p.nlines++;
	}
	p.start[p.nlines] = nv;
	if (!c->valid || c->names.len != p.names.len ||
	    memcmp(c->names.data, p.names.data, p.names.len)) {
		if (rebuild(c, &p))
			return;
	}
	emit_all(w, c, &p);
}

int host_netstat__collect(struct host_w *w)
{
	static int fd_netstat = -1, fd_snmp = -1, fd_snmp6 = -1;
	static struct names_cache c_netstat, c_snmp, c_snmp6;
	static char buf[1 << 16];
	int err;

	if (host_util__read(&fd_netstat, "/proc/net/netstat", buf, sizeof(buf)) < 0)
		return -ENOENT;
	err = pairs(w, buf, &c_netstat);
	if (err)
		return err;
	if (host_util__read(&fd_snmp, "/proc/net/snmp", buf, sizeof(buf)) < 0)
		return -ENOENT;
	err = pairs(w, buf, &c_snmp);
	if (err)
		return err;
	if (host_util__read(&fd_snmp6, "/proc/net/snmp6", buf, sizeof(buf)) >= 0)
		snmp6(w, buf, &c_snmp6);	/* absent without IPv6 */
	return 0;
}
