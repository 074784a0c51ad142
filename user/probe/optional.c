/* User side of the optional tracers, tcpstate.bpf.c (TCP health per
 * process) and sched.bpf.c (run-queue latency): tp_btf/raw tracepoints
 * only, attached hook by hook; one that fails is reported, never fatal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "probe/loader_int.h"
#include "probe/optional.h"
#include "sched.skel.h"
#include "tcpstate.skel.h"

/* Reports a program of an optional object that could not be used. */
static void optional__unavailable(struct loader *l, const char *obj, const char *hook,
				  const char *why)
{
	struct probe_info *p = loader__probe_add(l, hook, false);

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
	if (strncmp(sec, "iter/", 5) == 0) {	/* a task iterator: no hook at all */
		snprintf(out, n, "%s", sec);
		return;
	}
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

		if (!bpf_program__autoload(prog))	/* not used in this configuration */
			continue;
		optional__hook(l, obj, prog, hook, sizeof(hook));
		link = bpf_program__attach(prog);
		if (!link) {
			char why[80];

			snprintf(why, sizeof(why), "attach failed: %s", strerror(errno));
			optional__unavailable(l, obj, hook, why);
			continue;
		}
		*skel->progs[i].link = link;	/* destroyed with the skeleton */
		p = loader__probe_add(l, hook, false);
		if (p) {
			p->attached = true;
			snprintf(p->mode, sizeof(p->mode), "%s",
				 strncmp(hook, "iter/", 5) == 0 ? "iterator" : "tracepoint");
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

		if (!bpf_program__autoload(*skel->progs[i].prog))
			continue;
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

	loader__libbpf_clear();
	err = bpf_object__load_skeleton(skel);
	if (err) {
		char msg[96];

		snprintf(msg, sizeof(msg), "%s load failed (optional)", what);
		loader__libbpf_dump_at(LOG_WARN, msg);
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
	/* The socket and fentry capture tiers attach no syscall tracepoint:
	 * accept() is then seen as the passive open's handshake. */
	t->rodata->accept_by_state = loader__no_syscall_hooks(l);
	bpf_program__set_autoload(t->progs.tcpstate_accept_exit, !loader__no_syscall_hooks(l));
	bpf_program__set_autoload(t->progs.tcpstate_accept4_exit, !loader__no_syscall_hooks(l));
	if (optional__load(l, "tcpstate", "TCP health tracer", t->skeleton))
		tcpstate_bpf__destroy(t);
	else
		l->tcpstate = t;
}

/* Run-queue wait per process (sched.bpf.c). Optional. Its task iterator
 * always; its scheduler hooks (every context switch of the host) only with
 * --runqueue-histogram. */
static void sched_obj__load(struct loader *l, const struct loader_opts *o)
{
	struct sched_bpf *s = sched_bpf__open();

	if (!s) {
		log_warn("cannot open the run-queue tracer", LS("error", strerror(errno)));
		return;
	}
	s->rodata->filter_tgid = o->filter_tgid;
	bpf_program__set_autoload(s->progs.sched_wakeup, o->runq_histogram);
	bpf_program__set_autoload(s->progs.sched_wakeup_new, o->runq_histogram);
	bpf_program__set_autoload(s->progs.sched_switch, o->runq_histogram);
	bpf_program__set_autoload(s->progs.sched_exec, o->runq_histogram);
	if (optional__load(l, "sched", "run-queue tracer", s->skeleton))
		sched_bpf__destroy(s);
	else
		l->sched = s;
}

void optional__open(struct loader *l, const struct loader_opts *o)
{
	if (!o->no_tcp_health)
		tcpstate_obj__load(l, o);
	if (!o->no_sched)
		sched_obj__load(l, o);
}

int optional__tcp_stats_fd(const struct loader *l)
{
	return l->tcpstate ? bpf_map__fd(l->tcpstate->maps.tcp_stats) : -1;
}

int optional__runq_fd(const struct loader *l)
{
	return l->sched && l->sched->links.sched_switch ? bpf_map__fd(l->sched->maps.runq) : -1;
}

int optional__runq_iter_open(const struct loader *l)
{
	if (!l->sched || !l->sched->links.runq_tasks)
		return -1;
	return bpf_iter_create(bpf_link__fd(l->sched->links.runq_tasks));
}
