/* Prometheus text exposition of the metrics registry, written through the
 * registry's public API (families, then their series) like the OTLP encoder. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/prom_text.h"

/* Accumulates the first error so the render code need not check each
 * append; the caller rolls the buffer back once at the end. */
struct writer {
	struct metrics_buf *b;
	int err;
	const struct metrics_family_desc *fam;	/* whose series on_series gets */
	char (*le)[40];		/* fam's bounds as text, formatted once per render */
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
 * integral double is exact, and counters read better that way.
 */
static void fmt_double(char *buf, size_t sz, double v)
{
	if (isnan(v)) {
		snprintf(buf, sz, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, sz, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		snprintf(buf, sz, "0");	/* also folds -0 */
		return;
	}
	if (sz >= 32 && metrics__format_fast(v, buf))
		return;
	if (v == floor(v) && fabs(v) < 1e21) {
		snprintf(buf, sz, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sz, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static void w_double(struct writer *w, double v)
{
	char buf[40];

	fmt_double(buf, sizeof(buf), v);
	w_str(w, buf);
}

static void w_u64(struct writer *w, uint64_t v)
{
	char buf[24];

	w_raw(w, buf, metrics__format_u64(v, buf));
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

/* metrics__foreach callback: the lines of one series of w->fam. */
static void on_series(void *arg, const struct metrics_series_view *s)
{
	struct writer *w = arg;
	const struct metrics_family_desc *f = w->fam;
	uint64_t cum = 0;

	if (f->type != METRIC_HISTOGRAM) {
		w_sample(w, f, "", s, NULL);
		w_double(w, s->value);
		w_str(w, "\n");
		return;
	}
	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += s->bucket_counts[i];
		w_sample(w, f, "_bucket", s, i < f->nbounds ? w->le[i] : "+Inf");
		w_u64(w, cum);
		w_str(w, "\n");
	}
	w_sample(w, f, "_sum", s, NULL);
	w_double(w, s->sum);
	w_str(w, "\n");
	w_sample(w, f, "_count", s, NULL);
	w_u64(w, s->count);
	w_str(w, "\n");
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

int prom_text__render(struct metrics *m, struct metrics_buf *out)
{
	struct writer w = { .b = out, .err = 0 };
	struct metrics_family_desc d;
	size_t old_len;
	int nfams;

	if (!m || !out)
		return -EINVAL;
	old_len = out->len;
	nfams = metrics__nfamilies(m);
	for (int i = 0; i < nfams; i++) {
		if (metrics__family_desc(m, i, &d))
			continue;
		w.fam = &d;
		w_header(&w, d.name, d.help, d.type);
		if (d.type == METRIC_HISTOGRAM && d.nbounds) {
			if (!(w.le = malloc(d.nbounds * sizeof(*w.le)))) {
				w.err = -ENOMEM;
				break;
			}
			for (size_t k = 0; k < d.nbounds; k++)
				fmt_double(w.le[k], sizeof(w.le[k]), d.bounds[k]);
		}
		metrics__foreach(m, i, on_series, &w);
		free(w.le);
		w.le = NULL;
	}
	/* Every family has a cap, so every family gets a line: a flat 0 is
	 * easier to alert on than a series that appears from nowhere. */
	w_header(&w, METRICS_DROPPED_NAME,
		 "Observations diverted to a family's otel_metric_overflow series because the family reached its series cap.",
		 METRIC_COUNTER);
	for (int i = 0; i < nfams; i++) {
		if (metrics__family_desc(m, i, &d))
			continue;
		w_str(&w, METRICS_DROPPED_NAME "{metric=\"");
		w_str(&w, d.name);
		w_str(&w, "\"} ");
		w_u64(&w, d.dropped);
		w_str(&w, "\n");
	}
	if (w.err) {
		out->len = old_len;
		if (out->data)
			out->data[old_len] = '\0';
	}
	return w.err;
}
