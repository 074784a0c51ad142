/* User side of sock.bpf.c, the socket tracer: picks the capture tier
 * (socket-level tp_btf hooks where the kernel has them, else syscall
 * tracepoints with their arguments in task storage or a hash), loads the
 * programs of that tier only, creates the per-CPU rings, attaches each
 * program, and owns its maps: the ones other objects share, sockets older
 * than the agent, the kernel connection table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "probe/loader_int.h"
#include "probe/ring.h"
#include "probe/seed.h"
#include "probe/sock.h"
#include "sock.skel.h"
#include "tcp.skel.h"

static const char *const tier_name[] = {
	[TIER_SYSCALL] = "syscall", [TIER_SOCKET] = "socket", [TIER_FENTRY] = "fentry",
};

/* Whether the running kernel has the tracepoint tp as a BTF-enabled one
 * (its btf_trace_<tp> typedef): sock_send_length and sock_recv_length
 * came with Linux 6.3. */
static bool kernel_has_tp_btf(const char *tp)
{
	char name[96];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return loader__kernel_has(name, BTF_KIND_TYPEDEF);
}

static bool sec_is(const struct bpf_program *prog, const char *prefix)
{
	return strncmp(bpf_program__section_name(prog), prefix, strlen(prefix)) == 0;
}

/* The lifecycle hooks of the socket and fentry tiers. */
static bool prog_is_lifecycle(const struct bpf_program *prog)
{
	return sec_is(prog, "tp_btf/inet_sock_set_state") || sec_is(prog, "tp_btf/tcp_destroy_sock");
}

/* Whether prog belongs to tier. Process exit runs in every tier. The
 * fentry tier's tcp_bpf_sendmsg hook only with injection (sockhash
 * sockets), its tcp_sendpage hook only where that function exists. */
static bool prog_in_tier(const struct bpf_program *prog, enum capture_tier tier,
			 const struct loader_opts *o)
{
	if (sec_is(prog, "tp_btf/sched_process_exit"))
		return true;
	switch (tier) {
	case TIER_SYSCALL:
		return sec_is(prog, "tracepoint/syscalls/");
	case TIER_SOCKET:
		return sec_is(prog, "tp_btf/sock_") || prog_is_lifecycle(prog);
	case TIER_FENTRY:
		if (sec_is(prog, "fexit/tcp_bpf_sendmsg"))
			return !o->no_inject && loader__kernel_has("tcp_bpf_sendmsg", BTF_KIND_FUNC);
		if (sec_is(prog, "fexit/tcp_sendpage"))
			return loader__kernel_has("tcp_sendpage", BTF_KIND_FUNC);
		return sec_is(prog, "fexit/") || prog_is_lifecycle(prog);
	}
	return false;
}

/* Opens, configures and loads the socket tracer with the programs of one
 * tier; args_in_task selects task-local storage (else a hash) for
 * per-thread syscall arguments (syscall tier). */
static int sock__load(struct loader *l, const struct loader_opts *o, enum capture_tier tier,
		      bool args_in_task)
{
	bool sockets = tier != TIER_SYSCALL;
	struct bpf_program *prog;
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
	l->sock->rodata->sock_tier = sockets;
	bpf_object__for_each_program(prog, l->sock->obj)
		bpf_program__set_autoload(prog, prog_in_tier(prog, tier, o));
	if (!o->tls) {	/* unused, but referenced by the program: keep them tiny */
		bpf_map__set_max_entries(l->sock->maps.ssl_calls, 1);
		bpf_map__set_max_entries(l->sock->maps.membio_tgids, 1);
		bpf_map__set_max_entries(l->sock->maps.membio_recv, 1);
	}
	bpf_map__set_max_entries(l->sock->maps.rings, (uint32_t)l->ncpus);
	/* The inner template's size is left alone: the kernel does not compare
	 * max_entries when a ring is stored, and libbpf 1.1 crashes resizing
	 * an inner template (it has no owning object). */
	/* The unused store still exists (the other branch references it): keep it tiny. */
	if (args_in_task || sockets)
		bpf_map__set_max_entries(l->sock->maps.args, 1);
	/* The socket and fentry tiers read a call's registers when it ends: a
	 * thread blocked since before attach needs no seeding. */
	if (sockets)
		bpf_map__set_max_entries(l->sock->maps.preexisting, 1);
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
	l->tier = tier;
	l->bytes_in_records = sockets && l->tcp == NULL;
	return 0;
}

/* The syscall tier: syscall arguments in task storage, else in a hash. */
static int sock__load_syscall_tier(struct loader *l, const struct loader_opts *o)
{
	int err;

	loader__libbpf_clear();
	err = sock__load(l, o, TIER_SYSCALL, o->args_store != ARGS_HASH);
	if (err && o->args_store == ARGS_AUTO) {
		/* Task storage is 5.11+ and not every kernel allows it here. */
		log_info("task-local storage unavailable for syscall arguments; using a hash map",
			 LS("error", strerror(-err)));
		loader__libbpf_clear();
		err = sock__load(l, o, TIER_SYSCALL, false);
	}
	return err;
}

/* Picks and loads the capture tier, cheapest first:
 *   socket  tp_btf/sock_send_length + sock_recv_length (Linux 6.3+);
 *   fentry  fexit on tcp_sendmsg/tcp_recvmsg (BTF trampolines, 5.17+);
 *   syscall syscall tracepoints.
 * --attach-mode socket forces the first (an error where it does not work),
 * tracepoint the last; an explicit --syscall-args store only exists in the
 * syscall tier, so it selects that tier; kprobe forces the tcp_* byte
 * hooks only (there is no kprobe capture tier: socket, else syscall).
 * why: what ruled the cheaper tiers out. */
static int sock__load_tier(struct loader *l, const struct loader_opts *o, char *why, size_t n)
{
	bool try_socket = o->attach_mode != ATTACH_TRACEPOINT && o->args_store == ARGS_AUTO;
	bool try_fentry = (o->attach_mode == ATTACH_AUTO || o->attach_mode == ATTACH_FENTRY) &&
			  o->args_store == ARGS_AUTO;
	size_t off = 0;
	int err;

	why[0] = 0;
	if (o->attach_mode == ATTACH_TRACEPOINT)
		off += (size_t)snprintf(why + off, n - off, "forced by --attach-mode=tracepoint");
	else if (o->args_store != ARGS_AUTO)
		off += (size_t)snprintf(why + off, n - off, "--syscall-args selects the syscall tier");
	if (try_socket) {
		if (!kernel_has_tp_btf("sock_send_length") || !kernel_has_tp_btf("sock_recv_length")) {
			off += (size_t)snprintf(why + off, n - off,
						"socket: no tp_btf/sock_send_length (Linux 6.3+)");
		} else {
			loader__libbpf_clear();
			err = sock__load(l, o, TIER_SOCKET, false);
			if (!err)
				return 0;
			off += (size_t)snprintf(why + off, n - off, "socket: load failed: %s",
						strerror(-err));
			loader__libbpf_dump_at(o->attach_mode == ATTACH_SOCKET ? LOG_ERROR : LOG_WARN,
					       "socket-level capture load failed");
		}
	}
	if (o->attach_mode == ATTACH_SOCKET) {
		log_error("--attach-mode=socket is not available on this kernel",
			  LS("hook", "payload_capture") LS("error", why));
		return -EOPNOTSUPP;
	}
	if (try_fentry && off < n) {
		loader__libbpf_clear();
		err = sock__load(l, o, TIER_FENTRY, false);
		if (!err)
			return 0;
		off += (size_t)snprintf(why + off, n - off, "%sfentry: load failed: %s",
					off ? "; " : "", strerror(-err));
		loader__libbpf_dump_at(LOG_DEBUG, "fentry capture load failed");
	}
	return sock__load_syscall_tier(l, o);
}

int sock__open(struct loader *l, const struct loader_opts *o)
{
	struct bpf_program *prog;
	struct probe_info *tier;
	char why[160];
	int err;

	err = sock__load_tier(l, o, why, sizeof(why));
	if (err == -EOPNOTSUPP)
		return err;
	if (err) {
		loader__libbpf_dump("socket tracer load failed");
		log_error("cannot load socket tracer (verifier or permissions)",
			  LS("error", strerror(-err)));
		return err;
	}
	/* Without tcp.bpf.c, the capture hooks count TCP bytes (tcp.c said
	 * "tracepoint"): in the socket tier those are tp_btf hooks. (The
	 * fentry tier exists only where tcp.bpf.c's fentry hooks work.) */
	for (size_t i = 0; loader__no_syscall_hooks(l) && !l->tcp && i < l->nprobes; i++)
		if (strncmp(l->probes[i].hook, "tcp_", 4) == 0 &&
		    strcmp(l->probes[i].mode, "tracepoint") == 0)
			snprintf(l->probes[i].mode, sizeof(l->probes[i].mode), "tp_btf");
	/* The tier as one series: sonde_probe_info{hook="payload_capture",
	 * mode="socket"|"fentry"|"syscall"}. */
	tier = loader__probe_add(l, "payload_capture", true);
	if (tier) {
		snprintf(tier->mode, sizeof(tier->mode), "%s", tier_name[l->tier]);
		snprintf(tier->detail, sizeof(tier->detail), "%s", why);
		tier->attached = true;
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
		const char *mode = sec_is(prog, "tracepoint/") ? "tracepoint" :
				   sec_is(prog, "fexit/") ? "fentry" : "tp_btf";
		struct probe_info *p;
		struct bpf_link *link;
		char hook[40];

		if (!bpf_program__autoload(prog))
			continue;
		/* fexit/tcp_sendmsg: "sock:tcp_sendmsg", apart from tcp.c's
		 * byte-accounting hook of the same function */
		snprintf(hook, sizeof(hook), "%s%s", sec_is(prog, "fexit/") ? "sock:" : "",
			 tp ? tp + 1 : sec);
		p = loader__probe_add(l, hook, true);
		link = bpf_program__attach(prog);
		if (!p)
			continue;
		if (!link) {
			snprintf(p->detail, sizeof(p->detail), "attach failed: %s", strerror(errno));
			log_error("hook not attached", LS("hook", p->hook) LS("mode", mode)
				  LS("error", p->detail));
			continue;
		}
		/* The skeleton destroys links it knows about; keep ours in its slots. */
		for (int i = 0; i < l->sock->skeleton->prog_cnt; i++)
			if (*l->sock->skeleton->progs[i].prog == prog)
				*l->sock->skeleton->progs[i].link = link;
		p->attached = true;
		snprintf(p->mode, sizeof(p->mode), "%s", mode);
		log_debug("hook attached", LS("hook", p->hook) LS("mode", mode));
	}
	log_info("socket tracer attached", LI("hooks", l->nprobes)
		 LS("capture_tier", tier_name[l->tier])
		 LS("capture_hooks", l->tier == TIER_SOCKET ?
			"tp_btf/sock_send_length,sock_recv_length (no syscall tracepoints)" :
			l->tier == TIER_FENTRY ?
			"fexit/tcp_sendmsg,tcp_recvmsg (no syscall tracepoints)" :
			"syscall tracepoints (every syscall on the host takes the slow path)")
		 LS("cheaper_tiers_unused_because", why)
		 LS("syscall_args", loader__no_syscall_hooks(l) ? "registers" :
			l->args_in_task ? "task_storage" : "hash")
		 LS("healthy", loader__healthy(l) ? "true" : "false")
		 LI("capture_bytes", o->capture_bytes) LI("cpus", l->ncpus)
		 LI("ring_bytes_per_cpu", l->ring_bytes));
	return 0;
}

void sock_probe__seed_preexisting(struct loader *l, const struct loader_opts *o)
{
	int n;

	if (loader__no_syscall_hooks(l))	/* sees a call's registers when it ends: nothing to seed */
		return;
	n = seed__preexisting(bpf_map__fd(l->sock->maps.preexisting), o->self_tgid,
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

	if (!loader__no_syscall_hooks(l) && l->sock->bss->preexisting_live &&
	    bpf_map_get_next_key(bpf_map__fd(l->sock->maps.preexisting), NULL, &key) != 0)
		l->sock->bss->preexisting_live = 0;
}

int sock_probe__gc_args(struct loader *l)
{
	int fd = bpf_map__fd(l->sock->maps.args), removed = 0;
	uint64_t key, next, *cur = NULL;
	char path[64];
	struct stat st;

	if (l->args_in_task || loader__no_syscall_hooks(l))	/* freed with the task, or none */
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

int sock_probe__membio_tgids_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.membio_tgids);
}

int sock_probe__membio_recv_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.membio_recv);
}

int sock_probe__thread_ctx_fd(const struct loader *l)
{
	return bpf_map__fd(l->sock->maps.thread_ctx);
}

bool sock_probe__bytes_in_records(const struct loader *l)
{
	return l->bytes_in_records;
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

void sock_probe__unignore_conn(struct loader *l, uint32_t tgid, int32_t fd, uint64_t sk)
{
	uint64_t key = (uint64_t)tgid << 32 | (uint32_t)fd;
	struct sonde_conn c;
	int mfd = sock_probe__conns_fd(l);

	if (bpf_map_lookup_elem(mfd, &key, &c) == 0 && c.sk == sk && (c.flags & SONDE_CONN_IGNORED)) {
		c.flags &= ~SONDE_CONN_IGNORED;
		bpf_map_update_elem(mfd, &key, &c, BPF_EXIST);
	}
}

int sock_probe__unseen(const struct loader *l, struct sonde_unseen_count out[SONDE_UNSEEN__MAX])
{
	struct sonde_unseen_count vals[l->ncpus];

	for (uint32_t k = 0; k < SONDE_UNSEEN__MAX; k++) {
		out[k].calls = out[k].bytes = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(l->sock->maps.unseen), &k, vals))
			return -errno;
		for (int i = 0; i < l->ncpus; i++) {
			out[k].calls += vals[i].calls;
			out[k].bytes += vals[i].bytes;
		}
	}
	return 0;
}

bool sock_probe__socket_tier(const struct loader *l)
{
	return loader__no_syscall_hooks(l);
}
