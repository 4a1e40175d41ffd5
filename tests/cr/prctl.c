/*
 * prctl state: PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS and
 * PR_SET_CHILD_SUBREAPER in the root; PR_SET_PDEATHSIG in a child and a
 * grandchild. After restore the values must read the same, and they must
 * act: when the child exits, the grandchild gets its death signal and is
 * adopted by the root, the subreaper, which reaps it.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t root_pid;
static volatile sig_atomic_t got_death_signal;
static volatile pid_t death_signal_from;

static void on_death(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	death_signal_from = si->si_pid;
	got_death_signal = 1;
}

static void check_common(const char *who)
{
	CR_CHECK(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "%s: dumpable again", who);
	CR_CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "%s: no_new_privs lost", who);
}

static int pdeathsig(void)
{
	int sig = -1;

	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	return sig;
}

/* Waits for the death signal of its parent, not for SIGTERM. */
static void __attribute__((noreturn)) grandchild(void)
{
	struct sigaction sa = { .sa_sigaction = on_death, .sa_flags = SA_SIGINFO };
	pid_t parent = getppid();
	sigset_t usr1, wait_mask;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	sigaction(SIGUSR1, &sa, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0))
		cr_die("PR_SET_PDEATHSIG: %s", strerror(errno));
	cr_child_ready();
	while (!got_death_signal)
		sigsuspend(&wait_mask);
	cr_log("got the death signal of %d", (int)parent);
	check_common("grandchild");
	CR_EXPECT_EQ("grandchild pdeathsig", pdeathsig(), SIGUSR1);
	CR_EXPECT_EQ("death signal sender", death_signal_from, parent);
	CR_EXPECT_EQ("grandchild's new parent (the subreaper)", getppid(), root_pid);
	cr_child_exit();
}

static void __attribute__((noreturn)) child(void)
{
	int subreaper = -1;

	if (prctl(PR_SET_PDEATHSIG, SIGHUP, 0, 0, 0))
		cr_die("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (cr_spawn("grandchild") == 0)
		grandchild();
	cr_child_ready();
	cr_wait_term();
	check_common("child");
	CR_EXPECT_EQ("child pdeathsig", pdeathsig(), SIGHUP);
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
	CR_EXPECT_EQ("child child_subreaper (not inherited)", subreaper, 0);
	/* Exiting now fires the grandchild's death signal. */
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid, adopted = 0;
	int subreaper = 0, status;
	char text[64];

	cr_init(argc, argv);
	root_pid = getpid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		cr_die("prctl: %s", strerror(errno));
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	cr_ready();
	cr_wait_term();
	check_common("root");
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
	CR_EXPECT_EQ("root child_subreaper", subreaper, 1);
	CR_EXPECT_EQ("root pdeathsig", pdeathsig(), 0);
	cr_finish_children(&kid, roles, 1);
	/* The orphaned grandchild is ours now; it exits once it got SIGUSR1. */
	for (int i = 0; i < 1000 && !adopted; i++) {
		if (waitpid(-1, &status, WNOHANG) > 0)
			adopted = 1;
		else
			cr_sleep_ms(10);
	}
	if (!adopted) {
		cr_read_file("/proc/thread-self/children", text, sizeof(text));
		cr_fail("the grandchild did not exit within 10 s of its parent (children: %s)", text);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		cr_fail("the grandchild failed: status 0x%x", status);
	}
	return cr_report();
}
