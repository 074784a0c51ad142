/* libFuzzer target for the identity parsers (user/identity/parse.c): any
 * bytes as a /proc/<pid>/cgroup file, as an environ block, as a pod name
 * with labels, then the precedence rule over what came out. Nothing may
 * read past its input or write past its fields. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "identity/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ident_cgroup cg;
	struct ident_env env;
	struct identity id;
	char name[IDENT_NAME_MAX], job[IDENT_NAME_MAX], value[IDENT_NAME_MAX * 2];
	size_t vn = size < sizeof(value) - 1 ? size : sizeof(value) - 1;

	ident__parse_cgroup((const char *)data, size, &cg);
	ident__parse_environ((const char *)data, size, &env);
	memset(&id, 0, sizeof(id));
	memcpy(value, data, vn);
	value[vn] = 0;
	ident__k8s_label(&id.k8s, "io.kubernetes.pod.name", value);
	ident__k8s_label(&id.k8s, "pod-template-hash", value + vn / 2);
	ident__k8s_label(&id.k8s, "job-name", value + vn / 3);
	id.owner = ident__owner(&id.k8s, name, sizeof(name), job, sizeof(job));
	memcpy(id.container_id, cg.container_id, sizeof(id.container_id));
	memcpy(id.unit, cg.unit, sizeof(id.unit));
	memcpy(id.owner_name, name, sizeof(name));
	ident__derive(&id, &env, value);
	return 0;
}
