#define LOG_PREFIX "arch: "
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/mman.h>

#include "arch.h"
#include "log.h"

/* Kernel-internal restart codes that leak into registers of stopped tasks. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

int arch_get_regs(pid_t tid, arch_regs_t *r)
{
	if (ptrace(PTRACE_GETREGS, tid, NULL, r) < 0) {
		pr_perror("tid %d: can't get registers", tid);
		return -errno;
	}
	return 0;
}

int arch_set_regs(pid_t tid, const arch_regs_t *r)
{
	if (ptrace(PTRACE_SETREGS, tid, NULL, r) < 0) {
		pr_perror("tid %d: can't set registers", tid);
		return -errno;
	}
	return 0;
}

ssize_t arch_get_xsave(pid_t tid, void *buf)
{
	struct iovec iov = { buf, ARCH_XSAVE_MAX };

	if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0) {
		pr_perror("tid %d: can't get the xsave state", tid);
		return -errno;
	}
	return iov.iov_len;
}

int arch_set_xsave(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	if (ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, &iov) < 0) {
		pr_perror("tid %d: can't set the xsave state (%zu bytes)", tid, len);
		return -errno;
	}
	return 0;
}

void arch_setup_syscall(arch_regs_t *r, uint64_t ip, long nr, const uint64_t args[6])
{
	r->rax = nr;
	r->rdi = args[0];
	r->rsi = args[1];
	r->rdx = args[2];
	r->r10 = args[3];
	r->r8 = args[4];
	r->r9 = args[5];
	r->rip = ip;
	/* No syscall-restart logic must touch our injected call. */
	r->orig_rax = (uint64_t)-1;
}

bool arch_normalize_restart(arch_regs_t *r, pid_t tid)
{
	long ret = (long)r->rax;

	if ((long)r->orig_rax < 0)
		return false;
	switch (-ret) {
	case ERESTARTSYS:
	case ERESTARTNOINTR:
	case ERESTARTNOHAND:
		r->rax = r->orig_rax;
		r->rip -= 2;
		r->orig_rax = (uint64_t)-1;
		return true;
	case ERESTART_RESTARTBLOCK:
		/* The kernel's restart block does not survive: report EINTR. */
		pr_info("tid %d: interrupted syscall %lld will return EINTR\n", tid,
			(long long)r->orig_rax);
		r->rax = (uint64_t)-EINTR;
		break;
	}
	r->orig_rax = (uint64_t)-1;
	return false;
}

uint64_t arch_task_size(void)
{
	/* 4-level paging; a 5-level kernel only maps above this on request. */
	return 0x7ffffffff000ULL;
}
