/* Prometheus text exposition of the metrics registry, written through the
 * registry's public API (families, then their series) like the OTLP encoder.
 *
 * Cost: a series' label set never changes, so the text of each of its
 * lines up to the value ("name_bucket{a="x",le="0.5"} ") is escaped and
 * formatted once and kept in the series' scratch slot, beside the lines as
 * last rendered and the values they show. A scrape copies a series' lines
 * when its values are the ones rendered last time (a histogram's count and
 * sum, since buckets only grow), else it copies the prefixes and formats the
 * new values. The HELP/TYPE header and the dropped-series line of each
 * family are kept the same way. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/prom_text.h"

/* Longest value text: "%.17g" of a double ("-2.2250738585072014e-308")
 * or a uint64; 32 leaves room. */
#define VALUE_MAX 32

static bool cache_on = true;

void prom_text__cache(bool on)
{
	cache_on = on;
}

/* Accumulates the first error so the render code need not check each
 * append; the caller rolls the buffer back once at the end. */
struct writer {
	struct metrics_buf *b;
	int err;
	const struct metrics_family_desc *fam;	/* whose series on_series gets */
	char (*le)[40];		/* fam's bounds as text, formatted once per prefix build */
};

static void w_raw(struct writer *w, const char *p, size_t n)
{
	if (!w->err)
		w->err = metrics_buf__append(w->b, p, n);
}

static void w_str(struct writer *w, const char *s)
{
	w_raw(w, s, strlen(s));
}

/* Label values escape \ " and newline; HELP escapes only \ and newline. */
static void w_escaped(struct writer *w, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (!esc)
			continue;
		w_raw(w, run, (size_t)(s - run));
		w_str(w, esc);
		run = s + 1;
	}
	w_raw(w, run, (size_t)(s - run));
}

/*
 * Shortest text that parses back to exactly v, so bounds read "0.005"
 * rather than "0.0050000000000000001". Integral values below 1e21 print in
 * full rather than with an exponent (as JavaScript does): %.0f of an
 * integral double is exact, and counters read better that way. Returns the
 * length.
 */
static size_t fmt_double(char *buf, size_t sz, double v)
{
	size_t n;

	if (isnan(v))
		return (size_t)snprintf(buf, sz, "NaN");
	if (isinf(v))
		return (size_t)snprintf(buf, sz, v > 0 ? "+Inf" : "-Inf");
	if (v == 0)
		return (size_t)snprintf(buf, sz, "0");	/* also folds -0 */
	if (sz >= 32 && (n = metrics__format_fast(v, buf)))
		return n;
	if (v == floor(v) && fabs(v) < 1e21)
		return (size_t)snprintf(buf, sz, "%.0f", v);
	/* From 15 digits: when fewer round-trip, the 15-digit rounding is that
	 * decimal padded with zeros, which %g strips (test_metrics checks it
	 * against the search from 1). */
	for (int prec = 15; prec <= 17; prec++) {
		n = (size_t)snprintf(buf, sz, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return n;
}

/* "{a="x",b="y",le="0.5"}" or nothing when there is no label at all. */
static void w_labels(struct writer *w, const struct metrics_family_desc *f,
		     const struct metrics_series_view *s, const char *le)
{
	size_t n = s->overflow ? 1 : f->nlabels;

	if (!n && !le)
		return;
	w_str(w, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			w_str(w, ",");
		w_str(w, s->overflow ? METRICS_OVERFLOW_LABEL : f->label_names[i]);
		w_str(w, "=\"");
		w_escaped(w, s->overflow ? "true" : s->label_values[i], true);
		w_str(w, "\"");
	}
	if (le) {
		if (n)
			w_str(w, ",");
		w_str(w, "le=\"");
		w_str(w, le);
		w_str(w, "\"");
	}
	w_str(w, "}");
}

/* "name_suffix{labels} ": a sample line up to its value. */
static void w_sample(struct writer *w, const struct metrics_family_desc *f, const char *suffix,
		     const struct metrics_series_view *s, const char *le)
{
	w_str(w, f->name);
	w_str(w, suffix);
	w_labels(w, f, s, le);
	w_str(w, " ");
}

/* What a series' scratch slot holds: one allocation, the arrays after it. */
struct series_text {
	uint64_t k1, k2;	/* the values text shows: value; or count and sum */
	uint32_t nlines;	/* 1, or nbounds + 3 for a histogram */
	uint32_t len;		/* of text; 0 = not rendered yet */
	char *text;		/* the lines as last rendered */
	uint32_t *pre_end;	/* [nlines]: end of line i's prefix in pre */
	char *pre;		/* each line's "name{labels} ", back to back */
};

static uint64_t bits(double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return u;
}

/* The prefixes of s's lines, built once. NULL when out of memory. */
static struct series_text *series_text(struct writer *w, const struct metrics_series_view *s)
{
	const struct metrics_family_desc *f = w->fam;
	struct metrics_buf pre = { 0 };
	struct writer pw = { .b = &pre };
	uint32_t nlines = f->type == METRIC_HISTOGRAM ? (uint32_t)f->nbounds + 3 : 1;
	uint32_t ends[nlines];
	struct series_text *t;
	size_t sz;
	char *p;

	if (f->type != METRIC_HISTOGRAM) {
		w_sample(&pw, f, "", s, NULL);
		ends[0] = (uint32_t)pre.len;
	} else {
		for (size_t i = 0; i <= f->nbounds; i++) {
			w_sample(&pw, f, "_bucket", s, i < f->nbounds ? w->le[i] : "+Inf");
			ends[i] = (uint32_t)pre.len;
		}
		w_sample(&pw, f, "_sum", s, NULL);
		ends[nlines - 2] = (uint32_t)pre.len;
		w_sample(&pw, f, "_count", s, NULL);
		ends[nlines - 1] = (uint32_t)pre.len;
	}
	sz = sizeof(*t) + nlines * sizeof(uint32_t) + pre.len + pre.len + nlines * (VALUE_MAX + 1);
	if (pw.err || pre.len > UINT32_MAX / 4 || !(t = malloc(sz))) {
		metrics_buf__free(&pre);
		return NULL;
	}
	p = (char *)(t + 1);
	t->pre_end = (uint32_t *)p;
	memcpy(t->pre_end, ends, nlines * sizeof(uint32_t));
	t->pre = p + nlines * sizeof(uint32_t);
	memcpy(t->pre, pre.data, pre.len);
	t->text = t->pre + pre.len;
	t->nlines = nlines;
	t->len = 0;
	t->k1 = t->k2 = 0;
	metrics_buf__free(&pre);
	return t;
}

/* Line i: its prefix, then the value text, then a newline. */
static char *put_line(const struct series_text *t, uint32_t i, char *o, const char *v, size_t vn)
{
	uint32_t start = i ? t->pre_end[i - 1] : 0;

	memcpy(o, t->pre + start, t->pre_end[i] - start);
	o += t->pre_end[i] - start;
	memcpy(o, v, vn);
	o += vn;
	*o++ = '\n';
	return o;
}

/* metrics__foreach callback: the lines of one series of w->fam. */
static void on_series(void *arg, const struct metrics_series_view *s)
{
	struct writer *w = arg;
	const struct metrics_family_desc *f = w->fam;
	struct series_text *t = *s->scratch;
	bool hist = f->type == METRIC_HISTOGRAM;
	uint64_t k1 = hist ? s->count : bits(s->value), k2 = hist ? bits(s->sum) : 0;
	char num[VALUE_MAX + 8], *o;
	size_t n;

	if (w->err)
		return;
	if (!t) {
		if (!(t = series_text(w, s))) {
			w->err = -ENOMEM;
			return;
		}
		*s->scratch = t;
	}
	if (t->len && t->k1 == k1 && t->k2 == k2 && cache_on) {
		w_raw(w, t->text, t->len);
		return;
	}
	o = t->text;
	if (!hist) {
		n = fmt_double(num, sizeof(num), s->value);
		o = put_line(t, 0, o, num, n);
	} else {
		uint64_t cum = 0;

		for (uint32_t i = 0; i <= f->nbounds; i++) {
			cum += s->bucket_counts[i];
			n = metrics__format_u64(cum, num);
			o = put_line(t, i, o, num, n);
		}
		n = fmt_double(num, sizeof(num), s->sum);
		o = put_line(t, t->nlines - 2, o, num, n);
		n = metrics__format_u64(s->count, num);
		o = put_line(t, t->nlines - 1, o, num, n);
	}
	t->len = (uint32_t)(o - t->text);
	t->k1 = k1;
	t->k2 = k2;
	w_raw(w, t->text, t->len);
}

static void w_header(struct writer *w, const char *name, const char *help,
		     enum metric_type type)
{
	static const char *const types[] = {
		[METRIC_COUNTER] = "counter",
		[METRIC_GAUGE] = "gauge",
		[METRIC_HISTOGRAM] = "histogram",
	};

	w_str(w, "# HELP ");
	w_str(w, name);
	w_str(w, " ");
	w_escaped(w, help, false);
	w_str(w, "\n# TYPE ");
	w_str(w, name);
	w_str(w, " ");
	w_str(w, types[type]);
	w_str(w, "\n");
}

/* What a family's scratch slot holds: its fixed texts. */
struct family_text {
	size_t head_len, drop_len;
	char *head;		/* "# HELP ...\n# TYPE ...\n" */
	char *drop;		/* METRICS_DROPPED_NAME "{metric=\"name\"} " */
	char (*le)[40];		/* the bounds as text, for series_text */
};

static struct family_text *family_text(const struct metrics_family_desc *d)
{
	struct metrics_buf b = { 0 };
	struct writer w = { .b = &b };
	struct family_text *t;
	size_t head;

	w_header(&w, d->name, d->help, d->type);
	head = b.len;
	w_str(&w, METRICS_DROPPED_NAME "{metric=\"");
	w_str(&w, d->name);
	w_str(&w, "\"} ");
	if (w.err || !(t = malloc(sizeof(*t) + d->nbounds * 40 + b.len))) {
		metrics_buf__free(&b);
		return NULL;
	}
	t->le = (char (*)[40])(t + 1);
	for (size_t k = 0; k < d->nbounds; k++)
		fmt_double(t->le[k], sizeof(t->le[k]), d->bounds[k]);
	t->head = (char *)(t->le + d->nbounds);
	memcpy(t->head, b.data, b.len);
	t->head_len = head;
	t->drop = t->head + head;
	t->drop_len = b.len - head;
	metrics_buf__free(&b);
	return t;
}

int prom_text__render(struct metrics *m, struct metrics_buf *out)
{
	static const char dropped_head[] =
		"# HELP " METRICS_DROPPED_NAME " Observations diverted to a family's "
		"otel_metric_overflow series because the family reached its series cap.\n"
		"# TYPE " METRICS_DROPPED_NAME " counter\n";
	static size_t last_len;	/* a hint: room for as much as last time */
	struct writer w = { .b = out, .err = 0 };
	struct metrics_family_desc d;
	size_t old_len;
	int nfams;

	if (!m || !out)
		return -EINVAL;
	old_len = out->len;
	if (metrics_buf__reserve(out, last_len + last_len / 8))
		return -ENOMEM;
	nfams = metrics__nfamilies(m);
	for (int i = 0; i < nfams && !w.err; i++) {
		void **slot = metrics__family_scratch(m, i);
		struct family_text *ft;

		if (metrics__family_desc(m, i, &d))
			continue;
		if (!*slot && !(*slot = family_text(&d))) {
			w.err = -ENOMEM;
			break;
		}
		ft = *slot;
		w.fam = &d;
		w.le = ft->le;
		w_raw(&w, ft->head, ft->head_len);
		metrics__foreach(m, i, on_series, &w);
	}
	/* Every family has a cap, so every family gets a line: a flat 0 is
	 * easier to alert on than a series that appears from nowhere. */
	w_raw(&w, dropped_head, sizeof(dropped_head) - 1);
	for (int i = 0; i < nfams && !w.err; i++) {
		struct family_text *ft = *metrics__family_scratch(m, i);
		char num[24];

		if (metrics__family_desc(m, i, &d))
			continue;
		w_raw(&w, ft->drop, ft->drop_len);
		w_raw(&w, num, metrics__format_u64(d.dropped, num));
		w_raw(&w, "\n", 1);
	}
	if (w.err) {
		out->len = old_len;
		if (out->data)
			out->data[old_len] = '\0';
		return w.err;
	}
	last_len = out->len - old_len;
	return 0;
}
