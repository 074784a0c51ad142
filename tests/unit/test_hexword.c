/* Unit tests for include/hexword.h, the word-at-a-time hex and traceparent
 * code of the BPF programs: exhaustive per-byte cases against a byte-wise
 * reference, and the traceparent rules against user/span/tracectx.c's parser. */
#include <linux/types.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "span/tracectx.h"
#include "hexword.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static __u64 load(const char *s)
{
	__u64 w;

	memcpy(&w, s, 8);
	return w;
}

static void test_encode(void)
{
	int bad = 0;

	for (int b = 0; b < 256; b++) {
		for (int pos = 0; pos < 4; pos++) {
			uint8_t in[4] = {0x5a, 0x00, 0xff, 0x10};
			char want[9], got[9];
			__u32 v;
			__u64 w;

			in[pos] = (uint8_t)b;
			snprintf(want, sizeof(want), "%02x%02x%02x%02x", in[0], in[1], in[2], in[3]);
			memcpy(&v, in, 4);
			w = hexword__encode4(v);
			memcpy(got, &w, 8);
			got[8] = '\0';
			bad += strcmp(got, want) != 0;
		}
	}
	CHECK_EQ_INT(bad, 0);
	for (int i = 0; i < 100000; i++) {
		uint32_t r = rnd();
		uint8_t in[4];
		char want[9], got[9];
		__u64 w = hexword__encode4(r);

		memcpy(in, &r, 4);
		snprintf(want, sizeof(want), "%02x%02x%02x%02x", in[0], in[1], in[2], in[3]);
		memcpy(got, &w, 8);
		got[8] = '\0';
		if (strcmp(got, want))
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
}

static int ref_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void test_decode(void)
{
	int bad = 0, valid = 0;
	__u32 out;

	/* every byte value at every position of an otherwise valid word */
	for (int c = 0; c < 256; c++) {
		for (int pos = 0; pos < 8; pos++) {
			char s[9] = "09afbe27";
			uint8_t want[4];
			int ok = 1;

			s[pos] = (char)c;
			for (int i = 0; i < 4; i++) {
				int hi = ref_hexval((uint8_t)s[2 * i]), lo = ref_hexval((uint8_t)s[2 * i + 1]);

				if (hi < 0 || lo < 0)
					ok = 0;
				want[i] = (uint8_t)((unsigned)hi << 4 | (unsigned)lo);	/* junk when invalid, unused */
			}
			out = 0xdeadbeef;
			if (hexword__decode8(load(s), &out) != (ok ? 0 : -1))
				bad++;
			else if (ok && memcmp(&out, want, 4))
				bad++;
			else if (!ok && out != 0xdeadbeef)
				bad++;
			valid += ok;
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(valid, 16 * 8);	/* 16 hex digits at 8 places */
	for (int i = 0; i < 100000; i++) {
		char s[9];
		uint32_t r = rnd(), r2 = rnd();
		uint8_t raw[4];

		memcpy(raw, &r, 4);
		snprintf(s, sizeof(s), "%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3]);
		if (hexword__decode8(load(s), &out) || out != r)
			bad++;
		/* and random words: valid exactly when every byte is a digit */
		{
			uint64_t w = (uint64_t)r << 32 | r2;
			int ok = 1;

			for (int k = 0; k < 8; k++)
				ok &= ref_hexval((uint8_t)(w >> (8 * k))) >= 0;
			if ((hexword__decode8(w, &out) == 0) != ok)
				bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(hexword__decode8(load("ABCDEF01"), &out), -1);	/* uppercase */
	CHECK_EQ_INT(hexword__decode8(load("0000000g"), &out), -1);
	CHECK_EQ_INT(hexword__decode8(load("ffffffff"), &out), 0);
	CHECK_EQ_INT(out, 0xffffffffu);
}

static void test_eq_mask(void)
{
	int missed = 0, early = 0;

	for (int i = 0; i < 200000; i++) {
		uint64_t w = (uint64_t)rnd() << 32 | rnd();
		uint8_t b[8];
		__u64 m;
		int first = -1;

		/* plenty of matches and near-misses */
		memcpy(b, &w, 8);
		for (int k = 0; k < 8; k++)
			if (b[k] % 3 == 0)
				b[k] = (uint8_t)("\n\x0b\x09\x0a"[b[k] % 4]);
		memcpy(&w, b, 8);
		m = hexword__eq_mask(w, '\n');
		for (int k = 0; k < 8; k++) {
			int set = (int)(m >> (8 * k + 7)) & 1;

			if (b[k] == '\n' && !set)
				missed++;
			if (b[k] == '\n' && first < 0)
				first = k;
			/* a false candidate only after a real match */
			if (set && b[k] != '\n' && (first < 0 || k < first))
				early++;
		}
	}
	CHECK_EQ_INT(missed, 0);
	CHECK_EQ_INT(early, 0);
	CHECK_EQ_INT(hexword__eq_mask(load("GET / HT"), '\n'), 0);
	CHECK_EQ_INT(hexword__eq_mask(load("1.1\r\nHos"), '\n'), 0x80ULL << 32);
}

static void test_tp_name(void)
{
	const char *name = "traceparent:";
	int bad = 0;

	CHECK_EQ_INT(hexword__is_tp_name((const uint8_t *)"traceparent: 00"), 1);
	CHECK_EQ_INT(hexword__is_tp_name((const uint8_t *)"TraceParent:00-"), 1);
	CHECK_EQ_INT(hexword__is_tp_name((const uint8_t *)"TRACEPARENT:   "), 1);
	CHECK_EQ_INT(hexword__is_tp_name((const uint8_t *)"traceparent :  "), 0);
	CHECK_EQ_INT(hexword__is_tp_name((const uint8_t *)"tracestate: abc"), 0);
	/* each byte replaced by every value: a match only for the other case of a letter */
	for (int pos = 0; pos < 12; pos++) {
		for (int c = 0; c < 256; c++) {
			char s[16];
			int want;

			memcpy(s, name, 12);
			memcpy(s + 12, "000", 4);
			s[pos] = (char)c;
			want = pos == 11 ? c == ':' : (c | 0x20) == name[pos] && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
			bad += hexword__is_tp_name((const uint8_t *)s) != want;
		}
	}
	CHECK_EQ_INT(bad, 0);
}

/* The kernel rule for a value followed by byte after, against user/span/tracectx.c
 * given the value as the daemon's parser would hand it over. */
static int tp_agree(const char *v55, char after)
{
	char buf[64], user[64];
	struct tracectx_tp tp;
	uint8_t tid[16], par[8], fl;
	int k, u;
	size_t n = 55;

	memcpy(buf, v55, 55);
	buf[55] = after;
	memset(buf + 56, 'z', 8);
	k = hexword__traceparent((const uint8_t *)buf, tid, par, &fl);
	memcpy(user, v55, 55);
	if (!(after == '\r' || after == '\n' || after == ' ' || after == '\t')) {
		user[55] = after;
		memcpy(user + 56, "xyz", 3);
		n = 59;
	}
	u = tracectx__parse(user, n, &tp);
	if (k != u)
		return 0;
	if (k == 0 && (memcmp(tid, tp.trace_id, 16) || memcmp(par, tp.parent_id, 8) || fl != tp.flags))
		return 0;
	return 1;
}

static void test_traceparent(void)
{
	const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	static const char subst[] = "09afgAF-\r\n \tz\x80\xff";
	const char afters[] = "\r\n \t-xA";
	int bad = 0, valid = 0, total = 0;
	uint8_t tid[16], par[8], fl;
	char buf[64];

	memcpy(buf, ok, 55);
	memcpy(buf + 55, "\r\nzzzzzzz", 9);
	CHECK_EQ_INT(hexword__traceparent((const uint8_t *)buf, tid, par, &fl), 0);
	CHECK_EQ_INT(tid[0], 0x4b);
	CHECK_EQ_INT(tid[15], 0x36);
	CHECK_EQ_INT(par[0], 0x00);
	CHECK_EQ_INT(par[7], 0xb7);
	CHECK_EQ_INT(fl, 1);
	/* every position replaced by each of a set of bytes, each byte after */
	for (int pos = 0; pos < 55; pos++) {
		for (size_t si = 0; si < sizeof(subst) - 1; si++) {
			for (size_t ai = 0; ai < sizeof(afters) - 1; ai++) {
				char v[56];

				memcpy(v, ok, 55);
				v[pos] = subst[si];
				if (!tp_agree(v, afters[ai]))
					bad++;
				total++;
			}
		}
	}
	/* versions, zero ids, random valid values */
	for (int i = 0; i < 20000; i++) {
		char v[64];
		uint8_t raw[25];

		for (int k = 0; k < 25; k++)
			raw[k] = (uint8_t)(i < 1000 ? (rnd() % 3 == 0 ? rnd() : 0) : rnd());
		snprintf(v, sizeof(v), "%02x-", raw[0]);
		for (int k = 0; k < 16; k++)
			snprintf(v + 3 + 2 * k, 3, "%02x", raw[1 + k]);
		v[35] = '-';
		for (int k = 0; k < 8; k++)
			snprintf(v + 36 + 2 * k, 3, "%02x", raw[17 + k]);
		snprintf(v + 52, 4, "-%02x", rnd() & 0xff);
		for (size_t ai = 0; ai < sizeof(afters) - 1; ai++) {
			struct tracectx_tp tp;

			if (!tp_agree(v, afters[ai]))
				bad++;
			valid += ai == 0 && tracectx__parse(v, 55, &tp) == 0;
			total++;
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(valid > 15000);	/* the random values are mostly valid ones */
	printf("  traceparent: %d cases agree with user/span/tracectx.c (%d valid random values)\n",
	       total, valid);
}

int main(void)
{
	test_encode();
	test_decode();
	test_eq_mask();
	test_tp_name();
	test_traceparent();
	return check_summary("test_hexword");
}
