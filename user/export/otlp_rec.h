/* A queued span's record: the layout otlp_queue.c writes into the ring and
 * the span writer (otlp_span.c) and the batch encoder (otlp_batch.c) read. */
#ifndef SONDE_EXPORT_OTLP_REC_H
#define SONDE_EXPORT_OTLP_REC_H

#include <stddef.h>
#include <stdint.h>

#include "export/otlp.h"
#include "identity/identity.h"

/* lens[] order: the strings of a record, concatenated after the header */
enum {
	R_SERVICE, R_COMM, R_METHOD, R_TARGET, R_ROUTE, R_TRACESTATE, R_REQID, R_TRACKID, R_CORRID,
	R_ERRTYPE, R_DBSYS, R_DBOP, R_DBCOLL, R_DBQUERY, R_DBSTATUS, R_RPCSVC, R_RPCMETH,
	R_IDENT,	/* the identity's resource attributes (struct identity.attrs) */
	R_NSTR
};

struct otlp_rec {
	uint32_t size;			/* header + strings, rounded up to 8; 0 = ring wrap mark */
	uint32_t tgid;
	uint64_t start_ns, end_ns;	/* CLOCK_MONOTONIC, as in struct span */
	struct sonde_tuple tuple;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	uint16_t status;
	uint8_t kind, proto, tls, version_minor, trace_flags, remote_parent;
	uint8_t version_major, pad;
	int16_t rpc_status;		/* SPAN_RPC: grpc-status, -1 when none */
	uint16_t len[R_NSTR];
	char str[];
};

_Static_assert(R_NSTR == OTLP_REC_NSTR, "otlp.h sizes lens[] with OTLP_REC_NSTR");
_Static_assert(sizeof(struct otlp_rec) % 8 == 0, "records stay 8-aligned in the ring");

/* the string bytes a record can carry (lens[] are bounded by the buffers) */
#define REC_STR_MAX (PROC_NAME_MAX + SONDE_COMM_LEN + SPAN_METHOD_MAX + 2 * SPAN_TARGET_MAX + \
		     SPAN_TRACESTATE_MAX + 3 * SPAN_HDR_ID_MAX + SPAN_ERROR_TYPE_MAX + 64 + \
		     SPAN_DB_OP_MAX + SPAN_DB_COLLECTION_MAX + SPAN_DB_QUERY_MAX + SPAN_DB_STATUS_MAX + \
		     SPAN_RPC_SERVICE_MAX + SPAN_RPC_METHOD_MAX + IDENT_ATTRS_MAX)
_Static_assert(sizeof(struct otlp_rec) + REC_STR_MAX + 8 <= OTLP_REC_MAX,
	       "OTLP_REC_MAX bounds every record");

/* A record's strings by index. */
struct otlp_rec_strs {
	const char *p[R_NSTR];
	size_t n[R_NSTR];
};

static inline void otlp_rec__strings(const struct otlp_rec *r, struct otlp_rec_strs *v)
{
	const char *p = r->str;

	for (int i = 0; i < R_NSTR; i++) {
		v->p[i] = p;
		v->n[i] = r->len[i];
		p += r->len[i];
	}
}

#endif
