/* Minimal assertion helpers for sonde's unit tests: exact comparisons that
 * report file:line and the two values, and a summary exit status. */
#ifndef SONDE_TEST_CHECK_H
#define SONDE_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                          \
	do {                                                                 \
		check_count++;                                               \
		if (!(cond)) {                                               \
			check_failures++;                                    \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",         \
				__FILE__, __LINE__, #cond);                  \
		}                                                            \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                   \
	do {                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);          \
		check_count++;                                               \
		if (_a != _b) {                                              \
			check_failures++;                                    \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n",\
				__FILE__, __LINE__, #a, _a, _b);             \
		}                                                            \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                   \
	do {                                                                 \
		const char *_a = (a), *_b = (b);                             \
		check_count++;                                               \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                     \
			check_failures++;                                    \
			fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, _a ? _a : "(null)",  \
				_b ? _b : "(null)");                         \
		}                                                            \
	} while (0)

/* Call at the end of main(): prints a one-line summary, returns exit status. */
static inline int check_summary(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
	return check_failures ? 1 : 0;
}

#endif
