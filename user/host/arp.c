/* arp collector: neighbour entries per device from /proc/net/arp, counted
 * as node_exporter 1.5 counts them (every row, incomplete ones too). A row
 * that is not six columns with an IP and a MAC address fails the
 * collector, as there. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "host/collectors.h"

#define ARP_DEVS 1024

struct arp_dev {
	char name[32];
	unsigned entries;
};

static struct arp_dev devs[ARP_DEVS];

/* net.ParseMAC's colon form: 6, 8 or 20 two-digit hex groups. */
static int mac_ok(const char *s)
{
	int groups = 0;

	for (;;) {
		if (!strchr("0123456789abcdefABCDEF", s[0]) || !s[0] ||
		    !strchr("0123456789abcdefABCDEF", s[1]) || !s[1])
			return 0;
		groups++;
		s += 2;
		if (!*s)
			break;
		if (*s++ != ':')
			return 0;
	}
	return groups == 6 || groups == 8 || groups == 20;
}

int host_arp__collect(struct host_w *w)
{
	static int fd = -1;
	static char buf[1 << 20];
	char *cur = buf, *line, *f[10];
	int n = 0;
	ssize_t len = host_util__read(&fd, "/proc/net/arp", buf, sizeof(buf));

	if (len < 0)
		return (int)len;
	while ((line = host_util__line(&cur))) {
		int nf = host_util__fields(line, f, 10), i;
		unsigned char addr[16];

		if (nf == 0 || nf == 9)	/* the header: "IP address HW type Flags HW address Mask Device" */
			continue;
		if (nf != 6)
			return -EINVAL;
		if ((inet_pton(AF_INET, f[0], addr) != 1 && inet_pton(AF_INET6, f[0], addr) != 1) ||
		    !mac_ok(f[3]))
			return -EINVAL;
		for (i = 0; i < n && strcmp(devs[i].name, f[5]); i++)
			;
		if (i == n) {
			if (n == ARP_DEVS || strlen(f[5]) >= sizeof(devs[0].name))
				continue;
			strcpy(devs[n].name, f[5]);
			devs[n++].entries = 0;
		}
		devs[i].entries++;
	}
	if (!n)
		return 0;
	host_util__family(w, "node_arp_entries", HOST_GAUGE, "ARP entries by device");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_arp_entries");
		host_util__label(w, "device", devs[i].name);
		host_util__end(w, devs[i].entries);
	}
	return 0;
}
