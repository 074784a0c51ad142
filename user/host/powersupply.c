/* powersupplyclass collector: /sys/class/power_supply/<name>/ as
 * node_exporter 1.5 reads it (procfs's sysfs.PowerSupplyClass): every
 * supply, each known attribute file read (at most 128 bytes, trimmed),
 * numbers parsed as Go's strconv.ParseInt(s, 0, 64) does. Gauges
 * node_power_supply_<attr>{power_supply} in the attribute's unit (µA, µV,
 * µW, µWh, µAh → A, V, W, Wh, Ah; tenths of °C → °C), and
 * node_power_supply_info{power_supply,<each non-empty string attribute>} 1.
 * As there: an attribute the kernel refuses (ENOENT, EOPNOTSUPP, EINVAL,
 * ENODEV) is left out, while a numeric attribute that does not parse fails
 * the whole collector. Unlike 1.5, files it does not use (uevent, alarm, ...)
 * are not read, and ENODATA (a battery's "not available now") is left out
 * rather than failing the collector. The default --collector.powersupply.
 * ignored-supplies "^$" ignores nothing. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/collectors.h"

#define PS_MAX 64		/* supplies reported */
#define PS_VALUE 129		/* 128 bytes read, as procfs's SysReadFile */

/* Numeric attributes: file, family (NULL: parsed, not exported), divisor. */
static const struct {
	const char *file, *family;
	double div;
} nums[] = {
	{ "authentic", "authentic", 1 },
	{ "calibrate", "calibrate", 1 },
	{ "capacity", "capacity", 1 },
	{ "capacity_alert_max", "capacity_alert_max", 1 },
	{ "capacity_alert_min", "capacity_alert_min", 1 },
	{ "cycle_count", "cyclecount", 1 },
	{ "online", "online", 1 },
	{ "present", "present", 1 },
	{ "time_to_empty_now", "time_to_empty_seconds", 1 },
	{ "time_to_full_now", "time_to_full_seconds", 1 },
	{ "current_boot", "current_boot", 1e6 },
	{ "current_max", "current_max", 1e6 },
	{ "current_now", "current_ampere", 1e6 },
	{ "energy_empty", "energy_empty", 1e6 },
	{ "energy_empty_design", "energy_empty_design", 1e6 },
	{ "energy_full", "energy_full", 1e6 },
	{ "energy_full_design", "energy_full_design", 1e6 },
	{ "energy_now", "energy_watthour", 1e6 },
	{ "voltage_boot", "voltage_boot", 1e6 },
	{ "voltage_max", "voltage_max", 1e6 },
	{ "voltage_max_design", "voltage_max_design", 1e6 },
	{ "voltage_min", "voltage_min", 1e6 },
	{ "voltage_min_design", "voltage_min_design", 1e6 },
	{ "voltage_now", "voltage_volt", 1e6 },
	{ "voltage_ocv", "voltage_ocv", 1e6 },
	{ "charge_control_limit", "charge_control_limit", 1e6 },
	{ "charge_control_limit_max", "charge_control_limit_max", 1e6 },
	{ "charge_counter", "charge_counter", 1e6 },
	{ "charge_empty", "charge_empty", 1e6 },
	{ "charge_empty_design", "charge_empty_design", 1e6 },
	{ "charge_full", "charge_full", 1e6 },
	{ "charge_full_design", "charge_full_design", 1e6 },
	{ "charge_now", "charge_ampere", 1e6 },
	{ "charge_term_current", "charge_term_current", 1e6 },
	{ "constant_charge_current", "constant_charge_current", 1e6 },
	{ "constant_charge_current_max", "constant_charge_current_max", 1e6 },
	{ "constant_charge_voltage", "constant_charge_voltage", 1e6 },
	{ "constant_charge_voltage_max", "constant_charge_voltage_max", 1e6 },
	{ "precharge_current", "precharge_current", 1e6 },
	{ "input_current_limit", "input_current_limit", 1e6 },
	{ "power_now", "power_watt", 1e6 },
	{ "temp", "temp_celsius", 10 },
	{ "temp_alert_max", "temp_alert_max_celsius", 10 },
	{ "temp_alert_min", "temp_alert_min_celsius", 10 },
	{ "temp_ambient", "temp_ambient_celsius", 10 },
	{ "temp_ambient_max", "temp_ambient_max_celsius", 10 },
	{ "temp_ambient_min", "temp_ambient_min_celsius", 10 },
	{ "temp_max", "temp_max_celsius", 10 },
	{ "temp_min", "temp_min_celsius", 10 },
	/* parsed (a bad value fails the collector there too), not exported */
	{ "charge_avg", NULL, 1 },
	{ "current_avg", NULL, 1 },
	{ "energy_avg", NULL, 1 },
	{ "power_avg", NULL, 1 },
	{ "time_to_empty_avg", NULL, 1 },
	{ "time_to_full_avg", NULL, 1 },
	{ "voltage_avg", NULL, 1 },
};
#define NNUMS (sizeof(nums) / sizeof(nums[0]))
_Static_assert(NNUMS <= 64, "struct supply's have is 64 bits");

/* String attributes: the info labels besides power_supply, sorted (the
 * order Prometheus text shows them in). */
static const char *const strs[] = { "capacity_level", "charge_type", "health", "manufacturer",
				    "model_name", "scope", "serial_number", "status",
				    "technology", "type", "usb_type" };
#define NSTRS (sizeof(strs) / sizeof(strs[0]))

struct supply {
	char name[256];
	uint64_t have;			/* bit i: nums[i] was read */
	int64_t v[NNUMS];
	char s[NSTRS][PS_VALUE];	/* "" when absent */
};

static struct supply sups[PS_MAX];

static int lower(int c)
{
	return c | 0x20;
}

/* strconv.ParseInt(s, 0, 64): optional sign; 0x/0o/0b prefixes, a leading
 * 0 for octal; '_' between digits (Go's underscoreOK). 0 or -EINVAL. */
int host_util__parse_go_int(const char *s, int64_t *out)
{
	const char *p = s, *q;
	uint64_t un = 0, base = 10, cutoff;
	int neg = 0, saw;	/* saw: '^' start, '0' digit or prefix, '_', '!' other */
	int hex = 0;

	if (!*p)
		return -EINVAL;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	/* underscoreOK */
	saw = '^';
	q = p;
	if (q[0] == '0' && q[1] && (lower(q[1]) == 'b' || lower(q[1]) == 'o' || lower(q[1]) == 'x')) {
		hex = lower(q[1]) == 'x';
		q += 2;
		saw = '0';
	}
	for (; *q; q++) {
		if ((*q >= '0' && *q <= '9') || (hex && lower(*q) >= 'a' && lower(*q) <= 'f')) {
			saw = '0';
			continue;
		}
		if (*q == '_') {
			if (saw != '0')
				return -EINVAL;
			saw = '_';
			continue;
		}
		if (saw == '_')
			return -EINVAL;
		saw = '!';
	}
	if (saw == '_')
		return -EINVAL;
	/* ParseUint with base 0 */
	if (!*p)
		return -EINVAL;
	if (p[0] == '0' && strlen(p) >= 3 && lower(p[1]) == 'b')
		base = 2, p += 2;
	else if (p[0] == '0' && strlen(p) >= 3 && lower(p[1]) == 'o')
		base = 8, p += 2;
	else if (p[0] == '0' && strlen(p) >= 3 && lower(p[1]) == 'x')
		base = 16, p += 2;
	else if (p[0] == '0')
		base = 8, p += 1;
	cutoff = UINT64_MAX / base + 1;
	for (; *p; p++) {
		unsigned d;
		uint64_t n1;

		if (*p == '_')
			continue;	/* placement checked above */
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (lower(*p) >= 'a' && lower(*p) <= 'z')
			d = (unsigned)(lower(*p) - 'a' + 10);
		else
			return -EINVAL;
		if (d >= base)
			return -EINVAL;
		if (un >= cutoff)
			return -EINVAL;	/* out of range */
		un *= base;
		n1 = un + d;
		if (n1 < un)
			return -EINVAL;
		un = n1;
	}
	if ((!neg && un > (uint64_t)INT64_MAX) || (neg && un > (uint64_t)INT64_MAX + 1))
		return -EINVAL;
	*out = neg ? (int64_t)(0 - un) : (int64_t)un;
	return 0;
}

/* bytes.TrimSpace: ASCII white space and U+0085, U+00A0 at both ends. */
static char *trim(char *s, size_t n)
{
	for (;;) {
		if (n && strchr(" \t\n\v\f\r", s[0]) && s[0])
			s++, n--;
		else if (n >= 2 && (unsigned char)s[0] == 0xc2 &&
			 ((unsigned char)s[1] == 0x85 || (unsigned char)s[1] == 0xa0))
			s += 2, n -= 2;
		else
			break;
	}
	for (;;) {
		if (n && s[n - 1] && strchr(" \t\n\v\f\r", s[n - 1]))
			n--;
		else if (n >= 2 && (unsigned char)s[n - 2] == 0xc2 &&
			 ((unsigned char)s[n - 1] == 0x85 || (unsigned char)s[n - 1] == 0xa0))
			n -= 2;
		else
			break;
	}
	s[n] = '\0';
	return s;
}

/* One attribute: 1 read, 0 left out, or a negative errno that fails the
 * collector. */
static int read_attr(int dfd, const char *file, char *buf)
{
	int fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	ssize_t n;
	int err;

	if (fd < 0) {
		err = errno;
		goto fail;
	}
	n = read(fd, buf, PS_VALUE - 1);
	err = errno;
	close(fd);
	if (n >= 0) {
		buf[n] = '\0';
		return 1;
	}
fail:
	if (err == ENOENT || err == EOPNOTSUPP || err == EINVAL || err == ENODEV || err == ENODATA)
		return 0;
	return -err;
}

static int file_index(const char *name, int *is_str)
{
	for (size_t i = 0; i < NNUMS; i++)
		if (!strcmp(name, nums[i].file))
			return *is_str = 0, (int)i;
	for (size_t i = 0; i < NSTRS; i++)
		if (!strcmp(name, strs[i]))
			return *is_str = 1, (int)i;
	return -1;
}

static int read_supply(struct supply *s)
{
	char path[512], buf[PS_VALUE];
	struct dirent *de;
	DIR *d;
	int err = 0;

	snprintf(path, sizeof(path), "/sys/class/power_supply/%.255s", s->name);
	if (!(d = host_util__opendir(path)))
		return -errno;
	s->have = 0;
	memset(s->s, 0, sizeof(s->s));
	while (!err && (de = readdir(d))) {
		int is_str, k = file_index(de->d_name, &is_str), r;
		char *v;

		if (k < 0)
			continue;
		if (de->d_type == DT_UNKNOWN) {	/* some filesystems do not say */
			struct stat st;

			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
			    !S_ISREG(st.st_mode))
				continue;
		} else if (de->d_type != DT_REG) {
			continue;
		}
		r = read_attr(dirfd(d), de->d_name, buf);
		if (r <= 0) {
			err = r;
			continue;
		}
		v = trim(buf, strlen(buf));
		if (is_str) {
			strcpy(s->s[k], v);
		} else if (host_util__parse_go_int(v, &s->v[k])) {
			err = -EINVAL;	/* procfs's ValueParser error: no class at all */
		} else {
			s->have |= 1ull << k;
		}
	}
	closedir(d);
	return err;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct supply *)a)->name, ((const struct supply *)b)->name);
}

int host_powersupplyclass__collect(struct host_w *w)
{
	DIR *d = host_util__opendir("/sys/class/power_supply");
	struct dirent *de;
	int n = 0, err = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < PS_MAX) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    strlen(de->d_name) >= sizeof(sups[0].name))
			continue;
		strcpy(sups[n++].name, de->d_name);
	}
	closedir(d);
	if (!n)
		return -ENOENT;	/* no power supply (servers, VMs): success 0, as thermal_zone */
	qsort(sups, (size_t)n, sizeof(sups[0]), by_name);
	for (int i = 0; i < n && !err; i++)
		err = read_supply(&sups[i]);
	if (err)
		return err;
	for (size_t k = 0; k < NNUMS; k++) {
		char fam[80], help[128];
		int any = 0;

		if (!nums[k].family)
			continue;
		snprintf(fam, sizeof(fam), "node_power_supply_%s", nums[k].family);
		snprintf(help, sizeof(help), "%s value of /sys/class/power_supply/<power_supply>.",
			 nums[k].family);
		for (int i = 0; i < n; i++) {
			if (!(sups[i].have & (1ull << k)))
				continue;
			if (!any++)
				host_util__family(w, fam, HOST_GAUGE, help);
			host_util__begin(w, fam);
			host_util__label(w, "power_supply", sups[i].name);
			host_util__end(w, (double)sups[i].v[k] / nums[k].div);
		}
	}
	host_util__family(w, "node_power_supply_info", HOST_GAUGE,
			  "info of /sys/class/power_supply/<power_supply>.");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_power_supply_info");
		/* labels sorted: power_supply falls between model_name and scope */
		for (size_t k = 0; k < NSTRS; k++) {
			if (k == 5)
				host_util__label(w, "power_supply", sups[i].name);
			if (sups[i].s[k][0])
				host_util__label(w, strs[k], sups[i].s[k]);
		}
		host_util__end(w, 1);
	}
	return 0;
}
