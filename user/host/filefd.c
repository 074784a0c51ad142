/* filefd collector: allocated and maximum file handles from
 * /proc/sys/fs/file-nr ("allocated unused maximum"). */
#include <errno.h>
#include <stdlib.h>

#include "host/collectors.h"

int host_filefd__collect(struct host_w *w)
{
	static int fd = -1;
	char buf[128], *end;
	unsigned long long v[3];
	const char *p = buf;
	ssize_t n = host_util__read(&fd, "/proc/sys/fs/file-nr", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	for (int i = 0; i < 3; i++, p = end) {
		v[i] = strtoull(p, &end, 10);
		if (end == p)
			return -EINVAL;
	}
	host_util__single(w, "node_filefd_allocated", HOST_GAUGE,
			  "File descriptor statistics: allocated.", (double)v[0]);
	host_util__single(w, "node_filefd_maximum", HOST_GAUGE,
			  "File descriptor statistics: maximum.", (double)v[2]);
	return 0;
}
