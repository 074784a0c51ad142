/* Prometheus endpoint. libmicrohttpd runs in external-epoll mode: its epoll
 * fd sits in the agent's loop and MHD_run() is called when it is ready. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "export/prom.h"
#include "util/log.h"

struct prom_server {
	struct MHD_Daemon *d;
	struct prom_handlers h;
	int epfd;
};

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
	(void)upload_len;
	(void)req_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, 405, "text/plain", "method not allowed\n", 19,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") == 0) {
		struct metrics_buf b = { 0 };

		if (s->h.render(s->h.arg, &b) != 0) {
			metrics_buf__free(&b);
			return reply(conn, 500, "text/plain", "render failed\n", 14,
				     MHD_RESPMEM_PERSISTENT);
		}
		/* ownership of b.data passes to MHD, which free()s it */
		return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len,
			     MHD_RESPMEM_MUST_FREE);
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
	/* MHD owns fd from here: MHD_stop_daemon() closes it */
	s->d = MHD_start_daemon(MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
				on_request, s, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, 64, MHD_OPTION_CONNECTION_TIMEOUT, 10,
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
	MHD_stop_daemon(s->d);
	free(s);
}
