/*
 * A real bash script checkpointed while it forks all the time: every round
 * runs a command substitution and a background /bin/true it waits for, so
 * a dump often finds a child on its way out (it must be saved as the zombie
 * it becomes and reaped by bash after restore). Each round appends a line
 * to a file through a descriptor bash keeps open (O_APPEND) across the
 * dumps; the chained sum makes every line depend on the previous ones.
 *
 *   real_shell [-u] OUTFILE [ROUNDS [GATE_ROUND]]
 *
 * Before GATE_ROUND bash waits (sleep 0.05 in a loop) for the gate file
 * the root creates after SIGTERM, so every dump finds it unfinished. The
 * root then checks the file holds rounds 0..ROUNDS-1, each once and in
 * order, and reports bash's SHA-256 of it; -u runs uninterrupted with the
 * gate open (compare=answer).
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

#define BASH "/bin/bash"

static const char script[] =
	"work=$1 rounds=$2 gate=$3\n"
	"sum=0 i=0\n"
	"exec 7>>\"$work/progress\"\n"
	"while [ $i -lt $rounds ]; do\n"
	"	if [ $i = $gate ]; then\n"
	"		while [ ! -e \"$work/gate\" ]; do sleep 0.05; done\n"
	"	fi\n"
	"	[ $i = 2 ] && : > \"$work/started\"\n"
	"	v=$(printf '%d' $(( (i * 7919 + sum) % 10007 )))\n"
	"	sum=$(( (sum * 31 + v) % 1000000007 ))\n"
	"	/bin/true &\n"
	"	wait $! || exit 1\n"
	"	echo \"$i $v $sum\" >&7\n"
	"	i=$((i + 1))\n"
	"done\n"
	"exec 7>&-\n"
	"sha256sum < \"$work/progress\" > \"$work/answer\"\n";

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

static pid_t start_bash(const char *rounds, const char *gate)
{
	pid_t pid = cr_fork("bash");

	if (pid == 0) {
		sigset_t none;

		/* bash gets the signal state of a program started normally. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		execl(BASH, "bash", "--norc", "--noprofile", "-c", script, "bash", work, rounds,
		      gate, (char *)NULL);
		cr_log("exec %s: %s", BASH, strerror(errno));
		_exit(127);
	}
	return pid;
}

static void wait_started(pid_t sh)
{
	char path[PATH_MAX];
	int status;

	work_path(path, sizeof(path), "started");
	while (!exists(path)) {
		if (waitpid(sh, &status, WNOHANG) == sh)
			cr_die("bash ended (status 0x%x) before its third round", status);
		cr_sleep_ms(10);
	}
}

/* Lines "I V SUM" for I = 0..ROUNDS-1, each once, in order. */
static void check_progress(unsigned long rounds)
{
	static char text[1 << 20];
	char path[PATH_MAX];
	unsigned long next = 0;

	work_path(path, sizeof(path), "progress");
	cr_read_file(path, text, sizeof(text));
	for (char *line = text; *line; line += strcspn(line, "\n") + 1) {
		unsigned long i;

		if (sscanf(line, "%lu ", &i) != 1 || i != next) {
			cr_fail("progress line %lu is '%.*s'", next, (int)strcspn(line, "\n"), line);
			return;
		}
		next++;
		if (!line[strcspn(line, "\n")])
			break;
	}
	CR_EXPECT_EQ("rounds in the progress file", next, rounds);
}

static void check_result(pid_t sh, unsigned long rounds)
{
	char path[PATH_MAX], text[128];
	int status;
	size_t hex;

	if (cr_wait_pid(sh, 600000, &status)) {
		cr_fail("bash did not finish within 600 s");
		kill(sh, SIGKILL);
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cr_fail("bash: status 0x%x", status);
		return;
	}
	check_progress(rounds);
	work_path(path, sizeof(path), "answer");
	cr_read_file(path, text, sizeof(text));
	hex = strspn(text, "0123456789abcdef");
	if (hex != 64 || strcmp(text + hex, "  -\n")) {
		cr_fail("sha256sum wrote '%s'", text);
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
	pid_t sh;

	if (uninterrupted) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	cr_init(argc, argv);
	rounds = cr_arg(0) ? strtoul(cr_arg(0), NULL, 10) : 200;
	gate = cr_arg(1) ? strtoul(cr_arg(1), NULL, 10) : rounds / 2;
	if (rounds < 4 || rounds > 100000 || gate < 3 || gate > rounds)
		cr_die("bad arguments: ROUNDS 4..100000, GATE_ROUND 3..ROUNDS");
	snprintf(rounds_text, sizeof(rounds_text), "%lu", rounds);
	snprintf(gate_text, sizeof(gate_text), "%lu", gate);
	cr_path(work, sizeof(work), uninterrupted ? "shell-u" : "shell");
	if (mkdir(work, 0755))
		cr_die("mkdir %s: %s", work, strerror(errno));
	if (uninterrupted)
		create_gate();
	sh = start_bash(rounds_text, gate_text);
	if (!uninterrupted) {
		wait_started(sh);
		cr_ready();
		cr_wait_term();
		create_gate();
	}
	check_result(sh, rounds);
	return cr_report();
}
