/* uname collector: node_uname_info, one series labelled by uname(2). */
#define _GNU_SOURCE	/* utsname.domainname */
#include <errno.h>
#include <sys/utsname.h>

#include "host/collectors.h"

int host_uname__collect(struct host_w *w)
{
	struct utsname u;

	if (uname(&u))
		return -errno;
	host_util__family(w, "node_uname_info", HOST_GAUGE,
			  "Labeled system information as provided by the uname system call.");
	host_util__begin(w, "node_uname_info");
	host_util__label(w, "domainname", u.domainname);
	host_util__label(w, "machine", u.machine);
	host_util__label(w, "nodename", u.nodename);
	host_util__label(w, "release", u.release);
	host_util__label(w, "sysname", u.sysname);
	host_util__label(w, "version", u.version);
	host_util__end(w, 1);
	return 0;
}
