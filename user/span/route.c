/* HTTP route normaliser: request-target to a bounded, low-cardinality
 * http.route. Rules are documented in route.h. */
#include <stdbool.h>
#include <string.h>

#include "span/route.h"
#include "util/textlen.h"

/* Own ctype: <ctype.h> is locale-dependent and undefined for bytes >= 0x80
 * in a signed char, and targets are raw wire bytes. */
static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_uuid(const unsigned char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !is_hex(s[i]))
			return false;
	}
	return true;
}

static bool is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_vowel(unsigned char c)
{
	c |= 0x20;
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* Rule e) in route.h: a short alphanumeric token that reads as random
 * rather than as words with a number in them. */
static bool is_random(const unsigned char *s, size_t n)
{
	unsigned lower = 0, upper = 0, digit_runs = 0, lower_upper = 0, vowels = 0;
	bool word = false;

	if (n < 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (is_digit(c)) {
			digit_runs += i == 0 || !is_digit(s[i - 1]);
			continue;
		}
		if (!is_alpha(c))
			return false;
		vowels += is_vowel(c);
		if (is_lower(c)) {
			lower++;
			continue;
		}
		upper++;
		lower_upper += i > 0 && is_lower(s[i - 1]);
		/* a capitalised word: "getUserById2", "iPhone15Pro" */
		word |= i + 3 < n && is_lower(s[i + 1]) && is_lower(s[i + 2]) && is_lower(s[i + 3]);
	}
	if (!digit_runs || !(lower + upper))
		return false;
	if (lower && upper)	/* e1 */
		return !word && (digit_runs >= 2 || lower_upper >= 2 || !vowels);
	return digit_runs >= 3 && vowels * 4 < lower + upper;	/* e2 */
}

/* is_id's byte classes, one table load per byte instead of a dozen
 * compares (route__normalize was ~1,100 instructions per span for a
 * 35-byte target) */
enum { C_DIGIT = 1, C_ALPHA = 2, C_HEX = 4, C_TOKEN = 8 };
#define C_RANGE(lo, hi, f) [lo ... hi] = (f)
static const unsigned char byte_class[256] = {
	C_RANGE('0', '9', C_DIGIT | C_HEX | C_TOKEN),
	C_RANGE('a', 'f', C_ALPHA | C_HEX | C_TOKEN), C_RANGE('g', 'z', C_ALPHA | C_TOKEN),
	C_RANGE('A', 'F', C_ALPHA | C_HEX | C_TOKEN), C_RANGE('G', 'Z', C_ALPHA | C_TOKEN),
	['_'] = C_TOKEN, ['-'] = C_TOKEN, ['+'] = C_TOKEN, ['='] = C_TOKEN, ['%'] = C_TOKEN,
};
#undef C_RANGE

static bool is_id(const unsigned char *s, size_t n)
{
	unsigned all = C_DIGIT | C_ALPHA | C_HEX | C_TOKEN, any = 0;

	for (size_t i = 0; i < n; i++) {
		all &= byte_class[s[i]];
		any |= byte_class[s[i]];
	}
	if (n == 0)
		return false;
	if (all & C_DIGIT)
		return true;
	if (is_uuid(s, n))
		return true;
	if (n >= 8 && (all & C_HEX) && (any & C_DIGIT))
		return true;
	if (n >= 16 && (all & C_TOKEN) && (any & C_DIGIT) && (any & C_ALPHA))
		return true;
	return is_random(s, n);
}

/* Offset where the path starts: past "scheme://authority" if present. */
static size_t skip_absolute(const unsigned char *t, size_t len)
{
	size_t i = 0;

	if (!len || !is_alpha(t[0]))
		return 0;
	while (i < len && (is_alpha(t[i]) || is_digit(t[i]) || t[i] == '+' ||
			   t[i] == '-' || t[i] == '.'))
		i++;
	if (len - i < 3 || memcmp(t + i, "://", 3) != 0)
		return 0;
	for (i += 3; i < len; i++)
		if (t[i] == '/' || t[i] == '?' || t[i] == '#')
			break;
	return i;
}

size_t route__normalize(const char *target, size_t len, char *out,
			size_t outsz)
{
	const unsigned char *t = (const unsigned char *)target;
	size_t pos, end, cur = 0;
	unsigned nseg = 0;
	bool cut = false;

	if (!outsz)
		return 0;
	if (outsz == 1) {
		out[0] = '\0';
		return 0;
	}
	if (!t)
		len = 0;
	len = text_len(t, len);

	pos = skip_absolute(t, len);
	end = text_path_end(t, pos, len);
	if (end - pos == 1 && t[pos] == '*') {
		memcpy(out, "*", 2);
		return 1;
	}

	/* Invariant before each segment: cur + strlen(ROUTE_CUT) + 1 <= outsz,
	 * so a cut can always be marked (when outsz >= 3). */
	while (pos < end) {
		size_t seg, seglen, next, need;
		const char *piece;
		bool last, trailing;

		while (pos < end && t[pos] == '/')
			pos++;
		if (pos == end)
			break;
		for (seg = pos; pos < end && t[pos] != '/'; pos++)
			;
		seglen = pos - seg;
		for (next = pos; next < end && t[next] == '/'; next++)
			;
		last = next == end;
		trailing = last && pos < end;

		if (nseg == ROUTE_MAX_SEGMENTS) {
			cut = true;
			break;
		}
		if (is_id(t + seg, seglen)) {
			piece = ROUTE_ID;
			seglen = sizeof(ROUTE_ID) - 1;
		} else {
			piece = (const char *)t + seg;
		}
		need = 1 + seglen + (trailing ? 1 : 0);
		if (cur + need + (last ? 0 : sizeof(ROUTE_CUT) - 1) + 1 >
		    outsz) {
			cut = true;
			break;
		}
		out[cur++] = '/';
		memcpy(out + cur, piece, seglen);
		cur += seglen;
		if (trailing)
			out[cur++] = '/';
		nseg++;
	}
	if (cut && cur + sizeof(ROUTE_CUT) <= outsz) {
		memcpy(out + cur, ROUTE_CUT, sizeof(ROUTE_CUT) - 1);
		cur += sizeof(ROUTE_CUT) - 1;
	}
	if (!cur)
		out[cur++] = '/';
	out[cur] = '\0';
	return cur;
}
