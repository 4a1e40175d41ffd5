/*
 * Zombies: a child that exited with status 42, one killed by SIGUSR2 (in a
 * process group of its own), and a live child holding a zombie of its own.
 * None is reaped before SIGTERM; then each must still be a zombie with the
 * same pid, parent, group, session and name, and wait must report its
 * exact status.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct zombie {
	const char *role;
	pid_t pid;
	int code;		/* CLD_EXITED or CLD_KILLED */
	int status;		/* exit status or signal */
	pid_t pgid, sid;
	char stat_head[128];	/* "pid (comm) Z ppid pgrp session" */
};

static void die_as(const struct zombie *z)
{
	prctl(PR_SET_NAME, z->role, 0, 0, 0);
	if (z->code == CLD_KILLED) {
		setpgid(0, 0);
		signal(z->status, SIG_DFL);
		raise(z->status);
	}
	_exit(z->status);
}

/* The fields of /proc/PID/stat up to the session, which a zombie keeps. */
static bool stat_head(pid_t pid, char *buf, size_t len)
{
	char path[64], text[1024];
	int fields = 0;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	cr_read_file(path, text, sizeof(text));
	p = strrchr(text, ')');
	if (!p)
		return false;
	for (p++; *p && fields < 5; p++)
		fields += *p == ' ';
	snprintf(buf, len, "%.*s", (int)(p - text - 1), text);
	return true;
}

static void make_zombie(struct zombie *z)
{
	siginfo_t si = { 0 };

	z->pid = cr_fork(z->role);
	if (z->pid == 0)
		die_as(z);
	/* WNOWAIT: wait until it is a zombie, but leave it one. */
	while (waitid(P_PID, (id_t)z->pid, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			cr_die("waitid %d: %s", (int)z->pid, strerror(errno));
	if (si.si_code != z->code || si.si_status != z->status)
		cr_die("%s: waitid code %d status %d", z->role, si.si_code, si.si_status);
	z->pgid = getpgid(z->pid);
	z->sid = getsid(z->pid);
	if (!stat_head(z->pid, z->stat_head, sizeof(z->stat_head)) || !strstr(z->stat_head, ") Z "))
		cr_die("%s (pid %d) is not a zombie: %s", z->role, (int)z->pid, z->stat_head);
}

static void check_zombie(const struct zombie *z)
{
	siginfo_t si = { 0 };
	char head[128];
	int status;

	if (!stat_head(z->pid, head, sizeof(head)) || strcmp(head, z->stat_head))
		cr_fail("%s: /proc stat '%s', was '%s'", z->role, head, z->stat_head);
	CR_EXPECT_EQ("zombie getpgid", getpgid(z->pid), z->pgid);
	CR_EXPECT_EQ("zombie getsid", getsid(z->pid), z->sid);
	if (waitid(P_PID, (id_t)z->pid, &si, WEXITED | WNOWAIT | WNOHANG) < 0)
		cr_fail("%s: waitid: %s", z->role, strerror(errno));
	else if (si.si_pid != z->pid || si.si_code != z->code || si.si_status != z->status)
		cr_fail("%s: waitid pid %d code %d status %d, expected %d %d %d", z->role,
			(int)si.si_pid, si.si_code, si.si_status, (int)z->pid, z->code, z->status);
	if (waitpid(z->pid, &status, WNOHANG) != z->pid) {
		cr_fail("%s (pid %d): not reapable: %s", z->role, (int)z->pid, strerror(errno));
		return;
	}
	if (z->code == CLD_EXITED && (!WIFEXITED(status) || WEXITSTATUS(status) != z->status))
		cr_fail("%s: status 0x%x, expected exit %d", z->role, status, z->status);
	if (z->code == CLD_KILLED &&
	    (!WIFSIGNALED(status) || WTERMSIG(status) != z->status || WCOREDUMP(status)))
		cr_fail("%s: status 0x%x, expected killed by %d", z->role, status, z->status);
}

static struct zombie exited = { "exit42", 0, CLD_EXITED, 42, 0, 0, "" };
static struct zombie killed = { "sigusr2", 0, CLD_KILLED, SIGUSR2, 0, 0, "" };
static struct zombie inner = { "exit7", 0, CLD_EXITED, 7, 0, 0, "" };

static pid_t main_pid;

/* A live child whose own child is a zombie. */
static void __attribute__((noreturn)) holder(void)
{
	make_zombie(&inner);
	cr_child_ready();
	cr_wait_term();
	CR_EXPECT_EQ("holder getppid", getppid(), main_pid);
	check_zombie(&inner);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "holder" };
	pid_t holder_pid;

	cr_init(argc, argv);
	main_pid = getpid();
	make_zombie(&exited);
	make_zombie(&killed);
	holder_pid = cr_spawn("holder");
	if (holder_pid == 0)
		holder();
	cr_ready();
	cr_wait_term();
	check_zombie(&exited);
	check_zombie(&killed);
	if (waitpid(-1, NULL, WNOHANG) != 0)
		cr_fail("a child other than the holder was waitable");
	cr_finish_children(&holder_pid, roles, 1);
	return cr_report();
}
