/*
 * Signal dispositions: handlers with SA_SIGINFO, SA_RESTART, SA_NODEFER,
 * SA_RESETHAND, SA_ONSTACK, SA_NOCLDSTOP and handler masks, SIG_IGN and
 * explicit SIG_DFL, and a child with dispositions of its own. The kernel's
 * view of all 64 signals (handler, flags, restorer, mask) must be
 * identical after restore, and then each disposition must behave as set.
 */
#include "crtest.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_SIGS 64

/* The kernel's struct sigaction on x86_64. */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static struct ksigaction saved[NR_SIGS + 1];

struct seen {
	atomic_int count;
	int signo, code, value;
	pid_t pid;
	int status;
	sigset_t mask;		/* blocked set inside the handler */
};
static struct seen seen_usr1, seen_usr2, seen_rt, seen_chld;

static void on_info(int sig, siginfo_t *si, void *uc)
{
	struct seen *s = sig == SIGUSR1 ? &seen_usr1 : &seen_rt;

	(void)uc;
	s->signo = si->si_signo;
	s->code = si->si_code;
	s->pid = si->si_pid;
	s->value = si->si_value.sival_int;
	sigprocmask(SIG_SETMASK, NULL, &s->mask);
	atomic_fetch_add(&s->count, 1);
}

static void on_plain(int sig)
{
	if (sig == SIGUSR2) {
		sigprocmask(SIG_SETMASK, NULL, &seen_usr2.mask);
		atomic_fetch_add(&seen_usr2.count, 1);
	}
}

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	seen_chld.code = si->si_code;
	seen_chld.pid = si->si_pid;
	seen_chld.status = si->si_status;
	atomic_fetch_add(&seen_chld.count, 1);
}

static void set(int sig, void (*handler)(int), void (*action)(int, siginfo_t *, void *),
		int flags, const int *mask_sigs)
{
	struct sigaction sa = { .sa_flags = flags };

	if (action)
		sa.sa_sigaction = action;
	else
		sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	for (; mask_sigs && *mask_sigs; mask_sigs++)
		if (*mask_sigs < 0)
			sigfillset(&sa.sa_mask);
		else
			sigaddset(&sa.sa_mask, *mask_sigs);
	if (sigaction(sig, &sa, NULL))
		cr_die("sigaction %d: %s", sig, strerror(errno));
}

static void setup_parent(void)
{
	const int usr1_mask[] = { SIGUSR2, SIGRTMIN + 3, 0 };
	const int int_mask[] = { SIGQUIT, 0 };
	const int all[] = { -1, 0 };
	const int winch_mask[] = { SIGTERM, SIGRTMAX, 0 };

	set(SIGUSR1, NULL, on_info, SA_SIGINFO | SA_RESTART, usr1_mask);
	set(SIGUSR2, on_plain, NULL, SA_NODEFER | SA_RESETHAND, NULL);
	set(SIGHUP, SIG_IGN, NULL, 0, NULL);
	set(SIGPIPE, SIG_IGN, NULL, SA_RESTART, NULL);
	set(SIGINT, SIG_DFL, NULL, 0, int_mask);
	set(SIGCHLD, NULL, on_chld, SA_SIGINFO | SA_NOCLDSTOP | SA_RESTART, NULL);
	set(SIGALRM, on_plain, NULL, SA_RESTART, all);
	set(SIGRTMIN + 4, NULL, on_info, SA_SIGINFO | SA_ONSTACK, NULL);
	set(SIGRTMAX, on_plain, NULL, 0, NULL);
	set(SIGURG, SIG_IGN, NULL, 0, NULL);
	set(SIGWINCH, on_plain, NULL, SA_RESTART | SA_NODEFER, winch_mask);
}

static void setup_child(void)
{
	set(SIGUSR1, SIG_IGN, NULL, 0, NULL);
	set(SIGINT, on_plain, NULL, SA_RESETHAND, NULL);
	set(SIGCHLD, SIG_DFL, NULL, 0, NULL);
	set(SIGRTMIN + 6, NULL, on_info, SA_SIGINFO, NULL);
}

static int ksigaction(int sig, struct ksigaction *old)
{
	return (int)syscall(SYS_rt_sigaction, sig, NULL, old, sizeof(old->mask));
}

static void save_all(void)
{
	for (int sig = 1; sig <= NR_SIGS; sig++)
		if (ksigaction(sig, &saved[sig]))
			cr_die("rt_sigaction(%d): %s", sig, strerror(errno));
}

static void compare_all(void)
{
	for (int sig = 1; sig <= NR_SIGS; sig++) {
		struct ksigaction now, *was = &saved[sig];

		if (ksigaction(sig, &now)) {
			cr_fail("rt_sigaction(%d): %s", sig, strerror(errno));
			continue;
		}
		if (now.handler != was->handler || now.flags != was->flags ||
		    now.restorer != was->restorer || now.mask != was->mask)
			cr_fail("signal %d: handler %p flags %#lx restorer %p mask %#llx, "
				"was %p %#lx %p %#llx", sig, now.handler, now.flags, now.restorer,
				(unsigned long long)now.mask, was->handler, was->flags,
				was->restorer, (unsigned long long)was->mask);
	}
}

static void check_usr1(void)
{
	raise(SIGUSR1);
	if (atomic_load(&seen_usr1.count) != 1) {
		cr_fail("SIGUSR1 handler ran %d times", atomic_load(&seen_usr1.count));
		return;
	}
	CR_EXPECT_EQ("SIGUSR1 si_signo", seen_usr1.signo, SIGUSR1);
	CR_EXPECT_EQ("SIGUSR1 si_pid", seen_usr1.pid, getpid());
	if (!sigismember(&seen_usr1.mask, SIGUSR1) || !sigismember(&seen_usr1.mask, SIGUSR2) ||
	    !sigismember(&seen_usr1.mask, SIGRTMIN + 3) || sigismember(&seen_usr1.mask, SIGINT))
		cr_fail("SIGUSR1 handler ran with the wrong mask");
}

static void check_usr2(void)
{
	struct ksigaction now;

	raise(SIGUSR2);
	CR_EXPECT_EQ("SIGUSR2 handler runs", atomic_load(&seen_usr2.count), 1);
	if (sigismember(&seen_usr2.mask, SIGUSR2))
		cr_fail("SA_NODEFER lost: SIGUSR2 blocked in its handler");
	ksigaction(SIGUSR2, &now);
	if (now.handler != SIG_DFL)
		cr_fail("SA_RESETHAND lost: SIGUSR2 handler still %p", now.handler);
}

static void check_rt(void)
{
	union sigval v = { .sival_int = 77 };

	if (sigqueue(getpid(), SIGRTMIN + 4, v))
		cr_fail("sigqueue: %s", strerror(errno));
	CR_EXPECT_EQ("SIGRTMIN+4 handler runs", atomic_load(&seen_rt.count), 1);
	CR_EXPECT_EQ("SIGRTMIN+4 si_code", seen_rt.code, SI_QUEUE);
	CR_EXPECT_EQ("SIGRTMIN+4 si_value", seen_rt.value, 77);
}

/* SA_NOCLDSTOP: a stop and a continue are silent, the exit is not. */
static void check_chld(void)
{
	pid_t pid = cr_fork("stopper");
	int status;

	if (pid == 0) {
		raise(SIGSTOP);
		_exit(3);
	}
	if (waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status))
		cr_fail("stopper did not stop: status 0x%x", status);
	kill(pid, SIGCONT);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		cr_fail("stopper did not exit: status 0x%x", status);
	if (atomic_load(&seen_chld.count) != 1 || seen_chld.pid != pid ||
	    seen_chld.code != CLD_EXITED || seen_chld.status != 3)
		cr_fail("SIGCHLD handler: %d calls, last pid %d code %d status %d",
			atomic_load(&seen_chld.count), (int)seen_chld.pid, seen_chld.code,
			seen_chld.status);
}

static void check_ignored(void)
{
	raise(SIGHUP);
	raise(SIGPIPE);
	raise(SIGURG);
}

static void __attribute__((noreturn)) child(void)
{
	setup_child();
	save_all();
	cr_child_ready();
	cr_wait_term();
	compare_all();
	raise(SIGUSR1);	/* ignored here */
	raise(SIGINT);
	if (ksigaction(SIGINT, &saved[SIGINT]) == 0 && saved[SIGINT].handler != SIG_DFL)
		cr_fail("child: SA_RESETHAND lost on SIGINT");
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	setup_parent();
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	save_all();
	cr_ready();
	cr_wait_term();
	compare_all();
	check_usr1();
	check_usr2();
	check_rt();
	check_ignored();
	check_chld();
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
