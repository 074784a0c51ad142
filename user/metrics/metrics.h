/* Metrics registry for sonde: labelled counters, gauges and histograms with a
 * per-family cardinality cap; export/prom_text.h renders it as Prometheus text. */
#ifndef SONDE_METRICS_H
#define SONDE_METRICS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Single-threaded: every call must come from the same event loop.
 *
 * Cardinality cap: once a family holds max_series series, an observation for
 * a label set not yet known goes to one per-family overflow series (rendered
 * with the single label otel_metric_overflow="true"), and the family's
 * dropped counter is incremented by one for every such diverted call
 * (not per distinct label set: remembering the diverted sets would be the
 * unbounded memory the cap exists to prevent). The Prometheus text carries
 * sonde_metric_series_dropped_total{metric="<family>"} for every family.
 */

#define METRICS_MAX_LABELS	12
#define METRICS_DEFAULT_MAX_SERIES 2000
#define METRICS_MAX_NAME	255	/* bytes, family base name */
/* Name of the registry's own family; metrics__family() refuses it. */
#define METRICS_DROPPED_NAME	"sonde_metric_series_dropped_total"
#define METRICS_OVERFLOW_LABEL	"otel_metric_overflow"

struct metrics;

enum metric_type { METRIC_COUNTER = 1, METRIC_GAUGE = 2, METRIC_HISTOGRAM = 3 };

struct metrics *metrics__new(void);
void metrics__free(struct metrics *m);

/*
 * Register a family. Returns a family id >= 0 or a negative errno:
 * -EINVAL for a bad type, a name that is not Prometheus syntax or longer
 * than METRICS_MAX_NAME, a bad label name (syntax, "__" prefix, duplicate,
 * "le" on a histogram, otel_metric_overflow), more than METRICS_MAX_LABELS
 * labels, or bounds that are not finite and strictly ascending (+Inf is
 * implicit); -EEXIST when any exposed name (histograms also expose _bucket,
 * _sum, _count) clashes with an earlier family or the registry's own;
 * -ENOMEM.
 */
int metrics__family(struct metrics *m, enum metric_type type, const char *name,
		    const char *help, const char *const *label_names,
		    size_t nlabels, const double *bounds, size_t nbounds,
		    size_t max_series);

/*
 * Observations. label_values holds exactly nlabels NUL-terminated strings
 * (may be NULL when nlabels is 0; a NULL string counts as ""). Calls with a
 * bad family id or the wrong metric type are ignored, as are NaN in observe
 * and add, and a negative add on a counter (counters only go up; set is the
 * escape hatch for mirroring an external total, and takes any value).
 * Invalid UTF-8 in label values is replaced by U+FFFD (so output stays
 * parseable); values that become equal that way share a series.
 */
void metrics__observe(struct metrics *m, int fam,
		      const char *const *label_values, double v);
void metrics__add(struct metrics *m, int fam, const char *const *label_values,
		  double v);
void metrics__set(struct metrics *m, int fam, const char *const *label_values,
		  double v);

/*
 * Histogram observations aggregated elsewhere (e.g. in a BPF map): adds
 * bucket_counts[i] observations to bucket i (nbounds+1 counts, per bucket,
 * not cumulative; the last is +Inf), their total to the count and sum to
 * the sum. Ignored for a bad family id, a non-histogram or a NaN sum.
 */
void metrics__observe_buckets(struct metrics *m, int fam,
			      const char *const *label_values,
			      const uint64_t *bucket_counts, double sum);

/* Exposition text: export/prom_text.c writes the registry into it, then the
 * host collectors append their families. */
struct metrics_buf {
	char *data;	/* NUL-terminated while len > 0 */
	size_t len, cap;
};

void metrics_buf__free(struct metrics_buf *b);
/*
 * The common cases of a sample value's shortest round-trip text, without
 * printf: integers below 2^53 in full, and values that are exactly N/10^k
 * (k <= 6, |N| < 10^15, |v| >= 1e-4, e.g. 1258.39 CPU seconds) in fixed
 * notation, the same text "%.*g" at the shortest round-trip precision
 * gives. Returns the length written to out (at least 32 bytes), or 0 when
 * v needs the general path (NaN, Inf, other fractions, huge values).
 */
size_t metrics__format_fast(double v, char *out);
/* Decimal digits of v into out (at least 21 bytes); returns the length. */
size_t metrics__format_u64(uint64_t v, char *out);

/* Appends n bytes, keeping the text NUL-terminated; 0 or -ENOMEM (the
 * buffer is then unchanged). Shared by every writer of exposition text. */
int metrics_buf__append(struct metrics_buf *b, const char *p, size_t n);
/* Room for n more bytes (and the NUL) without another allocation; 0 or
 * -ENOMEM (the buffer is then unchanged). */
int metrics_buf__reserve(struct metrics_buf *b, size_t n);

struct metrics_series_view {
	const char *const *label_values; /* NULL for the overflow series */
	size_t nlabels;			/* 0 for the overflow series */
	double value;			/* counter/gauge */
	const uint64_t *bucket_counts;	/* nbounds+1, per bucket, last = +Inf */
	uint64_t count;
	double sum;
	int overflow;			/* 1: the otel_metric_overflow series */
	/* One pointer per series that an exporter may use to cache what it
	 * derived from the series' fixed parts (its label set): the
	 * Prometheus text renderer keeps the series' rendered lines there.
	 * NULL until set; the registry free()s it with the series. Only one
	 * exporter may use it (export/prom_text.c). */
	void **scratch;
};

/* Calls fn for each series in creation order, then the overflow series if
 * anything was diverted to it. fn must not modify the registry. */
void metrics__foreach(struct metrics *m, int fam,
		      void (*fn)(void *arg, const struct metrics_series_view *s),
		      void *arg);

/* Family metadata, for exporters that need more than the series. */
struct metrics_family_desc {
	enum metric_type type;
	const char *name;
	const char *help;
	const char *const *label_names;
	size_t nlabels;
	const double *bounds;
	size_t nbounds;
	size_t max_series;
	size_t nseries;		/* excluding the overflow series */
	uint64_t dropped;	/* diverted observations, see above */
};

int metrics__nfamilies(const struct metrics *m);
/* The family's counterpart of metrics_series_view.scratch (same rules),
 * or NULL for a bad id. */
void **metrics__family_scratch(struct metrics *m, int fam);
/* 0, or -EINVAL for a bad id. Pointers stay valid until metrics__free(). */
int metrics__family_desc(const struct metrics *m, int fam,
			 struct metrics_family_desc *out);

#endif
