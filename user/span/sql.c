/* SQL text helpers: one small lexer (strings, numbers, identifiers,
 * comments, PostgreSQL dollar quotes) shared by normalisation, operation
 * and table extraction. Nothing here allocates or reads past len. */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "span/sql.h"

enum tok { T_END = 0, T_WORD, T_QIDENT, T_STRING, T_NUMBER, T_PARAM, T_PUNCT };

struct token {
	enum tok t;
	size_t start, end;	/* raw bytes [start, end) */
	bool space_before;	/* whitespace or a comment precedes it */
};

struct lex {
	const char *s;
	size_t len, i;
	enum sql_dialect d;
};

static bool word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Skips whitespace and comments; true if any were skipped. */
static bool skip_blank(struct lex *l)
{
	bool any = false;

	while (l->i < l->len) {
		char c = l->s[l->i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			l->i++;
		} else if ((c == '-' && l->i + 1 < l->len && l->s[l->i + 1] == '-') ||
			   (c == '#' && l->d == SQL_MYSQL)) {
			while (l->i < l->len && l->s[l->i] != '\n')
				l->i++;
		} else if (c == '/' && l->i + 1 < l->len && l->s[l->i + 1] == '*') {
			l->i += 2;
			while (l->i < l->len && !(l->s[l->i] == '*' && l->i + 1 < l->len &&
						  l->s[l->i + 1] == '/'))
				l->i++;
			l->i = l->i + 2 <= l->len ? l->i + 2 : l->len;
		} else {
			break;
		}
		any = true;
	}
	return any;
}

/* A quoted run starting at l->i (the opening quote); doubled quotes and,
 * where escapes is set, backslashes do not end it. Unterminated: to the end. */
static void skip_quoted(struct lex *l, char q, bool escapes)
{
	l->i++;
	while (l->i < l->len) {
		char c = l->s[l->i++];

		if (escapes && c == '\\') {
			if (l->i < l->len)
				l->i++;
		} else if (c == q) {
			if (l->i < l->len && l->s[l->i] == q)
				l->i++;
			else
				return;
		}
	}
}

/* $tag$ ... $tag$ at l->i; false (nothing consumed) if it is not one. */
static bool skip_dollar_quote(struct lex *l)
{
	size_t j = l->i + 1, tag_len;

	while (j < l->len && (isalnum((unsigned char)l->s[j]) || l->s[j] == '_'))
		j++;
	if (j >= l->len || l->s[j] != '$' || isdigit((unsigned char)l->s[l->i + 1]))
		return false;
	tag_len = j + 1 - l->i;
	for (size_t k = j + 1; k + tag_len <= l->len; k++)
		if (l->s[k] == '$' && memcmp(l->s + k, l->s + l->i, tag_len) == 0) {
			l->i = k + tag_len;
			return true;
		}
	l->i = l->len;
	return true;
}

static void lex_next(struct lex *l, struct token *t)
{
	unsigned char c;

	t->space_before = skip_blank(l);
	t->start = l->i;
	if (l->i >= l->len) {
		t->t = T_END;
		t->end = l->i;
		return;
	}
	c = (unsigned char)l->s[l->i];
	if (c == '\'') {
		skip_quoted(l, '\'', l->d == SQL_MYSQL);
		t->t = T_STRING;
	} else if (c == '"') {
		skip_quoted(l, '"', l->d == SQL_MYSQL);
		t->t = l->d == SQL_MYSQL ? T_STRING : T_QIDENT;
	} else if (c == '`') {
		skip_quoted(l, '`', false);
		t->t = T_QIDENT;
	} else if (c == '$' && l->i + 1 < l->len && isdigit((unsigned char)l->s[l->i + 1])) {
		l->i++;
		while (l->i < l->len && isdigit((unsigned char)l->s[l->i]))
			l->i++;
		t->t = T_PARAM;
	} else if (c == '$' && l->d == SQL_POSTGRES && skip_dollar_quote(l)) {
		t->t = T_STRING;
	} else if (isdigit(c) || (c == '.' && l->i + 1 < l->len &&
				  isdigit((unsigned char)l->s[l->i + 1]))) {
		/* 12, 1.5e-3, 0x1F, .5: eat the alphanumeric tail and exponent sign */
		while (l->i < l->len) {
			unsigned char d = (unsigned char)l->s[l->i];

			if (isalnum(d) || d == '.' || d == '_')
				l->i++;
			else if ((d == '+' || d == '-') && (l->s[l->i - 1] == 'e' || l->s[l->i - 1] == 'E') &&
				 !(l->s[t->start] == '0' && l->i - t->start > 1 &&
				   (l->s[t->start + 1] == 'x' || l->s[t->start + 1] == 'X')))
				l->i++;
			else
				break;
		}
		t->t = T_NUMBER;
	} else if (word_char(c) && c != '$') {
		while (l->i < l->len && word_char((unsigned char)l->s[l->i]))
			l->i++;
		t->t = T_WORD;
		/* E'..', X'..', B'..', N'..': the prefix belongs to the literal */
		if (l->i - t->start == 1 && l->i < l->len && l->s[l->i] == '\'' &&
		    strchr("EeXxBbNn", c)) {
			skip_quoted(l, '\'', l->d == SQL_MYSQL || c == 'E' || c == 'e');
			t->t = T_STRING;
		}
	} else {
		l->i++;
		t->t = T_PUNCT;
	}
	t->end = l->i;
}

static bool tok_is(const struct lex *l, const struct token *t, const char *kw)
{
	size_t n = strlen(kw);

	return t->t == T_WORD && t->end - t->start == n && strncasecmp(l->s + t->start, kw, n) == 0;
}

static bool tok_punct(const struct lex *l, const struct token *t, char c)
{
	return t->t == T_PUNCT && l->s[t->start] == c;
}

struct out {
	char *p;
	size_t n, len;
	bool full;
};

static void out_put(struct out *o, const char *s, size_t k)
{
	if (o->full || !o->n)
		return;
	if (o->len + k > o->n - 1) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, k);
	o->len += k;
	o->p[o->len] = 0;
}

size_t sql__normalize(const char *sql, size_t len, enum sql_dialect d, char *out, size_t n)
{
	struct lex l = { .s = sql, .len = len, .d = d };
	struct out o = { .p = out, .n = n };
	struct token t;
	/* IN ( ?, ?, ... ): after "IN (" and a first '?', further ", ?" are
	 * swallowed; any other token in the list ends the collapse. */
	enum { IN_NONE, IN_KW, IN_OPEN, IN_ITEM, IN_COMMA } in = IN_NONE;

	if (n)
		out[0] = 0;
	enum tok prev = T_PUNCT;
	char prevc = '(';

	for (lex_next(&l, &t); t.t != T_END && !o.full; lex_next(&l, &t)) {
		bool lit = t.t == T_STRING || t.t == T_NUMBER;

		/* a unary minus belongs to its number: "+ -5" is "+ ?" like "+ 5" */
		if (tok_punct(&l, &t, '-') && prev == T_PUNCT && prevc != ')' && prevc != ']') {
			struct lex peek = l;
			struct token nt;

			lex_next(&peek, &nt);
			if (nt.t == T_NUMBER && !nt.space_before) {
				l = peek;
				t.end = nt.end;
				t.t = T_NUMBER;
				lit = true;
			}
		}
		prev = t.t;
		prevc = sql[t.start];

		if (in == IN_ITEM && tok_punct(&l, &t, ',')) {
			in = IN_COMMA;
			continue;
		}
		if (in == IN_COMMA && lit) {
			in = IN_ITEM;
			continue;
		}
		if (in == IN_COMMA) {	/* not a literal after all: put the comma back */
			out_put(&o, ",", 1);
			if (t.space_before)
				out_put(&o, " ", 1);
			t.space_before = false;
		}
		/* a separating space goes out with its token, never alone */
		if (t.space_before && o.len && !o.full && o.len + 1 + (lit ? 1 : t.end - t.start) > n - 1)
			o.full = true;
		if (t.space_before && o.len)
			out_put(&o, " ", 1);
		if (lit)
			out_put(&o, "?", 1);
		else
			out_put(&o, sql + t.start, t.end - t.start);
		if (tok_is(&l, &t, "IN"))
			in = IN_KW;
		else if (in == IN_KW && tok_punct(&l, &t, '('))
			in = IN_OPEN;
		else if (in == IN_OPEN && lit)
			in = IN_ITEM;
		else
			in = IN_NONE;
	}
	if (in == IN_COMMA)
		out_put(&o, ",", 1);
	return o.len;
}

static void copy_upper(const char *s, size_t k, char *out, size_t n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < k && i < n - 1; i++)
		out[i] = (char)toupper((unsigned char)s[i]);
	out[i] = 0;
}

/* Positions l after the keyword that names the statement; t is that token. */
static bool main_keyword(struct lex *l, struct token *t)
{
	static const char *const mains[] = { "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE",
					     "REPLACE", "VALUES", "TABLE" };
	int depth = 0;

	do
		lex_next(l, t);
	while (tok_punct(l, t, '('));
	if (t->t != T_WORD)
		return false;
	if (!tok_is(l, t, "WITH"))
		return true;
	for (lex_next(l, t); t->t != T_END; lex_next(l, t)) {
		if (tok_punct(l, t, '('))
			depth++;
		else if (tok_punct(l, t, ')'))
			depth--;
		else if (depth == 0)
			for (size_t i = 0; i < sizeof(mains) / sizeof(mains[0]); i++)
				if (tok_is(l, t, mains[i]))
					return true;
	}
	return false;
}

void sql__operation(const char *sql, size_t len, char *out, size_t n)
{
	struct lex l = { .s = sql, .len = len, .d = SQL_POSTGRES };
	struct token t;

	if (n)
		out[0] = 0;
	if (main_keyword(&l, &t))
		copy_upper(sql + t.start, t.end - t.start, out, n);
}

/* Reads a possibly schema-qualified, possibly quoted name at the current
 * token into out, quotes dropped. */
static void read_name(struct lex *l, struct token *t, char *out, size_t n)
{
	struct out o = { .p = out, .n = n };

	if (n)
		out[0] = 0;
	while (t->t == T_WORD || t->t == T_QIDENT) {
		if (t->t == T_QIDENT) {
			size_t s = t->start + 1, e = t->end;

			if (e > s && l->s[e - 1] == l->s[t->start])
				e--;
			out_put(&o, l->s + s, e - s);
		} else {
			out_put(&o, l->s + t->start, t->end - t->start);
		}
		lex_next(l, t);
		if (!tok_punct(l, t, '.') || t->space_before)
			return;
		out_put(&o, ".", 1);
		lex_next(l, t);
	}
}

/* Skips optional words (IF NOT EXISTS, ONLY, LOW_PRIORITY, ...). */
static void skip_modifiers(struct lex *l, struct token *t)
{
	static const char *const mods[] = { "IF", "NOT", "EXISTS", "ONLY", "LOW_PRIORITY", "IGNORE",
					    "QUICK", "DELAYED", "HIGH_PRIORITY", "TEMPORARY",
					    "TEMP", "UNLOGGED" };
	bool again = true;

	while (again) {
		again = false;
		for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
			if (tok_is(l, t, mods[i])) {
				lex_next(l, t);
				again = true;
				break;
			}
	}
}

void sql__collection(const char *sql, size_t len, char *out, size_t n)
{
	struct lex l = { .s = sql, .len = len, .d = SQL_POSTGRES };
	struct token t;
	const char *after;
	int depth = 0;

	if (n)
		out[0] = 0;
	if (!main_keyword(&l, &t))
		return;
	if (tok_is(&l, &t, "SELECT") || tok_is(&l, &t, "DELETE"))
		after = "FROM";
	else if (tok_is(&l, &t, "INSERT") || tok_is(&l, &t, "REPLACE"))
		after = "INTO";
	else if (tok_is(&l, &t, "CREATE") || tok_is(&l, &t, "DROP") || tok_is(&l, &t, "ALTER"))
		after = "TABLE";
	else if (tok_is(&l, &t, "UPDATE") || tok_is(&l, &t, "COPY") || tok_is(&l, &t, "TRUNCATE") ||
		 tok_is(&l, &t, "TABLE"))
		after = NULL;
	else
		return;
	if (after) {
		/* CREATE/DROP/ALTER name the object right after their second
		 * word; for anything but TABLE there is no collection. */
		bool ddl = after[0] == 'T';

		for (lex_next(&l, &t); t.t != T_END; lex_next(&l, &t)) {
			if (ddl) {
				skip_modifiers(&l, &t);
				if (!tok_is(&l, &t, "TABLE"))
					return;
				lex_next(&l, &t);
				break;
			}
			if (tok_punct(&l, &t, '('))
				depth++;
			else if (tok_punct(&l, &t, ')'))
				depth--;
			else if (depth == 0 && tok_is(&l, &t, after)) {
				lex_next(&l, &t);
				break;
			}
		}
	} else {
		lex_next(&l, &t);
		if (tok_is(&l, &t, "TABLE"))
			lex_next(&l, &t);
	}
	skip_modifiers(&l, &t);
	read_name(&l, &t, out, n);
}
