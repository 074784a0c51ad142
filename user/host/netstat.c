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

static void emit(struct host_w *w, const char *proto, const char *field, const char *val)
{
	char name[160], help[160];

	if (!wanted(proto, field) || strlen(proto) + strlen(field) > 120)
		return;
	snprintf(name, sizeof(name), "node_netstat_%s_%s", proto, field);
	snprintf(help, sizeof(help), "Statistic %s%s.", proto, field);
	host_util__single(w, name, HOST_UNTYPED, help, strtod(val, NULL));
}

/* netstat and snmp: a "Proto: names..." line, then "Proto: values...". */
static int pairs(struct host_w *w, char *text)
{
	static char *names[MAX_FIELDS], *vals[MAX_FIELDS];
	char *cur = text, *hdr, *row;

	while ((hdr = host_util__line(&cur)) && (row = host_util__line(&cur))) {
		char *c1 = strchr(hdr, ':'), *c2 = strchr(row, ':');
		int nn, nv;

		if (!c1 || !c2)
			return -EINVAL;
		*c1 = '\0';
		nn = host_util__fields(c1 + 1, names, MAX_FIELDS);
		nv = host_util__fields(c2 + 1, vals, MAX_FIELDS);
		for (int i = 0; i < nn && i < nv; i++)
			emit(w, hdr, names[i], vals[i]);
	}
	return 0;
}

/* snmp6: "Ip6InOctets 123"; the protocol ends at the first '6'. */
static void snmp6(struct host_w *w, char *text)
{
	char *cur = text, *line, *f[2], proto[32];

	while ((line = host_util__line(&cur))) {
		char *six;

		if (host_util__fields(line, f, 2) != 2 || !(six = strchr(f[0], '6')) ||
		    (size_t)(six - f[0]) + 1 >= sizeof(proto))
			continue;
		memcpy(proto, f[0], (size_t)(six - f[0]) + 1);
		proto[six - f[0] + 1] = '\0';
		emit(w, proto, six + 1, f[1]);
	}
}

int host_netstat__collect(struct host_w *w)
{
	static int fd_netstat = -1, fd_snmp = -1, fd_snmp6 = -1;
	static char buf[1 << 16];
	int err;

	if (host_util__read(&fd_netstat, "/proc/net/netstat", buf, sizeof(buf)) < 0)
		return -ENOENT;
	err = pairs(w, buf);
	if (err)
		return err;
	if (host_util__read(&fd_snmp, "/proc/net/snmp", buf, sizeof(buf)) < 0)
		return -ENOENT;
	err = pairs(w, buf);
	if (err)
		return err;
	if (host_util__read(&fd_snmp6, "/proc/net/snmp6", buf, sizeof(buf)) >= 0)
		snmp6(w, buf);	/* absent without IPv6 */
	return 0;
}
