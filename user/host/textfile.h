/* The textfile collector's number handling, shared with its unit test:
 * the text format's float syntax and Go's shortest float formatting
 * (le and quantile label values must read as node_exporter writes them). */
#ifndef SONDE_HOST_TEXTFILE_H
#define SONDE_HOST_TEXTFILE_H

#include <stddef.h>

#include "metrics/metrics.h"

/* 0, or -EINVAL (not a float as Go's strconv.ParseFloat reads it, hex and
 * '_' excluded) or -ERANGE (overflow). */
int textfile__parse_float(const char *s, size_t n, double *out);
/* strconv.FormatFloat(v, 'g', -1, 64); size >= 32. Returns the length. */
size_t textfile__format_float(double v, char *out, size_t size);

/* For the fuzz target: text rendered as if it were the one file
 * "fuzz.prom" of the directory (merge rules, families, mtime); sets
 * *scrape_error. 0, -EFBIG (over 1 MiB) or -ENOMEM. */
int textfile__render_text(const char *text, size_t n, struct metrics_buf *out, int *scrape_error);

#endif
