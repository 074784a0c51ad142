/* /metrics and /healthz over HTTP with libmicrohttpd, driven from the
 * agent's own epoll loop (no extra thread, no locks on the registry). */
#ifndef SONDE_PROM_H
#define SONDE_PROM_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/metrics.h"

struct prom_handlers {
	/* Fill out with the exposition text; 0 or negative errno. */
	int (*render)(void *arg, struct metrics_buf *out);
	/* true when healthy; msg gets a one-line reason either way */
	bool (*health)(void *arg, char *msg, size_t n);
	void *arg;
	/* gzip /metrics for clients whose Accept-Encoding takes it (libdeflate
	 * level 1), as node_exporter does; false serves it as it is to all */
	bool gzip;
};

/* Does an Accept-Encoding header value (NULL: none) accept gzip? */
bool prom__accepts_gzip(const char *accept_encoding);

struct prom_server;

/* listen is "HOST:PORT", "[V6HOST]:PORT" or ":PORT". */
int prom__start(struct prom_server **out, const char *listen, const struct prom_handlers *h);
int prom__epoll_fd(const struct prom_server *s);
/* Serve whatever is ready; never blocks. */
void prom__run(struct prom_server *s);
void prom__stop(struct prom_server *s);

#endif
