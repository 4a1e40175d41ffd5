/*
 * A real Python 3 program checkpointed mid-work: /usr/bin/python3 running
 * real_python.py (next to the sidecar, $CR_TEST_SRCDIR), four threads in rounds
 * chained through a threading.Condition, each writing to its own open file
 * and, in turn, to one shared file (the script says more). With the
 * interpreter come its many mappings: libpython, lib-dynload modules
 * (_hashlib and libcrypto, _decimal, zlib), the threads' stacks and arenas.
 *
 *   real_python [-u] OUTFILE [ROUNDS [GATE_ROUND]]
 *
 * The root waits until the script is past its second round, signals
 * readiness, and after SIGTERM opens the gate the script stops at (so every
 * dump finds it unfinished), waits for it to exit 0 and reports its answer
 * (SHA-256 of all results and file contents); -u runs it uninterrupted with
 * the gate open (compare=answer).
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

static char work[PATH_MAX / 2];

static void work_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", work, name);
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void create_gate(void)
{
	char path[PATH_MAX];
	int fd;

	work_path(path, sizeof(path), "gate");
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		cr_die("create %s: %s", path, strerror(errno));
	close(fd);
}

static pid_t start_python(const char *rounds, const char *gate)
{
	static char script[PATH_MAX];
	const char *srcdir = getenv("CR_TEST_SRCDIR");
	pid_t pid;

	if (!srcdir)
		cr_die("CR_TEST_SRCDIR is not set (run.sh sets it to the directory of real_python.py)");
	snprintf(script, sizeof(script), "%s/real_python.py", srcdir);
	if (!exists(script))
		cr_die("%s: %s", script, strerror(errno));
	pid = cr_fork("python");
	if (pid == 0) {
		sigset_t none;

		/* Python gets the signal state of a program started normally. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		execl(PYTHON, "python3", "-I", "-B", script, work, rounds, gate, (char *)NULL);
		cr_log("exec %s: %s", PYTHON, strerror(errno));
		_exit(127);
	}
	return pid;
}

static void wait_started(pid_t py)
{
	char path[PATH_MAX];
	int status;

	work_path(path, sizeof(path), "started");
	while (!exists(path)) {
		if (waitpid(py, &status, WNOHANG) == py)
			cr_die("python ended (status 0x%x) before its second round", status);
		cr_sleep_ms(10);
	}
}

static void check_result(pid_t py)
{
	char path[PATH_MAX], text[128];
	int status;
	size_t hex;

	if (cr_wait_pid(py, 600000, &status)) {
		cr_fail("python did not finish within 600 s");
		kill(py, SIGKILL);
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cr_fail("python: status 0x%x (its FAIL lines in the log say why)", status);
		return;
	}
	work_path(path, sizeof(path), "answer");
	cr_read_file(path, text, sizeof(text));
	hex = strspn(text, "0123456789abcdef");
	if (hex != 64 || strcmp(text + hex, "\n")) {
		cr_fail("python wrote the answer '%s'", text);
		return;
	}
	text[hex] = '\0';
	cr_set_note("answer=%s", text);
}

int main(int argc, char **argv)
{
	bool uninterrupted = argc > 1 && !strcmp(argv[1], "-u");
	unsigned long rounds, gate;
	char rounds_text[32], gate_text[32];
	pid_t py;

	if (uninterrupted) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	cr_init(argc, argv);
	rounds = cr_arg(0) ? strtoul(cr_arg(0), NULL, 10) : 600;
	gate = cr_arg(1) ? strtoul(cr_arg(1), NULL, 10) : rounds * 2 / 3;
	if (rounds < 4 || rounds > 1000000 || gate < 3 || gate > rounds)
		cr_die("bad arguments: ROUNDS 4..1000000, GATE_ROUND 3..ROUNDS");
	snprintf(rounds_text, sizeof(rounds_text), "%lu", rounds);
	snprintf(gate_text, sizeof(gate_text), "%lu", gate);
	cr_path(work, sizeof(work), uninterrupted ? "python-u" : "python");
	if (mkdir(work, 0755))
		cr_die("mkdir %s: %s", work, strerror(errno));
	if (uninterrupted)
		create_gate();
	py = start_python(rounds_text, gate_text);
	if (!uninterrupted) {
		wait_started(py);
		cr_ready();
		cr_wait_term();
		create_gate();
	}
	check_result(py);
	return cr_report();
}
