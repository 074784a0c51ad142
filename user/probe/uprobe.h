/* Uprobe links for the TLS and database client tracers. Where the kernel
 * has uprobe_multi links (6.6+), each probe is one such link, and detaching
 * a set closes them from several threads at once: a perf-event uprobe waits
 * for an RCU grace period under a kernel-wide mutex when closed (~100 ms
 * each, serialised: 22 of them made stopping take 2.3 s), a uprobe_multi
 * link waits without it, so their grace periods overlap (22 links: 1.2 s
 * closed one by one, 0.06 s together). Elsewhere libbpf's perf-event
 * uprobes, as before. */
#ifndef SONDE_PROBE_UPROBE_H
#define SONDE_PROBE_UPROBE_H

#include <stdbool.h>
#include <stddef.h>

struct bpf_object;
struct bpf_program;
struct bpf_link;

struct uprobe_link {
	int fd;			/* uprobe_multi link, or -1 */
	struct bpf_link *link;	/* libbpf perf-event uprobe, or NULL */
};

/* Whether uprobe_multi links work here (probed once: a link on a function
 * of this binary with a program that does nothing). */
bool uprobe__multi(void);

/* Before obj is loaded: gives its uprobe programs the uprobe_multi attach
 * type when links of that kind will be used. */
void uprobe__prepare(struct bpf_object *obj);

/* Attaches prog at sym in the file at path (offset off when not 0: the
 * symbol's file offset already resolved). 0, or a negative errno. */
int uprobe__attach(struct bpf_program *prog, const char *path, const char *sym, size_t off,
		   bool retprobe, struct uprobe_link *out);

/* Detaches n links, closing them from several threads at once. */
void uprobe__detach(struct uprobe_link *links, int n);

/* File offset of function sym in the ELF file at path (dynamic or static
 * symbol table; the first of duplicate versioned names). 0 when absent. */
size_t uprobe__func_offset(const char *path, const char *sym);

#endif
