/* Service names per process: the executable-basename rule, and the
 * service name of a tgid from its identity (identity/identity.c). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "identity/identity.h"
#include "util/proc.h"

const char *proc__service_name(const char *override, const char *exe, const char *comm,
			       char *out, size_t n)
{
	const char *slash;
	size_t len;

	if (override)
		return override;
	if (!exe || !exe[0]) {
		snprintf(out, n, "%s", comm && comm[0] ? comm : "unknown");
		return out;
	}
	len = strlen(exe);
	slash = strrchr(exe, '/');
	if (slash) {
		/* A path: readlink adds " (deleted)" to an executable replaced
		 * on disk (no '/' in it: slash stays the last one). A basename
		 * from the kernel is taken as it is. */
		if (len > 10 && strcmp(exe + len - 10, " (deleted)") == 0)
			len -= 10;
		len -= (size_t)(slash + 1 - exe);
		exe = slash + 1;
	}
	if (len > n - 1)
		len = n - 1;
	memcpy(out, exe, len);
	out[len] = 0;
	return out;
}

const char *proc__service(uint32_t tgid, const char *exe, const char *comm)
{
	return identity__get(tgid, exe, comm)->service_name;
}
