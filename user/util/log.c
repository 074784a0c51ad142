/* JSON-lines logger; one write(2) per line so lines never interleave. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log__set_level(enum log_level lvl)
{
	min_level = lvl;
}

int log__enabled(enum log_level lvl)
{
	return lvl >= min_level;
}

size_t log__json_escape(char *dst, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc = 0;

		switch (c) {
		case '"': esc = '"'; break;
		case '\\': esc = '\\'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\t': esc = 't'; break;
		}
		if (esc) {
			if (o + 2 > cap)
				break;
			dst[o++] = '\\';
			dst[o++] = esc;
		} else if (c < 0x20 || c >= 0x7f) {
			/* Non-ASCII bytes from the wire are not trusted to be UTF-8. */
			if (o + 6 > cap)
				break;
			memcpy(dst + o, "\\u00", 4);
			dst[o + 4] = hex[c >> 4];
			dst[o + 5] = hex[c & 15];
			o += 6;
		} else {
			if (o + 1 > cap)
				break;
			dst[o++] = (char)c;
		}
	}
	return o;
}

void log__emit(enum log_level lvl, const char *msg, const struct log_kv *kv)
{
	char line[4096];
	size_t o = 0, cap = sizeof(line) - 2;
	struct timespec ts;
	struct tm tm;
	int n;

	if (lvl < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, cap, "{\"@timestamp\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\","
		     "\"@level\":\"%s\",\"@message\":\"",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000, level_names[lvl]);
	o = (size_t)n;
	o += log__json_escape(line + o, cap - o, msg, strlen(msg));
	if (o < cap)
		line[o++] = '"';
	for (; kv && kv->key; kv++) {
		if (o + 4 >= cap)
			break;
		line[o++] = ',';
		line[o++] = '"';
		o += log__json_escape(line + o, cap - o, kv->key, strlen(kv->key));
		if (o + 3 >= cap)
			break;
		line[o++] = '"';
		line[o++] = ':';
		if (!kv->is_num) {
			const char *v = kv->str ? kv->str : "";

			line[o++] = '"';
			o += log__json_escape(line + o, cap - o - 1, v, strlen(v));
			line[o++] = '"';
		} else {
			n = snprintf(line + o, cap - o, "%lld", kv->num);
			if (n > 0)
				o += (size_t)n < cap - o ? (size_t)n : cap - o - 1;
		}
	}
	line[o++] = '}';
	line[o++] = '\n';
	if (write(STDERR_FILENO, line, o) < 0) {
		/* nowhere left to report it */
	}
}
