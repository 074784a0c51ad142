/* CRI-O's info socket (/var/run/crio/crio.sock; plain HTTP, the endpoints
 * crictl's inspect and cAdvisor use): "GET /containers/<id>" answers a
 * container's name, pid, image, labels, annotations and its sandbox's id;
 * the sandbox (the pod's infra container) answers the same way, with the
 * pod's own labels and annotations. Over runtime__http_get (libcurl) and
 * json-c. Identity worker thread only. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/runtime.h"

static struct json_object *get_doc(const char *sock, const char *id, unsigned int timeout_ms, int *rc)
{
	struct json_tokener *tok;
	struct json_object *root;
	char path[160], *doc;
	size_t n;

	snprintf(path, sizeof(path), "/containers/%s", id);
	if ((*rc = runtime__http_get(sock, path, timeout_ms, &doc, &n)))
		return NULL;
	tok = json_tokener_new();
	root = tok && doc ? json_tokener_parse_ex(tok, doc, (int)n) : NULL;
	if (tok)
		json_tokener_free(tok);
	free(doc);
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		*rc = tok ? -EPROTO : -ENOMEM;
		return NULL;
	}
	return root;
}

/* Every string of the object member key ("labels", "annotations") into k. */
static void take(struct json_object *root, const char *key, struct ident_k8s *k)
{
	struct json_object *obj;

	if (!json_object_object_get_ex(root, key, &obj) || !json_object_is_type(obj, json_type_object))
		return;
	json_object_object_foreach(obj, name, val)
		if (json_object_is_type(val, json_type_string))
			ident__k8s_label(k, name, json_object_get_string(val));
}

static const char *str(struct json_object *root, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(root, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "";
}

int crio__lookup(const char *sock, const char *cid, struct ident_k8s *k, char *name, size_t nn,
		 unsigned int timeout_ms)
{
	struct json_object *root, *sb;
	struct ident_k8s pod = { 0 };
	char sandbox[80];
	int rc;

	if (!(root = get_doc(sock, cid, timeout_ms, &rc)))
		return rc;
	snprintf(name, nn, "%s", str(root, "name"));
	take(root, "labels", k);
	snprintf(sandbox, sizeof(sandbox), "%s", str(root, "sandbox"));
	json_object_put(root);
	/* the pod's labels (app.kubernetes.io/name, pod-template-hash, ...)
	 * and annotations (resource.opentelemetry.io/service.name) sit on its
	 * sandbox; best effort: the container's answer stands without them */
	if (!k->known || !sandbox[0] || strcmp(sandbox, cid) == 0 ||
	    !(sb = get_doc(sock, sandbox, timeout_ms, &rc)))
		return 0;
	take(sb, "annotations", &pod);	/* first: the OTel annotation outranks the label */
	take(sb, "labels", &pod);
	json_object_put(sb);
	memcpy(k->app_name, pod.app_name, sizeof(k->app_name));
	memcpy(k->pod_template_hash, pod.pod_template_hash, sizeof(k->pod_template_hash));
	memcpy(k->revision_hash, pod.revision_hash, sizeof(k->revision_hash));
	memcpy(k->statefulset_pod, pod.statefulset_pod, sizeof(k->statefulset_pod));
	memcpy(k->job_name, pod.job_name, sizeof(k->job_name));
	return 0;
}
