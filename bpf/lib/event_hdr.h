/* The common header every ring record starts with (struct sonde_event_hdr),
 * stamped now. */
#ifndef SONDE_BPF_EVENT_HDR_H
#define SONDE_BPF_EVENT_HDR_H

static __always_inline void event_hdr__set(struct sonde_event_hdr *h, __u8 op, __u8 flags,
					   __u32 size)
{
	h->op = op;
	h->flags = flags;
	h->pad = 0;
	h->size = size;
	h->ktime = bpf_ktime_get_ns();
}

#endif
