/* Process facts the spans need: the service-name rule, and its result
 * cached per tgid with a bounded table. */
#ifndef SONDE_PROC_H
#define SONDE_PROC_H

#include <stddef.h>
#include <stdint.h>

#define PROC_NAME_MAX 128	/* = IDENT_NAME_MAX */

/* The service-name rule, written once: override when set (returned as
 * given, never cut), else the basename of exe, else comm, else "unknown".
 * exe is either a path as readlink(/proc/<pid>/exe) reads it (it holds a
 * '/'; the " (deleted)" that marks an executable replaced on disk is
 * dropped) or a basename already (the kernel's d_name); NULL or "" when
 * unknown. Otherwise the name is written to out (n > 0), cut to n - 1
 * bytes as comm is cut, and out is returned. Reads nothing but its
 * arguments. */
const char *proc__service_name(const char *override, const char *exe, const char *comm,
			       char *out, size_t n);

/* service.name of tgid: its identity's (identity__get; the executable
 * basename by proc__service_name is the last resort), with exe the
 * executable's basename as the kernel side read it (NULL or "" when
 * unknown). The returned string lives in the identity cache until the next
 * identity__ call; copy it if kept. */
const char *proc__service(uint32_t tgid, const char *exe, const char *comm);

#endif
