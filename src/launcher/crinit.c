/*
 * crinit CMD [ARGS...]: PID 1 of a crlaunch job container.
 *
 * Runs CMD as its only child, in a process group of its own, reaps every
 * orphan of the namespace, and passes the signals it gets on to CMD's
 * group. When CMD ends, whatever is left of the job is killed and crinit
 * exits with CMD's status (128 + the signal if it was killed).
 *
 * It is part of every checkpoint, so it stays small: no sanitizers, no
 * libcr, no descriptors but stderr (the job's). crlaunch starts it with every
 * signal blocked; it waits for them with sigwaitinfo().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t start_cmd(char **argv, const sigset_t *old)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, old, NULL);
	execvp(argv[0], argv);
	fprintf(stderr, "crlaunch: can't run '%s': %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static int status_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	sigset_t all, old;
	pid_t cmd;
	int st = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: crinit CMD [ARGS...] (started by crlaunch)\n");
		return 125;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	/* A session of the job's own: no process group or terminal of crlaunch's inside. */
	setsid();
	/* crlaunch's signal mask is the job's, minus what crlaunch itself blocked. */
	sigemptyset(&old);
	cmd = start_cmd(argv + 1, &old);
	if (cmd < 0) {
		perror("crlaunch: fork");
		return 125;
	}
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	for (;;) {
		siginfo_t si;
		pid_t p;
		int s = sigwaitinfo(&all, &si);

		if (s < 0)
			continue;	/* EINTR, after a checkpoint for instance */
		if (s != SIGCHLD) {
			if (kill(-cmd, s) < 0)
				kill(cmd, s);
			continue;
		}
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p != cmd)
				continue;
			/* The job is over: nothing of it outlives CMD. */
			kill(-1, SIGKILL);
			while (wait(NULL) > 0 || errno == EINTR)
				;
			return status_code(st);
		}
	}
}
