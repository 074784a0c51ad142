/* Who a process is: its service name and namespace, Kubernetes pod and
 * owner, container, systemd unit. Resolved once per process (tgid and start
 * time) from /proc/<pid>/cgroup, /proc/<pid>/environ and, for containers,
 * the container runtime's own API (never the Kubernetes API server); cached,
 * dropped at exit. The parsers are pure functions over their input. */
#ifndef SONDE_IDENTITY_H
#define SONDE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENT_NAME_MAX 128	/* service, pod, owner, unit (cut to fit) */
#define IDENT_SHORT_MAX 64	/* namespaces, container name, exe */
#define IDENT_CID_MAX 72	/* a container id: 64 hex digits */
#define IDENT_UID_MAX 40	/* a pod uid: 36 */
#define IDENT_ATTRS_MAX 1536	/* the OTLP resource blob */

/* Which runtime the cgroup path names. Numbered for good. */
enum ident_runtime {
	IDENT_RT_NONE = 0,
	IDENT_RT_CONTAINERD = 1,	/* cri-containerd-<id>.scope, or a bare id under kubepods */
	IDENT_RT_CRIO = 2,		/* crio-<id>.scope */
	IDENT_RT_DOCKER = 3,		/* docker-<id>.scope, /docker/<id> */
	IDENT_RT_PODMAN = 4,		/* libpod-<id>.scope, /libpod_parent/libpod-<id> */
};

/* What a /proc/<pid>/cgroup file says. */
struct ident_cgroup {
	enum ident_runtime runtime;
	bool kubepods;			/* under a kubepods hierarchy */
	char container_id[IDENT_CID_MAX];	/* "" when not a container */
	char pod_uid[IDENT_UID_MAX];	/* with dashes; "" when not a pod */
	char qos[16];			/* "guaranteed", "burstable", "besteffort" ("" = guaranteed) */
	char unit[IDENT_NAME_MAX];	/* "nginx.service"; "" when none */
};

/* What a process declares in its environment. */
struct ident_env {
	char service_name[IDENT_NAME_MAX];	/* OTEL_SERVICE_NAME, else service.name of
						 * OTEL_RESOURCE_ATTRIBUTES; "" when neither */
	char service_namespace[IDENT_SHORT_MAX];	/* service.namespace of OTEL_RESOURCE_ATTRIBUTES */
};

/* Kubernetes facts from the runtime's labels (the kubelet's io.kubernetes.*
 * on the container, the pod's own labels on its sandbox). */
struct ident_k8s {
	char pod_name[IDENT_NAME_MAX];
	char namespace[IDENT_SHORT_MAX];
	char pod_uid[IDENT_UID_MAX];
	char container_name[IDENT_SHORT_MAX];
	char app_name[IDENT_NAME_MAX];	/* app.kubernetes.io/name, "" when not exposed */
	/* pod labels that tell the owner apart; "" when not exposed */
	char pod_template_hash[32];	/* Deployment's ReplicaSet */
	char revision_hash[IDENT_SHORT_MAX];	/* controller-revision-hash: StatefulSet, DaemonSet */
	char statefulset_pod[IDENT_NAME_MAX];	/* statefulset.kubernetes.io/pod-name */
	char job_name[IDENT_NAME_MAX];	/* job-name / batch.kubernetes.io/job-name */
	bool known;			/* the runtime answered with the kubelet's labels */
};

/* The owner of a pod. Numbered for good. */
enum ident_owner {
	IDENT_OWN_NONE = 0,
	IDENT_OWN_DEPLOYMENT = 1,
	IDENT_OWN_REPLICASET = 2,	/* a hash-suffixed ReplicaSet without a Deployment pattern */
	IDENT_OWN_STATEFULSET = 3,
	IDENT_OWN_DAEMONSET = 4,
	IDENT_OWN_JOB = 5,
	IDENT_OWN_CRONJOB = 6,
};

/* A process's identity, as labels and resource attributes take it. */
struct identity {
	uint32_t tgid;
	unsigned long long start;	/* field 22 of /proc/<pid>/stat; 0 unknown */
	char service_name[IDENT_NAME_MAX];
	char service_namespace[IDENT_SHORT_MAX];
	char instance_id[IDENT_NAME_MAX + 2 * IDENT_SHORT_MAX + 8];
	char exe[IDENT_SHORT_MAX];	/* process.executable.name */
	char command[IDENT_SHORT_MAX];	/* process.command: argv[0] */
	char unit[IDENT_NAME_MAX];
	char container_id[IDENT_CID_MAX];
	char container_name[IDENT_SHORT_MAX];
	enum ident_runtime runtime;
	struct ident_k8s k8s;
	enum ident_owner owner;
	char owner_name[IDENT_NAME_MAX];
	char job_name[IDENT_NAME_MAX];	/* with IDENT_OWN_CRONJOB: the Job's name */
	struct ident_env env;		/* what the process declared */
	/* OTLP resource attributes sonde sets beyond service.name and
	 * process.pid: "key\x1fvalue\x1e" repeated, a C string. */
	char attrs[IDENT_ATTRS_MAX];
	uint8_t pending;		/* the runtime lookup has not answered yet */
	uint8_t exited;			/* an exit was seen for tgid (or it was gone when resolved) */
	uint8_t execd;			/* it ran execve() since: read /proc again */
	uint8_t used;
	uint32_t gen;			/* changes when the identity is rewritten */
	uint64_t checked_ns;		/* when start was last compared */
	uint64_t used_ns;		/* last asked for (the tick's clock) */
	uint64_t exited_ns;
};

#define IDENT_ATTR_SEP '\x1f'	/* between a key and its value */
#define IDENT_ATTR_END '\x1e'	/* after each value */

/* ---- pure functions (parse.c) ---- */

/* /proc/<pid>/cgroup (n bytes; v2 "0::/path" lines and v1 "N:ctrl:/path"
 * lines alike): the first line naming a container wins, else the first
 * naming a systemd unit. Returns true when anything was recognised. */
bool ident__parse_cgroup(const char *buf, size_t n, struct ident_cgroup *out);
/* /proc/<pid>/environ (NUL-separated, n bytes, the last entry may be cut). */
void ident__parse_environ(const char *buf, size_t n, struct ident_env *out);
/* One label from the runtime: fills the matching field of k (unknown keys
 * are ignored). */
void ident__k8s_label(struct ident_k8s *k, const char *key, const char *value);
/* The owner of a pod from its name, refined by the pod labels k carries.
 * name gets the owner's name; job (may be NULL) the Job's for a CronJob. */
enum ident_owner ident__owner(const struct ident_k8s *k, char *name, size_t n, char *job, size_t jn);
const char *ident__owner_kind(enum ident_owner o);	/* "deployment", ... */
/* service.name by the precedence rule (README "Identity"): the process's
 * OTel env, app.kubernetes.io/name, the owner, the container name, the
 * systemd unit (".service" and a template's "@instance" dropped), the
 * executable basename. Fills id->service_name, service_namespace,
 * instance_id and attrs from the other fields of id (host: host.name). */
void ident__derive(struct identity *id, const struct ident_env *env, const char *host);

/* ---- the cache (identity.c) ---- */

struct metrics;

struct ident_opts {
	const char *containerd_sock;	/* "" or NULL: no containerd lookups */
	const char *containerd_ns;	/* containerd namespace, "k8s.io" */
	const char *docker_sock;	/* Docker's API socket; "" or NULL: none */
	const char *podman_sock;	/* podman's API socket; "" or NULL: none */
	const char *crio_sock;		/* CRI-O's info socket; "" or NULL: none */
	const char *host_name;		/* host.name; NULL: gethostname */
	const char *override;		/* --service-name: service.name of every process */
	uint32_t timeout_ms;		/* per runtime request */
	bool pod_labels;		/* k8s_pod_name and container_id on RED series */
	const char *proc_root;		/* "/proc" outside tests */
	const char *cgroup2_root;	/* the cgroup2 mount; NULL: found (/sys/fs/cgroup/unified
					 * on a hybrid host, else /sys/fs/cgroup) */
	/* tests: 0 = the defaults (10 s each) */
	uint32_t exit_grace_ms;		/* an exited process's identity is kept this long */
	uint32_t rescan_ms;		/* the worker's /proc rescan for container ids */
};

/* Once at start. Starts the runtime worker when a socket is configured;
 * registers sonde_target_info and sonde_identity_* in m (may be NULL).
 * 0 or negative errno. */
int identity__init(const struct ident_opts *o, struct metrics *m);
void identity__fini(void);
/* tgid's identity (exe: the kernel's basename when known, else NULL).
 * Never NULL; valid until the next identity__ call. */
const struct identity *identity__get(uint32_t tgid, const char *exe, const char *comm);
/* An exit was seen for tgid: its identity is kept a little for the spans
 * and counters still in flight, then dropped. */
void identity__exit(uint32_t tgid);
/* Loop thread, on the timer: applies runtime answers, drops identities of
 * processes gone, updates sonde_target_info. */
void identity__tick(void);
bool identity__pod_labels(void);
/* tgid's identity when the caller has just read its start time (field 22
 * of /proc/<pid>/stat): a cached entry with that start time is returned
 * without reading /proc; another start time resolves it again (procstat,
 * once per process and scrape). */
const struct identity *identity__get_at(uint32_t tgid, unsigned long long start, const char *exe,
					const char *comm);
/* tgid ran execve(): its identity (executable, command, environment) is
 * read again at its next identity__get. */
void identity__exec(uint32_t tgid);
/* The kernel side reported tgid's cgroup (v2 id, SONDE_OP_CGROUP) ahead of
 * its first connection's data: when the process is gone before /proc/<pid>/
 * cgroup is read, its identity comes from that cgroup's path (the directory
 * with that id on the cgroup2 mount) instead. Loop thread. */
void identity__cgroup(uint32_t tgid, uint64_t cgroup_id);

/* The identity labels every per-service family ends with (RED, database,
 * TCP health, process, run queue): service_namespace and k8s_namespace_name
 * always (bounded by the namespaces); k8s_pod_name and container_id only
 * with --metrics-pod-labels (a series set per pod). A family takes
 * identity__nlabels() of them; identity__label_values fills all
 * IDENT_LABELS_MAX (values past a family's labels are not read). */
#define IDENT_LABELS "service_namespace", "k8s_namespace_name", "k8s_pod_name", "container_id"
#define IDENT_LABELS_MAX 4
size_t identity__nlabels(void);
/* id may be NULL: every value "". */
void identity__label_values(const struct identity *id, const char **out);
struct metrics_buf;
/* sonde_identity_* and sonde_runtime_* up to date (before a scrape). */
void identity__collect(void);
/* sonde_target_info: one series per live process identity, labels with a
 * value only. 0 or -ENOMEM. */
int identity__render(struct metrics_buf *out);
/* The whole cache's cost, for self metrics and tests. */
struct ident_stats {
	uint64_t resolved, reused, dropped, evicted, runtime_ok, runtime_failed, runtime_pending;
	uint64_t resolve_ns;		/* total time in synchronous /proc reads */
	uint64_t by_cgroup_id;		/* processes gone before /proc was read, named by their
					 * reported cgroup */
	uint32_t live;
	uint32_t containers;		/* container answers cached or pending, as of the last rescan */
};
void identity__stats(struct ident_stats *s);

#endif
