/* Finds TCP sockets that existed before the agent attached (from /proc) so
 * the BPF side can recover syscalls that were already blocked at attach. */
#ifndef SONDE_SEED_H
#define SONDE_SEED_H

#include <stdint.h>

/* Inserts tgid << 32 | fd of every established TCP socket into map_fd.
 * only_tgid 0 = all processes. Returns the number inserted or negative errno. */
int seed__preexisting(int map_fd, uint32_t self_tgid, uint32_t only_tgid, uint32_t max);

#endif
