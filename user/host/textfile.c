/* textfile collector: the *.prom files of --collector.textfile.directory
 * (cron jobs write them) merged into the page the way node_exporter 1.5
 * does it. A file that does not parse as text format 0.0.4, or carries a
 * timestamp, is skipped whole and sets node_textfile_scrape_error 1; a
 * family whose HELP or TYPE disagrees with its first appearance in an
 * earlier file, and a series seen before, are dropped. The page never
 * breaks: everything is re-rendered from the parsed values.
 * Bounded: 1 MiB per file, TF_FILES files, TF_SERIES series, TF_ARENA
 * bytes of names, help texts and labels per scrape; beyond that the rest
 * is skipped and counted as an error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/collectors.h"
#include "host/textfile.h"

#define TF_FILE_MAX (1 << 20)
#define TF_FILES 1024
#define TF_FAMS 4096
#define TF_SERIES 20000
#define TF_POINTS 100000	/* quantiles + buckets over all series */
#define TF_ARENA (8 << 20)
#define TF_LABELS 64		/* label pairs per sample */

enum tf_type { TF_COUNTER, TF_GAUGE, TF_SUMMARY, TF_UNTYPED, TF_HISTOGRAM, TF_UNSET };

struct tf_point {		/* a quantile or a bucket */
	double bound, value;
	int next;
};

struct tf_label {
	const char *name, *value;	/* value unescaped, arena */
	size_t nlen, vlen;
};

struct tf_series {
	const char *labels;	/* k="v",... sorted by name, escaped; "" for none */
	struct tf_label *lab;	/* the same, parsed (names point into the file) */
	int nlab;
	double value, sum;	/* value: counter/gauge/untyped */
	double count;
	int points;		/* first tf_point, -1 */
	int next;		/* next series of the same family (per file, then merged) */
	int owner;		/* its tf_ffam while parsing, its tf_fam once merged */
	unsigned char has_ts;
};

/* A family as one file declares it. */
struct tf_ffam {
	const char *name, *help;	/* help NULL: none in that file */
	enum tf_type type;
	int file;
	int first, last;	/* series */
	int next_in_name;	/* next tf_ffam with the same name (file order) */
};

/* A family of the page: the first tf_ffam of a name decides help/type. */
struct tf_fam {
	const char *name, *help;
	enum tf_type type;
	int ffams;		/* first tf_ffam of this name */
	int first, last;	/* merged series */
	int nfiles;
};

/* Open-addressing index from (owner, name) to an array index, emptied in
 * O(1) by bumping gen: lookups stay O(1) however many families or series
 * a file has (a linear scan made 19000 series of one family cost 0.6 s). */
#define TF_HASH (1 << 17)	/* > 2 * (TF_SERIES + TF_FAMS) */

struct tf_tab {
	unsigned gen[TF_HASH];
	int idx[TF_HASH];
	unsigned cur;
};

static uint32_t tf_hash(int owner, const char *s)
{
	uint32_t h = 2166136261u ^ (uint32_t)owner;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void tab_reset(struct tf_tab *t)
{
	if (++t->cur == 0) {	/* wrapped: really clear */
		memset(t->gen, 0, sizeof(t->gen));
		t->cur = 1;
	}
}

/* The slot of (owner, key): either holding an index eq() accepts, or the
 * empty one where it goes. */
static unsigned tab_slot(const struct tf_tab *t, int owner, const char *key,
			 int (*eq)(int idx, int owner, const char *key))
{
	unsigned i = tf_hash(owner, key) & (TF_HASH - 1);

	while (t->gen[i] == t->cur && !eq(t->idx[i], owner, key))
		i = (i + 1) & (TF_HASH - 1);
	return i;
}

static int tab_has(const struct tf_tab *t, unsigned slot)
{
	return t->gen[slot] == t->cur;
}

static void tab_put(struct tf_tab *t, unsigned slot, int idx)
{
	t->gen[slot] = t->cur;
	t->idx[slot] = idx;
}

static struct tf_state {
	char *arena;
	size_t used;
	char *files[TF_FILES];	/* full paths, arena */
	double mtimes[TF_FILES];
	int nfiles;
	struct tf_ffam ffam[TF_FAMS];
	int nffam;
	struct tf_fam fam[TF_FAMS];
	int nfam;
	struct tf_series series[TF_SERIES];
	int nseries;
	struct tf_point points[TF_POINTS];
	int npoints;
	int error;
	struct tf_tab ffam_tab;	/* name -> ffam, this file's */
	struct tf_tab series_tab;	/* (ffam, labels) -> series: summary/histogram grouping */
	struct tf_tab fam_tab;	/* name -> fam, this scrape */
	struct tf_tab dup_tab;	/* (fam, labels) -> series merged, this scrape */
} *tf;

static int eq_ffam(int idx, int owner, const char *key)
{
	(void)owner;
	return !strcmp(tf->ffam[idx].name, key);
}

static int eq_fam(int idx, int owner, const char *key)
{
	(void)owner;
	return !strcmp(tf->fam[idx].name, key);
}

static int eq_series(int idx, int owner, const char *key)
{
	return tf->series[idx].owner == owner && !strcmp(tf->series[idx].labels, key);
}

static char *tf_alloc(size_t n)
{
	char *p;

	tf->used = (tf->used + 7) & ~(size_t)7;	/* tf_label arrays live here too */
	if (tf->used + n > TF_ARENA)
		return NULL;
	p = tf->arena + tf->used;
	tf->used += n;
	return p;
}

static char *tf_strndup(const char *s, size_t n)
{
	char *p = tf_alloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ---- Go-compatible numbers ---- */

/* strconv.ParseFloat as the text format uses it (no hex, no '_', the
 * names inf/infinity/nan in any case, overflow is an error). */
int textfile__parse_float(const char *s, size_t n, double *out)
{
	char tmp[64], *end;
	const char *p = s;

	if (n == 0 || n >= sizeof(tmp))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (s[i] == 'x' || s[i] == 'X' || s[i] == 'p' || s[i] == 'P' || s[i] == '_' ||
		    s[i] == '(' || s[i] == ' ')
			return -EINVAL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (*p == '+' || *p == '-')
		p++;
	/* strtod takes "in", "nanX"… only whole words count in Go */
	if ((*p | 0x20) == 'i' || (*p | 0x20) == 'n') {
		const char *w = tmp + (p - s);

		if (strcasecmp(w, "inf") && strcasecmp(w, "infinity") && strcasecmp(w, "nan"))
			return -EINVAL;
		if ((*p | 0x20) == 'n' && p != s)
			return -EINVAL;	/* Go rejects a signed NaN */
	}
	errno = 0;
	*out = strtod(tmp, &end);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE && isinf(*out))
		return -ERANGE;
	return 0;
}

/* strconv.FormatFloat(v, 'g', -1, 64): the shortest digits that read back,
 * in exponent form when the exponent is < -4 or >= 6 (1e+06). */
size_t textfile__format_float(double v, char *out, size_t size)
{
	char e[40], digits[24];
	int prec, exp, nd = 0, neg = v < 0;
	size_t o = 0;
	char *p;

	if (isnan(v))
		return (size_t)snprintf(out, size, "NaN");
	if (isinf(v))
		return (size_t)snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
	if (v == 0)
		return (size_t)snprintf(out, size, signbit(v) ? "-0" : "0");
	for (prec = 0; prec < 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, v);
		if (strtod(e, NULL) == v)
			break;
	}
	/* e = [-]d.ddde[+-]xx */
	for (p = e + neg; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (size < 32)
		return 0;
	if (neg)
		out[o++] = '-';
	if (exp < -4 || exp >= 6) {	/* Go's threshold for the shortest form */
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			memcpy(out + o, digits + 1, (size_t)nd - 1);
			o += (size_t)nd - 1;
		}
		o += (size_t)snprintf(out + o, size - o, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
		return o;
	}
	if (exp < 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = -1; i > exp; i--)
			out[o++] = '0';
		memcpy(out + o, digits, (size_t)nd);
		o += (size_t)nd;
	} else {
		for (int i = 0; i <= exp || i < nd; i++) {
			if (i == exp + 1)
				out[o++] = '.';
			out[o++] = i < nd ? digits[i] : '0';
		}
	}
	out[o] = '\0';
	return o;
}

/* ---- the text format parser (one file) ---- */

struct tf_parser {
	const char *s, *end;
	int file;
	int first_ffam;		/* this file's families start here */
	const char *err;
};

static int is_name_start(int c, int metric)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static int is_name_char(int c, int metric)
{
	return is_name_start(c, metric) || (c >= '0' && c <= '9');
}

static void skip_blank(struct tf_parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t'))
		p->s++;
}

static size_t read_name(struct tf_parser *p, int metric)
{
	const char *b = p->s;

	if (p->s < p->end && is_name_start(*p->s, metric))
		while (p->s < p->end && is_name_char(*p->s, metric))
			p->s++;
	return (size_t)(p->s - b);
}

static int at_eol(const struct tf_parser *p)
{
	return p->s < p->end && *p->s == '\n';
}

static int fail(struct tf_parser *p, const char *why)
{
	p->err = why;
	return -EINVAL;
}

/* The family a sample or comment name belongs to in this file: its own,
 * or a summary's/histogram's for the _sum/_count/_bucket names. */
static int ffam_lookup(struct tf_parser *p, const char *name, size_t n, int *suffix)
{
	static const struct { const char *sfx; size_t len; int hist_only; } sfx[] = {
		{ "_count", 6, 0 }, { "_sum", 4, 0 }, { "_bucket", 7, 1 },
	};

	char key[1024];
	unsigned slot;

	(void)p;	/* ffam_tab holds this file's families only */
	*suffix = 0;
	if (n >= sizeof(key))
		return -1;
	memcpy(key, name, n);
	key[n] = '\0';
	slot = tab_slot(&tf->ffam_tab, 0, key, eq_ffam);
	if (tab_has(&tf->ffam_tab, slot))
		return tf->ffam_tab.idx[slot];
	for (int k = 0; k < 3; k++) {
		size_t base = n - sfx[k].len;
		const struct tf_ffam *f;

		if (n <= sfx[k].len || memcmp(name + base, sfx[k].sfx, sfx[k].len))
			continue;
		key[base] = '\0';
		slot = tab_slot(&tf->ffam_tab, 0, key, eq_ffam);
		key[base] = name[base];
		if (!tab_has(&tf->ffam_tab, slot))
			continue;
		f = &tf->ffam[tf->ffam_tab.idx[slot]];
		if (f->type == TF_HISTOGRAM || (f->type == TF_SUMMARY && !sfx[k].hist_only)) {
			*suffix = k + 1;
			return tf->ffam_tab.idx[slot];
		}
	}
	return -1;
}

static int ffam_get(struct tf_parser *p, const char *name, size_t n, int *suffix)
{
	int i = ffam_lookup(p, name, n, suffix);
	struct tf_ffam *f;

	if (i >= 0)
		return i;
	if (tf->nffam == TF_FAMS)
		return fail(p, "too many metric families");
	if (n >= 1024)
		return fail(p, "metric name longer than 1023 bytes");
	f = &tf->ffam[tf->nffam];
	if (!(f->name = tf_strndup(name, n)))
		return fail(p, "textfile arena full");
	tab_put(&tf->ffam_tab, tab_slot(&tf->ffam_tab, 0, f->name, eq_ffam), tf->nffam);
	f->help = NULL;
	f->type = TF_UNSET;
	f->file = p->file;
	f->first = f->last = -1;
	f->next_in_name = -1;
	return tf->nffam++;
}

static int parse_comment(struct tf_parser *p)
{
	const char *kw;
	size_t kwn, n;
	const char *name;
	int fi, suffix, help;

	p->s++;		/* '#' */
	skip_blank(p);
	if (p->s >= p->end || at_eol(p))
		return 0;
	kw = p->s;
	while (p->s < p->end && *p->s != ' ' && *p->s != '\t' && *p->s != '\n')
		p->s++;
	kwn = (size_t)(p->s - kw);
	if (at_eol(p) || p->s >= p->end)
		return 0;
	help = kwn == 4 && !memcmp(kw, "HELP", 4);
	if (!help && !(kwn == 4 && !memcmp(kw, "TYPE", 4))) {
		while (p->s < p->end && *p->s != '\n')
			p->s++;
		return 0;
	}
	skip_blank(p);
	name = p->s;
	n = read_name(p, 1);
	if (p->s >= p->end)
		return fail(p, "unexpected end of input stream");
	if (at_eol(p))
		return 0;
	if (*p->s != ' ' && *p->s != '\t')
		return fail(p, "invalid metric name in comment");
	if ((fi = ffam_get(p, name, n, &suffix)) < 0)
		return fi;
	skip_blank(p);
	if (p->s >= p->end)
		return fail(p, "unexpected end of input stream");
	if (at_eol(p))
		return 0;
	if (help) {
		char *out, *o;
		const char *b = p->s;

		if (tf->ffam[fi].help)
			return fail(p, "second HELP line for metric name");
		while (p->s < p->end && *p->s != '\n')
			p->s++;
		if (p->s >= p->end)
			return fail(p, "unexpected end of input stream");
		if (!(o = out = tf_alloc((size_t)(p->s - b) + 1)))
			return fail(p, "textfile arena full");
		for (const char *q = b; q < p->s; q++) {
			if (*q != '\\') {
				*o++ = *q;
				continue;
			}
			if (++q == p->s || (*q != '\\' && *q != 'n'))
				return fail(p, "invalid escape sequence in HELP");
			*o++ = *q == 'n' ? '\n' : '\\';
		}
		*o = '\0';
		tf->ffam[fi].help = out;
	} else {
		static const char *const types[] = { "counter", "gauge", "summary", "untyped",
						     "histogram" };
		const char *b = p->s;
		size_t tn;
		int t;

		if (tf->ffam[fi].type != TF_UNSET)
			return fail(p, "second TYPE line for metric name, or TYPE reported after samples");
		while (p->s < p->end && *p->s != '\n')
			p->s++;
		if (p->s >= p->end)
			return fail(p, "unexpected end of input stream");
		tn = (size_t)(p->s - b);
		for (t = 0; t < 5; t++)
			if (strlen(types[t]) == tn && !strncasecmp(types[t], b, tn))
				break;
		if (t == 5)
			return fail(p, "unknown metric type");
		tf->ffam[fi].type = (enum tf_type)t;
	}
	return 0;
}

static int label_cmp(const void *a, const void *b)
{
	const struct tf_label *x = a, *y = b;
	size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
	int c = memcmp(x->name, y->name, n);

	return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* A valid UTF-8 string (Go's utf8.ValidString). */
static int utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], len, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07;
		else
			return 0;
		if (i + len > n)
			return 0;
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Renders sorted labels as k="v",... (escaped) into the arena. */
static const char *render_labels(struct tf_label *l, int n)
{
	size_t cap = 1;
	char *out, *o;

	for (int i = 0; i < n; i++)
		cap += l[i].nlen + 2 * l[i].vlen + 4;
	if (!(o = out = tf_alloc(cap)))
		return NULL;
	for (int i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		memcpy(o, l[i].name, l[i].nlen);
		o += l[i].nlen;
		*o++ = '=';
		*o++ = '"';
		for (size_t k = 0; k < l[i].vlen; k++) {
			char c = l[i].value[k];

			if (c == '\\' || c == '"')
				*o++ = '\\', *o++ = c;
			else if (c == '\n')
				*o++ = '\\', *o++ = 'n';
			else
				*o++ = c;
		}
		*o++ = '"';
	}
	*o = '\0';
	return out;
}

static int parse_sample(struct tf_parser *p)
{
	struct tf_label labels[TF_LABELS];
	int nl = 0, fi, suffix, si = -1;
	const char *name = p->s, *vb;
	double bound = NAN, v;
	size_t n = read_name(p, 1);
	struct tf_ffam *f;
	enum tf_type t;

	if (!n)
		return fail(p, "invalid metric name");
	if ((fi = ffam_get(p, name, n, &suffix)) < 0)
		return fi;
	f = &tf->ffam[fi];
	if (f->type == TF_UNSET)
		f->type = TF_UNTYPED;
	t = f->type;
	skip_blank(p);
	if (p->s < p->end && *p->s == '{') {
		p->s++;
		for (;;) {
			const char *ln;
			size_t lnn;
			char *val, *o;
			int special;

			skip_blank(p);
			if (p->s >= p->end)
				return fail(p, "unexpected end of input stream");
			if (*p->s == '}') {
				p->s++;
				break;
			}
			ln = p->s;
			if (!(lnn = read_name(p, 0)))
				return fail(p, "invalid label name");
			skip_blank(p);
			if (p->s >= p->end || *p->s != '=')
				return fail(p, "expected '=' after label name");
			p->s++;
			if (lnn == 8 && !memcmp(ln, "__name__", 8))
				return fail(p, "label name __name__ is reserved");
			if (lnn >= 2 && ln[0] == '_' && ln[1] == '_')
				return fail(p, "label names starting with __ are reserved");
			special = (t == TF_SUMMARY && lnn == 8 && !memcmp(ln, "quantile", 8)) ||
				  (t == TF_HISTOGRAM && lnn == 2 && !memcmp(ln, "le", 2));
			for (int i = 0; i < nl; i++)
				if (labels[i].nlen == lnn && !memcmp(labels[i].name, ln, lnn))
					return fail(p, "duplicate label names");
			skip_blank(p);
			if (p->s >= p->end || *p->s != '"')
				return fail(p, "expected '\"' at start of label value");
			p->s++;
			if (!(o = val = tf_alloc((size_t)(p->end - p->s) < 65536 ? (size_t)(p->end - p->s) + 1 : 65537)))
				return fail(p, "textfile arena full");
			for (;;) {
				if (p->s >= p->end)
					return fail(p, "unexpected end of input stream");
				if (o - val >= 65536)
					return fail(p, "label value longer than 64 KiB");
				if (*p->s == '"')
					break;
				if (*p->s == '\n')
					return fail(p, "label value contains unescaped new-line");
				if (*p->s == '\\') {
					if (++p->s >= p->end)
						return fail(p, "unexpected end of input stream");
					if (*p->s == 'n')
						*o++ = '\n';
					else if (*p->s == '"' || *p->s == '\\')
						*o++ = *p->s;
					else
						return fail(p, "invalid escape sequence");
					p->s++;
					continue;
				}
				*o++ = *p->s++;
			}
			p->s++;	/* closing quote */
			*o = '\0';
			/* give back what the value did not use */
			tf->used = (size_t)(o + 1 - tf->arena);
			if (!utf8_ok((const unsigned char *)val, (size_t)(o - val)))
				return fail(p, "invalid label value (not UTF-8)");
			if (special) {
				if (textfile__parse_float(val, (size_t)(o - val), &bound))
					return fail(p, t == TF_SUMMARY ?
						    "expected float as value for 'quantile' label" :
						    "expected float as value for 'le' label");
			} else {
				if (nl == TF_LABELS)
					return fail(p, "too many labels");
				labels[nl++] = (struct tf_label){ ln, val, lnn, (size_t)(o - val) };
			}
			skip_blank(p);
			if (p->s < p->end && *p->s == ',') {
				p->s++;
				continue;
			}
			if (p->s < p->end && *p->s == '}') {
				p->s++;
				break;
			}
			return fail(p, "unexpected end of label value");
		}
		skip_blank(p);
	}
	/* the value, up to a blank or the end of the line */
	vb = p->s;
	while (p->s < p->end && *p->s != ' ' && *p->s != '\t' && *p->s != '\n')
		p->s++;
	if (p->s >= p->end)
		return fail(p, "unexpected end of input stream");
	if (textfile__parse_float(vb, (size_t)(p->s - vb), &v))
		return fail(p, "expected float as value");
	qsort(labels, (size_t)nl, sizeof(labels[0]), label_cmp);
	{
		const char *ls = render_labels(labels, nl);

		if (!ls)
			return fail(p, "textfile arena full");
		unsigned slot = 0;

		/* summaries and histograms: one series per label set */
		if (t == TF_SUMMARY || t == TF_HISTOGRAM) {
			slot = tab_slot(&tf->series_tab, fi, ls, eq_series);
			if (tab_has(&tf->series_tab, slot))
				si = tf->series_tab.idx[slot];
		}
		if (si < 0) {
			if (tf->nseries == TF_SERIES)
				return fail(p, "too many series");
			struct tf_label *copy = (struct tf_label *)tf_alloc(sizeof(*copy) * (size_t)(nl ? nl : 1));

			if (!copy)
				return fail(p, "textfile arena full");
			memcpy(copy, labels, sizeof(*copy) * (size_t)nl);
			si = tf->nseries++;
			tf->series[si] = (struct tf_series){ .labels = ls, .lab = copy, .nlab = nl,
							     .points = -1, .next = -1, .owner = fi };
			if (t == TF_SUMMARY || t == TF_HISTOGRAM)
				tab_put(&tf->series_tab, slot, si);
			if (f->last >= 0)
				tf->series[f->last].next = si;
			else
				f->first = si;
			f->last = si;
		}
	}
	{
		struct tf_series *s = &tf->series[si];

		if (t == TF_SUMMARY || t == TF_HISTOGRAM) {
			if (suffix == 1)
				s->count = v;
			else if (suffix == 2)
				s->sum = v;
			else if (!isnan(bound)) {
				if (tf->npoints == TF_POINTS)
					return fail(p, "too many quantiles/buckets");
				tf->points[tf->npoints] = (struct tf_point){ bound, v, s->points };
				s->points = tf->npoints++;
			}
		} else {
			s->value = v;
		}
		if (at_eol(p))
			return 0;
		/* a timestamp: an integer, then the end of the line */
		skip_blank(p);
		vb = p->s;
		while (p->s < p->end && *p->s != ' ' && *p->s != '\t' && *p->s != '\n')
			p->s++;
		if (p->s >= p->end)
			return fail(p, "unexpected end of input stream");
		{
			char *e;
			char tmp[32];
			size_t tn = (size_t)(p->s - vb);

			if (tn == 0 || tn >= sizeof(tmp))
				return fail(p, "expected integer as timestamp");
			memcpy(tmp, vb, tn);
			tmp[tn] = '\0';
			errno = 0;
			(void)strtoll(tmp, &e, 10);
			if (*e || errno || tmp[0] == ' ')
				return fail(p, "expected integer as timestamp");
		}
		if (!at_eol(p))
			return fail(p, "spurious string after timestamp");
		s->has_ts = 1;
	}
	return 0;
}

/* node_exporter gives every series of a family in one file the same label
 * names: the ones it lacks get "". */
static int pad_labels(int first_ffam)
{
	struct tf_label all[TF_LABELS], tmp[TF_LABELS];

	for (int i = first_ffam; i < tf->nffam; i++) {
		int n = 0;

		for (int s = tf->ffam[i].first; s >= 0; s = tf->series[s].next)
			for (int k = 0; k < tf->series[s].nlab; k++) {
				const struct tf_label *l = &tf->series[s].lab[k];
				int j;

				for (j = 0; j < n && (all[j].nlen != l->nlen ||
						      memcmp(all[j].name, l->name, l->nlen)); j++)
					;
				if (j == n) {
					if (n == TF_LABELS)
						return -E2BIG;
					all[n++] = (struct tf_label){ l->name, "", l->nlen, 0 };
				}
			}
		for (int s = tf->ffam[i].first; s >= 0; s = tf->series[s].next) {
			struct tf_series *S = &tf->series[s];
			int m = S->nlab;

			if (m == n)
				continue;
			memcpy(tmp, S->lab, sizeof(tmp[0]) * (size_t)m);
			for (int j = 0; j < n; j++) {
				int k;

				for (k = 0; k < S->nlab && (S->lab[k].nlen != all[j].nlen ||
							    memcmp(S->lab[k].name, all[j].name, all[j].nlen)); k++)
					;
				if (k == S->nlab)
					tmp[m++] = all[j];
			}
			qsort(tmp, (size_t)m, sizeof(tmp[0]), label_cmp);
			if (!(S->labels = render_labels(tmp, m)))
				return -ENOMEM;
		}
	}
	return 0;
}

/* Parses one file's text; on error the caller rolls the state back. */
static int parse_text(struct tf_parser *p)
{
	while (p->s < p->end) {
		int err;

		skip_blank(p);
		if (p->s >= p->end)
			break;
		if (*p->s == '\n') {
			p->s++;
			continue;
		}
		/* every line needs its '\n': Go's parser calls a last line
		 * without one an unexpected end of input */
		if (!memchr(p->s, '\n', (size_t)(p->end - p->s)))
			return fail(p, "unexpected end of input stream");
		err = *p->s == '#' ? parse_comment(p) : parse_sample(p);
		if (err)
			return err;
		if (p->s < p->end && *p->s == '\n')
			p->s++;
	}
	return 0;
}

/* ---- directory, merge, render ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_text(const char *path, const char *buf, size_t n, double mtime);

static void read_file(const char *path, struct host_w *w)
{
	static char *buf;
	struct stat st;
	ssize_t n = 0;
	int fd;

	(void)w;
	if (tf->nfiles == TF_FILES) {
		tf->error = 1;
		return;
	}
	if (!buf && !(buf = malloc(TF_FILE_MAX + 1))) {
		tf->error = 1;
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		tf->error = 1;
		return;
	}
	for (;;) {	/* a file being written may come in several reads */
		ssize_t r = read(fd, buf + n, (size_t)(TF_FILE_MAX + 1 - n));

		if (r < 0 && errno == EISDIR) {	/* node_exporter reads a directory as empty */
			r = 0;
		} else if (r < 0) {
			close(fd);
			tf->error = 1;
			return;
		}
		if (r == 0)
			break;
		n += r;
		if (n > TF_FILE_MAX) {
			close(fd);
			tf->error = 1;	/* too large */
			return;
		}
	}
	if (fstat(fd, &st)) {
		close(fd);
		tf->error = 1;
		return;
	}
	close(fd);
	add_text(path, buf, (size_t)n, (double)st.st_mtim.tv_sec);
}

/* One file's text, parsed and kept, or rolled back as a whole. */
static void add_text(const char *path, const char *buf, size_t n, double mtime)
{
	struct tf_parser p = { 0 };
	size_t saved_used = tf->used;
	int saved_ffam = tf->nffam, saved_series = tf->nseries, saved_points = tf->npoints;

	if (tf->nfiles == TF_FILES) {
		tf->error = 1;
		return;
	}
	p.s = buf;
	p.end = buf + n;
	p.file = tf->nfiles;
	p.first_ffam = tf->nffam;
	tab_reset(&tf->ffam_tab);
	tab_reset(&tf->series_tab);
	if (!(tf->files[tf->nfiles] = tf_strndup(path, strlen(path))) || parse_text(&p) ||
	    pad_labels(saved_ffam))
		goto rollback;
	/* families without samples do not exist; samples with a timestamp
	 * make node_exporter skip the whole file */
	for (int i = saved_ffam; i < tf->nffam; i++)
		for (int s = tf->ffam[i].first; s >= 0; s = tf->series[s].next)
			if (tf->series[s].has_ts)
				goto rollback;
	tf->mtimes[tf->nfiles] = mtime;
	tf->nfiles++;
	return;
rollback:
	tf->error = 1;
	tf->used = saved_used;
	tf->nffam = saved_ffam;
	tf->nseries = saved_series;
	tf->npoints = saved_points;
}

static void read_dir(const char *dir, struct host_w *w)
{
	static char *names[TF_FILES];
	char path[4096];
	struct dirent *de;
	int n = 0;
	size_t dl = strlen(dir);
	DIR *d = opendir(dir);

	while (dl > 1 && dir[dl - 1] == '/')	/* as filepath.Join writes it */
		dl--;
	if (!d) {
		tf->error = 1;
		return;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 5 || strcmp(de->d_name + len - 5, ".prom"))
			continue;
		if (n == TF_FILES || !(names[n] = tf_strndup(de->d_name, len))) {
			tf->error = 1;
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), name_cmp);
	for (int i = 0; i < n; i++) {
		if (snprintf(path, sizeof(path), "%.*s%s%s", (int)dl, dir, dir[dl - 1] == '/' ? "" : "/",
			     names[i]) >= (int)sizeof(path)) {
			tf->error = 1;
			continue;
		}
		read_file(path, w);
	}
}

static int fam_find(const char *name, unsigned *slot)
{
	*slot = tab_slot(&tf->fam_tab, 0, name, eq_fam);
	return tab_has(&tf->fam_tab, *slot) ? tf->fam_tab.idx[*slot] : -1;
}

/* "Metric read from a.prom, b.prom": every parsed file with the name. */
static const char *default_help(const struct tf_fam *g)
{
	size_t len = 17;
	char *out, *o;

	for (int i = g->ffams; i >= 0; i = tf->ffam[i].next_in_name)
		len += strlen(tf->files[tf->ffam[i].file]) + 2;
	if (!(o = out = tf_alloc(len + 1)))
		return NULL;
	o += sprintf(o, "Metric read from ");
	for (int i = g->ffams; i >= 0; i = tf->ffam[i].next_in_name)
		o += sprintf(o, "%s%s", i == g->ffams ? "" : ", ", tf->files[tf->ffam[i].file]);
	return out;
}

#define PAGE_FAMS 32768
/* The families the page has so far (node_*, sonde_*, ...): offsets of
 * their names in the page (the buffer may move as the page grows), in an
 * open-addressing table at most half full, sized from the last scrape's
 * count; slots stamped by an older scrape are empty, so it is never
 * cleared. Small, so a probe is one cache line. */
struct page_slot {
	uint32_t gen, off, len;
};
static struct page_slot *page_tab;
static uint32_t page_mask, gen;
static int page_unknown;	/* out of memory: every name counts as taken */
static const struct metrics_buf *page_buf;
/* Bit n: a family of the files has a name n bytes long (255: longer).
 * Only the page's names of those lengths can clash, so only they are
 * hashed: the pass over a page of a few hundred families costs the
 * scan, not a hash per name. */
static uint64_t want_len[4];

static void want_len_add(size_t n)
{
	n = n < 255 ? n : 255;
	want_len[n / 64] |= 1ULL << (n % 64);
}

static int len_wanted(size_t n)
{
	n = n < 255 ? n : 255;
	return (int)(want_len[n / 64] >> (n % 64) & 1);
}

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h ^ h >> 15;
}

static void page_put(uint32_t off, uint32_t len)
{
	uint32_t h = name_hash(page_buf->data + off, len);

	while (page_tab[h & page_mask].gen == gen)
		h++;
	page_tab[h & page_mask] = (struct page_slot){ gen, off, len };
}

/* A table of 2 * want slots or more, the current entries moved over. */
static int page_grow(uint32_t want)
{
	struct page_slot *old = page_tab;
	uint32_t old_mask = page_mask, size = 1024;

	while (size < 2 * want)
		size *= 2;
	if (old && size <= old_mask + 1)
		return 0;
	if (!(page_tab = calloc(size, sizeof(*page_tab)))) {
		page_tab = old;
		return -1;
	}
	page_mask = size - 1;
	if (old) {
		for (uint32_t i = 0; i <= old_mask; i++)
			if (old[i].gen == gen)
				page_put(old[i].off, old[i].len);
		free(old);
	}
	return 0;
}

/* One pass over the page's "# TYPE name type" lines per scrape, then a
 * hash probe per family. */
static void page_families(const struct host_w *w)
{
	static uint32_t last_n;
	const char *d = w->buf->data, *end, *p;
	uint32_t n = 0;

	page_buf = w->buf;
	if (!++gen) {	/* wrapped: old stamps could match again */
		if (page_tab)
			memset(page_tab, 0, (page_mask + 1) * sizeof(*page_tab));
		gen = 1;
	}
	page_unknown = 0;
	if (page_grow(last_n)) {
		page_unknown = 1;
		return;
	}
	if (!d)
		return;
	end = d + w->buf->len;
	/* comment lines are the only ones that start with '#' */
	for (p = d; p < end && (p = memchr(p, '#', (size_t)(end - p))); p++) {
		const char *name, *sp;

		if (n == PAGE_FAMS) {
			page_unknown = 1;
			break;
		}

		if ((p > d && p[-1] != '\n') || end - p < 8 || memcmp(p, "# TYPE ", 7))
			continue;
		name = p + 7;
		if (!(sp = memchr(name, ' ', (size_t)(end - name))))
			break;
		if (!len_wanted((size_t)(sp - name))) {
			p = sp;
			continue;
		}
		if (2 * (n + 1) > page_mask + 1 && page_grow(n + 1)) {
			page_unknown = 1;
			break;
		}
		page_put((uint32_t)(name - d), (uint32_t)(sp - name));
		n++;
		p = sp;
	}
	last_n = n;
}

static int on_page(const char *name)
{
	size_t n = strlen(name);
	uint32_t h = name_hash(name, n);

	if (page_unknown)
		return 1;
	for (; page_tab[h & page_mask].gen == gen; h++) {
		const struct page_slot *e = &page_tab[h & page_mask];

		if (e->len == n && !memcmp(page_buf->data + e->off, name, n))
			return 1;
	}
	return 0;
}

static void merge(const struct host_w *w)
{
	tab_reset(&tf->fam_tab);
	tab_reset(&tf->dup_tab);
	memset(want_len, 0, sizeof(want_len));
	for (int i = 0; i < tf->nffam; i++)
		if (tf->ffam[i].first >= 0)
			want_len_add(strlen(tf->ffam[i].name));
	if (tf->nffam)
		page_families(w);
	/* group the files' families by name, in file order */
	for (int i = 0; i < tf->nffam; i++) {
		struct tf_ffam *f = &tf->ffam[i];
		unsigned slot;
		int g;

		if (f->first < 0)
			continue;	/* no samples: not a family */
		g = fam_find(f->name, &slot);
		if (g < 0) {
			if (tf->nfam == TF_FAMS)
				continue;
			g = tf->nfam++;
			tab_put(&tf->fam_tab, slot, g);
			tf->fam[g] = (struct tf_fam){ .name = f->name, .ffams = i, .first = -1,
						      .last = -1, .type = f->type };
		} else {
			int j = tf->fam[g].ffams;

			while (tf->ffam[j].next_in_name >= 0)
				j = tf->ffam[j].next_in_name;
			tf->ffam[j].next_in_name = i;
		}
	}
	for (int g = 0; g < tf->nfam; g++) {
		struct tf_fam *G = &tf->fam[g];
		const char *dflt = NULL;

		if (on_page(G->name)) {	/* never shadow sonde's own families */
			tf->error = 1;
			G->first = -1;
			continue;
		}
		for (int i = G->ffams; i >= 0; i = tf->ffam[i].next_in_name) {
			struct tf_ffam *f = &tf->ffam[i];
			const char *help = f->help;

			if (!help && !(help = dflt ? dflt : (dflt = default_help(G))))
				continue;
			if (i == G->ffams)
				G->help = help;
			else if (f->type != G->type || strcmp(help, G->help))
				continue;	/* inconsistent with the first: dropped */
			for (int s = f->first, next; s >= 0; s = next) {
				unsigned slot;

				next = tf->series[s].next;
				slot = tab_slot(&tf->dup_tab, g, tf->series[s].labels, eq_series);
				if (tab_has(&tf->dup_tab, slot))
					continue;	/* collected before: dropped */
				tf->series[s].owner = g;
				tab_put(&tf->dup_tab, slot, s);
				tf->series[s].next = -1;
				if (G->last >= 0)
					tf->series[G->last].next = s;
				else
					G->first = s;
				G->last = s;
			}
		}
	}
}

/* name{labels[,extra]} */
static void sample(struct host_w *w, const char *name, const char *sfx, const char *labels,
		   const char *extra_k, const char *extra_v, double v)
{
	host_util__append(w, name, strlen(name));
	host_util__append(w, sfx, strlen(sfx));
	if (*labels || extra_k) {
		host_util__append(w, "{", 1);
		host_util__append(w, labels, strlen(labels));
		if (extra_k) {
			if (*labels)
				host_util__append(w, ",", 1);
			host_util__append(w, extra_k, strlen(extra_k));
			host_util__append(w, "=\"", 2);
			host_util__append(w, extra_v, strlen(extra_v));
			host_util__append(w, "\"", 1);
		}
		host_util__append(w, "}", 1);
	}
	w->nlabels = 0;
	host_util__end(w, v);
}

static int point_cmp(const void *a, const void *b)
{
	double x = ((const struct tf_point *)a)->bound, y = ((const struct tf_point *)b)->bound;

	return (x > y) - (x < y);
}

/* Go converts sample counts with uint64(v): whole numbers only. */
static double as_count(double v)
{
	if (!(v >= 0))
		return 0;
	return v >= 18446744073709551615.0 ? 18446744073709551615.0 : floor(v);
}

static void render_series(struct host_w *w, const struct tf_fam *G, const struct tf_series *s)
{
	static struct tf_point pts[TF_POINTS];
	char num[40];
	int np = 0;

	if (G->type != TF_SUMMARY && G->type != TF_HISTOGRAM) {
		sample(w, G->name, "", s->labels, NULL, NULL, s->value);
		return;
	}
	/* one value per bound (the last one written wins, as in a Go map) */
	for (int i = s->points; i >= 0; i = tf->points[i].next) {
		int k;

		for (k = 0; k < np && pts[k].bound != tf->points[i].bound; k++)
			;
		if (k == np)
			pts[np++] = tf->points[i];
	}
	qsort(pts, (size_t)np, sizeof(pts[0]), point_cmp);
	for (int k = 0; k < np; k++) {
		textfile__format_float(pts[k].bound, num, sizeof(num));
		if (G->type == TF_SUMMARY)
			sample(w, G->name, "", s->labels, "quantile", num, pts[k].value);
		else
			sample(w, G->name, "_bucket", s->labels, "le", num, as_count(pts[k].value));
	}
	/* a histogram without its +Inf bucket gets one from the count */
	if (G->type == TF_HISTOGRAM && !(np && isinf(pts[np - 1].bound) && pts[np - 1].bound > 0))
		sample(w, G->name, "_bucket", s->labels, "le", "+Inf", as_count(s->count));
	sample(w, G->name, "_sum", s->labels, NULL, NULL, s->sum);
	sample(w, G->name, "_count", s->labels, NULL, NULL, as_count(s->count));
}

static int begin(void)
{
	if (!tf && !(tf = calloc(1, sizeof(*tf))))
		return -ENOMEM;
	if (!tf->arena && !(tf->arena = malloc(TF_ARENA)))
		return -ENOMEM;
	tf->used = 0;
	tf->nfiles = tf->nffam = tf->nfam = tf->nseries = tf->npoints = 0;
	tf->error = 0;
	return 0;
}

/* The merged families and node_textfile_mtime_seconds. */
static void render(struct host_w *w)
{
	static const enum host_type htype[] = { HOST_COUNTER, HOST_GAUGE, HOST_SUMMARY, HOST_UNTYPED,
						HOST_HISTOGRAM };

	merge(w);
	for (int i = 0; i < tf->nfam; i++) {
		const struct tf_fam *G = &tf->fam[i];

		if (G->first < 0)
			continue;
		host_util__family(w, G->name, htype[G->type], G->help);
		for (int s = G->first; s >= 0; s = tf->series[s].next)
			render_series(w, G, &tf->series[s]);
	}
	if (tf->nfiles) {
		static char *order[TF_FILES];
		int idx[TF_FILES];

		host_util__family(w, "node_textfile_mtime_seconds", HOST_GAUGE,
				  "Unixtime mtime of textfiles successfully read.");
		for (int i = 0; i < tf->nfiles; i++)
			order[i] = tf->files[i];
		qsort(order, (size_t)tf->nfiles, sizeof(order[0]), name_cmp);
		for (int i = 0; i < tf->nfiles; i++)
			for (int k = 0; k < tf->nfiles; k++)
				if (tf->files[k] == order[i])
					idx[i] = k;
		for (int i = 0; i < tf->nfiles; i++) {
			host_util__begin(w, "node_textfile_mtime_seconds");
			host_util__label(w, "file", tf->files[idx[i]]);
			host_util__end(w, tf->mtimes[idx[i]]);
		}
	}
}

int textfile__render_text(const char *text, size_t n, struct metrics_buf *out, int *scrape_error)
{
	struct host_w w = { .buf = out };
	int err;

	if (n > TF_FILE_MAX)
		return -EFBIG;
	if ((err = begin()))
		return err;
	add_text("fuzz.prom", text, n, 0);
	render(&w);
	*scrape_error = tf->error;
	return w.err;
}

int host_textfile__collect(struct host_w *w)
{
	const char *dir = host_util__textfile_dir();

	if (dir) {
		glob_t g;
		int gerr, err;

		if ((err = begin()))
			return err;
		/* a glob of directories, as node_exporter 1.5 allows */
		gerr = glob(dir, GLOB_NOSORT, NULL, &g);
		if (gerr == 0 && g.gl_pathc > 0) {
			qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), name_cmp);
			for (size_t i = 0; i < g.gl_pathc; i++)
				read_dir(g.gl_pathv[i], w);
		} else {
			read_dir(dir, w);
		}
		if (gerr == 0)
			globfree(&g);
		render(w);
	}
	host_util__single(w, "node_textfile_scrape_error", HOST_GAUGE,
			  "1 if there was an error opening or reading a file, 0 otherwise",
			  dir && tf->error ? 1 : 0);
	return 0;
}
