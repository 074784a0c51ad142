// SPDX-License-Identifier: GPL-2.0
/* traceparent injection: sockops puts client sockets towards HTTP ports into
 * a sockhash; sk_msg inserts the header after the request line of every send
 * that carries one whole request head without a traceparent of its own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sonde.h"
/* sock.bpf.c's maps (lib/maps.bpf.h), fds shared by the loader. */
#define SONDE_MAP_RINGS
#define SONDE_MAP_THREAD_CTX
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SK_PASS 1
#define INJECT_LEN 70		/* "traceparent: " + 55 + CRLF */
#define INJECT_MAX_SEND 8192	/* sends made linear after the insert */

const volatile __u32 self_tgid = 0;
const volatile __u32 filter_tgid = 0;	/* --pid: only this process's requests */
/* Set by the daemon (off with --no-inject-learn): outbound connections of
 * HTTP-speaking processes are considered, not only those to http_ports. */
volatile __u32 proc_rule = 0;
/* The kernel lets sockops read the current task (6.18 here; Debian's 6.1
 * refuses bpf_get_current_pid_tgid there): without it, no process rule.
 * Set by the loader from libbpf_probe_bpf_helper; the other branch is dead
 * code the verifier never checks. */
const volatile __u32 sockops_has_pid = 0;

/* Per-CPU copy of the head of the send being looked at (lib/tracectx.h
 * scans it; sk_msg data cannot be handed to a bpf_loop callback). */
struct inj_buf {
	__u8 data[1024 + 64];
	__u8 hdr[INJECT_LEN + 2];	/* the header line being built (8-byte aligned) */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inj_buf);
} inj_scratch SEC(".maps");

static __always_inline __u8 *inject_buf(void)
{
	__u32 zero = 0;
	struct inj_buf *b = bpf_map_lookup_elem(&inj_scratch, &zero);

	return b ? b->data : NULL;
}
#define TRACECTX_BUF() inject_buf()
#include "lib/tracectx.h"

/* key: remote port (host order); value unused. Filled by the daemon from
 * --inject-port and from ports its client connections were seen to speak
 * HTTP/1.x to. Only connections to these ports pay the sk_msg path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} http_ports SEC(".maps");

/* key: tgid; value unused. Processes seen serving or sending HTTP/1.x in
 * plaintext (the daemon inserts them, deletes them when they exit; LRU for
 * the rest): all of their new outbound connections are considered for
 * injection, except those to not_http_ports, so that the first request to
 * a server never seen before is injected too. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} http_procs SEC(".maps");

/* key: remote port (host order); value unused. Ports known to carry another
 * protocol (seeded by the daemon: TLS, SSH, databases; then the ports of
 * connections classified as another protocol, or as HTTP over TLS, whose
 * ciphertext sk_msg cannot change): never put in the sockhash for the
 * process rule above (http_ports still wins). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u8);
} not_http_ports SEC(".maps");

/* key: socket cookie; value unused. A connect() of an HTTP-speaking process
 * (seen at TCP_CONNECT, in the connecting task) waiting for its
 * ACTIVE_ESTABLISHED, which may run in softirq where the task is unknown. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} connecting SEC(".maps");

/* key: socket cookie; value: the socket. Inserted by sockops when a client
 * connection to an HTTP port is established; the kernel removes a socket
 * when it closes. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} inject_socks SEC(".maps");

/* Index: enum sonde_inject_counter; value: per-CPU count. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SONDE_INJ__MAX);
	__type(key, __u32);
	__type(value, __u64);
} inject_counters SEC(".maps");

static __always_inline int outcome(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&inject_counters, &idx);

	if (v)
		*v += 1;
	return SK_PASS;
}

SEC("sockops")
int sonde_sockops(struct bpf_sock_ops *skops)
{
	struct sonde_thread_ctx *tc;
	__u64 id;
	__u32 tgid;
	__u16 dport;
	__u64 key;
	__u8 one = 1;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB &&
	    skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 1;
	dport = (__u16)bpf_ntohl(skops->remote_port);
	key = bpf_get_socket_cookie(skops);
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		/* connect(2), in the connecting task */
		if (!sockops_has_pid || !proc_rule || bpf_map_lookup_elem(&http_ports, &dport))
			return 1;
		id = bpf_get_current_pid_tgid();
		tgid = id >> 32;
		if (tgid == self_tgid || (filter_tgid && tgid != filter_tgid))
			return 1;
		if (!bpf_map_lookup_elem(&http_procs, &tgid)) {
			/* A thread serving an HTTP request (sock.bpf.c saw its
			 * head): the daemon may not have heard of it yet. */
			tc = bpf_map_lookup_elem(&thread_ctx, &id);
			if (!tc || !tc->active)
				return 1;
			bpf_map_update_elem(&http_procs, &tgid, &one, BPF_ANY);
		}
		if (bpf_map_lookup_elem(&not_http_ports, &dport)) {
			outcome(SONDE_INJ_NOT_HTTP_PORT);
			return 1;
		}
		bpf_map_update_elem(&connecting, &key, &one, BPF_ANY);
		return 1;
	}
	if (bpf_map_lookup_elem(&connecting, &key))
		bpf_map_delete_elem(&connecting, &key);
	else if (!bpf_map_lookup_elem(&http_ports, &dport))
		return 1;
	bpf_sock_hash_update(skops, &inject_socks, &key, BPF_NOEXIST);
	return 1;
}

/* The header line into h (8-byte aligned, in a map value: the unaligned
 * word stores of the span id are allowed there), hex eight digits at a time. */
static __always_inline void build_header(__u8 *h, const struct sonde_trace_ctx_event *rec)
{
	__u32 v;

	*(__u64 *)h = 0x7261706563617274ULL;		/* "tracepar" */
	*(__u64 *)(h + 8) = 0x2d3030203a746e65ULL;	/* "ent: 00-" */
	for (int i = 0; i < 4; i++) {
		__builtin_memcpy(&v, rec->trace_id + 4 * i, 4);
		*(__u64 *)(h + 16 + 8 * i) = hexword__encode4(v);
	}
	h[48] = '-';
	for (int i = 0; i < 2; i++) {
		__builtin_memcpy(&v, rec->span_id + 4 * i, 4);
		*(__u64 *)(h + 49 + 8 * i) = hexword__encode4(v);
	}
	h[65] = '-';
	v = hexword__encode4(rec->trace_flags);	/* "0f000000": the first two */
	h[66] = (__u8)v;
	h[67] = (__u8)(v >> 8);
	h[68] = '\r';
	h[69] = '\n';
}

/* INJECT_LEN bytes from h to the packet at d (checked by the caller). */
static __always_inline void put_header(__u8 *d, const __u8 *h)
{
	for (int i = 0; i < 8; i++)
		*(__u64 *)(d + 8 * i) = *(const __u64 *)(h + 8 * i);
	*(__u32 *)(d + 64) = *(const __u32 *)(h + 64);
	*(__u16 *)(d + 68) = *(const __u16 *)(h + 68);
}

/* Bytes after the head that begin like another request: pipelined (a body
 * that happens to start with a capital letter is skipped too: uncertain). */
static __always_inline bool more_requests(const __u8 *buf, __u32 head_end, __u32 len)
{
	if (head_end >= len)
		return false;
	return buf[head_end & (TRACECTX_SCAN_MAX - 1)] >= 'A' &&
	       buf[head_end & (TRACECTX_SCAN_MAX - 1)] <= 'Z';
}

SEC("sk_msg")
int sonde_sk_msg(struct sk_msg_md *msg)
{
	struct sonde_trace_ctx_event rec = {};
	struct sonde_thread_ctx *tc;
	struct tracectx_scan x;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 size = msg->size, len, pos, zero = 0;
	struct inj_buf *b;
	void *data, *end, *ring;
	__u8 *buf;

	if ((id >> 32) == self_tgid || (filter_tgid && (id >> 32) != filter_tgid))
		return SK_PASS;
	len = size < TRACECTX_SCAN_MAX ? size : TRACECTX_SCAN_MAX;
	if (len == 0 || bpf_msg_pull_data(msg, 0, len, 0))
		return SK_PASS;
	data = msg->data;
	end = msg->data_end;
	if ((__u64)(end - data) < len)
		len = (__u32)(end - data);
	buf = inject_buf();
	if (!buf || len == 0)
		return SK_PASS;
	barrier_var(len);
	len &= 2 * TRACECTX_SCAN_MAX - 1;
	if (len > TRACECTX_SCAN_MAX)
		len = TRACECTX_SCAN_MAX;
	if (bpf_probe_read_kernel(buf, len, data))
		return outcome(SONDE_INJ_FAILED);
	if (!tracectx__request_start(buf, len)) {
		/* "GET /x" alone: a request line that continues in the next send */
		if (len < 8 && buf[0] >= 'A' && buf[0] <= 'Z')
			return outcome(SONDE_INJ_SPLIT);
		return SK_PASS;		/* body bytes or another protocol */
	}
	tracectx__scan(&x, len, false);
	if (x.first_nl < 0 || x.head_end < 0)
		return outcome(size > len ? SONDE_INJ_HEAD_TOO_LONG : SONDE_INJ_SPLIT);
	if (x.tp >= 0)
		return outcome(SONDE_INJ_HAS_HEADER);
	if (more_requests(buf, x.head_end, len))
		return outcome(SONDE_INJ_PIPELINED);
	if (size > INJECT_MAX_SEND)
		return outcome(SONDE_INJ_TOO_BIG);

	/* Child of the server request this thread is serving, else a new trace. */
	tc = bpf_map_lookup_elem(&thread_ctx, &id);
	if (tc && tc->active) {
		__builtin_memcpy(rec.trace_id, tc->trace_id, 16);
		__builtin_memcpy(rec.parent_span_id, tc->span_id, 8);
		rec.trace_flags = tc->flags;
	} else {
		tracectx__random(rec.trace_id, 16);
		rec.trace_flags = 1;
	}
	tracectx__random(rec.span_id, 8);
	b = bpf_map_lookup_elem(&inj_scratch, &zero);
	if (!b)
		return outcome(SONDE_INJ_FAILED);
	build_header(b->hdr, &rec);

	pos = ((__u32)x.first_nl + 1) & (2 * TRACECTX_SCAN_MAX - 1);
	if (bpf_msg_push_data(msg, pos, INJECT_LEN, 0))
		return outcome(SONDE_INJ_FAILED);
	/* Linear, so the request leaves as one segment (measured: 3 otherwise);
	 * the hole is then written in place. Only if that fails, a window at
	 * the hole. */
	if (bpf_msg_pull_data(msg, 0, size + INJECT_LEN, 0) == 0) {
		data = msg->data;
		end = msg->data_end;
		if (data + pos + INJECT_LEN <= end) {
			put_header((__u8 *)data + pos, b->hdr);
			goto done;
		}
	}
	if (bpf_msg_pull_data(msg, pos, pos + INJECT_LEN, 0))
		goto undo;
	data = msg->data;
	end = msg->data_end;
	if (data + INJECT_LEN > end)
		goto undo;
	put_header(data, b->hdr);
done:
	rec.hdr.op = SONDE_OP_TRACE_CTX;
	rec.hdr.size = sizeof(rec);
	rec.hdr.ktime = bpf_ktime_get_ns();
	rec.tgid = id >> 32;
	rec.tid = (__u32)id;
	rec.sport = (__u16)msg->local_port;
	rec.dport = (__u16)bpf_ntohl(msg->remote_port);
	rec.kind = SONDE_TRACE_CLIENT;
	zero = bpf_get_smp_processor_id();
	ring = bpf_map_lookup_elem(&rings, &zero);
	if (ring)
		bpf_ringbuf_output(ring, &rec, sizeof(rec), BPF_RB_NO_WAKEUP);
	return outcome(SONDE_INJ_DONE);
undo:
	/* The hole is uninitialised: never let it leave. */
	bpf_msg_pop_data(msg, pos, INJECT_LEN, 0);
	return outcome(SONDE_INJ_FAILED);
}
