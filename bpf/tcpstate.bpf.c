// SPDX-License-Identifier: GPL-2.0
/* TCP health per process: connection lifecycle from inet_sock_set_state,
 * resets and retransmissions from the tcp tracepoints (all tp_btf: no
 * tracefs), aggregated per tgid in the kernel for the daemon to collect.
 * Softirq-time events are attributed through the socket's owner, learnt in
 * process context at connect(), listen() and accept(). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
#include "lib/fd_sock.h"
#include "lib/hist.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables, set by the loader before load. */
const volatile __u8 accept_by_state = 0;	/* 1: no accept() hooks (socket capture tier):
						 * passive opens are counted at SYN_RECV →
						 * ESTABLISHED for the listener's owner */
const volatile __u32 self_tgid = 0;	/* the agent's sockets are marked ignored */
const volatile __u32 filter_tgid = 0;	/* 0 = every process */
const volatile __u16 filter_port = 0;	/* 0 = every port; else local or remote port */

#define IPPROTO_TCP 6
#define ECONNREFUSED 111
#define ETIMEDOUT 110
#define EHOSTUNREACH 113
#define ENETUNREACH 101
#define EHOSTDOWN 112
#define ENETDOWN 100
#define ROLE_LISTENER 3

/* key: struct sock *; value: struct sonde_sk_owner.
 * Inserted in process context: CLOSE → SYN_SENT (inside connect()),
 * CLOSE → LISTEN (inside listen()), accept()/accept4() exit. Deleted at
 * the transition to CLOSE. LRU: a socket freed without reaching CLOSE
 * from a tracked state would otherwise stay forever. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, struct sonde_sk_owner);
} sk_owner SEC(".maps");

/* key: tgid (0 = socket of no known process); value: struct sonde_tcp_stats.
 * Inserted on a process's first counted event; deleted by the daemon when
 * it collects (lookup-and-delete), so only processes active since the last
 * scrape hold entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, __u32);
	__type(value, struct sonde_tcp_stats);
} tcp_stats SEC(".maps");

/* Owners of the sockets this CPU last moved to CLOSE. An abortive close
 * (SO_LINGER 0, unread data, tcp_disconnect()) sets CLOSE first and fires
 * tcp_send_reset only after the reset went out, when the owner entry is
 * gone; on loopback the peer's CLOSE runs in between, nested on the same
 * CPU, hence a few slots. key: 0; value: the last JUST_CLOSED sockets. */
#define JUST_CLOSED 4
struct just_closed {
	__u32 next;
	__u32 pad;
	struct {
		__u64 sk;
		struct sonde_sk_owner o;
	} e[JUST_CLOSED];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct just_closed);
} just_closed SEC(".maps");

/* Listening sockets by (network namespace, port), for passive opens seen
 * without accept(): a connection completing its handshake in softirq
 * context names no process, but its local port is its listener's.
 * key: struct listener_key; value: the listener's struct sock *. Inserted
 * at CLOSE → LISTEN (inside listen()), deleted at LISTEN → CLOSE. With
 * SO_REUSEPORT the last listener of a port is the one named. LRU: a
 * listener freed unseen ages out. */
struct listener_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listener_key);
	__type(value, __u64);
} listeners SEC(".maps");

static __always_inline struct listener_key listener_key_of(const struct sock *sk)
{
	struct listener_key k = {};

	k.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	k.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	return k;
}

/* All zeroes: the initial value of a tcp_stats entry (never written). */
const struct sonde_tcp_stats zero_stats = {};

static __always_inline bool skip_tgid(__u32 tgid)
{
	return tgid == self_tgid || (filter_tgid && tgid != filter_tgid);
}

static __always_inline bool port_selected(struct sock *sk)
{
	__u16 sport, dport;

	if (!filter_port)
		return true;
	sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	return sport == filter_port || dport == filter_port;
}

/* Stats of the owner's process, or of tgid 0 for a socket without owner
 * (unless filters are set: then only the selected process counts). */
static __always_inline struct sonde_tcp_stats *stats_of(const struct sonde_sk_owner *o)
{
	struct sonde_tcp_stats *st;
	__u32 tgid = 0;

	if (o) {
		if (o->flags & SONDE_OWNER_IGNORED)
			return NULL;
		tgid = o->tgid;
	} else if (filter_tgid || filter_port) {
		return NULL;
	}
	st = bpf_map_lookup_elem(&tcp_stats, &tgid);
	if (st)
		return st;
	/* The value is too big for the stack: insert zeroes, then name it. */
	bpf_map_update_elem(&tcp_stats, &tgid, &zero_stats, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&tcp_stats, &tgid);
	if (st && o)
		__builtin_memcpy(st->exe, o->exe, sizeof(st->exe));
	return st;
}

static __always_inline struct sonde_sk_owner *owner_of(const void *sk)
{
	__u64 key = (__u64)sk;

	return sk ? bpf_map_lookup_elem(&sk_owner, &key) : NULL;
}

/* Records the current process as the owner of sk (process context only). */
static __always_inline struct sonde_sk_owner *owner_set(struct sock *sk, __u8 role)
{
	__u64 id = bpf_get_current_pid_tgid(), key = (__u64)sk;
	struct sonde_sk_owner o = {}, *op;
	struct sonde_tcp_stats *st;

	o.tgid = id >> 32;
	o.role = role;
	if (skip_tgid(o.tgid) || !port_selected(sk))
		o.flags |= SONDE_OWNER_IGNORED;
	else
		fd_sock__exe(o.exe);
	if (role == SONDE_ROLE_CLIENT)
		o.syn_ns = bpf_ktime_get_ns();
	else if (role == ROLE_LISTENER)
		o.drops_seen = core__sk_drops(sk);
	if (bpf_map_update_elem(&sk_owner, &key, &o, BPF_ANY))
		return NULL;
	op = bpf_map_lookup_elem(&sk_owner, &key);
	/* In the process: its cgroup, for the daemon to name it by should it
	 * be gone before the next collection (short-lived clients). */
	if (op && (st = stats_of(op)))
		st->cgroup_id = bpf_get_current_cgroup_id();
	return op;
}

static __always_inline __u8 fail_reason(int err)
{
	switch (err) {
	case ECONNREFUSED: return SONDE_TCP_FAIL_REFUSED;
	case ETIMEDOUT: return SONDE_TCP_FAIL_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN: return SONDE_TCP_FAIL_UNREACHABLE;
	case 0: return SONDE_TCP_FAIL_ABORTED;
	default: return SONDE_TCP_FAIL_OTHER;
	}
}

/* Listener drops since last looked at, added to the owner's process. */
static __always_inline void listener_drops(struct sock *lsk, struct sonde_sk_owner *o)
{
	struct sonde_tcp_stats *st;
	__u64 drops;

	if (!o || o->role != ROLE_LISTENER)
		return;
	drops = core__sk_drops(lsk);
	if (drops <= o->drops_seen)
		return;
	st = stats_of(o);
	if (st)
		__sync_fetch_and_add(&st->listen_drops, drops - o->drops_seen);
	o->drops_seen = drops;
}

/* A passive open completed its handshake (socket capture tier: no accept()
 * hook). The connection belongs to its listener's owner; counted as
 * accepted now, and the listener's drops are looked at, as accept() does
 * in the syscall tier. */
static __always_inline void passive_open(struct sock *sk)
{
	struct listener_key lk = listener_key_of(sk);
	struct sonde_sk_owner o = {}, *lo, *co;
	struct sonde_tcp_stats *st;
	__u64 *lsk, key = (__u64)sk;

	lsk = bpf_map_lookup_elem(&listeners, &lk);
	lo = lsk ? owner_of((void *)*lsk) : NULL;
	if (!lo) {
		st = stats_of(NULL);
		if (st)
			__sync_fetch_and_add(&st->accepts, 1);
		return;
	}
	o.tgid = lo->tgid;
	o.role = SONDE_ROLE_SERVER;
	if (skip_tgid(o.tgid) || !port_selected(sk))
		o.flags |= SONDE_OWNER_IGNORED;
	__builtin_memcpy(o.exe, lo->exe, sizeof(o.exe));
	if (bpf_map_update_elem(&sk_owner, &key, &o, BPF_ANY))
		return;
	co = bpf_map_lookup_elem(&sk_owner, &key);
	st = stats_of(co);
	if (co && st) {
		__sync_fetch_and_add(&st->accepts, 1);
		__sync_fetch_and_add(&st->open_delta, 1);
		co->flags |= SONDE_OWNER_OPEN;
	}
	listener_drops((struct sock *)*lsk, lo);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcpstate_set_state, struct sock *sk, int oldstate, int newstate)
{
	struct sonde_tcp_stats *st;
	struct sonde_sk_owner *o;
	__u64 key = (__u64)sk;
	__u16 family;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != SONDE_AF_INET && family != SONDE_AF_INET6)
		return 0;

	if (newstate == TCP_SYN_SENT) {		/* in connect(): current owns sk */
		owner_set(sk, SONDE_ROLE_CLIENT);
		return 0;
	}
	if (newstate == TCP_LISTEN) {		/* in listen() */
		struct listener_key lk = listener_key_of(sk);

		owner_set(sk, ROLE_LISTENER);
		if (accept_by_state)
			bpf_map_update_elem(&listeners, &lk, &key, BPF_ANY);
		return 0;
	}
	if (accept_by_state && oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		passive_open(sk);
		return 0;
	}
	if (oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED) {
		o = owner_of(sk);
		st = stats_of(o);
		if (!st)
			return 0;
		__sync_fetch_and_add(&st->connects, 1);
		if (o) {
			__u64 d = bpf_ktime_get_ns() - o->syn_ns;

			__sync_fetch_and_add(&st->connect_sum_ns, d);
			hist__add(st->connect_hist, d, true);
			__sync_fetch_and_add(&st->open_delta, 1);
			o->flags |= SONDE_OWNER_OPEN;
		}
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	o = owner_of(sk);
	if (oldstate == TCP_SYN_SENT) {
		/* sk_err is set before tcp_done() moves the socket to CLOSE:
		 * tcp_reset() (ECONNREFUSED), tcp_write_err() (ETIMEDOUT, or
		 * the soft ICMP error), tcp_v4_err()/tcp_v6_err() (unreachable). */
		st = stats_of(o);
		if (st) {
			__u8 r = fail_reason(BPF_CORE_READ(sk, sk_err));

			if (r < SONDE_TCP_FAIL__MAX)
				__sync_fetch_and_add(&st->fails[r], 1);
		}
	} else if (oldstate == TCP_LISTEN) {
		listener_drops(sk, o);
		if (accept_by_state) {
			struct listener_key lk = listener_key_of(sk);
			__u64 *cur = bpf_map_lookup_elem(&listeners, &lk);

			if (cur && *cur == key)
				bpf_map_delete_elem(&listeners, &lk);
		}
	} else if (oldstate != TCP_SYN_RECV && oldstate != TCP_NEW_SYN_RECV &&
		   oldstate != TCP_CLOSE) {
		/* A connection that was established ends: one smoothed RTT
		 * sample (tcp_sock.srtt_us holds 8 × srtt in µs). */
		__u32 srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;

		st = stats_of(o);
		if (st && srtt) {
			__sync_fetch_and_add(&st->srtt_sum_us, srtt);
			hist__add(st->srtt_hist, (__u64)srtt * 1000, true);
		}
		if (st && o && (o->flags & SONDE_OWNER_OPEN))
			__sync_fetch_and_add(&st->open_delta, -1);
	}
	if (o) {
		__u32 zero = 0;
		struct just_closed *jc = bpf_map_lookup_elem(&just_closed, &zero);

		if (jc) {
			__u32 i = jc->next++ % JUST_CLOSED;

			jc->e[i].sk = key;
			jc->e[i].o = *o;
		}
		bpf_map_delete_elem(&sk_owner, &key);
	}
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcpstate_retransmit, const struct sock *sk)
{
	struct sonde_tcp_stats *st = stats_of(owner_of(sk));

	if (st)
		__sync_fetch_and_add(&st->retransmits, 1);
	return 0;
}

/* sk is NULL for a reset answering a segment no socket wants (e.g. a SYN
 * to a closed port), and a request or time-wait socket for some others:
 * those have no owner and count under tgid 0. An abortive close sends its
 * reset just after the socket went to CLOSE: just_closed still knows it. */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcpstate_send_reset, const struct sock *sk)
{
	struct sonde_sk_owner *o = owner_of(sk);
	struct sonde_tcp_stats *st;
	__u32 zero = 0;

	if (!o && sk) {
		struct just_closed *jc = bpf_map_lookup_elem(&just_closed, &zero);

		for (int i = 0; jc && i < JUST_CLOSED; i++)
			if (jc->e[i].sk == (__u64)sk) {
				o = &jc->e[i].o;
				break;
			}
	}
	st = stats_of(o);

	if (st)
		__sync_fetch_and_add(&st->resets_sent, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcpstate_receive_reset, struct sock *sk)
{
	struct sonde_tcp_stats *st = stats_of(owner_of(sk));

	if (st)
		__sync_fetch_and_add(&st->resets_received, 1);
	return 0;
}

/* accept() returns in the process that owns the new socket. The listening
 * fd (first argument, still in the saved user registers) is checked for
 * drops at the same time, so an overloaded server's drops show up when it
 * next accepts. */
static __always_inline int accept_exit(long ret)
{
	struct pt_regs *regs;
	struct sonde_tcp_stats *st;
	struct sonde_sk_owner *o;
	struct sock *sk, *lsk;
	bool is_tcp;
	int lfd;

	if (ret < 0)
		return 0;
	sk = fd_sock__lookup((int)ret, &is_tcp);
	if (!sk || !is_tcp)
		return 0;
	o = owner_set(sk, SONDE_ROLE_SERVER);
	st = stats_of(o);
	if (!o || !st)
		return 0;
	__sync_fetch_and_add(&st->accepts, 1);
	/* Already closed by the peer (reset while queued): no CLOSE transition
	 * will follow, so it is not counted as open. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_CLOSE) {
		__sync_fetch_and_add(&st->open_delta, 1);
		o->flags |= SONDE_OWNER_OPEN;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	lfd = (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
	lsk = fd_sock__lookup(lfd, &is_tcp);
	if (lsk && is_tcp)
		listener_drops(lsk, owner_of(lsk));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tcpstate_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tcpstate_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}
