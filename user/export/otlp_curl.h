/* libcurl, loaded with dlopen() only when OTLP export is configured: linking
 * it would map libcurl and its TLS/Kerberos/LDAP/SSH dependencies (~3.3 MiB
 * of RSS, ~2 MiB more once curl_global_init has set OpenSSL up) into every
 * agent, including the many that never export. */
#ifndef SONDE_EXPORT_OTLP_CURL_H
#define SONDE_EXPORT_OTLP_CURL_H

#include <curl/curl.h>

struct otlp_curl {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode c);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

/* Fills api from libcurl.so.4 (once per process; the library stays loaded).
 * 0, or -ENOENT with the reason in err. */
int otlp_curl__load(struct otlp_curl *api, char *err, size_t errlen);
/* Whether otlp_curl__load would succeed, asked of a forked child so that
 * this process does not map libcurl yet (call while single-threaded). When
 * no child can be made, loads it here. 0, or -ENOENT with the reason. */
int otlp_curl__probe(char *err, size_t errlen);

#endif
