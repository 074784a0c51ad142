/* Loader of inject.bpf.c. It shares sock.bpf.c's rings and per-thread trace
 * context, attaches sockops to the cgroup v2 root (every socket's cgroup is
 * at or below it) and the sk_msg verdict to the sockhash. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "probe/inject.h"
#include "probe/sock.h"
#include "util/log.h"
#include "inject.skel.h"

#define CGROUP2_MAGIC 0x63677270
#define CGROUP2_OWN_MOUNT "/run/sonde/cgroup2"

struct inject {
	struct inject_bpf *skel;
	struct bpf_link *sockops;
	int cg_fd;
	int msg_attached;
	int ncpus;
	uint8_t known[65536 / 8];	/* ports already in http_ports: one syscall each */
	uint8_t other[65536 / 8];	/* ports already in not_http_ports */
	bool learn;			/* learn ports from client connections seen */
	bool proc_rule_ok;		/* sockops may read the current task */
	uint16_t own_port;		/* the agent's /metrics: never traced */
	uint64_t adopted;		/* connections put in the sockhash by client_seen */
	uint64_t dropped;		/* non-HTTP connections taken out of it */
	uint64_t learnt_ns;		/* ktime of the last port learnt */
};

static int is_cgroup2(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == CGROUP2_MAGIC;
}

/* The cgroup v2 root: the usual places, else our own mount of it. */
static const char *cgroup2__root(void)
{
	if (is_cgroup2("/sys/fs/cgroup"))
		return "/sys/fs/cgroup";
	if (is_cgroup2("/sys/fs/cgroup/unified"))
		return "/sys/fs/cgroup/unified";
	if (is_cgroup2(CGROUP2_OWN_MOUNT))
		return CGROUP2_OWN_MOUNT;
	mkdir("/run", 0755);
	mkdir("/run/sonde", 0755);
	mkdir(CGROUP2_OWN_MOUNT, 0755);
	if (mount("none", CGROUP2_OWN_MOUNT, "cgroup2", 0, NULL) != 0) {
		log_warn("no cgroup v2 hierarchy and mounting one failed",
			 LS("path", CGROUP2_OWN_MOUNT) LS("error", strerror(errno)));
		return NULL;
	}
	log_info("mounted cgroup v2 for traceparent injection", LS("path", CGROUP2_OWN_MOUNT));
	return CGROUP2_OWN_MOUNT;
}

static void report(struct loader *ld, bool ok, const char *why)
{
	loader__add_probe(ld, "sockops", ok ? "cgroup" : "unavailable", ok, why);
	loader__add_probe(ld, "sk_msg", ok ? "sockhash" : "unavailable", ok, why);
}

int inject__open(struct inject **out, struct loader *ld, uint32_t self_tgid,
		 uint32_t filter_tgid)
{
	struct inject *in = calloc(1, sizeof(*in));
	const char *root, *step = "open";
	char why[120];
	int err;

	*out = NULL;
	if (!in)
		return -ENOMEM;
	in->cg_fd = -1;
	in->ncpus = libbpf_num_possible_cpus();
	in->skel = inject_bpf__open();
	if (!in->skel) {
		err = -errno;
		goto fail;
	}
	in->skel->rodata->self_tgid = self_tgid;
	in->skel->rodata->filter_tgid = filter_tgid;
	in->proc_rule_ok = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS,
						   BPF_FUNC_get_current_pid_tgid, NULL) == 1;
	in->skel->rodata->sockops_has_pid = in->proc_rule_ok;
	step = "share maps";
	err = bpf_map__reuse_fd(in->skel->maps.rings, sock_probe__rings_fd(ld));
	if (!err)
		err = bpf_map__reuse_fd(in->skel->maps.thread_ctx, sock_probe__thread_ctx_fd(ld));
	if (err)
		goto fail;
	step = "load";
	err = inject_bpf__load(in->skel);
	if (err)
		goto fail;
	step = "cgroup v2";
	root = cgroup2__root();
	if (!root) {
		err = -ENOENT;
		goto fail;
	}
	in->cg_fd = open(root, O_RDONLY | O_DIRECTORY);
	if (in->cg_fd < 0) {
		err = -errno;
		goto fail;
	}
	step = "attach sk_msg";
	err = bpf_prog_attach(bpf_program__fd(in->skel->progs.sonde_sk_msg),
			      bpf_map__fd(in->skel->maps.inject_socks), BPF_SK_MSG_VERDICT, 0);
	if (err) {
		err = -errno;
		goto fail;
	}
	in->msg_attached = 1;
	step = "attach sockops";
	in->sockops = bpf_program__attach_cgroup(in->skel->progs.sonde_sockops, in->cg_fd);
	if (!in->sockops) {
		err = -errno;
		goto fail;
	}
	report(ld, true, "");
	log_info("traceparent injection attached", LS("cgroup", root)
		 LS("process_rule", in->proc_rule_ok ? "available" :
		    "unavailable (sockops cannot read the current task on this kernel)"));
	*out = in;
	return 0;
fail:
	snprintf(why, sizeof(why), "%s failed: %s", step, strerror(-err));
	log_warn("traceparent injection unavailable; spans are still linked in userspace",
		 LS("error", why));
	report(ld, false, why);
	inject__close(in);
	return err;
}

void inject__report_off(struct loader *ld, const char *why)
{
	report(ld, false, why);
}

void inject__close(struct inject *in)
{
	if (!in)
		return;
	bpf_link__destroy(in->sockops);
	if (in->msg_attached)
		bpf_prog_detach2(bpf_program__fd(in->skel->progs.sonde_sk_msg),
				 bpf_map__fd(in->skel->maps.inject_socks), BPF_SK_MSG_VERDICT);
	if (in->cg_fd >= 0)
		close(in->cg_fd);
	inject_bpf__destroy(in->skel);
	free(in);
}

bool inject__has_port(const struct inject *in, uint16_t port)
{
	return in && (in->known[port / 8] & (1u << (port % 8)));
}

bool inject__add_port(struct inject *in, uint16_t port)
{
	uint8_t one = 1;

	if (!in || !port || inject__has_port(in, port))
		return false;
	if (bpf_map_update_elem(bpf_map__fd(in->skel->maps.http_ports), &port, &one, BPF_ANY) != 0)
		return false;
	in->known[port / 8] |= (uint8_t)(1u << (port % 8));
	return true;
}

/* Local and remote port of a socket, host order. */
static int sock_ports(int fd, uint16_t *sport, uint16_t *dport)
{
	struct sockaddr_storage a;
	socklen_t n = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &n) != 0)
		return -errno;
	*sport = ntohs(((struct sockaddr_in *)&a)->sin_port);	/* same offset in sockaddr_in6 */
	n = sizeof(a);
	if (getpeername(fd, (struct sockaddr *)&a, &n) != 0)
		return -errno;
	*dport = ntohs(((struct sockaddr_in *)&a)->sin_port);
	return 0;
}

/* A duplicate of process tgid's fd (checked to still hold tuple) and its
 * socket cookie. The caller closes the fd. */
static int peer_socket(uint32_t tgid, int32_t fd, const struct sonde_tuple *tuple,
		       uint64_t *cookie)
{
	socklen_t n = sizeof(*cookie);
	uint16_t sport = 0, dport = 0;
	int pidfd, sfd, err;

	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)tgid, 0);
	if (pidfd < 0)
		return -errno;
	sfd = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	err = sfd < 0 ? -errno : 0;
	close(pidfd);
	if (err)
		return err;
	err = sock_ports(sfd, &sport, &dport);
	if (!err && (sport != tuple->sport || dport != tuple->dport))
		err = -ESTALE;
	if (!err && getsockopt(sfd, SOL_SOCKET, SO_COOKIE, cookie, &n) != 0)
		err = -errno;
	if (err) {
		close(sfd);
		return err;
	}
	return sfd;
}

int inject__drop_socket(struct inject *in, uint32_t tgid, int32_t fd,
			const struct sonde_tuple *tuple)
{
	uint64_t cookie = 0;
	int sfd;

	if (!in || !in->learn)
		return -ENOENT;
	sfd = peer_socket(tgid, fd, tuple, &cookie);
	if (sfd < 0)
		return sfd;
	close(sfd);
	if (bpf_map_delete_elem(bpf_map__fd(in->skel->maps.inject_socks), &cookie) != 0)
		return -errno;
	in->dropped++;
	return 0;
}

uint64_t inject__dropped(const struct inject *in)
{
	return in ? in->dropped : 0;
}

int inject__add_socket(struct inject *in, uint32_t tgid, int32_t fd,
		       const struct sonde_tuple *tuple)
{
	uint64_t cookie = 0, value;
	int sfd, err = 0;

	if (!in)
		return -ENOENT;
	/* a duplicate in this process: closing it leaves the owner's intact;
	 * the fd may have been closed and reused since the record was made */
	sfd = peer_socket(tgid, fd, tuple, &cookie);
	if (sfd < 0)
		return sfd;
	value = (uint64_t)sfd;
	if (bpf_map_update_elem(bpf_map__fd(in->skel->maps.inject_socks), &cookie, &value,
				BPF_NOEXIST) != 0)
		err = -errno;
	close(sfd);
	return err;
}

uint64_t inject__counter(const struct inject *in, enum sonde_inject_counter c)
{
	uint32_t key = c;
	uint64_t sum = 0, *v;

	if (!in || in->ncpus <= 0)
		return 0;
	v = calloc((size_t)in->ncpus, sizeof(*v));
	if (!v)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(in->skel->maps.inject_counters), &key, v) == 0)
		for (int i = 0; i < in->ncpus; i++)
			sum += v[i];
	free(v);
	return sum;
}

/* Ports whose traffic is known not to be plaintext HTTP before any is
 * seen: TLS (443 and the mail/LDAP/DNS variants), SSH, DNS, the databases
 * and brokers sonde decodes or commonly meets. --inject-port overrides. */
static const uint16_t not_http_seed[] = {
	22, 25, 53, 443, 465, 587, 636, 853, 993, 995, 1433, 1521, 2181, 3306, 5432,
	5671, 5672, 6379, 6443, 8443, 9092, 9093, 11211, 27017,
};

void inject__set_policy(struct inject *in, bool learn, uint16_t own_port)
{
	if (!in)
		return;
	in->learn = learn;
	in->own_port = own_port;
	if (learn) {
		for (size_t i = 0; i < sizeof(not_http_seed) / sizeof(not_http_seed[0]); i++)
			inject__not_http_port(in, not_http_seed[i]);
		/* scrapes of the agent's own /metrics are never traced */
		if (own_port) {
			uint8_t one = 1;

			bpf_map_update_elem(bpf_map__fd(in->skel->maps.not_http_ports), &own_port,
					    &one, BPF_ANY);
		}
	}
	in->skel->bss->proc_rule = learn;
}

void inject__http_process(struct inject *in, uint32_t tgid)
{
	uint8_t one = 1;

	if (!in || !in->learn || !tgid)
		return;
	bpf_map_update_elem(bpf_map__fd(in->skel->maps.http_procs), &tgid, &one, BPF_ANY);
}

void inject__process_gone(struct inject *in, uint32_t tgid)
{
	if (in)
		bpf_map_delete_elem(bpf_map__fd(in->skel->maps.http_procs), &tgid);
}

bool inject__is_not_http_port(const struct inject *in, uint16_t port)
{
	return in && (in->other[port / 8] & (1u << (port % 8)));
}

bool inject__not_http_port(struct inject *in, uint16_t port)
{
	uint8_t one = 1;

	if (!in || !port || inject__has_port(in, port) || inject__is_not_http_port(in, port))
		return false;
	if (bpf_map_update_elem(bpf_map__fd(in->skel->maps.not_http_ports), &port, &one,
				BPF_ANY) != 0)
		return false;
	in->other[port / 8] |= (uint8_t)(1u << (port % 8));
	return true;
}

#define ADOPT_WINDOW_NS 2000000000ULL

void inject__client_seen(struct inject *in, const struct sonde_data_event *ev,
			 const struct sonde_tuple *tuple)
{
	uint16_t port = tuple->dport;
	int err;

	/* Requests to the agent's own /metrics are never traced: no point. */
	if (!in || (in->own_port && in->own_port == port))
		return;
	if (in->learn && inject__add_port(in, port))
		in->learnt_ns = ev->hdr.ktime;
	/* Connected after the agent to a port known before: sockops has it.
	 * Around a learning, a pool's other connections (opened together,
	 * classified one after another) need adopting too: tried for 2 s. */
	if (!inject__has_port(in, port) ||
	    (ev->role != SONDE_ROLE_UNKNOWN && ev->hdr.ktime - in->learnt_ns > ADOPT_WINDOW_NS))
		return;
	err = inject__add_socket(in, ev->tgid, ev->fd, tuple);
	if (err == 0)
		in->adopted++;
	else if (err != -EEXIST)	/* EEXIST: sockops was first */
		log_debug("could not adopt a connection for injection", LI("pid", ev->tgid)
			  LI("fd", ev->fd) LS("error", strerror(-err)));
}

uint64_t inject__adopted(const struct inject *in)
{
	return in ? in->adopted : 0;
}
