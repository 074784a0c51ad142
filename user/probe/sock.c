/* User side of sock.bpf.c, the socket tracer: loads it (syscall arguments
 * in task storage, else a hash), creates its per-CPU rings, attaches every
 * syscall tracepoint, and owns its maps: the ones other objects share,
 * sockets older than the agent, the kernel connection table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "probe/loader_int.h"
#include "probe/ring.h"
#include "probe/seed.h"
#include "probe/sock.h"
#include "sock.skel.h"
#include "tcp.skel.h"

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

int sock__open(struct loader *l, const struct loader_opts *o)
{
	struct bpf_program *prog;
	int err;

	loader__libbpf_clear();
	err = sock__load(l, o, o->args_store != ARGS_HASH);
	if (err && o->args_store == ARGS_AUTO) {
		/* Task storage is 5.11+ and not every kernel allows it here. */
		log_info("task-local storage unavailable for syscall arguments; using a hash map",
			 LS("error", strerror(-err)));
		loader__libbpf_clear();
		err = sock__load(l, o, false);
	}
	if (err) {
		loader__libbpf_dump("socket tracer load failed");
		log_error("cannot load socket tracer (verifier or permissions)",
			  LS("error", strerror(-err)));
		return err;
	}

	/* Rings first: a program that runs before its CPU's ring exists would
	 * only count a drop. */
	err = ring_set__new(&l->rings, bpf_map__fd(l->sock->maps.rings), l->ncpus, l->ring_bytes);
	if (err) {
		log_error("cannot create per-CPU ring buffers", LS("error", strerror(-err))
			  LI("cpus", l->ncpus) LI("ring_bytes", l->ring_bytes));
		return err;
	}

	/* Attach one by one so that each hook's outcome is known and reported. */
	bpf_object__for_each_program(prog, l->sock->obj) {
		const char *sec = bpf_program__section_name(prog);
		const char *tp = strrchr(sec, '/');
		struct probe_info *p = loader__probe_add(l, tp ? tp + 1 : sec, true);
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
	return 0;
}

void sock_probe__seed_preexisting(struct loader *l, const struct loader_opts *o)
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

void sock_probe__preexisting_tick(struct loader *l)
{
	uint64_t key;

	if (l->sock->bss->preexisting_live &&
	    bpf_map_get_next_key(bpf_map__fd(l->sock->maps.preexisting), NULL, &key) != 0)
		l->sock->bss->preexisting_live = 0;
}

int sock_probe__gc_args(struct loader *l)
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

int sock_probe__rings_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.rings);
}

int sock_probe__conns_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.conns);
}

int sock_probe__ssl_calls_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.ssl_calls);
}

int sock_probe__thread_ctx_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.thread_ctx);
}

int sock_probe__tcp_bytes_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.tcp_bytes);
}

uint64_t sock_probe__counter(const struct loader *l, enum sonde_counter idx)
{
	uint64_t vals[l->ncpus], sum = 0;
	uint32_t key = idx;

	if (bpf_map_lookup_elem(bpf_map__fd(l->sock->maps.counters), &key, vals))
		return 0;
	for (int i = 0; i < l->ncpus; i++)
		sum += vals[i];
	return sum;
}

void sock_probe__ignore_conn(struct loader *l, uint32_t tgid, int32_t fd, uint64_t sk)
{
	uint64_t key = (uint64_t)tgid << 32 | (uint32_t)fd;
	struct sonde_conn c;
	int mfd = sock_probe__conns_fd(l);

	if (bpf_map_lookup_elem(mfd, &key, &c) == 0 && c.sk == sk) {
		c.flags |= SONDE_CONN_IGNORED;
		bpf_map_update_elem(mfd, &key, &c, BPF_EXIST);
	}
}
