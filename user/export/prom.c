/* Prometheus endpoint. libmicrohttpd runs in external-epoll mode: its epoll
 * fd sits in the agent's loop and MHD_run() is called when it is ready. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libdeflate.h>
#include <microhttpd.h>

#include "export/prom.h"
#include "util/log.h"

/* A page's buffer, kept for the next scrape once MHD has sent it: the page
 * is ~150 KiB, which glibc would mmap and unmap (and the kernel zero) on
 * every scrape, and re-growing it by doubling would copy it several times. */
struct page {
	struct prom_server *s;
	struct metrics_buf b;
	char *gz;		/* the page gzipped, when the client asked */
	size_t gz_cap;
	struct page *next;
};

#define SPARE_PAGES 2	/* kept beyond those in flight; more are freed */

struct prom_server {
	struct MHD_Daemon *d;
	struct prom_handlers h;
	int epfd;
	struct page *spare;
	int nspare;
	struct libdeflate_compressor *gz;	/* level 1, made at the first gzip scrape */
};

static struct page *page_get(struct prom_server *s)
{
	struct page *p = s->spare;

	if (p) {
		s->spare = p->next;
		s->nspare--;
		p->b.len = 0;
		return p;
	}
	p = calloc(1, sizeof(*p));
	if (p)
		p->s = s;
	return p;
}

static void page_put(void *cls)
{
	struct page *p = cls;
	struct prom_server *s = p->s;

	if (s->nspare < SPARE_PAGES) {
		p->next = s->spare;
		s->spare = p;
		s->nspare++;
		return;
	}
	metrics_buf__free(&p->b);
	free(p->gz);
	free(p);
}

/* Does an Accept-Encoding value accept gzip? Comma-separated codings,
 * case-insensitive, each with an optional ";q=..." where q=0 refuses it
 * (RFC 9110 12.5.3); "*" stands for any coding not listed. */
bool prom__accepts_gzip(const char *v)
{
	int gzip = -1, star = -1;

	while (v && *v) {
		const char *end = strchr(v, ','), *semi, *q;
		size_t n;
		int ok = 1;

		if (!end)
			end = v + strlen(v);
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		semi = memchr(v, ';', (size_t)(end - v));
		n = (size_t)((semi ? semi : end) - v);
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		/* q=0, 0.0, 0.00, 0.000 refuse; any other weight accepts */
		for (q = semi; q && q < end; q++) {
			if ((*q == 'q' || *q == 'Q') && q[1] == '=') {
				const char *d = q + 2;

				ok = 0;
				if (*d == '0' && d < end) {
					for (d++, d += *d == '.'; d < end && *d == '0'; d++)
						;
					while (d < end && (*d == ' ' || *d == '\t'))
						d++;
					ok = d < end && *d != ';';
				} else {
					ok = 1;
				}
				break;
			}
		}
		if ((n == 4 && !strncasecmp(v, "gzip", 4)) || (n == 6 && !strncasecmp(v, "x-gzip", 6)))
			gzip = ok;
		else if (n == 1 && *v == '*')
			star = ok;
		v = *end ? end + 1 : end;
	}
	return gzip >= 0 ? gzip : star > 0;
}

/* p's page gzipped into p->gz; its length, or 0 when that failed (the page
 * then goes out as it is). */
static size_t gzip_page(struct prom_server *s, struct page *p)
{
	size_t bound, n;

	if (!s->gz && !(s->gz = libdeflate_alloc_compressor(1)))
		return 0;
	bound = libdeflate_gzip_compress_bound(s->gz, p->b.len);
	if (bound > p->gz_cap) {
		char *gz = realloc(p->gz, bound);

		if (!gz)
			return 0;
		p->gz = gz;
		p->gz_cap = bound;
	}
	n = libdeflate_gzip_compress(s->gz, p->b.data, p->b.len, p->gz, p->gz_cap);
	return n;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code, const char *ctype,
			     char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **req_cls)
{
	struct prom_server *s = cls;

	(void)version;
	(void)upload;
	/* Answer on the second call, once MHD has the whole request: a
	 * response queued in the first call makes MHD 0.9.7x close the
	 * connection after it ("Connection: close"), and a scraper such as
	 * Prometheus, which keeps its connection, would reconnect each time. */
	if (!*req_cls) {
		static int seen;

		*req_cls = &seen;
		return MHD_YES;
	}
	if (*upload_len) {	/* a body is not wanted: skip it */
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, 405, "text/plain", "method not allowed\n", 19,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") == 0) {
		struct page *p = page_get(s);
		struct MHD_Response *r;
		enum MHD_Result ret;
		size_t gz_len = 0;

		if (!p || s->h.render(s->h.arg, &p->b) != 0) {
			if (p)
				page_put(p);
			return reply(conn, 500, "text/plain", "render failed\n", 14,
				     MHD_RESPMEM_PERSISTENT);
		}
		if (s->h.gzip && strcmp(method, "GET") == 0 &&
		    prom__accepts_gzip(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								   MHD_HTTP_HEADER_ACCEPT_ENCODING)))
			gz_len = gzip_page(s, p);
		/* the page returns to the spares when MHD is done with it */
		r = MHD_create_response_from_buffer_with_free_callback_cls(
			gz_len ? gz_len : p->b.len, gz_len ? p->gz : p->b.data, page_put, p);
		if (!r) {
			page_put(p);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		if (s->h.gzip)
			MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
		if (gz_len)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
		ret = MHD_queue_response(conn, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/healthz") == 0) {
		char msg[512];
		bool ok = s->h.health(s->h.arg, msg, sizeof(msg) - 1);
		size_t n = strlen(msg);

		msg[n++] = '\n';
		return reply(conn, ok ? 200 : 503, "text/plain", msg, n, MHD_RESPMEM_MUST_COPY);
	}
	if (strcmp(url, "/") == 0) {
		static char index[] = "sonde: see /metrics and /healthz\n";

		return reply(conn, 200, "text/plain", index, sizeof(index) - 1,
			     MHD_RESPMEM_PERSISTENT);
	}
	return reply(conn, 404, "text/plain", "not found\n", 10, MHD_RESPMEM_PERSISTENT);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6)
{
	char host[128];
	const char *colon, *h = listen;
	size_t hl;
	char *end;
	long port;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = listen + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - listen);
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || port <= 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (hl == 0)
		strcpy(host, "0.0.0.0");
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		*v6 = 1;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		*v6 = 0;
	}
	return 0;
}

/* The listening socket, bound here rather than by MHD so that a taken
 * address is an exact EADDRINUSE. SO_REUSEADDR only: a restart may bind
 * while the previous agent's connections sit in TIME_WAIT, but a second live
 * listener cannot. (MHD_OPTION_LISTENING_ADDRESS_REUSE, used before, sets
 * SO_REUSEPORT: two agents then both bound and split the scrapes.) */
static int listen_socket(const struct sockaddr_storage *ss, int v6)
{
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, err;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)ss,
		 v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) ||
	    listen(fd, 64)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int prom__start(struct prom_server **out, const char *listen, const struct prom_handlers *h)
{
	struct prom_server *s;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	int v6 = 0, err, fd;

	err = parse_listen(listen, &ss, &v6);
	if (err) {
		log_error("bad --listen address, want HOST:PORT", LS("listen", listen));
		return err;
	}
	fd = listen_socket(&ss, v6);
	if (fd < 0) {
		log_error(fd == -EADDRINUSE ? "cannot serve /metrics: address in use (another sonde "
					      "agent, or another program, listens there)"
					    : "cannot serve /metrics",
			  LS("listen", listen) LS("error", strerror(-fd)));
		return fd;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->h = *h;
	/* MHD owns fd from here: MHD_stop_daemon() closes it. An idle
	 * connection is kept 90 s, longer than the usual scrape intervals (15 s
	 * to 1 min): Prometheus keeps its connection and scrapes over it. */
	s->d = MHD_start_daemon(MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
				on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, 64, MHD_OPTION_CONNECTION_TIMEOUT, 90,
				MHD_OPTION_END);
	if (!s->d) {
		err = errno ? -errno : -EIO;
		log_error("cannot serve /metrics", LS("listen", listen) LS("error", strerror(-err)));
		close(fd);
		free(s);
		return err;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
	s->epfd = info ? info->epoll_fd : -1;
	if (s->epfd < 0) {
		MHD_stop_daemon(s->d);
		free(s);
		return -ENOTSUP;
	}
	log_info("serving /metrics and /healthz", LS("listen", listen));
	*out = s;
	return 0;
}

int prom__epoll_fd(const struct prom_server *s)
{
	return s->epfd;
}

void prom__run(struct prom_server *s)
{
	MHD_run(s->d);
}

void prom__stop(struct prom_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);	/* responses in flight come back to the spares */
	while (s->spare) {
		struct page *p = s->spare;

		s->spare = p->next;
		metrics_buf__free(&p->b);
		free(p->gz);
		free(p);
	}
	if (s->gz)
		libdeflate_free_compressor(s->gz);
	free(s);
}
