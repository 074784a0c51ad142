/* netclass collector: /sys/class/net/<iface>/ attributes as node_exporter
 * 1.5 exports them (node_network_up, _info, _mtu_bytes, _speed_bytes,
 * _carrier_changes_total, _transmit_queue_length, ...). An attribute the
 * kernel refuses to show (carrier, speed, duplex of a link that is down)
 * is left out, as node_exporter leaves it out; one that reads but is not
 * a number is 0, as there. Descriptors stay open for
 * up to NC_CACHED interfaces; the others are opened per scrape. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/collectors.h"

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

static void read_iface(struct iface *f)
{
	int *fds = fds_for(f->name);
	char path[160], buf[300];

	f->have = 0;
	for (size_t k = 0; k < NFILES; k++) {
		const char *file = k < NNUM ? num_attrs[k].file : str_files[k - NNUM];
		ssize_t n;

		snprintf(path, sizeof(path), "/sys/class/net/%.63s/%.40s", f->name, file);
		n = host_util__read(fds ? &fds[k] : NULL, path, buf, sizeof(buf));
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

int host_netclass__collect(struct host_w *w)
{
	DIR *d = host_util__opendir("/sys/class/net");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < NC_MAX) {
		if (de->d_name[0] == '.' || de->d_type == DT_REG)	/* bonding_masters */
			continue;
		if (strlen(de->d_name) >= sizeof(ifs[0].name))
			continue;
		strcpy(ifs[n++].name, de->d_name);
	}
	closedir(d);
	qsort(ifs, (size_t)n, sizeof(ifs[0]), name_cmp);
	for (int i = 0; i < n; i++)
		read_iface(&ifs[i]);
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
		char fam[64], help[80];
		int any = 0;

		snprintf(fam, sizeof(fam), "node_network_%s", num_attrs[k].family);
		snprintf(help, sizeof(help), "Network device property: %s", num_attrs[k].family);
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
