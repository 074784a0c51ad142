/* The identity rules as pure functions: cgroup paths, the OTel environment,
 * the kubelet's labels, the pod's owner from its name, and service.name
 * precedence. No I/O; every output is bounded by its buffer. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "identity/identity.h"
#include "identity/runtime.h"

/* Copies n bytes of s into out (size cap) cut to fit, NUL-terminated. */
static void put(char *out, size_t cap, const char *s, size_t n)
{
	if (!cap)
		return;
	if (n > cap - 1)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = 0;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool starts(const char *s, size_t n, const char *p)
{
	size_t pn = strlen(p);

	return n >= pn && memcmp(s, p, pn) == 0;
}

static bool ends(const char *s, size_t n, const char *p)
{
	size_t pn = strlen(p);

	return n >= pn && memcmp(s + n - pn, p, pn) == 0;
}

/* A pod uid as the cgroup writes it: 36 characters, dashes (cgroupfs) or
 * underscores (systemd driver, where '-' separates slice levels). */
static bool take_uid(const char *s, size_t n, char *out)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '_')
			c = '-';
		if (!(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[n] = 0;
	return true;
}

/* One path component. Container ids are 64 lower-case hex digits. */
static void component(const char *c, size_t n, bool under_docker, struct ident_cgroup *g)
{
	static const struct { const char *prefix; enum ident_runtime rt; } scopes[] = {
		{ "cri-containerd-", IDENT_RT_CONTAINERD }, { "crio-", IDENT_RT_CRIO },
		{ "docker-", IDENT_RT_DOCKER }, { "libpod-", IDENT_RT_PODMAN },
	};
	const char *p;

	if (starts(c, n, "kubepods")) {
		g->kubepods = true;
		/* systemd driver: kubepods-<qos>-pod<uid>.slice, kubepods-pod<uid>.slice */
		if (ends(c, n, ".slice") && (p = memmem(c, n, "-pod", 4))) {
			const char *u = p + 4;
			size_t un = (size_t)(c + n - 6 - u);

			take_uid(u, un, g->pod_uid);
			if (p > c + 8 && c[8] == '-' && g->qos[0] == 0)
				put(g->qos, sizeof(g->qos), c + 9, (size_t)(p - c - 9));
		}
		return;
	}
	if (g->kubepods && starts(c, n, "pod")) {	/* cgroupfs driver: pod<uid> */
		take_uid(c + 3, n - 3, g->pod_uid);
		return;
	}
	if (g->kubepods && !g->pod_uid[0] && (n == 10 || n == 9) &&
	    (starts(c, n, "burstable") || starts(c, n, "besteffort"))) {
		put(g->qos, sizeof(g->qos), c, n);
		return;
	}
	for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
		size_t pn = strlen(scopes[i].prefix);

		if (starts(c, n, scopes[i].prefix) && n == pn + 64 + 6 && ends(c, n, ".scope") &&
		    is_hex(c + pn, 64)) {
			put(g->container_id, sizeof(g->container_id), c + pn, 64);
			g->runtime = scopes[i].rt;
			return;
		}
	}
	/* podman's cgroupfs manager: /libpod_parent/libpod-<id> */
	if (n == 7 + 64 && starts(c, n, "libpod-") && is_hex(c + 7, 64)) {
		put(g->container_id, sizeof(g->container_id), c + 7, 64);
		g->runtime = IDENT_RT_PODMAN;
		return;
	}
	/* cgroupfs drivers: the bare id */
	if (n == 64 && is_hex(c, 64)) {
		put(g->container_id, sizeof(g->container_id), c, 64);
		g->runtime = under_docker ? IDENT_RT_DOCKER : g->kubepods ? IDENT_RT_CONTAINERD : IDENT_RT_NONE;
		return;
	}
	if (ends(c, n, ".service") && n > 8 && !starts(c, n, "user@")) {
		put(g->unit, sizeof(g->unit), c, n);
		return;
	}
}

/* One cgroup path (from its leading '/'). */
static void path(const char *s, size_t n, struct ident_cgroup *g)
{
	bool docker = false;
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j < n && s[j] != '/')
			j++;
		if (j > i) {
			component(s + i, j - i, docker, g);
			docker = (j - i == 6 && memcmp(s + i, "docker", 6) == 0) ||
				 (j - i == 13 && memcmp(s + i, "libpod_parent", 13) == 0);
		}
		i = j + 1;
	}
}

bool ident__parse_cgroup(const char *buf, size_t n, struct ident_cgroup *out)
{
	struct ident_cgroup unit_only = { 0 };
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	while (i < n) {
		const char *line = buf + i, *nl = memchr(line, '\n', n - i);
		size_t len = nl ? (size_t)(nl - line) : n - i;
		const char *c1 = memchr(line, ':', len), *c2;
		struct ident_cgroup g = { 0 };

		i += len + 1;
		if (!c1 || !(c2 = memchr(c1 + 1, ':', (size_t)(line + len - c1 - 1))))
			continue;
		path(c2 + 1, (size_t)(line + len - c2 - 1), &g);
		if (g.container_id[0]) {
			*out = g;
			return true;
		}
		if (g.unit[0] && !unit_only.unit[0])
			unit_only = g;
	}
	*out = unit_only;
	return out->unit[0] != 0;
}

/* ---- environment ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A value of OTEL_RESOURCE_ATTRIBUTES, %XX-decoded, blanks around it
 * trimmed; a bad escape is kept as it is. */
static void decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		int h, l;

		if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = 0;
}

static void resource_attrs(const char *s, size_t n, struct ident_env *e, char *rname, size_t rcap)
{
	size_t i = 0;

	while (i < n) {
		const char *ent = s + i, *comma = memchr(ent, ',', n - i);
		size_t len = comma ? (size_t)(comma - ent) : n - i;
		const char *eq = memchr(ent, '=', len);
		char key[64];

		i += len + 1;
		if (!eq)
			continue;
		decode(ent, (size_t)(eq - ent), key, sizeof(key));
		if (strcmp(key, "service.name") == 0)
			decode(eq + 1, (size_t)(ent + len - eq - 1), rname, rcap);
		else if (strcmp(key, "service.namespace") == 0)
			decode(eq + 1, (size_t)(ent + len - eq - 1), e->service_namespace,
			       sizeof(e->service_namespace));
	}
}

void ident__parse_environ(const char *buf, size_t n, struct ident_env *out)
{
	char rname[IDENT_NAME_MAX] = "";
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	while (i < n) {
		const char *v = buf + i, *end = memchr(v, 0, n - i);
		size_t len = end ? (size_t)(end - v) : n - i;

		i += len + 1;
		if (starts(v, len, "OTEL_SERVICE_NAME="))
			decode(v + 18, len - 18, out->service_name, sizeof(out->service_name));
		else if (starts(v, len, "OTEL_RESOURCE_ATTRIBUTES="))
			resource_attrs(v + 25, len - 25, out, rname, sizeof(rname));
	}
	/* OTEL_SERVICE_NAME wins over service.name in the attributes, as in the SDKs */
	if (!out->service_name[0])
		memcpy(out->service_name, rname, sizeof(rname));
}

/* ---- Kubernetes ---- */

void ident__k8s_label(struct ident_k8s *k, const char *key, const char *value)
{
	static const struct { const char *key; size_t off, cap; bool kubelet; } map[] = {
#define F(key, field, kubelet) { key, offsetof(struct ident_k8s, field), \
				 sizeof(((struct ident_k8s *)0)->field), kubelet }
		F("io.kubernetes.pod.name", pod_name, true),
		F("io.kubernetes.pod.namespace", namespace, true),
		F("io.kubernetes.pod.uid", pod_uid, true),
		F("io.kubernetes.container.name", container_name, true),
		F("app.kubernetes.io/name", app_name, false),
		F("resource.opentelemetry.io/service.name", app_name, false),
		F("pod-template-hash", pod_template_hash, false),
		F("controller-revision-hash", revision_hash, false),
		F("statefulset.kubernetes.io/pod-name", statefulset_pod, false),
		F("job-name", job_name, false),
		F("batch.kubernetes.io/job-name", job_name, false),
#undef F
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(key, map[i].key) != 0)
			continue;
		/* the OTel annotation outranks app.kubernetes.io/name */
		if (map[i].off == offsetof(struct ident_k8s, app_name) && k->app_name[0] &&
		    strcmp(key, "app.kubernetes.io/name") == 0)
			return;
		put((char *)k + map[i].off, map[i].cap, value, strlen(value));
		if (map[i].kubelet)
			k->known = true;
		return;
	}
}

/* Kubernetes' generated suffixes use this alphabet (no vowels, no 0 1 3). */
static bool safe_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("bcdfghjklmnpqrstvwxz2456789", s[i]) || !s[i])
			return false;
	return n > 0;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* The last '-' of s[0..n), or NULL. */
static const char *last_dash(const char *s, size_t n)
{
	while (n--)
		if (s[n] == '-')
			return s + n;
	return NULL;
}

enum ident_owner ident__owner(const struct ident_k8s *k, char *name, size_t cap, char *job, size_t jcap)
{
	const char *pod = k->pod_name, *d1, *d2;
	size_t n = strlen(pod);

	name[0] = 0;
	if (job && jcap)
		job[0] = 0;
	if (!n)
		return IDENT_OWN_NONE;
	d1 = last_dash(pod, n);
	d2 = d1 ? last_dash(pod, (size_t)(d1 - pod)) : NULL;
	/* Labels, where the runtime shows the pod's, settle it. */
	if (k->job_name[0]) {
		const char *j = k->job_name, *jd = last_dash(j, strlen(j));

		if (job)
			put(job, jcap, j, strlen(j));
		if (jd && jd > j && strlen(jd + 1) >= 8 && digits(jd + 1, strlen(jd + 1))) {
			put(name, cap, j, (size_t)(jd - j));
			return IDENT_OWN_CRONJOB;
		}
		put(name, cap, j, strlen(j));
		return IDENT_OWN_JOB;
	}
	if (k->statefulset_pod[0] && d1 && digits(d1 + 1, n - (size_t)(d1 - pod) - 1)) {
		put(name, cap, pod, (size_t)(d1 - pod));
		return IDENT_OWN_STATEFULSET;
	}
	if (k->pod_template_hash[0] && d2 &&
	    (size_t)(d1 - d2 - 1) == strlen(k->pod_template_hash) &&
	    memcmp(d2 + 1, k->pod_template_hash, (size_t)(d1 - d2 - 1)) == 0) {
		put(name, cap, pod, (size_t)(d2 - pod));
		return IDENT_OWN_DEPLOYMENT;
	}
	if (k->revision_hash[0] && d1 && d1 > pod) {
		size_t sn = n - (size_t)(d1 - pod) - 1;

		put(name, cap, pod, (size_t)(d1 - pod));
		return digits(d1 + 1, sn) ? IDENT_OWN_STATEFULSET : IDENT_OWN_DAEMONSET;
	}
	/* The name alone: <deployment>-<replicaset hash>-<5>, <cronjob>-<minutes>-<5>,
	 * <statefulset>-<ordinal>, <daemonset or job>-<5>. */
	if (!d1 || d1 == pod)
		return IDENT_OWN_NONE;
	if (n - (size_t)(d1 - pod) - 1 == 5 && safe_chars(d1 + 1, 5)) {
		if (d2 && d2 > pod) {
			size_t hn = (size_t)(d1 - d2 - 1);

			if (hn >= 8 && digits(d2 + 1, hn)) {
				put(name, cap, pod, (size_t)(d2 - pod));
				if (job)
					put(job, jcap, pod, (size_t)(d1 - pod));
				return IDENT_OWN_CRONJOB;
			}
			if (hn >= 6 && hn <= 10 && safe_chars(d2 + 1, hn)) {
				put(name, cap, pod, (size_t)(d2 - pod));
				return IDENT_OWN_DEPLOYMENT;
			}
		}
		put(name, cap, pod, (size_t)(d1 - pod));
		return IDENT_OWN_DAEMONSET;
	}
	if (digits(d1 + 1, n - (size_t)(d1 - pod) - 1)) {
		put(name, cap, pod, (size_t)(d1 - pod));
		return IDENT_OWN_STATEFULSET;
	}
	return IDENT_OWN_NONE;
}

const char *ident__owner_kind(enum ident_owner o)
{
	switch (o) {
	case IDENT_OWN_DEPLOYMENT: return "deployment";
	case IDENT_OWN_REPLICASET: return "replicaset";
	case IDENT_OWN_STATEFULSET: return "statefulset";
	case IDENT_OWN_DAEMONSET: return "daemonset";
	case IDENT_OWN_JOB: return "job";
	case IDENT_OWN_CRONJOB: return "cronjob";
	default: return "";
	}
}

/* ---- precedence and attributes ---- */

const char *runtime__name(enum ident_runtime rt)
{
	switch (rt) {
	case IDENT_RT_CONTAINERD: return "containerd";
	case IDENT_RT_CRIO: return "cri-o";
	case IDENT_RT_DOCKER: return "docker";
	case IDENT_RT_PODMAN: return "podman";
	default: return "";
	}
}

/* Appends key and value to the blob; control characters in the value
 * (never in sonde's keys) become '_' so the separators stay unambiguous. */
static void attr(char *b, size_t cap, const char *key, const char *v)
{
	size_t o = strlen(b), kn = strlen(key), vn = strlen(v);

	if (!v[0] || o + kn + vn + 3 > cap)
		return;
	memcpy(b + o, key, kn);
	o += kn;
	b[o++] = IDENT_ATTR_SEP;
	for (size_t i = 0; i < vn; i++)
		b[o++] = (unsigned char)v[i] < 0x20 ? '_' : v[i];
	b[o++] = IDENT_ATTR_END;
	b[o] = 0;
}

void ident__derive(struct identity *id, const struct ident_env *env, const char *host)
{
	const struct ident_k8s *k = &id->k8s;
	const char *name = NULL;
	char unit[IDENT_NAME_MAX], key[48];
	size_t un;

	/* the systemd unit's name, without ".service" or a template's "@instance" */
	un = strlen(id->unit);
	if (un > 8 && strcmp(id->unit + un - 8, ".service") == 0)
		un -= 8;
	put(unit, sizeof(unit), id->unit, un);
	if (strchr(unit, '@'))
		*strchr(unit, '@') = 0;

	if (env && env->service_name[0])
		name = env->service_name;
	else if (k->app_name[0])
		name = k->app_name;
	else if (id->owner_name[0])
		name = id->owner_name;
	else if (k->container_name[0])
		name = k->container_name;
	else if (id->container_name[0])
		name = id->container_name;
	else if (unit[0])
		name = unit;
	else
		name = id->exe[0] ? id->exe : "unknown";
	put(id->service_name, sizeof(id->service_name), name, strlen(name));

	if (env && env->service_namespace[0])
		put(id->service_namespace, sizeof(id->service_namespace), env->service_namespace,
		    strlen(env->service_namespace));
	else
		put(id->service_namespace, sizeof(id->service_namespace), k->namespace, strlen(k->namespace));

	/* unique per instance of (service.namespace, service.name): the
	 * container in its pod, else the process on its host */
	if (k->pod_name[0] && k->container_name[0])
		snprintf(id->instance_id, sizeof(id->instance_id), "%s.%s.%s", k->namespace, k->pod_name,
			 k->container_name);
	else
		snprintf(id->instance_id, sizeof(id->instance_id), "%.64s:%u:%llu", host ? host : "",
			 id->tgid, id->start);

	id->attrs[0] = 0;
	attr(id->attrs, sizeof(id->attrs), "service.namespace", id->service_namespace);
	attr(id->attrs, sizeof(id->attrs), "service.instance.id", id->instance_id);
	attr(id->attrs, sizeof(id->attrs), "process.command", id->command);
	attr(id->attrs, sizeof(id->attrs), "k8s.namespace.name", k->namespace);
	attr(id->attrs, sizeof(id->attrs), "k8s.pod.name", k->pod_name);
	attr(id->attrs, sizeof(id->attrs), "k8s.pod.uid", k->pod_uid);
	attr(id->attrs, sizeof(id->attrs), "k8s.container.name", k->container_name);
	if (id->owner != IDENT_OWN_NONE) {
		snprintf(key, sizeof(key), "k8s.%s.name", ident__owner_kind(id->owner));
		attr(id->attrs, sizeof(id->attrs), key, id->owner_name);
	}
	if (id->owner == IDENT_OWN_CRONJOB || id->owner == IDENT_OWN_JOB)
		attr(id->attrs, sizeof(id->attrs), "k8s.job.name",
		     id->owner == IDENT_OWN_JOB ? "" : id->job_name);
	attr(id->attrs, sizeof(id->attrs), "container.id", id->container_id);
	attr(id->attrs, sizeof(id->attrs), "container.name", k->known ? "" : id->container_name);
	attr(id->attrs, sizeof(id->attrs), "container.runtime", runtime__name(id->runtime));
}
