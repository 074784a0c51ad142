/* dlopen() of libcurl for the OTLP exporter (see otlp_curl.h for why). */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

int otlp_curl__probe(char *err, size_t errlen)
{
	int pfd[2], st = 0;
	ssize_t n = 0;
	pid_t pid;

	if (pipe(pfd))
		goto here;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		goto here;
	}
	if (pid == 0) {
		struct otlp_curl api;
		char e[256];
		int rc = otlp_curl__load(&api, e, sizeof(e));

		if (rc && write(pfd[1], e, strlen(e)) < 0)
			rc = -EIO;
		_exit(rc ? 1 : 0);
	}
	close(pfd[1]);
	if (errlen) {
		do
			n = read(pfd[0], err, errlen - 1);
		while (n < 0 && errno == EINTR);
		err[n > 0 ? n : 0] = 0;
	}
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (errlen && !err[0])
		snprintf(err, errlen, "cannot load libcurl.so.4 (the probe process failed)");
	return -ENOENT;
here:
	/* no child to ask: load it here (and pay for it now) */
	{
		static struct otlp_curl api;

		return otlp_curl__load(&api, err, errlen);
	}
}
