/* x86_64 hooks: registers, FPU state, syscall ABI, the injected gadget. */
#ifndef CR_ARCH_H
#define CR_ARCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

typedef struct user_regs_struct arch_regs_t;

/* "syscall; int3": the only code the engine ever runs inside a target. */
extern const uint8_t cr_syscall_gadget[];
#define ARCH_GADGET_LEN 3
/* Where the task stops after the int3 of the gadget at addr. */
#define ARCH_GADGET_TRAP_IP(addr) ((addr) + ARCH_GADGET_LEN)

#define ARCH_XSAVE_MAX 16384

int arch_get_regs(pid_t tid, arch_regs_t *r);
int arch_set_regs(pid_t tid, const arch_regs_t *r);
/* Read the NT_X86_XSTATE regset into buf (ARCH_XSAVE_MAX); returns its size or -errno. */
ssize_t arch_get_xsave(pid_t tid, void *buf);
int arch_set_xsave(pid_t tid, const void *buf, size_t len);

/* Prepare r (a copy of the thread's registers) to run syscall nr at ip. */
void arch_setup_syscall(arch_regs_t *r, uint64_t ip, long nr, const uint64_t args[6]);
static inline long arch_syscall_ret(const arch_regs_t *r) { return (long)r->rax; }

/*
 * Turn registers captured in a syscall into ones that can be resumed later
 * in a fresh task: a restartable syscall is rewound to run again, one that
 * needs the kernel's restart block returns EINTR. Returns true if rewound.
 */
bool arch_normalize_restart(arch_regs_t *r, pid_t tid);

/* TASK_SIZE of the current address-space layout (top of user mappings). */
uint64_t arch_task_size(void);
/* arch_prctl(ARCH_MAP_VDSO_64) argument: the start of the whole vvar+vdso area. */
#define ARCH_MAP_VDSO_CODE 0x2003

#endif
