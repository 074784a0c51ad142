/* thermal_zone collector: /sys/class/thermal, as node_exporter 1.5 reads
 * it: node_thermal_zone_temp{zone,type} (millidegrees → °C) and
 * node_cooling_device_{cur,max}_state{name,type}. A zone whose sensor does
 * not answer (ENODATA, EAGAIN) is skipped; a cooling device whose state
 * cannot be read fails the collector, as there. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

#define TZ_MAX 256

struct zone {
	char name[24], type[64];
	int64_t temp, cur, max;
};

static struct zone zones[TZ_MAX], cools[TZ_MAX];

static int read_str(const char *path, char *out, size_t size)
{
	char buf[128];
	ssize_t n = host_util__read(NULL, path, buf, sizeof(buf));
	size_t l;

	if (n < 0)
		return (int)n;
	l = strcspn(buf, "\n");
	if (l >= size)
		l = size - 1;
	memcpy(out, buf, l);
	out[l] = '\0';
	return 0;
}

static int read_i64(const char *path, int64_t *v)
{
	char buf[64], *end;
	ssize_t n = host_util__read(NULL, path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	buf[strcspn(buf, "\n")] = '\0';
	errno = 0;
	*v = strtoll(buf, &end, 10);
	return end == buf || *end || errno ? -EINVAL : 0;
}

static int by_name(const void *a, const void *b)
{
	const struct zone *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);

	return lx != ly ? (lx > ly) - (lx < ly) : strcmp(x->name, y->name);
}

/* Keeps name in out[*n] when it is "<prefix><N>". */
static void take(const char *name, const char *prefix, struct zone *out, int *n)
{
	if (*n < TZ_MAX && !strncmp(name, prefix, strlen(prefix)) && strlen(name) < sizeof(out[0].name))
		strcpy(out[(*n)++].name, name);
}

/* The thermal zones and cooling devices of /sys/class/thermal, each
 * sorted: one listing for both. */
static int list(int *nz, int *nc)
{
	DIR *d = host_util__opendir("/sys/class/thermal");
	struct dirent *de;

	if (!d)
		return -errno;
	*nz = *nc = 0;
	while ((de = readdir(d))) {
		take(de->d_name, "thermal_zone", zones, nz);
		take(de->d_name, "cooling_device", cools, nc);
	}
	closedir(d);
	qsort(zones, (size_t)*nz, sizeof(zones[0]), by_name);
	qsort(cools, (size_t)*nc, sizeof(cools[0]), by_name);
	return 0;
}

int host_thermal_zone__collect(struct host_w *w)
{
	char path[128];
	int nz = 0, nc = 0, kept = 0, err;

	if ((err = list(&nz, &nc)))
		return err;
	for (int i = 0; i < nz; i++) {
		struct zone *z = &zones[i];

		snprintf(path, sizeof(path), "/sys/class/thermal/%.23s/type", z->name);
		if ((err = read_str(path, z->type, sizeof(z->type))))
			return err;
		snprintf(path, sizeof(path), "/sys/class/thermal/%.23s/temp", z->name);
		err = read_i64(path, &z->temp);
		if (err == -ENODATA || err == -EAGAIN)
			continue;	/* a sensor that is not ready */
		if (err)
			return err;
		zones[kept++] = *z;
	}
	if (!nz && !nc)
		return -ENOENT;	/* no thermal hardware (VMs): success 0 */
	for (int i = 0; i < nc; i++) {
		struct zone *c = &cools[i];

		snprintf(path, sizeof(path), "/sys/class/thermal/%.23s/type", c->name);
		if ((err = read_str(path, c->type, sizeof(c->type))))
			return err;
		snprintf(path, sizeof(path), "/sys/class/thermal/%.23s/max_state", c->name);
		if ((err = read_i64(path, &c->max)))
			return err;
		snprintf(path, sizeof(path), "/sys/class/thermal/%.23s/cur_state", c->name);
		if ((err = read_i64(path, &c->cur)))
			return err;
	}
	if (kept) {
		host_util__family(w, "node_thermal_zone_temp", HOST_GAUGE, "Zone temperature in Celsius");
		for (int i = 0; i < kept; i++) {
			host_util__begin(w, "node_thermal_zone_temp");
			host_util__label(w, "type", zones[i].type);
			host_util__label(w, "zone", zones[i].name + strlen("thermal_zone"));
			host_util__end(w, (double)zones[i].temp / 1000.0);
		}
	}
	if (nc) {
		host_util__family(w, "node_cooling_device_cur_state", HOST_GAUGE,
				  "Current throttle state of the cooling device");
		for (int i = 0; i < nc; i++) {
			host_util__begin(w, "node_cooling_device_cur_state");
			host_util__label(w, "name", cools[i].name + strlen("cooling_device"));
			host_util__label(w, "type", cools[i].type);
			host_util__end(w, (double)cools[i].cur);
		}
		host_util__family(w, "node_cooling_device_max_state", HOST_GAUGE,
				  "Maximum throttle state of the cooling device");
		for (int i = 0; i < nc; i++) {
			host_util__begin(w, "node_cooling_device_max_state");
			host_util__label(w, "name", cools[i].name + strlen("cooling_device"));
			host_util__label(w, "type", cools[i].type);
			host_util__end(w, (double)cools[i].max);
		}
	}
	return 0;
}
