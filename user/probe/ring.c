/* Consumer for BPF_MAP_TYPE_RINGBUF maps, one per CPU. Layout (kernel ABI):
 * page 0 = consumer position (we write it), page 1 = producer position,
 * then the data area, which the kernel lets a consumer map twice so that
 * records never wrap. It is mapped once here: every page of a ring mapping
 * is resident (and counted in the agent's RSS) from mmap on, so a second
 * view would add the whole ring again. The few records that wrap around
 * the end are copied whole into a bounce buffer. Each record has an 8-byte
 * header {u32 len | BUSY | DISCARD, u32 page offset}, 8-byte aligned, so
 * a header itself never wraps. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "probe/ring.h"
#include "sonde.h"

/* Cache lines of a ring's next record fetched ahead (see ring_set__drain). */
#define PREFETCH_LINES 4

struct ring {
	int fd;
	uint64_t mask;
	unsigned long *consumer;	/* shared: our read position */
	const unsigned long *producer;	/* shared: kernel's write position */
	const uint8_t *data;
	size_t map_len;
	uint8_t *bounce;		/* a wrapping record, made contiguous */
	size_t bounce_cap;
	/* cursor within one drain */
	uint64_t cons, prod;
	/* the ring's next record in this drain, as ring__peek found it
	 * (NULL: none before the horizon); valid while peeked is set */
	const uint8_t *head;
	uint64_t head_t;
	bool peeked;
};

struct ring_set {
	struct ring *rings;
	int n;
	uint32_t size;
	bool mapped;		/* ring_set__map done */
	size_t page;
};

static int ring__open(struct ring *rg, uint32_t size, size_t page)
{
	void *p;

	rg->mask = size - 1;
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, rg->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	rg->consumer = p;
	rg->map_len = page + (size_t)size;
	p = mmap(NULL, rg->map_len, PROT_READ, MAP_SHARED, rg->fd, (off_t)page);
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap(rg->consumer, page);
		rg->consumer = NULL;
		return err;
	}
	rg->producer = p;
	rg->data = (const uint8_t *)p + page;
	return 0;
}

int ring_set__new(struct ring_set **out, int outer_fd, int ncpu, uint32_t size)
{
	struct ring_set *r = calloc(1, sizeof(*r));
	int err = 0;

	if (!r)
		return -ENOMEM;
	r->page = (size_t)sysconf(_SC_PAGESIZE);
	r->size = size;
	r->rings = calloc((size_t)ncpu, sizeof(*r->rings));
	if (!r->rings) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (int i = 0; i < ncpu; i++) {
		uint32_t key = (uint32_t)i;
		int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "sonde_ring", 0, 0, size, NULL);

		r->rings[i].fd = -1;
		if (fd < 0) {
			err = fd;
			goto cleanup;
		}
		r->n = i + 1;
		r->rings[i].fd = fd;
		if (bpf_map_update_elem(outer_fd, &key, &fd, BPF_ANY)) {
			err = -errno;
			goto cleanup;
		}
	}
	*out = r;
	return 0;
cleanup:
	ring_set__free(r);
	return err;
}

void ring_set__free(struct ring_set *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++) {
		struct ring *rg = &r->rings[i];

		if (rg->consumer)
			munmap(rg->consumer, r->page);
		if (rg->producer)
			munmap((void *)rg->producer, rg->map_len);
		if (rg->fd >= 0)
			close(rg->fd);
		free(rg->bounce);
	}
	free(r->rings);
	free(r);
}

int ring_set__map(struct ring_set *r)
{
	int err;

	if (r->mapped)
		return 0;
	for (int i = 0; i < r->n; i++)
		if ((err = ring__open(&r->rings[i], r->size, r->page)))
			return err;	/* ring_set__free unmaps the others */
	r->mapped = true;
	return 0;
}

int ring_set__fd(const struct ring_set *r, int i)
{
	return r->rings[i].fd;
}

int ring_set__count(const struct ring_set *r)
{
	return r->n;
}

static inline uint32_t rec_len(const uint8_t *hdr)
{
	return __atomic_load_n((const uint32_t *)hdr, __ATOMIC_ACQUIRE);
}

static inline uint64_t rec_size(uint32_t len)
{
	len &= ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
	return ((uint64_t)len + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
}

/* Copies n bytes from ring position pos, wrapping at the end of the data. */
static void ring__copy(const struct ring *rg, uint64_t pos, void *dst, size_t n)
{
	size_t at = (size_t)(pos & rg->mask), first = (size_t)rg->mask + 1 - at;

	if (first >= n) {
		memcpy(dst, rg->data + at, n);
		return;
	}
	memcpy(dst, rg->data + at, first);
	memcpy((uint8_t *)dst + first, rg->data, n - first);
}

/* The n bytes at ring position pos, contiguous: in place, or copied into
 * the ring's bounce buffer when they wrap (NULL: out of memory). */
static const uint8_t *ring__bytes(struct ring *rg, uint64_t pos, size_t n)
{
	size_t at = (size_t)(pos & rg->mask);

	if (at + n <= (size_t)rg->mask + 1)
		return rg->data + at;
	if (n > rg->bounce_cap) {
		uint8_t *b = realloc(rg->bounce, n);

		if (!b)
			return NULL;
		rg->bounce = b;
		rg->bounce_cap = n;
	}
	ring__copy(rg, pos, rg->bounce, n);
	return rg->bounce;
}

/* Skips discarded records; returns the next deliverable record's header and
 * its timestamp, or NULL when the ring has nothing committed before horizon. */
static const uint8_t *ring__peek(struct ring *rg, uint64_t horizon, uint64_t *ktime)
{
	while (rg->cons < rg->prod) {
		const uint8_t *hdr = rg->data + (rg->cons & rg->mask);
		uint32_t len = rec_len(hdr);
		struct sonde_event_hdr ev;

		if (len & BPF_RINGBUF_BUSY_BIT)
			return NULL;
		if (len & BPF_RINGBUF_DISCARD_BIT ||
		    (len & ~BPF_RINGBUF_DISCARD_BIT) < sizeof(struct sonde_event_hdr)) {
			/* discarded, or too short to carry a timestamp: deliver as-is
			 * ordering-wise now (the handler counts malformed ones) */
			if (len & BPF_RINGBUF_DISCARD_BIT) {
				rg->cons += rec_size(len);
				continue;
			}
			*ktime = 0;
			return hdr;
		}
		ring__copy(rg, rg->cons + BPF_RINGBUF_HDR_SZ, &ev, sizeof(ev));
		if (ev.ktime > horizon)
			return NULL;
		*ktime = ev.ktime;
		return hdr;
	}
	return NULL;
}

/* A sample may carry a trace-context record followed by the data record it
 * belongs to (bpf/sock.bpf.c reserves once for both): hand them over one
 * by one, so handlers always see single records. */
static void ring__deliver(const uint8_t *p, uint32_t len, ring_fn fn, void *arg)
{
	const struct sonde_event_hdr *h = (const struct sonde_event_hdr *)p;
	const uint32_t tc = sizeof(struct sonde_trace_ctx_event);

	if (len > tc && h->op == SONDE_OP_TRACE_CTX && h->size == tc) {
		fn(arg, p, tc);
		p += tc;
		len -= tc;
	}
	fn(arg, p, len);
}

size_t ring_set__drain(struct ring_set *r, uint64_t horizon_ns, ring_fn fn, void *arg)
{
	size_t delivered = 0;

	if (!r->mapped)
		return 0;
	for (int i = 0; i < r->n; i++) {
		struct ring *rg = &r->rings[i];

		rg->cons = *rg->consumer;
		rg->prod = __atomic_load_n(rg->producer, __ATOMIC_ACQUIRE);
		rg->peeked = false;
	}
	for (;;) {
		const uint8_t *best = NULL;
		struct ring *from = NULL;
		uint64_t best_t = 0;

		/* k-way merge; k is the CPU count, so a linear scan is cheap.
		 * Each ring's head is peeked once per record taken from it: the
		 * others keep theirs (the producer positions are a snapshot, so
		 * a ring with nothing stays so until the next drain). */
		for (int i = 0; i < r->n; i++) {
			struct ring *rg = &r->rings[i];

			if (!rg->peeked) {
				rg->head = ring__peek(rg, horizon_ns, &rg->head_t);
				rg->peeked = true;
			}
			if (rg->head && (!best || rg->head_t < best_t)) {
				best = rg->head;
				best_t = rg->head_t;
				from = rg;
			}
		}
		if (!best)
			break;
		{
			uint32_t len = rec_len(best) & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
			const uint8_t *rec = ring__bytes(from, from->cons + BPF_RINGBUF_HDR_SZ, len);
			const uint8_t *next = from->data + ((from->cons + rec_size(len)) & from->mask);

			/* The ring's next record, written on another CPU, is
			 * fetched while this one is handled: its header and
			 * the first bytes of its payload (prefetch never faults,
			 * even past the end of the mapping). */
			for (int k = 0; k < PREFETCH_LINES; k++)
				__builtin_prefetch(next + 64 * k);
			if (rec)
				ring__deliver(rec, len, fn, arg);
			from->cons += rec_size(len);
			from->peeked = false;
			delivered++;
		}
		/* Give space back as we go so producers are not starved by a
		 * long drain. */
		if ((delivered & 255) == 0)
			__atomic_store_n(from->consumer, from->cons, __ATOMIC_RELEASE);
	}
	for (int i = 0; i < r->n; i++)
		__atomic_store_n(r->rings[i].consumer, r->rings[i].cons, __ATOMIC_RELEASE);
	return delivered;
}
