#define LOG_PREFIX "rsys: "
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "log.h"
#include "rsys.h"
#include "util.h"
#include "cr.h"

int ptrace_wait_stop(pid_t tid)
{
	int status;

	for (;;) {
		pid_t p = waitpid(tid, &status, __WALL);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("tid %d: waitpid", tid);
			return -errno;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			pr_err("tid %d: died unexpectedly (status %#x)\n", tid, status);
			return -ESRCH;
		}
		if (WIFSTOPPED(status))
			return status;
	}
}

int rsys_attach(struct rsys *r, pid_t tid, uint64_t gadget)
{
	uint64_t all = ~0ULL;
	int ret;

	memset(r, 0, sizeof(*r));
	r->tid = tid;
	r->gadget = gadget;
	ret = arch_get_regs(tid, &r->regs);
	if (ret < 0)
		return ret;
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(uint64_t), &r->sigmask) < 0 ||
	    ptrace(PTRACE_SETSIGMASK, tid, sizeof(uint64_t), &all) < 0) {
		pr_perror("tid %d: can't get or block the signal mask", tid);
		return -errno;
	}
	return 0;
}

int rsys_detach(struct rsys *r)
{
	int ret = arch_set_regs(r->tid, &r->regs);

	if (ptrace(PTRACE_SETSIGMASK, r->tid, sizeof(uint64_t), &r->sigmask) < 0) {
		pr_perror("tid %d: can't put back the signal mask", r->tid);
		return -errno;
	}
	return ret;
}

/* Resume until the gadget's int3, passing through ptrace event stops. */
static int run_to_trap(struct rsys *r)
{
	for (;;) {
		int st;

		if (ptrace(PTRACE_CONT, r->tid, NULL, NULL) < 0) {
			pr_perror("tid %d: can't resume for a remote syscall", r->tid);
			return -errno;
		}
		st = ptrace_wait_stop(r->tid);
		if (st < 0)
			return st;
		if (st >> 16) {
			/* PTRACE_EVENT_CLONE and the like: note it and go on. */
			r->pending_event = st >> 16;
			continue;
		}
		if (WSTOPSIG(st) == SIGTRAP)
			return 0;
		{
			arch_regs_t regs;
			arch_get_regs(r->tid, &regs);
			pr_err("tid %d: unexpected stop by signal %d during a remote syscall %lld (ip %#llx)\n",
			       r->tid, WSTOPSIG(st), (long long)regs.orig_rax, (unsigned long long)regs.rip);
		}
		return -EINVAL;
	}
}

int rsys_call_n(struct rsys *r, long *ret, long nr, const uint64_t args[6])
{
	arch_regs_t regs = r->regs;
	int err;

	arch_setup_syscall(&regs, r->gadget, nr, args);
	err = arch_set_regs(r->tid, &regs);
	if (err < 0)
		return err;
	err = run_to_trap(r);
	if (err < 0)
		return err;
	err = arch_get_regs(r->tid, &regs);
	if (err < 0)
		return err;
	if (regs.rip != ARCH_GADGET_TRAP_IP(r->gadget)) {
		pr_err("tid %d: remote syscall %ld stopped at %#llx, not at the gadget %#llx\n",
		       r->tid, nr, (unsigned long long)regs.rip, (unsigned long long)r->gadget);
		return -EFAULT;
	}
	*ret = arch_syscall_ret(&regs);
	return 0;
}

int rsys_call(struct rsys *r, long nr, long *ret, uint64_t a0, uint64_t a1, uint64_t a2,
	      uint64_t a3, uint64_t a4, uint64_t a5)
{
	return rsys_call_n(r, ret, nr, (uint64_t[6]){ a0, a1, a2, a3, a4, a5 });
}

static int poke_mem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* ptrace writes with FOLL_FORCE: works on read-only text too. */
	while (len) {
		uint64_t a = addr & ~7ULL, off = addr - a, n = min_t(size_t, 8 - off, len);
		long word;

		errno = 0;
		word = ptrace(PTRACE_PEEKDATA, pid, a, NULL);
		if (errno)
			return -errno;
		memcpy((uint8_t *)&word + off, p, n);
		if (ptrace(PTRACE_POKEDATA, pid, a, word) < 0)
			return -errno;
		addr += n;
		p += n;
		len -= n;
	}
	return 0;
}

int rsys_write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, rm = { (void *)addr, len };
	ssize_t n = process_vm_writev(pid, &l, 1, &rm, 1, 0);
	int ret;

	if (n == (ssize_t)len)
		return 0;
	ret = poke_mem(pid, addr, buf, len);
	if (ret < 0)
		return log_errno(ret, "pid %d: can't write %zu bytes at %#llx", pid, len,
				 (unsigned long long)addr);
	return 0;
}

int rsys_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, rm = { (void *)addr, len };
	ssize_t n = process_vm_readv(pid, &l, 1, &rm, 1, 0);

	if (n != (ssize_t)len) {
		if (n < 0)
			pr_perror("pid %d: can't read %zu bytes at %#llx", pid, len,
				  (unsigned long long)addr);
		else
			pr_err("pid %d: short read at %#llx (%zd of %zu)\n", pid,
			       (unsigned long long)addr, n, len);
		return n < 0 ? -errno : -EFAULT;
	}
	return 0;
}

uint64_t rsys_scratch_put(struct rsys *r, size_t off, const void *buf, size_t len)
{
	if (off + len > r->scratch_len) {
		pr_err("tid %d: scratch area too small (%zu > %zu)\n", r->tid, off + len,
		       r->scratch_len);
		return 0;
	}
	if (rsys_write_mem(r->tid, r->scratch + off, buf, len) < 0)
		return 0;
	return r->scratch + off;
}

int rsys_check(struct rsys *r, long *ret, long nr, const uint64_t args[6], const char *what)
{
	int err = rsys_call_n(r, ret, nr, args);

	if (err < 0)
		return err;
	if (*ret < 0 && *ret > -4096) {
		pr_err("tid %d: remote %s failed: %s\n", r->tid, what, strerror((int)-*ret));
		return (int)*ret;
	}
	return 0;
}
