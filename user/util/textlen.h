/* Where a NUL cuts a length-bounded text short, and a copy cut to fit. */
#ifndef SONDE_UTIL_TEXTLEN_H
#define SONDE_UTIL_TEXTLEN_H

#include <stddef.h>
#include <string.h>

/* len, or where a NUL cuts t short. Inline for the short targets most
 * requests have: a memchr call per span showed in profiles. */
static inline size_t text_len(const unsigned char *t, size_t len)
{
	const unsigned char *nul;

	if (len <= 32) {
		for (size_t i = 0; i < len; i++)
			if (!t[i])
				return i;
		return len;
	}
	nul = memchr(t, '\0', len);
	return nul ? (size_t)(nul - t) : len;
}

/* Where a request-target's path ends: the first '?' or '#' of t[from,
 * len), else len. Past a few bytes, two memchr calls (vectorised) instead
 * of a compare pair per byte: redaction and the route both look for it
 * on every span. */
static inline size_t text_path_end(const unsigned char *t, size_t from, size_t len)
{
	const unsigned char *q, *h;

	if (from >= len || len - from <= 16) {
		for (; from < len; from++)
			if (t[from] == '?' || t[from] == '#')
				break;
		return from;
	}
	q = memchr(t + from, '?', len - from);
	h = memchr(t + from, '#', (q ? (size_t)(q - t) : len) - from);
	return h ? (size_t)(h - t) : q ? (size_t)(q - t) : len;
}

/* snprintf(dst, n, "%s", src) without the format machinery (n > 0): a
 * call of it cost ~1,000 instructions, four per request with an
 * X-Request-ID. */
static inline void text_copy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

#endif
