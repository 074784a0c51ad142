/* User side of tcp.bpf.c: TCP byte accounting on tcp_sendmsg/tcp_recvmsg
 * (and tcp_sendpage before Linux 6.5), attached in the cheapest mode the
 * running kernel allows: fentry/fexit, else kprobe/kretprobe, else none
 * (sock.bpf.c then counts bytes at the syscall tracepoints). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "probe/loader_int.h"
#include "tcp.skel.h"

enum tcp_mode { TCP_FENTRY, TCP_KPROBE };

/* Whether the running kernel has function fn (from its BTF). */
static bool kernel_has_func(const char *fn)
{
	return loader__kernel_has(fn, BTF_KIND_FUNC);
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
int tcp__probe(struct loader *l, const struct loader_opts *o)
{
	struct probe_info *ps = loader__probe_add(l, "tcp_sendmsg", false);
	struct probe_info *pr = loader__probe_add(l, "tcp_recvmsg", false);
	char why_f[160] = "", why_k[160] = "";
	const char *mode = "tracepoint";
	int err = 0;

	switch (o->attach_mode) {
	case ATTACH_AUTO:
	case ATTACH_SOCKET:	/* forces the capture tier only (sock.c) */
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
		struct probe_info *pp = loader__probe_add(l, "tcp_sendpage", false);

		if (pr && pp)
			pr = pp;	/* consecutive: reported like the other two */
	}
	for (struct probe_info *p = ps; p && p <= pr; p++) {
		snprintf(p->mode, sizeof(p->mode), "%s", mode);
		p->attached = true;
		snprintf(p->detail, sizeof(p->detail), "%s%s%s", why_f,
			 why_f[0] && why_k[0] ? "; " : "", why_k);
		if (strcmp(mode, "tracepoint") == 0 && o->attach_mode != ATTACH_TRACEPOINT)
			log_warn("fentry and kprobe unavailable; counting TCP bytes at the payload capture "
				 "hooks (socket tier: every socket call; syscall tier: misses "
				 "sendfile/splice/io_uring)",
				 LS("hook", p->hook) LS("mode", mode) LS("fentry", why_f)
				 LS("kprobe", why_k));
		else
			log_info("hook attached", LS("hook", p->hook) LS("mode", mode)
				 LS("detail", p->detail));
	}
	return 0;
}
