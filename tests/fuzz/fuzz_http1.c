/* libFuzzer target for the HTTP/1.x parser: the input is split into feeds
 * (with capture gaps) by its own first bytes, then fed to a request and a
 * response stream. The parser must never read out of bounds, crash or hang,
 * and every on_head must be followed by exactly one on_complete. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http1/http1.h"

struct state {
	int open;	/* heads delivered, not yet completed */
	int head_ret;
};

static int on_head(void *ctx, const struct http1_message *m)
{
	struct state *s = ctx;

	if (!memchr(m->method, 0, sizeof(m->method)) || !memchr(m->target, 0, sizeof(m->target)))
		abort();
	if (s->open != 0)	/* the previous message was never completed */
		abort();
	s->open++;
	return s->head_ret;
}

static void on_complete(void *ctx, const struct http1_message *m)
{
	struct state *s = ctx;

	(void)m;
	if (--s->open < 0)
		abort();
}

static void on_error(void *ctx, enum http1_error e)
{
	(void)ctx;
	if (e < HTTP1_ERR_BAD_START || e > HTTP1_ERR_TOO_LONG)
		abort();
}

static const struct http1_callbacks cb = { on_head, on_complete, on_error };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http1_parser req, resp;
	struct state sr = { 0, 0 }, ss = { 0, 0 };
	size_t i = 0;

	if (size < 2)
		return 0;
	ss.head_ret = data[0] & 1;	/* some responses answer HEAD */
	http1__init(&req, HTTP1_REQUESTS);
	http1__init(&resp, HTTP1_RESPONSES);
	i = 1;
	while (i < size) {
		/* one control byte per feed: length of the chunk and a gap */
		uint8_t c = data[i++];
		size_t cap = (size_t)(c & 0x3f) + 1, gap = (c & 0x40) ? (size_t)(c & 0x0f) * 97 : 0;
		uint8_t *copy;

		if (cap > size - i)
			cap = size - i;
		/* an exact-size copy so sanitizers see reads past cap */
		copy = malloc(cap ? cap : 1);
		if (!copy)
			return 0;
		memcpy(copy, data + i, cap);
		if (c & 0x80)
			http1__feed(&resp, copy, cap, cap + gap, &cb, &ss);
		else
			http1__feed(&req, copy, cap, cap + gap, &cb, &sr);
		free(copy);
		i += cap;
	}
	http1__close(&req, &cb, &sr);
	http1__close(&resp, &cb, &ss);
	/* http1__close drops an unfinished message silently: open may be 1 */
	if (sr.open > 1 || ss.open > 1)
		abort();
	return 0;
}
