/* libFuzzer target for HTTP/2: frame layer, HPACK (libnghttp2's inflater)
 * and the stream table, through the connection table as the agent runs
 * them. data[0] picks the role (and whether the connection starts with the
 * client preface, or is caught mid-way; bit 2: with an HTTP/1.1 request
 * asking for an h2c upgrade instead, the rest coming from the input, so
 * the handoff from HTTP/1 is fuzzed too); then one control byte per feed:
 * length, direction and a capture gap, or 0x7f: the connection closes and
 * the next feed starts a new one. Every span must be a bounded,
 * NUL-terminated record; nothing may read out of bounds, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn/conn.h"
#include "proto/http2/h2.h"
#include "sonde.h"
#include "span/builder.h"
#include "span/tracectx.h"

static void on_span(void *arg, const struct span *s)
{
	(void)arg;
	if (!memchr(s->method, 0, sizeof(s->method)) || !memchr(s->target, 0, sizeof(s->target)) ||
	    !memchr(s->route, 0, sizeof(s->route)) || !memchr(s->rpc_service, 0, sizeof(s->rpc_service)) ||
	    !memchr(s->rpc_method, 0, sizeof(s->rpc_method)) || s->end_ns < s->start_ns ||
	    (s->proto == SPAN_RPC && (s->rpc_status < -1 || s->rpc_status > 999)))
		abort();
}

static const struct span_sink sink = { .emit = on_span };
/* h2c upgrade (RFC 7540 §3.2); HTTP2-Settings: SETTINGS_HEADER_TABLE_SIZE 8192 */
#define H2C_REQUEST                                                                         \
	"GET /users/5 HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, HTTP2-Settings\r\n" \
	"Upgrade: h2c\r\nHTTP2-Settings: AAEAACAA\r\n\r\n"
static _Alignas(8) uint8_t evbuf[sizeof(struct sonde_data_event) + 4096];

static void feed(struct conn_table *t, uint64_t sk, uint8_t role, uint8_t dir, uint64_t ns,
		 const uint8_t *d, size_t cap, size_t len)
{
	struct sonde_data_event *e = (struct sonde_data_event *)evbuf;

	memset(e, 0, sizeof(*e));
	e->hdr.op = SONDE_OP_DATA;
	e->hdr.size = (uint32_t)(sizeof(*e) + cap);
	e->hdr.ktime = ns;
	e->enter_ns = ns - 1;
	e->sk = sk;
	e->tgid = 0xfffffff0u;
	e->tid = 1;
	e->len = (uint32_t)len;
	e->cap_len = (uint32_t)cap;
	e->dir = dir;
	e->role = role;
	memcpy(e->data, d, cap);
	conn__data(t, e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tracectx *tc;
	static struct span_builder *b;
	struct conn_table *t;
	uint8_t role, req_dir;
	bool fresh = true;
	uint64_t sk = 1, ns = 1000;
	size_t i = 1;

	if (size < 2)
		return 0;
	if (!tc) {
		tc = tracectx__new();
		b = span_builder__new(tc, &sink, NULL);
	}
	t = conn__new(4, NULL, b, NULL);
	if (!t)
		return 0;
	conn__set_limits(t, &(struct proto_limits){ .h2_max_streams = 1 + (data[0] >> 4),
						     .h2_max_header_block = 1024 });
	role = (data[0] & 3) == 0 ? SONDE_ROLE_CLIENT : (data[0] & 3) == 1 ? SONDE_ROLE_SERVER
									     : SONDE_ROLE_UNKNOWN;
	req_dir = role == SONDE_ROLE_SERVER ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS;
	while (i < size) {
		uint8_t c = data[i++];
		size_t cap = (size_t)(c & 0x3f) + 1, gap = (c & 0x40) ? (size_t)(c & 0x0f) * 97 : 0;
		uint8_t *copy;

		if (c == 0x7f) {
			struct sonde_close_event ce = { .hdr = { .op = SONDE_OP_CLOSE, .size = sizeof(ce),
								 .ktime = ++ns },
							.sk = sk, .tgid = 0xfffffff0u };

			conn__close(t, &ce);
			sk++;
			fresh = true;
			continue;
		}
		if (fresh && role != SONDE_ROLE_UNKNOWN && (data[0] & 4))
			feed(t, sk, role, req_dir, ++ns, (const uint8_t *)H2C_REQUEST,
			     sizeof(H2C_REQUEST) - 1, sizeof(H2C_REQUEST) - 1);
		else if (fresh && role != SONDE_ROLE_UNKNOWN)
			feed(t, sk, role, req_dir, ++ns, (const uint8_t *)H2_PREFACE, H2_PREFACE_LEN,
			     H2_PREFACE_LEN);
		fresh = false;
		if (cap > size - i)
			cap = size - i;
		copy = malloc(cap ? cap : 1);	/* exact size: sanitizers see overreads */
		if (!copy)
			break;
		memcpy(copy, data + i, cap);
		feed(t, sk, role, (c & 0x80) ? SONDE_DIR_INGRESS : SONDE_DIR_EGRESS, ++ns, copy, cap,
		     cap + gap);
		free(copy);
		i += cap;
	}
	conn__free(t);
	return 0;
}
