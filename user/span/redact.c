/* The redaction rule for request targets (see redact.h): one pass over the
 * target, writing into a bounded buffer. Query keys are compared after
 * percent-decoding and ASCII lower-casing, so "Pass%77ord" is "password". */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "span/redact.h"
#include "util/textlen.h"

/* The OpenTelemetry list for url.query / url.full (sig, signature,
 * AWSAccessKeyId, X-Goog-Signature, X-Amz-*) and the usual names of
 * credentials, lower case. Matched whole, case-insensitively (semconv asks
 * for case-sensitive matching; a secret sent as "Password" is a secret). */
#define K(s) { sizeof(s) - 1, s }
static const struct {
	size_t len;
	const char *name;
} defaults[] = {
	K("password"), K("passwd"), K("pwd"), K("secret"), K("token"), K("access_token"),
	K("refresh_token"), K("id_token"), K("api_key"), K("apikey"), K("key"), K("auth"),
	K("authorization"), K("session"), K("sessionid"), K("session_id"), K("sig"),
	K("signature"), K("awsaccesskeyid"), K("x-goog-signature"), K("x-amz-signature"),
	K("x-amz-credential"), K("x-amz-security-token"), K("code"), K("credential"),
	K("client_secret"), K("private_token"),
};
#undef K

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int redact__parse_mode(const char *s, enum redact_mode *out)
{
	if (strcmp(s, "redact") == 0)
		*out = REDACT_REDACT;
	else if (strcmp(s, "keep") == 0)
		*out = REDACT_KEEP;
	else if (strcmp(s, "drop") == 0)
		*out = REDACT_DROP;
	else
		return -EINVAL;
	return 0;
}

int redact__init(struct redact *r, enum redact_mode mode, const char *keys)
{
	const char *p = keys;

	r->mode = mode;
	r->n_extra = 0;
	if (!p || !*p)
		return 0;
	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n >= REDACT_KEY_MAX || r->n_extra == REDACT_EXTRA_MAX)
			goto bad;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];

			if (c <= ' ' || c == 0x7f || strchr("=&;#?%", c))
				goto bad;
			r->extra[r->n_extra][i] = (char)lower(c);
		}
		r->extra[r->n_extra++][n] = '\0';
		if (!p[n])
			return 0;
		p += n + 1;
	}
bad:
	r->n_extra = 0;
	return -EINVAL;
}

/* Is the key k (n bytes, as sent) sensitive? */
static bool sensitive(const struct redact *r, const unsigned char *k, size_t n)
{
	char d[REDACT_KEY_MAX];
	size_t dn = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = k[i];
		int hi, lo;

		if (c == '%' && i + 2 < n &&
		    (hi = hexval(k[i + 1])) >= 0 && (lo = hexval(k[i + 2])) >= 0) {
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (dn == sizeof(d) - 1)
			return false;	/* longer than any key we know */
		d[dn++] = (char)lower(c);
	}
	d[dn] = '\0';
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (defaults[i].len == dn && memcmp(defaults[i].name, d, dn) == 0)
			return true;
	for (unsigned int i = 0; i < r->n_extra; i++)
		if (strcmp(r->extra[i], d) == 0)
			return true;
	return false;
}

/* A bounded writer: bytes past the end are dropped. */
struct out {
	char *p;
	size_t len, cap;	/* cap: room without the NUL */
};

static void put(struct out *o, const void *s, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

#define PUT_LIT(o, s) put(o, s, sizeof(s) - 1)

/* Offset just past "scheme://", or 0 when t is not absolute-form. */
static size_t scheme_end(const unsigned char *t, size_t len)
{
	size_t i = 0;

	if (!len || !((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
		return 0;
	while (i < len && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
			   (t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.'))
		i++;
	if (len - i < 3 || memcmp(t + i, "://", 3) != 0)
		return 0;
	return i + 3;
}

/* key=value pairs in t[0..n), separated by '&' or ';' (some servers split
 * on both, so both are boundaries here): the values of sensitive keys are
 * replaced, empty values, keys without '=' and everything else kept. */
static void pairs(const struct redact *r, const unsigned char *t, size_t n, struct out *o)
{
	size_t p = 0;

	while (p < n) {
		size_t q = p, eq;

		while (q < n && t[q] != '&' && t[q] != ';')
			q++;
		for (eq = p; eq < q && t[eq] != '='; eq++)
			;
		if (eq + 1 < q && sensitive(r, t + p, eq - p)) {
			put(o, t + p, eq + 1 - p);
			PUT_LIT(o, REDACT_VALUE);
		} else {
			put(o, t + p, q - p);
		}
		if (q < n)
			put(o, t + q, 1);
		p = q + 1;
	}
}

size_t redact__target(const struct redact *r, const char *target, size_t len, char *out,
		      size_t outsz)
{
	const unsigned char *t = (const unsigned char *)target;
	struct out o = { out, 0, outsz ? outsz - 1 : 0 };
	size_t i, end, at;

	if (!outsz)
		return 0;
	if (!t) {
		t = (const unsigned char *)"";
		len = 0;
	}
	len = text_len(t, len);

	/* userinfo: whatever it holds, in every mode (semconv: MUST NOT be
	 * recorded; its form for url.full is REDACTED:REDACTED@) */
	i = scheme_end(t, len);
	if (i) {
		for (end = i; end < len && t[end] != '/' && t[end] != '?' && t[end] != '#'; end++)
			;
		for (at = end; at > i && t[at - 1] != '@'; at--)
			;
		put(&o, t, i);
		if (at > i) {
			PUT_LIT(&o, REDACT_VALUE ":" REDACT_VALUE "@");
			i = at;
		}
	}
	end = text_path_end((const unsigned char *)t, i, len);
	put(&o, t + i, end - i);
	i = end;
	if (i < len) {
		switch (r->mode) {
		case REDACT_KEEP:
			put(&o, t + i, len - i);
			break;
		case REDACT_DROP:
			break;
		case REDACT_REDACT:
			/* the query, then a fragment (not sent by browsers, but an
			 * OAuth implicit-flow token lives there) */
			while (i < len) {
				for (end = i + 1; end < len && t[end] != '#'; end++)
					;
				put(&o, t + i, 1);
				pairs(r, t + i + 1, end - i - 1, &o);
				i = end;
			}
			break;
		}
	}
	out[o.len] = '\0';
	return o.len;
}
