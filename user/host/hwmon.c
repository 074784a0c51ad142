/* hwmon collector: the sensors of /sys/class/hwmon/hwmon* (and of each
 * one's device directory) named, scaled and labelled as node_exporter 1.5
 * does: node_hwmon_temp_celsius{chip,sensor}, _fan_rpm, _in_volts, ...,
 * node_hwmon_chip_names{chip,chip_name}, node_hwmon_sensor_label{chip,
 * sensor,label}. The chip label comes from the device's sysfs path (stable
 * across reboots), else from the "name" file, else hwmonN. Sensor files
 * are sysfs-interface.rst's <type><n>_<item>. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/collectors.h"
#include "host/textfile.h"

#define HW_SENSORS 512		/* per chip */
#define HW_PROPS 24		/* per sensor */
#define HW_RECORDS 8192		/* samples per scrape */

static const char *const types[] = { "vrm", "beep_enable", "update_interval", "in", "cpu", "fan",
				     "pwm", "temp", "curr", "power", "energy", "humidity", "intrusion" };

struct prop {
	char name[40], value[72];
};

struct sensor {
	char key[48], type[20];
	int nprops;
	struct prop props[HW_PROPS];
};

struct record {
	char family[96], help[160], chip[128], sensor[48], extra[72];
	const char *extra_key;	/* "label", "chip_name" or NULL */
	enum host_type type;
	double v;
	int seq;
};

static struct sensor sensors[HW_SENSORS];
static struct record recs[HW_RECORDS];
static int nrecs;

/* cleanMetricName: lower case, [^a-z0-9:_] → '_', '_' trimmed at both ends. */
static void clean(const char *in, size_t n, char *out, size_t size)
{
	size_t o = 0, start;

	for (size_t i = 0; i < n && o + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		/* a multi-byte UTF-8 character is one '_' in Go */
		if (c >= 0x80) {
			while (i + 1 < n && ((unsigned char)in[i + 1] & 0xc0) == 0x80)
				i++;
			c = '_';
		}
		out[o++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '_' ?
			   (char)c : '_';
	}
	out[o] = '\0';
	for (start = 0; out[start] == '_'; start++)
		;
	memmove(out, out + start, o - start + 1);
	o -= start;
	while (o && out[o - 1] == '_')
		out[--o] = '\0';
}

/* ^([^0-9]+)([0-9]*)?(_(.+))?$ with a known type. */
static int explode(const char *name, char *type, size_t tsize, long *num, const char **prop)
{
	size_t t = strcspn(name, "0123456789");
	const char *p = name + t;
	char *end;

	if (t == 0 || t >= tsize)
		return 0;
	memcpy(type, name, t);
	type[t] = '\0';
	*num = 0;
	if (*p >= '0' && *p <= '9') {
		*num = strtol(p, &end, 10);
		p = end;
	}
	*prop = "";
	if (*p == '_' && p[1])
		*prop = p + 1;
	else if (*p)
		return 0;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(type, types[i]))
			return 1;
	return 0;
}

static int collect_dir(const char *canon, int n)
{
	DIR *d = host_util__opendir(canon);
	struct dirent *de;

	if (!d)
		return n;
	while ((de = readdir(d))) {
		char type[20], key[48], path[512], buf[128];
		const char *prop;
		long num;
		int s;
		ssize_t len;

		if (!explode(de->d_name, type, sizeof(type), &num, &prop) || strlen(prop) >= sizeof(sensors[0].props[0].name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", canon, de->d_name);
		if ((len = host_util__read(NULL, path, buf, sizeof(buf))) < 0)
			continue;
		while (len && buf[len - 1] == '\n')	/* strings.Trim(raw, "\n") */
			buf[--len] = '\0';
		snprintf(key, sizeof(key), "%s%ld", type, num);
		for (s = 0; s < n && strcmp(sensors[s].key, key); s++)
			;
		if (s == n) {
			if (n == HW_SENSORS)
				continue;
			snprintf(sensors[s].key, sizeof(sensors[s].key), "%s", key);
			snprintf(sensors[s].type, sizeof(sensors[s].type), "%s", type);
			sensors[s].nprops = 0;
			n++;
		}
		{
			struct sensor *S = &sensors[s];
			int k;

			for (k = 0; k < S->nprops && strcmp(S->props[k].name, prop); k++)
				;
			if (k == S->nprops) {
				if (S->nprops == HW_PROPS)
					continue;
				S->nprops++;
			}
			snprintf(S->props[k].name, sizeof(S->props[k].name), "%s", prop);
			snprintf(S->props[k].value, sizeof(S->props[k].value), "%.71s", buf);
		}
	}
	closedir(d);
	return n;
}

static const char *prop_value(const struct sensor *s, const char *name)
{
	for (int k = 0; k < s->nprops; k++)
		if (!strcmp(s->props[k].name, name))
			return s->props[k].value;
	return NULL;
}

static void add(const char *family, const char *help, enum host_type type, const char *chip,
		const char *sensor, const char *extra_key, const char *extra, double v)
{
	struct record *r;

	if (nrecs == HW_RECORDS)
		return;
	r = &recs[nrecs];
	snprintf(r->family, sizeof(r->family), "%s", family);
	snprintf(r->help, sizeof(r->help), "%s", help);
	snprintf(r->chip, sizeof(r->chip), "%s", chip);
	snprintf(r->sensor, sizeof(r->sensor), "%s", sensor ? sensor : "");
	snprintf(r->extra, sizeof(r->extra), "%s", extra ? extra : "");
	r->extra_key = extra_key;
	r->type = type;
	r->v = v;
	r->seq = nrecs++;
}

static int parse(const char *s, double *v)
{
	return textfile__parse_float(s, strlen(s), v) == 0;
}

/* One property of one sensor, as node_exporter names and scales it. */
static void property(const char *chip, const struct sensor *s, const struct prop *p)
{
	char name[96], help[160], el[48];
	const char *t = s->type, *e = p->name;
	double v;

	if (!strcmp(e, "label") || !parse(p->value, &v))
		return;
	snprintf(name, sizeof(name), "node_hwmon_%s", t);
	if (!strcmp(e, "input")) {
		if (prop_value(s, ""))
			strncat(name, "_input", sizeof(name) - strlen(name) - 1);
	} else if (*e) {
		clean(e, strlen(e), el, sizeof(el));
		strncat(name, "_", sizeof(name) - strlen(name) - 1);
		strncat(name, el, sizeof(name) - strlen(name) - 1);
	}
#define SUFFIX(sfx) strncat(name, sfx, sizeof(name) - strlen(name) - 1)
	if (!strcmp(e, "fault") || !strcmp(e, "alarm")) {
		snprintf(help, sizeof(help), "Hardware sensor %s status (%s)", e, t);
	} else if (!strcmp(e, "beep")) {
		SUFFIX("_enabled");
		snprintf(help, sizeof(help), "Hardware monitor sensor has beeping enabled");
	} else if (!strcmp(t, "in") || !strcmp(t, "cpu")) {
		SUFFIX("_volts");
		snprintf(help, sizeof(help), "Hardware monitor for voltage (%s)", e);
		v *= 0.001;
	} else if (!strcmp(t, "temp") && strcmp(e, "type")) {
		SUFFIX("_celsius");
		snprintf(help, sizeof(help), "Hardware monitor for temperature (%s)", e);
		v *= 0.001;
	} else if (!strcmp(t, "curr")) {
		SUFFIX("_amps");
		snprintf(help, sizeof(help), "Hardware monitor for current (%s)", e);
		v *= 0.001;
	} else if (!strcmp(t, "energy")) {
		SUFFIX("_joule_total");
		snprintf(help, sizeof(help), "Hardware monitor for joules used so far (%s)", e);
		add(name, help, HOST_COUNTER, chip, s->key, NULL, NULL, v / 1000000.0);
		return;
	} else if (!strcmp(t, "power") && !strcmp(e, "accuracy")) {
		snprintf(help, sizeof(help), "Hardware monitor power meter accuracy, as a ratio");
		v /= 1000000.0;
	} else if (!strcmp(t, "power") && (!strcmp(e, "average_interval") || !strcmp(e, "average_interval_min") ||
					  !strcmp(e, "average_interval_max"))) {
		SUFFIX("_seconds");
		snprintf(help, sizeof(help), "Hardware monitor power usage update interval (%s)", e);
		v *= 0.001;
	} else if (!strcmp(t, "power")) {
		SUFFIX("_watt");
		snprintf(help, sizeof(help), "Hardware monitor for power usage in watts (%s)", e);
		v /= 1000000.0;
	} else if (!strcmp(t, "humidity")) {
		snprintf(help, sizeof(help),
			 "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) (%s)",
			 e);
		v /= 1000000.0;
	} else if (!strcmp(t, "fan") && (!strcmp(e, "input") || !strcmp(e, "min") || !strcmp(e, "max") ||
					!strcmp(e, "target"))) {
		SUFFIX("_rpm");
		snprintf(help, sizeof(help), "Hardware monitor for fan revolutions per minute (%s)", e);
	} else {
		snprintf(help, sizeof(help), "Hardware monitor %s element %s", t, e);
	}
#undef SUFFIX
	add(name, help, HOST_GAUGE, chip, s->key, NULL, NULL, v);
}

/* The chip label: "<bus>_<device>" from the device link, else the name
 * file, else hwmonN itself. */
static int chip_of(const char *canon, char *chip, size_t size, char *human, size_t hsize)
{
	char path[512], real[PATH_MAX], buf[128], *slash;
	ssize_t n;

	human[0] = '\0';
	snprintf(path, sizeof(path), "%s/name", canon);
	n = host_util__read(NULL, path, buf, sizeof(buf));
	if (n > 0)
		clean(buf, (size_t)n, human, hsize);
	snprintf(path, sizeof(path), "%s/device", canon);
	if (realpath(host_util__path(path, (char[512]){ 0 }, 512), real) && (slash = strrchr(real, '/'))) {
		char dev[128], bus[128], *b;

		clean(slash + 1, strlen(slash + 1), dev, sizeof(dev));
		*slash = '\0';
		b = strrchr(real, '/');
		clean(b ? b + 1 : real, strlen(b ? b + 1 : real), bus, sizeof(bus));
		if (*bus && *dev) {
			snprintf(chip, size, "%.60s_%.60s", bus, dev);
			return 0;
		}
		if (*dev) {
			snprintf(chip, size, "%s", dev);
			return 0;
		}
	}
	if (*human) {
		snprintf(chip, size, "%s", human);
		return 0;
	}
	if (realpath(host_util__path(canon, (char[512]){ 0 }, 512), real) && (slash = strrchr(real, '/'))) {
		clean(slash + 1, strlen(slash + 1), chip, size);
		if (*chip)
			return 0;
	}
	return -ENOENT;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct record *x = a, *y = b;
	int c = strcmp(x->family, y->family);

	return c ? c : x->seq - y->seq;
}

int host_hwmon__collect(struct host_w *w)
{
	DIR *d = host_util__opendir("/sys/class/hwmon");
	struct dirent *de;
	int chips = 0;

	if (!d)
		return -errno;
	nrecs = 0;
	while ((de = readdir(d))) {
		char canon[320], chip[128], human[128], real[512];
		struct stat st;
		int n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(canon, sizeof(canon), "/sys/class/hwmon/%.200s", de->d_name);
		if (stat(host_util__path(canon, real, sizeof(real)), &st) || !S_ISDIR(st.st_mode))
			continue;
		if (chip_of(canon, chip, sizeof(chip), human, sizeof(human)))
			continue;
		chips++;
		n = collect_dir(canon, 0);
		{
			char dev[340];

			snprintf(dev, sizeof(dev), "%s/device", canon);
			if (stat(host_util__path(dev, real, sizeof(real)), &st) == 0)
				n = collect_dir(dev, n);
		}
		if (*human)
			add("node_hwmon_chip_names", "Annotation metric for human-readable chip names", HOST_GAUGE,
			    chip, NULL, "chip_name", human, 1);
		for (int s = 0; s < n; s++) {
			const struct sensor *S = &sensors[s];
			const char *label = prop_value(S, "label"), *raw = prop_value(S, "");
			double v;

			if (label)
				add("node_hwmon_sensor_label", "Label for given chip and sensor", HOST_GAUGE, chip,
				    S->key, "label", label, 1);
			if (!strcmp(S->type, "beep_enable")) {
				add("node_hwmon_beep_enabled", "Hardware beep enabled", HOST_GAUGE, chip, S->key,
				    NULL, NULL, raw && !strcmp(raw, "1"));
				continue;
			}
			if (!strcmp(S->type, "vrm")) {
				if (raw && parse(raw, &v))
					add("node_hwmon_voltage_regulator_version", "Hardware voltage regulator",
					    HOST_GAUGE, chip, S->key, NULL, NULL, v);
				continue;
			}
			if (!strcmp(S->type, "update_interval")) {
				if (raw && parse(raw, &v))
					add("node_hwmon_update_interval_seconds", "Hardware monitor update interval",
					    HOST_GAUGE, chip, S->key, NULL, NULL, v * 0.001);
				continue;
			}
			for (int k = 0; k < S->nprops; k++)
				property(chip, S, &S->props[k]);
		}
	}
	closedir(d);
	if (!chips)
		return -ENOENT;	/* no sensors (VMs): success 0 */
	qsort(recs, (size_t)nrecs, sizeof(recs[0]), rec_cmp);
	for (int i = 0; i < nrecs; i++) {
		const struct record *r = &recs[i];

		if (!i || strcmp(r->family, recs[i - 1].family))
			host_util__family(w, r->family, r->type, r->help);
		host_util__begin(w, r->family);
		host_util__label(w, "chip", r->chip);
		if (r->extra_key && !strcmp(r->extra_key, "chip_name")) {
			host_util__label(w, "chip_name", r->extra);
		} else {
			if (r->extra_key)
				host_util__label(w, r->extra_key, r->extra);
			host_util__label(w, "sensor", r->sensor);
		}
		host_util__end(w, r->v);
	}
	return 0;
}
