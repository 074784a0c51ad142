/* Shared libFuzzer driver for the database wire followers (pg, mysql,
 * redis): the input is split into feeds (with capture gaps, alternating
 * directions) by its own control bytes. The follower must never read out of
 * bounds, crash or hang, and every operation it reports must be a
 * NUL-terminated, bounded record. The connection failing (FUZZ_FAIL) at
 * any point and at the end must leave nothing pending. A target defines
 * FUZZ_SESSION, FUZZ_INIT, FUZZ_FEED, FUZZ_FAIL, FUZZ_PENDING and
 * FUZZ_PENDING_MAX, then includes this file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void on_op(void *ctx, const struct db_op *op)
{
	(void)ctx;
	if (op->text_len >= DBOP_TEXT_MAX || op->text[op->text_len] != 0 ||
	    !memchr(op->name, 0, sizeof(op->name)) || !memchr(op->status, 0, sizeof(op->status)))
		abort();
}

static void on_error(void *ctx, int e)
{
	(void)ctx;
	if (e < 1 || e > 5)
		abort();
}

static const struct db_callbacks cb = { on_op, on_error };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FUZZ_SESSION s;
	size_t i = 1;

	if (size < 2)
		return 0;
	FUZZ_INIT(&s, data[0]);
	while (i < size) {
		/* one control byte per feed: length, direction and a gap */
		uint8_t c = data[i++];
		size_t cap = (size_t)(c & 0x3f) + 1, gap = (c & 0x40) ? (size_t)(c & 0x0f) * 97 : 0;
		uint8_t *copy;

		if (c == 0x7f) {	/* the connection fails here */
			FUZZ_FAIL(&s, &cb, NULL);
			if (FUZZ_PENDING(&s))
				abort();
			continue;
		}
		if (cap > size - i)
			cap = size - i;
		copy = malloc(cap ? cap : 1);	/* exact size: sanitizers see overreads */
		if (!copy)
			return 0;
		memcpy(copy, data + i, cap);
		FUZZ_FEED(&s, (c & 0x80) != 0, copy, cap, cap + gap, i, 1, &cb, NULL);
		free(copy);
		i += cap;
	}
	if (FUZZ_PENDING(&s) > FUZZ_PENDING_MAX)
		abort();
	FUZZ_FAIL(&s, &cb, NULL);
	if (FUZZ_PENDING(&s))
		abort();
	return 0;
}
