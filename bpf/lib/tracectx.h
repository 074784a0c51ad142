/* W3C trace context in the kernel: the per-thread server context (the
 * thread_ctx map, lib/maps.bpf.h) that inject.bpf.c reads when the thread
 * sends a request, a bounded scan of an HTTP head (line end, head end,
 * traceparent) and traceparent parsing.
 * The includer defines TRACECTX_BUF(): its per-CPU staging buffer holding
 * the bytes to scan (at least TRACECTX_SCAN_MAX + 64 bytes, 8-byte
 * aligned: words are loaded whole), or NULL. */
#ifndef SONDE_BPF_TRACECTX_H
#define SONDE_BPF_TRACECTX_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sonde.h"
#include "hexword.h"
#ifndef SONDE_MAP_THREAD_CTX
#error "define SONDE_MAP_THREAD_CTX (lib/maps.bpf.h) before including lib/tracectx.h"
#endif
#include "lib/maps.bpf.h"

/* Head bytes scanned; a power of two: indexes are masked with it - 1. */
#define TRACECTX_SCAN_MAX 1024
#define TRACECTX_TP_LEN 55	/* "00-<32 hex>-<16 hex>-<2 hex>" */

struct tracectx_scan {
	__u32 len;		/* bytes of the buffer that are data */
	__u32 next;		/* the scan's position: bytes before it are done */
	__s32 first_nl;		/* index of the first '\n', -1 */
	__s32 head_end;		/* index just past the blank line ending the head, -1 */
	__s32 tp;		/* index just past "traceparent:", -1 */
	__u8 tp_only;		/* stop at the first traceparent (server reads need nothing else) */
	__u8 pad[3];
};

/* The scan's state, per CPU, in a map rather than on the caller's stack:
 * loads from a map value are plain unknown scalars to the verifier, so
 * the bpf_loop callback below is verified against one state, however far
 * a scan goes (on the stack, each position it reached would be another). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tracectx_scan);
} tracectx_state SEC(".maps");

/* One '\n' candidate at q. Returns 1 when the scan can stop. */
static __always_inline int tracectx__at_nl(const __u8 *buf, __u32 q, struct tracectx_scan *x)
{
	const __u8 *p;

	q &= TRACECTX_SCAN_MAX - 1;
	p = buf + q;
	if (p[0] != '\n')
		return 0;
	if (q >= x->len)
		return 1;
	if (x->first_nl < 0)
		x->first_nl = q;
	if (q + 1 >= x->len)
		return 1;
	if (p[1] == '\r' || p[1] == '\n') {
		x->head_end = q + (p[1] == '\r' ? 3 : 2);
		return 1;
	}
	if (x->tp < 0 && q + 13 <= x->len && hexword__is_tp_name(p + 1)) {
		x->tp = q + 13;
		return x->tp_only;
	}
	return 0;
}

/* Index (0-7) of the byte whose bit 7 is the lowest set bit of m (m != 0):
 * isolated and shifted down it is 1 << 8k, and the multiply brings byte
 * 7 - k of the constant, which holds k, to the top. */
static __always_inline __u32 tracectx__low_byte(__u64 m)
{
	return (__u32)((((m & -m) >> 7) * 0x0001020304050607ULL) >> 56);
}

/* Words one bpf_loop call of the callback below goes through. */
#define TRACECTX_SCAN_WORDS 16

/* bpf_loop callback: from x->next, the next '\n' that needs a look within
 * TRACECTX_SCAN_WORDS words, handed to tracectx__at_nl. Only a few lines
 * do: the first (request line), one starting with 't' or 'T' (a
 * traceparent), and the blank line ending the head; the others are passed
 * over a word at a time (the byte after each '\n' comes from a load one
 * byte on). So a call covers 128 bytes or one such line, not one line: a
 * call of the callback costs more than a word's compares. A candidate
 * that is not one (eq_mask's false positives, a "Transfer-Encoding:"
 * line) only moves on. */
static long tracectx__scan_nl(__u64 i, void *unused)
{
	__u32 zero = 0, pos, word;
	struct tracectx_scan *x = bpf_map_lookup_elem(&tracectx_state, &zero);
	const __u8 *buf = TRACECTX_BUF();
	__u64 first;

	if (!x || !buf)
		return 1;
	pos = x->next;
	if (pos >= x->len || pos >= TRACECTX_SCAN_MAX)
		return 1;
	word = pos & ~7U;
	/* every '\n' needs a look until the first is found */
	first = x->first_nl < 0 ? ~0ULL : 0;
	for (int j = 0; j < TRACECTX_SCAN_WORDS; j++) {
		__u32 off = (word + 8 * j) & (TRACECTX_SCAN_MAX - 1);
		__u64 m, next;

		if (word + 8 * j >= x->len)
			return 1;
		next = *(const __u64 *)(buf + off + 1);
		m = hexword__eq_mask(*(const __u64 *)(buf + off), '\n') &
		    (first | hexword__eq_mask(next | 0x2020202020202020ULL, 't') |
		     hexword__eq_mask(next, '\r') | hexword__eq_mask(next, '\n'));
		if (j == 0)
			m &= ~0ULL << (8 * (pos & 7));	/* bytes before pos are done */
		if (m) {
			__u32 q = off + tracectx__low_byte(m);

			x->next = q + 1;
			/* a callback returns exactly 0 or 1 */
			return tracectx__at_nl(buf, q, x) ? 1 : 0;
		}
	}
	x->next = word + 8 * TRACECTX_SCAN_WORDS;
	return 0;
}

/* Scans the first len bytes of TRACECTX_BUF() (bounded by
 * TRACECTX_SCAN_MAX; the buffer is 8-byte aligned and readable for
 * TRACECTX_SCAN_MAX + 64 bytes) into *out. Each call of the callback
 * moves on by a byte at least: len calls bound the loop. */
static __always_inline void tracectx__scan(struct tracectx_scan *out, __u32 len, bool tp_only)
{
	__u32 zero = 0;
	struct tracectx_scan *x = bpf_map_lookup_elem(&tracectx_state, &zero);

	out->len = len < TRACECTX_SCAN_MAX ? len : TRACECTX_SCAN_MAX;
	out->next = 0;
	out->first_nl = out->head_end = out->tp = -1;
	out->tp_only = tp_only;
	if (!x)
		return;
	*x = *out;
	bpf_loop(out->len, tracectx__scan_nl, NULL, 0);
	*out = *x;
}

/* Parses the traceparent value starting at index pos (just past the
 * colon) with the same rules as user/span/tracectx.c; 0 when valid. */
static __always_inline int tracectx__parse(const __u8 *buf, __u32 pos, __u32 len,
					   struct sonde_thread_ctx *tc, __u8 parent[8])
{
	for (int k = 0; k < 2; k++)	/* optional whitespace */
		if (pos < len && (buf[pos & (TRACECTX_SCAN_MAX - 1)] == ' ' ||
				  buf[pos & (TRACECTX_SCAN_MAX - 1)] == '\t'))
			pos++;
	if (pos + TRACECTX_TP_LEN + 1 > len)
		return -1;	/* the line end must be in the buffer too */
	return hexword__traceparent(buf + (pos & (TRACECTX_SCAN_MAX - 1)), tc->trace_id, parent,
				    &tc->flags);
}

/* Per-CPU id generator: a 64-bit Weyl sequence (seeded from
 * bpf_get_prandom_u32 on a CPU's first id) through the splitmix64 mixer,
 * a bijection: ids of one CPU never repeat within 2^64 draws, and no
 * helper call per 32 bits (a call returns through the retbleed/SRSO
 * thunk on this host). Each object including this header has its own. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tracectx_ids SEC(".maps");

static __always_inline __u64 tracectx__mix(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static __always_inline void tracectx__random(__u8 *out, int n)
{
	__u32 zero = 0;
	__u64 *st = bpf_map_lookup_elem(&tracectx_ids, &zero), v;

	for (int i = 0; i < n; i += 8) {
		if (st) {
			if (!*st)
				*st = (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32();
			*st += 0x9e3779b97f4a7c15ULL;
			v = tracectx__mix(*st);
		} else {
			v = (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32();
		}
		__builtin_memcpy(out + i, &v, 8);
	}
	out[n - 1] |= 1;	/* never all zero */
}

/* Where sonde injects (inject.bpf.c), right after the request line: the
 * first '\n' within the first 64 bytes followed by "traceparent:". The
 * index just past the colon, or -1 (then the full scan decides: a match
 * here is also its first). buf: 8-byte aligned, len: bytes of data. */
static __always_inline int tracectx__tp_first_line(const __u8 *buf, __u32 len)
{
	for (int w = 0; w < 8; w++) {
		__u32 off = w * 8;
		__u64 m;

		if (off >= len)
			return -1;
		m = hexword__eq_mask(*(const __u64 *)(buf + off), '\n');
		if (!m)
			continue;
		for (int k = 0; k < 8; k++) {
			__u32 q = off + k;

			if (!((m >> (8 * k + 7)) & 1) || buf[q] != '\n')
				continue;
			if (q + 13 > len || q + 13 > TRACECTX_SCAN_MAX)
				return -1;
			return hexword__is_tp_name(buf + q + 1) ? (int)(q + 13) : -1;
		}
	}
	return -1;
}

/* Does the chunk begin like a request line ("GET /", "OPTIONS *")? Cheap
 * on purpose: the daemon's parser decides; a false start costs one record. */
static __always_inline bool tracectx__request_start(const __u8 *p, __u32 len)
{
	if (len < 8 || p[0] < 'A' || p[0] > 'Z')
		return false;
	/* The HTTP/2 client preface ("PRI * HTTP/2.0"): no HTTP/1.x request to
	 * inject into, and no server request for the kernel to open a context for */
	if (p[0] == 'P' && p[1] == 'R' && p[2] == 'I' && p[3] == ' ')
		return false;
	for (int i = 1; i < 8; i++) {
		if (p[i] == ' ')
			return i >= 3;
		if (p[i] < 'A' || p[i] > 'Z')
			return false;
	}
	return false;
}

/* The shortest head in which the scan below can find a traceparent:
 * request_start's 8 bytes hold the request line's first '\n' at 4 at the
 * earliest, then "traceparent:", the value and the byte ending its line. */
#define TRACECTX_TP_MIN_HEAD (4 + 13 + TRACECTX_TP_LEN + 1)

/* A server-role socket of thread id moved bytes (already in TRACECTX_BUF()):
 * a read that starts a request gets fresh server span ids, made the
 * thread's context and written to *out for the caller to send ahead of
 * the data record (returns true); the connection's next write ends the
 * context (SONDE_CONN_CTX spares its other writes the lookup). c: the
 * connection's conns entry. */
static __always_inline bool tracectx__server_io(struct sonde_trace_ctx_event *out,
						const struct sonde_data_event *ev,
						struct sonde_conn *c, __u32 cap, __u64 id)
{
	struct sonde_trace_ctx_event rec = {};
	struct sonde_thread_ctx tc = {}, *cur;
	struct tracectx_scan x;
	__u8 *buf;

	if (ev->dir == SONDE_DIR_EGRESS) {
		if (!(c->flags & SONDE_CONN_CTX))
			return false;
		c->flags &= ~SONDE_CONN_CTX;
		cur = bpf_map_lookup_elem(&thread_ctx, &id);
		if (cur && cur->active)
			cur->active = 0;
		return false;
	}
	buf = TRACECTX_BUF();
	if (!buf || !tracectx__request_start(buf, cap))
		return false;
	x.tp = -1;
	x.len = cap < TRACECTX_SCAN_MAX ? cap : TRACECTX_SCAN_MAX;
	if (cap >= TRACECTX_TP_MIN_HEAD) {
		x.tp = tracectx__tp_first_line(buf, x.len);
		if (x.tp < 0)
			tracectx__scan(&x, cap, true);
	}
	if (x.tp >= 0 && tracectx__parse(buf, x.tp, x.len, &tc, rec.parent_span_id) == 0) {
		rec.remote = 1;
	} else {
		__builtin_memset(rec.parent_span_id, 0, 8);
		tracectx__random(tc.trace_id, 16);
		tc.flags = 1;
	}
	tracectx__random(tc.span_id, 8);
	tc.ktime = ev->hdr.ktime;
	tc.active = 1;
	/* In place when the thread has an entry: an LRU update costs a node
	 * allocation and list locking on every request. Only this thread
	 * writes its entry and only it reads it (in sk_msg), in program order. */
	cur = bpf_map_lookup_elem(&thread_ctx, &id);
	if (cur)
		*cur = tc;
	else
		bpf_map_update_elem(&thread_ctx, &id, &tc, BPF_ANY);
	c->flags |= SONDE_CONN_CTX;

	rec.hdr.op = SONDE_OP_TRACE_CTX;
	rec.hdr.size = sizeof(rec);
	rec.hdr.ktime = ev->hdr.ktime;
	rec.tgid = id >> 32;
	rec.tid = (__u32)id;
	rec.sport = c->tuple.sport;
	rec.dport = c->tuple.dport;
	rec.kind = SONDE_TRACE_SERVER;
	rec.trace_flags = tc.flags;
	__builtin_memcpy(rec.trace_id, tc.trace_id, 16);
	__builtin_memcpy(rec.span_id, tc.span_id, 8);
	*out = rec;
	return true;
}

#endif
