/* Process facts the spans need (service name from the executable), cached
 * per tgid with a bounded table. */
#ifndef SONDE_PROC_H
#define SONDE_PROC_H

#include <stdint.h>

#define PROC_NAME_MAX 64

/* Service name of tgid: the override if set, else the basename of
 * /proc/<tgid>/exe, else comm. The returned string lives in the cache until
 * the next call that evicts it; copy it if kept. */
const char *proc__service(uint32_t tgid, const char *comm);
void proc__set_override(const char *name);

#endif
