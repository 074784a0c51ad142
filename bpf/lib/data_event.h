/* The connection and call part of a data record, shared by the two capture
 * paths (syscalls in sock.bpf.c, OpenSSL calls in tls.bpf.c), so both emit
 * records the daemon cannot tell apart except by SONDE_F_TLS. */
#ifndef SONDE_BPF_DATA_EVENT_H
#define SONDE_BPF_DATA_EVENT_H

#include "event_hdr.h"

/* now: the record's time (bpf_ktime_get_ns() of the caller's choosing) */
static __always_inline void data_event__fill_at(struct sonde_data_event *ev, __u8 flags,
						__u64 enter_ns, __u64 sk, __u64 pid_tgid,
						__s32 fd, __u32 len, __u8 dir, __u8 syscall,
						const struct sonde_conn *c, __u64 now)
{
	ev->hdr.op = SONDE_OP_DATA;
	ev->hdr.flags = flags;
	ev->hdr.pad = 0;
	ev->hdr.size = 0;	/* at close */
	ev->hdr.ktime = now;
	ev->enter_ns = enter_ns;
	ev->sk = sk;
	ev->tgid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->fd = fd;
	ev->len = len;
	ev->dir = dir;
	ev->role = c->role;
	ev->syscall = syscall;
	ev->pad = 0;
}

static __always_inline void data_event__fill(struct sonde_data_event *ev, __u8 flags,
					     __u64 enter_ns, __u64 sk, __u64 pid_tgid,
					     __s32 fd, __u32 len, __u8 dir, __u8 syscall,
					     const struct sonde_conn *c)
{
	data_event__fill_at(ev, flags, enter_ns, sk, pid_tgid, fd, len, dir, syscall, c,
			    bpf_ktime_get_ns());
}

/* Before the first data record of connection c (tgid, fd): its addresses,
 * role, executable and this thread's name, once (SONDE_CONN_META), so that
 * data records need not carry them. now: not later than the data record's
 * time. Returns 0 when written. A record that cannot be written is not
 * retried: the daemon then reads the conns entry itself. Not inlined: the record stays off the
 * caller's stack. */
static __noinline int data_event__meta(void *ring, struct sonde_conn *c, __u32 tgid, __s32 fd,
				       __u64 now)
{
	struct sonde_conn_event ev;

	if (!ring || !c)
		return -1;
	c->flags |= SONDE_CONN_META;
	ev.hdr.op = SONDE_OP_CONN;
	ev.hdr.flags = 0;
	ev.hdr.pad = 0;
	ev.hdr.size = sizeof(ev);
	ev.hdr.ktime = now;
	ev.sk = c->sk;
	ev.tgid = tgid;
	ev.fd = fd;
	ev.role = c->role;
	__builtin_memset(ev.pad, 0, sizeof(ev.pad));
	ev.tuple = c->tuple;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	__builtin_memcpy(ev.exe, c->exe, sizeof(ev.exe));
	return bpf_ringbuf_output(ring, &ev, sizeof(ev), BPF_RB_NO_WAKEUP) ? -1 : 0;
}

/* After the payload copy: cap bytes of len made it into the record. */
static __always_inline void data_event__close(struct sonde_data_event *ev, __u64 cap, __u64 len)
{
	if (cap < len)
		ev->hdr.flags |= SONDE_F_TRUNCATED;
	ev->cap_len = cap;
	ev->hdr.size = sizeof(*ev) + cap;
}

/* A record of connection c could not be written (ring full): the next one
 * that is tells the daemon (SONDE_F_LOSS), so that requests waiting for
 * the lost bytes are counted lost, not failed. */
static __always_inline void data_event__lost(struct sonde_conn *c)
{
	c->flags |= SONDE_CONN_LOST;
}

/* Before writing a record of c: carries the loss mark if there is one.
 * Returns whether it did, for data_event__written. */
static __always_inline bool data_event__mark(struct sonde_event_hdr *hdr, const struct sonde_conn *c)
{
	if (!(c->flags & SONDE_CONN_LOST))
		return false;
	hdr->flags |= SONDE_F_LOSS;
	return true;
}

/* The marked record is in the ring: the mark is delivered. (Two CPUs may
 * both carry it; the daemon takes a second mark as a no-op.) */
static __always_inline void data_event__written(struct sonde_conn *c, bool marked)
{
	if (marked)
		c->flags &= ~SONDE_CONN_LOST;
}

#endif
