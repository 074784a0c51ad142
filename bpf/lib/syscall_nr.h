/* The syscall a socket hook runs under, from the task's saved user
 * registers (bpf_task_pt_regs): its number and its first arguments. Used
 * by the socket-level capture tier (sock.bpf.c, tp_btf/sock_*_length),
 * which sees the socket but not the syscall. Numbers per architecture from
 * arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h. */
#ifndef SONDE_SYSCALL_NR_H
#define SONDE_SYSCALL_NR_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#if defined(__TARGET_ARCH_x86)
#define SONDE_NR_READ 0
#define SONDE_NR_WRITE 1
#define SONDE_NR_CLOSE 3
#define SONDE_NR_READV 19
#define SONDE_NR_WRITEV 20
#define SONDE_NR_SENDFILE 40
#define SONDE_NR_SENDTO 44
#define SONDE_NR_RECVFROM 45
#define SONDE_NR_SENDMSG 46
#define SONDE_NR_RECVMSG 47
#define SONDE_NR_SPLICE 275
#define SONDE_NR_RECVMMSG 299
#define SONDE_NR_SENDMMSG 307
/* The number the syscall entered with (orig_ax; ax holds the return value),
 * and its first three arguments. regs is bpf_task_pt_regs()'s BTF pointer:
 * plain loads (the verifier makes them fault-safe), no helper call each. */
#define syscall_nr__of(regs) ((long)(regs)->orig_ax)
#define syscall_arg1(regs) ((regs)->di)
#define syscall_arg2(regs) ((regs)->si)
#define syscall_arg3(regs) ((regs)->dx)
#elif defined(__TARGET_ARCH_arm64)
#define SONDE_NR_CLOSE 57
#define SONDE_NR_READ 63
#define SONDE_NR_WRITE 64
#define SONDE_NR_READV 65
#define SONDE_NR_WRITEV 66
#define SONDE_NR_SENDFILE 71
#define SONDE_NR_SPLICE 76
#define SONDE_NR_SENDTO 206
#define SONDE_NR_RECVFROM 207
#define SONDE_NR_SENDMSG 211
#define SONDE_NR_RECVMSG 212
#define SONDE_NR_RECVMMSG 243
#define SONDE_NR_SENDMMSG 269
#define syscall_nr__of(regs) ((long)(regs)->syscallno)
#define syscall_arg1(regs) ((regs)->orig_x0)
#define syscall_arg2(regs) ((regs)->regs[1])
#define syscall_arg3(regs) ((regs)->regs[2])
#else
#error "syscall numbers: add this architecture to bpf/lib/syscall_nr.h"
#endif

/* The task's saved user registers without a bpf_task_pt_regs call on
 * every socket call (a helper call costs ~45 ns on a CPU whose every
 * return goes through a mitigation thunk, measured on the 6.18 host):
 * they sit at one fixed offset from the task's stack base on every task
 * (task_pt_regs on x86-64 and arm64; FRED's padding included), learnt
 * from the helper on a program's first call. Loads through the cast are
 * fault-safe like the helper's pointer. Only for programs that load on
 * Linux >= 6.2 (bpf_rdonly_cast): a kernel without it refuses a program
 * that names it, reachable or not (weak: the others load anyway). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
static __u64 task_regs_off;

static __always_inline struct pt_regs *task_regs(struct task_struct *task)
{
	__u64 off = task_regs_off, stack = (__u64)task->stack;
	struct pt_regs *regs;

	if (off)
		return bpf_rdonly_cast((void *)(stack + off), bpf_core_type_id_kernel(struct pt_regs));
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	/* the pointer as a number (pointer arithmetic on it is refused) */
	if (!bpf_probe_read_kernel(&off, sizeof(off), &regs) && off > stack)
		task_regs_off = off - stack;
	return regs;
}

/* Threads with no user syscall behind a socket call: kernel threads
 * (NFS, iSCSI, ...) and io_uring's workers (include/linux/sched.h). */
#define SONDE_PF_IO_WORKER 0x00000010
#define SONDE_PF_KTHREAD 0x00200000

#endif
