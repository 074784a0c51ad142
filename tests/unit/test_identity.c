/* Unit tests for process identity (user/identity/): cgroup lines of every
 * runtime and driver (fixtures as the kernel writes them), environ, the
 * kubelet's labels, owners from pod names, service.name precedence; the
 * cache on a fake /proc tree and on real child processes (OTEL_SERVICE_NAME,
 * a reused tgid); the containerd client against absent, hanging and garbage
 * sockets (each bounded by its timeout). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "identity/identity.h"
#include "identity/runtime.h"
#include "metrics/metrics.h"

#define CID "4f1a2b3c4d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef"
#define CID2 "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
#define UID "0a1b2c3d-1111-2222-3333-444455556666"
#define UID_ "0a1b2c3d_1111_2222_3333_444455556666"

static struct ident_cgroup cg;

static bool parse(const char *s)
{
	memset(&cg, 'X', sizeof(cg));
	return ident__parse_cgroup(s, strlen(s), &cg);
}

static void test_cgroup_kubernetes(void)
{
	/* cgroupfs driver, hybrid host: v1 controllers and the v2 line */
	CHECK(parse("12:pids:/kubepods/besteffort/pod" UID "/" CID "\n"
		    "11:cpu,cpuacct:/kubepods/besteffort/pod" UID "/" CID "\n"
		    "1:name=systemd:/kubepods/besteffort/pod" UID "/" CID "\n"
		    "0::/\n"));
	CHECK_EQ_STR(cg.container_id, CID);
	CHECK_EQ_STR(cg.pod_uid, UID);
	CHECK_EQ_STR(cg.qos, "besteffort");
	CHECK_EQ_INT(cg.runtime, IDENT_RT_CONTAINERD);
	CHECK(cg.kubepods);
	CHECK_EQ_STR(cg.unit, "");
	/* guaranteed pods sit right under kubepods */
	CHECK(parse("0::/kubepods/pod" UID "/" CID2 "\n"));
	CHECK_EQ_STR(cg.container_id, CID2);
	CHECK_EQ_STR(cg.pod_uid, UID);
	CHECK_EQ_STR(cg.qos, "");
	/* systemd driver, cgroup v2 */
	CHECK(parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
		    ".slice/cri-containerd-" CID ".scope\n"));
	CHECK_EQ_STR(cg.container_id, CID);
	CHECK_EQ_STR(cg.pod_uid, UID);
	CHECK_EQ_STR(cg.qos, "burstable");
	CHECK_EQ_INT(cg.runtime, IDENT_RT_CONTAINERD);
	CHECK(parse("0::/kubepods.slice/kubepods-pod" UID_ ".slice/crio-" CID ".scope\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_CRIO);
	CHECK_EQ_STR(cg.pod_uid, UID);
	CHECK_EQ_STR(cg.qos, "");
	CHECK(parse("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
		    ".slice/docker-" CID ".scope\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_DOCKER);
	CHECK_EQ_STR(cg.qos, "besteffort");
	/* CRI-O's conmon is not the container */
	CHECK(!parse("0::/kubepods.slice/kubepods-pod" UID_ ".slice/crio-conmon-" CID ".scope\n"));
	CHECK_EQ_STR(cg.container_id, "");
}

static void test_cgroup_docker_podman_systemd(void)
{
	CHECK(parse("0::/system.slice/docker-" CID ".scope\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_DOCKER);
	CHECK_EQ_STR(cg.container_id, CID);
	CHECK_EQ_STR(cg.unit, "");
	CHECK(!cg.kubepods);
	CHECK(parse("13:memory:/docker/" CID2 "\n0::/\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_DOCKER);
	CHECK_EQ_STR(cg.container_id, CID2);
	CHECK(parse("0::/machine.slice/libpod-" CID ".scope\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_PODMAN);
	CHECK(parse("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" CID
		    ".scope/container\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_PODMAN);
	CHECK_EQ_STR(cg.container_id, CID);
	CHECK(parse("0::/machine.slice/libpod-conmon-" CID ".scope\n") == false);
	/* podman's cgroupfs manager */
	CHECK(parse("1:cpu:/libpod_parent/libpod-" CID "\n0::/libpod_parent/libpod-" CID "\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_PODMAN);
	CHECK_EQ_STR(cg.container_id, CID);
	/* systemd units, v2 and v1 */
	CHECK(parse("0::/system.slice/nginx.service\n"));
	CHECK_EQ_STR(cg.unit, "nginx.service");
	CHECK_EQ_STR(cg.container_id, "");
	CHECK_EQ_INT(cg.runtime, IDENT_RT_NONE);
	CHECK(parse("10:memory:/\n1:name=systemd:/system.slice/getty@tty1.service\n"));
	CHECK_EQ_STR(cg.unit, "getty@tty1.service");
	/* a container anywhere beats a unit elsewhere */
	CHECK(parse("1:name=systemd:/system.slice/containerd.service\n0::/kubepods/pod" UID "/" CID "\n"));
	CHECK_EQ_STR(cg.container_id, CID);
	/* a user's session manager is not a service */
	CHECK(!parse("0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n"));
	CHECK_EQ_STR(cg.unit, "");
	/* nothing known, and garbage */
	CHECK(!parse("0::/\n"));
	CHECK(!parse(""));
	CHECK(!parse("no colons here\n::\n:\n0::\n0::/" CID "0\n0::/kubepods/podnotauid/abc\n"));
	CHECK_EQ_STR(cg.container_id, "");
	CHECK_EQ_STR(cg.pod_uid, "");
	/* a 64-hex component outside kubepods and docker: an id, no runtime known */
	CHECK(parse("0::/custom/" CID "\n"));
	CHECK_EQ_INT(cg.runtime, IDENT_RT_NONE);
	/* cut short: the last line without its newline */
	CHECK(parse("0::/system.slice/redis-server.service"));
	CHECK_EQ_STR(cg.unit, "redis-server.service");
}

static void test_environ(void)
{
	static const char env1[] = "PATH=/bin\0OTEL_SERVICE_NAME=checkout\0HOME=/\0";
	static const char env2[] = "OTEL_RESOURCE_ATTRIBUTES= deployment.environment=prod , "
				   "service.name=cart%2Dsvc,service.namespace=shop%2Cwest\0";
	static const char env3[] = "OTEL_RESOURCE_ATTRIBUTES=service.name=fromattrs\0"
				   "OTEL_SERVICE_NAME=fromname\0";
	static const char env4[] = "OTEL_SERVICE_NAME=cut-sh";	/* no NUL: read cut */
	static const char env5[] = "OTEL_RESOURCE_ATTRIBUTES=garbage,=x,service.name=%zz\0";
	struct ident_env e;

	ident__parse_environ(env1, sizeof(env1) - 1, &e);
	CHECK_EQ_STR(e.service_name, "checkout");
	CHECK_EQ_STR(e.service_namespace, "");
	ident__parse_environ(env2, sizeof(env2) - 1, &e);
	CHECK_EQ_STR(e.service_name, "cart-svc");
	CHECK_EQ_STR(e.service_namespace, "shop,west");
	ident__parse_environ(env3, sizeof(env3) - 1, &e);
	CHECK_EQ_STR(e.service_name, "fromname");
	ident__parse_environ(env4, sizeof(env4) - 1, &e);
	CHECK_EQ_STR(e.service_name, "cut-sh");
	ident__parse_environ(env5, sizeof(env5) - 1, &e);
	CHECK_EQ_STR(e.service_name, "%zz");	/* a bad escape is kept */
	ident__parse_environ("", 0, &e);
	CHECK_EQ_STR(e.service_name, "");
}

static enum ident_owner owner(struct ident_k8s *k, const char *pod, char *name, char *job)
{
	snprintf(k->pod_name, sizeof(k->pod_name), "%s", pod);
	return ident__owner(k, name, IDENT_NAME_MAX, job, IDENT_NAME_MAX);
}

static void test_owner(void)
{
	struct ident_k8s k = { 0 };
	char name[IDENT_NAME_MAX], job[IDENT_NAME_MAX];

	/* from the name alone */
	CHECK_EQ_INT(owner(&k, "checkout-7d9f8b6c5d-x2k4q", name, job), IDENT_OWN_DEPLOYMENT);
	CHECK_EQ_STR(name, "checkout");
	CHECK_EQ_INT(owner(&k, "api-gw-5b7c9d4f6-zr9xm", name, job), IDENT_OWN_DEPLOYMENT);
	CHECK_EQ_STR(name, "api-gw");
	CHECK_EQ_INT(owner(&k, "postgres-0", name, job), IDENT_OWN_STATEFULSET);
	CHECK_EQ_STR(name, "postgres");
	CHECK_EQ_INT(owner(&k, "redis-cluster-12", name, job), IDENT_OWN_STATEFULSET);
	CHECK_EQ_STR(name, "redis-cluster");
	CHECK_EQ_INT(owner(&k, "node-agent-x2k4q", name, job), IDENT_OWN_DAEMONSET);
	CHECK_EQ_STR(name, "node-agent");
	CHECK_EQ_INT(owner(&k, "backup-28930560-h4k2z", name, job), IDENT_OWN_CRONJOB);
	CHECK_EQ_STR(name, "backup");
	CHECK_EQ_STR(job, "backup-28930560");
	CHECK_EQ_INT(owner(&k, "nginx", name, job), IDENT_OWN_NONE);
	CHECK_EQ_STR(name, "");
	CHECK_EQ_INT(owner(&k, "nginx-proxy", name, job), IDENT_OWN_NONE);	/* vowels: no suffix */
	CHECK_EQ_INT(owner(&k, "-0", name, job), IDENT_OWN_NONE);
	CHECK_EQ_INT(owner(&k, "", name, job), IDENT_OWN_NONE);
	/* the pod's labels settle what the name cannot */
	snprintf(k.job_name, sizeof(k.job_name), "migrate-db");
	CHECK_EQ_INT(owner(&k, "migrate-db-x2k4q", name, job), IDENT_OWN_JOB);
	CHECK_EQ_STR(name, "migrate-db");
	CHECK_EQ_STR(job, "migrate-db");
	snprintf(k.job_name, sizeof(k.job_name), "report-28930561");
	CHECK_EQ_INT(owner(&k, "report-28930561-abcde", name, job), IDENT_OWN_CRONJOB);
	CHECK_EQ_STR(name, "report");
	k.job_name[0] = 0;
	snprintf(k.pod_template_hash, sizeof(k.pod_template_hash), "6d4cf56db6");
	CHECK_EQ_INT(owner(&k, "web-6d4cf56db6-abcde", name, job), IDENT_OWN_DEPLOYMENT);
	CHECK_EQ_STR(name, "web");
	k.pod_template_hash[0] = 0;
	snprintf(k.revision_hash, sizeof(k.revision_hash), "fluentd-7b9c");
	CHECK_EQ_INT(owner(&k, "fluentd-7xk9p", name, job), IDENT_OWN_DAEMONSET);
	CHECK_EQ_STR(name, "fluentd");
	snprintf(k.statefulset_pod, sizeof(k.statefulset_pod), "kafka-2");
	CHECK_EQ_INT(owner(&k, "kafka-2", name, job), IDENT_OWN_STATEFULSET);
	CHECK_EQ_STR(name, "kafka");
	CHECK_EQ_STR(ident__owner_kind(IDENT_OWN_DEPLOYMENT), "deployment");
	CHECK_EQ_STR(ident__owner_kind(IDENT_OWN_CRONJOB), "cronjob");
}

static void test_labels(void)
{
	struct ident_k8s k = { 0 };

	ident__k8s_label(&k, "io.kubernetes.pod.name", "checkout-7d9f8b6c5d-x2k4q");
	ident__k8s_label(&k, "io.kubernetes.pod.namespace", "shop");
	ident__k8s_label(&k, "io.kubernetes.pod.uid", UID);
	ident__k8s_label(&k, "io.kubernetes.container.name", "app");
	ident__k8s_label(&k, "resource.opentelemetry.io/service.name", "checkout-api");
	ident__k8s_label(&k, "app.kubernetes.io/name", "checkout-ui");	/* outranked */
	ident__k8s_label(&k, "unrelated", "x");
	CHECK(k.known);
	CHECK_EQ_STR(k.pod_name, "checkout-7d9f8b6c5d-x2k4q");
	CHECK_EQ_STR(k.namespace, "shop");
	CHECK_EQ_STR(k.pod_uid, UID);
	CHECK_EQ_STR(k.container_name, "app");
	CHECK_EQ_STR(k.app_name, "checkout-api");
	memset(&k, 0, sizeof(k));
	ident__k8s_label(&k, "app.kubernetes.io/name", "x");
	CHECK(!k.known);
}

static const char *attr(const struct identity *id, const char *key)
{
	static char v[256];
	const char *a = id->attrs;
	size_t kn = strlen(key);

	while (*a) {
		const char *sep = strchr(a, IDENT_ATTR_SEP), *end = strchr(a, IDENT_ATTR_END);

		if (!sep || !end)
			break;
		if ((size_t)(sep - a) == kn && memcmp(a, key, kn) == 0) {
			snprintf(v, sizeof(v), "%.*s", (int)(end - sep - 1), sep + 1);
			return v;
		}
		a = end + 1;
	}
	return NULL;
}

static void test_precedence(void)
{
	struct identity id = { 0 };
	struct ident_env env = { 0 };

	id.tgid = 42;
	id.start = 777;
	snprintf(id.exe, sizeof(id.exe), "nginx");
	ident__derive(&id, NULL, "node1");
	CHECK_EQ_STR(id.service_name, "nginx");
	CHECK_EQ_STR(id.instance_id, "node1:42:777");
	CHECK(attr(&id, "k8s.pod.name") == NULL);
	snprintf(id.unit, sizeof(id.unit), "shop-web@3.service");
	ident__derive(&id, NULL, "node1");
	CHECK_EQ_STR(id.service_name, "shop-web");
	snprintf(id.container_name, sizeof(id.container_name), "web1");
	ident__derive(&id, NULL, "node1");
	CHECK_EQ_STR(id.service_name, "web1");
	CHECK_EQ_STR(attr(&id, "container.name"), "web1");
	snprintf(id.k8s.container_name, sizeof(id.k8s.container_name), "app");
	snprintf(id.k8s.pod_name, sizeof(id.k8s.pod_name), "checkout-7d9f8b6c5d-x2k4q");
	snprintf(id.k8s.namespace, sizeof(id.k8s.namespace), "shop");
	id.k8s.known = true;
	ident__derive(&id, NULL, "node1");
	CHECK_EQ_STR(id.service_name, "app");
	CHECK_EQ_STR(id.service_namespace, "shop");
	CHECK_EQ_STR(id.instance_id, "shop.checkout-7d9f8b6c5d-x2k4q.app");
	CHECK(attr(&id, "container.name") == NULL);	/* the k8s container name says it */
	id.owner = ident__owner(&id.k8s, id.owner_name, sizeof(id.owner_name), NULL, 0);
	ident__derive(&id, NULL, "node1");
	CHECK_EQ_STR(id.service_name, "checkout");
	CHECK_EQ_STR(attr(&id, "k8s.deployment.name"), "checkout");
	CHECK_EQ_STR(attr(&id, "k8s.namespace.name"), "shop");
	CHECK_EQ_STR(attr(&id, "k8s.container.name"), "app");
	snprintf(id.k8s.app_name, sizeof(id.k8s.app_name), "checkout-svc");
	ident__derive(&id, NULL, "node1");
	CHECK_EQ_STR(id.service_name, "checkout-svc");
	snprintf(env.service_name, sizeof(env.service_name), "from-env");
	snprintf(env.service_namespace, sizeof(env.service_namespace), "team-a");
	ident__derive(&id, &env, "node1");
	CHECK_EQ_STR(id.service_name, "from-env");
	CHECK_EQ_STR(id.service_namespace, "team-a");
	CHECK_EQ_STR(attr(&id, "service.namespace"), "team-a");
	CHECK_EQ_STR(attr(&id, "k8s.namespace.name"), "shop");
	/* control characters cannot break the blob */
	snprintf(env.service_namespace, sizeof(env.service_namespace), "a\x1f" "b\x1e" "c");
	ident__derive(&id, &env, "node1");
	CHECK_EQ_STR(attr(&id, "service.namespace"), "a_b_c");
}

/* ---- the cache on a fake /proc ---- */

static char root[64];

static void put_file(const char *pid, const char *name, const char *s, size_t n)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s/%s", root, pid, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		CHECK_EQ_INT(write(fd, s, n), (long long)n);
		close(fd);
	}
}

static void fake_proc(const char *pid, const char *start, const char *cgroup, const char *env, size_t envn,
		      const char *exe)
{
	char path[160], stat[256];

	snprintf(path, sizeof(path), "%s/%s", root, pid);
	mkdir(path, 0755);
	snprintf(stat, sizeof(stat), "%s (x y) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %s 0 0\n", pid,
		 start);
	put_file(pid, "stat", stat, strlen(stat));
	put_file(pid, "cgroup", cgroup, strlen(cgroup));
	put_file(pid, "environ", env, envn);
	put_file(pid, "cmdline", "/usr/bin/app\0--flag\0", 20);
	snprintf(path, sizeof(path), "%s/%s/exe", root, pid);
	unlink(path);
	CHECK_EQ_INT(symlink(exe, path), 0);
}

static void test_cache_fake_proc(void)
{
	struct ident_opts o = { .proc_root = root, .host_name = "node1" };
	const struct identity *id;
	struct metrics *m = metrics__new();
	struct metrics_buf b = { 0 };
	struct ident_stats st;

	snprintf(root, sizeof(root), "/tmp/sonde-ident-test.%d", (int)getpid());
	mkdir(root, 0755);
	fake_proc("4001", "5000", "0::/system.slice/shop-api.service\n", "A=1\0", 4, "/usr/bin/python3.11");
	fake_proc("4002", "5001", "0::/kubepods/besteffort/pod" UID "/" CID "\n",
		  "OTEL_RESOURCE_ATTRIBUTES=service.namespace=payments", 51, "/bin/busybox");
	fake_proc("4003", "5002", "0::/user.slice\n", "OTEL_SERVICE_NAME=ledger\0", 25, "/usr/bin/java");
	CHECK_EQ_INT(identity__init(&o, m), 0);

	id = identity__get(4001, NULL, "python3");
	CHECK_EQ_STR(id->service_name, "shop-api");
	CHECK_EQ_STR(id->unit, "shop-api.service");
	CHECK_EQ_STR(id->exe, "python3.11");
	CHECK_EQ_STR(id->command, "/usr/bin/app");
	CHECK_EQ_STR(id->instance_id, "node1:4001:5000");
	/* a container without a runtime to ask: the cgroup's facts only */
	id = identity__get(4002, NULL, "busybox");
	CHECK_EQ_STR(id->service_name, "busybox");
	CHECK_EQ_STR(id->service_namespace, "payments");
	CHECK_EQ_STR(id->container_id, CID);
	CHECK_EQ_STR(id->k8s.pod_uid, UID);
	CHECK_EQ_INT(id->pending, 0);
	CHECK_EQ_STR(attr(id, "container.id"), CID);
	CHECK_EQ_STR(attr(id, "container.runtime"), "containerd");
	id = identity__get(4003, NULL, "java");
	CHECK_EQ_STR(id->service_name, "ledger");
	/* cached: a second call reads nothing */
	identity__stats(&st);
	CHECK_EQ_INT(st.resolved, 3);
	identity__get(4001, NULL, "python3");
	identity__stats(&st);
	CHECK_EQ_INT(st.resolved, 3);
	CHECK_EQ_INT(st.live, 3);
	/* sonde_target_info: one series each, labels with values only */
	CHECK_EQ_INT(identity__render(&b), 0);
	CHECK(b.data && strstr(b.data, "sonde_target_info{service_name=\"shop-api\",service_instance_id="
				       "\"node1:4001:5000\",process_pid=\"4001\",process_executable_name="
				       "\"python3.11\",systemd_unit=\"shop-api.service\"} 1\n"));
	CHECK(b.data && strstr(b.data, "service_name=\"busybox\",service_namespace=\"payments\","));
	CHECK(b.data && strstr(b.data, "k8s_pod_uid=\"" UID "\",container_id=\"" CID "\"} 1\n"));
	metrics_buf__free(&b);

	/* a dead process: its identity stays while nothing else has the pid */
	{
		char path[160];

		snprintf(path, sizeof(path), "%s/4001/stat", root);
		CHECK_EQ_INT(unlink(path), 0);
	}
	identity__exit(4001);
	id = identity__get(4001, NULL, "python3");
	CHECK_EQ_STR(id->service_name, "shop-api");
	/* the tgid reused (another start time): the new process's identity */
	fake_proc("4001", "9999", "0::/system.slice/cron.service\n", "", 0, "/usr/sbin/cron");
	id = identity__get(4001, NULL, "cron");
	CHECK_EQ_STR(id->service_name, "cron");
	CHECK_EQ_INT(id->start, 9999);
	identity__stats(&st);
	CHECK_EQ_INT(st.reused, 1);
	CHECK_EQ_INT(st.resolved, 4);
	/* exited and gone: not on sonde_target_info */
	identity__exit(4003);
	b.len = 0;
	CHECK_EQ_INT(identity__render(&b), 0);
	CHECK(b.data && !strstr(b.data, "ledger"));
	/* the reused tgid's line is the new process's, not the one rendered
	 * for the slot before; a second render (from the kept lines) is the same */
	CHECK(b.data && strstr(b.data, "sonde_target_info{service_name=\"cron\""));
	CHECK(b.data && !strstr(b.data, "shop-api"));
	{
		struct metrics_buf b2 = { 0 };

		CHECK_EQ_INT(identity__render(&b2), 0);
		CHECK(b2.len == b.len && b.data && b2.data && !memcmp(b.data, b2.data, b.len));
		metrics_buf__free(&b2);
	}
	metrics_buf__free(&b);

	/* Five processes of one set (identity.c's hash; 4 ways): four stay
	 * cached side by side, read once each however often asked; the fifth
	 * takes the least recently used one's place. */
	{
		uint32_t pids[5], n = 0, want = ((5000u * 2654435761u) >> 20) % 1024;
		char pid[16];

		for (uint32_t p = 5000; n < 5 && p < 5000000; p++)
			if (((p * 2654435761u) >> 20) % 1024 == want)
				pids[n++] = p;
		CHECK_EQ_INT(n, 5);
		for (uint32_t i = 0; i < n; i++) {
			snprintf(pid, sizeof(pid), "%u", pids[i]);
			fake_proc(pid, "7000", "0::/system.slice/set.service\n", "", 0, "/bin/set");
		}
		identity__stats(&st);
		for (int round = 0; round < 3; round++)
			for (uint32_t i = 0; i < 4; i++)
				CHECK_EQ_STR(identity__get(pids[i], NULL, "x")->service_name, "set");
		{
			struct ident_stats st2;

			identity__stats(&st2);
			CHECK_EQ_INT(st2.resolved - st.resolved, 4);
			CHECK_EQ_INT(st2.evicted - st.evicted, 0);
			identity__get(pids[4], NULL, "x");
			identity__stats(&st2);
			CHECK_EQ_INT(st2.resolved - st.resolved, 5);
			CHECK_EQ_INT(st2.evicted - st.evicted, 1);
		}
	}
	identity__fini();
	metrics__free(m);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		CHECK_EQ_INT(system(cmd), 0);
	}
}

/* ---- the cache on real processes ---- */

static pid_t spawn(char *const envp[])
{
	pid_t p = fork();

	if (p == 0) {
		char *const argv[] = { "sleep", "30", NULL };

		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	return p;
}

/* A child forced onto pid want (ns_last_pid, root only; the host may take
 * the pid first: a few tries). */
static pid_t spawn_at(pid_t want, char *const envp[])
{
	for (int i = 0; i < 50; i++) {
		char buf[32];
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
		pid_t p;

		if (fd < 0)
			return -1;
		snprintf(buf, sizeof(buf), "%d", want - 1);
		if (write(fd, buf, strlen(buf)) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
		p = spawn(envp);
		if (p == want)
			return p;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	return -1;
}

static void wait_exec(pid_t p)
{
	char path[64], link[64];

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)p);
	for (int i = 0; i < 200; i++) {
		ssize_t n = readlink(path, link, sizeof(link) - 1);

		if (n > 0 && (link[n] = 0, strstr(link, "sleep")))
			return;
		usleep(5000);
	}
}

static void test_cache_real(void)
{
	char *env_a[] = { "OTEL_SERVICE_NAME=checkout", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop", NULL };
	char *env_b[] = { "PATH=/bin", NULL };
	struct ident_opts o = { .host_name = "h" };
	const struct identity *id;
	struct ident_stats st;
	pid_t a, b;

	CHECK_EQ_INT(identity__init(&o, NULL), 0);
	a = spawn(env_a);
	wait_exec(a);
	id = identity__get((uint32_t)a, NULL, "sleep");
	CHECK_EQ_STR(id->service_name, "checkout");
	CHECK_EQ_STR(id->service_namespace, "shop");
	CHECK_EQ_STR(id->exe, "sleep");
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	identity__exit((uint32_t)a);
	/* the same tgid, another process */
	b = spawn_at(a, env_b);
	if (b < 0) {
		printf("test_identity: tgid reuse on real processes not checked (ns_last_pid not writable "
		       "or the pid was taken 50 times)\n");
	} else {
		wait_exec(b);
		id = identity__get((uint32_t)b, NULL, "sleep");
		CHECK_EQ_STR(id->service_name, "sleep");
		CHECK_EQ_STR(id->service_namespace, "");
		identity__stats(&st);
		CHECK_EQ_INT(st.reused, 1);
		kill(b, SIGKILL);
		waitpid(b, NULL, 0);
	}
	identity__fini();
}

/* ---- the containerd client against bad sockets ---- */

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		return -1;
	return fd;
}

struct srv {
	int lfd;
	const char *answer;	/* NULL: accept and say nothing */
};

static void *serve(void *arg)
{
	struct srv *s = arg;
	int c = accept(s->lfd, NULL, NULL);
	char buf[4096];

	if (c < 0)
		return NULL;
	if (s->answer) {
		if (read(c, buf, sizeof(buf)) < 0) {
			/* the answer goes out anyway */
		}
		if (write(c, s->answer, strlen(s->answer)) < 0) {
			/* the client may be gone */
		}
		usleep(100 * 1000);	/* the client reads before the close */
	} else {
		usleep(1500 * 1000);	/* hangs: longer than the client waits */
	}
	close(c);
	return NULL;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_containerd_trouble(void)
{
	char path[64];
	void *resp;
	size_t n;
	struct timespec t0;
	struct srv s;
	pthread_t th;
	int err;

	snprintf(path, sizeof(path), "/tmp/sonde-ident-ctrd.%d.sock", (int)getpid());
	unlink(path);
	/* absent */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = containerd__call(path, "k8s.io", "/containerd.services.containers.v1.Containers/Get", "", 0,
			       &resp, &n, 300);
	CHECK_EQ_INT(err, -EHOSTDOWN);
	CHECK(ms_since(&t0) < 100);
	/* hangs: accepts, never answers: the deadline */
	s.lfd = listen_unix(path);
	s.answer = NULL;
	CHECK(s.lfd >= 0);
	pthread_create(&th, NULL, serve, &s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = containerd__call(path, "k8s.io", "/containerd.services.containers.v1.Containers/Get", "", 0,
			       &resp, &n, 300);
	CHECK_EQ_INT(err, -ETIMEDOUT);
	CHECK(ms_since(&t0) >= 290 && ms_since(&t0) < 800);
	pthread_join(th, NULL);
	/* garbage: HTTP/1.1 where HTTP/2 is spoken, at once */
	s.answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
	pthread_create(&th, NULL, serve, &s);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = containerd__call(path, "k8s.io", "/containerd.services.containers.v1.Containers/Get", "", 0,
			       &resp, &n, 1000);
	CHECK_EQ_INT(err, -EPROTO);
	CHECK(ms_since(&t0) < 500);
	pthread_join(th, NULL);
	close(s.lfd);
	unlink(path);
}

/* Docker's/podman's inspect answer, 404, and garbage, from a fake API. */
static void test_docker_api(void)
{
	static char ok[1024];
	static const char doc[] = "{\"Id\":\"" CID "\",\"Name\":\"/web1\",\"Config\":{\"Labels\":"
				  "{\"io.kubernetes.pod.name\":\"p-0\",\"io.kubernetes.pod.namespace\":\"ns1\","
				  "\"app.kubernetes.io/name\":\"shop\",\"n\":1}}}";
	static const char *const answers[] = {
		ok, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"Name\":[",
	};
	char path[64], name[IDENT_SHORT_MAX];
	struct ident_k8s k;
	struct srv s;
	pthread_t th;

	snprintf(ok, sizeof(ok), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(doc), doc);
	snprintf(path, sizeof(path), "/tmp/sonde-ident-docker.%d.sock", (int)getpid());
	s.lfd = listen_unix(path);
	CHECK(s.lfd >= 0);
	for (int i = 0; i < 3; i++) {
		int err;

		s.answer = answers[i];
		memset(&k, 0, sizeof(k));
		name[0] = 0;
		pthread_create(&th, NULL, serve, &s);
		err = docker__lookup(path, CID, &k, name, sizeof(name), 1000);
		if (i == 0) {
			CHECK_EQ_INT(err, 0);
			CHECK_EQ_STR(name, "web1");
			CHECK_EQ_STR(k.pod_name, "p-0");
			CHECK_EQ_STR(k.namespace, "ns1");
			CHECK_EQ_STR(k.app_name, "shop");
		} else {
			CHECK_EQ_INT(err, i == 1 ? -ENOENT : -EPROTO);
		}
		pthread_join(th, NULL);
	}
	close(s.lfd);
	unlink(path);
	CHECK_EQ_INT(docker__lookup(path, CID, &k, name, sizeof(name), 300), -EHOSTDOWN);
}

/* CRI-O's info socket, as its documentation shows it: a container and its
 * sandbox by path, anything else 404. */
struct crio_srv {
	int lfd, conns;
};

static void *serve_crio(void *arg)
{
	static const char ctr[] =
		"{\"name\":\"k8s_api_cart-6b8d9f7c5d-h2k9x_store_" UID "_0\",\"pid\":4242,"
		"\"image\":\"registry/cart:1\",\"created_time\":1,\"labels\":{\"io.kubernetes.pod.name\":"
		"\"cart-6b8d9f7c5d-h2k9x\",\"io.kubernetes.pod.namespace\":\"store\",\"io.kubernetes.pod.uid\":"
		"\"" UID "\",\"io.kubernetes.container.name\":\"api\"},\"annotations\":{\"io.kubernetes."
		"container.hash\":\"1\"},\"crio_annotations\":{},\"log_path\":\"\",\"root\":\"\",\"sandbox\":"
		"\"" CID "\",\"ip_addresses\":[]}";
	static const char sb[] =
		"{\"name\":\"k8s_POD_cart-6b8d9f7c5d-h2k9x_store_" UID "_0\",\"pid\":4200,\"labels\":{"
		"\"io.kubernetes.pod.name\":\"cart-6b8d9f7c5d-h2k9x\",\"io.kubernetes.pod.namespace\":\"store\","
		"\"pod-template-hash\":\"6b8d9f7c5d\",\"app.kubernetes.io/name\":\"cart\"},\"annotations\":{"
		"\"resource.opentelemetry.io/service.name\":\"cart-api\"},\"sandbox\":\"" CID "\"}";
	struct crio_srv *s = arg;

	for (int i = 0; i < s->conns; i++) {
		char req[1024], out[2048];
		const char *body = NULL;
		int c = accept(s->lfd, NULL, NULL);
		ssize_t n;

		if (c < 0)
			return NULL;
		n = read(c, req, sizeof(req) - 1);
		req[n > 0 ? n : 0] = 0;
		if (strncmp(req, "GET /containers/" CID2 " ", 16 + 64 + 1) == 0)
			body = ctr;
		else if (strncmp(req, "GET /containers/" CID " ", 16 + 64 + 1) == 0)
			body = sb;
		if (body)
			snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
		else
			snprintf(out, sizeof(out), "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
		if (write(c, out, strlen(out)) < 0) {
			/* the client may be gone */
		}
		usleep(50 * 1000);
		close(c);
	}
	return NULL;
}

static void test_crio_api(void)
{
	char path[64], name[IDENT_SHORT_MAX];
	struct crio_srv s = { .conns = 3 };
	struct ident_k8s k = { 0 };
	pthread_t th;

	snprintf(path, sizeof(path), "/tmp/sonde-ident-crio.%d.sock", (int)getpid());
	s.lfd = listen_unix(path);
	CHECK(s.lfd >= 0);
	pthread_create(&th, NULL, serve_crio, &s);
	CHECK_EQ_INT(crio__lookup(path, CID2, &k, name, sizeof(name), 1000), 0);
	/* CRI-O's own name (k8s_<container>_<pod>_<ns>_<uid>_<attempt>), cut to fit */
	CHECK_EQ_INT(strlen(name), sizeof(name) - 1);
	CHECK(strncmp(name, "k8s_api_cart-6b8d9f7c5d-h2k9x_store_" UID, sizeof(name) - 1) == 0);
	CHECK_EQ_STR(k.pod_name, "cart-6b8d9f7c5d-h2k9x");
	CHECK_EQ_STR(k.namespace, "store");
	CHECK_EQ_STR(k.pod_uid, UID);
	CHECK_EQ_STR(k.container_name, "api");
	CHECK(k.known);
	/* from the sandbox: the pod's labels, the OTel annotation first */
	CHECK_EQ_STR(k.pod_template_hash, "6b8d9f7c5d");
	CHECK_EQ_STR(k.app_name, "cart-api");
	/* unknown to CRI-O */
	memset(&k, 0, sizeof(k));
	CHECK_EQ_INT(crio__lookup(path, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", &k, name,
				  sizeof(name), 1000), -ENOENT);
	pthread_join(th, NULL);
	close(s.lfd);
	unlink(path);
	CHECK_EQ_INT(crio__lookup(path, CID2, &k, name, sizeof(name), 300), -EHOSTDOWN);
}

/* A container whose process dies while the runtime's answer is still on
 * its way: once the exit is seen and the grace is over, neither its process
 * identity nor its container entry is left, and a late event for the dead
 * tgid makes no new listed entry and asks the runtime nothing. */
static void test_dead_before_lookup(void)
{
	struct ident_opts o = { .host_name = "n", .timeout_ms = 3000, .exit_grace_ms = 100, .rescan_ms = 200 };
	char path[64], cmd[160];
	struct metrics_buf b = { 0 };
	const struct identity *id;
	struct ident_stats st;
	struct srv s;
	pthread_t th;

	snprintf(root, sizeof(root), "/tmp/sonde-ident-dead.%d", (int)getpid());
	mkdir(root, 0755);
	fake_proc("6001", "8000", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
		  ".slice/cri-containerd-" CID2 ".scope\n", "", 0, "/usr/bin/python3");
	/* the runtime: accepts, says nothing for 1.5 s, hangs up */
	snprintf(path, sizeof(path), "/tmp/sonde-ident-slow.%d.sock", (int)getpid());
	s.lfd = listen_unix(path);
	s.answer = NULL;
	CHECK(s.lfd >= 0);
	pthread_create(&th, NULL, serve, &s);
	o.proc_root = root;
	o.containerd_sock = path;
	CHECK_EQ_INT(identity__init(&o, NULL), 0);
	id = identity__get(6001, NULL, "python3");
	CHECK_EQ_STR(id->container_id, CID2);
	CHECK_EQ_INT(id->pending, 1);
	CHECK_EQ_STR(id->k8s.pod_uid, UID);
	/* it dies before the runtime answers */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/6001", root);
	CHECK_EQ_INT(system(cmd), 0);
	identity__exit(6001);
	CHECK_EQ_INT(identity__render(&b), 0);
	CHECK(b.data && !strstr(b.data, "6001"));
	identity__stats(&st);
	CHECK_EQ_INT(st.runtime_ok + st.runtime_failed, 0);	/* still waiting */
	/* the lookup ends (1.5 s), the grace (0.1 s) and a rescan (0.2 s) pass */
	for (int i = 0; i < 150; i++) {
		identity__tick();
		identity__stats(&st);
		if (st.runtime_failed + st.runtime_ok >= 1 && st.live == 0 && st.containers == 0 && i > 100)
			break;
		usleep(20 * 1000);
	}
	CHECK_EQ_INT(st.runtime_ok + st.runtime_failed, 1);
	CHECK_EQ_INT(st.live, 0);
	CHECK_EQ_INT(st.dropped, 1);
	CHECK_EQ_INT(st.containers, 0);
	/* a late event for the dead tgid: kept for its spans, never listed */
	id = identity__get(6001, "python3", "python3");
	CHECK_EQ_STR(id->service_name, "python3");
	CHECK_EQ_INT(id->exited, 1);
	b.len = 0;
	CHECK_EQ_INT(identity__render(&b), 0);
	CHECK(b.data && !strstr(b.data, "6001"));
	usleep(150 * 1000);
	identity__tick();
	identity__stats(&st);
	CHECK_EQ_INT(st.live, 0);
	CHECK_EQ_INT(st.dropped, 2);
	CHECK_EQ_INT(st.runtime_ok + st.runtime_failed, 1);	/* nothing more asked */
	metrics_buf__free(&b);
	identity__fini();
	pthread_join(th, NULL);
	close(s.lfd);
	unlink(path);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK_EQ_INT(system(cmd), 0);
}

int main(void)
{
	test_cgroup_kubernetes();
	test_cgroup_docker_podman_systemd();
	test_environ();
	test_owner();
	test_labels();
	test_precedence();
	test_cache_fake_proc();
	test_cache_real();
	test_containerd_trouble();
	test_docker_api();
	test_crio_api();
	test_dead_before_lookup();
	return check_summary("test_identity");
}
