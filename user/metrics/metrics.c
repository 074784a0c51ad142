/* Metrics registry: per-family hash of label sets to series, a cardinality
 * cap with an OpenTelemetry-style overflow series. Exporters read it through
 * metrics__foreach (export/prom_text.c, export/otlp_encode.c). */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

/* Series remembered per family for the lookup's shortcut (get_series). */
#define METRICS_RECENT 4

struct series {
	uint64_t hash;
	double value;
	double sum;
	uint64_t count;
	uint64_t *buckets;	/* nbounds+1, inside this allocation */
	const char *const *values; /* nlabels sanitised copies, inside too */
	void *scratch;		/* an exporter's, see metrics_series_view */
};

struct family {
	enum metric_type type;
	char *name;
	char *help;
	char *label_names[METRICS_MAX_LABELS];
	size_t nlabels;
	double *bounds;
	size_t nbounds;
	size_t max_series;

	struct series **series;	/* creation order, for stable output */
	size_t nseries, series_cap;
	/* Open addressing, linear probing; slot holds series index + 1. */
	uint32_t *table;
	size_t table_cap;	/* power of two, or 0 */

	/* Allocated up front so that diverting never needs memory. */
	struct series *overflow;
	uint64_t dropped;
	/* Series of the latest lookups, most recent first: observations
	 * mostly repeat a few label sets (a hot route; server and client
	 * spans taking turns in one counter), and comparing the labels is
	 * far cheaper than hashing with UTF-8 checks. Never the overflow
	 * series; NULL when unused. */
	struct series *recent[METRICS_RECENT];
	void *scratch;		/* an exporter's, see metrics__family_scratch */
};

struct metrics {
	struct family **fams;
	int nfams, cap;
};

/* ---- UTF-8 sanitising ---------------------------------------------------
 * Prometheus rejects a whole scrape on one invalid UTF-8 label value, and
 * label values here come straight off the wire, so invalid bytes are mapped
 * to U+FFFD. Lookup hashes and compares the mapped form so that no mapped
 * copy is needed on the hot path.
 */
static const unsigned char utf8_repl[3] = { 0xef, 0xbf, 0xbd };

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s[0] starts an
 * invalid one. s is NUL-terminated and NUL is never a continuation byte, so
 * this never reads past the terminator. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		/* Reject overlongs (e0 < a0) and surrogates (ed >= a0). */
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
			return 0;
		return ((s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return ((s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
			(s[3] & 0xc0) == 0x80) ? 4 : 0;
	}
	return 0;
}

/* Bytes the sanitised form of s occupies, without the NUL. */
static size_t utf8_clean_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p) {
		size_t k = utf8_seq(p);

		n += k ? k : sizeof(utf8_repl);
		p += k ? k : 1;
	}
	return n;
}

/* Writes the sanitised form of s plus NUL to dst; returns the end. */
static char *utf8_clean_copy(char *dst, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t k = utf8_seq(p);

		if (k) {
			memcpy(dst, p, k);
			dst += k;
			p += k;
		} else {
			memcpy(dst, utf8_repl, sizeof(utf8_repl));
			dst += sizeof(utf8_repl);
			p++;
		}
	}
	*dst++ = '\0';
	return dst;
}

/* Is the sanitised form of raw equal to clean? */
static bool utf8_clean_eq(const char *clean, const char *raw)
{
	const unsigned char *c = (const unsigned char *)clean;
	const unsigned char *r = (const unsigned char *)raw;

	while (*r) {
		size_t k = utf8_seq(r);
		const unsigned char *src = k ? r : utf8_repl;
		size_t n = k ? k : sizeof(utf8_repl);

		/* Byte by byte: stops at clean's NUL, which src never holds. */
		for (size_t i = 0; i < n; i++)
			if (c[i] != src[i])
				return false;
		c += n;
		r += k ? k : 1;
	}
	return *c == '\0';
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= FNV_PRIME;
	}
	return h;
}

static const char *label_value(const char *const *values, size_t i)
{
	return values && values[i] ? values[i] : "";
}

static uint64_t hash_values(const char *const *values, size_t n)
{
	static const unsigned char sep = 0xff;	/* never in valid UTF-8 */
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p =
			(const unsigned char *)label_value(values, i);

		while (*p) {
			size_t k = utf8_seq(p);

			if (k) {
				h = fnv(h, p, k);
				p += k;
			} else {
				h = fnv(h, utf8_repl, sizeof(utf8_repl));
				p++;
			}
		}
		h = fnv(h, &sep, 1);
	}
	/* Mix the high bits down: the table indexes with the low ones. */
	h ^= h >> 29;
	return h;
}

/* ---- families ------------------------------------------------------- */

static struct family *get_family(const struct metrics *m, int fam)
{
	if (!m || fam < 0 || fam >= m->nfams)
		return NULL;
	return m->fams[fam];
}

static struct series *series_alloc(const struct family *f,
				   const char *const *values, size_t nlabels,
				   uint64_t hash)
{
	size_t nb = f->type == METRIC_HISTOGRAM ? f->nbounds + 1 : 0;
	size_t sz = sizeof(struct series) + nb * sizeof(uint64_t) +
		    nlabels * sizeof(char *);
	struct series *s;
	char **vals;
	char *str;

	for (size_t i = 0; i < nlabels; i++)
		sz += utf8_clean_len(label_value(values, i)) + 1;
	s = calloc(1, sz);
	if (!s)
		return NULL;
	s->hash = hash;
	s->buckets = (uint64_t *)(s + 1);
	vals = (char **)(s->buckets + nb);
	s->values = (const char *const *)vals;
	str = (char *)(vals + nlabels);
	for (size_t i = 0; i < nlabels; i++) {
		vals[i] = str;
		str = utf8_clean_copy(str, label_value(values, i));
	}
	return s;
}

static void family_free(struct family *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nseries; i++) {
		free(f->series[i]->scratch);
		free(f->series[i]);
	}
	free(f->series);
	free(f->table);
	if (f->overflow)
		free(f->overflow->scratch);
	free(f->overflow);
	free(f->scratch);
	for (size_t i = 0; i < f->nlabels; i++)
		free(f->label_names[i]);
	free(f->bounds);
	free(f->help);
	free(f->name);
	free(f);
}

static bool valid_metric_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == ':'))
			return false;
	}
	return true;
}

static bool valid_label_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9') || strncmp(s, "__", 2) == 0)
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Does family f already put a "# TYPE" or sample line named n[0..len)? */
static bool name_taken(const struct family *f, const char *n, size_t len)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	size_t fl = strlen(f->name);

	if (fl == len && memcmp(f->name, n, len) == 0)
		return true;
	if (f->type != METRIC_HISTOGRAM || len <= fl ||
	    memcmp(f->name, n, fl) != 0)
		return false;
	for (size_t i = 0; i < 3; i++)
		if (len - fl == strlen(sfx[i]) &&
		    memcmp(n + fl, sfx[i], len - fl) == 0)
			return true;
	return false;
}

/* A new family must not share any exposed name with an old one, or the
 * exposition would carry two TYPE lines for it and fail to parse. */
static bool name_conflicts(const struct metrics *m, enum metric_type type,
			   const char *name)
{
	static const char *const sfx[] = { "", "_bucket", "_sum", "_count" };
	size_t nsfx = type == METRIC_HISTOGRAM ? 4 : 1;
	char buf[METRICS_MAX_NAME + sizeof("_bucket")];

	for (size_t i = 0; i < nsfx; i++) {
		size_t n = (size_t)snprintf(buf, sizeof(buf), "%s%s", name,
					    sfx[i]);

		if (strcmp(buf, METRICS_DROPPED_NAME) == 0)
			return true;
		for (int j = 0; j < m->nfams; j++)
			if (name_taken(m->fams[j], buf, n))
				return true;
	}
	return false;
}

int metrics__family(struct metrics *m, enum metric_type type, const char *name,
		    const char *help, const char *const *label_names,
		    size_t nlabels, const double *bounds, size_t nbounds,
		    size_t max_series)
{
	struct family *f = NULL;
	size_t help_len;
	int err = -EINVAL;

	if (!m || (type != METRIC_COUNTER && type != METRIC_GAUGE &&
		   type != METRIC_HISTOGRAM))
		goto out;
	if (!valid_metric_name(name) || strlen(name) > METRICS_MAX_NAME ||
	    nlabels > METRICS_MAX_LABELS ||
	    (nlabels && !label_names))
		goto out;
	for (size_t i = 0; i < nlabels; i++) {
		if (!valid_label_name(label_names[i]) ||
		    strcmp(label_names[i], METRICS_OVERFLOW_LABEL) == 0 ||
		    (type == METRIC_HISTOGRAM &&
		     strcmp(label_names[i], "le") == 0))
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(label_names[i], label_names[j]) == 0)
				goto out;
	}
	if (type == METRIC_HISTOGRAM) {
		if (nbounds && !bounds)
			goto out;
		/* +Inf is implicit; NaN would break the bucket search. */
		for (size_t i = 0; i < nbounds; i++)
			if (!isfinite(bounds[i]) ||
			    (i && !(bounds[i] > bounds[i - 1])))
				goto out;
	} else {
		nbounds = 0;
	}
	/* Series indexes are stored as uint32 in the table. */
	if (max_series > UINT32_MAX / 4)
		goto out;
	err = -EEXIST;
	if (name_conflicts(m, type, name))
		goto out;

	err = -ENOMEM;
	if (m->nfams == m->cap) {
		int cap = m->cap ? m->cap * 2 : 16;
		struct family **fams = realloc(m->fams, cap * sizeof(*fams));

		if (!fams)
			goto out;
		m->fams = fams;
		m->cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto out;
	f->type = type;
	f->nbounds = nbounds;
	f->max_series = max_series ? max_series : METRICS_DEFAULT_MAX_SERIES;
	f->name = strdup(name);
	help_len = utf8_clean_len(help ? help : "");
	f->help = malloc(help_len + 1);
	if (!f->name || !f->help)
		goto out;
	utf8_clean_copy(f->help, help ? help : "");
	for (size_t i = 0; i < nlabels; i++) {
		f->label_names[i] = strdup(label_names[i]);
		if (!f->label_names[i])
			goto out;
		f->nlabels = i + 1;
	}
	if (nbounds) {
		f->bounds = malloc(nbounds * sizeof(double));
		if (!f->bounds)
			goto out;
		memcpy(f->bounds, bounds, nbounds * sizeof(double));
	}
	f->overflow = series_alloc(f, NULL, 0, 0);
	if (!f->overflow)
		goto out;

	m->fams[m->nfams] = f;
	return m->nfams++;
out:
	family_free(f);
	return err;
}

struct metrics *metrics__new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics__free(struct metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nfams; i++)
		family_free(m->fams[i]);
	free(m->fams);
	free(m);
}

/* ---- series lookup -------------------------------------------------- */

static bool series_match(const struct family *f, const struct series *s,
			 const char *const *values, uint64_t hash)
{
	if (s->hash != hash)
		return false;
	for (size_t i = 0; i < f->nlabels; i++)
		if (!utf8_clean_eq(s->values[i], label_value(values, i)))
			return false;
	return true;
}

static void table_put(uint32_t *table, size_t cap, uint64_t hash, uint32_t idx)
{
	size_t mask = cap - 1;
	size_t pos = hash & mask;

	while (table[pos])
		pos = (pos + 1) & mask;
	table[pos] = idx + 1;
}

/* Keeps the load factor at or below 1/2 for one more series. */
static int table_grow(struct family *f)
{
	size_t cap;
	uint32_t *table;

	if ((f->nseries + 1) * 2 <= f->table_cap)
		return 0;
	cap = f->table_cap ? f->table_cap * 2 : 16;
	table = calloc(cap, sizeof(*table));
	if (!table)
		return -ENOMEM;
	for (size_t i = 0; i < f->nseries; i++)
		table_put(table, cap, f->series[i]->hash, (uint32_t)i);
	free(f->table);
	f->table = table;
	f->table_cap = cap;
	return 0;
}

/* The series for values, created if needed; the overflow series when the
 * family is at its cap or memory runs out (either way the label set is lost,
 * so both count as dropped). Never NULL. */
static struct series *get_series_hashed(struct family *f, const char *const *values);

/* a == b, inline: label values are a few bytes, and a call per label
 * (strcmp) cost more than the compare. */
static inline bool str_same(const char *a, const char *b)
{
	for (; *a == *b; a++, b++)
		if (!*a)
			return true;
	return false;
}

/* Exact byte equality with the stored (already UTF-8-clean) values: a raw
 * value that needed cleaning never matches and takes the hashed path. */
static bool series_same_raw(const struct family *f, const struct series *s,
			    const char *const *values)
{
	for (size_t i = 0; i < f->nlabels; i++)
		if (!str_same(s->values[i], label_value(values, i)))
			return false;
	return true;
}

static struct series *get_series(struct family *f, const char *const *values)
{
	struct series *s;
	size_t k;

	for (k = 0; k < METRICS_RECENT && (s = f->recent[k]); k++)
		if (series_same_raw(f, s, values))
			break;
	if (k == METRICS_RECENT || !f->recent[k]) {
		s = get_series_hashed(f, values);
		if (s == f->overflow)
			return s;
		if (k == METRICS_RECENT)
			k--;	/* the least recent one goes */
	}
	/* most recent first */
	memmove(&f->recent[1], &f->recent[0], k * sizeof(f->recent[0]));
	f->recent[0] = s;
	return s;
}

static struct series *get_series_hashed(struct family *f, const char *const *values)
{
	uint64_t hash = hash_values(values, f->nlabels);
	struct series *s;

	if (f->table_cap) {
		size_t mask = f->table_cap - 1;

		for (size_t pos = hash & mask; f->table[pos];
		     pos = (pos + 1) & mask) {
			s = f->series[f->table[pos] - 1];
			if (series_match(f, s, values, hash))
				return s;
		}
	}
	if (f->nseries >= f->max_series)
		goto overflow;
	if (f->nseries == f->series_cap) {
		size_t cap = f->series_cap ? f->series_cap * 2 : 8;
		struct series **arr = realloc(f->series, cap * sizeof(*arr));

		if (!arr)
			goto overflow;
		f->series = arr;
		f->series_cap = cap;
	}
	if (table_grow(f))
		goto overflow;
	s = series_alloc(f, values, f->nlabels, hash);
	if (!s)
		goto overflow;
	table_put(f->table, f->table_cap, hash, (uint32_t)f->nseries);
	f->series[f->nseries++] = s;
	return s;
overflow:
	f->dropped++;
	return f->overflow;
}

void metrics__observe(struct metrics *m, int fam,
		      const char *const *label_values, double v)
{
	struct family *f = get_family(m, fam);
	struct series *s;
	size_t lo = 0, hi;

	if (!f || f->type != METRIC_HISTOGRAM || isnan(v))
		return;
	/* First bucket whose bound is >= v: le is inclusive. The first
	 * bound is tried alone before the search: most requests are fast. */
	hi = f->nbounds;
	if (hi && v <= f->bounds[0])
		hi = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	s = get_series(f, label_values);
	s->buckets[lo]++;
	s->count++;
	s->sum += v;
}

void metrics__observe_buckets(struct metrics *m, int fam,
			      const char *const *label_values,
			      const uint64_t *bucket_counts, double sum)
{
	struct family *f = get_family(m, fam);
	struct series *s;

	if (!f || f->type != METRIC_HISTOGRAM || !bucket_counts || isnan(sum))
		return;
	s = get_series(f, label_values);
	for (size_t i = 0; i <= f->nbounds; i++) {
		s->buckets[i] += bucket_counts[i];
		s->count += bucket_counts[i];
	}
	s->sum += sum;
}

void metrics__add(struct metrics *m, int fam, const char *const *label_values,
		  double v)
{
	struct family *f = get_family(m, fam);

	if (!f || f->type == METRIC_HISTOGRAM || isnan(v) ||
	    (f->type == METRIC_COUNTER && v < 0))
		return;
	get_series(f, label_values)->value += v;
}

void metrics__set(struct metrics *m, int fam, const char *const *label_values,
		  double v)
{
	struct family *f = get_family(m, fam);

	if (!f || f->type == METRIC_HISTOGRAM)
		return;
	get_series(f, label_values)->value = v;
}

/* ---- iteration ------------------------------------------------------ */

static void view_fill(struct metrics_series_view *v, const struct family *f,
		      struct series *s, bool overflow)
{
	v->scratch = &s->scratch;
	v->label_values = overflow ? NULL : s->values;
	v->nlabels = overflow ? 0 : f->nlabels;
	v->value = s->value;
	v->bucket_counts = f->type == METRIC_HISTOGRAM ? s->buckets : NULL;
	v->count = s->count;
	v->sum = s->sum;
	v->overflow = overflow;
}

void metrics__foreach(struct metrics *m, int fam,
		      void (*fn)(void *arg, const struct metrics_series_view *s),
		      void *arg)
{
	struct family *f = get_family(m, fam);
	struct metrics_series_view v;

	if (!f || !fn)
		return;
	for (size_t i = 0; i < f->nseries; i++) {
		view_fill(&v, f, f->series[i], false);
		fn(arg, &v);
	}
	if (f->dropped) {
		view_fill(&v, f, f->overflow, true);
		fn(arg, &v);
	}
}

void **metrics__family_scratch(struct metrics *m, int fam)
{
	struct family *f = get_family(m, fam);

	return f ? &f->scratch : NULL;
}

int metrics__nfamilies(const struct metrics *m)
{
	return m ? m->nfams : 0;
}

int metrics__family_desc(const struct metrics *m, int fam,
			 struct metrics_family_desc *out)
{
	const struct family *f = get_family(m, fam);

	if (!f || !out)
		return -EINVAL;
	out->type = f->type;
	out->name = f->name;
	out->help = f->help;
	out->label_names = (const char *const *)f->label_names;
	out->nlabels = f->nlabels;
	out->bounds = f->bounds;
	out->nbounds = f->nbounds;
	out->max_series = f->max_series;
	out->nseries = f->nseries;
	out->dropped = f->dropped;
	return 0;
}

/* ---- text buffer ----------------------------------------------------
 * What /metrics is written into: the exposition (export/prom_text.c) and
 * then the host collectors append to one growing buffer. */

int metrics_buf__reserve(struct metrics_buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *data;

		while (cap < b->len + n + 1)
			cap *= 2;
		data = realloc(b->data, cap);
		if (!data)
			return -ENOMEM;
		b->data = data;
		b->cap = cap;
	}
	return 0;
}

int metrics_buf__append(struct metrics_buf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap && metrics_buf__reserve(b, n))
		return -ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void metrics_buf__free(struct metrics_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

size_t metrics__format_u64(uint64_t v, char *out)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

size_t metrics__format_fast(double v, char *out)
{
	static const double p10[] = { 1, 10, 100, 1e3, 1e4, 1e5, 1e6 };
	const double lim = 9007199254740992.0;	/* 2^53: integers stay exact */
	double a = v < 0 ? -v : v;
	char *o = out;

	if (!(a < lim))		/* NaN, Inf, huge */
		return 0;
	if (v < 0)
		*o++ = '-';
	if (a == (double)(uint64_t)a) {
		if (v == 0)	/* -0 too */
			o = out;
		return (size_t)(o - out) + metrics__format_u64((uint64_t)a, o);
	}
	if (a < 1e-4)
		return 0;
	for (int k = 1; k <= 6; k++) {
		double scaled = a * p10[k], n;
		uint64_t N, ip;
		size_t len;
		char digits[24];

		/* at most 15 significant digits: then no other decimal of as
		 * many digits reads back as v, so this is %g's text */
		if (!(scaled < 1e15))
			return 0;
		n = (double)(uint64_t)(scaled + 0.5);
		if (n / p10[k] != a)
			continue;
		N = (uint64_t)n;
		while (N % 10 == 0)	/* k was not minimal: cannot happen, but stay exact */
			N /= 10, k--;
		ip = N;
		for (int i = 0; i < k; i++)
			ip /= 10;
		len = metrics__format_u64(N, digits);
		if ((int)len <= k) {	/* 0.000ddd */
			*o++ = '0';
			*o++ = '.';
			for (int i = (int)len; i < k; i++)
				*o++ = '0';
			memcpy(o, digits, len);
			o += len;
		} else {
			size_t il = len - (size_t)k;

			memcpy(o, digits, il);
			o += il;
			*o++ = '.';
			memcpy(o, digits + il, (size_t)k);
			o += k;
		}
		(void)ip;
		*o = '\0';
		return (size_t)(o - out);
	}
	return 0;
}
