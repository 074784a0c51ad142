/* diskstats collector: per-device I/O counters from /proc/diskstats, device
 * info (and device-mapper/ATA/filesystem details) from udev's database.
 * Partitions, ram, loop and floppy devices are left out as in
 * node_exporter's default --collector.diskstats.device-exclude,
 * ^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$ */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/collectors.h"

#define DISK_MAX 1024		/* devices beyond this are not reported */
#define DISK_NSTATS 17		/* columns after major, minor, name (kernel 5.5+) */
#define SECTOR 512.0		/* /proc/diskstats counts 512-byte sectors whatever the device */

/* udev properties kept per device, in label order of their families. */
enum { U_MODEL, U_PATH, U_REVISION, U_SERIAL, U_WWN,
       U_DM_LAYER, U_DM_LV, U_DM_NAME, U_DM_UUID, U_DM_VG,
       U_RPM, U_WCACHE, U_WCACHE_ON, U_FS_TYPE, U_FS_USAGE, U_FS_UUID, U_FS_VERSION, U_N };
static const char *const udev_keys[U_N] = {
	"ID_MODEL", "ID_PATH", "ID_REVISION", "ID_SERIAL_SHORT", "ID_WWN",
	"DM_LV_LAYER", "DM_LV_NAME", "DM_NAME", "DM_UUID", "DM_VG_NAME",
	"ID_ATA_ROTATION_RATE_RPM", "ID_ATA_WRITE_CACHE", "ID_ATA_WRITE_CACHE_ENABLED",
	"ID_FS_TYPE", "ID_FS_USAGE", "ID_FS_UUID", "ID_FS_VERSION",
};
#define UDEV_ARENA 1024		/* bytes of property values per device; longer ones are cut */

struct disk {
	char *name;		/* into the /proc/diskstats buffer */
	unsigned major, minor;
	int nstats;
	double v[DISK_NSTATS];
	unsigned short off[U_N];	/* into arena; 0 = absent (arena[0] is "") */
	char arena[UDEV_ARENA];
};

static struct disk disks[DISK_MAX];

/* Column, scale (ms → s, sectors → bytes), family, type, help. */
static const struct {
	int col;
	double scale;
	const char *name;
	enum host_type type;
	const char *help;
} fams[] = {
	{ 0, 1, "node_disk_reads_completed_total", HOST_COUNTER, "The total number of reads completed successfully." },
	{ 1, 1, "node_disk_reads_merged_total", HOST_COUNTER, "The total number of reads merged." },
	{ 2, SECTOR, "node_disk_read_bytes_total", HOST_COUNTER, "The total number of bytes read successfully." },
	{ 3, 1e-3, "node_disk_read_time_seconds_total", HOST_COUNTER, "The total number of seconds spent by all reads." },
	{ 4, 1, "node_disk_writes_completed_total", HOST_COUNTER, "The total number of writes completed successfully." },
	{ 5, 1, "node_disk_writes_merged_total", HOST_COUNTER, "The number of writes merged." },
	{ 6, SECTOR, "node_disk_written_bytes_total", HOST_COUNTER, "The total number of bytes written successfully." },
	{ 7, 1e-3, "node_disk_write_time_seconds_total", HOST_COUNTER, "This is the total number of seconds spent by all writes." },
	{ 8, 1, "node_disk_io_now", HOST_GAUGE, "The number of I/Os currently in progress." },
	{ 9, 1e-3, "node_disk_io_time_seconds_total", HOST_COUNTER, "Total seconds spent doing I/Os." },
	{ 10, 1e-3, "node_disk_io_time_weighted_seconds_total", HOST_COUNTER, "The weighted # of seconds spent doing I/Os." },
	{ 11, 1, "node_disk_discards_completed_total", HOST_COUNTER, "The total number of discards completed successfully." },
	{ 12, 1, "node_disk_discards_merged_total", HOST_COUNTER, "The total number of discards merged." },
	{ 13, 1, "node_disk_discarded_sectors_total", HOST_COUNTER, "The total number of sectors discarded successfully." },
	{ 14, 1e-3, "node_disk_discard_time_seconds_total", HOST_COUNTER, "This is the total number of seconds spent by all discards." },
	{ 15, 1, "node_disk_flush_requests_total", HOST_COUNTER, "The total number of flush requests completed successfully" },
	{ 16, 1e-3, "node_disk_flush_requests_time_seconds_total", HOST_COUNTER, "This is the total number of seconds spent by all flush requests." },
};

static int digits(const char **p)
{
	const char *s = *p;

	while (isdigit((unsigned char)**p))
		(*p)++;
	return *p > s;
}

static int excluded(const char *n)
{
	const char *p;

	if (!strncmp(n, "ram", 3))
		p = n + 3;
	else if (!strncmp(n, "loop", 4))
		p = n + 4;
	else if (!strncmp(n, "fd", 2))
		p = n + 2;
	else if (strchr("hsv", n[0]) && n[0] && n[1] == 'd' && islower((unsigned char)n[2]))
		p = n + 3;
	else if (!strncmp(n, "xvd", 3) && islower((unsigned char)n[3]))
		p = n + 4;
	else if (!strncmp(n, "nvme", 4)) {
		p = n + 4;
		if (!digits(&p) || *p++ != 'n' || !digits(&p) || *p++ != 'p')
			return 0;
	} else
		return 0;
	return digits(&p) && !*p;
}

/* Keeps the properties we label with from udev's "E:KEY=value" lines. */
static void udev_load(struct disk *d)
{
	static char buf[16384];
	char path[64], *cur = buf, *line;
	size_t used = 1;

	memset(d->off, 0, sizeof(d->off));
	d->arena[0] = '\0';
	snprintf(path, sizeof(path), "/run/udev/data/b%u:%u", d->major, d->minor);
	if (host_util__read(NULL, path, buf, sizeof(buf)) < 0)
		return;
	while ((line = host_util__line(&cur))) {
		char *eq;

		if (line[0] != 'E' || line[1] != ':' || !(eq = strchr(line, '=')))
			continue;
		*eq = '\0';
		for (int k = 0; k < U_N; k++) {
			size_t len = strlen(eq + 1);

			if (strcmp(line + 2, udev_keys[k]) || used + len + 1 > UDEV_ARENA)
				continue;
			memcpy(d->arena + used, eq + 1, len + 1);
			d->off[k] = (unsigned short)used;
			used += len + 1;
		}
	}
}

static const char *prop(const struct disk *d, int k)
{
	return d->arena + d->off[k];
}

static void labels(struct host_w *w, const struct disk *d, const char *const *names, int first,
		   int n)
{
	host_util__label(w, "device", d->name);
	for (int i = 0; i < n; i++)
		host_util__label(w, names[i], prop(d, first + i));
}

/* node_disk_info, then the udev-only families for devices that have them. */
static void info(struct host_w *w, int n)
{
	static const char *const info_l[] = { "model", "path", "revision", "serial", "wwn" };
	static const char *const dm_l[] = { "lv_layer", "lv_name", "name", "uuid", "vg_name" };
	static const char *const fs_l[] = { "type", "usage", "uuid", "version" };
	int any;

	host_util__family(w, "node_disk_info", HOST_GAUGE, "Info of /sys/block/<block_device>.");
	for (int i = 0; i < n; i++) {
		char num[16];

		host_util__begin(w, "node_disk_info");
		host_util__label(w, "device", disks[i].name);
		snprintf(num, sizeof(num), "%u", disks[i].major);
		host_util__label(w, "major", num);
		snprintf(num, sizeof(num), "%u", disks[i].minor);
		host_util__label(w, "minor", num);
		for (int k = U_MODEL; k <= U_WWN; k++)
			host_util__label(w, info_l[k - U_MODEL], prop(&disks[i], k));
		host_util__end(w, 1);
	}
	any = 0;
	for (int i = 0; i < n; i++) {
		if (!disks[i].off[U_DM_NAME])
			continue;
		if (!any++)
			host_util__family(w, "node_disk_device_mapper_info", HOST_GAUGE,
					  "Info about disk device mapper.");
		host_util__begin(w, "node_disk_device_mapper_info");
		labels(w, &disks[i], dm_l, U_DM_LAYER, 5);
		host_util__end(w, 1);
	}
	any = 0;
	for (int i = 0; i < n; i++) {
		if (!disks[i].off[U_RPM])
			continue;
		if (!any++)
			host_util__family(w, "node_disk_ata_rotation_rate_rpm", HOST_GAUGE,
					  "ATA disk rotation rate in RPMs (0 for SSDs).");
		host_util__begin(w, "node_disk_ata_rotation_rate_rpm");
		labels(w, &disks[i], NULL, 0, 0);
		host_util__end(w, strtod(prop(&disks[i], U_RPM), NULL));
	}
	any = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(prop(&disks[i], U_WCACHE), "1"))
			continue;
		if (!any++)
			host_util__family(w, "node_disk_ata_write_cache_enabled", HOST_GAUGE,
					  "ATA disk has its write cache enabled.");
		host_util__begin(w, "node_disk_ata_write_cache_enabled");
		labels(w, &disks[i], NULL, 0, 0);
		host_util__end(w, !strcmp(prop(&disks[i], U_WCACHE_ON), "1"));
	}
	any = 0;
	for (int i = 0; i < n; i++) {
		if (!disks[i].off[U_FS_TYPE])
			continue;
		if (!any++)
			host_util__family(w, "node_disk_filesystem_info", HOST_GAUGE,
					  "Info about disk filesystem.");
		host_util__begin(w, "node_disk_filesystem_info");
		labels(w, &disks[i], fs_l, U_FS_TYPE, 4);
		host_util__end(w, 1);
	}
}

int host_diskstats__collect(struct host_w *w)
{
	static int fd = -1;
	static char buf[1 << 19];
	char *cur = buf, *line, *f[3 + DISK_NSTATS];
	int n = 0, udev;
	char path[512];
	ssize_t len = host_util__read(&fd, "/proc/diskstats", buf, sizeof(buf));

	if (len < 0)
		return (int)len;
	/* no udev: labels stay empty */
	udev = access(host_util__path("/run/udev/data", path, sizeof(path)), F_OK) == 0;
	while ((line = host_util__line(&cur)) && n < DISK_MAX) {
		int nf = host_util__fields(line, f, 3 + DISK_NSTATS);
		struct disk *d = &disks[n];

		if (nf < 14 || excluded(f[2]))
			continue;
		d->name = f[2];
		d->major = (unsigned)strtoul(f[0], NULL, 10);
		d->minor = (unsigned)strtoul(f[1], NULL, 10);
		d->nstats = nf - 3;
		for (int i = 0; i < d->nstats; i++)
			d->v[i] = (double)strtoull(f[3 + i], NULL, 10);
		if (udev)
			udev_load(d);
		else
			memset(d->off, 0, sizeof(d->off)), d->arena[0] = '\0';
		n++;
	}
	info(w, n);
	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		int any = 0;

		for (int i = 0; i < n; i++) {
			if (disks[i].nstats <= fams[k].col)
				continue;	/* discard and flush columns are newer */
			if (!any++)
				host_util__family(w, fams[k].name, fams[k].type, fams[k].help);
			host_util__begin(w, fams[k].name);
			host_util__label(w, "device", disks[i].name);
			host_util__end(w, disks[i].v[fams[k].col] * fams[k].scale);
		}
	}
	return 0;
}
