/* A finished request as sonde reports it, and its JSON-lines form for
 * `--print spans`. */
#ifndef SONDE_SPAN_H
#define SONDE_SPAN_H

#include <stdint.h>
#include <stdio.h>

#include "sonde.h"
#include "proto/http1.h"

enum span_kind { SPAN_SERVER = 1, SPAN_CLIENT = 2 };

struct span {
	enum span_kind kind;
	uint64_t start_ns;		/* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	uint64_t end_ns;
	uint32_t tgid, tid;
	char comm[SONDE_COMM_LEN];
	const char *service;
	struct sonde_tuple tuple;	/* local / remote as seen by this process */
	char method[HTTP1_METHOD_MAX];
	char target[HTTP1_TARGET_MAX];
	char route[HTTP1_TARGET_MAX];
	uint16_t status;
	uint8_t version_minor;
	uint8_t incomplete;		/* framing was guessed (capture gap) */
};

/* Offset from CLOCK_MONOTONIC to CLOCK_REALTIME, measured once at start. */
void span__init_clock(void);
uint64_t span__wall_ns(uint64_t mono_ns);
/* "a.b.c.d" / "x::y" (IPv4-mapped IPv6 shown as IPv4) */
void span__addr(const struct sonde_tuple *t, int remote, char *out, size_t n);
/* one JSON object and a newline */
int span__print_json(FILE *f, const struct span *s);

#endif
