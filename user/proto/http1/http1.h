/* HTTP/1.x stream parser: follows one direction of one TCP connection from
 * captured syscall chunks and reports message heads and message boundaries. */
#ifndef SONDE_PROTO_HTTP1_H
#define SONDE_PROTO_HTTP1_H

#include <stddef.h>
#include <stdint.h>

enum http1_stream { HTTP1_REQUESTS = 1, HTTP1_RESPONSES = 2 };

enum http1_error {		/* reasons, numbered explicitly, for counters */
	HTTP1_ERR_BAD_START = 1,	/* chunk at a message boundary isn't a request/status line */
	HTTP1_ERR_BAD_HEADER = 2,	/* malformed header line / bad content-length / bad chunk size */
	HTTP1_ERR_TOO_LONG = 3,		/* a line > HTTP1_MAX_LINE or header section > HTTP1_MAX_HEAD */
};

#define HTTP1_METHOD_MAX 16
#define HTTP1_TARGET_MAX 256
#define HTTP1_MAX_LINE 8192		/* bytes per line, CR/LF excluded */
#define HTTP1_MAX_HEAD 65536		/* bytes of start line + fields, CR/LF included */

/* Request fields whose values are handed out (trace context and request
 * ids); nothing else is recorded (never Authorization or Cookie). */
enum http1_field {
	HTTP1_F_TRACEPARENT = 0,
	HTTP1_F_TRACESTATE = 1,		/* several lines are joined with ',' */
	HTTP1_F_REQUEST_ID = 2,		/* X-Request-ID */
	HTTP1_F_TRACKING_ID = 3,	/* X-Tracking-ID */
	HTTP1_F_CORRELATION_ID = 4,	/* X-Correlation-ID */
	HTTP1_F__COUNT = 5,
};
#define HTTP1_TRACEPARENT_MAX 64	/* version 00 is 55 bytes */
#define HTTP1_TRACESTATE_MAX 256
#define HTTP1_ID_MAX 64

/* on_head return values for a response stream. */
#define HTTP1_HEAD_BODY 0		/* normal framing rules apply */
#define HTTP1_HEAD_NO_BODY 1		/* answers a HEAD request */
#define HTTP1_HEAD_TUNNEL 2		/* 2xx answer to CONNECT: the stream stops being HTTP */

struct http1_message {
	char method[HTTP1_METHOD_MAX];	/* requests: NUL-terminated, as on the wire */
	char target[HTTP1_TARGET_MAX];	/* requests: request-target, NUL-terminated, cut to fit */
	uint8_t target_truncated;	/* 1 if target was longer than the buffer */
	uint8_t version_minor;		/* HTTP/1.<minor> */
	uint8_t chunked;		/* Transfer-Encoding: chunked (last coding) */
	uint8_t conn_close;		/* Connection: close, or HTTP/1.0 without keep-alive */
	uint8_t head_incomplete;	/* header section was cut by a capture gap */
	uint16_t status;		/* responses: status code */
	int64_t content_length;		/* -1 when absent */
	/* Requests: values of the enum http1_field fields, surrounding
	 * whitespace removed, NUL-terminated, "" when absent. A value longer
	 * than its buffer is cut and its bit (1 << field) set in field_cut. */
	uint8_t field_cut;
	uint8_t traceparent_lines;	/* traceparent field lines seen (> 1: invalid) */
	char traceparent[HTTP1_TRACEPARENT_MAX];
	char tracestate[HTTP1_TRACESTATE_MAX];
	char request_id[HTTP1_ID_MAX];
	char tracking_id[HTTP1_ID_MAX];
	char correlation_id[HTTP1_ID_MAX];
	/* h2c upgrade (RFC 7540 §3.2): Upgrade lists "h2c" (requests and the
	 * 101 answering them); requests: SETTINGS_HEADER_TABLE_SIZE carried by
	 * HTTP2-Settings (base64url SETTINGS payload), HTTP1_H2_TABLE_NONE
	 * when absent or not decodable. */
	uint8_t upgrade_h2c;
	uint32_t h2_table_size;
};
#define HTTP1_H2_TABLE_NONE UINT32_MAX

struct http1_callbacks {
	/* Head (start line + headers) complete. For a response stream, return
	 * HTTP1_HEAD_NO_BODY (1) if this response answers a HEAD request,
	 * HTTP1_HEAD_TUNNEL (2) if it is a 2xx answer to CONNECT, else 0.
	 * The return value is ignored for request streams and incomplete heads. */
	int (*on_head)(void *ctx, const struct http1_message *m);
	/* Message fully consumed (body skipped). Called exactly once per
	 * on_head, except that http1__close() drops an unfinished message. */
	void (*on_complete)(void *ctx, const struct http1_message *m);
	/* Malformed input; the parser then resynchronises. */
	void (*on_error)(void *ctx, enum http1_error err);
	/* A capture gap (bytes moved but not captured) left the stream with no
	 * known message boundary: the gap may hold any number of whole
	 * messages, never reported. Called once per such gap, after any
	 * on_complete the gap caused; optional. */
	void (*on_lost)(void *ctx);
};

/* Fixed-size state; no pointers, no heap, safe to memcpy or zero-fill
 * before http1__init(). */
struct http1_parser {
	struct http1_message msg;	/* message being parsed */
	uint64_t remaining;		/* body or chunk-data bytes still to skip */
	uint64_t num;			/* content-length element / chunk size being read */
	uint32_t head_len;		/* bytes of the head (or trailer section) so far */
	uint16_t line_len;		/* bytes of the current line so far */
	uint16_t target_len;
	uint8_t stream;			/* enum http1_stream */
	uint8_t state;
	uint8_t pos;			/* position inside the current token */
	uint8_t cr;			/* last byte was a CR: an LF must follow */
	uint8_t resyncing;		/* message started by resync, head not seen yet */
	uint8_t head_sent;		/* on_head delivered for the current message */
	uint8_t start_known;		/* start line far enough to deliver a cut head */
	uint8_t hdr;			/* which interesting field is being read */
	uint8_t vphase;			/* position inside a field-value list element */
	uint8_t nelem;			/* list elements seen in this field line */
	uint8_t te_seen, te_chunked;	/* Transfer-Encoding present / last coding chunked */
	uint8_t conn_ka, conn_close;	/* Connection tokens seen */
	uint8_t tok_len;
	char tok[18];			/* lowercased field name or list element */
	uint16_t vlen;			/* bytes of the recorded field value so far */
	/* HTTP2-Settings being decoded: base64url bits not yet a byte, and the
	 * SETTINGS entry (6 bytes) being assembled */
	uint16_t b64_acc;
	uint8_t b64_bits, set_n;
	uint8_t set[6];
	/* After the feed in which the stream stopped being HTTP (a 101, or a
	 * tunnel): offset in that feed's data of the first byte after it. */
	uint32_t upgraded_at;
};

void http1__init(struct http1_parser *p, enum http1_stream s);
/* One syscall's worth: len bytes were transferred, the first cap (<= len) are in data. */
void http1__feed(struct http1_parser *p, const uint8_t *data, size_t cap, size_t len,
		 const struct http1_callbacks *cb, void *ctx);
/* The same through the byte-wise state machine alone, none of the fast
 * paths: the reference they must agree with exactly, for tests. */
void http1__feed_bytewise(struct http1_parser *p, const uint8_t *data, size_t cap,
			  size_t len, const struct http1_callbacks *cb, void *ctx);
/* The connection closed: completes a close-delimited response body with
 * on_complete; an unfinished message otherwise is dropped silently. The
 * parser is left re-initialised. */
void http1__close(struct http1_parser *p, const struct http1_callbacks *cb, void *ctx);
/* 1 when the next byte fed would begin a new message (at a boundary, or
 * waiting to resynchronise); 0 inside a message. Callers use it to time a
 * message from the syscall that carried its first byte. */
int http1__between_messages(const struct http1_parser *p);
/* 1 once the stream stopped being HTTP (101 Switching Protocols, or a
 * tunnel): nothing more is parsed; upgraded_at tells where, in the feed
 * that ended it, the other protocol's bytes begin. */
int http1__upgraded(const struct http1_parser *p);
/* 1 when the parser holds nothing a fresh one would not: at a message
 * boundary, not resynchronising, no blank-line CR pending. Such a parser
 * may be dropped and replaced by http1__init() when bytes come (callers
 * keep parsers only while a message is partial). */
int http1__at_rest(const struct http1_parser *p);
/* Bytes of the stream were lost without a count (ring records dropped):
 * the message being parsed is dropped silently and the parser waits for a
 * feed that starts a message. */
void http1__lost(struct http1_parser *p);

/* Stateless inference over the first n bytes of a chunk: 1 if they begin
 * like an HTTP/1.x request line / status line, accepting a consistent
 * prefix that stops early. */
int http1__looks_like_request(const uint8_t *data, size_t n);
int http1__looks_like_response(const uint8_t *data, size_t n);

#endif
