/* The BPF loader: mounts tracefs when missing, loads every object through
 * its own user side (tcp.c, sock.c, optional.c: each owns its skeleton and
 * its attach mode), and keeps the outcome of every hook for the log,
 * /healthz and sonde_probe_info. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "probe/loader_int.h"
#include "probe/ring.h"
#include "sched.skel.h"
#include "sock.skel.h"
#include "tcp.skel.h"
#include "tcpstate.skel.h"

struct probe_info *loader__probe_add(struct loader *l, const char *hook, bool required)
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

bool loader__kernel_has(const char *name, int kind)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (!vmlinux)
		return false;
	found = btf__find_by_name_kind(vmlinux, name, kind) > 0;
	btf__free(vmlinux);
	return found;
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
 * modes that fail by design would otherwise flood the log. Global: libbpf's
 * print callback takes no context. */
#define LIBBPF_TAIL_LINES 40
static char libbpf_tail[LIBBPF_TAIL_LINES][240];
static unsigned int libbpf_tail_next, libbpf_tail_count;

void loader__libbpf_clear(void)
{
	libbpf_tail_next = libbpf_tail_count = 0;
}

void loader__libbpf_dump_at(enum log_level level, const char *what)
{
	unsigned int first = (libbpf_tail_next + LIBBPF_TAIL_LINES - libbpf_tail_count) %
			     LIBBPF_TAIL_LINES;

	for (unsigned int i = 0; i < libbpf_tail_count; i++)
		log_at(level, what, LS("libbpf", libbpf_tail[(first + i) % LIBBPF_TAIL_LINES]));
}

void loader__libbpf_dump(const char *what)
{
	loader__libbpf_dump_at(LOG_ERROR, what);
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

int loader__open(struct loader **out, const struct loader_opts *o)
{
	struct loader *l = calloc(1, sizeof(*l));
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

	err = sock__open(l, o);
	if (err)
		goto cleanup;
	optional__open(l, o);
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
	struct probe_info *p = loader__probe_add(l, hook, false);

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

int loader__ncpus(const struct loader *l)
{
	return l->ncpus;
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
