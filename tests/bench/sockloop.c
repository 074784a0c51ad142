/* One thread plays both ends of a keep-alive HTTP/1.1 connection over
 * loopback TCP, N times: client write, server read, server write, client
 * read. Four socket calls per request and nothing else, so the cost per
 * call of the programs watching them reads the same from round to round
 * (tests/bench/bpf_cost.py --loop). The server reads up to the blank line,
 * so a request that gained a header on the way (sonde's traceparent) still
 * ends where it should.
 *
 * usage: sockloop PORT N     (listens on 127.0.0.1:PORT)
 * Prints "sockloop: N requests in S s". Every read and write times out
 * after 5 s: a lost byte ends the run with an error, never a hang. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Heads the size of a service-to-service API call (361 and 176 bytes),
 * not wrk's minimal 40-byte request: per-byte work (scans of the head)
 * shows at its usual weight. */
static const char req[] =
	"GET /api/v1/orders/12345?include=items HTTP/1.1\r\n"
	"Host: orders.internal:8080\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) sockloop/1.0\r\n"
	"Accept: application/json\r\n"
	"Accept-Encoding: gzip, deflate\r\n"
	"Accept-Language: en-US,en;q=0.9\r\n"
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl\r\n"
	"X-Request-ID: 3f2a9c1e-5b7d-4e8f-9a0b-sockloop\r\n"
	"Connection: keep-alive\r\n\r\n";
static const char body[] = "{\"id\":12345,\"status\":\"ok\"}";
static char resp[256];		/* head + body, Content-Length from body */
static size_t resp_len;

static void die(const char *what)
{
	fprintf(stderr, "sockloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void opts(int fd)
{
	struct timeval tv = { .tv_sec = 5 };
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		die("setsockopt");
}

static void put(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			die("write");
		p += w;
		n -= (size_t)w;
	}
}

/* Reads until the head's blank line (server side). */
static void get_head(int fd, char *buf, size_t cap)
{
	size_t have = 0;

	for (;;) {
		ssize_t r = read(fd, buf + have, cap - have - 1);

		if (r <= 0)
			die("read request");
		have += (size_t)r;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return;
		if (have + 1 >= cap) {
			errno = EMSGSIZE;
			die("request head");
		}
	}
}

static void get_n(int fd, char *buf, size_t n)
{
	size_t have = 0;

	while (have < n) {
		ssize_t r = read(fd, buf + have, n - have);

		if (r <= 0)
			die("read response");
		have += (size_t)r;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timespec t0, t1;
	char buf[4096];
	long n, port;
	int one = 1, l, c, s;

	if (argc != 3 || (port = strtol(argv[1], NULL, 10)) <= 0 || port > 65535 ||
	    (n = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sockloop PORT N\n");
		return 2;
	}
	resp_len = (size_t)snprintf(resp, sizeof(resp),
				    "HTTP/1.1 200 OK\r\n"
				    "Server: sockloop\r\n"
				    "Date: Thu, 03 Dec 2026 10:00:00 GMT\r\n"
				    "Content-Type: application/json\r\n"
				    "Cache-Control: no-store\r\n"
				    "Content-Length: %zu\r\n\r\n%s",
				    sizeof(body) - 1, body);
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		die("listen");
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	opts(c);
	opts(s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		put(c, req, sizeof(req) - 1);
		get_head(s, buf, sizeof(buf));
		put(s, resp, resp_len);
		get_n(c, buf, resp_len);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("sockloop: %ld requests in %.3f s\n", n,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	close(c);
	close(s);
	close(l);
	return 0;
}
