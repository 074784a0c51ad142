/* netdev collector: per-interface counters from one RTM_GETLINK netlink
 * dump (IFLA_STATS64), named as node_exporter 1.5 names them: the
 * /proc/net/dev columns plus receive_nohandler. All devices, lo included. */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/collectors.h"

#define NETDEV_MAX 4096		/* interfaces beyond this are not reported */

enum { RX_BYTES, RX_COMPRESSED, RX_DROP, RX_ERRS, RX_FIFO, RX_FRAME, RX_MULTICAST, RX_NOHANDLER,
       RX_PACKETS, TX_BYTES, TX_CARRIER, TX_COLLS, TX_COMPRESSED, TX_DROP, TX_ERRS, TX_FIFO,
       TX_PACKETS, NSTATS };
static const char *const names[NSTATS] = {
	"receive_bytes", "receive_compressed", "receive_drop", "receive_errs", "receive_fifo",
	"receive_frame", "receive_multicast", "receive_nohandler", "receive_packets",
	"transmit_bytes", "transmit_carrier", "transmit_colls", "transmit_compressed",
	"transmit_drop", "transmit_errs", "transmit_fifo", "transmit_packets",
};

struct dev {
	char name[IF_NAMESIZE];
	uint64_t v[NSTATS];
};

static struct dev devs[NETDEV_MAX];

/* The aggregation /proc/net/dev applies to the detailed error counters. */
static void fill(struct dev *d, const struct rtnl_link_stats64 *s)
{
	d->v[RX_BYTES] = s->rx_bytes;
	d->v[RX_PACKETS] = s->rx_packets;
	d->v[RX_ERRS] = s->rx_errors;
	d->v[RX_DROP] = s->rx_dropped + s->rx_missed_errors;
	d->v[RX_FIFO] = s->rx_fifo_errors;
	d->v[RX_FRAME] = s->rx_length_errors + s->rx_over_errors + s->rx_crc_errors +
			 s->rx_frame_errors;
	d->v[RX_COMPRESSED] = s->rx_compressed;
	d->v[RX_MULTICAST] = s->multicast;
	d->v[RX_NOHANDLER] = s->rx_nohandler;
	d->v[TX_BYTES] = s->tx_bytes;
	d->v[TX_PACKETS] = s->tx_packets;
	d->v[TX_ERRS] = s->tx_errors;
	d->v[TX_DROP] = s->tx_dropped;
	d->v[TX_FIFO] = s->tx_fifo_errors;
	d->v[TX_COLLS] = s->collisions;
	d->v[TX_CARRIER] = s->tx_carrier_errors + s->tx_aborted_errors + s->tx_window_errors +
			   s->tx_heartbeat_errors;
	d->v[TX_COMPRESSED] = s->tx_compressed;
}

/* One RTM_NEWLINK message: name and 64-bit stats, or nothing. */
static int parse_link(const struct nlmsghdr *h, struct dev *d)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	struct rtnl_link_stats64 st;
	int have_name = 0, have_stats = 0;

	if (len < 0)
		return 0;
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t plen = RTA_PAYLOAD(a);

		if (a->rta_type == IFLA_IFNAME && plen > 0) {
			size_t n = strnlen(RTA_DATA(a), plen);

			if (n >= sizeof(d->name))
				return 0;
			memcpy(d->name, RTA_DATA(a), n);
			d->name[n] = '\0';
			have_name = 1;
		} else if (a->rta_type == IFLA_STATS64) {
			/* older kernels send a shorter struct: the rest stays 0 */
			memset(&st, 0, sizeof(st));
			memcpy(&st, RTA_DATA(a), plen < sizeof(st) ? plen : sizeof(st));
			have_stats = 1;
		}
	}
	if (!have_name || !have_stats)
		return 0;
	fill(d, &st);
	return 1;
}

/* The dump, read into fixed buffers; a socket that fails is reopened on
 * the next scrape. Returns the number of devices or a negative errno. */
static int dump(void)
{
	static int fd = -1;
	static unsigned seq;
	static char buf[1 << 16] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
	} req;
	int n = 0;

	if (fd < 0) {
		struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			close(fd);
			fd = -1;
			return -errno;
		}
	}
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = ++seq;
	req.ifi.ifi_family = AF_UNSPEC;
	if (send(fd, &req, sizeof(req), 0) < 0)
		goto fail;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t len;

		/* the kernel answers at once; a bound keeps a stuck socket from
		 * stalling the event loop */
		if (poll(&p, 1, 1000) != 1) {
			errno = ETIMEDOUT;
			goto fail;
		}
		len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0)
			goto fail;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq != seq)
				continue;	/* left over from an abandoned dump */
			if (h->nlmsg_type == NLMSG_DONE)
				return n;
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = EIO;
				goto fail;
			}
			if (h->nlmsg_type == RTM_NEWLINK && n < NETDEV_MAX)
				n += parse_link(h, &devs[n]);
		}
	}
fail:
	n = -errno;
	close(fd);
	fd = -1;
	return n;
}

int host_netdev__collect(struct host_w *w)
{
	int n = dump();

	if (n < 0)
		return n;
	for (int k = 0; k < NSTATS; k++) {
		char name[64], help[80];

		snprintf(name, sizeof(name), "node_network_%s_total", names[k]);
		snprintf(help, sizeof(help), "Network device statistic %s.", names[k]);
		host_util__family(w, name, HOST_COUNTER, help);
		for (int i = 0; i < n; i++) {
			host_util__begin(w, name);
			host_util__label(w, "device", devs[i].name);
			host_util__end_u64(w, devs[i].v[k]);
		}
	}
	return 0;
}
