#include "conn/records.h"

#include "conn/conn.h"
#include "identity/identity.h"
#include "span/tracectx.h"
#include "sonde.h"

int records__handle(struct conn_table *ct, struct tracectx *tc, const struct records_hooks *hk,
		    const void *data, size_t size)
{
	/* the smallest valid record of each op the rings carry (0: none) */
	static const size_t min_size[] = {
		[SONDE_OP_DATA] = sizeof(struct sonde_data_event),
		[SONDE_OP_CLOSE] = sizeof(struct sonde_close_event),
		[SONDE_OP_EXIT] = sizeof(struct sonde_exit_event),
		[SONDE_OP_TRACE_CTX] = sizeof(struct sonde_trace_ctx_event),
		[SONDE_OP_IO_END] = sizeof(struct sonde_io_end_event),
		[SONDE_OP_CGROUP] = sizeof(struct sonde_cgroup_event),
		[SONDE_OP_CONN] = sizeof(struct sonde_conn_event),
	};
	const struct sonde_event_hdr *h = data;

	if (size < sizeof(*h) || h->size > size || h->op >= sizeof(min_size) / sizeof(min_size[0]) ||
	    !min_size[h->op] || size < min_size[h->op])
		return -1;
	switch (h->op) {
	case SONDE_OP_DATA: {
		const struct sonde_data_event *ev = data;

		if (ev->cap_len > size - sizeof(*ev) || ev->cap_len > ev->len)
			return -1;
		if (hk && hk->bytes && !(h->flags & SONDE_F_TLS))
			hk->bytes(hk->arg, ev->tgid, ev->dir == SONDE_DIR_EGRESS, ev->len);
		conn__data(ct, ev);
		break;
	}
	case SONDE_OP_CONN:
		conn__meta(ct, (const struct sonde_conn_event *)data);
		break;
	case SONDE_OP_TRACE_CTX:
		tracectx__kernel(tc, (const struct sonde_trace_ctx_event *)data);
		break;
	case SONDE_OP_CLOSE:
		conn__close(ct, (const struct sonde_close_event *)data);
		break;
	case SONDE_OP_IO_END:
		conn__io_end(ct, (const struct sonde_io_end_event *)data);
		break;
	case SONDE_OP_CGROUP: {
		const struct sonde_cgroup_event *ev = data;

		identity__cgroup(ev->tgid, ev->cgroup_id);
		break;
	}
	case SONDE_OP_EXIT: {
		const struct sonde_exit_event *ev = data;

		conn__exit(ct, ev->tgid, h->ktime, h->flags & SONDE_F_LOSS);
		if (hk && hk->exit)
			hk->exit(hk->arg, ev->tgid, h->ktime);
		identity__exit(ev->tgid);
		break;
	}
	}
	return h->op;
}
