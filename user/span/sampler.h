/* Head sampling of spans per OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG:
 * pure decisions from the trace id and the parent's sampled bit. */
#ifndef SONDE_SAMPLER_H
#define SONDE_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

enum sampler_kind {
	SAMPLER_ALWAYS_ON = 0,
	SAMPLER_ALWAYS_OFF = 1,
	SAMPLER_RATIO = 2,		/* traceidratio */
	SAMPLER_PARENT_ON = 3,		/* parentbased_always_on (the default) */
	SAMPLER_PARENT_OFF = 4,		/* parentbased_always_off */
	SAMPLER_PARENT_RATIO = 5,	/* parentbased_traceidratio */
};

struct sampler {
	enum sampler_kind kind;
	double ratio;			/* 0..1, ratio samplers only */
	uint64_t bound;			/* sampled when id63 < bound */
};

/* name NULL or "" gives the default; arg NULL or "" gives ratio 1.0 for the
 * ratio samplers (as the specification says). 0, or -EINVAL for an
 * unknown name or an arg that is not a number in [0, 1]. */
int sampler__init(struct sampler *s, const char *name, const char *arg);

/*
 * Whether a span with this trace id is recorded and exported. has_parent:
 * the span continues a trace (a non-zero parent span id); parent_sampled:
 * bit 0 of its trace flags. traceidratio looks only at the trace id (bytes
 * 8..15, big-endian, top bit dropped): every service sampling the same
 * trace with the same ratio agrees, and a lower ratio picks a subset.
 */
bool sampler__decide(const struct sampler *s, const uint8_t trace_id[16], bool has_parent,
		     bool parent_sampled);

const char *sampler__name(const struct sampler *s);

#endif
