/* Uprobe links: uprobe_multi where the kernel has it, perf-event uprobes
 * otherwise (uprobe.h). libbpf 1.1 predates uprobe_multi, so the link is
 * made with the bpf(2) command directly. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "probe/uprobe.h"
#include "util/log.h"

/* From the kernel's uapi (6.6+), absent from the 6.1 headers here. */
#define ATTACH_UPROBE_MULTI 48		/* enum bpf_attach_type BPF_TRACE_UPROBE_MULTI */
#define UPROBE_MULTI_RETURN 1u		/* BPF_F_UPROBE_MULTI_RETURN */

/* union bpf_attr for BPF_LINK_CREATE with the uprobe_multi member. */
struct link_create_uprobe_multi {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t multi_flags;
	uint32_t pid;
	uint32_t pad;
};
_Static_assert(sizeof(struct link_create_uprobe_multi) == 64, "link_create.uprobe_multi layout");

#define DETACH_THREADS 16

static int multi_state;		/* 0 not probed, 1 works, -1 does not */

static int link_multi(int prog_fd, const char *path, size_t off, bool retprobe)
{
	union {
		struct link_create_uprobe_multi lc;
		char attr[128];	/* the kernel checks the tail of union bpf_attr is zero */
	} a;
	uint64_t offset = off;
	int fd;

	memset(&a, 0, sizeof(a));
	a.lc.prog_fd = (uint32_t)prog_fd;
	a.lc.attach_type = ATTACH_UPROBE_MULTI;
	a.lc.path = (uint64_t)(uintptr_t)path;
	a.lc.offsets = (uint64_t)(uintptr_t)&offset;
	a.lc.cnt = 1;
	a.lc.multi_flags = retprobe ? UPROBE_MULTI_RETURN : 0;
	fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

/* The probe's target: a function of this binary that is never called. */
__attribute__((noinline, used)) void uprobe__probe_target(void)
{
	__asm__ volatile("");
}

struct self_off {
	uintptr_t addr;
	size_t off;
};

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct self_off *s = arg;

	(void)size;
	if (info->dlpi_name && info->dlpi_name[0])
		return 0;	/* the main program has an empty name */
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && s->addr >= start &&
		    s->addr < start + ph->p_memsz) {
			s->off = s->addr - start + ph->p_offset;
			return 1;
		}
	}
	return 0;
}

bool uprobe__multi(void)
{
	struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = ATTACH_UPROBE_MULTI);
	struct self_off s = { .addr = (uintptr_t)uprobe__probe_target };
	int prog, link = -EINVAL;

	if (multi_state)
		return multi_state > 0;
	multi_state = -1;
	if (!dl_iterate_phdr(find_self, &s))
		return false;
	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "sonde_um_probe", "GPL", ret0, 2, &po);
	if (prog < 0)
		return false;
	link = link_multi(prog, "/proc/self/exe", s.off, false);
	if (link >= 0) {
		multi_state = 1;
		close(link);
	}
	close(prog);
	log_info("uprobe links", LS("kind", multi_state > 0 ? "uprobe_multi" : "perf_event")
		 LS("detail", link >= 0 ? "" : strerror(-link)));
	return multi_state > 0;
}

void uprobe__prepare(struct bpf_object *obj)
{
	struct bpf_program *prog;

	if (!uprobe__multi())
		return;
	bpf_object__for_each_program(prog, obj) {
		const char *sec = bpf_program__section_name(prog);

		if (strncmp(sec, "uprobe", 6) == 0 || strncmp(sec, "uretprobe", 9) == 0)
			bpf_program__set_expected_attach_type(prog, ATTACH_UPROBE_MULTI);
	}
}

int uprobe__attach(struct bpf_program *prog, const char *path, const char *sym, size_t off,
		   bool retprobe, struct uprobe_link *out)
{
	out->fd = -1;
	out->link = NULL;
	if (uprobe__multi()) {
		int fd;

		if (!off)
			off = uprobe__func_offset(path, sym);
		if (!off)
			return -ENOENT;
		fd = link_multi(bpf_program__fd(prog), path, off, retprobe);
		if (fd < 0)
			return fd;
		out->fd = fd;
		return 0;
	}
	{
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = off ? NULL : sym, .retprobe = retprobe);

		out->link = bpf_program__attach_uprobe_opts(prog, -1, path, off, &uo);
		return out->link ? 0 : (errno ? -errno : -EINVAL);
	}
}

struct detach_job {
	struct uprobe_link *links;
	int n;
	atomic_int next;
};

static void *detach_worker(void *arg)
{
	struct detach_job *j = arg;
	int i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->n) {
		if (j->links[i].fd >= 0)
			close(j->links[i].fd);
		bpf_link__destroy(j->links[i].link);
		j->links[i].fd = -1;
		j->links[i].link = NULL;
	}
	return NULL;
}

void uprobe__detach(struct uprobe_link *links, int n)
{
	struct detach_job j = { .links = links, .n = n };
	pthread_t th[DETACH_THREADS];
	int started = 0;

	atomic_init(&j.next, 0);
	while (started < DETACH_THREADS && started < n - 1 &&
	       pthread_create(&th[started], NULL, detach_worker, &j) == 0)
		started++;
	detach_worker(&j);	/* this thread helps, and does it all if none started */
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

size_t uprobe__func_offset(const char *path, const char *sym)
{
	size_t off = 0, shstr;
	uint64_t addr = 0;
	Elf_Scn *scn = NULL;
	Elf *e;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_getshdrstrndx(e, &shstr))
		goto out;
	while (!addr && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) ||
		    !sh.sh_entsize || !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym st;
			const char *name;

			if (!gelf_getsym(d, (int)i, &st) || GELF_ST_TYPE(st.st_info) != STT_FUNC ||
			    !st.st_value)
				continue;
			name = elf_strptr(e, sh.sh_link, st.st_name);
			if (name && strcmp(name, sym) == 0) {
				addr = st.st_value;
				break;
			}
		}
	}
	if (addr) {
		size_t n;

		if (elf_getphdrnum(e, &n))
			goto out;
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
			    addr >= ph.p_vaddr && addr < ph.p_vaddr + ph.p_memsz) {
				off = addr - ph.p_vaddr + ph.p_offset;
				break;
			}
		}
	}
out:
	if (e)
		elf_end(e);
	close(fd);
	return off;
}
