/* HTTP/1.x stream parser: a byte-wise state machine over captured syscall
 * chunks; it never buffers a line, so any split of the input gives one result. */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "proto/http1/http1.h"

/*
 * Leniency choices (deliberate, kept small):
 *  - a bare LF ends a line like CRLF does (old tools and hand-written
 *    clients send it); a CR not followed by LF is an error;
 *  - empty lines before a message are skipped (RFC 9112 §2.2);
 *  - obsolete line folding is an error (RFC 9112 §5.2 allows rejecting it);
 *  - a status line without a reason phrase ("HTTP/1.1 200\r\n") is accepted;
 *  - when both Transfer-Encoding and Content-Length are present, chunked
 *    wins for framing (RFC 9112 §6.3 rule 3); content_length still reports
 *    the header value.
 */

enum {
	HTTP1_S_START,		/* message boundary */
	HTTP1_S_METHOD,
	HTTP1_S_TARGET,
	HTTP1_S_REQ_VERSION,
	HTTP1_S_RESP_VERSION,
	HTTP1_S_STATUS,
	HTTP1_S_REASON,
	HTTP1_S_HDR_START,	/* start of a field line, or the empty line */
	HTTP1_S_HDR_NAME,
	HTTP1_S_HDR_VALUE,
	HTTP1_S_BODY,		/* remaining bytes known */
	HTTP1_S_BODY_CLOSE,	/* response body delimited by connection close */
	HTTP1_S_CHUNK_SIZE,
	HTTP1_S_CHUNK_EXT,
	HTTP1_S_CHUNK_DATA,
	HTTP1_S_CHUNK_DATA_END,	/* the CRLF after chunk data */
	HTTP1_S_TRAILER_START,
	HTTP1_S_TRAILER_LINE,
	HTTP1_S_UPGRADED,	/* no longer HTTP: ignore everything */
	HTTP1_S_RESYNC,		/* framing lost: wait for a feed that starts a message */
};

enum {
	HTTP1_H_OTHER,
	HTTP1_H_CONTENT_LENGTH,
	HTTP1_H_TRANSFER_ENCODING,
	HTTP1_H_CONNECTION,
	HTTP1_H_UPGRADE,	/* list: "h2c" noted */
	HTTP1_H_H2_SETTINGS,	/* requests: base64url SETTINGS, decoded as it comes */
	HTTP1_H_RECORD,		/* + enum http1_field: value recorded, not interpreted */
};

/* tok_len value once a token no longer fits: it then matches nothing. */
#define HTTP1_TOK_OVER 0xff

static const char http1__version[] = "HTTP/1.";

/* RFC 9110 tchar, as a table: header names are the parser's hottest bytes. */
#define T1(c) [c] = 1
static const uint8_t http1__tchar[256] = {
	T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'),
	T1('.'), T1('^'), T1('_'), T1('`'), T1('|'), T1('~'),
	T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
	T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'), T1('J'),
	T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'),
	T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
	T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'), T1('j'),
	T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'), T1('s'), T1('t'),
	T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};
#undef T1

static inline int http1__is_tchar(uint8_t c)
{
	return http1__tchar[c];
}

/* Narrower than tchar on purpose: inference must not fire on arbitrary
 * text, and every registered method is uppercase letters, '-' or '_'. */
static int http1__is_method_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

/* Bytes above 0x7f are let through: some clients send raw UTF-8 paths. */
static int http1__is_target_char(uint8_t c)
{
	return c > 0x20 && c != 0x7f;
}

static int http1__is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static int http1__hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int http1__in_head(uint8_t st)
{
	return (st >= HTTP1_S_METHOD && st <= HTTP1_S_HDR_VALUE) ||
	       st == HTTP1_S_TRAILER_START || st == HTTP1_S_TRAILER_LINE;
}

static void http1__tok_push(struct http1_parser *p, uint8_t c)
{
	if (p->tok_len == HTTP1_TOK_OVER)
		return;
	if (p->tok_len >= sizeof(p->tok)) {
		p->tok_len = HTTP1_TOK_OVER;
		return;
	}
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	p->tok[p->tok_len++] = (char)c;
}

static int http1__tok_is(const struct http1_parser *p, const char *s)
{
	size_t n = strlen(s);

	return p->tok_len == n && memcmp(p->tok, s, n) == 0;
}

int http1__upgraded(const struct http1_parser *p)
{
	return p->state == HTTP1_S_UPGRADED;
}

int http1__between_messages(const struct http1_parser *p)
{
	return p->state == HTTP1_S_START || p->state == HTTP1_S_RESYNC;
}

int http1__at_rest(const struct http1_parser *p)
{
	return p->state == HTTP1_S_START && !p->cr && !p->resyncing;
}

void http1__init(struct http1_parser *p, enum http1_stream s)
{
	memset(p, 0, sizeof(*p));
	p->stream = (uint8_t)s;
	p->state = HTTP1_S_START;
	p->msg.content_length = -1;
}

static void http1__begin(struct http1_parser *p)
{
	struct http1_message *m = &p->msg;

	/* Field by field: clearing the whole message (a 256-byte target) per
	 * message was the largest single cost of small heads. method and
	 * target are kept NUL-terminated as bytes arrive. */
	m->method[0] = '\0';
	m->target[0] = '\0';
	m->target_truncated = 0;
	m->version_minor = 0;
	m->chunked = 0;
	m->conn_close = 0;
	m->head_incomplete = 0;
	m->status = 0;
	m->content_length = -1;
	p->remaining = 0;
	p->num = 0;
	p->head_len = 0;
	p->line_len = 0;
	p->target_len = 0;
	p->pos = 0;
	p->cr = 0;
	p->head_sent = 0;
	p->start_known = 0;
	p->te_seen = p->te_chunked = 0;
	p->conn_ka = p->conn_close = 0;
	p->tok_len = 0;
	m->field_cut = 0;
	m->traceparent_lines = 0;
	m->traceparent[0] = '\0';
	m->tracestate[0] = '\0';
	m->request_id[0] = '\0';
	m->tracking_id[0] = '\0';
	m->correlation_id[0] = '\0';
	m->upgrade_h2c = 0;
	m->h2_table_size = HTTP1_H2_TABLE_NONE;
	p->state = p->stream == HTTP1_REQUESTS ? HTTP1_S_METHOD : HTTP1_S_RESP_VERSION;
}

static char *http1__field_buf(struct http1_message *m, unsigned int f, size_t *size)
{
	switch (f) {
	case HTTP1_F_TRACEPARENT: *size = sizeof(m->traceparent); return m->traceparent;
	case HTTP1_F_TRACESTATE: *size = sizeof(m->tracestate); return m->tracestate;
	case HTTP1_F_REQUEST_ID: *size = sizeof(m->request_id); return m->request_id;
	case HTTP1_F_TRACKING_ID: *size = sizeof(m->tracking_id); return m->tracking_id;
	default: *size = sizeof(m->correlation_id); return m->correlation_id;
	}
}

/* A recorded field line begins: where its value goes, and whether it is
 * recorded at all (the first X-Request-ID & co wins; tracestate lines are
 * joined as one list, RFC 9110 §5.3). */
static void http1__record_begin(struct http1_parser *p, unsigned int f)
{
	struct http1_message *m = &p->msg;
	size_t size;
	char *buf = http1__field_buf(m, f, &size);

	p->vlen = (uint16_t)strlen(buf);
	if (f == HTTP1_F_TRACEPARENT) {
		if (m->traceparent_lines < 255)
			m->traceparent_lines++;
		if (p->vlen)
			p->hdr = HTTP1_H_OTHER;
		return;
	}
	if (f == HTTP1_F_TRACESTATE) {
		if (p->vlen && (size_t)p->vlen + 1 < size) {
			buf[p->vlen++] = ',';
			buf[p->vlen] = '\0';
		} else if (p->vlen) {
			m->field_cut |= 1u << f;
		}
		return;
	}
	if (p->vlen)
		p->hdr = HTTP1_H_OTHER;
}

/* Appends value bytes of a recorded field. Whitespace is dropped where the
 * value starts and, in tracestate, after each ',' (list members, and the
 * ',' joining two lines); trailing whitespace goes at the end of the line.
 * Any run of bytes gives what they would one at a time. */
static void http1__record(struct http1_parser *p, const uint8_t *d, size_t n)
{
	struct http1_message *m = &p->msg;
	unsigned int f = p->hdr - HTTP1_H_RECORD;
	size_t size, k = 0, run;
	char *buf = http1__field_buf(m, f, &size);
	const uint8_t *comma;

	while (k < n) {
		if (!p->vlen || (f == HTTP1_F_TRACESTATE && buf[p->vlen - 1] == ','))
			while (k < n && (d[k] == ' ' || d[k] == '\t'))
				k++;
		if (k == n)
			break;
		run = n - k;
		if (f == HTTP1_F_TRACESTATE && (comma = memchr(d + k, ',', run)))
			run = (size_t)(comma - (d + k)) + 1;
		if ((size_t)p->vlen + run > size - 1) {
			/* full: no later byte can be kept */
			run = size - 1 - p->vlen;
			m->field_cut |= 1u << f;
			n = k + run;
		}
		memcpy(buf + p->vlen, d + k, run);
		p->vlen = (uint16_t)(p->vlen + run);
		k += run;
	}
	buf[p->vlen] = '\0';
}

static void http1__record_end(struct http1_parser *p)
{
	size_t size;
	char *buf = http1__field_buf(&p->msg, p->hdr - HTTP1_H_RECORD, &size);

	while (p->vlen && (buf[p->vlen - 1] == ' ' || buf[p->vlen - 1] == '\t'))
		p->vlen--;
	buf[p->vlen] = '\0';
}

static void http1__complete(struct http1_parser *p, const struct http1_callbacks *cb,
			    void *ctx)
{
	p->head_sent = 0;
	p->cr = 0;
	p->state = HTTP1_S_START;
	if (cb && cb->on_complete)
		cb->on_complete(ctx, &p->msg);
}

static void http1__resync(struct http1_parser *p)
{
	p->state = HTTP1_S_RESYNC;
	p->cr = 0;
	p->head_sent = 0;
}

/*
 * Errors inside a message that only began because a resync guessed a start
 * stay silent: a body fragment that happens to start with "ABC" is lost
 * framing, not a malformed peer, and must not inflate error counters.
 * A message whose head was already delivered still gets its on_complete.
 */
void http1__lost(struct http1_parser *p)
{
	http1__begin(p);
	http1__resync(p);
}

static void http1__fail(struct http1_parser *p, enum http1_error err,
			const struct http1_callbacks *cb, void *ctx)
{
	int sent = p->head_sent;

	if (!p->resyncing && cb && cb->on_error)
		cb->on_error(ctx, err);
	if (sent)
		http1__complete(p, cb, ctx);
	http1__resync(p);
}

static void http1__chunk_start(struct http1_parser *p)
{
	p->state = HTTP1_S_CHUNK_SIZE;
	p->pos = 0;
	p->num = 0;
	p->line_len = 0;
}

/* End of the header section (or a capture gap inside it when incomplete). */
static void http1__head_done(struct http1_parser *p, int incomplete,
			     const struct http1_callbacks *cb, void *ctx)
{
	struct http1_message *m = &p->msg;
	int ret = 0;

	m->chunked = p->te_seen && p->te_chunked;
	m->conn_close = p->conn_close || (m->version_minor == 0 && !p->conn_ka);
	m->head_incomplete = (uint8_t)incomplete;

	if (p->stream == HTTP1_RESPONSES && m->status >= 100 && m->status < 200 &&
	    m->status != 101) {
		/* Interim response: the final one follows on the same stream. */
		p->resyncing = 0;
		if (incomplete)
			http1__resync(p);
		else
			p->state = HTTP1_S_START;
		return;
	}
	/* RFC 9112 §6.3: a request whose final coding isn't chunked has no
	 * reliable length. */
	if (!incomplete && p->stream == HTTP1_REQUESTS && p->te_seen && !m->chunked) {
		http1__fail(p, HTTP1_ERR_BAD_HEADER, cb, ctx);
		return;
	}

	if (cb && cb->on_head)
		ret = cb->on_head(ctx, m);
	p->head_sent = 1;
	p->resyncing = 0;

	if (incomplete) {
		http1__complete(p, cb, ctx);
		if (p->stream == HTTP1_RESPONSES && m->status == 101)
			p->state = HTTP1_S_UPGRADED;
		else
			http1__resync(p);
		return;
	}

	if (p->stream == HTTP1_REQUESTS) {
		if (m->method[0] == 'C' && strcmp(m->method, "CONNECT") == 0) {
			/* A tunnel may follow, or another request if the
			 * proxy refused: let resync tell them apart. */
			http1__complete(p, cb, ctx);
			http1__resync(p);
		} else if (m->chunked) {
			http1__chunk_start(p);
		} else if (m->content_length > 0) {
			p->remaining = (uint64_t)m->content_length;
			p->state = HTTP1_S_BODY;
		} else {
			http1__complete(p, cb, ctx);
		}
		return;
	}

	if (m->status == 101 || ret == HTTP1_HEAD_TUNNEL) {
		http1__complete(p, cb, ctx);
		p->state = HTTP1_S_UPGRADED;
	} else if (ret == HTTP1_HEAD_NO_BODY || m->status == 204 || m->status == 304) {
		http1__complete(p, cb, ctx);
	} else if (m->chunked) {
		http1__chunk_start(p);
	} else if (m->content_length > 0) {
		p->remaining = (uint64_t)m->content_length;
		p->state = HTTP1_S_BODY;
	} else if (m->content_length == 0) {
		http1__complete(p, cb, ctx);
	} else {
		p->state = HTTP1_S_BODY_CLOSE;
	}
}

/* One Content-Length list element ("5, 5" is legal, "5, 6" is not). */
static int http1__cl_elem_done(struct http1_parser *p)
{
	if (p->msg.content_length >= 0 && (uint64_t)p->msg.content_length != p->num)
		return -1;
	p->msg.content_length = (int64_t)p->num;
	p->num = 0;
	p->nelem++;
	return 0;
}

static int http1__cl_byte(struct http1_parser *p, uint8_t c)
{
	if (c == ' ' || c == '\t') {
		if (p->vphase == 1)
			p->vphase = 2;
		return 0;
	}
	if (c == ',') {
		if (p->vphase && http1__cl_elem_done(p))
			return -1;
		p->vphase = 0;
		return 0;
	}
	if (http1__is_digit(c) && p->vphase < 2) {
		/* 2^53 bytes is already absurd; staying far from INT64_MAX
		 * keeps the arithmetic trivially safe. */
		if (p->num > (1ULL << 53))
			return -1;
		p->num = p->num * 10 + (uint64_t)(c - '0');
		p->vphase = 1;
		return 0;
	}
	return -1;
}

/* One element of a Transfer-Encoding or Connection list. */
static void http1__list_elem_done(struct http1_parser *p)
{
	if (p->vphase == 0)
		return;		/* empty element: "a, , b" is legal */
	if (p->hdr == HTTP1_H_TRANSFER_ENCODING) {
		p->te_seen = 1;
		p->te_chunked = http1__tok_is(p, "chunked");
	} else if (p->hdr == HTTP1_H_UPGRADE) {
		if (http1__tok_is(p, "h2c"))
			p->msg.upgrade_h2c = 1;
	} else {
		if (http1__tok_is(p, "close"))
			p->conn_close = 1;
		else if (http1__tok_is(p, "keep-alive"))
			p->conn_ka = 1;
	}
	p->tok_len = 0;
	p->vphase = 0;
}

/* vphase: 0 before the token, 1 in it, 2 after it, 3 in parameters or junk
 * that can no longer match anything. */
static void http1__list_byte(struct http1_parser *p, uint8_t c)
{
	int ws = c == ' ' || c == '\t';

	if (c == ',') {
		http1__list_elem_done(p);
		return;
	}
	switch (p->vphase) {
	case 0:
		if (ws)
			return;
		p->tok_len = 0;
		if (http1__is_tchar(c)) {
			http1__tok_push(p, c);
			p->vphase = 1;
		} else {
			p->tok_len = HTTP1_TOK_OVER;
			p->vphase = 3;
		}
		return;
	case 1:
		if (http1__is_tchar(c)) {
			http1__tok_push(p, c);
			return;
		}
		if (ws) {
			p->vphase = 2;
			return;
		}
		break;
	case 2:
		if (ws)
			return;
		break;
	default:
		return;
	}
	if (c != ';')
		p->tok_len = HTTP1_TOK_OVER;
	p->vphase = 3;
}

static int http1__b64url(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-' || c == '+')
		return 62;
	if (c == '_' || c == '/')
		return 63;
	return -1;
}

/* One byte of an HTTP2-Settings value (RFC 7540 §3.2.1: the SETTINGS
 * payload in base64url): its entries are decoded as they complete, and
 * SETTINGS_HEADER_TABLE_SIZE (id 1) kept. Anything that is not base64url
 * (whitespace and padding aside) makes the value unknown. */
static void http1__h2_settings_byte(struct http1_parser *p, uint8_t c)
{
	int v = http1__b64url(c);

	if (p->b64_bits == 0xff)
		return;		/* given up on this value */
	if (v < 0) {
		if (c != ' ' && c != '\t' && c != '=') {
			p->b64_bits = 0xff;
			p->msg.h2_table_size = HTTP1_H2_TABLE_NONE;
		}
		return;
	}
	p->b64_acc = (uint16_t)(p->b64_acc << 6 | (unsigned int)v);
	p->b64_bits += 6;
	if (p->b64_bits < 8)
		return;
	p->b64_bits -= 8;
	p->set[p->set_n++] = (uint8_t)(p->b64_acc >> p->b64_bits);
	p->b64_acc &= (uint16_t)((1u << p->b64_bits) - 1);
	if (p->set_n < sizeof(p->set))
		return;
	p->set_n = 0;
	if (p->set[0] == 0 && p->set[1] == 1)
		p->msg.h2_table_size = (uint32_t)p->set[2] << 24 | (uint32_t)p->set[3] << 16 |
				       (uint32_t)p->set[4] << 8 | p->set[5];
}

/* enum http1_field of a lowercased field name, -1 for the others. */
static int http1__record_field(const char *name, size_t n)
{
	switch (n) {
	case 10: return memcmp(name, "tracestate", 10) ? -1 : HTTP1_F_TRACESTATE;
	case 11: return memcmp(name, "traceparent", 11) ? -1 : HTTP1_F_TRACEPARENT;
	case 12: return memcmp(name, "x-request-id", 12) ? -1 : HTTP1_F_REQUEST_ID;
	case 13: return memcmp(name, "x-tracking-id", 13) ? -1 : HTTP1_F_TRACKING_ID;
	case 16: return memcmp(name, "x-correlation-id", 16) ? -1 : HTTP1_F_CORRELATION_ID;
	}
	return -1;
}

static void http1__classify_name(struct http1_parser *p)
{
	if (http1__tok_is(p, "content-length"))
		p->hdr = HTTP1_H_CONTENT_LENGTH;
	else if (http1__tok_is(p, "transfer-encoding"))
		p->hdr = HTTP1_H_TRANSFER_ENCODING;
	else if (http1__tok_is(p, "connection"))
		p->hdr = HTTP1_H_CONNECTION;
	else if (http1__tok_is(p, "upgrade"))
		p->hdr = HTTP1_H_UPGRADE;
	else if (p->stream == HTTP1_REQUESTS && http1__tok_is(p, "http2-settings")) {
		p->hdr = HTTP1_H_H2_SETTINGS;
		p->b64_acc = 0;
		p->b64_bits = p->set_n = 0;
	} else
		p->hdr = HTTP1_H_OTHER;
	if (p->hdr == HTTP1_H_OTHER && p->stream == HTTP1_REQUESTS) {
		int f = http1__record_field(p->tok, p->tok_len);

		if (f >= 0) {
			p->hdr = (uint8_t)(HTTP1_H_RECORD + f);
			http1__record_begin(p, (unsigned int)f);
		}
	}
	p->tok_len = 0;
	p->vphase = 0;
	p->nelem = 0;
	p->num = 0;
}

/* A line ended (CRLF or bare LF) in the current state. */
static void http1__eol(struct http1_parser *p, const struct http1_callbacks *cb,
		       void *ctx)
{
	p->line_len = 0;
	switch (p->state) {
	case HTTP1_S_START:
		return;
	case HTTP1_S_REQ_VERSION:
		if (p->pos != sizeof(http1__version))
			break;
		p->state = HTTP1_S_HDR_START;
		return;
	case HTTP1_S_STATUS:
		if (p->pos != 3)
			break;
		/* fallthrough */
	case HTTP1_S_REASON:
		p->state = HTTP1_S_HDR_START;
		return;
	case HTTP1_S_HDR_START:
		http1__head_done(p, 0, cb, ctx);
		return;
	case HTTP1_S_HDR_VALUE:
		if (p->hdr == HTTP1_H_CONTENT_LENGTH) {
			if ((p->vphase && http1__cl_elem_done(p)) || !p->nelem) {
				http1__fail(p, HTTP1_ERR_BAD_HEADER, cb, ctx);
				return;
			}
		} else if (p->hdr >= HTTP1_H_RECORD) {
			http1__record_end(p);
		} else if (p->hdr == HTTP1_H_H2_SETTINGS) {
			/* a partial entry is not a SETTINGS payload */
			if (p->set_n)
				p->msg.h2_table_size = HTTP1_H2_TABLE_NONE;
		} else if (p->hdr != HTTP1_H_OTHER) {
			http1__list_elem_done(p);
		}
		p->state = HTTP1_S_HDR_START;
		return;
	case HTTP1_S_CHUNK_SIZE:
	case HTTP1_S_CHUNK_EXT:
		if (!p->pos) {
			http1__fail(p, HTTP1_ERR_BAD_HEADER, cb, ctx);
			return;
		}
		if (p->num == 0) {
			p->state = HTTP1_S_TRAILER_START;
			p->head_len = 0;
		} else {
			p->remaining = p->num;
			p->state = HTTP1_S_CHUNK_DATA;
		}
		return;
	case HTTP1_S_CHUNK_DATA_END:
		http1__chunk_start(p);
		return;
	case HTTP1_S_TRAILER_START:
		http1__complete(p, cb, ctx);
		return;
	case HTTP1_S_TRAILER_LINE:
		p->state = HTTP1_S_TRAILER_START;
		return;
	case HTTP1_S_HDR_NAME:
		http1__fail(p, HTTP1_ERR_BAD_HEADER, cb, ctx);
		return;
	default:	/* start line cut short by a line end */
		break;
	}
	http1__fail(p, HTTP1_ERR_BAD_START, cb, ctx);
}

static enum http1_error http1__state_err(uint8_t st)
{
	return st <= HTTP1_S_REASON ? HTTP1_ERR_BAD_START : HTTP1_ERR_BAD_HEADER;
}

/* Every state except the body-skipping ones goes through here. */
static void http1__byte(struct http1_parser *p, uint8_t c,
			const struct http1_callbacks *cb, void *ctx)
{
	struct http1_message *m = &p->msg;
	uint8_t st = p->state;
	int h;

	if (p->cr) {
		p->cr = 0;
		if (c != '\n') {
			http1__fail(p, http1__state_err(st), cb, ctx);
			return;
		}
		http1__eol(p, cb, ctx);
		return;
	}
	if (st == HTTP1_S_START) {
		if (c == '\r') {
			p->cr = 1;
			return;
		}
		if (c == '\n')
			return;
		http1__begin(p);
		st = p->state;
	}
	if (http1__in_head(st) && ++p->head_len > HTTP1_MAX_HEAD) {
		http1__fail(p, HTTP1_ERR_TOO_LONG, cb, ctx);
		return;
	}
	if (c == '\r') {
		p->cr = 1;
		return;
	}
	if (c == '\n') {
		http1__eol(p, cb, ctx);
		return;
	}
	if (++p->line_len > HTTP1_MAX_LINE) {
		http1__fail(p, HTTP1_ERR_TOO_LONG, cb, ctx);
		return;
	}

	switch (st) {
	case HTTP1_S_METHOD:
		if (c == ' ' && p->pos) {
			m->method[p->pos] = '\0';
			p->start_known = 1;
			p->state = HTTP1_S_TARGET;
			return;
		}
		if (!http1__is_method_char(c) || (!p->pos && !(c >= 'A' && c <= 'Z')) ||
		    p->pos >= HTTP1_METHOD_MAX - 1)
			break;
		m->method[p->pos++] = (char)c;
		m->method[p->pos] = '\0';
		return;
	case HTTP1_S_TARGET:
		if (c == ' ' && p->target_len) {
			p->state = HTTP1_S_REQ_VERSION;
			p->pos = 0;
			return;
		}
		if (!http1__is_target_char(c))
			break;
		if (p->target_len < HTTP1_TARGET_MAX - 1) {
			m->target[p->target_len++] = (char)c;
			m->target[p->target_len] = '\0';
		} else {
			m->target_truncated = 1;
		}
		return;
	case HTTP1_S_REQ_VERSION:
	case HTTP1_S_RESP_VERSION:
		if (p->pos < sizeof(http1__version) - 1) {
			if (c != (uint8_t)http1__version[p->pos])
				break;
			p->pos++;
			return;
		}
		if (p->pos == sizeof(http1__version) - 1 && http1__is_digit(c)) {
			m->version_minor = (uint8_t)(c - '0');
			p->pos++;
			return;
		}
		if (st == HTTP1_S_RESP_VERSION && p->pos == sizeof(http1__version) && c == ' ') {
			p->state = HTTP1_S_STATUS;
			p->pos = 0;
			return;
		}
		break;
	case HTTP1_S_STATUS:
		if (p->pos < 3 && http1__is_digit(c) && (p->pos || c != '0')) {
			m->status = (uint16_t)(m->status * 10 + (c - '0'));
			if (++p->pos == 3)
				p->start_known = 1;
			return;
		}
		if (p->pos == 3 && c == ' ') {
			p->state = HTTP1_S_REASON;
			return;
		}
		break;
	case HTTP1_S_REASON:
		return;
	case HTTP1_S_HDR_START:
		/* Leading whitespace would be obs-fold: rejected. */
		if (!http1__is_tchar(c))
			break;
		p->tok_len = 0;
		http1__tok_push(p, c);
		p->state = HTTP1_S_HDR_NAME;
		return;
	case HTTP1_S_HDR_NAME:
		if (http1__is_tchar(c)) {
			http1__tok_push(p, c);
			return;
		}
		if (c != ':')
			break;
		http1__classify_name(p);
		p->state = HTTP1_S_HDR_VALUE;
		return;
	case HTTP1_S_HDR_VALUE:
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			break;
		if (p->hdr == HTTP1_H_CONTENT_LENGTH) {
			if (http1__cl_byte(p, c))
				break;
		} else if (p->hdr >= HTTP1_H_RECORD) {
			http1__record(p, &c, 1);
		} else if (p->hdr == HTTP1_H_H2_SETTINGS) {
			http1__h2_settings_byte(p, c);
		} else if (p->hdr != HTTP1_H_OTHER) {
			http1__list_byte(p, c);
		}
		return;
	case HTTP1_S_CHUNK_SIZE:
		h = http1__hex(c);
		if (h >= 0) {
			if (p->num >> 56)
				break;
			p->num = p->num * 16 + (uint64_t)h;
			p->pos = 1;
			return;
		}
		/* Whitespace before an extension is tolerated (BWS). */
		if (p->pos && (c == ';' || c == ' ' || c == '\t')) {
			p->state = HTTP1_S_CHUNK_EXT;
			return;
		}
		break;
	case HTTP1_S_CHUNK_EXT:
	case HTTP1_S_TRAILER_LINE:
		if (c < 0x20 && c != '\t')
			break;
		return;
	case HTTP1_S_TRAILER_START:
		if (!http1__is_tchar(c))
			break;
		p->state = HTTP1_S_TRAILER_LINE;
		return;
	case HTTP1_S_CHUNK_DATA_END:
	default:
		break;
	}
	http1__fail(p, http1__state_err(st), cb, ctx);
}

/* Bytes [cap, len) of a feed were not captured. */
static void http1__gap_frame(struct http1_parser *p, uint64_t gap,
			     const struct http1_callbacks *cb, void *ctx)
{
	switch (p->state) {
	case HTTP1_S_BODY:
		if (gap < p->remaining) {
			p->remaining -= gap;
			return;
		}
		http1__complete(p, cb, ctx);
		if (gap > p->remaining)
			http1__resync(p);
		return;
	case HTTP1_S_CHUNK_DATA:
		/* Still exact while the gap stays inside this chunk's data. */
		if (gap <= p->remaining) {
			p->remaining -= gap;
			if (!p->remaining)
				p->state = HTTP1_S_CHUNK_DATA_END;
			return;
		}
		break;
	case HTTP1_S_BODY_CLOSE:	/* everything up to close is body anyway */
	case HTTP1_S_UPGRADED:
	case HTTP1_S_RESYNC:
		return;
	case HTTP1_S_START:
		http1__resync(p);
		return;
	default:
		break;
	}
	if (p->head_sent) {
		/* Assume the message ended with the syscall. */
		http1__complete(p, cb, ctx);
	} else if (p->start_known && p->state >= HTTP1_S_METHOD &&
		   p->state <= HTTP1_S_HDR_VALUE) {
		if (p->state == HTTP1_S_TARGET)
			p->msg.target_truncated = 1;
		/* Version not seen yet: assume today's common case rather
		 * than let minor 0 imply Connection: close. */
		if (p->state == HTTP1_S_TARGET ||
		    (p->state == HTTP1_S_REQ_VERSION && p->pos < sizeof(http1__version)))
			p->msg.version_minor = 1;
		http1__head_done(p, 1, cb, ctx);
		if (p->state == HTTP1_S_UPGRADED)
			return;
	}
	http1__resync(p);
}

/* A gap that leaves no boundary to resume from may have swallowed whole
 * messages (pipelining): say so, so that the caller keeps its pairing in
 * step instead of matching the next message seen with the wrong one. */
static void http1__gap(struct http1_parser *p, uint64_t gap,
		       const struct http1_callbacks *cb, void *ctx)
{
	http1__gap_frame(p, gap, cb, ctx);
	if (p->state == HTTP1_S_RESYNC && cb && cb->on_lost)
		cb->on_lost(ctx);
}

/* Fast paths: runs of bytes that http1__byte() would accept one at a time
 * without a state change, or whole lines, consumed in a tight loop with
 * the same effect. What ends a run goes through http1__byte() as usual. */

/* Eight bytes at d as a little-endian word (byte k in bits 8k..8k+7), so
 * that the lowest set bit of a per-byte test is the first byte in memory. */
static inline uint64_t http1__le64(const uint8_t *d)
{
	uint64_t w;

	memcpy(&w, d, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static inline uint32_t http1__le32(const uint8_t *d)
{
	uint32_t w;

	memcpy(&w, d, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap32(w);
#endif
	return w;
}

/* Scans test sixteen bytes at once with the compiler's generic vectors
 * (SSE2 on x86-64, NEON on arm64): a test gives 0xff for each byte it
 * flags, 0 for the others. */
typedef uint8_t http1_v16 __attribute__((vector_size(16)));
typedef int8_t http1_m16 __attribute__((vector_size(16)));

enum { HTTP1_FIND_CTL, HTTP1_FIND_EOL, HTTP1_FIND_TARGET_END, HTTP1_FIND_NAME_END };

/* Letters, digits and '-': what nearly every field name is made of. */
static inline int http1__is_name_char(uint8_t c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || http1__is_digit(c) || c == '-';
}

/* What `what` flags: a control byte (tabs included: a value's caller
 * steps over them), a CR or LF, a byte that ends a request-target, or one
 * that is not a letter, digit or '-' (a field name's caller steps over
 * other tchar). */
static inline int http1__find_byte(uint8_t c, int what)
{
	if (what == HTTP1_FIND_CTL)
		return c < 0x20 || c == 0x7f;
	if (what == HTTP1_FIND_EOL)
		return c == '\r' || c == '\n';
	if (what == HTTP1_FIND_NAME_END)
		return !http1__is_name_char(c);
	return !http1__is_target_char(c);
}

/* The same test on the sixteen bytes at d. */
static inline http1_m16 http1__find16(const uint8_t *d, int what)
{
	http1_v16 v;

	memcpy(&v, d, sizeof(v));
	if (what == HTTP1_FIND_CTL)
		return (v < 0x20) | (v == 0x7f);
	if (what == HTTP1_FIND_EOL)
		return (v == '\r') | (v == '\n');
	if (what == HTTP1_FIND_NAME_END)
		return ~(((http1_v16)((v | 0x20) - 'a') < 26) | ((http1_v16)(v - '0') < 10) |
			 (v == '-'));
	return (v <= 0x20) | (v == 0x7f);
}

/* Index of the first flagged byte of m at or after byte `skip`, 16 when
 * none. */
static inline size_t http1__first16(http1_m16 m, size_t skip)
{
#ifdef __SSE2__
	/* one bit per byte in one instruction (pmovmskb) */
	unsigned int bits = (unsigned int)_mm_movemask_epi8((__m128i)m) >> skip << skip;

	return bits ? (size_t)__builtin_ctz(bits) : 16;
#else
	uint8_t b[16];
	uint64_t lo, hi;

	memcpy(b, &m, sizeof(b));
	lo = http1__le64(b);
	hi = http1__le64(b + 8);
	if (skip >= 8) {
		lo = 0;
		hi &= ~0ULL << (8 * (skip - 8));
	} else {
		lo &= ~0ULL << (8 * skip);
	}
	if (lo)
		return (size_t)__builtin_ctzll(lo) >> 3;
	if (hi)
		return 8 + ((size_t)__builtin_ctzll(hi) >> 3);
	return 16;
#endif
}

/* Index of the first byte in [j, e) that `what` flags, e when none.
 * Sixteen bytes at a time, and only bytes of [0, e) are read: a last run
 * shorter than that is read as the sixteen bytes that end at e, those
 * before j skipped. */
static inline size_t http1__find(const uint8_t *d, size_t j, size_t e, int what)
{
	size_t k;

	for (; j + 16 <= e; j += 16)
		if ((k = http1__first16(http1__find16(d + j, what), 0)) < 16)
			return j + k;
	if (j == e)
		return e;
	if (e < 16) {
		for (; j < e && !http1__find_byte(d[j], what); j++)
			;
		return j;
	}
	k = http1__first16(http1__find16(d + e - 16, what), 16 - (e - j));
	return k < 16 ? e - 16 + k : e;
}

/* The end of a field value from j: its first control byte other than a
 * tab (tabs are rare: stepped over one find at a time), e when none. */
static inline size_t http1__value_end(const uint8_t *d, size_t j, size_t e)
{
	for (;; j++) {
		j = http1__find(d, j, e, HTTP1_FIND_CTL);
		if (j == e || d[j] != '\t')
			return j;
	}
}

/* Bytes the current head line may still take before a length limit. */
static size_t http1__line_room(const struct http1_parser *p, size_t avail)
{
	size_t room = HTTP1_MAX_LINE - p->line_len;

	if (room > HTTP1_MAX_HEAD - p->head_len)
		room = HTTP1_MAX_HEAD - p->head_len;
	return room < avail ? room : avail;
}

/* The values of fields we don't interpret (cookies, user agents: most of
 * a head) when a line is not whole in the feed. Same accounting as
 * http1__byte; stops before any byte that needs the byte path, including
 * the one that would exceed a limit. */
static size_t http1__skip_value(struct http1_parser *p, const uint8_t *data, size_t i,
				size_t cap)
{
	size_t j = http1__value_end(data, i, i + http1__line_room(p, cap - i));

	p->line_len += (uint16_t)(j - i);
	p->head_len += (uint32_t)(j - i);
	return j;
}

static size_t http1__skip_name(struct http1_parser *p, const uint8_t *data, size_t i,
			       size_t cap)
{
	size_t room = http1__line_room(p, cap - i), j;

	for (j = 0; j < room && http1__is_tchar(data[i + j]); j++)
		http1__tok_push(p, data[i + j]);
	p->line_len += (uint16_t)j;
	p->head_len += (uint32_t)j;
	return i + j;
}

/* Whether the n bytes at d (n >= 4) are the lowercase text lower in any
 * case, a word (or half) at a time. OR-ing 0x20 lowercases a letter; the
 * other bytes lower holds ('-', digits) only share it with control bytes,
 * which the fast paths never pass here. */
static inline int http1__name_is(const uint8_t *d, size_t n, const char *lower)
{
	const uint8_t *l = (const uint8_t *)lower;
	const uint64_t c8 = 0x2020202020202020ULL;
	const uint32_t c4 = 0x20202020u;
	size_t k;

	if (n < 8)
		return (http1__le32(d) | c4) == http1__le32(l) &&
		       (http1__le32(d + n - 4) | c4) == http1__le32(l + n - 4);
	for (k = 0; k + 8 <= n; k += 8)
		if ((http1__le64(d + k) | c8) != http1__le64(l + k))
			return 0;
	return k == n || (http1__le64(d + n - 8) | c8) == http1__le64(l + n - 8);
}

/* "HTTP/1." and a digit at d (eight bytes readable). */
static inline int http1__is_version(const uint8_t *d)
{
	const uint64_t seven = 0x00ffffffffffffffULL;

	return (http1__le64(d) & seven) == (http1__le64((const uint8_t *)"HTTP/1.x") & seven) &&
	       http1__is_digit(d[7]);
}

/* The value of a field line without its surrounding whitespace: [*v, *ve). */
static inline void http1__trim(const uint8_t *d, size_t *v, size_t *ve)
{
	while (*v < *ve && (d[*v] == ' ' || d[*v] == '\t'))
		(*v)++;
	while (*ve > *v && (d[*ve - 1] == ' ' || d[*ve - 1] == '\t'))
		(*ve)--;
}

/* Fast-path effect of a Content-Length value that is plain digits (the
 * common case); 0 when done, -1 to leave the line to the byte path (lists,
 * a second differing value, anything else). */
static int http1__fast_cl(struct http1_parser *p, const uint8_t *d, size_t v, size_t ve)
{
	uint64_t n = 0;

	http1__trim(d, &v, &ve);
	if (v == ve || ve - v > 15)
		return -1;
	for (size_t k = v; k < ve; k++) {
		if (!http1__is_digit(d[k]))
			return -1;
		n = n * 10 + (uint64_t)(d[k] - '0');
	}
	if (p->msg.content_length >= 0 && (uint64_t)p->msg.content_length != n)
		return -1;	/* the byte path reports the conflict */
	p->msg.content_length = (int64_t)n;
	return 0;
}

/* Fast-path effect of a Connection value that is one token, "keep-alive" or
 * "close" in any case; -1 for anything else (lists, parameters). */
static int http1__fast_conn(struct http1_parser *p, const uint8_t *d, size_t v, size_t ve)
{
	http1__trim(d, &v, &ve);
	if (ve - v == 10 && http1__name_is(d + v, 10, "keep-alive"))
		p->conn_ka = 1;
	else if (ve - v == 5 && http1__name_is(d + v, 5, "close"))
		p->conn_close = 1;
	else
		return -1;
	return 0;
}

/* enum http1_field of a request field name as it is on the wire (any case),
 * -1 for the others; the same names as http1__record_field. */
static int http1__record_field_wire(const uint8_t *d, size_t n)
{
	switch (n) {
	case 10: return http1__name_is(d, 10, "tracestate") ? HTTP1_F_TRACESTATE : -1;
	case 11: return http1__name_is(d, 11, "traceparent") ? HTTP1_F_TRACEPARENT : -1;
	case 12: return http1__name_is(d, 12, "x-request-id") ? HTTP1_F_REQUEST_ID : -1;
	case 13: return http1__name_is(d, 13, "x-tracking-id") ? HTTP1_F_TRACKING_ID : -1;
	case 16: return http1__name_is(d, 16, "x-correlation-id") ? HTTP1_F_CORRELATION_ID : -1;
	}
	return -1;
}

/* The end of the line whose content starts at or before j, when data[j] is
 * its first control byte: [.., *end) is the content and the line takes the
 * bytes up to the returned index (past the LF); 0 when data[j] does not end
 * a line within e (a bare CR, another control byte, a CR at e - 1). */
static inline size_t http1__line_end(const uint8_t *data, size_t j, size_t e, size_t *end)
{
	*end = j;
	if (data[j] == '\r')
		return j + 1 < e && data[j + 1] == '\n' ? j + 2 : 0;
	return data[j] == '\n' ? j + 1 : 0;
}

/* Whole-line fast path at the start of field lines: every complete line
 * "name: value" with no control bytes, within the length limits, is
 * consumed with the same effect as feeding it byte by byte: ignored, or
 * for the fields the parser interprets, a plain Content-Length, a
 * Connection of one token, or a recorded request field (trace context,
 * request ids). Stops at the empty line, at a line not complete in this
 * chunk and at anything unusual (errors included), which the byte path
 * takes from there. Returns the new index (i when nothing was taken). */
static size_t http1__fast_lines(struct http1_parser *p, const uint8_t *data, size_t i,
				size_t cap)
{
	size_t start = i, e = cap, name, j, end, next;
	uint32_t head = p->head_len;
	int f;

	if (p->cr)
		return i;
	/* The head limit as it stands at the first line: the lines taken
	 * add no more head bytes than they span (CR/LF count one), so no
	 * line ending before e can pass the limit. */
	if (e - i > HTTP1_MAX_HEAD - head)
		e = i + (HTTP1_MAX_HEAD - head);
	while (i < e) {
		/* The line's end: its first control byte other than a tab,
		 * looked for from the line's start (a name holds none), not
		 * from the ':' so that each line's end depends on the last
		 * one's alone and the name scans run alongside: 105 -> 79 ns
		 * for an nginx response head. */
		j = http1__value_end(data, i, e);
		/* The name up to the ':', sixteen bytes at a time while it
		 * is letters, digits and '-'; other tchar are stepped over. */
		for (name = i;; name++) {
			name = http1__find(data, name, e, HTTP1_FIND_NAME_END);
			if (name == e || data[name] == ':' || !http1__is_tchar(data[name]))
				break;
		}
		if (name == i || name == e || data[name] != ':')
			break;
		if (j == e || !(next = http1__line_end(data, j, e, &end)) ||
		    end - i > HTTP1_MAX_LINE)
			break;
		f = -1;
		switch (name - i) {		/* the fields the parser interprets */
		case 7:
			if (http1__name_is(data + i, 7, "upgrade"))
				goto slow;	/* h2c upgrade: the byte path */
			break;
		case 10:
			if (http1__name_is(data + i, 10, "connection")) {
				if (http1__fast_conn(p, data, name + 1, end))
					goto slow;
				goto done;
			}
			break;
		case 14:
			if (http1__name_is(data + i, 14, "content-length")) {
				if (http1__fast_cl(p, data, name + 1, end))
					goto slow;
				goto done;
			}
			if (p->stream == HTTP1_REQUESTS &&
			    http1__name_is(data + i, 14, "http2-settings"))
				goto slow;	/* decoded by the byte path */
			break;
		case 17:
			if (http1__name_is(data + i, 17, "transfer-encoding"))
				goto slow;
			break;
		}
		if (p->stream == HTTP1_REQUESTS)
			f = http1__record_field_wire(data + i, name - i);
		if (f >= 0) {
			p->hdr = (uint8_t)(HTTP1_H_RECORD + f);
			http1__record_begin(p, (unsigned int)f);
			if (p->hdr >= HTTP1_H_RECORD) {	/* not a repeated id field */
				http1__record(p, data + name + 1, end - (name + 1));
				http1__record_end(p);
			}
		}
done:
		head += (uint32_t)(end - i) + 1;
		i = next;
	}
slow:
	if (i != start) {
		p->head_len = head;
		p->hdr = HTTP1_H_OTHER;
		p->tok_len = 0;
		p->vphase = 0;
		p->nelem = 0;
		p->num = 0;
	}
	return i;
}

/* n bytes from src to dst, for the short method and target of a start
 * line: word copies, overlapping at the end, rather than the inlined
 * string-move the compiler picks for a bounded length (slow to start). */
static inline void http1__copy(char *dst, const uint8_t *src, size_t n)
{
	size_t k;

	if (n < 8) {
		for (k = 0; k < n; k++)
			dst[k] = (char)src[k];
		return;
	}
	for (k = 0; k + 8 <= n; k += 8)
		memcpy(dst + k, src + k, 8);
	memcpy(dst + n - 8, src + n - 8, 8);
}

/* Whole-line fast path for the start line, right after http1__begin(): a
 * complete "METHOD SP target SP HTTP/1.d" or "HTTP/1.d SSS[ reason]" line is
 * taken at once with the same effect as the byte path; anything it does not
 * fully recognise (errors included) goes through the byte path from i. */
static size_t http1__fast_start(struct http1_parser *p, const uint8_t *data, size_t i,
				size_t cap)
{
	struct http1_message *m = &p->msg;
	size_t room = http1__line_room(p, cap - i), e = i + room, end, next, j, k, n;
	const size_t vlen = sizeof(http1__version) - 1;	/* "HTTP/1." */

	if (p->stream == HTTP1_REQUESTS) {
		if (!(data[i] >= 'A' && data[i] <= 'Z'))
			return i;
		for (j = i; j < e && http1__is_method_char(data[j]); j++)
			;
		if (j == e || data[j] != ' ' || j - i > HTTP1_METHOD_MAX - 1)
			return i;
		k = http1__find(data, j + 1, e, HTTP1_FIND_TARGET_END);
		/* then exactly " HTTP/1.d" and the line's end */
		if (k == j + 1 || k + 1 + vlen + 1 >= e || data[k] != ' ' ||
		    !http1__is_version(data + k + 1) ||
		    !(next = http1__line_end(data, k + 1 + vlen + 1, e, &end)))
			return i;
	} else {
		/* "HTTP/1.d SSS" and a space (a reason follows) or the end */
		if (room <= vlen + 5 || !http1__is_version(data + i) || data[i + vlen + 1] != ' ')
			return i;
		j = i + vlen + 2;			/* status digits */
		if (!http1__is_digit(data[j]) || data[j] == '0' || !http1__is_digit(data[j + 1]) ||
		    !http1__is_digit(data[j + 2]))
			return i;
		k = j + 3;
		if (data[k] == ' ')	/* the reason: any byte but CR, LF */
			k = http1__find(data, k + 1, e, HTTP1_FIND_EOL);
		if (k >= e || !(next = http1__line_end(data, k, e, &end)))
			return i;
	}
	if (end - i > HTTP1_MAX_LINE || end - i + 1 > HTTP1_MAX_HEAD)
		return i;
	if (p->stream == HTTP1_REQUESTS) {
		http1__copy(m->method, data + i, j - i);
		m->method[j - i] = '\0';
		n = k - (j + 1);
		if (n > HTTP1_TARGET_MAX - 1) {
			n = HTTP1_TARGET_MAX - 1;
			m->target_truncated = 1;
		}
		http1__copy(m->target, data + j + 1, n);
		m->target[n] = '\0';
		p->target_len = (uint16_t)n;
		p->pos = (uint8_t)(vlen + 1);
		m->version_minor = (uint8_t)(data[end - 1] - '0');
	} else {
		m->status = (uint16_t)((data[j] - '0') * 100 + (data[j + 1] - '0') * 10 +
				       (data[j + 2] - '0'));
		p->pos = 3;
		m->version_minor = (uint8_t)(data[i + vlen] - '0');
	}
	p->start_known = 1;
	p->head_len += (uint32_t)(end - i) + 1;	/* content + the CR or bare LF */
	p->line_len = 0;
	p->state = HTTP1_S_HDR_START;
	return next;
}

/* The reason phrase takes any byte but CR, LF (and is otherwise ignored). */
static size_t http1__skip_reason(struct http1_parser *p, const uint8_t *data, size_t i,
				 size_t cap)
{
	size_t room = http1__line_room(p, cap - i), j;

	for (j = 0; j < room && data[i + j] != '\r' && data[i + j] != '\n'; j++)
		;
	p->line_len += (uint16_t)j;
	p->head_len += (uint32_t)j;
	return i + j;
}

/* One step of a head (start line, field lines, trailers) with the fast
 * paths: as many bytes as they take at once, else one through http1__byte().
 * Returns the new index (past i). */
static size_t http1__head_step(struct http1_parser *p, const uint8_t *data, size_t i,
			       size_t cap, const struct http1_callbacks *cb, void *ctx)
{
	size_t next;

	switch (p->state) {
	case HTTP1_S_START:
		/* leading CR/LF are the byte path's (tolerated blank lines) */
		if (!p->cr && data[i] != '\r' && data[i] != '\n') {
			http1__begin(p);
			next = http1__fast_start(p, data, i, cap);
			if (next != i)
				return next;
		}
		break;
	case HTTP1_S_HDR_START:
		next = http1__fast_lines(p, data, i, cap);
		/* The empty line after them, whole: as the byte path takes it. */
		if (next < cap && !p->cr && p->head_len < HTTP1_MAX_HEAD &&
		    (data[next] == '\n' ||
		     (data[next] == '\r' && next + 1 < cap && data[next + 1] == '\n'))) {
			p->head_len++;
			p->line_len = 0;
			http1__head_done(p, 0, cb, ctx);
			return next + (data[next] == '\r' ? 2 : 1);
		}
		if (next != i)
			return next;
		break;
	case HTTP1_S_HDR_NAME:
		if (!p->cr) {
			i = http1__skip_name(p, data, i, cap);
			if (i == cap)
				return i;
		}
		break;
	case HTTP1_S_HDR_VALUE:
		if (p->hdr == HTTP1_H_OTHER && !p->cr) {
			i = http1__skip_value(p, data, i, cap);
			if (i == cap)
				return i;
		} else if (p->hdr >= HTTP1_H_RECORD && !p->cr) {
			next = http1__skip_value(p, data, i, cap);
			http1__record(p, data + i, next - i);
			i = next;
			if (i == cap)
				return i;
		}
		break;
	case HTTP1_S_REASON:
		if (!p->cr) {
			i = http1__skip_reason(p, data, i, cap);
			if (i == cap)
				return i;
		}
		break;
	}
	http1__byte(p, data[i], cb, ctx);
	return i + 1;
}

/* The feed loop; with fast == 0 every byte of a head goes through
 * http1__byte() alone (a constant at each call: two copies of the loop). */
static inline __attribute__((always_inline)) void
http1__feed_loop(struct http1_parser *p, const uint8_t *data, size_t cap, size_t len,
		 const struct http1_callbacks *cb, void *ctx, const int fast)
{
	size_t i = 0, n;

	if (len < cap)		/* contract violation: trust what we hold */
		len = cap;
	if (p->state == HTTP1_S_UPGRADED)
		return;
	if (p->state == HTTP1_S_RESYNC) {
		int ok = p->stream == HTTP1_REQUESTS ? http1__looks_like_request(data, cap)
						     : http1__looks_like_response(data, cap);
		if (!ok)
			return;
		p->state = HTTP1_S_START;
		p->cr = 0;
		p->resyncing = 1;
	}

	while (i < cap) {
		switch (p->state) {
		case HTTP1_S_BODY:
		case HTTP1_S_CHUNK_DATA:
			n = cap - i;
			if (n > p->remaining)
				n = (size_t)p->remaining;
			i += n;
			p->remaining -= n;
			if (!p->remaining) {
				if (p->state == HTTP1_S_BODY)
					http1__complete(p, cb, ctx);
				else
					p->state = HTTP1_S_CHUNK_DATA_END;
			}
			break;
		case HTTP1_S_BODY_CLOSE:
			i = cap;
			break;
		case HTTP1_S_UPGRADED:
			p->upgraded_at = (uint32_t)i;
			return;		/* the rest of this feed is the other protocol's */
		case HTTP1_S_RESYNC:
			return;		/* rest of this feed is not HTTP we can frame */
		default:
			if (fast)
				i = http1__head_step(p, data, i, cap, cb, ctx);
			else
				http1__byte(p, data[i++], cb, ctx);
			break;
		}
	}
	if (p->state == HTTP1_S_UPGRADED)
		p->upgraded_at = (uint32_t)i;	/* ended with the feed */
	if (len > cap)
		http1__gap(p, (uint64_t)(len - cap), cb, ctx);
}

void http1__feed(struct http1_parser *p, const uint8_t *data, size_t cap, size_t len,
		 const struct http1_callbacks *cb, void *ctx)
{
	http1__feed_loop(p, data, cap, len, cb, ctx, 1);
}

void http1__feed_bytewise(struct http1_parser *p, const uint8_t *data, size_t cap, size_t len,
			  const struct http1_callbacks *cb, void *ctx)
{
	http1__feed_loop(p, data, cap, len, cb, ctx, 0);
}

void http1__close(struct http1_parser *p, const struct http1_callbacks *cb, void *ctx)
{
	enum http1_stream s = (enum http1_stream)p->stream;

	if (p->state == HTTP1_S_BODY_CLOSE)
		http1__complete(p, cb, ctx);
	http1__init(p, s);
}

/* Matches as much of "HTTP/1.<digit>" as n allows; returns the bytes used,
 * 0 on mismatch. */
static size_t http1__match_version(const uint8_t *d, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(http1__version) - 1; i++) {
		if (i == n)
			return i;
		if (d[i] != (uint8_t)http1__version[i])
			return 0;
	}
	if (i == n)
		return i;
	if (!http1__is_digit(d[i]))
		return 0;
	return i + 1;
}

int http1__looks_like_request(const uint8_t *d, size_t n)
{
	size_t i, t, v;

	if (!n || !(d[0] >= 'A' && d[0] <= 'Z'))
		return 0;
	for (i = 1; i < n && d[i] != ' '; i++)
		if (!http1__is_method_char(d[i]) || i >= HTTP1_METHOD_MAX - 1)
			return 0;
	if (i == n || ++i == n)
		return 1;
	/* origin-form, asterisk-form, absolute-form or authority-form */
	if (!(d[i] == '/' || d[i] == '*' || (d[i] >= 'a' && d[i] <= 'z') ||
	      (d[i] >= 'A' && d[i] <= 'Z') || http1__is_digit(d[i])))
		return 0;
	for (t = i; i < n && d[i] != ' '; i++)
		if (!http1__is_target_char(d[i]) || i - t >= HTTP1_MAX_LINE)
			return 0;
	if (i == n || ++i == n)
		return 1;
	v = http1__match_version(d + i, n - i);
	if (!v)
		return 0;
	i += v;
	if (i == n)
		return 1;
	return d[i] == '\r' || d[i] == '\n';
}

int http1__looks_like_response(const uint8_t *d, size_t n)
{
	size_t i, v, k;

	if (!n)
		return 0;
	v = http1__match_version(d, n);
	if (!v)
		return 0;
	i = v;
	if (i == n)
		return 1;
	if (d[i++] != ' ')
		return 0;
	for (k = 0; k < 3; k++, i++) {
		if (i == n)
			return 1;
		if (!http1__is_digit(d[i]) || (k == 0 && d[i] == '0'))
			return 0;
	}
	if (i == n)
		return 1;
	return d[i] == ' ' || d[i] == '\r' || d[i] == '\n';
}
