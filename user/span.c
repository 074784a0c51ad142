/* Span formatting. Wall-clock times come from the monotonic BPF timestamps
 * plus one offset, so spans from the kernel line up with logs. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "span.h"

static int64_t mono_to_wall;

void span__init_clock(void)
{
	struct timespec m, r;

	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r);
	mono_to_wall = ((int64_t)r.tv_sec - m.tv_sec) * 1000000000LL + (r.tv_nsec - m.tv_nsec);
}

uint64_t span__wall_ns(uint64_t mono_ns)
{
	return (uint64_t)((int64_t)mono_ns + mono_to_wall);
}

void span__addr(const struct sonde_tuple *t, int remote, char *out, size_t n)
{
	const uint8_t *a = remote ? t->daddr : t->saddr;
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (t->family == AF_INET)
		inet_ntop(AF_INET, a, out, n);
	else if (t->family == AF_INET6 && memcmp(a, v4mapped, 12) == 0)
		inet_ntop(AF_INET, a + 12, out, n);
	else if (t->family == AF_INET6)
		inet_ntop(AF_INET6, a, out, n);
	else
		snprintf(out, n, "?");
}

int span__print_json(FILE *f, const struct span *s)
{
	char local[INET6_ADDRSTRLEN], peer[INET6_ADDRSTRLEN];
	char comm[64], svc[256], method[64], target[HTTP1_TARGET_MAX * 6], route[HTTP1_TARGET_MAX * 6];
	uint64_t wall = span__wall_ns(s->start_ns);
	time_t sec = (time_t)(wall / 1000000000ULL);
	struct tm tm;

	gmtime_r(&sec, &tm);
	span__addr(&s->tuple, 0, local, sizeof(local));
	span__addr(&s->tuple, 1, peer, sizeof(peer));
	comm[log__json_escape(comm, sizeof(comm) - 1, s->comm, strnlen(s->comm, sizeof(s->comm)))] = 0;
	svc[log__json_escape(svc, sizeof(svc) - 1, s->service, strlen(s->service))] = 0;
	method[log__json_escape(method, sizeof(method) - 1, s->method, strlen(s->method))] = 0;
	target[log__json_escape(target, sizeof(target) - 1, s->target, strlen(s->target))] = 0;
	route[log__json_escape(route, sizeof(route) - 1, s->route, strlen(s->route))] = 0;
	return fprintf(f,
		       "{\"start\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09lluZ\",\"start_unix_nano\":%llu,"
		       "\"duration_ms\":%.3f,\"pid\":%u,\"tid\":%u,\"comm\":\"%s\",\"service\":\"%s\","
		       "\"kind\":\"%s\",\"local_addr\":\"%s\",\"local_port\":%u,"
		       "\"peer_addr\":\"%s\",\"peer_port\":%u,\"protocol\":\"HTTP/1.%u\","
		       "\"method\":\"%s\",\"target\":\"%s\",\"route\":\"%s\",\"status\":%u%s}\n",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       (unsigned long long)(wall % 1000000000ULL), (unsigned long long)wall,
		       (double)(s->end_ns - s->start_ns) / 1e6, s->tgid, s->tid, comm, svc,
		       s->kind == SPAN_SERVER ? "server" : "client", local, s->tuple.sport, peer,
		       s->tuple.dport, s->version_minor, method, target, route, s->status,
		       s->incomplete ? ",\"incomplete\":true" : "");
}
