// SPDX-License-Identifier: GPL-2.0
/* TLS tracer: uprobes on OpenSSL's SSL_read/SSL_write(_ex) report the
 * plaintext of each call as a data record on the socket the call used, so
 * the daemon parses HTTPS like HTTP. sched_process_exec tells the daemon
 * which new processes to look at for libraries to probe. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "sonde.h"
#include "sonde_tls.h"
/* sock.bpf.c's maps (lib/maps.bpf.h), fds shared by the loader. */
#define SONDE_MAP_RINGS
#define SONDE_MAP_CONNS
#define SONDE_MAP_SSL_CALLS
#include "lib/maps.bpf.h"
#include "lib/data_event.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables, set by the daemon before load. */
const volatile __u32 self_tgid = 0;
const volatile __u32 filter_tgid = 0;
const volatile __u32 capture_bytes = SONDE_CAPTURE_DEFAULT;

/* key: the SSL * in a process; value: the socket it was last bound to.
 * Inserted at the return of a bound call; lets a call that makes no
 * syscall (data already decrypted in OpenSSL's buffer) find its socket.
 * LRU: an SSL freed without notice ages out; entries of exited processes
 * are also removed by the daemon. */
struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};
struct ssl_sock {
	__u64 sk;
	__s32 fd;
	__u32 pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ssl_key);
	__type(value, struct ssl_sock);
} ssl_socks SEC(".maps");

/* One record under construction per CPU; data doubled for the mask (see sock.bpf.c). */
struct scratch {
	struct sonde_data_event ev;
	__u8 data[2 * SONDE_CAPTURE_MAX];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_TLS_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_counters SEC(".maps");

/* tgids of processes that just called execve: the daemon scans their maps. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} execs SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&tls_counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline bool skip_tgid(__u32 tgid)
{
	return tgid == self_tgid || (filter_tgid && tgid != filter_tgid);
}

static __always_inline int call_enter(__u64 ssl, __u64 buf, __u64 lenp, __u8 op)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call c = {};

	if (skip_tgid(id >> 32))
		return 0;
	/* SSL_connect runs SSL_do_handshake: keep the outer call's entry. */
	if (op == SSL_CALL_HANDSHAKE && bpf_map_lookup_elem(&ssl_calls, &id))
		return 0;
	c.ssl = ssl;
	c.buf = buf;
	c.lenp = lenp;
	c.enter_ns = bpf_ktime_get_ns();
	c.op = op;
	bpf_map_update_elem(&ssl_calls, &id, &c, BPF_ANY);
	return 0;
}

/* Bytes the call transferred: SSL_read/SSL_write return them (an int);
 * the _ex variants return 1 and store them through lenp. */
static __always_inline long call_bytes(const struct ssl_call *c, long rc)
{
	__u64 n = 0;

	if (!c->lenp)
		return (int)rc;
	if ((int)rc != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)c->lenp))
		return 0;
	return (long)n;
}

static __always_inline int call_exit(long rc, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, zero = 0;
	struct ssl_key k = {};
	struct ssl_sock ss = {};
	struct ssl_call *p, c;
	struct sonde_conn *conn;
	struct scratch *s;
	__u64 key, cap;
	bool marked;
	long n;
	void *ring;

	p = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!p) {
		if (!skip_tgid(tgid))
			count(SONDE_TLS_CNT_NO_ENTRY);
		return 0;
	}
	c = *p;
	bpf_map_delete_elem(&ssl_calls, &id);

	k.ssl = c.ssl;
	k.tgid = tgid;
	if (c.bound) {
		ss.sk = c.sk;
		ss.fd = c.fd;
		bpf_map_update_elem(&ssl_socks, &k, &ss, BPF_ANY);
	} else {
		struct ssl_sock *known = bpf_map_lookup_elem(&ssl_socks, &k);

		if (!known) {
			if (c.op != SSL_CALL_HANDSHAKE && call_bytes(&c, rc) > 0)
				count(SONDE_TLS_CNT_UNBOUND);
			return 0;
		}
		ss = *known;
	}
	if (c.op == SSL_CALL_HANDSHAKE)
		return 0;
	n = call_bytes(&c, rc);
	if (n <= 0)
		return 0;

	key = (__u64)tgid << 32 | (__u32)ss.fd;
	conn = bpf_map_lookup_elem(&conns, &key);
	if (!conn || conn->sk != ss.sk) {
		count(SONDE_TLS_CNT_NO_CONN);
		return 0;
	}
	if (!(conn->flags & SONDE_CONN_TLS))	/* filtered out by port */
		return 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	cap = capture_bytes;
	if ((__u64)n < cap)
		cap = n;
	if (cap > SONDE_CAPTURE_MAX)
		cap = SONDE_CAPTURE_MAX;
	barrier_var(cap);
	cap &= 2 * SONDE_CAPTURE_MAX - 1;

	/* syscall 0: not a syscall but a library call */
	data_event__fill(&s->ev, SONDE_F_TLS, c.enter_ns, ss.sk, id, ss.fd, n, dir, 0, conn);
	if (cap && bpf_probe_read_user(s->data, cap, (void *)c.buf)) {
		count(SONDE_TLS_CNT_READ_FAIL);
		cap = 0;
	}
	data_event__close(&s->ev, cap, n);
	marked = data_event__mark(&s->ev.hdr, conn);

	ring = bpf_map_lookup_elem(&rings, &(__u32){ bpf_get_smp_processor_id() });
	if (!ring || bpf_ringbuf_output(ring, s, sizeof(s->ev) + cap, BPF_RB_NO_WAKEUP)) {
		count(SONDE_TLS_CNT_RING_DROPS);
		data_event__lost(conn);
		return 0;
	}
	data_event__written(conn, marked);
	count(SONDE_TLS_CNT_EVENTS);
	return 0;
}

/* int SSL_write(SSL *ssl, const void *buf, int num): the plaintext is read
 * at return, when the syscall inside the call has named the socket (the
 * caller's buffer is unchanged until SSL_write returns). */
SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, const void *buf)
{
	return call_enter((__u64)ssl, (__u64)buf, 0, SSL_CALL_WRITE);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_exit, long rc)
{
	return call_exit(rc, SONDE_DIR_EGRESS);
}

/* int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written) */
SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return call_enter((__u64)ssl, (__u64)buf, (__u64)written, SSL_CALL_WRITE);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_write_ex_exit, long rc)
{
	return call_exit(rc, SONDE_DIR_EGRESS);
}

/* int SSL_read(SSL *ssl, void *buf, int num): buf is filled at return. */
SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf)
{
	return call_enter((__u64)ssl, (__u64)buf, 0, SSL_CALL_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_exit, long rc)
{
	return call_exit(rc, SONDE_DIR_INGRESS);
}

/* int SSL_read_ex(SSL *ssl, void *buf, size_t num, size_t *readbytes) */
SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return call_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, SSL_CALL_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_read_ex_exit, long rc)
{
	return call_exit(rc, SONDE_DIR_INGRESS);
}

/* SSL_do_handshake / SSL_connect / SSL_accept (SSL *s): the handshake's
 * syscalls bind the SSL to its socket and mark the connection TLS before
 * any ciphertext is captured. */
SEC("uprobe")
int BPF_KPROBE(ssl_handshake_enter, void *ssl)
{
	return call_enter((__u64)ssl, 0, 0, SSL_CALL_HANDSHAKE);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_handshake_exit, long rc)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *p = bpf_map_lookup_elem(&ssl_calls, &id);

	/* a handshake nested in another call leaves that call's entry alone */
	if (!p || p->op != SSL_CALL_HANDSHAKE)
		return 0;
	return call_exit(rc, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tls_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u32 *slot;

	if (skip_tgid(tgid))
		return 0;
	slot = bpf_ringbuf_reserve(&execs, sizeof(*slot), 0);
	if (!slot) {
		count(SONDE_TLS_CNT_EXEC_DROPS);
		return 0;
	}
	*slot = tgid;
	bpf_ringbuf_submit(slot, 0);
	return 0;
}
