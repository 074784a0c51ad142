/* Protobuf wire writing without message objects, for spans: a growable
 * buffer, varints, fields and KeyValue framing, shared by the span writer
 * (otlp_span.c) and the batch encoder (otlp_batch.c). */
#ifndef SONDE_EXPORT_OTLP_PB_H
#define SONDE_EXPORT_OTLP_PB_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct otlp_pb_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline int otlp_pb__reserve(struct otlp_pb_buf *b, size_t n)
{
	size_t cap;
	uint8_t *np;

	if (b->cap - b->len >= n)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	np = realloc(b->p, cap);
	if (!np)
		return -ENOMEM;
	b->p = np;
	b->cap = cap;
	return 0;
}

static inline size_t otlp_pb__vlen(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline uint8_t *otlp_pb__varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint8_t *otlp_pb__bytes(uint8_t *p, uint8_t tag, const void *v, size_t n)
{
	*p++ = tag;
	p = otlp_pb__varint(p, n);
	memcpy(p, v, n);
	return p + n;
}

static inline uint8_t *otlp_pb__fixed64(uint8_t *p, uint8_t tag, uint64_t v)
{
	*p++ = tag;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* Attribute keys: fixed strings whose length is known at compile time. */
struct otlp_pb_key {
	const char *s;
	uint8_t n;
};
#define OTLP_PB_KEY(name, str) static const struct otlp_pb_key name = { str, sizeof(str) - 1 }

/* KeyValue framing around an AnyValue body of `any` bytes, written as field
 * `tag` of the enclosing message (Span.attributes, Resource.attributes). */
static inline uint8_t *otlp_pb__kv_head(uint8_t *p, uint8_t tag, const char *key, size_t kn,
					size_t any)
{
	size_t kv = 1 + otlp_pb__vlen(kn) + kn + 1 + otlp_pb__vlen(any) + any;

	*p++ = tag;
	p = otlp_pb__varint(p, kv);
	p = otlp_pb__bytes(p, 0x0a, key, kn);		/* KeyValue.key */
	*p++ = 0x12;					/* KeyValue.value */
	return otlp_pb__varint(p, any);
}

static inline uint8_t *otlp_pb__kv_str(uint8_t *p, uint8_t tag, const struct otlp_pb_key *k,
				       const char *v, size_t n)
{
	p = otlp_pb__kv_head(p, tag, k->s, k->n, 1 + otlp_pb__vlen(n) + n);
	return otlp_pb__bytes(p, 0x0a, v, n);		/* AnyValue.string_value */
}

static inline uint8_t *otlp_pb__kv_int(uint8_t *p, uint8_t tag, const struct otlp_pb_key *k,
				       int64_t v)
{
	p = otlp_pb__kv_head(p, tag, k->s, k->n, 1 + otlp_pb__vlen((uint64_t)v));
	*p++ = 0x18;					/* AnyValue.int_value */
	return otlp_pb__varint(p, (uint64_t)v);
}

struct otlp_rec;
/* The Span message of r (its fields, without its own tag and length) at the
 * end of b (otlp_span.c). 0 or -ENOMEM. */
int otlp_span__write(struct otlp_pb_buf *b, const struct otlp_rec *r);

#endif
