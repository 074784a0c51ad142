/* W3C Trace Context (https://www.w3.org/TR/trace-context/) for HTTP spans.
 * The kernel decides the ids that go on the wire; this file prefers them,
 * checks them against the header it parses itself, and falls back to its
 * own ids and per-thread linking when no kernel record exists. */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "span/tracectx.h"
#include "hexword.h"

/* Both tables are direct-mapped on (tgid, tid) and overwrite on collision:
 * bounded memory, and a lost entry only costs one link. */
#define TRACECTX_SLOTS 4096

struct kernel_slot {
	struct sonde_trace_ctx_event ev;
	bool valid;
};

struct thread_slot {
	uint32_t tgid, tid;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags;
	bool active;
};

struct tracectx {
	struct kernel_slot kserver[TRACECTX_SLOTS], kclient[TRACECTX_SLOTS];
	struct thread_slot threads[TRACECTX_SLOTS];
	struct tracectx_stats stats;
	/* getrandom once per 4 KiB of ids rather than once per span. */
	uint8_t pool[4096];
	size_t pool_left;
};

struct tracectx *tracectx__new(void)
{
	return calloc(1, sizeof(struct tracectx));
}

void tracectx__free(struct tracectx *tc)
{
	free(tc);
}

static size_t slot_of(uint32_t tgid, uint32_t tid)
{
	uint64_t h = ((uint64_t)tgid << 32 | tid) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 52) & (TRACECTX_SLOTS - 1);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;		/* uppercase is invalid in traceparent */
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	/* Eight digits at a time: random hex digits mispredict a branch per
	 * character (this was ~10% of the daemon's CPU under load). */
	for (; n >= 4; n -= 4, s += 8, out += 4) {
		__u32 v;

		if (hexword__decode8(HEXWORD_LOAD64(s), &v))
			return -1;
		memcpy(out, &v, 4);
	}
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int tracectx__parse(const char *s, size_t n, struct tracectx_tp *out)
{
	struct tracectx_tp tp;

	if (n < TRACECTX_TP_LEN)
		return -1;
	if (unhex(s, &tp.version, 1) || tp.version == 0xff)
		return -1;
	/* Version 00 has exactly four fields; a later version may append
	 * fields after a '-', and its first four are read as 00's. */
	if (tp.version == 0 && n != TRACECTX_TP_LEN)
		return -1;
	if (tp.version != 0 && n > TRACECTX_TP_LEN && s[TRACECTX_TP_LEN] != '-')
		return -1;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -1;
	if (unhex(s + 3, tp.trace_id, 16) || unhex(s + 36, tp.parent_id, 8) ||
	    unhex(s + 53, &tp.flags, 1))
		return -1;
	if (all_zero(tp.trace_id, 16) || all_zero(tp.parent_id, 8))
		return -1;
	*out = tp;
	return 0;
}

/* n bytes as 2n lowercase hex digits at out, no NUL; inlined where n is a
 * constant (the trace context's ids). */
static inline __attribute__((always_inline)) void hex_into(char *out, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* eight digits at a time (include/hexword.h, as the injection does) */
	if (n % 4 == 0) {
		for (size_t i = 0; i < n; i += 4) {
			__u32 v;
			__u64 w;

			memcpy(&v, b + i, 4);
			w = hexword__encode4(v);
			memcpy(out + 2 * i, &w, 8);
		}
		return;
	}
#endif
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
}

void tracectx__hex(char *out, const uint8_t *b, size_t n)
{
	hex_into(out, b, n);
	out[2 * n] = '\0';
}

void tracectx__format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8],
		      uint8_t flags)
{
	memcpy(out, "00-", 3);
	hex_into(out + 3, trace_id, 16);
	out[35] = '-';
	hex_into(out + 36, span_id, 8);
	out[52] = '-';
	out[53] = "0123456789abcdef"[flags >> 4];
	out[54] = "0123456789abcdef"[flags & 15];
	out[55] = '\0';
}

/* Refills the pool (getrandom once per 4 KiB of ids rather than per span). */
static void pool_refill(struct tracectx *tc)
{
	ssize_t got = getrandom(tc->pool, sizeof(tc->pool), 0);

	/* getrandom on a booted system does not fail for 4 KiB; if it ever
	 * does, fall back to a weak mix rather than zero ids. */
	if (got != (ssize_t)sizeof(tc->pool)) {
		uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)tc ^ tc->pool[0];

		for (size_t k = 0; k < sizeof(tc->pool); k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			tc->pool[k] = (uint8_t)x;
		}
	}
	tc->pool_left = sizeof(tc->pool);
}

void tracectx__random_id(struct tracectx *tc, uint8_t *out, size_t n)
{
	do {
		if (tc->pool_left < n)
			pool_refill(tc);
		/* whole ids from the pool's end: one copy, not a byte loop */
		tc->pool_left -= n;
		memcpy(out, tc->pool + tc->pool_left, n);
	} while (all_zero(out, n));
}

void tracectx__kernel(struct tracectx *tc, const struct sonde_trace_ctx_event *ev)
{
	struct kernel_slot *s;

	if (ev->kind == SONDE_TRACE_SERVER)
		s = &tc->kserver[slot_of(ev->tgid, ev->tid)];
	else if (ev->kind == SONDE_TRACE_CLIENT)
		s = &tc->kclient[slot_of(ev->tgid, ev->tid)];
	else
		return;
	s->ev = *ev;
	s->valid = true;
}

/* The kernel record for this request, consumed; NULL when none. */
static const struct sonde_trace_ctx_event *kernel_take(struct kernel_slot *table, uint32_t tgid,
						       uint32_t tid, const struct sonde_tuple *t)
{
	struct kernel_slot *s = &table[slot_of(tgid, tid)];

	if (!s->valid || s->ev.tgid != tgid || s->ev.tid != tid || s->ev.sport != t->sport ||
	    s->ev.dport != t->dport)
		return NULL;
	s->valid = false;
	return &s->ev;
}

/* Whether the header text is exactly "00-<trace>-<parent>-<flags>" of the
 * ids the kernel read from this request (k: sock.bpf.c's scan, remote set),
 * in lowercase and nothing after it: parsing it would give those ids, so
 * they are taken as they are (~300 instructions fewer per server request
 * than the parse). Ids of all zeros are invalid either way. */
static bool tp_is_kernel(const char *text, const struct sonde_trace_ctx_event *k,
			 struct tracectx_tp *tp)
{
	char want[TRACECTX_TP_LEN + 1];

	if (!k || !k->remote || strnlen(text, TRACECTX_TP_LEN + 1) != TRACECTX_TP_LEN ||
	    all_zero(k->trace_id, 16) || all_zero(k->parent_span_id, 8))
		return false;
	tracectx__format(want, k->trace_id, k->parent_span_id, k->trace_flags);
	if (memcmp(text, want, TRACECTX_TP_LEN) != 0)
		return false;
	tp->version = 0;
	memcpy(tp->trace_id, k->trace_id, 16);
	memcpy(tp->parent_id, k->parent_span_id, 8);
	tp->flags = k->trace_flags;
	return true;
}

/* The request's own traceparent, validated; an invalid incoming one
 * (server side: count) is counted. k: the kernel's reading of it, or NULL. */
static bool request_tp(struct tracectx *tc, const struct tracectx_hdr *m,
		       const struct sonde_trace_ctx_event *k, struct tracectx_tp *tp, bool count)
{
	if (!m || !m->traceparent_lines)
		return false;
	if (m->traceparent_lines == 1 && !m->traceparent_cut && tp_is_kernel(m->traceparent, k, tp))
		return true;
	if (m->traceparent_lines == 1 && !m->traceparent_cut &&
	    tracectx__parse(m->traceparent, strlen(m->traceparent), tp) == 0)
		return true;
	if (count)
		tc->stats.traceparent_invalid++;
	return false;
}

static void keep_tracestate(const struct tracectx_hdr *m, struct span_ctx *out)
{
	size_t n;

	/* A cut list may end inside a member: drop it rather than forward garbage. */
	if (m->tracestate_cut || !m->tracestate)
		return;
	/* per request: no printf */
	n = strnlen(m->tracestate, sizeof(out->tracestate) - 1);
	memcpy(out->tracestate, m->tracestate, n);
	out->tracestate[n] = '\0';
}

/* An empty context: the ids zeroed, tracestate "" (its other 255 bytes are
 * never read; clearing them per request cost more than the ids). */
static void ctx_clear(struct span_ctx *out)
{
	memset(out, 0, offsetof(struct span_ctx, tracestate));
	out->tracestate[0] = '\0';
}

void tracectx__server_request(struct tracectx *tc, uint32_t tgid, uint32_t tid,
			      const struct sonde_tuple *t, const struct tracectx_hdr *m,
			      struct span_ctx *out)
{
	const struct sonde_trace_ctx_event *k = kernel_take(tc->kserver, tgid, tid, t);
	struct thread_slot *th = &tc->threads[slot_of(tgid, tid)];
	struct tracectx_tp tp;
	bool valid = request_tp(tc, m, k, &tp, true);

	ctx_clear(out);
	if (k) {
		tc->stats.kernel_server++;
		memcpy(out->trace_id, k->trace_id, 16);
		memcpy(out->span_id, k->span_id, 8);
		memcpy(out->parent_span_id, k->parent_span_id, 8);
		out->trace_flags = k->trace_flags;
		out->remote_parent = k->remote;
	} else {
		tracectx__random_id(tc, out->trace_id, 16);
		tracectx__random_id(tc, out->span_id, 8);
		out->trace_flags = 0x01;
	}
	/* This parser is authoritative: the kernel's bounded scan may miss a
	 * header (beyond its window), and must never accept one this rejects. */
	if (valid) {
		if (k && (!k->remote || memcmp(k->trace_id, tp.trace_id, 16) != 0))
			tc->stats.kernel_overridden++;
		memcpy(out->trace_id, tp.trace_id, 16);
		memcpy(out->parent_span_id, tp.parent_id, 8);
		out->trace_flags = tp.flags;
		out->remote_parent = 1;
		keep_tracestate(m, out);
	} else if (out->remote_parent) {
		memset(out->parent_span_id, 0, 8);
		out->remote_parent = 0;
	}
	th->tgid = tgid;
	th->tid = tid;
	memcpy(th->trace_id, out->trace_id, 16);
	memcpy(th->span_id, out->span_id, 8);
	th->flags = out->trace_flags;
	th->active = true;
}

void tracectx__client_request(struct tracectx *tc, uint32_t tgid, uint32_t tid,
			      const struct sonde_tuple *t, const struct tracectx_hdr *m,
			      struct span_ctx *out)
{
	const struct sonde_trace_ctx_event *k = kernel_take(tc->kclient, tgid, tid, t);
	const struct thread_slot *th = &tc->threads[slot_of(tgid, tid)];
	struct tracectx_tp tp;

	ctx_clear(out);
	if (k) {
		tc->stats.kernel_client++;
		memcpy(out->trace_id, k->trace_id, 16);
		memcpy(out->span_id, k->span_id, 8);
		memcpy(out->parent_span_id, k->parent_span_id, 8);
		out->trace_flags = k->trace_flags;
		return;
	}
	tracectx__random_id(tc, out->span_id, 8);
	if (request_tp(tc, m, NULL, &tp, false)) {
		/* The program propagates its own context: keep its trace. */
		tc->stats.own_header++;
		memcpy(out->trace_id, tp.trace_id, 16);
		memcpy(out->parent_span_id, tp.parent_id, 8);
		out->trace_flags = tp.flags;
		keep_tracestate(m, out);
		return;
	}
	if (th->active && th->tgid == tgid && th->tid == tid) {
		tc->stats.thread_linked++;
		memcpy(out->trace_id, th->trace_id, 16);
		memcpy(out->parent_span_id, th->span_id, 8);
		out->trace_flags = th->flags;
		return;
	}
	tracectx__random_id(tc, out->trace_id, 16);
	out->trace_flags = 0x01;
}

void tracectx__server_done(struct tracectx *tc, uint32_t tgid, uint32_t tid,
			   const struct span_ctx *ctx)
{
	struct thread_slot *th = &tc->threads[slot_of(tgid, tid)];

	if (th->tgid == tgid && th->tid == tid && memcmp(th->span_id, ctx->span_id, 8) == 0)
		th->active = false;
}

void tracectx__root(struct tracectx *tc, struct span_ctx *out)
{
	ctx_clear(out);
	tracectx__random_id(tc, out->trace_id, 16);
	tracectx__random_id(tc, out->span_id, 8);
	out->trace_flags = 0x01;
}

const struct tracectx_stats *tracectx__stats(const struct tracectx *tc)
{
	return &tc->stats;
}
