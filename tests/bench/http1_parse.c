/* HTTP/1 head parser cost alone (user/proto/http1/http1.c), as `make bench`
 * reports it: ns of CPU per message for typical heads, each fed as one captured
 * chunk the way the agent feeds a syscall's bytes. Every message must be
 * reported complete exactly once, or the run fails.
 * Usage: http1-bench [SECONDS]   (default 2, split between the cases) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/http1/http1.h"

/* CPU time of this thread: time the shared machine gave to others is left out */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long heads, completes;

static int on_head(void *ctx, const struct http1_message *m)
{
	(void)ctx;
	(void)m;
	heads++;
	return HTTP1_HEAD_BODY;
}

static void on_complete(void *ctx, const struct http1_message *m)
{
	(void)ctx;
	(void)m;
	completes++;
}

static void on_error(void *ctx, enum http1_error err)
{
	(void)ctx;
	fprintf(stderr, "http1-bench: parse error %d\n", (int)err);
	exit(1);
}

struct bench_case {
	const char *name;
	enum http1_stream stream;
	const char *head;
	size_t body;		/* body bytes after the head (Content-Length), not captured */
};

static const struct bench_case cases[] = {
	{ "wrk request + injected traceparent", HTTP1_REQUESTS,
	  "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
	  "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n", 0 },
	{ "curl request", HTTP1_REQUESTS,
	  "GET /api/v1/users/12345/orders?limit=20 HTTP/1.1\r\nHost: shop.example.com\r\n"
	  "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n", 0 },
	{ "browser request (12 fields)", HTTP1_REQUESTS,
	  "GET /static/app.3f9a1c.js HTTP/1.1\r\nHost: www.example.com\r\n"
	  "Connection: keep-alive\r\nsec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
	  "sec-ch-ua-mobile: ?0\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\nsec-ch-ua-platform: \"Linux\"\r\n"
	  "Accept: */*\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: no-cors\r\n"
	  "Sec-Fetch-Dest: script\r\nReferer: https://www.example.com/\r\n"
	  "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
	  "Cookie: session=8f2a9c0e4b7d1f3a5c6e8b0d2f4a6c8e; theme=dark\r\n\r\n", 0 },
	{ "nginx response (612-byte body)", HTTP1_RESPONSES,
	  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 04:30:00 GMT\r\n"
	  "Content-Type: text/html\r\nContent-Length: 612\r\n"
	  "Last-Modified: Tue, 01 Dec 2026 10:00:00 GMT\r\nConnection: keep-alive\r\n"
	  "ETag: \"656a0f80-264\"\r\nAccept-Ranges: bytes\r\n\r\n", 612 },
};

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	const struct http1_callbacks cb = { .on_head = on_head, .on_complete = on_complete,
					    .on_error = on_error };
	size_t ncases = sizeof(cases) / sizeof(cases[0]);
	int fail = 0;

	if (secs <= 0)
		secs = 2.0;
	printf("HTTP/1 head parser alone (build/http1-bench, one chunk per message, one core)\n");
	printf("  %-36s %6s %10s %8s\n", "message", "bytes", "ns/msg", "MB/s");
	for (size_t c = 0; c < ncases; c++) {
		const struct bench_case *bc = &cases[c];
		const uint8_t *d = (const uint8_t *)bc->head;
		size_t n = strlen(bc->head);
		struct http1_parser p;
		unsigned long iters = 0;
		double t0, t, budget = secs / (double)ncases;

		http1__init(&p, bc->stream);
		heads = completes = 0;
		t0 = now();
		do {
			for (int k = 0; k < 1000; k++)
				http1__feed(&p, d, n, n + bc->body, &cb, NULL);
			iters += 1000;
			t = now() - t0;
		} while (t < budget);
		if (heads != iters || completes != iters) {
			fprintf(stderr, "http1-bench: %s: %lu messages, %lu heads, %lu complete\n",
				bc->name, iters, heads, completes);
			fail = 1;
		}
		printf("  %-36s %6zu %10.1f %8.0f\n", bc->name, n, t / (double)iters * 1e9,
		       (double)n * (double)iters / t / 1e6);
	}
	return fail;
}
