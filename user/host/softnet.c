/* softnet collector: per-CPU packet processing from /proc/net/softnet_stat
 * (hex columns; the cpu label is the row number, as in node_exporter 1.5). */
#include <stdio.h>
#include <stdlib.h>

#include "host/collectors.h"

#define SOFTNET_MAX_ROWS 4096	/* one row per online CPU */

int host_softnet__collect(struct host_w *w)
{
	static int fd = -1;
	static char buf[1 << 20];
	static uint64_t rows[SOFTNET_MAX_ROWS][3];
	static const struct { const char *name, *help; } fams[3] = {
		{ "node_softnet_processed_total", "Number of processed packets" },
		{ "node_softnet_dropped_total", "Number of dropped packets" },
		{ "node_softnet_times_squeezed_total",
		  "Number of times processing packets ran out of quota" },
	};
	char *cur = buf, *line, *f[3];
	int nrows = 0;
	ssize_t n = host_util__read(&fd, "/proc/net/softnet_stat", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	while ((line = host_util__line(&cur)) && nrows < SOFTNET_MAX_ROWS) {
		if (host_util__fields(line, f, 3) < 3)
			continue;
		for (int i = 0; i < 3; i++)
			rows[nrows][i] = strtoull(f[i], NULL, 16);
		nrows++;
	}
	for (int i = 0; i < 3; i++) {
		host_util__family(w, fams[i].name, HOST_COUNTER, fams[i].help);
		for (int r = 0; r < nrows; r++) {
			char s[12];

			snprintf(s, sizeof(s), "%d", r);
			host_util__begin(w, fams[i].name);
			host_util__label(w, "cpu", s);
			host_util__end_u64(w, rows[r][i]);
		}
	}
	return 0;
}
