/* OTel's standard head samplers as pure functions (see sampler.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "span/sampler.h"

static const char *const names[] = { "always_on", "always_off", "traceidratio",
				     "parentbased_always_on", "parentbased_always_off",
				     "parentbased_traceidratio" };

int sampler__init(struct sampler *s, const char *name, const char *arg)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	s->kind = SAMPLER_PARENT_ON;
	s->ratio = 1.0;
	if (name && *name) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]) && strcmp(name, names[i]) != 0; i++)
			;
		if (i == sizeof(names) / sizeof(names[0]))
			return -EINVAL;
		s->kind = (enum sampler_kind)i;
	}
	if ((s->kind == SAMPLER_RATIO || s->kind == SAMPLER_PARENT_RATIO) && arg && *arg) {
		char *end;
		double r;

		errno = 0;
		r = strtod(arg, &end);
		if (errno || *end || !(r >= 0.0 && r <= 1.0))
			return -EINVAL;
		s->ratio = r;
	}
	/* 2^63 * ratio; ratio 1 must accept every id, including 2^63 - 1. */
	if (s->ratio >= 1.0)
		s->bound = UINT64_MAX;
	else
		s->bound = (uint64_t)ldexp(s->ratio, 63);
	return 0;
}

static bool by_ratio(const struct sampler *s, const uint8_t id[16])
{
	uint64_t v = 0;

	for (int i = 8; i < 16; i++)
		v = v << 8 | id[i];
	return (v >> 1) < s->bound;
}

bool sampler__decide(const struct sampler *s, const uint8_t trace_id[16], bool has_parent,
		     bool parent_sampled)
{
	switch (s->kind) {
	case SAMPLER_ALWAYS_ON:
		return true;
	case SAMPLER_ALWAYS_OFF:
		return false;
	case SAMPLER_RATIO:
		return by_ratio(s, trace_id);
	case SAMPLER_PARENT_ON:
		return has_parent ? parent_sampled : true;
	case SAMPLER_PARENT_OFF:
		return has_parent ? parent_sampled : false;
	case SAMPLER_PARENT_RATIO:
		return has_parent ? parent_sampled : by_ratio(s, trace_id);
	}
	return false;
}

const char *sampler__name(const struct sampler *s)
{
	return names[s->kind];
}
