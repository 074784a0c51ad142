/* Moves per-process totals out of BPF hash maps keyed by tgid, so that each
 * increment is counted exactly once however scrapes and updates interleave. */
#ifndef SONDE_MAPDRAIN_H
#define SONDE_MAPDRAIN_H

#include <stddef.h>
#include <stdint.h>

#define MAPDRAIN_BATCH 1024	/* keys moved per call; the rest wait for the next */

typedef void (*mapdrain_fn)(void *arg, uint32_t key, const void *value);

/* For up to MAPDRAIN_BATCH entries of the u32-keyed hash map fd: removes the
 * entry and passes its value (read into value_buf, one value long) to fn.
 * Returns the number of entries moved. */
size_t mapdrain__u32(int fd, void *value_buf, mapdrain_fn fn, void *arg);

#endif
