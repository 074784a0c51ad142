/* os collector: node_os_info and node_os_version from os-release(5). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/collectors.h"

/* The keys, in label order, and their label names. */
static const char *const keys[] = { "BUILD_ID", "ID", "ID_LIKE", "IMAGE_ID", "IMAGE_VERSION",
				    "NAME", "PRETTY_NAME", "VARIANT", "VARIANT_ID", "VERSION",
				    "VERSION_CODENAME", "VERSION_ID" };
static const char *const labels[] = { "build_id", "id", "id_like", "image_id", "image_version",
				      "name", "pretty_name", "variant", "variant_id", "version",
				      "version_codename", "version_id" };
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Shell-style value: unquoted, "double" (backslash escapes) or 'single'. */
static void unquote(char *v)
{
	char *o = v, q = 0;

	for (char *p = v; *p; p++) {
		if (!q && (*p == '"' || *p == '\'')) {
			q = *p;
		} else if (q && *p == q) {
			q = 0;
		} else if (q != '\'' && *p == '\\' && p[1]) {
			*o++ = *++p;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

int host_os__collect(struct host_w *w)
{
	static int fd_etc = -1, fd_usr = -1;
	static char buf[8192];
	const char *val[NKEYS];
	char *cur = buf, *line;
	double version = 0;
	size_t i;

	if (host_util__read(&fd_etc, "/etc/os-release", buf, sizeof(buf)) < 0 &&
	    host_util__read(&fd_usr, "/usr/lib/os-release", buf, sizeof(buf)) < 0)
		return -ENOENT;
	for (i = 0; i < NKEYS; i++)
		val[i] = "";
	while ((line = host_util__line(&cur))) {
		char *eq = strchr(line, '=');

		if (!eq || line[0] == '#')
			continue;
		*eq = '\0';
		for (i = 0; i < NKEYS; i++)
			if (!strcmp(line, keys[i])) {
				unquote(eq + 1);
				val[i] = eq + 1;
			}
	}
	host_util__family(w, "node_os_info", HOST_GAUGE,
			  "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.");
	host_util__begin(w, "node_os_info");
	for (i = 0; i < NKEYS; i++)
		host_util__label(w, labels[i], val[i]);
	host_util__end(w, 1);

	/* major.minor of VERSION_ID ("22.04.3" → 22.04), 0 if it has none */
	{
		const char *v = val[11];
		char num[32];
		size_t n = strspn(v, "0123456789");

		if (n && v[n] == '.')
			n += 1 + strspn(v + n + 1, "0123456789");
		if (n && n < sizeof(num)) {
			memcpy(num, v, n);
			num[n] = '\0';
			version = strtod(num, NULL);
		}
	}
	host_util__family(w, "node_os_version", HOST_GAUGE,
			  "Metric containing the major.minor part of the OS version.");
	host_util__begin(w, "node_os_version");
	host_util__label(w, "id", val[1]);
	host_util__label(w, "id_like", val[2]);
	host_util__label(w, "name", val[5]);
	host_util__end(w, version);
	return 0;
}
