/* Process facts the spans need (service name from the executable), cached
 * per tgid with a bounded table. */
#ifndef SONDE_PROC_H
#define SONDE_PROC_H

#include <stdint.h>

#define PROC_NAME_MAX 64

/* Service name of tgid: the override if set, else exe (the executable's
 * basename as the kernel side read it when the connection was first seen;
 * NULL or "" when unknown), else the basename of /proc/<tgid>/exe, else
 * comm. Names given as exe are remembered for later calls without one (the
 * process may have exited by then). The returned string lives in the cache
 * until the next call that evicts it; copy it if kept. */
const char *proc__service(uint32_t tgid, const char *exe, const char *comm);
void proc__set_override(const char *name);

#endif
