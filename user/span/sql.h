/* SQL text helpers for database spans: literal-free normalisation, the
 * operation name and the first table. Pure functions over (text, len). */
#ifndef SONDE_SQL_H
#define SONDE_SQL_H

#include <stddef.h>

enum sql_dialect {
	SQL_POSTGRES = 1,	/* "x" is an identifier, $1 a parameter, $tag$..$tag$ a string */
	SQL_MYSQL = 2,		/* "x" is a string, `x` an identifier, backslash escapes */
};

/* Writes sql with every string and numeric literal replaced by '?',
 * IN (?, ?, ...) collapsed to IN (?), comments dropped and whitespace runs
 * collapsed to one space, into out (always NUL-terminated when n > 0).
 * Returns the output length; output that does not fit is cut (never in
 * the middle of a literal: a cut literal is still a '?'). */
size_t sql__normalize(const char *sql, size_t len, enum sql_dialect d, char *out, size_t n);

/* First keyword, uppercased (SELECT, INSERT, BEGIN, ...); for WITH the
 * statement after the common table expressions. "" when none. */
void sql__operation(const char *sql, size_t len, char *out, size_t n);

/* The table the statement works on: FROM x (SELECT, DELETE), INTO x
 * (INSERT, REPLACE), UPDATE x, TABLE x (CREATE/DROP/ALTER/TRUNCATE), COPY x.
 * Quotes dropped, schema kept ("public.t"). "" when none. */
void sql__collection(const char *sql, size_t len, char *out, size_t n);

#endif
