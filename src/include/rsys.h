/*
 * Remote syscalls: run a syscall inside a ptrace-stopped thread through the
 * "syscall; int3" gadget, with every signal blocked meanwhile so that none is
 * delivered or lost, then put the thread's registers back.
 */
#ifndef CR_RSYS_H
#define CR_RSYS_H

#include <stdint.h>
#include <sys/types.h>

#include "arch.h"

struct rsys {
	pid_t tid;
	uint64_t gadget;	/* address of the gadget in the target */
	uint64_t scratch;	/* target address of scratch memory (or 0) */
	size_t scratch_len;
	arch_regs_t regs;	/* registers to put back after each call */
	uint64_t sigmask;	/* mask to put back */
	int pending_event;	/* ptrace event seen during the last call */
};

/* Capture the thread's registers and mask and block its signals. */
int rsys_attach(struct rsys *r, pid_t tid, uint64_t gadget);
/* Put back registers and mask. */
int rsys_detach(struct rsys *r);

/*
 * Run syscall nr with up to six arguments; *ret receives the raw result
 * (negative errno on failure). Returns 0, or -errno if the thread could not
 * be driven (logged).
 */
int rsys_call(struct rsys *r, long nr, long *ret, uint64_t a0, uint64_t a1, uint64_t a2,
	      uint64_t a3, uint64_t a4, uint64_t a5);
#define RSYS(r, ret, nr, ...) rsys_call_n(r, ret, nr, (uint64_t[6]){ __VA_ARGS__ })
int rsys_call_n(struct rsys *r, long *ret, long nr, const uint64_t args[6]);

/* Copy to/from target memory (process_vm_writev, falling back to ptrace pokes). */
int rsys_write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len);
int rsys_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Write into the scratch area at offset; returns the target address. */
uint64_t rsys_scratch_put(struct rsys *r, size_t off, const void *buf, size_t len);

/* Wait for a ptrace stop of tid; returns the wait status or -errno. */
int ptrace_wait_stop(pid_t tid);

#endif
