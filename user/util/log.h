/* Structured logs: one JSON object per line on stderr with @timestamp,
 * @level, @message and typed fields. */
#ifndef SONDE_LOG_H
#define SONDE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

struct log_kv {
	const char *key;	/* NULL terminates the list */
	const char *str;	/* string value (NULL prints as "") */
	long long num;
	int is_num;		/* num is the value, not str */
};

/* Fields are written without separating commas:
 *   log_info("probe attached", LS("hook", "read") LI("fd", 3)); */
#define LS(k, v) { (k), (v), 0, 0 },
#define LI(k, v) { (k), NULL, (long long)(v), 1 },
#define log_at(lvl, msg, ...) \
	log__emit(lvl, msg, (const struct log_kv[]){ __VA_ARGS__ { NULL, NULL, 0, 0 } })
#define log_debug(msg, ...) log_at(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, msg, __VA_ARGS__)

void log__set_level(enum log_level lvl);
int log__enabled(enum log_level lvl);
void log__emit(enum log_level lvl, const char *msg, const struct log_kv *kv);
/* Appends s as a JSON string body (no quotes) with escaping, bounded by cap;
 * returns bytes written. Shared with the span printer. */
size_t log__json_escape(char *dst, size_t cap, const char *s, size_t len);

#endif
