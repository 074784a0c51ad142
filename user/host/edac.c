/* edac collector: correctable and uncorrectable memory errors per memory
 * controller and csrow from /sys/devices/system/edac/mc, as node_exporter
 * 1.5 exports them (errors the driver cannot place go to csrow="unknown"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

#define EDAC_ROWS 4096

struct row {
	char mc[12], csrow[16];
	uint64_t ce, ue;
};

static struct row mcs[256], rows[EDAC_ROWS];

static int numbered(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(name, prefix, n) && name[n] && strspn(name + n, "0123456789") == strlen(name + n);
}

static void emit(struct host_w *w, const char *name, const char *help, const struct row *r, int n,
		 int ue, int with_row)
{
	host_util__family(w, name, HOST_COUNTER, help);
	for (int i = 0; i < n; i++) {
		host_util__begin(w, name);
		host_util__label(w, "controller", r[i].mc);
		if (with_row)
			host_util__label(w, "csrow", r[i].csrow);
		host_util__end_u64(w, ue ? r[i].ue : r[i].ce);
	}
}

int host_edac__collect(struct host_w *w)
{
	DIR *d = host_util__opendir("/sys/devices/system/edac/mc");
	struct dirent *de;
	char path[160];
	int nm = 0, nr = 0, err;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && nm < 256) {
		struct row *m = &mcs[nm], *unk;
		char base[96];
		DIR *c;
		struct dirent *ce;

		if (!numbered(de->d_name, "mc") || strlen(de->d_name) > 10)
			continue;
		snprintf(m->mc, sizeof(m->mc), "%s", de->d_name + 2);
		snprintf(base, sizeof(base), "/sys/devices/system/edac/mc/%s", de->d_name);
		snprintf(path, sizeof(path), "%s/ce_count", base);
		if ((err = host_util__read_u64(NULL, path, &m->ce)))
			goto fail;
		snprintf(path, sizeof(path), "%s/ue_count", base);
		if ((err = host_util__read_u64(NULL, path, &m->ue)))
			goto fail;
		if (nr == EDAC_ROWS)
			continue;
		unk = &rows[nr];
		snprintf(unk->mc, sizeof(unk->mc), "%s", m->mc);
		strcpy(unk->csrow, "unknown");
		snprintf(path, sizeof(path), "%s/ce_noinfo_count", base);
		if ((err = host_util__read_u64(NULL, path, &unk->ce)))
			goto fail;
		snprintf(path, sizeof(path), "%s/ue_noinfo_count", base);
		if ((err = host_util__read_u64(NULL, path, &unk->ue)))
			goto fail;
		nr++;
		nm++;
		if (!(c = host_util__opendir(base)))
			continue;
		while ((ce = readdir(c)) && nr < EDAC_ROWS) {
			struct row *r = &rows[nr];

			if (!numbered(ce->d_name, "csrow") || strlen(ce->d_name) > 15)
				continue;
			snprintf(r->mc, sizeof(r->mc), "%s", m->mc);
			snprintf(r->csrow, sizeof(r->csrow), "%s", ce->d_name + 5);
			snprintf(path, sizeof(path), "%s/%s/ce_count", base, ce->d_name);
			if ((err = host_util__read_u64(NULL, path, &r->ce)))
				break;
			snprintf(path, sizeof(path), "%s/%s/ue_count", base, ce->d_name);
			if ((err = host_util__read_u64(NULL, path, &r->ue)))
				break;
			nr++;
		}
		closedir(c);
		if (err)
			goto fail;
	}
	closedir(d);
	if (!nm)
		return -ENOENT;	/* no EDAC driver loaded: success 0 */
	emit(w, "node_edac_correctable_errors_total", "Total correctable memory errors.", mcs, nm, 0, 0);
	emit(w, "node_edac_uncorrectable_errors_total", "Total uncorrectable memory errors.", mcs, nm, 1, 0);
	emit(w, "node_edac_csrow_correctable_errors_total", "Total correctable memory errors for this csrow.",
	     rows, nr, 0, 1);
	emit(w, "node_edac_csrow_uncorrectable_errors_total",
	     "Total uncorrectable memory errors for this csrow.", rows, nr, 1, 1);
	return 0;
fail:
	closedir(d);
	return err;
}
