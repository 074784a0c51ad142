/* netclass collector: /sys/class/net/<iface>/ attributes as node_exporter
 * 1.5 exports them (node_network_up, _info, _mtu_bytes, _speed_bytes,
 * _carrier_changes_total, _transmit_queue_length, ...). An attribute the
 * kernel refuses to show (carrier, speed, duplex of a link that is down)
 * is left out, as node_exporter leaves it out; one that reads but is not
 * a number is 0, as there. Descriptors stay open for
 * up to NC_CACHED interfaces; the others are opened per scrape.
 *
 * On the live /sys (no --path.sysfs), the interfaces and 16 of their 22
 * attributes come from the scrape's RTM_GETLINK dump (link.c, shared with
 * netdev), which carries the same struct net_device fields net-sysfs.c
 * shows, with the same rules (carrier and dormant only while the device
 * is up, operstate down while it is not); sysfs is read only for
 * addr_assign_type, dev_id, flags, name_assign_type, speed and duplex.
 * That is 6 reads per interface instead of 22. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/collectors.h"

#ifndef IFF_DORMANT
#define IFF_DORMANT 0x20000	/* linux/if.h; glibc's net/if.h stops at IFF_DYNAMIC */
#endif
#define NC_MAX 1024		/* interfaces reported */
#define NC_CACHED 64		/* interfaces whose fds stay open */

/* Numeric attributes, in the order of their families. */
static const struct {
	const char *file, *family;
	enum host_type type;
} num_attrs[] = {
	{ "addr_assign_type", "address_assign_type", HOST_GAUGE },
	{ "carrier", "carrier", HOST_GAUGE },
	{ "carrier_changes", "carrier_changes_total", HOST_COUNTER },
	{ "carrier_up_count", "carrier_up_changes_total", HOST_COUNTER },
	{ "carrier_down_count", "carrier_down_changes_total", HOST_COUNTER },
	{ "dev_id", "device_id", HOST_GAUGE },
	{ "dormant", "dormant", HOST_GAUGE },
	{ "flags", "flags", HOST_GAUGE },
	{ "ifindex", "iface_id", HOST_GAUGE },
	{ "iflink", "iface_link", HOST_GAUGE },
	{ "link_mode", "iface_link_mode", HOST_GAUGE },
	{ "mtu", "mtu_bytes", HOST_GAUGE },
	{ "name_assign_type", "name_assign_type", HOST_GAUGE },
	{ "netdev_group", "net_dev_group", HOST_GAUGE },
	{ "speed", "speed_bytes", HOST_GAUGE },	/* Mbit/s → bytes/s */
	{ "tx_queue_len", "transmit_queue_length", HOST_GAUGE },
	{ "type", "protocol_type", HOST_GAUGE },
};
#define NNUM (sizeof(num_attrs) / sizeof(num_attrs[0]))
enum { S_ADDRESS, S_BROADCAST, S_DUPLEX, S_OPERSTATE, S_IFALIAS, NSTR };
static const char *const str_files[NSTR] = { "address", "broadcast", "duplex", "operstate", "ifalias" };
#define NFILES (NNUM + NSTR)

struct iface {
	char name[64];
	int64_t v[NNUM];
	unsigned have;		/* bit i: num_attrs[i] was read */
	char s[NSTR][260];
};

struct cached {
	char name[64];
	int fd[NFILES];
	int seen;		/* in the last scrape */
};

static struct iface ifs[NC_MAX];
static struct cached cache[NC_CACHED];

/* strconv.ParseInt(s, 0, 64) after TrimSpace: 0x.., 0.. (octal), decimal. */
static int parse_i64(char *s, int64_t *out)
{
	char *end;
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
		s[--n] = '\0';
	if (!n)
		return -EINVAL;
	errno = 0;
	*out = strtoll(s, &end, 0);
	return *end || errno ? -EINVAL : 0;
}

static int *fds_for(const char *name)
{
	struct cached *free_slot = NULL;

	for (int i = 0; i < NC_CACHED; i++) {
		if (cache[i].name[0] && !strcmp(cache[i].name, name)) {
			cache[i].seen = 1;
			return cache[i].fd;
		}
		if (!cache[i].name[0] && !free_slot)
			free_slot = &cache[i];
	}
	if (!free_slot)
		return NULL;
	snprintf(free_slot->name, sizeof(free_slot->name), "%.63s", name);
	for (size_t k = 0; k < NFILES; k++)
		free_slot->fd[k] = -1;
	free_slot->seen = 1;
	return free_slot->fd;
}

/* Interfaces gone since the last scrape give their fds back. */
static void cache_sweep(void)
{
	for (int i = 0; i < NC_CACHED; i++) {
		if (cache[i].name[0] && !cache[i].seen) {
			for (size_t k = 0; k < NFILES; k++)
				if (cache[i].fd[k] >= 0)
					close(cache[i].fd[k]);
			cache[i].name[0] = '\0';
		}
		cache[i].seen = 0;
	}
}

/* Attributes (bit k: num_attrs[k], NNUM + j: str_files[j]) read from
 * sysfs; the others were filled from netlink. */
static void read_iface(struct iface *f, uint32_t want)
{
	int *fds = fds_for(f->name);
	char path[160], buf[300];

	for (size_t k = 0; k < NFILES; k++) {
		if (!(want & (1u << k)))
			continue;
		const char *file = k < NNUM ? num_attrs[k].file : str_files[k - NNUM];
		ssize_t n;

		/* the path only for a descriptor not kept yet, or one whose
		 * device went away (opened again by name) */
		path[0] = '\0';
		if (!fds || fds[k] < 0)
			snprintf(path, sizeof(path), "/sys/class/net/%.63s/%.40s", f->name, file);
		n = host_util__read(fds ? &fds[k] : NULL, path, buf, sizeof(buf));
		if (n < 0 && !path[0] && fds[k] < 0) {
			snprintf(path, sizeof(path), "/sys/class/net/%.63s/%.40s", f->name, file);
			n = host_util__read(&fds[k], path, buf, sizeof(buf));
		}
		if (k >= NNUM) {
			char *s = f->s[k - NNUM];

			s[0] = '\0';
			if (n >= 0) {	/* TrimSpace */
				char *b = buf;

				while (*b == ' ' || *b == '\t' || *b == '\n')
					b++;
				n = (ssize_t)strlen(b);
				while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\n'))
					n--;
				if ((size_t)n >= sizeof(f->s[0]))
					n = sizeof(f->s[0]) - 1;
				memcpy(s, b, (size_t)n);
				s[n] = '\0';
			}
			continue;
		}
		if (n < 0)
			continue;
		/* procfs's value parser: readable but not a number is 0 */
		if (parse_i64(buf, &f->v[k]))
			f->v[k] = 0;
		f->have |= 1u << k;
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct iface *)a)->name, ((const struct iface *)b)->name);
}

enum { A_ADDR_ASSIGN, A_CARRIER, A_CARRIER_CHANGES, A_CARRIER_UP, A_CARRIER_DOWN, A_DEV_ID,
       A_DORMANT, A_FLAGS, A_IFINDEX, A_IFLINK, A_LINK_MODE, A_MTU, A_NAME_ASSIGN, A_GROUP,
       A_SPEED, A_TXQLEN, A_TYPE };
#define ALL_FILES ((1u << NFILES) - 1)
#define STR_BIT(j) (1u << (NNUM + (j)))

static void set_num(struct iface *f, int k, int64_t v)
{
	f->v[k] = v;
	f->have |= 1u << k;
}

/* "%*phC" of net-sysfs.c's sysfs_format_mac: hex bytes joined by ':'. */
static void format_mac(char *out, const unsigned char *a, unsigned n)
{
	static const char hex[] = "0123456789abcdef";

	for (unsigned i = 0; i < n; i++) {
		if (i)
			*out++ = ':';
		*out++ = hex[a[i] >> 4];
		*out++ = hex[a[i] & 15];
	}
	*out = '\0';
}

/* What net-sysfs.c would show for l, from its netlink attributes; returns
 * the attributes still to be read from sysfs. */
static uint32_t from_link(struct iface *f, const struct host_link *l)
{
	static const char *const operstates[] = { "unknown", "notpresent", "down",
						   "lowerlayerdown", "testing", "dormant", "up" };
	uint32_t want = ALL_FILES;
	int up = !!(l->flags & IFF_UP);	/* netif_running, as net-sysfs.c asks */
	const char *alias = l->alias;
	size_t n;

	f->have = 0;
	snprintf(f->name, sizeof(f->name), "%s", l->name);
	set_num(f, A_IFINDEX, l->ifindex);
	set_num(f, A_TYPE, l->type);
	set_num(f, A_IFLINK, l->have & HL_LINK ? l->iflink : l->ifindex);
	want &= ~(1u << A_IFINDEX | 1u << A_TYPE | 1u << A_IFLINK);
	/* carrier and dormant: EINVAL unless the device is up (left out) */
	if (l->have & HL_CARRIER) {
		if (up)
			set_num(f, A_CARRIER, l->carrier);
		want &= ~(1u << A_CARRIER);
	}
	if (up)
		set_num(f, A_DORMANT, !!(l->flags & IFF_DORMANT));
	want &= ~(1u << A_DORMANT);
#define NL(bit, k, field)                          \
	if (l->have & (bit)) {                      \
		set_num(f, k, (int64_t)l->field);   \
		want &= ~(1u << (k));                \
	}
	NL(HL_CARRIER_CHANGES, A_CARRIER_CHANGES, carrier_changes)
	NL(HL_CARRIER_UP, A_CARRIER_UP, carrier_up)
	NL(HL_CARRIER_DOWN, A_CARRIER_DOWN, carrier_down)
	NL(HL_LINKMODE, A_LINK_MODE, linkmode)
	NL(HL_MTU, A_MTU, mtu)
	NL(HL_GROUP, A_GROUP, group)
	NL(HL_TXQLEN, A_TXQLEN, txqlen)
#undef NL
	if (l->have & HL_OPERSTATE) {
		f->s[S_OPERSTATE][0] = '\0';
		if (l->operstate < sizeof(operstates) / sizeof(operstates[0]))
			strcpy(f->s[S_OPERSTATE], operstates[l->operstate]);
		want &= ~STR_BIT(S_OPERSTATE);
	}
	format_mac(f->s[S_ADDRESS], l->addr, l->addr_len);
	format_mac(f->s[S_BROADCAST], l->broadcast, l->broadcast_len);
	/* TrimSpace, as for the sysfs text */
	while (*alias == ' ' || *alias == '\t' || *alias == '\n')
		alias++;
	n = strlen(alias);
	while (n && (alias[n - 1] == ' ' || alias[n - 1] == '\t' || alias[n - 1] == '\n'))
		n--;
	memcpy(f->s[S_IFALIAS], alias, n);
	f->s[S_IFALIAS][n] = '\0';
	want &= ~(STR_BIT(S_ADDRESS) | STR_BIT(S_BROADCAST) | STR_BIT(S_IFALIAS));
	return want;
}

/* The interfaces from the netlink dump; -1 when there is none to use. */
static int list_netlink(struct host_w *w, uint32_t *want)
{
	const struct host_link *l;
	int nl = host_util__links(w, &l), n = 0;

	if (nl <= 0)
		return -1;
	for (int i = 0; i < nl && n < NC_MAX; i++)
		want[n] = from_link(&ifs[n], &l[i]), n++;
	return n;
}

int host_netclass__collect(struct host_w *w)
{
	static uint32_t want[NC_MAX];
	int n = host_util__sysfs_live() ? list_netlink(w, want) : -1;

	if (n < 0) {
		DIR *d = host_util__opendir("/sys/class/net");
		struct dirent *de;

		if (!d)
			return -errno;
		n = 0;
		while ((de = readdir(d)) && n < NC_MAX) {
			if (de->d_name[0] == '.' || de->d_type == DT_REG)	/* bonding_masters */
				continue;
			if (strlen(de->d_name) >= sizeof(ifs[0].name))
				continue;
			strcpy(ifs[n].name, de->d_name);
			ifs[n].have = 0;
			want[n++] = ALL_FILES;
		}
		closedir(d);
	}
	for (int i = 0; i < n; i++)
		read_iface(&ifs[i], want[i]);
	qsort(ifs, (size_t)n, sizeof(ifs[0]), name_cmp);
	cache_sweep();

	host_util__family(w, "node_network_up", HOST_GAUGE, "Value is 1 if operstate is 'up', 0 otherwise.");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_network_up");
		host_util__label(w, "device", ifs[i].name);
		host_util__end(w, !strcmp(ifs[i].s[S_OPERSTATE], "up"));
	}
	host_util__family(w, "node_network_info", HOST_GAUGE,
			  "Non-numeric data from /sys/class/net/<iface>, value is always 1.");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_network_info");
		host_util__label(w, "address", ifs[i].s[S_ADDRESS]);
		host_util__label(w, "broadcast", ifs[i].s[S_BROADCAST]);
		host_util__label(w, "device", ifs[i].name);
		host_util__label(w, "duplex", ifs[i].s[S_DUPLEX]);
		host_util__label(w, "ifalias", ifs[i].s[S_IFALIAS]);
		host_util__label(w, "operstate", ifs[i].s[S_OPERSTATE]);
		host_util__end(w, 1);
	}
	for (size_t k = 0; k < NNUM; k++) {
		/* the names never change: written once */
		static char fams[NNUM][64], helps[NNUM][80];
		char *fam = fams[k], *help = helps[k];
		int any = 0;

		if (!fam[0]) {
			snprintf(fam, sizeof(fams[k]), "node_network_%s", num_attrs[k].family);
			snprintf(help, sizeof(helps[k]), "Network device property: %s", num_attrs[k].family);
		}
		for (int i = 0; i < n; i++) {
			int64_t v = ifs[i].v[k];

			if (!(ifs[i].have & (1u << k)))
				continue;
			if (!any++)
				host_util__family(w, fam, num_attrs[k].type, help);
			if (!strcmp(num_attrs[k].file, "speed"))
				v = v * 1000 * 1000 / 8;
			host_util__begin(w, fam);
			host_util__label(w, "device", ifs[i].name);
			host_util__end(w, (double)v);
		}
	}
	return 0;
}
