/* HTTP/2 framing and HPACK for one direction (see h2.h). Works on the bytes
 * as they come, with no frame buffer: header block fragments go straight to
 * the inflater (which keeps a partial field itself), DATA is skipped. */
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "proto/http2/h2.h"

enum { S_PREFACE = 0, S_HEAD = 1, S_PAYLOAD = 2, S_DEAD = 3 };

#define NO_TABLE UINT32_MAX

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int h2__init(struct h2_dir *d, bool expect_preface, uint32_t block_max)
{
	nghttp2_hd_inflater *inf;

	memset(d, 0, sizeof(*d));
	if (nghttp2_hd_inflate_new(&inf))
		return -1;
	d->inf = inf;
	d->block_max = block_max ? block_max : H2_DEFAULT_BLOCK_MAX;
	d->state = expect_preface ? S_PREFACE : S_HEAD;
	d->settings_table = NO_TABLE;
	d->pending_table = NO_TABLE;
	return 0;
}

void h2__free(struct h2_dir *d)
{
	if (d->inf)
		nghttp2_hd_inflate_del(d->inf);
	d->inf = NULL;
	d->state = S_DEAD;
}

bool h2__dead(const struct h2_dir *d)
{
	return d->state == S_DEAD;
}

static void stop(struct h2_dir *d, enum h2_error err, const struct h2_callbacks *cb, void *arg)
{
	if (d->state == S_DEAD)
		return;
	d->state = S_DEAD;
	d->err = err;
	/* the inflater is of no use any more: free its table now */
	if (d->inf)
		nghttp2_hd_inflate_del(d->inf);
	d->inf = NULL;
	if (cb->on_error)
		cb->on_error(arg, err);
}

static void apply_table(struct h2_dir *d, uint32_t size, const struct h2_callbacks *cb, void *arg)
{
	if (size > H2_TABLE_MAX) {
		stop(d, H2_ERR_TABLE_TOO_BIG, cb, arg);
		return;
	}
	if (nghttp2_hd_inflate_change_table_size(d->inf, size))
		stop(d, H2_ERR_HPACK, cb, arg);
}

void h2__table_size(struct h2_dir *d, uint32_t size, const struct h2_callbacks *cb, void *arg)
{
	if (d->state == S_DEAD)
		return;
	if (d->in_block)	/* not while a block is inflated: at its end */
		d->pending_table = size;
	else
		apply_table(d, size, cb, arg);
}

void h2__lost(struct h2_dir *d, const struct h2_callbacks *cb, void *arg)
{
	stop(d, H2_ERR_LOST_SYNC, cb, arg);
}

/* n fragment bytes of the current block into the inflater; final: the
 * block ends with them. */
static void inflate(struct h2_dir *d, const uint8_t *in, size_t n, bool final,
		    const struct h2_callbacks *cb, void *arg)
{
	static const uint8_t none[1];

	if (!in)	/* the end of a block: no bytes, but a pointer to step over */
		in = none;
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(d->inf, &nv, &flags, in, n, final);

		if (rv < 0) {
			stop(d, rv == NGHTTP2_ERR_NOMEM ? H2_ERR_NOMEM : H2_ERR_HPACK, cb, arg);
			return;
		}
		in += rv;
		n -= (size_t)rv;
		if ((flags & NGHTTP2_HD_INFLATE_EMIT) && cb->on_field && d->block_type == H2_HEADERS)
			cb->on_field(arg, nv.name, nv.namelen, nv.value, nv.valuelen);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->inf);
			return;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && n == 0) {
			if (final)	/* the block ended inside a field */
				stop(d, H2_ERR_HPACK, cb, arg);
			return;
		}
	}
}

/* Frames whose payload can be skipped without knowing it. */
static bool skippable(uint8_t type)
{
	return type == H2_DATA || type == H2_PRIORITY || type == H2_PING ||
	       type == H2_WINDOW_UPDATE || type > H2_CONTINUATION;
}

static void frame_end(struct h2_dir *d, const struct h2_callbacks *cb, void *arg)
{
	d->state = S_HEAD;
	switch (d->type) {
	case H2_HEADERS:
	case H2_PUSH_PROMISE:
	case H2_CONTINUATION:
		if (!(d->flags & H2_F_END_HEADERS))
			break;
		inflate(d, NULL, 0, true, cb, arg);
		if (d->state == S_DEAD)
			return;
		d->in_block = false;
		if (d->pending_table != NO_TABLE) {
			uint32_t t = d->pending_table;

			d->pending_table = NO_TABLE;
			apply_table(d, t, cb, arg);
			if (d->state == S_DEAD)
				return;
		}
		if (cb->on_block_end && d->block_type == H2_HEADERS)
			cb->on_block_end(arg, d->block_sid, d->block_end_stream);
		break;
	case H2_DATA:
		if ((d->flags & H2_F_END_STREAM) && cb->on_data_end)
			cb->on_data_end(arg, d->sid);
		break;
	case H2_RST_STREAM:
		if (cb->on_rst)
			cb->on_rst(arg, d->sid, be32(d->small));
		break;
	case H2_GOAWAY:
		if (cb->on_goaway)
			cb->on_goaway(arg, be32(d->small) & 0x7fffffffu, be32(d->small + 4));
		break;
	case H2_SETTINGS:
		if (cb->on_settings)
			cb->on_settings(arg, d->flags & H2_F_ACK, d->settings_table);
		break;
	default:
		break;
	}
}

/* A frame header is complete: check it against the connection state. */
static void frame_begin(struct h2_dir *d, const struct h2_callbacks *cb, void *arg)
{
	const uint8_t *h = d->head;
	bool bad = false;

	d->len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	d->type = h[3];
	d->flags = h[4];
	d->sid = be32(h + 5) & 0x7fffffffu;
	d->head_n = 0;
	d->got = 0;
	d->front = 0;
	d->pad = 0;
	d->small_n = 0;
	/* a header block is one HEADERS/PUSH_PROMISE and its CONTINUATIONs,
	 * with nothing else in between (RFC 9113 §6.10) */
	if (d->in_block != (d->type == H2_CONTINUATION) ||
	    (d->type == H2_CONTINUATION && d->sid != d->block_sid)) {
		stop(d, H2_ERR_PROTOCOL, cb, arg);
		return;
	}
	switch (d->type) {
	case H2_DATA:
	case H2_HEADERS:
	case H2_RST_STREAM:
	case H2_PUSH_PROMISE:
	case H2_CONTINUATION:
	case H2_PRIORITY:
		bad = d->sid == 0;
		break;
	case H2_SETTINGS:
		bad = d->sid != 0 || d->len % 6 || ((d->flags & H2_F_ACK) && d->len);
		break;
	case H2_PING:
		bad = d->sid != 0 || d->len != 8;
		break;
	case H2_GOAWAY:
		bad = d->sid != 0 || d->len < 8;
		break;
	case H2_WINDOW_UPDATE:
		bad = d->len != 4;
		break;
	default:
		break;
	}
	if (d->type == H2_RST_STREAM)
		bad = bad || d->len != 4;
	if (bad) {
		stop(d, H2_ERR_PROTOCOL, cb, arg);
		return;
	}
	if (d->type == H2_HEADERS || d->type == H2_PUSH_PROMISE) {
		d->front = (d->flags & H2_F_PADDED) ? 1 : 0;
		if (d->type == H2_HEADERS && (d->flags & H2_F_PRIORITY))
			d->front += 5;
		if (d->type == H2_PUSH_PROMISE)
			d->front += 4;
		if (d->front > d->len) {
			stop(d, H2_ERR_PROTOCOL, cb, arg);
			return;
		}
		d->in_block = true;
		d->block_sid = d->sid;
		d->block_type = d->type;
		d->block_end_stream = d->type == H2_HEADERS && (d->flags & H2_F_END_STREAM);
		d->block_bytes = 0;
		if (cb->on_block_begin && d->type == H2_HEADERS)
			cb->on_block_begin(arg, d->sid, d->type);
	}
	if (d->type == H2_SETTINGS)
		d->settings_table = NO_TABLE;
	d->state = S_PAYLOAD;
	if (d->len == 0)
		frame_end(d, cb, arg);
}

/* Payload bytes of the current frame; returns how many were used. */
static size_t payload(struct h2_dir *d, const uint8_t *p, size_t n, const struct h2_callbacks *cb,
		      void *arg)
{
	size_t used = 0;

	while (used < n && d->got < d->len && d->state == S_PAYLOAD) {
		size_t left = d->len - d->got, k;

		switch (d->type) {
		case H2_HEADERS:
		case H2_PUSH_PROMISE:
		case H2_CONTINUATION: {
			uint32_t frag_end;

			if (d->got < d->front) {
				if (d->got == 0 && (d->flags & H2_F_PADDED) &&
				    d->type != H2_CONTINUATION) {
					d->pad = p[used];
					if ((uint32_t)d->front + d->pad > d->len) {
						stop(d, H2_ERR_PROTOCOL, cb, arg);
						return used;
					}
				}
				used++;
				d->got++;
				continue;
			}
			frag_end = d->len - d->pad;
			if (d->got < frag_end) {
				k = frag_end - d->got;
				if (k > n - used)
					k = n - used;
				d->block_bytes += (uint32_t)k;
				if (d->block_bytes > d->block_max) {
					stop(d, H2_ERR_BLOCK_TOO_BIG, cb, arg);
					return used;
				}
				inflate(d, p + used, k, false, cb, arg);
			} else {
				k = left < n - used ? left : n - used;	/* padding */
			}
			break;
		}
		case H2_RST_STREAM:
		case H2_GOAWAY:
			if (d->got < 8)
				d->small[d->got] = p[used];
			k = 1;
			break;
		case H2_SETTINGS:
			d->small[d->got % 6] = p[used];
			if (d->got % 6 == 5 && (d->small[0] << 8 | d->small[1]) == 1)
				d->settings_table = be32(d->small + 2);
			k = 1;
			break;
		default:
			k = left < n - used ? left : n - used;
			break;
		}
		used += k;
		d->got += (uint32_t)k;
	}
	if (d->state == S_PAYLOAD && d->got == d->len)
		frame_end(d, cb, arg);
	return used;
}

void h2__feed(struct h2_dir *d, const uint8_t *data, size_t cap, size_t len,
	      const struct h2_callbacks *cb, void *arg)
{
	size_t i = 0, unseen;

	if (cap > len)
		cap = len;
	while (i < cap && d->state != S_DEAD) {
		switch (d->state) {
		case S_PREFACE:
			if (data[i] != (uint8_t)H2_PREFACE[d->preface_n]) {
				/* no preface at all: the direction starts with a frame */
				if (d->preface_n == 0)
					d->state = S_HEAD;
				else
					stop(d, H2_ERR_PROTOCOL, cb, arg);
				break;
			}
			i++;
			if (++d->preface_n == H2_PREFACE_LEN)
				d->state = S_HEAD;
			break;
		case S_HEAD:
			while (i < cap && d->head_n < H2_FRAME_HEADER_LEN)
				d->head[d->head_n++] = data[i++];
			if (d->head_n == H2_FRAME_HEADER_LEN)
				frame_begin(d, cb, arg);
			break;
		case S_PAYLOAD:
			i += payload(d, data + i, cap - i, cb, arg);
			break;
		}
	}
	/* Bytes the kernel did not capture: only a payload that is skipped
	 * anyway may lie there; a frame header or header block cannot. */
	unseen = len - cap;
	while (unseen && d->state != S_DEAD) {
		size_t k;

		if (d->state != S_PAYLOAD || !skippable(d->type)) {
			stop(d, H2_ERR_LOST_SYNC, cb, arg);
			return;
		}
		k = d->len - d->got;
		if (k > unseen)
			k = unseen;
		d->got += (uint32_t)k;
		unseen -= k;
		if (d->got == d->len)
			frame_end(d, cb, arg);
	}
}

/* One frame header that could start a frame of a connection already
 * running; its length in *flen. */
static bool plausible_header(const uint8_t *h, uint32_t *flen)
{
	uint32_t sid = be32(h + 5);
	uint8_t type = h[3], flags = h[4];

	*flen = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	/* 16384: SETTINGS_MAX_FRAME_SIZE unless raised; a connection that
	 * raised it may go unrecognised here, which costs only the count */
	if (sid & 0x80000000u || type > H2_CONTINUATION || *flen > 16384)
		return false;
	switch (type) {
	case H2_DATA:
		return sid && !(flags & ~(H2_F_END_STREAM | H2_F_PADDED));
	case H2_HEADERS:
		return sid && !(flags & ~(H2_F_END_STREAM | H2_F_END_HEADERS | H2_F_PADDED |
					  H2_F_PRIORITY));
	case H2_RST_STREAM:
		return sid && *flen == 4 && !flags;
	case H2_SETTINGS:
		return !sid && *flen % 6 == 0 && !(flags & ~H2_F_ACK);
	case H2_PING:
		return !sid && *flen == 8 && !(flags & ~H2_F_ACK);
	case H2_GOAWAY:
		return !sid && *flen >= 8 && !flags;
	case H2_WINDOW_UPDATE:
		return *flen == 4 && !flags;
	case H2_CONTINUATION:
		return sid && !(flags & ~H2_F_END_HEADERS);
	default:
		return sid && *flen == 5 && !flags;	/* PRIORITY; PUSH_PROMISE: rare */
	}
}

bool h2__looks_like_frames(const uint8_t *d, size_t cap, size_t len)
{
	size_t off = 0;
	unsigned int n = 0;

	if (cap > len)
		cap = len;
	while (off + H2_FRAME_HEADER_LEN <= cap) {
		uint32_t flen;

		if (!plausible_header(d + off, &flen))
			return false;
		n++;
		off += H2_FRAME_HEADER_LEN + flen;
		if (off >= len)
			return true;	/* ends with the chunk, or goes on in the next */
	}
	/* the next header was not (wholly) captured: judge by those that were */
	return n > 0;
}

bool h2__looks_like_settings(const uint8_t *d, size_t cap)
{
	uint32_t len;

	if (cap < H2_FRAME_HEADER_LEN)
		return false;
	len = (uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2];
	return d[3] == H2_SETTINGS && d[4] == 0 && be32(d + 5) == 0 && len % 6 == 0 && len <= 60;
}
