/* Eight bytes at a time: lowercase hex to binary and back, and the bytes of
 * a word equal to a given one. Pure arithmetic on __u64 so the BPF programs
 * avoid per-character branches, and so tests/unit/test_hexword.c can check
 * it exhaustively on the host. Bytes are in memory order on little-endian
 * (byte 0 of the string is bits 0..7). */
#ifndef SONDE_HEXWORD_H
#define SONDE_HEXWORD_H

#ifdef __bpf__
/* Unaligned loads are fine here: the programs read map values, for which
 * the verifier checks alignment only on architectures without efficient
 * unaligned access, and the JIT emits one load. */
#define HEXWORD_LOAD64(p) (*(const __u64 *)(p))
#define HEXWORD_LOAD32(p) (*(const __u32 *)(p))
#else
#include <string.h>
static inline __u64 hexword__load64(const void *p)
{
	__u64 w;

	memcpy(&w, p, 8);
	return w;
}
static inline __u32 hexword__load32(const void *p)
{
	__u32 w;

	memcpy(&w, p, 4);
	return w;
}
#define HEXWORD_LOAD64(p) hexword__load64(p)
#define HEXWORD_LOAD32(p) hexword__load32(p)
#endif

#define HEXWORD_ONES 0x0101010101010101ULL
#define HEXWORD_HIGH 0x8080808080808080ULL

/* Bit 7 of each byte of w that may equal c; only bytes after a real match
 * can be false positives (borrows), so callers confirm each candidate. */
static inline __attribute__((always_inline)) __u64 hexword__eq_mask(__u64 w, __u8 c)
{
	__u64 v = w ^ (HEXWORD_ONES * c);

	return (v - HEXWORD_ONES) & ~v & HEXWORD_HIGH;
}

/* "traceparent:" at p, the name in any case: | 0x20 folds exactly the
 * uppercase letters onto the lowercase ones (the colon is compared as is). */
static inline __attribute__((always_inline)) int hexword__is_tp_name(const __u8 *p)
{
	return (HEXWORD_LOAD64(p) | 0x2020202020202020ULL) == 0x7261706563617274ULL && /* "tracepar" */
	       (HEXWORD_LOAD32(p + 8) | 0x00202020U) == 0x3a746e65U;			  /* "ent:" */
}

/* Bit 7 of each byte of w (all bytes < 0x80) that lies in [lo, hi]: adding
 * 0x80 - lo sets bit 7 exactly when b >= lo, adding 0x7f - hi when b > hi,
 * and neither sum can carry into the next byte. */
static inline __attribute__((always_inline)) __u64 hexword__in_range(__u64 w, __u8 lo, __u8 hi)
{
	return (w + HEXWORD_ONES * (__u8)(0x80 - lo)) & ~(w + HEXWORD_ONES * (__u8)(0x7f - hi)) &
	       HEXWORD_HIGH;
}

/* Eight lowercase hex digits (w as loaded from the string) to four bytes,
 * the first digit being the high nibble of *out's first byte. Returns -1,
 * leaving *out alone, when any byte is not in [0-9a-f] (uppercase is
 * invalid in traceparent). */
static inline __attribute__((always_inline)) int hexword__decode8(__u64 w, __u32 *out)
{
	__u64 digit, lower, nib;

	if (w & HEXWORD_HIGH)
		return -1;
	digit = hexword__in_range(w, '0', '9');
	lower = hexword__in_range(w, 'a', 'f');
	if ((digit | lower) != HEXWORD_HIGH)
		return -1;
	/* '0'..'9' & 0xf = 0..9; 'a'..'f' & 0xf = 1..6, plus 9 */
	nib = (w & (HEXWORD_ONES * 0x0f)) + (lower >> 7) * 9;
	/* 16-bit lanes: low byte = first digit << 4 | second digit */
	nib = ((nib & 0x000f000f000f000fULL) << 4) | ((nib >> 8) & 0x000f000f000f000fULL);
	nib = (nib | (nib >> 8)) & 0x0000ffff0000ffffULL;
	nib = (nib | (nib >> 16)) & 0xffffffffULL;
	*out = (__u32)nib;
	return 0;
}

/* Four bytes (v as loaded from memory) to eight lowercase hex digits, in
 * the order they are to be stored. */
static inline __attribute__((always_inline)) __u64 hexword__encode4(__u32 v)
{
	__u64 x = v, gt9;

	/* byte i into the low byte of 16-bit lane i */
	x = (x | (x << 16)) & 0x0000ffff0000ffffULL;
	x = (x | (x << 8)) & 0x00ff00ff00ff00ffULL;
	/* high nibble first (lower address), low nibble second */
	x = ((x >> 4) & 0x000f000f000f000fULL) | ((x & 0x000f000f000f000fULL) << 8);
	gt9 = ((x + HEXWORD_ONES * 0x76) >> 7) & HEXWORD_ONES;	/* nibble >= 10 */
	return x + HEXWORD_ONES * '0' + gt9 * ('a' - '0' - 10);
}

static inline __attribute__((always_inline)) int hexword__hexval(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A traceparent value at p ("00-<32 hex>-<16 hex>-<2 hex>", 55 bytes; p[55]
 * must be readable: the byte after it), with the rules of user/span/tracectx.c:
 * version ff and all-zero ids are invalid; after the value comes the line
 * end or blank, or for a version above 00 a '-' (more fields). 0 when
 * valid; the ids are then in trace_id, parent and *flags. */
static inline __attribute__((always_inline)) int
hexword__traceparent(const __u8 *p, __u8 trace_id[16], __u8 parent[8], __u8 *flags)
{
	__u32 t[4], s[2];
	int vh = hexword__hexval(p[0]), vl = hexword__hexval(p[1]);
	int fh = hexword__hexval(p[53]), fl = hexword__hexval(p[54]);
	__u8 end = p[55];

	if (vh < 0 || vl < 0 || fh < 0 || fl < 0 || (vh == 15 && vl == 15))
		return -1;
	if (p[2] != '-' || p[35] != '-' || p[52] != '-')
		return -1;
	if (!(end == '\r' || end == '\n' || end == ' ' || end == '\t' || ((vh | vl) && end == '-')))
		return -1;
	if (hexword__decode8(HEXWORD_LOAD64(p + 3), &t[0]) ||
	    hexword__decode8(HEXWORD_LOAD64(p + 11), &t[1]) ||
	    hexword__decode8(HEXWORD_LOAD64(p + 19), &t[2]) ||
	    hexword__decode8(HEXWORD_LOAD64(p + 27), &t[3]) ||
	    hexword__decode8(HEXWORD_LOAD64(p + 36), &s[0]) ||
	    hexword__decode8(HEXWORD_LOAD64(p + 44), &s[1]))
		return -1;
	if (!(t[0] | t[1] | t[2] | t[3]) || !(s[0] | s[1]))
		return -1;
	__builtin_memcpy(trace_id, t, 16);
	__builtin_memcpy(parent, s, 8);
	*flags = (__u8)(fh << 4 | fl);
	return 0;
}

#endif
