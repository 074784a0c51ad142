/* Unit tests of the /metrics server (export/prom.c) on a loopback port:
 * Accept-Encoding parsing, two scrapes over one kept connection (MHD must
 * not answer "Connection: close"), a gzip page that inflates to the plain
 * one, and HEAD. The server runs on this thread's loop, a client thread
 * speaks HTTP/1.1 over a blocking socket. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libdeflate.h>

#include "check.h"
#include "export/prom.h"

static const char body[] = "# TYPE x counter\nx 1\n";
static int renders;

static int render(void *arg, struct metrics_buf *out)
{
	(void)arg;
	renders++;
	/* large enough that gzip is worth it: 200 lines */
	for (int i = 0; i < 200; i++)
		if (metrics_buf__append(out, body, sizeof(body) - 1))
			return -ENOMEM;
	return 0;
}

static bool health(void *arg, char *msg, size_t n)
{
	(void)arg;
	snprintf(msg, n, "ok");
	return true;
}

static void test_accepts(void)
{
	CHECK(prom__accepts_gzip("gzip"));
	CHECK(prom__accepts_gzip("gzip, deflate, br"));
	CHECK(prom__accepts_gzip("br;q=1.0, GZIP;q=0.5"));
	CHECK(prom__accepts_gzip("x-gzip"));
	CHECK(prom__accepts_gzip("*"));
	CHECK(prom__accepts_gzip("identity, *;q=0.1"));
	CHECK(!prom__accepts_gzip(NULL));
	CHECK(!prom__accepts_gzip(""));
	CHECK(!prom__accepts_gzip("identity"));
	CHECK(!prom__accepts_gzip("deflate, br"));
	CHECK(!prom__accepts_gzip("gzip;q=0"));
	CHECK(!prom__accepts_gzip("gzip; q=0.000"));
	CHECK(!prom__accepts_gzip("*, gzip;q=0"));
	CHECK(!prom__accepts_gzip("*;q=0"));
	CHECK(!prom__accepts_gzip("gzipx"));
}

struct client {
	int port;
	char resp[4][16384];
	ssize_t len[4];
	int fd;
};

static ssize_t read_response(int fd, char *buf, size_t size)
{
	size_t got = 0;
	char *hdr_end;
	long clen = -1;

	for (;;) {
		ssize_t n = recv(fd, buf + got, size - 1 - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
		buf[got] = '\0';
		if ((hdr_end = strstr(buf, "\r\n\r\n"))) {
			char *cl = strcasestr(buf, "Content-Length: ");

			if (cl && cl < hdr_end)
				clen = strtol(cl + 16, NULL, 10);
			if (strncmp(buf, "HEAD", 4) && clen >= 0 &&
			    got >= (size_t)(hdr_end + 4 - buf) + (size_t)clen)
				return (ssize_t)got;
			if (clen < 0)
				return (ssize_t)got;
		}
		if (got >= size - 1)
			return -1;
	}
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
	static const char *const req[] = {
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n",
	};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)))
		return NULL;
	/* three requests, one after the other, on the same connection */
	for (int i = 0; i < 3; i++) {
		if (send(c->fd, req[i], strlen(req[i]), 0) < 0)
			break;
		c->len[i] = read_response(c->fd, c->resp[i], sizeof(c->resp[i]));
		if (c->len[i] < 0)
			break;
	}
	close(c->fd);
	return NULL;
}

static const char *payload(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	return p ? p + 4 : "";
}

static void test_server(void)
{
	struct prom_handlers h = { .render = render, .health = health, .gzip = true };
	struct prom_server *s = NULL;
	struct client c = { 0 };
	char listen[32], plain[8192];
	int port, ep;
	pthread_t t;

	for (port = 39500; port < 39600; port++) {
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
		if (prom__start(&s, listen, &h) == 0)
			break;
	}
	CHECK(s != NULL);
	if (!s)
		return;
	c.port = port;
	ep = epoll_create1(0);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = prom__epoll_fd(s) };

		epoll_ctl(ep, EPOLL_CTL_ADD, prom__epoll_fd(s), &ev);
	}
	pthread_create(&t, NULL, client_main, &c);
	for (int i = 0; i < 400 && !(c.len[2] > 0); i++) {
		struct epoll_event ev;

		epoll_wait(ep, &ev, 1, 10);
		prom__run(s);
	}
	/* let the client see the last response and close */
	for (int i = 0; i < 20; i++) {
		struct epoll_event ev;

		epoll_wait(ep, &ev, 1, 5);
		prom__run(s);
	}
	pthread_join(t, NULL);
	CHECK_EQ_INT(renders, 3);
	for (int i = 0; i < 3; i++) {
		CHECK(c.len[i] > 0 && !strncmp(c.resp[i], "HTTP/1.1 200", 12));
		CHECK(!strcasestr(c.resp[i], "Connection: close"));
	}
	snprintf(plain, sizeof(plain), "%s", payload(c.resp[0]));
	CHECK_EQ_INT(strlen(plain), 200 * (sizeof(body) - 1));
	CHECK(!strcasestr(c.resp[0], "Content-Encoding"));
	CHECK(strcasestr(c.resp[0], "Vary: Accept-Encoding") != NULL);
	CHECK(strcasestr(c.resp[1], "Content-Encoding: gzip") != NULL);
	{
		const char *gz = payload(c.resp[1]);
		size_t gz_len = (size_t)c.len[1] - (size_t)(gz - c.resp[1]), out_len = 0;
		struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
		char out[8192];

		CHECK(gz_len < strlen(plain) / 4);	/* 200 equal lines compress well */
		CHECK_EQ_INT(libdeflate_gzip_decompress(d, gz, gz_len, out, sizeof(out), &out_len),
			     LIBDEFLATE_SUCCESS);
		CHECK_EQ_INT(out_len, strlen(plain));
		CHECK(out_len == strlen(plain) && !memcmp(out, plain, out_len));
		libdeflate_free_decompressor(d);
	}
	CHECK(!strcasestr(c.resp[2], "Content-Encoding"));
	CHECK_EQ_STR(payload(c.resp[2]), plain);
	prom__stop(s);
	close(ep);
}

int main(void)
{
	test_accepts();
	test_server();
	return check_summary("test_prom");
}
