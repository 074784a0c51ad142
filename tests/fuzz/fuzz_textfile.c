/* libFuzzer target for the textfile collector's parser, merge and render
 * (user/host/textfile.c): any bytes as one *.prom file. The page must come
 * back rendered (never a crash, a leak or a read out of bounds), and every
 * line of it must be a comment or a sample line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/textfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct metrics_buf out;
	int err = 0;

	out.len = 0;
	if (out.data)
		out.data[0] = '\0';
	if (textfile__render_text((const char *)data, size, &out, &err))
		return 0;
	for (const char *l = out.data; l && *l; ) {
		const char *e = strchr(l, '\n');

		if (!e)
			abort();	/* every line ends */
		if (*l != '#' && !memchr(l, ' ', (size_t)(e - l)))
			abort();	/* a sample line has its value */
		l = e + 1;
	}
	return 0;
}
