/* vmstat collector: /proc/vmstat fields selected by node_exporter's default
 * --collector.vmstat.fields, ^(oom_kill|pgpg|pswp|pg.*fault).* */
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

static int wanted(const char *k)
{
	return !strncmp(k, "oom_kill", 8) || !strncmp(k, "pgpg", 4) || !strncmp(k, "pswp", 4) ||
	       (!strncmp(k, "pg", 2) && strstr(k + 2, "fault"));
}

int host_vmstat__collect(struct host_w *w)
{
	static int fd = -1;
	static char buf[32768];
	char *cur = buf, *line;
	ssize_t n = host_util__read(&fd, "/proc/vmstat", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	while ((line = host_util__line(&cur))) {
		char name[128], help[160], *f[2];

		/* every wanted name starts with 'o' or 'p': most of the ~180
		 * lines are passed over without being split */
		if ((*line != 'o' && *line != 'p') ||
		    host_util__fields(line, f, 2) != 2 || !wanted(f[0]) || strlen(f[0]) > 100)
			continue;
		strcpy(name, "node_vmstat_");
		strcat(name, f[0]);
		strcpy(help, "/proc/vmstat information field ");
		strcat(help, f[0]);
		strcat(help, ".");
		host_util__single(w, name, HOST_UNTYPED, help, strtod(f[1], NULL));
	}
	return 0;
}
