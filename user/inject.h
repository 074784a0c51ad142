/* Loader of inject.bpf.c: traceparent injection into outgoing plaintext
 * HTTP/1.x requests (sockops on the cgroup v2 root + sk_msg on a sockhash). */
#ifndef SONDE_INJECT_H
#define SONDE_INJECT_H

#include <stdint.h>

#include "loader.h"
#include "sonde.h"

struct inject;

/* Loads and attaches; on failure logs why, reports the hooks unavailable in
 * sonde_probe_info and returns a negative errno (the agent runs on). */
int inject__open(struct inject **out, struct loader *ld, uint32_t self_tgid,
		 uint32_t filter_tgid);
void inject__close(struct inject *in);
/* Connections established to this remote port from now on go through sk_msg. */
void inject__add_port(struct inject *in, uint16_t port);
/* sum over CPUs of an outcome counter */
uint64_t inject__counter(const struct inject *in, enum sonde_inject_counter c);

#endif
