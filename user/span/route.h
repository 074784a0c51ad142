/* HTTP route normaliser: turns a request-target into a low-cardinality
 * http.route label by dropping queries and masking identifier segments. */
#ifndef SONDE_ROUTE_H
#define SONDE_ROUTE_H

#include <stddef.h>

#define ROUTE_MAX_SEGMENTS 16
#define ROUTE_ID "{id}"
#define ROUTE_CUT "/*"

/*
 * Writes a NUL-terminated normalised route into out and returns its length
 * (strlen). Never fails; target need not be NUL-terminated and may be NULL
 * when len is 0. An embedded NUL ends the target.
 *
 *  - "?query" and "#fragment" are dropped.
 *  - Absolute form "scheme://authority/path" keeps only "/path" (any
 *    scheme matching [A-Za-z][A-Za-z0-9+.-]*).
 *  - "*" (OPTIONS *) stays "*". Empty gives "/"; a target without a leading
 *    slash (e.g. authority-form "host:443") gets one.
 *  - Repeated slashes collapse; a trailing slash is kept when the input
 *    has one after at least one segment ("//" gives "/").
 *  - A segment becomes "{id}" when it is, byte for byte (percent escapes
 *    are not decoded, so "%2F" is the three bytes '%' '2' 'F'):
 *      a) all decimal digits;
 *      b) a UUID: 8-4-4-4-12 hex digits, either case;
 *      c) >= 8 hex digits ([0-9a-fA-F]) with at least one decimal digit
 *         (hashes, object ids; "deadbeef" and "facade" stay words);
 *      d) >= 16 bytes from [A-Za-z0-9_+=%-] with at least one letter and
 *         at least one digit (base64url, ULIDs, long slugs with numbers).
 *         '.' is excluded so that file names such as "jquery-3.7.1.min.js"
 *         stay as they are; "~" and others likewise make it not a token.
 *      e) 8..15 bytes of [A-Za-z0-9] with letters and digits that read as
 *         random rather than as words with a number in them:
 *         e1) both cases and a digit, no capital followed by three
 *             lowercase letters (a word: "iPhone15Pro", "getUser2",
 *             "OAuth2Callback" stay), and one of: digits in two or more
 *             separate runs, two or more lowercase-then-uppercase steps,
 *             no vowel at all ("x7Gq2LpZ9", "dQw4w9WgXcQ");
 *         e2) one case only, digits in three or more separate runs and
 *             fewer than a quarter of the letters vowels ("k3j9x2m8";
 *             "v2alpha1", "stm32f429", "oauth2callback" stay).
 *         Measured on random strings: e1 takes 49% of random base62
 *         tokens of 8 bytes, 61% of 10, 65% of 12; e2 10%, 21%, 31% of
 *         lowercase base36 (5,000 each). Of 30,676 distinct 6..15-byte
 *         tokens from file names under /usr/share and Python 3.11's
 *         sources, 154 match: 134 Unicode escapes ("U0001d550"), the rest
 *         hex constants or struct formats ("0xEDB88320", "4s2B4HL2L2H"),
 *         ids themselves, and "TopAndL2" and "IMAP4rev1". Tokens
 *         without a digit (random words) are never taken: the per-service
 *         route budget (signals/routes.h) bounds those.
 *    Other segments, including "." and "..", are copied unchanged.
 *  - Cut-off: after ROUTE_MAX_SEGMENTS segments, or when the next segment
 *    would not fit in outsz, the rest is replaced by one final segment
 *    "*" (ROUTE_CUT). Room for that marker is always kept, so a cut route
 *    always ends in it when outsz >= 3 (with outsz 2 only "/" fits).
 *    Segments are never truncated mid-way.
 *
 * outsz should be >= 2; with outsz 1 only "" is written, with 0 nothing.
 */
size_t route__normalize(const char *target, size_t len, char *out,
			size_t outsz);

#endif
