/* One direction of an HTTP/2 connection (RFC 9113): frames reassembled
 * across chunks, header blocks (HEADERS + CONTINUATION, padding and
 * priority stripped) decoded by libnghttp2's HPACK inflater as they come,
 * and what the stream layer needs reported through callbacks. DATA payloads
 * are skipped by frame length, so bytes the kernel did not capture are
 * fine there; anything else missing means the direction lost sync: it stops
 * for good (HPACK state cannot be recovered) and says why, once. */
#ifndef SONDE_H2_H
#define SONDE_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define H2_FRAME_HEADER_LEN 9
#define H2_DEFAULT_BLOCK_MAX 65536	/* header block bytes (HEADERS + CONTINUATION) */
#define H2_TABLE_MAX 65536		/* largest HPACK dynamic table followed */

enum h2_frame_type {
	H2_DATA = 0, H2_HEADERS = 1, H2_PRIORITY = 2, H2_RST_STREAM = 3, H2_SETTINGS = 4,
	H2_PUSH_PROMISE = 5, H2_PING = 6, H2_GOAWAY = 7, H2_WINDOW_UPDATE = 8,
	H2_CONTINUATION = 9,
};

#define H2_F_END_STREAM 0x1
#define H2_F_ACK 0x1
#define H2_F_END_HEADERS 0x4
#define H2_F_PADDED 0x8
#define H2_F_PRIORITY 0x20

/* Why a direction stopped (numbered: indexes counters). */
enum h2_error {
	H2_ERR_NONE = 0,
	H2_ERR_LOST_SYNC = 1,		/* a frame header or header block was not captured */
	H2_ERR_PROTOCOL = 2,		/* bytes that are not valid HTTP/2 framing */
	H2_ERR_HPACK = 3,		/* the inflater refused the block */
	H2_ERR_BLOCK_TOO_BIG = 4,	/* header block over the limit */
	H2_ERR_TABLE_TOO_BIG = 5,	/* peer allowed a table over H2_TABLE_MAX */
	H2_ERR_NOMEM = 6,
	H2_ERR__COUNT = 7,
};

struct h2_callbacks {
	/* A HEADERS block of stream sid starts (type: H2_HEADERS; PUSH_PROMISE
	 * blocks are inflated, to keep the table, but not reported). */
	void (*on_block_begin)(void *arg, uint32_t sid, uint8_t type);
	void (*on_field)(void *arg, const uint8_t *name, size_t nlen, const uint8_t *value,
			 size_t vlen);
	/* The block is complete; end_stream: the HEADERS frame ended the stream. */
	void (*on_block_end)(void *arg, uint32_t sid, bool end_stream);
	/* A DATA frame with END_STREAM was read to its end. */
	void (*on_data_end)(void *arg, uint32_t sid);
	void (*on_rst)(void *arg, uint32_t sid, uint32_t code);
	void (*on_goaway)(void *arg, uint32_t last_sid, uint32_t code);
	/* SETTINGS: ack, or the header table size it sets (UINT32_MAX: none). */
	void (*on_settings)(void *arg, bool ack, uint32_t header_table_size);
	/* The direction stopped (after this, nothing more is reported). */
	void (*on_error)(void *arg, enum h2_error err);
};

struct h2_dir {
	void *inf;			/* nghttp2_hd_inflater */
	uint32_t block_max;
	uint8_t state;			/* internal */
	uint8_t head_n;
	uint8_t preface_n;		/* preface bytes matched (client direction) */
	uint8_t small_n;
	uint8_t head[H2_FRAME_HEADER_LEN];
	uint8_t small[8];		/* RST_STREAM / GOAWAY / one SETTINGS entry */
	/* the frame being read */
	uint8_t type, flags;
	uint8_t pad;
	bool pad_known;
	uint32_t sid, len, got;		/* payload length and bytes consumed */
	uint32_t front;			/* pad length, priority, promised id: bytes before the fragment */
	uint32_t settings_table;	/* header table size of the SETTINGS frame being read */
	uint32_t pending_table;		/* table size to follow once the block being read ends */
	/* the header block being read */
	bool in_block;
	uint8_t block_type;		/* HEADERS or PUSH_PROMISE */
	uint32_t block_sid, block_bytes;
	bool block_end_stream;
	enum h2_error err;
};

/* expect_preface: this direction begins with the client preface (it is
 * skipped; a direction that starts with a frame is taken as it is).
 * Returns 0 or -1 (out of memory). */
int h2__init(struct h2_dir *d, bool expect_preface, uint32_t block_max);
void h2__free(struct h2_dir *d);
/* One chunk: len bytes of the stream, of which the first cap were captured. */
void h2__feed(struct h2_dir *d, const uint8_t *data, size_t cap, size_t len,
	      const struct h2_callbacks *cb, void *arg);
/* The direction's records were lost: stop (reports H2_ERR_LOST_SYNC). */
void h2__lost(struct h2_dir *d, const struct h2_callbacks *cb, void *arg);
/* Follow a SETTINGS_HEADER_TABLE_SIZE the other side sent and this side
 * acknowledged. */
void h2__table_size(struct h2_dir *d, uint32_t size, const struct h2_callbacks *cb, void *arg);
bool h2__dead(const struct h2_dir *d);

/* Does the chunk start with a plausible sequence of frames that ends at
 * len (a connection caught in the middle)? */
bool h2__looks_like_frames(const uint8_t *d, size_t cap, size_t len);
/* Does it start with a SETTINGS frame (not an ack)? */
bool h2__looks_like_settings(const uint8_t *d, size_t cap);

#endif
