/* Docker's and podman's HTTP API over their unix sockets (the Docker-
 * compatible "GET /containers/<id>/json", which podman serves too): the
 * container's name and labels. libcurl (loaded only when such a container
 * is first looked up) with CURLOPT_UNIX_SOCKET_PATH and one timeout per
 * request, json-c for the answer; the same GET serves CRI-O (crio.c).
 * Identity worker thread only. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/otlp_curl.h"
#include "identity/runtime.h"
#include "util/log.h"

#define BODY_MAX (1024 * 1024)	/* an inspect answer is ~10 KiB; more is refused */

struct body {
	char *p;
	size_t n;
	bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb;
	char *p;

	if (b->n + len > BODY_MAX) {
		b->too_big = true;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	p = realloc(b->p, b->n + len + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, data, len);
	b->p = p;
	b->n += len;
	b->p[b->n] = 0;
	return len;
}

static struct otlp_curl api;
static int loaded;	/* 0 not tried, 1 loaded, -1 failed */

/* The inspect document's name (without Docker's leading '/') and labels. */
static int parse(const char *doc, size_t n, struct ident_k8s *k, char *name, size_t nn)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root, *v, *cfg, *labels;
	int rc = -EPROTO;

	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, doc, (int)n);
	json_tokener_free(tok);
	if (!root || !json_object_is_type(root, json_type_object))
		goto out;
	if (json_object_object_get_ex(root, "Name", &v) && json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);

		snprintf(name, nn, "%s", s[0] == '/' ? s + 1 : s);
	}
	if (json_object_object_get_ex(root, "Config", &cfg) &&
	    json_object_object_get_ex(cfg, "Labels", &labels) &&
	    json_object_is_type(labels, json_type_object)) {
		json_object_object_foreach(labels, key, val)
			if (json_object_is_type(val, json_type_string))
				ident__k8s_label(k, key, json_object_get_string(val));
	}
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

int runtime__http_get(const char *sock, const char *path, unsigned int timeout_ms, char **body,
		      size_t *n)
{
	char url[224], err[160];
	struct body b = { 0 };
	long status = 0;
	CURLcode cc;
	CURL *h;
	int rc;

	*body = NULL;
	*n = 0;
	if (loaded == 0) {
		loaded = otlp_curl__load(&api, err, sizeof(err)) == 0 &&
				 api.global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
		if (loaded < 0)
			log_warn("no Docker/podman/CRI-O lookups: libcurl unavailable", LS("error", err));
	}
	if (loaded < 0)
		return -ENOTSUP;
	if (!(h = api.easy_init()))
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	api.easy_setopt(h, CURLOPT_URL, url);
	api.easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	api.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	api.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	api.easy_setopt(h, CURLOPT_WRITEDATA, &b);
	cc = api.easy_perform(h);
	api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	api.easy_cleanup(h);
	if (cc == CURLE_COULDNT_CONNECT)
		rc = -EHOSTDOWN;
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		rc = -ETIMEDOUT;
	else if (cc != CURLE_OK)
		rc = b.too_big ? -EMSGSIZE : -EPROTO;
	else if (status == 404)
		rc = -ENOENT;
	else if (status != 200)
		rc = -EPROTO;
	else
		rc = 0;
	if (rc)
		free(b.p);
	else {
		*body = b.p;
		*n = b.n;
	}
	return rc;
}

int docker__lookup(const char *sock, const char *cid, struct ident_k8s *k, char *name, size_t nn,
		   unsigned int timeout_ms)
{
	char path[160], *doc;
	size_t n;
	int rc;

	snprintf(path, sizeof(path), "/v1.41/containers/%s/json", cid);
	if ((rc = runtime__http_get(sock, path, timeout_ms, &doc, &n)))
		return rc;
	rc = parse(doc ? doc : "", n, k, name, nn);
	free(doc);
	return rc;
}
