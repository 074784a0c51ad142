/* fd → struct sock for the current task, and the connection 4-tuple of a
 * sock. BPF-only helpers shared by the socket tracers. */
#ifndef SONDE_FD_SOCK_H
#define SONDE_FD_SOCK_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "sonde.h"
#include "lib/core_fixes.bpf.h"

#define SONDE_S_IFMT 0170000
#define SONDE_S_IFSOCK 0140000
#define SONDE_AF_INET 2
#define SONDE_AF_INET6 10
#define SONDE_SOCK_STREAM 1

/* The struct file behind fd of the current task, or NULL. Direct BTF loads
 * for the task → files → fdt chain (no helper calls); one probe read for
 * the array slot. */
static __always_inline struct file *fd_sock__file(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;
	struct file **fds;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* The sock behind a file, or NULL when it is not a socket. *is_tcp is set
 * for AF_INET/AF_INET6 stream sockets. Works for sockets that existed
 * before the agent started, since it reads the live fd table. */
static __always_inline struct sock *fd_sock__from_file(struct file *f, bool *is_tcp)
{
	struct socket *sock;
	struct sock *sk;
	umode_t mode;
	__u16 family;
	short type;

	*is_tcp = false;
	if (!f)
		return NULL;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & SONDE_S_IFMT) != SONDE_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	type = BPF_CORE_READ(sock, type);
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	*is_tcp = type == SONDE_SOCK_STREAM &&
		  (family == SONDE_AF_INET || family == SONDE_AF_INET6);
	return sk;
}

static __always_inline struct sock *fd_sock__lookup(int fd, bool *is_tcp)
{
	return fd_sock__from_file(fd_sock__file(fd), is_tcp);
}

/* Basename of the current process's executable (mm->exe_file), or "" for
 * kernel threads. Done once per new connection, not per event. */
static __always_inline void fd_sock__exe(char out[SONDE_EXE_LEN])
{
	struct task_struct *task = bpf_get_current_task_btf();
	const unsigned char *name;
	struct file *exe;

	out[0] = 0;
	if (!task->mm)
		return;
	exe = BPF_CORE_READ(task, mm, exe_file);
	if (!exe)
		return;
	name = BPF_CORE_READ(exe, f_path.dentry, d_name.name);
	if (name)
		bpf_probe_read_kernel_str(out, SONDE_EXE_LEN, name);
}

static __always_inline void fd_sock__tuple(struct sock *sk, struct sonde_tuple *t)
{
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* Explicit sizes: BPF_CORE_READ_INTO would copy sizeof(u8) into the arrays. */
	if (t->family == SONDE_AF_INET) {
		bpf_core_read(t->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		core__sk_v6_addrs(sk, t->saddr, t->daddr);
	}
}

#endif
