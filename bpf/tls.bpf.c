// SPDX-License-Identifier: GPL-2.0
/* TLS tracer: uprobes on OpenSSL's SSL_read/SSL_write(_ex) report the
 * plaintext of each call as a data record on the socket the call used, so
 * the daemon parses HTTPS like HTTP. sched_process_exec tells the daemon
 * which new processes to look at for libraries to probe.
 *
 * An SSL learns its socket from the syscalls made inside its calls
 * (sock.bpf.c), or, for an SSL over a BIO pair (gRPC core), from the
 * ciphertext its network BIO is fed (BIO_new_bio_pair, SSL_set_bio and
 * BIO_write below; lib/membio.h). */
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
#define SONDE_MAP_MEMBIO
#include "lib/maps.bpf.h"
#include "lib/data_event.h"

char LICENSE[] SEC("license") = "GPL";

/* Tunables, set by the daemon before load. */
const volatile __u32 self_tgid = 0;
const volatile __u32 filter_tgid = 0;
const volatile __u32 capture_bytes = SONDE_CAPTURE_DEFAULT;
const volatile __u16 filter_port = 0;	/* 0 = every port; as sock.bpf.c's */

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

/* BIOs of BIO pairs (lib/membio.h). key: the BIO and its process; value:
 * the other end of its pair, and the SSL whose transport this end is (the
 * peer of the BIO an SSL reads and writes; 0 until SSL_set_bio names it).
 * Inserted at BIO_new_bio_pair's return (a new pair replaces whatever a
 * freed BIO at the same address left), the SSL set by SSL_set_bio. LRU;
 * entries of exited processes are removed by the daemon. */
struct bio_key {
	__u64 bio;
	__u32 tgid;
	__u32 pad;
};
struct bio_end {
	__u64 peer;
	__u64 ssl;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bio_key);
	__type(value, struct bio_end);
} membio_bios SEC(".maps");

/* BIO_new_bio_pair in progress: where it stores the two BIOs. key:
 * pid_tgid. */
struct pair_call {
	__u64 bio1_p;
	__u64 bio2_p;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct pair_call);
} pair_calls SEC(".maps");

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
	if (ring && !(conn->flags & SONDE_CONN_META) &&
	    data_event__meta(ring, conn, tgid, ss.fd, c.enter_ns))
		count(SONDE_TLS_CNT_RING_DROPS);
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

/* ---- SSLs over a BIO pair (lib/membio.h) ---- */

/* int BIO_new_bio_pair(BIO **bio1, size_t writebuf1, BIO **bio2, size_t writebuf2) */
SEC("uprobe")
int BPF_KPROBE(bio_pair_enter, void **bio1_p, __u64 w1, void **bio2_p)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pair_call pc = { .bio1_p = (__u64)bio1_p, .bio2_p = (__u64)bio2_p };

	if (skip_tgid(id >> 32))
		return 0;
	bpf_map_update_elem(&pair_calls, &id, &pc, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(bio_pair_exit, long rc)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct pair_call *p = bpf_map_lookup_elem(&pair_calls, &id);
	struct bio_key k1 = { .tgid = tgid }, k2 = { .tgid = tgid };
	struct bio_end e = {};
	__u8 one = 1;

	if (!p)
		return 0;
	if ((int)rc == 1 && !bpf_probe_read_user(&k1.bio, sizeof(k1.bio), (void *)p->bio1_p) &&
	    !bpf_probe_read_user(&k2.bio, sizeof(k2.bio), (void *)p->bio2_p) && k1.bio && k2.bio) {
		e.peer = k2.bio;
		bpf_map_update_elem(&membio_bios, &k1, &e, BPF_ANY);
		e.peer = k1.bio;
		bpf_map_update_elem(&membio_bios, &k2, &e, BPF_ANY);
		/* from now on sock.bpf.c notes this process's receives */
		bpf_map_update_elem(&membio_tgids, &tgid, &one, BPF_ANY);
	}
	bpf_map_delete_elem(&pair_calls, &id);
	return 0;
}

/* The pair's other end of bio becomes ssl's transport. */
static __always_inline void membio_attach(__u64 bio, __u32 tgid, __u64 ssl)
{
	struct bio_key k = { .bio = bio, .tgid = tgid };
	struct bio_end *e = bpf_map_lookup_elem(&membio_bios, &k);

	if (!e || !e->peer)
		return;
	k.bio = e->peer;
	e = bpf_map_lookup_elem(&membio_bios, &k);
	if (e)
		e->ssl = ssl;
}

/* void SSL_set_bio(SSL *s, BIO *rbio, BIO *wbio); SSL_set_fd calls it too.
 * A new transport: the SSL's binding (or that of a freed SSL at the same
 * address) no longer holds, whatever the BIOs are. */
SEC("uprobe")
int BPF_KPROBE(ssl_set_bio_enter, void *ssl, void *rbio, void *wbio)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ssl_key k = { .ssl = (__u64)ssl, .tgid = tgid };

	if (skip_tgid(tgid))
		return 0;
	bpf_map_delete_elem(&ssl_socks, &k);
	if (!bpf_map_lookup_elem(&membio_tgids, &tgid))
		return 0;
	membio_attach((__u64)rbio, tgid, (__u64)ssl);
	if (wbio != rbio)
		membio_attach((__u64)wbio, tgid, (__u64)ssl);
	return 0;
}

/* int BIO_write(BIO *b, const void *data, int dlen): ciphertext fed to the
 * network end of an unbound SSL's pair binds the SSL to the socket the
 * thread last received exactly these bytes from (lib/membio.h). OpenSSL's
 * own BIO_write calls (records to the SSL's end, or to a socket BIO) stop
 * at the first or second lookup. */
SEC("uprobe")
int BPF_KPROBE(bio_write_enter, void *bio, const void *data, int dlen)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct bio_key bk = { .bio = (__u64)bio, .tgid = tgid };
	struct ssl_key k = { .tgid = tgid };
	struct ssl_sock ss = {};
	struct membio_recv *r;
	struct bio_end *e;
	struct sonde_conn *conn;
	__u8 got[MEMBIO_HEAD] = {};
	__u32 n;
	__u64 key;

	if (dlen < MEMBIO_MIN || !bpf_map_lookup_elem(&membio_tgids, &tgid) || skip_tgid(tgid))
		return 0;
	e = bpf_map_lookup_elem(&membio_bios, &bk);
	if (!e || !e->ssl)
		return 0;
	k.ssl = e->ssl;
	if (bpf_map_lookup_elem(&ssl_socks, &k))
		return 0;	/* bound already */
	r = bpf_map_lookup_elem(&membio_recv, &id);
	if (!r) {
		count(SONDE_TLS_CNT_MEMBIO_NO_RECV);
		return 0;
	}
	/* compared: all MEMBIO_HEAD bytes when both sides have them, else the
	 * first MEMBIO_MIN (a receive that short was not noted) */
	n = r->len >= MEMBIO_HEAD && dlen >= MEMBIO_HEAD ? MEMBIO_HEAD : MEMBIO_MIN;
	if (bpf_probe_read_user(got, n, data)) {
		count(SONDE_TLS_CNT_MEMBIO_MISMATCH);
		return 0;
	}
	for (int i = 0; i < MEMBIO_HEAD; i++) {
		if (i < n && got[i] != r->head[i]) {
			count(SONDE_TLS_CNT_MEMBIO_MISMATCH);
			return 0;
		}
	}
	ss.sk = r->sk;
	ss.fd = r->fd;
	bpf_map_delete_elem(&membio_recv, &id);	/* one receive binds one SSL */
	bpf_map_update_elem(&ssl_socks, &k, &ss, BPF_ANY);
	count(SONDE_TLS_CNT_MEMBIO_BOUND);
	/* as sock.bpf.c's tls_bind_call: its ciphertext is no longer captured */
	key = (__u64)tgid << 32 | (__u32)ss.fd;
	conn = bpf_map_lookup_elem(&conns, &key);
	if (conn && conn->sk == ss.sk &&
	    (!filter_port || conn->tuple.sport == filter_port || conn->tuple.dport == filter_port))
		conn->flags |= SONDE_CONN_TLS;
	return 0;
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
