/* Unit tests for user/span/sampler.c: names, ratio parsing, parent-based rules,
 * and traceidratio's agreement and proportion over many trace ids. */
#include <errno.h>
#include <stdint.h>

#include "check.h"
#include "span/sampler.h"

static void id_with_low(uint8_t id[16], uint64_t low)
{
	for (int i = 0; i < 8; i++)
		id[i] = 0xab;
	for (int i = 0; i < 8; i++)
		id[15 - i] = (uint8_t)(low >> (8 * i));
}

int main(void)
{
	struct sampler s;
	uint8_t id[16];
	uint64_t x = 88172645463325252ULL;
	int kept = 0, kept_half = 0, subset = 1;

	/* defaults and names */
	CHECK_EQ_INT(sampler__init(&s, NULL, NULL), 0);
	CHECK_EQ_INT(s.kind, SAMPLER_PARENT_ON);
	CHECK_EQ_STR(sampler__name(&s), "parentbased_always_on");
	CHECK_EQ_INT(sampler__init(&s, "", ""), 0);
	CHECK_EQ_INT(s.kind, SAMPLER_PARENT_ON);
	CHECK_EQ_INT(sampler__init(&s, "always_off", NULL), 0);
	CHECK_EQ_INT(s.kind, SAMPLER_ALWAYS_OFF);
	CHECK_EQ_INT(sampler__init(&s, "sometimes", NULL), -EINVAL);
	CHECK_EQ_INT(sampler__init(&s, "traceidratio", "1.5"), -EINVAL);
	CHECK_EQ_INT(sampler__init(&s, "traceidratio", "-0.1"), -EINVAL);
	CHECK_EQ_INT(sampler__init(&s, "traceidratio", "0.5x"), -EINVAL);
	CHECK_EQ_INT(sampler__init(&s, "parentbased_traceidratio", "0.25"), 0);
	CHECK_EQ_INT(s.kind, SAMPLER_PARENT_RATIO);
	CHECK(s.ratio == 0.25);
	/* an arg for a sampler that takes none is ignored, as the spec allows */
	CHECK_EQ_INT(sampler__init(&s, "always_on", "junk"), 0);

	/* fixed decisions */
	id_with_low(id, 0);
	sampler__init(&s, "always_on", NULL);
	CHECK_EQ_INT(sampler__decide(&s, id, true, false), 1);
	sampler__init(&s, "always_off", NULL);
	CHECK_EQ_INT(sampler__decide(&s, id, true, true), 0);
	sampler__init(&s, "parentbased_always_on", NULL);
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 1);
	CHECK_EQ_INT(sampler__decide(&s, id, true, false), 0);
	CHECK_EQ_INT(sampler__decide(&s, id, true, true), 1);
	sampler__init(&s, "parentbased_always_off", NULL);
	CHECK_EQ_INT(sampler__decide(&s, id, false, true), 0);
	CHECK_EQ_INT(sampler__decide(&s, id, true, true), 1);
	CHECK_EQ_INT(sampler__decide(&s, id, true, false), 0);

	/* ratio boundaries: low 8 bytes >> 1 compared with ratio * 2^63 */
	sampler__init(&s, "traceidratio", "0.5");
	id_with_low(id, (1ULL << 63) - 2);	/* >>1 = 2^62 - 1: kept */
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 1);
	id_with_low(id, 1ULL << 63);		/* >>1 = 2^62: not kept */
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 0);
	/* the parent decides even when the ratio would not */
	sampler__init(&s, "parentbased_traceidratio", "0.5");
	CHECK_EQ_INT(sampler__decide(&s, id, true, true), 1);
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 0);
	sampler__init(&s, "traceidratio", "1");
	id_with_low(id, UINT64_MAX);
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 1);
	sampler__init(&s, "traceidratio", "0");
	id_with_low(id, 0);
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 0);
	/* no ratio given: 1.0 */
	sampler__init(&s, "traceidratio", NULL);
	id_with_low(id, UINT64_MAX);
	CHECK_EQ_INT(sampler__decide(&s, id, false, false), 1);

	/* 100000 pseudo-random ids: 10% kept within 1%, the 5% set is a
	 * subset of the 10% set (same rule, smaller bound) */
	for (int i = 0; i < 100000; i++) {
		struct sampler s10, s5;
		bool a, b;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		id_with_low(id, x);
		sampler__init(&s10, "traceidratio", "0.1");
		sampler__init(&s5, "traceidratio", "0.05");
		a = sampler__decide(&s10, id, false, false);
		b = sampler__decide(&s5, id, false, false);
		kept += a;
		kept_half += b;
		if (b && !a)
			subset = 0;
	}
	CHECK(kept > 9000 && kept < 11000);
	CHECK(kept_half > 4500 && kept_half < 5500);
	CHECK_EQ_INT(subset, 1);
	return check_summary("test_sampler");
}
