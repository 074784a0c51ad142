/* dlopen() of libcurl for the OTLP exporter (see otlp_curl.h for why). */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "export/otlp_curl.h"

int otlp_curl__load(struct otlp_curl *api, char *err, size_t errlen)
{
	/* the soname of Debian's libcurl4 (OpenSSL flavour) and of most distros */
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{ "curl_global_init", (void **)&api->global_init },
		{ "curl_global_cleanup", (void **)&api->global_cleanup },
		{ "curl_easy_init", (void **)&api->easy_init },
		{ "curl_easy_setopt", (void **)&api->easy_setopt },
		{ "curl_easy_perform", (void **)&api->easy_perform },
		{ "curl_easy_getinfo", (void **)&api->easy_getinfo },
		{ "curl_easy_cleanup", (void **)&api->easy_cleanup },
		{ "curl_easy_strerror", (void **)&api->easy_strerror },
		{ "curl_slist_append", (void **)&api->slist_append },
		{ "curl_slist_free_all", (void **)&api->slist_free_all },
	};

	if (!h) {
		snprintf(err, errlen, "cannot load libcurl.so.4 (install libcurl4): %s", dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(err, errlen, "libcurl.so.4 lacks %s", syms[i].name);
			return -ENOENT;
		}
	}
	return 0;
}
