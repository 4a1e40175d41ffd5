/*
 * signalfd: fd 10 for SIGUSR1, SIGRTMIN+2 and SIGRTMAX (blocking), fd 11
 * for SIGUSR2 (SFD_NONBLOCK), fd 12 for SIGHUP and SIGRTMIN (SFD_NONBLOCK),
 * all signals blocked. SIGUSR1 and SIGRTMIN+2 (with a value) are pending at
 * checkpoint time. After restore the masks and flags are the same, fd 10
 * reads the two pending signals with their siginfo, fds 11 and 12 have
 * nothing, and new signals are read from the right descriptor; the child
 * that shares fd 10 reads its own signals from it.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int fl_was[16], fdfl_was[16];
static char mask_was[16][64];

static void sfd(int fd, const int *sigs, int n, int flags)
{
	sigset_t set;
	int got;

	sigemptyset(&set);
	for (int i = 0; i < n; i++)
		sigaddset(&set, sigs[i]);
	got = signalfd(-1, &set, flags | SFD_CLOEXEC);
	if (got < 0 || dup3(got, fd, 0) != fd)
		cr_die("signalfd %d: %s", fd, strerror(errno));
	close(got);
}

/* The sigmask line of fdinfo. */
static void fdinfo_mask(int fd, char *out, size_t len)
{
	char path[64], text[1024];
	const char *m;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	cr_read_file(path, text, sizeof(text));
	m = strstr(text, "sigmask:");
	snprintf(out, len, "%.*s", m ? (int)strcspn(m, "\n") : 0, m ? m : "");
}

static void record(int from, int to)
{
	for (int fd = from; fd <= to; fd++) {
		fl_was[fd] = fcntl(fd, F_GETFL);
		fdfl_was[fd] = fcntl(fd, F_GETFD);
		fdinfo_mask(fd, mask_was[fd], sizeof(mask_was[fd]));
		if (!mask_was[fd][0])
			cr_die("fd %d: no sigmask in fdinfo", fd);
	}
}

static void check(const char *who, int from, int to)
{
	char mask[64];

	for (int fd = from; fd <= to; fd++) {
		fdinfo_mask(fd, mask, sizeof(mask));
		if (strcmp(mask, mask_was[fd]))
			cr_fail("%s: fd %d: '%s', was '%s'", who, fd, mask, mask_was[fd]);
		if (fcntl(fd, F_GETFL) != fl_was[fd] || fcntl(fd, F_GETFD) != fdfl_was[fd])
			cr_fail("%s: fd %d: flags %#o/%d, were %#o/%d", who, fd, fcntl(fd, F_GETFL),
				fcntl(fd, F_GETFD), fl_was[fd], fdfl_was[fd]);
	}
}

/* One signal from FD, without blocking forever; 0 if none is readable. */
static int next_signal(int fd, struct signalfd_siginfo *si, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, wait_ms) != 1)
		return 0;
	if (read(fd, si, sizeof(*si)) != sizeof(*si)) {
		cr_fail("fd %d: read: %s", fd, strerror(errno));
		return 0;
	}
	return (int)si->ssi_signo;
}

static void expect_signal(const char *who, int fd, int sig, int value)
{
	struct signalfd_siginfo si;
	int got = next_signal(fd, &si, 10000);

	if (got != sig)
		cr_fail("%s: fd %d gave signal %d, expected %d", who, fd, got, sig);
	else if (value >= 0 && (si.ssi_int != value || si.ssi_code != SI_QUEUE ||
				si.ssi_pid != (uint32_t)getpid()))
		cr_fail("%s: fd %d: signal %d: value %d code %d pid %u, expected %d SI_QUEUE %d", who,
			fd, sig, si.ssi_int, si.ssi_code, si.ssi_pid, value, (int)getpid());
}

static void expect_none(const char *who, int fd)
{
	struct signalfd_siginfo si;
	int got = next_signal(fd, &si, 0);

	if (got)
		cr_fail("%s: fd %d had signal %d, expected none", who, fd, got);
	if (fcntl(fd, F_GETFL) & O_NONBLOCK) {
		if (read(fd, &si, sizeof(si)) != -1 || errno != EAGAIN)
			cr_fail("%s: fd %d: read did not fail with EAGAIN", who, fd);
	}
}

static void __attribute__((noreturn)) child(void)
{
	close(11);
	close(12);
	record(10, 10);
	cr_child_ready();
	cr_wait_term();
	check("child", 10, 10);
	expect_none("child", 10);
	if (kill(getpid(), SIGRTMAX) || sigqueue(getpid(), SIGRTMIN + 2, (union sigval){ 7 }))
		cr_fail("child: kill: %s", strerror(errno));
	expect_signal("child", 10, SIGRTMIN + 2, 7);
	expect_signal("child", 10, SIGRTMAX, -1);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	const int s10[] = { SIGUSR1, SIGRTMIN + 2, SIGRTMAX }, s11[] = { SIGUSR2 },
		  s12[] = { SIGHUP, SIGRTMIN };
	sigset_t all;
	pid_t kid;

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	sigfillset(&all);
	sigdelset(&all, SIGTERM);	/* cr_init blocked it already */
	if (sigprocmask(SIG_BLOCK, &all, NULL))
		cr_die("sigprocmask: %s", strerror(errno));
	sfd(10, s10, 3, 0);
	sfd(11, s11, 1, SFD_NONBLOCK);
	sfd(12, s12, 2, SFD_NONBLOCK);
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	record(10, 12);
	if (kill(getpid(), SIGUSR1) || sigqueue(getpid(), SIGRTMIN + 2, (union sigval){ 42 }))
		cr_die("kill: %s", strerror(errno));
	cr_ready();
	cr_wait_term();
	check("parent", 10, 12);
	expect_signal("parent", 10, SIGUSR1, -1);
	expect_signal("parent", 10, SIGRTMIN + 2, 42);
	expect_none("parent", 10);
	expect_none("parent", 11);
	expect_none("parent", 12);
	if (kill(getpid(), SIGUSR2) || kill(getpid(), SIGHUP))
		cr_fail("kill: %s", strerror(errno));
	expect_signal("parent", 11, SIGUSR2, -1);
	expect_signal("parent", 12, SIGHUP, -1);
	expect_none("parent", 10);
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
