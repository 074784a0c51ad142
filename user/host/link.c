/* One RTM_GETLINK netlink dump per scrape, shared by netdev (counters) and
 * netclass (the attributes /sys/class/net/<iface>/ shows from the same
 * struct net_device fields). */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/util.h"

static struct host_link links[HOST_LINK_MAX];

static uint32_t u32_of(const struct rtattr *a)
{
	uint32_t v = 0;

	memcpy(&v, RTA_DATA(a), RTA_PAYLOAD(a) < sizeof(v) ? RTA_PAYLOAD(a) : sizeof(v));
	return v;
}

/* One RTM_NEWLINK message: 1 when it has a name (and was stored). */
static int parse_link(const struct nlmsghdr *h, struct host_link *l)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));
	int have_name = 0;

	if (len < 0)
		return 0;
	memset(l, 0, offsetof(struct host_link, alias) + 1);
	l->ifindex = ifi->ifi_index;
	l->type = ifi->ifi_type;
	l->flags = ifi->ifi_flags;
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t plen = RTA_PAYLOAD(a);

		switch (a->rta_type) {
		case IFLA_IFNAME: {
			size_t n = plen ? strnlen(RTA_DATA(a), plen) : 0;

			if (!n || n >= sizeof(l->name))
				return 0;
			memcpy(l->name, RTA_DATA(a), n);
			l->name[n] = '\0';
			have_name = 1;
			break;
		}
		case IFLA_STATS64:
			/* older kernels send a shorter struct: the rest stays 0 */
			memcpy(&l->stats, RTA_DATA(a), plen < sizeof(l->stats) ? plen : sizeof(l->stats));
			l->have |= HL_STATS;
			break;
		case IFLA_MTU:
			l->mtu = u32_of(a), l->have |= HL_MTU;
			break;
		case IFLA_TXQLEN:
			l->txqlen = u32_of(a), l->have |= HL_TXQLEN;
			break;
		case IFLA_GROUP:
			l->group = u32_of(a), l->have |= HL_GROUP;
			break;
		case IFLA_LINK:
			l->iflink = (int)u32_of(a), l->have |= HL_LINK;
			break;
		case IFLA_LINKMODE:
			l->linkmode = *(const uint8_t *)RTA_DATA(a), l->have |= HL_LINKMODE;
			break;
		case IFLA_OPERSTATE:
			l->operstate = *(const uint8_t *)RTA_DATA(a), l->have |= HL_OPERSTATE;
			break;
		case IFLA_CARRIER:
			l->carrier = *(const uint8_t *)RTA_DATA(a), l->have |= HL_CARRIER;
			break;
		case IFLA_CARRIER_CHANGES:
			l->carrier_changes = u32_of(a), l->have |= HL_CARRIER_CHANGES;
			break;
		case IFLA_CARRIER_UP_COUNT:
			l->carrier_up = u32_of(a), l->have |= HL_CARRIER_UP;
			break;
		case IFLA_CARRIER_DOWN_COUNT:
			l->carrier_down = u32_of(a), l->have |= HL_CARRIER_DOWN;
			break;
		case IFLA_ADDRESS:
			if (plen <= sizeof(l->addr))
				memcpy(l->addr, RTA_DATA(a), plen), l->addr_len = (uint8_t)plen;
			break;
		case IFLA_BROADCAST:
			if (plen <= sizeof(l->broadcast))
				memcpy(l->broadcast, RTA_DATA(a), plen), l->broadcast_len = (uint8_t)plen;
			break;
		case IFLA_IFALIAS: {
			size_t n = strnlen(RTA_DATA(a), plen);

			if (n >= sizeof(l->alias))
				n = sizeof(l->alias) - 1;
			memcpy(l->alias, RTA_DATA(a), n);
			l->alias[n] = '\0';
			break;
		}
		}
	}
	return have_name;
}

/* The dump, read into a fixed buffer; a socket that fails is reopened on
 * the next scrape. Returns the number of links or a negative errno. */
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
			if (h->nlmsg_type == RTM_NEWLINK && n < HOST_LINK_MAX)
				n += parse_link(h, &links[n]);
		}
	}
fail:
	n = -errno;
	close(fd);
	fd = -1;
	return n;
}

int host_util__links(struct host_w *w, const struct host_link **out)
{
	if (!w->links_done) {
		w->nlinks = dump();
		w->links_done = 1;
	}
	*out = links;
	return w->nlinks;
}
