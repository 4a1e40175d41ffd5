/*
 * subreaper CMD [ARGS...]: runs CMD as a child subreaper.
 *
 * The C/R runner re-executes itself under this helper. Trees killed by
 * `crtool dump` and trees restored with `crtool restore --detach` are
 * reparented here instead of to PID 1, which reaps orphans only after a
 * second or two; until a killed task is reaped its PID cannot be restored.
 * Every child is reaped at once; when CMD itself exits, so does the helper,
 * with CMD's status (128 + signal if CMD was killed).
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

static volatile pid_t cmd_pid;

/* An interrupted make must still reach the runner, whose trap cleans up. */
static void forward(int sig)
{
	if (cmd_pid > 0)
		kill(cmd_pid, sig);
}

static void install_forwarding(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

int main(int argc, char **argv)
{
	pid_t pid;
	int status;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		fprintf(stderr, "subreaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "subreaper: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "subreaper: can't run '%s': %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	cmd_pid = pid;
	install_forwarding();
	for (;;) {
		pid_t w = waitpid(-1, &status, __WALL);

		if (w == pid)
			return exit_code(status);
		if (w < 0 && errno != EINTR) {
			fprintf(stderr, "subreaper: waitpid: %s\n", strerror(errno));
			return 1;
		}
	}
}
