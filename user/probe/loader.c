/* BPF loading and attach-mode selection. Hooks with fentry/kprobe variants
 * are probed in order of cost (fentry → kprobe → tracepoint fallback); the
 * outcome of every hook is kept for the log, /healthz and sonde_probe_info. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "probe/loader.h"
#include "util/log.h"
#include "probe/ring.h"
#include "probe/seed.h"
#include "sched.skel.h"
#include "sock.skel.h"
#include "tcp.skel.h"
#include "tcpstate.skel.h"

#define MAX_PROBES 64

struct loader {
	struct sock_bpf *sock;
	struct tcp_bpf *tcp;		/* NULL when tcp_* hooks fell back to syscalls */
	struct tcpstate_bpf *tcpstate;	/* NULL when off or it could not load */
	struct sched_bpf *sched;	/* NULL when off or it could not load */
	bool tcp_sendpage;		/* tcp_sendpage hooked too (kernels before 6.5) */
	bool args_in_task;		/* syscall args in task storage (else the args hash) */
	struct ring_set *rings;
	uint32_t ring_bytes;		/* per CPU */
	struct probe_info probes[MAX_PROBES];
	size_t nprobes;
	int ncpus;
};

static struct probe_info *probe__add(struct loader *l, const char *hook, bool required)
{
	struct probe_info *p;

	if (l->nprobes >= MAX_PROBES)
		return NULL;
	p = &l->probes[l->nprobes++];
	memset(p, 0, sizeof(*p));
	snprintf(p->hook, sizeof(p->hook), "%s", hook);
	snprintf(p->mode, sizeof(p->mode), "unavailable");
	p->required = required;
	return p;
}

/* Syscall tracepoints live in tracefs, which a fresh host may not mount. */
static int tracefs__ensure(void)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/events/syscalls", &st) == 0 ||
	    stat("/sys/kernel/debug/tracing/events/syscalls", &st) == 0)
		return 0;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0) {
		int err = -errno;

		log_error("cannot mount tracefs", LS("path", "/sys/kernel/tracing")
			  LS("error", strerror(-err)));
		return err;
	}
	log_info("mounted tracefs (was not mounted)", LS("path", "/sys/kernel/tracing"));
	return 0;
}

/* The last lines libbpf printed at warning level (the verifier's log ends
 * up here), kept so that a load that finally fails can say why. Probing
 * modes that fail by design would otherwise flood the log. */
#define LIBBPF_TAIL_LINES 40
static char libbpf_tail[LIBBPF_TAIL_LINES][240];
static unsigned int libbpf_tail_next, libbpf_tail_count;

static void libbpf_tail__clear(void)
{
	libbpf_tail_next = libbpf_tail_count = 0;
}

static void libbpf_tail__dump_at(enum log_level level, const char *what)
{
	unsigned int first = (libbpf_tail_next + LIBBPF_TAIL_LINES - libbpf_tail_count) %
			     LIBBPF_TAIL_LINES;

	for (unsigned int i = 0; i < libbpf_tail_count; i++)
		log_at(level, what, LS("libbpf", libbpf_tail[(first + i) % LIBBPF_TAIL_LINES]));
}

static void libbpf_tail__dump(const char *what)
{
	libbpf_tail__dump_at(LOG_ERROR, what);
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char buf[16384];
	char *line, *save = NULL;
	int n;

	if (level == LIBBPF_DEBUG && !log__enabled(LOG_DEBUG))
		return 0;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n <= 0)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (level == LIBBPF_DEBUG) {
			log_debug("libbpf", LS("detail", line));
			continue;
		}
		snprintf(libbpf_tail[libbpf_tail_next], sizeof(libbpf_tail[0]), "%s", line);
		libbpf_tail_next = (libbpf_tail_next + 1) % LIBBPF_TAIL_LINES;
		if (libbpf_tail_count < LIBBPF_TAIL_LINES)
			libbpf_tail_count++;
		if (log__enabled(LOG_DEBUG))
			log_debug("libbpf", LS("detail", line));
	}
	return 0;
}

enum tcp_mode { TCP_FENTRY, TCP_KPROBE };

/* Whether the running kernel has function fn (from its BTF). */
static bool kernel_has_func(const char *fn)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (!vmlinux)
		return false;
	found = btf__find_by_name_kind(vmlinux, fn, BTF_KIND_FUNC) > 0;
	btf__free(vmlinux);
	return found;
}

/* Tries one variant of the tcp byte-accounting hooks. tcp_sendpage, the
 * sendfile/splice path before Linux 6.5, is hooked where it exists. */
static int tcp__try(struct loader *l, const struct loader_opts *o, enum tcp_mode m,
		    char *why, size_t whylen)
{
	struct tcp_bpf *t = tcp_bpf__open();
	const char *name = m == TCP_FENTRY ? "fentry" : "kprobe";
	bool sendpage = kernel_has_func("tcp_sendpage");
	struct {
		struct bpf_program *fexit, *kret;
		struct bpf_link **fexit_link, **kret_link;
		bool want;
	} hooks[4];
	int err = 0;

	if (!t) {
		snprintf(why, whylen, "%s: open failed: %s", name, strerror(errno));
		return -errno;
	}
	hooks[0] = (typeof(hooks[0])){ t->progs.fexit_tcp_sendmsg, t->progs.kret_tcp_sendmsg,
				       &t->links.fexit_tcp_sendmsg, &t->links.kret_tcp_sendmsg, true };
	hooks[1] = (typeof(hooks[0])){ t->progs.fexit_tcp_recvmsg, t->progs.kret_tcp_recvmsg,
				       &t->links.fexit_tcp_recvmsg, &t->links.kret_tcp_recvmsg, true };
	hooks[2] = (typeof(hooks[0])){ t->progs.fexit_tcp_sendpage, t->progs.kret_tcp_sendpage,
				       &t->links.fexit_tcp_sendpage, &t->links.kret_tcp_sendpage,
				       sendpage };
	/* sends of sockets in inject.bpf.c's sockhash; reported with tcp_sendmsg */
	hooks[3] = (typeof(hooks[0])){ t->progs.fexit_tcp_bpf_sendmsg, t->progs.kret_tcp_bpf_sendmsg,
				       &t->links.fexit_tcp_bpf_sendmsg, &t->links.kret_tcp_bpf_sendmsg,
				       !o->no_inject && kernel_has_func("tcp_bpf_sendmsg") };
	t->rodata->self_tgid = o->self_tgid;
	t->rodata->filter_tgid = o->filter_tgid;
	for (int i = 0; i < 4; i++) {
		bpf_program__set_autoload(hooks[i].fexit, hooks[i].want && m == TCP_FENTRY);
		bpf_program__set_autoload(hooks[i].kret, hooks[i].want && m == TCP_KPROBE);
	}
	err = tcp_bpf__load(t);
	if (err) {
		snprintf(why, whylen, "%s: load failed: %s", name, strerror(-err));
		goto cleanup;
	}
	for (int i = 0; i < 4; i++) {
		struct bpf_program *prog = m == TCP_FENTRY ? hooks[i].fexit : hooks[i].kret;
		struct bpf_link **slot = m == TCP_FENTRY ? hooks[i].fexit_link : hooks[i].kret_link;

		if (!hooks[i].want)
			continue;
		/* in the skeleton's slot, so tcp_bpf__destroy() detaches it */
		*slot = bpf_program__attach(prog);
		if (!*slot) {
			err = -errno;
			snprintf(why, whylen, "%s: attach %s failed: %s%s", name,
				 bpf_program__name(prog), strerror(-err),
				 err == -ENOENT && m == TCP_KPROBE ?
					 " (kernel built without CONFIG_KPROBES?)" : "");
			goto cleanup;
		}
	}
	l->tcp = t;
	l->tcp_sendpage = sendpage;
	return 0;
cleanup:
	tcp_bpf__destroy(t);
	return err;
}

/* Picks the attach mode of the tcp_* hooks. Auto: fentry, else kprobe, else
 * the syscall tracepoints count the bytes. A forced mode that does not work
 * here is an error that names the hook and why. */
static int tcp__probe(struct loader *l, const struct loader_opts *o)
{
	struct probe_info *ps = probe__add(l, "tcp_sendmsg", false);
	struct probe_info *pr = probe__add(l, "tcp_recvmsg", false);
	char why_f[160] = "", why_k[160] = "";
	const char *mode = "tracepoint";
	int err = 0;

	switch (o->attach_mode) {
	case ATTACH_AUTO:
		if (tcp__try(l, o, TCP_FENTRY, why_f, sizeof(why_f)) == 0)
			mode = "fentry";
		else if (tcp__try(l, o, TCP_KPROBE, why_k, sizeof(why_k)) == 0)
			mode = "kprobe";
		break;
	case ATTACH_FENTRY:
		err = tcp__try(l, o, TCP_FENTRY, why_f, sizeof(why_f));
		mode = "fentry";
		if (err)
			log_error("--attach-mode=fentry is not available on this kernel "
				  "(fentry/fexit programs refused: no BTF trampolines, or lockdown)",
				  LS("hook", "tcp_sendmsg") LS("error", why_f));
		break;
	case ATTACH_KPROBE:
		err = tcp__try(l, o, TCP_KPROBE, why_k, sizeof(why_k));
		mode = "kprobe";
		if (err)
			log_error("--attach-mode=kprobe is not available on this kernel "
				  "(kprobes refused or kernel built without CONFIG_KPROBES)",
				  LS("hook", "tcp_sendmsg") LS("error", why_k));
		break;
	case ATTACH_TRACEPOINT:
		snprintf(why_f, sizeof(why_f), "forced by --attach-mode=tracepoint");
		break;
	}
	if (err)
		return err;
	if (l->tcp_sendpage) {
		struct probe_info *pp = probe__add(l, "tcp_sendpage", false);

		if (pr && pp)
			pr = pp;	/* consecutive: reported like the other two */
	}
	for (struct probe_info *p = ps; p && p <= pr; p++) {
		snprintf(p->mode, sizeof(p->mode), "%s", mode);
		p->attached = true;
		snprintf(p->detail, sizeof(p->detail), "%s%s%s", why_f,
			 why_f[0] && why_k[0] ? "; " : "", why_k);
		if (strcmp(mode, "tracepoint") == 0 && o->attach_mode == ATTACH_AUTO)
			log_warn("fentry and kprobe unavailable; counting TCP bytes at syscall tracepoints "
				 "(misses sendfile/splice/io_uring)",
				 LS("hook", p->hook) LS("mode", mode) LS("fentry", why_f)
				 LS("kprobe", why_k));
		else
			log_info("hook attached", LS("hook", p->hook) LS("mode", mode)
				 LS("detail", p->detail));
	}
	return 0;
}

/* Opens, configures and loads the socket tracer; args_in_task selects
 * task-local storage (else a hash) for per-thread syscall arguments. */
static int sock__load(struct loader *l, const struct loader_opts *o, bool args_in_task)
{
	int err;

	sock_bpf__destroy(l->sock);
	l->sock = sock_bpf__open();
	if (!l->sock)
		return -errno;
	l->sock->rodata->self_tgid = o->self_tgid;
	l->sock->rodata->filter_tgid = o->filter_tgid;
	l->sock->rodata->filter_port = o->filter_port;
	l->sock->rodata->capture_bytes = o->capture_bytes;
	l->sock->rodata->wakeup_bytes = l->ring_bytes / 8;
	l->sock->rodata->count_tcp_bytes = l->tcp == NULL;
	l->sock->rodata->args_in_task = args_in_task;
	l->sock->rodata->trace_ctx_on = !o->no_inject;
	l->sock->rodata->tls_bind = o->tls;
	if (!o->tls)	/* unused, but referenced by the program: keep it tiny */
		bpf_map__set_max_entries(l->sock->maps.ssl_calls, 1);
	bpf_map__set_max_entries(l->sock->maps.rings, (uint32_t)l->ncpus);
	/* The inner template's size is left alone: the kernel does not compare
	 * max_entries when a ring is stored, and libbpf 1.1 crashes resizing
	 * an inner template (it has no owning object). */
	/* The unused store still exists (the other branch references it): keep it tiny. */
	if (args_in_task)
		bpf_map__set_max_entries(l->sock->maps.args, 1);
	if (l->tcp) {
		err = bpf_map__reuse_fd(l->sock->maps.tcp_bytes,
					bpf_map__fd(l->tcp->maps.tcp_bytes));
		if (err)
			return err;
	}
	err = sock_bpf__load(l->sock);
	if (err)
		return err;
	l->args_in_task = args_in_task;
	return 0;
}

/* Reports a program of an optional object that could not be used. */
static void optional__unavailable(struct loader *l, const char *obj, const char *hook,
				  const char *why)
{
	struct probe_info *p = probe__add(l, hook, false);

	if (p)
		snprintf(p->detail, sizeof(p->detail), "%s", why);
	log_warn("optional hook not attached", LS("object", obj) LS("hook", hook)
		 LS("mode", "unavailable") LS("error", why));
}

/* Hook name of a program: the tracepoint's name; a syscall tracepoint that
 * sock.bpf.c also uses gets the object's name in front, so that each
 * sonde_probe_info series stays one program. */
static void optional__hook(struct loader *l, const char *obj, struct bpf_program *prog,
			   char *out, size_t n)
{
	const char *sec = bpf_program__section_name(prog);
	const char *tp = strrchr(sec, '/');

	snprintf(out, n, "%s", tp ? tp + 1 : sec);
	for (size_t i = 0; i < l->nprobes; i++)
		if (strcmp(l->probes[i].hook, out) == 0) {
			snprintf(out, n, "%s:%s", obj, tp ? tp + 1 : sec);
			break;
		}
}

/* Attaches every program of an optional object one by one (tp_btf and
 * syscall tracepoints: mode "tracepoint"). A hook that does not attach is
 * logged and reported unavailable, never fatal. Returns the number attached. */
static int optional__attach(struct loader *l, const char *obj,
			    struct bpf_object_skeleton *skel)
{
	int attached = 0;

	for (int i = 0; i < skel->prog_cnt; i++) {
		struct bpf_program *prog = *skel->progs[i].prog;
		struct probe_info *p;
		struct bpf_link *link;
		char hook[40];

		optional__hook(l, obj, prog, hook, sizeof(hook));
		link = bpf_program__attach(prog);
		if (!link) {
			char why[80];

			snprintf(why, sizeof(why), "attach failed: %s", strerror(errno));
			optional__unavailable(l, obj, hook, why);
			continue;
		}
		*skel->progs[i].link = link;	/* destroyed with the skeleton */
		p = probe__add(l, hook, false);
		if (p) {
			p->attached = true;
			snprintf(p->mode, sizeof(p->mode), "tracepoint");
		}
		attached++;
	}
	return attached;
}

/* The names of an object's programs as hooks, all unavailable (load failed). */
static void optional__all_unavailable(struct loader *l, const char *obj,
				      struct bpf_object_skeleton *skel, const char *why)
{
	for (int i = 0; i < skel->prog_cnt; i++) {
		char hook[40];

		optional__hook(l, obj, *skel->progs[i].prog, hook, sizeof(hook));
		optional__unavailable(l, obj, hook, why);
	}
}

/* Loads and attaches an optional tracer that is already opened and
 * configured. On failure its hooks are reported unavailable and the caller
 * destroys it; the agent runs on without it. */
static int optional__load(struct loader *l, const char *name, const char *what,
			  struct bpf_object_skeleton *skel)
{
	char why[80];
	int err;

	libbpf_tail__clear();
	err = bpf_object__load_skeleton(skel);
	if (err) {
		char msg[96];

		snprintf(msg, sizeof(msg), "%s load failed (optional)", what);
		libbpf_tail__dump_at(LOG_WARN, msg);
		snprintf(why, sizeof(why), "load failed: %s", strerror(-err));
		optional__all_unavailable(l, name, skel, why);
		return err;
	}
	log_info("optional tracer attached", LS("tracer", what)
		 LI("hooks", optional__attach(l, name, skel)));
	return 0;
}

/* TCP health per process (tcpstate.bpf.c). Optional. */
static void tcpstate_obj__load(struct loader *l, const struct loader_opts *o)
{
	struct tcpstate_bpf *t = tcpstate_bpf__open();

	if (!t) {
		log_warn("cannot open the TCP health tracer", LS("error", strerror(errno)));
		return;
	}
	t->rodata->self_tgid = o->self_tgid;
	t->rodata->filter_tgid = o->filter_tgid;
	t->rodata->filter_port = o->filter_port;
	if (optional__load(l, "tcpstate", "TCP health tracer", t->skeleton))
		tcpstate_bpf__destroy(t);
	else
		l->tcpstate = t;
}

/* Run-queue latency per process (sched.bpf.c). Optional. */
static void sched_obj__load(struct loader *l, const struct loader_opts *o)
{
	struct sched_bpf *s = sched_bpf__open();

	if (!s) {
		log_warn("cannot open the run-queue latency tracer", LS("error", strerror(errno)));
		return;
	}
	s->rodata->filter_tgid = o->filter_tgid;
	if (optional__load(l, "sched", "run-queue latency tracer", s->skeleton))
		sched_bpf__destroy(s);
	else
		l->sched = s;
}

int loader__open(struct loader **out, const struct loader_opts *o)
{
	struct loader *l = calloc(1, sizeof(*l));
	struct bpf_program *prog;
	int err;

	if (!l)
		return -ENOMEM;
	libbpf_set_print(libbpf_log);
	l->ncpus = libbpf_num_possible_cpus();
	if (l->ncpus <= 0) {
		err = l->ncpus ? l->ncpus : -EINVAL;
		goto cleanup;
	}
	err = tracefs__ensure();
	if (err)
		goto cleanup;
	/* Each CPU gets an equal share of the ring budget, a power of two of
	 * at least 256 KiB. */
	l->ring_bytes = 256 * 1024;
	while ((uint64_t)l->ring_bytes * 2 * (uint64_t)l->ncpus <= o->ring_bytes)
		l->ring_bytes *= 2;

	err = tcp__probe(l, o);
	if (err)
		goto cleanup;

	libbpf_tail__clear();
	err = sock__load(l, o, o->args_store != ARGS_HASH);
	if (err && o->args_store == ARGS_AUTO) {
		/* Task storage is 5.11+ and not every kernel allows it here. */
		log_info("task-local storage unavailable for syscall arguments; using a hash map",
			 LS("error", strerror(-err)));
		libbpf_tail__clear();
		err = sock__load(l, o, false);
	}
	if (err) {
		libbpf_tail__dump("socket tracer load failed");
		log_error("cannot load socket tracer (verifier or permissions)",
			  LS("error", strerror(-err)));
		goto cleanup;
	}

	/* Rings first: a program that runs before its CPU's ring exists would
	 * only count a drop. */
	err = ring_set__new(&l->rings, bpf_map__fd(l->sock->maps.rings), l->ncpus, l->ring_bytes);
	if (err) {
		log_error("cannot create per-CPU ring buffers", LS("error", strerror(-err))
			  LI("cpus", l->ncpus) LI("ring_bytes", l->ring_bytes));
		goto cleanup;
	}

	/* Attach one by one so that each hook's outcome is known and reported. */
	bpf_object__for_each_program(prog, l->sock->obj) {
		const char *sec = bpf_program__section_name(prog);
		const char *tp = strrchr(sec, '/');
		struct probe_info *p = probe__add(l, tp ? tp + 1 : sec, true);
		struct bpf_link *link = bpf_program__attach(prog);

		if (!p)
			continue;
		if (!link) {
			snprintf(p->detail, sizeof(p->detail), "attach failed: %s", strerror(errno));
			log_error("hook not attached", LS("hook", p->hook) LS("mode", "tracepoint")
				  LS("error", p->detail));
			continue;
		}
		/* The skeleton destroys links it knows about; keep ours in its slots. */
		for (int i = 0; i < l->sock->skeleton->prog_cnt; i++)
			if (*l->sock->skeleton->progs[i].prog == prog)
				*l->sock->skeleton->progs[i].link = link;
		p->attached = true;
		snprintf(p->mode, sizeof(p->mode), "tracepoint");
		log_debug("hook attached", LS("hook", p->hook) LS("mode", "tracepoint"));
	}
	log_info("socket tracer attached", LI("hooks", l->nprobes)
		 LS("syscall_args", l->args_in_task ? "task_storage" : "hash")
		 LS("healthy", loader__healthy(l) ? "true" : "false")
		 LI("capture_bytes", o->capture_bytes) LI("cpus", l->ncpus)
		 LI("ring_bytes_per_cpu", l->ring_bytes));
	if (!o->no_tcp_health)
		tcpstate_obj__load(l, o);
	if (!o->no_sched)
		sched_obj__load(l, o);
	*out = l;
	return 0;
cleanup:
	loader__close(l);
	return err;
}

void loader__close(struct loader *l)
{
	if (!l)
		return;
	sock_bpf__destroy(l->sock);	/* detaches first: no producer outlives its ring */
	tcp_bpf__destroy(l->tcp);
	tcpstate_bpf__destroy(l->tcpstate);
	sched_bpf__destroy(l->sched);
	ring_set__free(l->rings);
	free(l);
}

void loader__add_probe(struct loader *l, const char *hook, const char *mode, bool attached,
		       const char *detail)
{
	struct probe_info *p = probe__add(l, hook, false);

	if (!p)
		return;
	snprintf(p->mode, sizeof(p->mode), "%s", mode);
	snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
	p->attached = attached;
}

struct ring_set *loader__rings(const struct loader *l)
{
	return l->rings;
}

uint32_t loader__ring_bytes(const struct loader *l)
{
	return l->ring_bytes;
}

void loader__seed_preexisting(struct loader *l, const struct loader_opts *o)
{
	int n = seed__preexisting(bpf_map__fd(l->sock->maps.preexisting), o->self_tgid,
				  o->filter_tgid, bpf_map__max_entries(l->sock->maps.preexisting));

	if (n < 0) {
		log_warn("cannot scan /proc for existing sockets", LS("error", strerror(-n)));
		return;
	}
	l->sock->bss->preexisting_live = n > 0;
	log_info("existing TCP sockets found", LI("sockets", n));
}

void loader__preexisting_tick(struct loader *l)
{
	uint64_t key;

	if (l->sock->bss->preexisting_live &&
	    bpf_map_get_next_key(bpf_map__fd(l->sock->maps.preexisting), NULL, &key) != 0)
		l->sock->bss->preexisting_live = 0;
}

int loader__gc_args(struct loader *l)
{
	int fd = bpf_map__fd(l->sock->maps.args), removed = 0;
	uint64_t key, next, *cur = NULL;
	char path[64];
	struct stat st;

	if (l->args_in_task)	/* freed with the task by the kernel */
		return 0;
	while (bpf_map_get_next_key(fd, cur, &next) == 0) {
		key = next;
		cur = &key;
		snprintf(path, sizeof(path), "/proc/%u/task/%u", (uint32_t)(key >> 32), (uint32_t)key);
		if (stat(path, &st) != 0 && errno == ENOENT && bpf_map_delete_elem(fd, &key) == 0)
			removed++;
	}
	return removed;
}

int loader__rings_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.rings);
}

int loader__conns_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.conns);
}

int loader__ssl_calls_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.ssl_calls);
}

int loader__thread_ctx_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.thread_ctx);
}

int loader__tcp_bytes_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.tcp_bytes);
}

int loader__tcp_stats_fd(const struct loader *l)
{
	return l->tcpstate ? bpf_map__fd(l->tcpstate->maps.tcp_stats) : -1;
}

int loader__runq_fd(const struct loader *l)
{
	return l->sched ? bpf_map__fd(l->sched->maps.runq) : -1;
}

int loader__ncpus(const struct loader *l)
{
	return l->ncpus;
}

uint64_t loader__counter(const struct loader *l, enum sonde_counter idx)
{
	uint64_t vals[l->ncpus], sum = 0;
	uint32_t key = idx;

	if (bpf_map_lookup_elem(bpf_map__fd(l->sock->maps.counters), &key, vals))
		return 0;
	for (int i = 0; i < l->ncpus; i++)
		sum += vals[i];
	return sum;
}

size_t loader__probes(const struct loader *l, const struct probe_info **out)
{
	*out = l->probes;
	return l->nprobes;
}

bool loader__healthy(const struct loader *l)
{
	for (size_t i = 0; i < l->nprobes; i++)
		if (l->probes[i].required && !l->probes[i].attached)
			return false;
	return true;
}

void loader__ignore_conn(struct loader *l, uint32_t tgid, int32_t fd, uint64_t sk)
{
	uint64_t key = (uint64_t)tgid << 32 | (uint32_t)fd;
	struct sonde_conn c;
	int mfd = loader__conns_fd(l);

	if (bpf_map_lookup_elem(mfd, &key, &c) == 0 && c.sk == sk) {
		c.flags |= SONDE_CONN_IGNORED;
		bpf_map_update_elem(mfd, &key, &c, BPF_EXIST);
	}
}
