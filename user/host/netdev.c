/* netdev collector: per-interface counters from the scrape's RTM_GETLINK
 * netlink dump (IFLA_STATS64, see link.c), named as node_exporter 1.5 names them: the
 * /proc/net/dev columns plus receive_nohandler. All devices, lo included. */
#include <linux/if_link.h>
#include <stdio.h>
#include <string.h>

#include "host/collectors.h"

enum { RX_BYTES, RX_COMPRESSED, RX_DROP, RX_ERRS, RX_FIFO, RX_FRAME, RX_MULTICAST, RX_NOHANDLER,
       RX_PACKETS, TX_BYTES, TX_CARRIER, TX_COLLS, TX_COMPRESSED, TX_DROP, TX_ERRS, TX_FIFO,
       TX_PACKETS, NSTATS };
static const char *const names[NSTATS] = {
	"receive_bytes", "receive_compressed", "receive_drop", "receive_errs", "receive_fifo",
	"receive_frame", "receive_multicast", "receive_nohandler", "receive_packets",
	"transmit_bytes", "transmit_carrier", "transmit_colls", "transmit_compressed",
	"transmit_drop", "transmit_errs", "transmit_fifo", "transmit_packets",
};

/* The aggregation /proc/net/dev applies to the detailed error counters. */
static void fill(uint64_t *v, const struct rtnl_link_stats64 *s)
{
	v[RX_BYTES] = s->rx_bytes;
	v[RX_PACKETS] = s->rx_packets;
	v[RX_ERRS] = s->rx_errors;
	v[RX_DROP] = s->rx_dropped + s->rx_missed_errors;
	v[RX_FIFO] = s->rx_fifo_errors;
	v[RX_FRAME] = s->rx_length_errors + s->rx_over_errors + s->rx_crc_errors +
		      s->rx_frame_errors;
	v[RX_COMPRESSED] = s->rx_compressed;
	v[RX_MULTICAST] = s->multicast;
	v[RX_NOHANDLER] = s->rx_nohandler;
	v[TX_BYTES] = s->tx_bytes;
	v[TX_PACKETS] = s->tx_packets;
	v[TX_ERRS] = s->tx_errors;
	v[TX_DROP] = s->tx_dropped;
	v[TX_FIFO] = s->tx_fifo_errors;
	v[TX_COLLS] = s->collisions;
	v[TX_CARRIER] = s->tx_carrier_errors + s->tx_aborted_errors + s->tx_window_errors +
			s->tx_heartbeat_errors;
	v[TX_COMPRESSED] = s->tx_compressed;
}

int host_netdev__collect(struct host_w *w)
{
	static uint64_t v[HOST_LINK_MAX][NSTATS];
	static int idx[HOST_LINK_MAX];
	const struct host_link *l;
	int n = host_util__links(w, &l), m = 0;

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (!(l[i].have & HL_STATS))
			continue;
		fill(v[m], &l[i].stats);
		idx[m++] = i;
	}
	for (int k = 0; k < NSTATS; k++) {
		char name[64], help[80];

		snprintf(name, sizeof(name), "node_network_%s_total", names[k]);
		snprintf(help, sizeof(help), "Network device statistic %s.", names[k]);
		host_util__family(w, name, HOST_COUNTER, help);
		for (int i = 0; i < m; i++) {
			host_util__begin(w, name);
			host_util__label(w, "device", l[idx[i]].name);
			host_util__end_u64(w, v[i][k]);
		}
	}
	return 0;
}
