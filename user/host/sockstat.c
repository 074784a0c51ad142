/* sockstat collector: socket counts per protocol and state from
 * /proc/net/sockstat and sockstat6; "mem" (pages) also as mem_bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/collectors.h"

static void one(struct host_w *w, const char *proto, const char *state, double v)
{
	char name[128], help[160];

	snprintf(name, sizeof(name), "node_sockstat_%s_%s", proto, state);
	snprintf(help, sizeof(help), "Number of %s sockets in state %s.", proto, state);
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
