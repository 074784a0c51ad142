/* sockstat collector: socket counts per protocol and state from
 * /proc/net/sockstat and sockstat6; "mem" (pages) also as mem_bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/collectors.h"

/* Appends s to dst[*o], cut to fit n bytes with its NUL (what snprintf
 * did, two per sample). */
static void put(char *dst, size_t n, size_t *o, const char *s)
{
	size_t len = strnlen(s, n - 1 - *o);

	memcpy(dst + *o, s, len);
	*o += len;
	dst[*o] = '\0';
}

static void one(struct host_w *w, const char *proto, const char *state, double v)
{
	char name[128], help[160];
	size_t o = 0, h = 0;

	put(name, sizeof(name), &o, "node_sockstat_");
	put(name, sizeof(name), &o, proto);
	put(name, sizeof(name), &o, "_");
	put(name, sizeof(name), &o, state);
	put(help, sizeof(help), &h, "Number of ");
	put(help, sizeof(help), &h, proto);
	put(help, sizeof(help), &h, " sockets in state ");
	put(help, sizeof(help), &h, state);
	put(help, sizeof(help), &h, ".");
	host_util__single(w, name, HOST_GAUGE, help, v);
}

/* Lines "PROTO: key value key value ...". */
static void parse(struct host_w *w, char *text)
{
	static double page;
	char *cur = text, *line, *f[32];

	if (!page)
		page = (double)sysconf(_SC_PAGESIZE);
	while ((line = host_util__line(&cur))) {
		char *colon = strchr(line, ':');
		int n;

		if (!colon || strlen(line) > 60)
			continue;
		*colon = '\0';
		n = host_util__fields(colon + 1, f, 32);
		for (int i = 0; i + 1 < n; i += 2) {
			double v = strtod(f[i + 1], NULL);

			if (!strcmp(line, "sockets") && !strcmp(f[i], "used")) {
				host_util__single(w, "node_sockstat_sockets_used", HOST_GAUGE,
						  "Number of IPv4 sockets in use.", v);
				continue;
			}
			one(w, line, f[i], v);
			if (!strcmp(f[i], "mem"))
				one(w, line, "mem_bytes", v * page);
		}
	}
}

int host_sockstat__collect(struct host_w *w)
{
	static int fd4 = -1, fd6 = -1;
	char buf[2048];

	if (host_util__read(&fd4, "/proc/net/sockstat", buf, sizeof(buf)) < 0)
		return -ENOENT;
	parse(w, buf);
	if (host_util__read(&fd6, "/proc/net/sockstat6", buf, sizeof(buf)) >= 0)
		parse(w, buf);	/* absent without IPv6 */
	return 0;
}
