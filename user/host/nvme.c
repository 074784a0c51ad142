/* nvme collector: node_nvme_info{device,firmware_revision,model,serial,
 * state} from /sys/class/nvme/<device>/, as node_exporter 1.5 exports it;
 * a controller whose attributes cannot be read fails the collector. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

#define NVME_MAX 256

struct nvme {
	char dev[32], attr[4][128];	/* serial, model, state, firmware_rev */
};

static struct nvme ctrls[NVME_MAX];

static int by_dev(const void *a, const void *b)
{
	return strcmp(((const struct nvme *)a)->dev, ((const struct nvme *)b)->dev);
}

int host_nvme__collect(struct host_w *w)
{
	static const char *const files[4] = { "serial", "model", "state", "firmware_rev" };
	DIR *d = host_util__opendir("/sys/class/nvme");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < NVME_MAX) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(ctrls[0].dev))
			continue;
		strcpy(ctrls[n].dev, de->d_name);
		for (int k = 0; k < 4; k++) {
			char path[128], buf[256], *b;
			ssize_t len;

			snprintf(path, sizeof(path), "/sys/class/nvme/%s/%s", ctrls[n].dev, files[k]);
			if ((len = host_util__read(NULL, path, buf, sizeof(buf))) < 0) {
				closedir(d);
				return (int)len;
			}
			for (b = buf; *b == ' ' || *b == '\t' || *b == '\n'; b++)	/* TrimSpace */
				;
			while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t' || buf[len - 1] == '\n'))
				buf[--len] = '\0';
			snprintf(ctrls[n].attr[k], sizeof(ctrls[n].attr[k]), "%.127s", b);
		}
		n++;
	}
	closedir(d);
	if (!n)
		return -ENOENT;
	qsort(ctrls, (size_t)n, sizeof(ctrls[0]), by_dev);
	host_util__family(w, "node_nvme_info", HOST_GAUGE,
			  "Non-numeric data from /sys/class/nvme/<device>, value is always 1.");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_nvme_info");
		host_util__label(w, "device", ctrls[i].dev);
		host_util__label(w, "firmware_revision", ctrls[i].attr[3]);
		host_util__label(w, "model", ctrls[i].attr[1]);
		host_util__label(w, "serial", ctrls[i].attr[0]);
		host_util__label(w, "state", ctrls[i].attr[2]);
		host_util__end(w, 1);
	}
	return 0;
}
