/* bonding collector: configured and active (mii_status "up") slaves of
 * each bonding master in /sys/class/net/bonding_masters, as node_exporter
 * 1.5 counts them. A master whose slave list or a slave's status cannot
 * be read fails the collector, as there. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "host/collectors.h"

#define BOND_MAX 256

struct bond {
	char name[64];
	int slaves, active;
};

static struct bond bonds[BOND_MAX];

static int slave_up(const char *master, const char *slave, int *up)
{
	char path[256], buf[64];
	ssize_t n;

	/* lower_<slave> since 4.x; slave_<slave> before */
	snprintf(path, sizeof(path), "/sys/class/net/%.63s/lower_%.63s/bonding_slave/mii_status",
		 master, slave);
	n = host_util__read(NULL, path, buf, sizeof(buf));
	if (n == -ENOENT) {
		snprintf(path, sizeof(path), "/sys/class/net/%.63s/slave_%.63s/bonding_slave/mii_status",
			 master, slave);
		n = host_util__read(NULL, path, buf, sizeof(buf));
	}
	if (n < 0)
		return (int)n;
	*up = !strcmp(buf, "up\n") || !strcmp(buf, "up");
	if (!*up) {	/* TrimSpace */
		char *b = buf + strspn(buf, " \t\n\r");
		size_t l = strlen(b);

		while (l && strchr(" \t\n\r", b[l - 1]))
			l--;
		*up = l == 2 && !strncmp(b, "up", 2);
	}
	return 0;
}

int host_bonding__collect(struct host_w *w)
{
	static char masters[4096], slaves[4096];
	char *mf[BOND_MAX], *sf[512], path[256];
	int nm, n = 0;
	ssize_t len = host_util__read(NULL, "/sys/class/net/bonding_masters", masters, sizeof(masters));

	if (len < 0)
		return (int)len;
	for (char *c = masters; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	nm = host_util__fields(masters, mf, BOND_MAX);
	for (int i = 0; i < nm; i++) {
		struct bond *b = &bonds[n];
		int ns, err;

		snprintf(path, sizeof(path), "/sys/class/net/%.63s/bonding/slaves", mf[i]);
		if ((len = host_util__read(NULL, path, slaves, sizeof(slaves))) < 0)
			return (int)len;
		for (char *c = slaves; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		ns = host_util__fields(slaves, sf, 512);
		snprintf(b->name, sizeof(b->name), "%.63s", mf[i]);
		b->slaves = b->active = 0;
		for (int k = 0; k < ns; k++) {
			int up = 0;

			if ((err = slave_up(mf[i], sf[k], &up)))
				return err;
			b->slaves++;
			b->active += up;
		}
		n++;
	}
	host_util__family(w, "node_bonding_active", HOST_GAUGE,
			  "Number of active slaves per bonding interface.");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_bonding_active");
		host_util__label(w, "master", bonds[i].name);
		host_util__end(w, bonds[i].active);
	}
	host_util__family(w, "node_bonding_slaves", HOST_GAUGE,
			  "Number of configured slaves per bonding interface.");
	for (int i = 0; i < n; i++) {
		host_util__begin(w, "node_bonding_slaves");
		host_util__label(w, "master", bonds[i].name);
		host_util__end(w, bonds[i].slaves);
	}
	return 0;
}
