/* Per-CPU BPF ring buffers read as one ordered stream: records from all
 * rings are merged by their sonde_event_hdr.ktime, so events of a thread
 * that migrated between CPUs still arrive in the order they happened. */
#ifndef SONDE_RING_H
#define SONDE_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring_set;

typedef void (*ring_fn)(void *arg, const void *rec, size_t size);

/* Creates ncpu ring buffer maps of size bytes each (power of two, page
 * multiple) and stores them in the array-of-maps outer_fd at index cpu. */
int ring_set__new(struct ring_set **out, int outer_fd, int ncpu, uint32_t size);
/* Maps the rings into this process (until then records wait in the
 * kernel, and drains deliver nothing). Every page of a ring is resident
 * once mapped, so the agent maps them after start-up has given its
 * temporary memory back: the start-up peak and the rings do not add up. */
int ring_set__map(struct ring_set *r);
void ring_set__free(struct ring_set *r);
/* fd of ring i, for epoll (readable when the BPF side forced a wakeup) */
int ring_set__fd(const struct ring_set *r, int i);
int ring_set__count(const struct ring_set *r);
/* Delivers, in timestamp order, every committed record stamped before
 * horizon_ns (CLOCK_MONOTONIC); later ones wait for the next call, so a
 * record still being written on another CPU cannot be overtaken. Returns
 * the number of records delivered. */
size_t ring_set__drain(struct ring_set *r, uint64_t horizon_ns, ring_fn fn, void *arg);

#endif
