/* loadavg collector: node_load1/5/15 from /proc/loadavg. */
#include <errno.h>
#include <stdlib.h>

#include "host/collectors.h"

int host_loadavg__collect(struct host_w *w)
{
	static int fd = -1;
	char buf[128], *p, *end;
	double v[3];
	ssize_t n = host_util__read(&fd, "/proc/loadavg", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	p = buf;
	for (int i = 0; i < 3; i++, p = end) {
		v[i] = strtod(p, &end);
		if (end == p)
			return -EINVAL;
	}
	host_util__single(w, "node_load1", HOST_GAUGE, "1m load average.", v[0]);
	host_util__single(w, "node_load5", HOST_GAUGE, "5m load average.", v[1]);
	host_util__single(w, "node_load15", HOST_GAUGE, "15m load average.", v[2]);
	return 0;
}
