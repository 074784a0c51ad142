// SPDX-License-Identifier: GPL-2.0
/* Socket tracer: follows TCP sockets of every process and pushes payload
 * heads to a ring. Two capture tiers share everything past the hook (the
 * loader loads one set of programs, see user/probe/sock.c):
 *  - socket tier (Linux 6.3+): tp_btf/sock_send_length and sock_recv_length
 *    fire in sock_sendmsg/sock_recvmsg only, with the socket as argument;
 *    the buffer comes from the syscall's saved user registers. Lifecycle
 *    from inet_sock_set_state. No syscall tracepoint: other syscalls of
 *    the host keep their fast path.
 *  - syscall tier: sys_enter/sys_exit tracepoints of each I/O syscall,
 *    accept, connect and close. Every syscall of every task then takes the
 *    slow path (the tracepoint work flag is per task, set on all). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
/* Shared maps (lib/maps.bpf.h), created with this object (tcp_bytes with
 * tcp.bpf.c when that one loads). */
#define SONDE_MAP_RINGS
#define SONDE_MAP_CONNS
#define SONDE_MAP_SSL_CALLS
#define SONDE_MAP_THREAD_CTX
#define SONDE_MAP_TCP_BYTES
#define SONDE_MAP_MEMBIO
#include "lib/maps.bpf.h"
#include "lib/fd_sock.h"
#include "lib/tcp_bytes.h"
#include "lib/data_event.h"
#include "lib/event_hdr.h"
#include "lib/syscall_nr.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables, set by the loader before load. */
const volatile __u32 self_tgid = 0;		/* never trace the agent itself */
const volatile __u32 filter_tgid = 0;		/* 0 = every process */
const volatile __u16 filter_port = 0;		/* 0 = every port; else local or remote port */
const volatile __u32 capture_bytes = SONDE_CAPTURE_DEFAULT;
const volatile __u64 wakeup_bytes = 512 * 1024;	/* wake the reader past this fill level */
const volatile __u8 count_tcp_bytes = 1;	/* 0 when tcp.bpf.c counts bytes itself */
const volatile __u8 tls_bind = 0;		/* 1 when tls.bpf.c runs: bind SSL calls to sockets */
const volatile __u8 sock_tier = 0;		/* 1: the socket-tier programs are the ones loaded */

/* Set by the daemon while the preexisting map may hold entries; lets the
 * common exit path skip the register lookup entirely afterwards. */
volatile __u32 preexisting_live = 0;

#define EINPROGRESS 115
#define EPIPE 32
#define ENETUNREACH 101
#define ECONNABORTED 103
#define ECONNRESET 104
#define ETIMEDOUT 110
#define EHOSTUNREACH 113

/* This CPU's ring (lib/maps.bpf.h): sonde_data_event / sonde_close_event records. */
static __always_inline void *cpu_ring(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rings, &cpu);
}

/* key: tgid; value: unused. Processes that lost a record (ring full).
 * Inserted where a record of theirs cannot be written; deleted by
 * tp_process_exit, whose record then carries SONDE_F_LOSS: a close record
 * lost with the rest leaves the daemon no other sign. LRU: a process that
 * never exits must not pin an entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} lost_tgids SEC(".maps");

/* key: tgid; value: the cgroup id last reported for it (SONDE_OP_CGROUP).
 * A process reports its cgroup once, at its first connection, and again
 * only when it moved (or a new process under the tgid is elsewhere), so
 * that the daemon can name it after it is gone. LRU: an evicted entry only
 * reports again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} cgroup_sent SEC(".maps");

static __always_inline void lost_tgid__mark(__u32 tgid)
{
	__u8 one = 1;

	bpf_map_update_elem(&lost_tgids, &tgid, &one, BPF_ANY);
}

/* Syscall entry arguments of one thread, kept until its exit. */
struct sonde_args {
	__u64 enter_ns;
	__u64 buf;		/* buffer, iovec array or msghdr, by syscall */
	__u64 sk;
	__u64 file;
	__s32 fd;
	__u8 syscall;		/* enum sonde_syscall, 0 for connect */
	__u8 valid;		/* task-storage slot holds a pending syscall */
	__u8 pad[2];
};

/* key: pid_tgid (the thread); value: struct sonde_args.
 * Inserted at sys_enter_* for socket fds, deleted at the matching sys_exit_*.
 * A plain hash, not LRU: an LRU update takes a lock shared by all CPUs on
 * every syscall. A thread killed inside a syscall leaks its entry; the
 * daemon deletes entries of threads that no longer exist. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sonde_args);
} args SEC(".maps");

/* The same per-thread slot in task-local storage: no hashing and no lock,
 * freed with the task. Verified to load in tracepoint programs on 6.1 and
 * 6.18; kernels that refuse it (task storage is 5.11+) get the args hash:
 * the loader retries with args_in_task cleared, so the verifier drops the
 * unused branch. */
const volatile __u8 args_in_task = 1;
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sonde_args);
} args_task SEC(".maps");

static __always_inline void args_put(__u64 id, struct sonde_args *a)
{
	if (args_in_task) {
		struct sonde_args *slot = bpf_task_storage_get(&args_task, bpf_get_current_task_btf(),
							       0, BPF_LOCAL_STORAGE_GET_F_CREATE);

		if (slot) {
			a->valid = 1;
			*slot = *a;
		}
		return;
	}
	bpf_map_update_elem(&args, &id, a, BPF_ANY);
}

/* Moves the thread's pending syscall arguments into out; -1 when none. */
static __always_inline int args_take(__u64 id, struct sonde_args *out)
{
	struct sonde_args *slot;

	if (args_in_task) {
		slot = bpf_task_storage_get(&args_task, bpf_get_current_task_btf(), 0, 0);
		if (!slot || !slot->valid)
			return -1;
		*out = *slot;
		slot->valid = 0;
		return 0;
	}
	slot = bpf_map_lookup_elem(&args, &id);
	if (!slot)
		return -1;
	*out = *slot;
	bpf_map_delete_elem(&args, &id);
	return 0;
}

/* key: tgid << 32 | fd of a TCP socket that existed before the agent
 * attached; value unused. Inserted by the daemon from /proc right after
 * attach; deleted here on first use. A thread blocked in read(2) since before
 * attach has no sonde_args entry: its exit recovers fd and buffer from the
 * task's saved user registers instead, so the first request on an idle
 * keep-alive connection is not lost. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} preexisting SEC(".maps");

/* Per-CPU staging area for one data record (too big for the BPF stack).
 * data is twice the largest capture so that a mask (cap & (2 * MAX - 1)),
 * which every verifier understands, bounds the copy: Linux 6.1's verifier
 * loses the bound of a clamped length when the compiler passes an earlier
 * copy of the register to the helper ("R2 min value is negative"). */
struct scratch {
	/* A server read that starts a request sends tc, ev and the data as one
	 * ring sample (one reservation instead of two); user/probe/ring.c splits it. */
	struct sonde_trace_ctx_event tc;
	struct sonde_data_event ev;
	__u8 data[2 * SONDE_CAPTURE_MAX];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Trace context (lib/tracectx.h) scans the captured head in place. */
static __always_inline __u8 *tracectx_buf(void)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	return s ? s->data : NULL;
}
#define TRACECTX_BUF() tracectx_buf()
#include "lib/tracectx.h"
const volatile __u8 trace_ctx_on = 1;	/* 0 with --no-inject: nothing reads it then */

/* Index: enum sonde_counter; value: per-CPU count. Read by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n;
}

/* Index: enum sonde_unseen; value: per-CPU calls and bytes of socket I/O
 * whose payload could not be read. Read by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_UNSEEN__MAX);
	__type(key, __u32);
	__type(value, struct sonde_unseen_count);
} unseen SEC(".maps");

static __always_inline void unseen__add(__u32 why, long bytes)
{
	struct sonde_unseen_count *v = bpf_map_lookup_elem(&unseen, &why);

	if (v) {
		v->calls++;
		if (bytes > 0)
			v->bytes += bytes;
	}
}

/* Per-process TCP bytes in the socket and fentry tiers (count_tcp_bytes):
 * a call whose data record reaches the ring is counted by the daemon from
 * the record's length (user/conn/records.c); the kernel counts the others
 * here (a connection handed back, TLS ciphertext, no conns entry, a full
 * ring, no syscall to read from), so each byte is counted once and the
 * per-call tcp_bytes lookup is left to the calls without a record. */
static __always_inline void bytes_unrecorded(__u32 tgid, long ret, __u8 dir)
{
	if (count_tcp_bytes && sock_tier && ret > 0)
		tcp_bytes__add(tgid, ret, dir == SONDE_DIR_EGRESS);
}

/* What the socket tier keeps on a TCP socket (it sees no accept() or
 * connect() return and no close(2)): the role it was opened in, set by
 * inet_sock_set_state at CLOSE → SYN_SENT (connect) and SYN_RECV →
 * ESTABLISHED (a passive open), read when its I/O creates a conns entry;
 * and the conns key of its last I/O, so that its destruction ends that
 * entry. Freed with the socket. */
struct sk_info {
	__u64 conn_key;		/* tgid << 32 | fd; valid when tracked */
	__u8 role;		/* enum sonde_role */
	__u8 tracked;
	__u8 pad[6];
};
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_info);
} sk_role SEC(".maps");

static __always_inline __u64 id_key(__u32 tgid, int fd)
{
	return (__u64)tgid << 32 | (__u32)fd;
}

static __always_inline bool skip_tgid(__u32 tgid)
{
	return tgid == self_tgid || (filter_tgid && tgid != filter_tgid);
}

/* Looks up or (re)creates the tracked connection for (tgid, fd, sk). An entry
 * whose sk differs is a reused fd number: replaced; so is any entry when
 * replace is set (accept/connect returned that fd). role: of a new entry. */
static __always_inline struct sonde_conn *conn_open(__u32 tgid, int fd, struct sock *sk,
						    struct file *f, bool is_tcp, __u8 role,
						    bool replace)
{
	__u64 key = id_key(tgid, fd);
	struct sonde_conn *c = bpf_map_lookup_elem(&conns, &key);
	struct sonde_conn fresh = {};

	if (c && c->sk == (__u64)sk && !replace)
		return c;
	fresh.sk = (__u64)sk;
	fresh.file = (__u64)f;
	fd_sock__exe(fresh.exe);
	fresh.open_ns = bpf_ktime_get_ns();
	fresh.role = role;
	if (is_tcp) {
		fd_sock__tuple(sk, &fresh.tuple);
		if (filter_port && fresh.tuple.sport != filter_port &&
		    fresh.tuple.dport != filter_port)
			fresh.flags |= SONDE_CONN_IGNORED;
	} else {
		fresh.flags |= SONDE_CONN_IGNORED;
	}
	if (bpf_map_update_elem(&conns, &key, &fresh, BPF_ANY))
		return NULL;
	if (!(fresh.flags & SONDE_CONN_IGNORED))
		count(SONDE_CNT_CONN_NEW, 1);
	return bpf_map_lookup_elem(&conns, &key);
}

/* A call of a connection the daemon handed back is not reported. Should
 * the daemon take the connection back (user/conn/conn.c, a socket first
 * misjudged), its next record says bytes went unseen (SONDE_F_LOSS). */
static __always_inline void ignored_call(struct sonde_conn *c)
{
	if (!(c->flags & SONDE_CONN_LOST))
		c->flags |= SONDE_CONN_LOST;
}

/* The syscall tier: a role (accept, connect) replaces the entry. */
static __always_inline struct sonde_conn *conn_get(__u32 tgid, int fd, struct sock *sk,
						   struct file *f, bool is_tcp, __u8 role)
{
	return conn_open(tgid, fd, sk, f, is_tcp, role, role != SONDE_ROLE_UNKNOWN);
}

/* ---- TLS: a syscall made inside SSL_read/SSL_write names the SSL's socket ---- */

/* Records the socket in the thread's pending SSL call and marks the
 * connection TLS, so its ciphertext is not captured. Runs on every such
 * syscall: the mark comes back if the daemon overwrote the entry. */
static __always_inline void tls_bind_call(__u64 id, int fd, struct sock *sk, struct file *f,
					  struct sonde_conn *c, __u8 new_role)
{
	struct ssl_call *sc = bpf_map_lookup_elem(&ssl_calls, &id);

	if (!sc)
		return;
	if (!c || c->sk != (__u64)sk)
		c = conn_open(id >> 32, fd, sk, f, true, new_role, false);
	if (!c)
		return;
	sc->fd = fd;
	sc->sk = (__u64)sk;
	sc->bound = 1;
	if (!filter_port || c->tuple.sport == filter_port || c->tuple.dport == filter_port)
		c->flags |= SONDE_CONN_TLS;
}

/* A process with BIO pairs (gRPC core) received cap bytes (data) on sk:
 * the thread's last receive, for tls.bpf.c to bind an SSL by content
 * (lib/membio.h). */
static __always_inline void tls_note_recv(__u64 id, __u64 sk, int fd, const __u8 *data, __u64 cap)
{
	struct membio_recv *r;
	__u32 tgid = id >> 32;

	if (cap < MEMBIO_MIN || !bpf_map_lookup_elem(&membio_tgids, &tgid))
		return;
	r = bpf_map_lookup_elem(&membio_recv, &id);
	if (!r) {
		struct membio_recv fresh = {};

		if (bpf_map_update_elem(&membio_recv, &id, &fresh, BPF_ANY))
			return;
		r = bpf_map_lookup_elem(&membio_recv, &id);
		if (!r)
			return;
	}
	r->sk = sk;
	r->fd = fd;
	r->len = cap < MEMBIO_HEAD ? cap : MEMBIO_HEAD;
	__builtin_memcpy(r->head, data, MEMBIO_HEAD);
}

/* ---- entry side: remember arguments of syscalls on socket fds ---- */

static __always_inline int enter_io(int fd, __u64 buf, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_args a = {};
	struct sonde_conn *c;
	struct file *f;
	__u64 key;
	struct sock *sk;
	bool is_tcp;

	if (skip_tgid(id >> 32))
		return 0;
	f = fd_sock__file(fd);
	if (!f)
		return 0;
	/* Fast path: a tracked socket whose fd still holds the same file needs
	 * no walk to its sock. Connections known not to be HTTP (marked by the
	 * daemon) or filtered out stop here, before any args insert. */
	key = id_key(id >> 32, fd);
	c = bpf_map_lookup_elem(&conns, &key);
	if (c && c->file == (__u64)f) {
		if (tls_bind)
			tls_bind_call(id, fd, (struct sock *)c->sk, f, c, SONDE_ROLE_UNKNOWN);
		if (c->flags & SONDE_CONN_IGNORED) {
			ignored_call(c);
			return 0;
		}
		sk = (struct sock *)c->sk;
	} else {
		sk = fd_sock__from_file(f, &is_tcp);
		if (!sk || !is_tcp)
			return 0;
		if (tls_bind)
			tls_bind_call(id, fd, sk, f, NULL, SONDE_ROLE_UNKNOWN);
	}
	a.enter_ns = bpf_ktime_get_ns();
	a.buf = buf;
	a.sk = (__u64)sk;
	a.file = (__u64)f;
	a.fd = fd;
	a.syscall = sys;
	args_put(id, &a);
	return 0;
}

/* ---- exit side: capture payload and emit ---- */

struct iovec_user {
	__u64 base;
	__u64 len;
};

/* Iovecs of one vectored syscall gathered into the capture: nginx writes an
 * HTTP/2 frame header and its payload (and HTTP/1.x head and body) as
 * separate iovecs, and a parser that sees only the first loses the rest. */
#define IOV_GATHER 32

/* Where the payload of this syscall starts in user memory and how many bytes
 * of it are contiguous (the first iovec for vectored I/O); *iov_next: the
 * address of the second iovec, 0 for a plain buffer. */
static __always_inline int payload_span(const struct sonde_args *a, __u64 *base, __u64 *len,
					__u64 *iov_next)
{
	struct iovec_user iov = {};
	__u64 iov_ptr = a->buf;

	*iov_next = 0;
	switch (a->syscall) {
	case SONDE_SYS_SENDFILE:
	case SONDE_SYS_SPLICE:
	case SONDE_SYS_SENDMMSG:
	case SONDE_SYS_RECVMMSG:
		/* File contents, or a message of a vector we cannot tell: the
		 * parser only learns how many bytes went by. */
		*base = 0;
		*len = 0;
		return 0;
	case SONDE_SYS_READ:
	case SONDE_SYS_WRITE:
	case SONDE_SYS_RECVFROM:
	case SONDE_SYS_SENDTO:
		*base = a->buf;
		*len = ~0ULL;
		return 0;
	case SONDE_SYS_RECVMSG:
	case SONDE_SYS_SENDMSG: {
		struct user_msghdr mh = {};

		if (bpf_probe_read_user(&mh, sizeof(mh), (void *)a->buf))
			return -1;
		iov_ptr = (__u64)mh.msg_iov;
		break;
	}
	}
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)iov_ptr))
		return -1;
	*base = iov.base;
	*len = iov.len;
	*iov_next = iov_ptr + sizeof(iov);
	return 0;
}

/* Appends the iovecs after the first (at iov_next) to data[0..off) until
 * total bytes are captured. The syscall moved at least total bytes, so the
 * iovecs it used cover them: no iovec count is needed to stay in bounds. */
static __always_inline __u64 gather_iov(__u8 *data, __u64 iov_next, __u64 off, __u64 total)
{
	for (int i = 0; i < IOV_GATHER - 1; i++) {
		struct iovec_user iov = {};
		__u64 n;

		if (off >= total)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_next + i * sizeof(iov))))
			break;
		n = total - off;
		if (iov.len < n)
			n = iov.len;
		/* off < total <= SONDE_CAPTURE_MAX; n can only reach it from
		 * off 0 (empty first iovecs): give up there, rare */
		if (n > SONDE_CAPTURE_MAX - 1)
			break;
		barrier_var(off);
		off &= SONDE_CAPTURE_MAX - 1;
		barrier_var(n);
		n &= SONDE_CAPTURE_MAX - 1;
		if (n && bpf_probe_read_user(data + off, n, (void *)iov.base))
			break;
		off += n;
	}
	return off;
}

/* Rebuilds the entry arguments of a syscall that began before the agent
 * attached, for sockets listed in preexisting. */
static __always_inline int args_from_regs(__u64 id, __u8 sys, long ret, struct sonde_args *a)
{
	struct pt_regs *regs;
	struct file *f;
	struct sock *sk;
	bool is_tcp;
	__u64 key;
	int fd;

	if (!preexisting_live || ret <= 0 || skip_tgid(id >> 32))
		return -1;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	fd = (int)PT_REGS_PARM1_CORE_SYSCALL(regs);
	key = (id & 0xffffffff00000000ULL) | (__u32)fd;
	if (!bpf_map_lookup_elem(&preexisting, &key))
		return -1;
	bpf_map_delete_elem(&preexisting, &key);
	f = fd_sock__file(fd);
	sk = fd_sock__from_file(f, &is_tcp);
	if (!sk || !is_tcp)
		return -1;
	a->enter_ns = bpf_ktime_get_ns();
	a->buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
	a->sk = (__u64)sk;
	a->file = (__u64)f;
	a->fd = fd;
	a->syscall = sys;
	count(SONDE_CNT_ARGS_MISS, 1);
	return 0;
}

/* Errors after which nothing more will come on the connection. */
static __always_inline bool ends_conn(long ret)
{
	return ret == -ECONNRESET || ret == -EPIPE || ret == -ETIMEDOUT ||
	       ret == -ECONNABORTED || ret == -EHOSTUNREACH || ret == -ENETUNREACH;
}

/* A call that moved nothing and ends nothing: a failure such as EAGAIN,
 * or a send of 0 bytes (a read of 0 is the peer's end of stream). */
static __always_inline bool io_ends_nothing(long ret, __u8 dir)
{
	return ret == 0 ? dir != SONDE_DIR_INGRESS : !ends_conn(ret);
}

/* A read that returned 0, or a failure in ends_conn(), on a connection the
 * daemon may hold unanswered client requests for. Server sockets are left
 * out: every client hanging up would cost a record. */
static __always_inline void io_end(__u64 id, const struct sonde_args *a, long ret, __u8 dir)
{
	__u64 key = id_key(id >> 32, a->fd);
	struct sonde_io_end_event *ev;
	struct sonde_conn *c;
	void *ring;

	if (io_ends_nothing(ret, dir))
		return;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c || c->sk != a->sk || c->role == SONDE_ROLE_SERVER ||
	    (c->flags & SONDE_CONN_IGNORED))
		return;
	ring = cpu_ring();
	ev = ring ? bpf_ringbuf_reserve(ring, sizeof(*ev), 0) : NULL;
	if (!ev) {
		count(SONDE_CNT_RING_DROPS, 1);
		data_event__lost(c);
		lost_tgid__mark(id >> 32);
		return;
	}
	event_hdr__set(&ev->hdr, SONDE_OP_IO_END, 0, sizeof(*ev));
	data_event__written(c, data_event__mark(&ev->hdr, c));
	ev->sk = a->sk;
	ev->tgid = id >> 32;
	ev->tid = (__u32)id;
	ev->fd = a->fd;
	ev->err = (__s32)-ret;
	ev->dir = dir;
	ev->syscall = a->syscall;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	count(SONDE_CNT_EVENTS, 1);
}

/* Why the payload of a call of this kind cannot be read, or -1. */
static __always_inline int unseen_reason(__u8 sys)
{
	switch (sys) {
	case SONDE_SYS_SENDFILE: return SONDE_UNSEEN_SENDFILE;
	case SONDE_SYS_SPLICE: return SONDE_UNSEEN_SPLICE;
	case SONDE_SYS_SENDMMSG:
	case SONDE_SYS_RECVMMSG: return SONDE_UNSEEN_MMSG;
	default: return -1;
	}
}

/* Everything after the hook, shared by both tiers: the call a (socket, fd,
 * buffer) moved ret bytes (or failed); new_role is the role of a
 * connection this call starts tracking. */
/* The first record of a connection: its process's cgroup goes ahead of
 * it (earlier timestamp, same ring), unless already reported. Not inlined:
 * its record stays off capture()'s stack. */
static __noinline void cgroup_report(__u32 tgid)
{
	__u64 cgid = bpf_get_current_cgroup_id(), *last;
	struct sonde_cgroup_event ev;
	void *ring;

	last = bpf_map_lookup_elem(&cgroup_sent, &tgid);
	if (last && *last == cgid)
		return;
	ring = cpu_ring();
	if (!ring)
		return;
	event_hdr__set(&ev.hdr, SONDE_OP_CGROUP, 0, sizeof(ev));
	ev.cgroup_id = cgid;
	ev.tgid = tgid;
	ev.pad = 0;
	if (bpf_ringbuf_output(ring, &ev, sizeof(ev), BPF_RB_NO_WAKEUP)) {
		count(SONDE_CNT_RING_DROPS, 1);
		return;
	}
	count(SONDE_CNT_EVENTS, 1);
	bpf_map_update_elem(&cgroup_sent, &tgid, &cgid, BPF_ANY);
}

/* Whether to wake the reader: past the ring's fill level, looked at on
 * every 16th record of this CPU only (bpf_ringbuf_query costs ~25 ns, and
 * 16 records more are far below the level). */
static __always_inline __u64 wakeup_flag(void *ring)
{
	__u32 idx = SONDE_CNT_EVENTS;
	__u64 *n = bpf_map_lookup_elem(&counters, &idx);

	if (n && (*n & 15))
		return BPF_RB_NO_WAKEUP;
	return bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
			BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* c: the connection's conns entry if the caller already looked it up and
 * it is this socket's, else NULL. */
static __always_inline int capture(__u64 id, struct sonde_args a, long ret, __u8 dir,
				   __u8 new_role, bool at_end, struct sonde_conn *c)
{
	__u32 tgid = id >> 32, zero = 0;
	__u64 cap;
	struct scratch *s;
	__u64 base = 0, span = 0, iov_next = 0, total;
	long err;
	int why;

	if (ret <= 0) {
		io_end(id, &a, ret, dir);
		return 0;
	}

	if (!c)
		c = conn_open(tgid, a.fd, (struct sock *)a.sk, (struct file *)a.file, true,
			      new_role, false);
	if (!c) {
		bytes_unrecorded(tgid, ret, dir);
		return 0;
	}
	if (c->flags & SONDE_CONN_IGNORED) {
		ignored_call(c);
		bytes_unrecorded(tgid, ret, dir);
		return 0;
	}
	if (!(c->flags & SONDE_CONN_CGROUP)) {
		c->flags |= SONDE_CONN_CGROUP;
		cgroup_report(tgid);
	}
	if (!(c->flags & SONDE_CONN_META))
		count(data_event__meta(cpu_ring(), c, tgid, a.fd, a.enter_ns) ?
			      SONDE_CNT_RING_DROPS : SONDE_CNT_EVENTS, 1);
	why = unseen_reason(a.syscall);
	if (why >= 0)
		unseen__add(why, ret);

	/* Only when tcp.bpf.c could not attach (it sees sendfile too); the
	 * socket tier counts every TCP call before this. */
	if (count_tcp_bytes && !sock_tier)
		tcp_bytes__add(tgid, ret, dir == SONDE_DIR_EGRESS);
	/* Ciphertext: tls.bpf.c reports the plaintext of this connection. */
	if (c->flags & SONDE_CONN_TLS) {
		bytes_unrecorded(tgid, ret, dir);
		return 0;
	}

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s) {
		bytes_unrecorded(tgid, ret, dir);
		return 0;
	}
	if (payload_span(&a, &base, &span, &iov_next))
		span = 0;

	cap = capture_bytes;
	if ((__u64)ret < cap)
		cap = ret;
	total = cap > SONDE_CAPTURE_MAX ? SONDE_CAPTURE_MAX : cap;
	if (span < cap)
		cap = span;
	if (cap > SONDE_CAPTURE_MAX)
		cap = SONDE_CAPTURE_MAX;
	/* A no-op the compiler must not drop (barrier_var hides the range it
	 * knows), so the register passed to the helper carries the mask. */
	barrier_var(cap);
	cap &= 2 * SONDE_CAPTURE_MAX - 1;

	/* at_end: enter_ns was read at the call's end (socket tier), so it
	 * is also the record's time: one clock read, not two. */
	data_event__fill_at(&s->ev, 0, a.enter_ns, a.sk, id, a.fd, ret, dir, a.syscall, c,
			    at_end ? a.enter_ns : bpf_ktime_get_ns());

	err = cap ? bpf_probe_read_user(s->data, cap, (void *)base) : 0;
	if (err) {
		count(SONDE_CNT_READ_FAIL, 1);
		cap = 0;
	} else if (iov_next && cap < total) {
		cap = gather_iov(s->data, iov_next, cap, total);
	}
	data_event__close(&s->ev, cap, ret);
	if (tls_bind && dir == SONDE_DIR_INGRESS)
		tls_note_recv(id, a.sk, a.fd, s->data, cap);

	/* Batched wakeups: waking the reader costs ~1.4 µs on this CPU, so only
	 * do it past a fill level; the daemon also drains on a short timer. */
	void *ring = cpu_ring();
	bool with_tc = false, marked;
	__u64 flags, n;
	void *start;

	if (!ring) {
		count(SONDE_CNT_RING_DROPS, 1);
		data_event__lost(c);
		lost_tgid__mark(tgid);
		bytes_unrecorded(tgid, ret, dir);
		return 0;
	}
	marked = data_event__mark(&s->ev.hdr, c);
	/* Ahead of the data record in the same sample: the daemon must meet
	 * the ids first. */
	if (trace_ctx_on && c->role == SONDE_ROLE_SERVER)
		with_tc = tracectx__server_io(&s->tc, &s->ev, c, cap, id);
	flags = wakeup_flag(ring);
	start = &s->ev;
	n = sizeof(s->ev) + cap;
	if (with_tc) {
		start = &s->tc;
		n += sizeof(s->tc);
	}
	/* n <= 208 + SONDE_CAPTURE_MAX, so the mask never changes it; it is
	 * there for Linux 6.1's verifier, which loses the bound of the sum. */
	barrier_var(n);
	n &= 2 * SONDE_CAPTURE_MAX - 1;
	err = bpf_ringbuf_output(ring, start, n, flags);
	if (err) {
		count(SONDE_CNT_RING_DROPS, 1);
		data_event__lost(c);
		lost_tgid__mark(tgid);
		bytes_unrecorded(tgid, ret, dir);
	} else {
		count(SONDE_CNT_EVENTS, 1);
		data_event__written(c, marked);
	}
	return 0;
}

static __always_inline int exit_io(long ret, __u8 dir, __u8 sys)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_args a = {};

	if (args_take(id, &a) && args_from_regs(id, sys, ret, &a))
		return 0;
	return capture(id, a, ret, dir, SONDE_ROLE_UNKNOWN, false, NULL);
}

#define ENTER_IO(name, sys)                                                      \
	SEC("tracepoint/syscalls/sys_enter_" #name)                             \
	int tp_enter_##name(struct trace_event_raw_sys_enter *ctx)               \
	{                                                                        \
		return enter_io((int)ctx->args[0], ctx->args[1], sys);           \
	}
#define EXIT_IO(name, dir, sys)                                                  \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int tp_exit_##name(struct trace_event_raw_sys_exit *ctx)                 \
	{                                                                        \
		return exit_io(ctx->ret, dir, sys);                              \
	}

ENTER_IO(read, SONDE_SYS_READ)
EXIT_IO(read, SONDE_DIR_INGRESS, SONDE_SYS_READ)
ENTER_IO(readv, SONDE_SYS_READV)
EXIT_IO(readv, SONDE_DIR_INGRESS, SONDE_SYS_READV)
/* A MSG_PEEK receive is read again by the next one: not captured (nor
 * counted), as in the socket tier. flags: recvfrom's 4th, recvmsg's 3rd. */
#define SONDE_MSG_PEEK 0x2
#define ENTER_RECV(name, sys, flags_arg)                                         \
	SEC("tracepoint/syscalls/sys_enter_" #name)                             \
	int tp_enter_##name(struct trace_event_raw_sys_enter *ctx)               \
	{                                                                        \
		if (ctx->args[flags_arg] & SONDE_MSG_PEEK)                       \
			return 0;                                                \
		return enter_io((int)ctx->args[0], ctx->args[1], sys);           \
	}
ENTER_RECV(recvfrom, SONDE_SYS_RECVFROM, 3)
EXIT_IO(recvfrom, SONDE_DIR_INGRESS, SONDE_SYS_RECVFROM)
ENTER_RECV(recvmsg, SONDE_SYS_RECVMSG, 2)
EXIT_IO(recvmsg, SONDE_DIR_INGRESS, SONDE_SYS_RECVMSG)
ENTER_IO(write, SONDE_SYS_WRITE)
EXIT_IO(write, SONDE_DIR_EGRESS, SONDE_SYS_WRITE)
ENTER_IO(writev, SONDE_SYS_WRITEV)
EXIT_IO(writev, SONDE_DIR_EGRESS, SONDE_SYS_WRITEV)
ENTER_IO(sendto, SONDE_SYS_SENDTO)
EXIT_IO(sendto, SONDE_DIR_EGRESS, SONDE_SYS_SENDTO)
ENTER_IO(sendmsg, SONDE_SYS_SENDMSG)
EXIT_IO(sendmsg, SONDE_DIR_EGRESS, SONDE_SYS_SENDMSG)
/* nginx sends static bodies with sendfile: without it the byte stream of a
 * response would have holes and the parser would lose framing. */
ENTER_IO(sendfile64, SONDE_SYS_SENDFILE)
EXIT_IO(sendfile64, SONDE_DIR_EGRESS, SONDE_SYS_SENDFILE)

/* ---- connection lifecycle ---- */

static __always_inline int exit_accept(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct file *f;
	struct sock *sk;
	bool is_tcp;

	if (ret < 0 || skip_tgid(id >> 32))
		return 0;
	f = fd_sock__file((int)ret);
	sk = fd_sock__from_file(f, &is_tcp);
	if (sk && is_tcp)
		conn_get(id >> 32, (int)ret, sk, f, true, SONDE_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return exit_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return exit_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int tp_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_args a = {};

	if (skip_tgid(id >> 32))
		return 0;
	a.fd = (int)ctx->args[0];
	a.enter_ns = bpf_ktime_get_ns();
	args_put(id, &a);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int tp_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sonde_args a = {};
	struct file *f;
	struct sock *sk;
	bool is_tcp;
	int fd;

	if (args_take(id, &a))
		return 0;
	fd = a.fd;
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	f = fd_sock__file(fd);
	sk = fd_sock__from_file(f, &is_tcp);
	if (sk && is_tcp)
		conn_get(id >> 32, fd, sk, f, true, SONDE_ROLE_CLIENT);
	return 0;
}

/* Tells the daemon the connection c of (tgid, fd) is over; its entry is
 * deleted by the caller. */
static __always_inline void close_event(struct sonde_conn *c, __u32 tgid, int fd)
{
	struct sonde_close_event *ev;
	void *ring;

	if (c->flags & SONDE_CONN_IGNORED)
		return;
	ring = cpu_ring();
	ev = ring ? bpf_ringbuf_reserve(ring, sizeof(*ev), 0) : NULL;
	if (!ev) {
		count(SONDE_CNT_RING_DROPS, 1);
		lost_tgid__mark(tgid);
		return;
	}
	event_hdr__set(&ev->hdr, SONDE_OP_CLOSE, 0, sizeof(*ev));
	data_event__mark(&ev->hdr, c);	/* the entry goes with the close */
	ev->sk = c->sk;
	ev->tgid = tgid;
	ev->fd = fd;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	count(SONDE_CNT_EVENTS, 1);
}

/* close(2) of a tracked socket. The connection ends only when this was the
 * last open reference to the file: a socket dup()ed onto stdin and stdout
 * (inetd-style servers) or shared with a forked child lives on. */
SEC("tracepoint/syscalls/sys_enter_close")
int tp_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	int fd = (int)ctx->args[0];
	__u64 key = id_key(tgid, fd);
	struct sonde_conn *c;
	struct file *f;

	if (skip_tgid(tgid))
		return 0;
	if (preexisting_live)
		bpf_map_delete_elem(&preexisting, &key);
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	f = fd_sock__file(fd);
	if (!f || core__file_refs(f) <= 1)
		close_event(c, tgid, fd);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* A process whose last thread exits closes its sockets without close(2):
 * tell the daemon, so that responses it was still reading (a client that
 * exits right after an error status, say) are reported and its
 * connections forgotten. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_process_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct sonde_exit_event *ev;
	void *ring;

	if (skip_tgid(tgid) || BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	ring = cpu_ring();
	ev = ring ? bpf_ringbuf_reserve(ring, sizeof(*ev), 0) : NULL;
	if (!ev) {
		count(SONDE_CNT_RING_DROPS, 1);
		return 0;
	}
	event_hdr__set(&ev->hdr, SONDE_OP_EXIT, 0, sizeof(*ev));
	if (bpf_map_lookup_elem(&lost_tgids, &tgid)) {
		ev->hdr.flags |= SONDE_F_LOSS;
		bpf_map_delete_elem(&lost_tgids, &tgid);
	}
	ev->tgid = tgid;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	count(SONDE_CNT_EVENTS, 1);
	return 0;
}

/* ---- socket tier (Linux 6.3+): no syscall tracepoint at all ---- */

#define IPPROTO_TCP 6
#define MSG_PEEK 0x2
#define MSG_ERRQUEUE 0x2000

/* The kind of the syscall numbered nr for a socket call in direction dir,
 * and which of its arguments is the socket's fd; 0 when sonde cannot find
 * the buffer from its arguments (another syscall: io_uring_enter, ...). */
static __always_inline __u8 sock_tier__syscall(long nr, __u8 dir, int *fd_arg)
{
	*fd_arg = 0;
	if (dir == SONDE_DIR_EGRESS) {
		switch (nr) {
		case SONDE_NR_WRITE: return SONDE_SYS_WRITE;
		case SONDE_NR_WRITEV: return SONDE_SYS_WRITEV;
		case SONDE_NR_SENDTO: return SONDE_SYS_SENDTO;
		case SONDE_NR_SENDMSG: return SONDE_SYS_SENDMSG;
		case SONDE_NR_SENDMMSG: return SONDE_SYS_SENDMMSG;
		case SONDE_NR_SENDFILE: return SONDE_SYS_SENDFILE;	/* out_fd */
		case SONDE_NR_SPLICE: *fd_arg = 2; return SONDE_SYS_SPLICE;	/* fd_out */
		}
		return 0;
	}
	switch (nr) {
	case SONDE_NR_READ: return SONDE_SYS_READ;
	case SONDE_NR_READV: return SONDE_SYS_READV;
	case SONDE_NR_RECVFROM: return SONDE_SYS_RECVFROM;
	case SONDE_NR_RECVMSG: return SONDE_SYS_RECVMSG;
	case SONDE_NR_RECVMMSG: return SONDE_SYS_RECVMMSG;
	case SONDE_NR_SENDFILE: *fd_arg = 1; return SONDE_SYS_SENDFILE;	/* in_fd */
	case SONDE_NR_SPLICE: return SONDE_SYS_SPLICE;			/* fd_in */
	}
	return 0;
}

/* A socket call returned ret (bytes, or -errno). The hook runs after the
 * protocol's sendmsg/recvmsg, so a received payload is already in the
 * caller's buffer. regs_cast: the calling program loads only on kernels
 * with bpf_rdonly_cast (the tracepoint tier, Linux >= 6.3), so it reads
 * the registers through task_regs(); the fentry tier also runs on 6.1. */
static __always_inline int sock_io(struct sock *sk, int ret, int flags, __u8 dir,
				   bool regs_cast)
{
	struct task_struct *task;
	struct sonde_args a = {};
	struct sonde_conn *c;
	struct pt_regs *regs;
	struct sk_info *info;
	__u8 new_role = SONDE_ROLE_UNKNOWN;
	__u64 id, key;
	__u16 family;
	int fd_arg;

	/* Unix and UDP sockets come through here too: the socket is looked
	 * at before anything of the task. */
	if (!sk)
		return 0;
	family = sk->__sk_common.skc_family;
	if (sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SONDE_SOCK_STREAM ||
	    (family != SONDE_AF_INET && family != SONDE_AF_INET6))
		return 0;
	/* A peek is read again; the error queue holds no stream bytes. */
	if (dir == SONDE_DIR_INGRESS && (flags & (MSG_PEEK | MSG_ERRQUEUE)))
		return 0;
	/* EAGAIN and the like (a third of nginx's reads under load) end
	 * nothing and move nothing: no record, nothing to look up. */
	if (ret <= 0 && io_ends_nothing(ret, dir))
		return 0;
	/* bpf_get_current_pid_tgid() from the task pointer needed anyway */
	task = bpf_get_current_task_btf();
	id = (__u64)task->tgid << 32 | (__u32)task->pid;
	if (skip_tgid(id >> 32))
		return 0;
	/* Kernel threads and io_uring workers have no syscall of their own. */
	if (task->flags & (SONDE_PF_KTHREAD | SONDE_PF_IO_WORKER))
		goto unseen;
	regs = regs_cast ? task_regs(task) : (struct pt_regs *)bpf_task_pt_regs(task);
	a.syscall = sock_tier__syscall(syscall_nr__of(regs), dir, &fd_arg);
	if (!a.syscall)
		goto unseen;
	if (fd_arg == 0)
		a.fd = (int)syscall_arg1(regs);
	else if (fd_arg == 1)
		a.fd = (int)syscall_arg2(regs);
	else
		a.fd = (int)syscall_arg3(regs);
	a.buf = syscall_arg2(regs);
	a.sk = (__u64)sk;
	/* The call's end, not its entry: no hook sees the entry here. */
	a.enter_ns = bpf_ktime_get_ns();
	/* A connection already tracked with this socket needs nothing from
	 * the socket's storage: its role is in the entry, and the storage
	 * already names the entry (set when the entry was made). */
	key = id_key(id >> 32, a.fd);
	c = bpf_map_lookup_elem(&conns, &key);
	if (c && c->sk != (__u64)sk)
		c = NULL;
	if (!c) {
		info = bpf_sk_storage_get(&sk_role, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (info) {
			new_role = info->role;
			info->conn_key = key;
			info->tracked = 1;
		}
	}
	if (tls_bind)
		tls_bind_call(id, a.fd, sk, NULL, c, new_role);
	return capture(id, a, ret, dir, new_role, true, c);
unseen:
	/* io_uring, a kernel socket user, or a syscall whose buffer is not
	 * in its arguments: bytes counted, nothing guessed. */
	if (ret > 0)
		unseen__add(SONDE_UNSEEN_NO_SYSCALL, ret);
	bytes_unrecorded(id >> 32, ret, dir);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	return sock_io(sk, ret, flags, SONDE_DIR_EGRESS, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	return sock_io(sk, ret, flags, SONDE_DIR_INGRESS, true);
}

/* Lifecycle for the socket tier. The role is learnt at the handshake; a
 * connection ends when close(2) of its last reference moves it out of
 * ESTABLISHED/CLOSE_WAIT (tcp_close runs inside that close(2), so the
 * saved registers name the fd), or else when the socket is destroyed
 * (sock_destroy below): one already in CLOSE (reset, or shut down and
 * acknowledged before close(2)) makes no transition there. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(sock_state, const struct sock *sk, int oldstate, int newstate)
{
	struct task_struct *task;
	struct sonde_conn *c;
	struct sk_info *info;
	struct pt_regs *regs;
	__u64 id, key;
	int fd;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_SYN_SENT || (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)) {
		info = bpf_sk_storage_get(&sk_role, (struct sock *)sk, 0,
					  BPF_SK_STORAGE_GET_F_CREATE);
		if (info)
			info->role = newstate == TCP_SYN_SENT ? SONDE_ROLE_CLIENT : SONDE_ROLE_SERVER;
		return 0;
	}
	if (newstate != TCP_FIN_WAIT1 && newstate != TCP_LAST_ACK && newstate != TCP_CLOSE)
		return 0;
	task = bpf_get_current_task_btf();
	if (task->flags & SONDE_PF_KTHREAD)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (syscall_nr__of(regs) != SONDE_NR_CLOSE)
		return 0;
	/* Softirq work may run on top of another task's close(2): the
	 * socket must be the one that task's fd is tracked with. */
	id = bpf_get_current_pid_tgid();
	if (skip_tgid(id >> 32))
		return 0;
	fd = (int)syscall_arg1(regs);
	key = id_key(id >> 32, fd);
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c || c->sk != (__u64)sk)
		return 0;
	close_event(c, id >> 32, fd);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* The socket is freed: no fd refers to it any more. Ends the conns entry
 * of its last I/O if close(2) did not (the daemon keys connections by
 * (tgid, sk), and the address comes back for a new socket). */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(sock_destroy, struct sock *sk)
{
	struct sk_info *info = bpf_sk_storage_get(&sk_role, sk, 0, 0);
	struct sonde_conn *c;
	__u64 key;

	if (!info || !info->tracked)
		return 0;
	key = info->conn_key;
	info->tracked = 0;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c || c->sk != (__u64)sk)
		return 0;
	close_event(c, key >> 32, (int)key);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* ---- fentry tier: kernels with BTF trampolines but without the socket
 * tracepoints (5.17–6.2). Same work as the socket tier, at the TCP
 * protocol's send and receive functions: they are reached through the
 * socket's ops from net/socket.c, so never inlined into it, as
 * sock_sendmsg/sock_recvmsg may be. Loaded only in that tier. ---- */

/* tcp_sendmsg(sk, msg, size); tcp_recvmsg(sk, msg, len, [nonblock,] flags,
 * addr_len): flags is the second-to-last argument either way (5.19 removed
 * nonblock, lib/core_fixes.bpf.h). */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(cap_tcp_sendmsg, struct sock *sk)
{
	return sock_io(sk, core__fexit_int_ret(ctx), 0, SONDE_DIR_EGRESS, false);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(cap_tcp_recvmsg, struct sock *sk)
{
	__u64 flags = 0, n = bpf_get_func_arg_cnt(ctx);

	if (n >= 2)
		bpf_get_func_arg(ctx, (__u32)(n - 2), &flags);
	return sock_io(sk, core__fexit_int_ret(ctx), (int)flags, SONDE_DIR_INGRESS, false);
}

/* Sockets in inject.bpf.c's sockhash send through tcp_bpf_sendmsg. */
SEC("fexit/tcp_bpf_sendmsg")
int BPF_PROG(cap_tcp_bpf_sendmsg, struct sock *sk)
{
	return sock_io(sk, core__fexit_int_ret(ctx), 0, SONDE_DIR_EGRESS, false);
}

/* sendfile and splice to TCP before Linux 6.5 (see tcp.bpf.c). */
SEC("fexit/tcp_sendpage")
int BPF_PROG(cap_tcp_sendpage, struct sock *sk)
{
	return sock_io(sk, core__fexit_int_ret(ctx), 0, SONDE_DIR_EGRESS, false);
}
