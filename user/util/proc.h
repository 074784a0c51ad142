/* Process facts the spans need: the service-name rule, and its result
 * cached per tgid with a bounded table. */
#ifndef SONDE_PROC_H
#define SONDE_PROC_H

#include <stddef.h>
#include <stdint.h>

#define PROC_NAME_MAX 64

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

/* Service name of tgid by proc__service_name, with exe (the executable's
 * basename as the kernel side read it when the connection was first seen;
 * NULL or "" when unknown) or else /proc/<tgid>/exe. Names given as exe are
 * remembered for later calls without one (the process may have exited by
 * then). The returned string lives in the cache until the next call that
 * evicts it; copy it if kept. */
const char *proc__service(uint32_t tgid, const char *exe, const char *comm);
void proc__set_override(const char *name);

#endif
