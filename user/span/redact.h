/* Secrets in request targets: the values of sensitive query keys and the
 * userinfo of absolute-form URLs are replaced before any signal sees them. */
#ifndef SONDE_SPAN_REDACT_H
#define SONDE_SPAN_REDACT_H

#include <stddef.h>

/* --url-query. REDACT_REDACT is 0 so a zeroed config is the safe default. */
enum redact_mode {
	REDACT_REDACT = 0,	/* values of sensitive keys become REDACTED */
	REDACT_KEEP = 1,	/* the query as sent */
	REDACT_DROP = 2,	/* no query: everything from '?' (or '#') on removed */
};

#define REDACT_VALUE "REDACTED"
#define REDACT_EXTRA_MAX 16	/* --url-query-keys entries */
#define REDACT_KEY_MAX 64	/* a key, NUL included; longer keys never match */

struct redact {
	enum redact_mode mode;
	unsigned int n_extra;
	char extra[REDACT_EXTRA_MAX][REDACT_KEY_MAX];	/* lower case */
};

/* "keep", "redact" or "drop" → *out; -EINVAL for anything else. */
int redact__parse_mode(const char *s, enum redact_mode *out);
/* keys: NULL, "" or "k1,k2,...": extra sensitive keys on top of the
 * defaults. -EINVAL when an entry is empty, longer than REDACT_KEY_MAX - 1,
 * holds one of "=&;#?% " or a control byte, or there are more than
 * REDACT_EXTRA_MAX; r is then left with no extra key. */
int redact__init(struct redact *r, enum redact_mode mode, const char *keys);
/* out (outsz bytes) gets target (len bytes, or up to a NUL) with the rule
 * applied, cut to fit and NUL-terminated; returns its length. Replacements
 * may make the text longer: what does not fit is left out, never a part of
 * a redacted value. No allocation. */
size_t redact__target(const struct redact *r, const char *target, size_t len, char *out,
		      size_t outsz);

#endif
