/* meminfo collector: every /proc/meminfo field as node_memory_<Field>,
 * "(x)" written "_x", kB fields converted to bytes with a _bytes suffix. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

int host_meminfo__collect(struct host_w *w)
{
	static int fd = -1;
	static char buf[16384];
	char *cur = buf, *line;
	ssize_t n = host_util__read(&fd, "/proc/meminfo", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	while ((line = host_util__line(&cur))) {
		char name[128] = "node_memory_", help[160] = "Memory information field ", *f[3];
		char *colon = strchr(line, ':'), *end;
		size_t o = strlen(name), k;
		double v;
		int nf;

		if (!colon)
			continue;
		*colon = '\0';
		for (k = 0; line[k] && o < 100; k++)
			if (line[k] == '(')
				name[o++] = '_';
			else if (line[k] != ')')
				name[o++] = line[k];
		name[o] = '\0';
		nf = host_util__fields(colon + 1, f, 3);
		if (nf < 1)
			continue;
		v = strtod(f[0], &end);
		if (end == f[0])
			continue;
		if (nf == 2 && !strcmp(f[1], "kB")) {
			v *= 1024;
			strcpy(name + o, "_bytes");
		}
		strcat(help, name + strlen("node_memory_"));
		strcat(help, ".");
		host_util__single(w, name, HOST_GAUGE, help, v);
	}
	return 0;
}
