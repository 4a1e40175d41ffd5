/*
 * A real shell pipeline checkpointed mid-stream:
 *
 *   /bin/sh -c '"$0" --gen MIB | gzip -n -1 | "$0" --pace DIR GATE |
 *               tee DIR/data.gz | sha256sum > DIR/sum'
 *
 * The generator (this program, --gen) writes MIB MiB of deterministic,
 * partly compressible text into a 1 MiB pipe; gzip compresses it into a
 * pipe the pacer (--pace) enlarged to 256 KiB; the pacer forwards the
 * compressed stream slowly, and stops after GATE bytes until the root opens
 * the gate (a file it creates after SIGTERM), so whenever the tree is
 * dumped, the stream is unfinished and both pipes in front of the pacer are
 * full; tee writes the stream to a file (at an offset that must survive)
 * and sha256sum hashes it. The whole pipeline (sh and its five children)
 * is in the dumped tree, its output goes to files in the scratch directory.
 *
 *   real_pipeline [-u] OUTFILE [MIB [GATE_KIB]]
 *
 * After SIGTERM the root opens the gate, waits for sh, checks that the
 * generator and the pacer wrote everything and that tee's file holds
 * exactly what the pacer forwarded, and reports the SHA-256 of the gzip
 * output as the answer; -u runs the same pipeline uninterrupted, gate
 * open from the start (compare=answer).
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GEN_PIPE_SIZE (1 << 20)
#define PACE_PIPE_SIZE (256 << 10)
#define PACE_CHUNK (16 << 10)
#define PACE_SLEEP_MS 5
#define STARTED_BYTES (1 << 20)

/* ---- helpers run inside the pipeline (no crtest protocol there) ---- */

static void helper_die(const char *what, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void helper_die(const char *what, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n = snprintf(line, sizeof(line), "[real_pipeline %d %s] FAIL: ", (int)getpid(), what);

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	if (write(STDERR_FILENO, line, strlen(line)) < 0)
		_exit(3);
	_exit(1);
}

static void write_all(const char *what, int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			helper_die(what, "write to fd %d: %s", fd, strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

static void write_status(const char *what, const char *path, uint64_t bytes, uint64_t hash)
{
	char tmp[PATH_MAX], text[96];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(text, sizeof(text), "bytes=%" PRIu64 " hash=%016" PRIx64 "\n", bytes, hash);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		helper_die(what, "create %s: %s", tmp, strerror(errno));
	write_all(what, fd, text, (size_t)n);
	if (close(fd) || rename(tmp, path))
		helper_die(what, "finish %s: %s", path, strerror(errno));
}

static uint64_t fnv(uint64_t h, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

/* Record J of the generated text: a counter, a half-random value, a word. */
static int gen_record(char *out, uint64_t j)
{
	static const char *const words[] = {
		"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
		"india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa",
	};
	uint64_t m = cr_mix(j);

	return sprintf(out, "%010" PRIu64 " %016" PRIx64 " %s\n", j,
		       (uint64_t)(m & 0xffff00000000ffffULL), words[(m >> 20) % 16]);
}

/* --gen MIB DIR: MIB MiB of records on stdout, then DIR/gen.status. */
static int gen_main(int argc, char **argv)
{
	static char buf[(64 << 10) + 128];
	uint64_t total, done = 0, j = 0, h = 0xcbf29ce484222325ULL;
	char path[PATH_MAX];
	size_t used = 0;

	if (argc != 4)
		helper_die("gen", "usage: --gen MIB DIR");
	total = strtoull(argv[2], NULL, 10) << 20;
	/* A pipe larger than the default, so that a dump has 1 MiB to keep. */
	if (fcntl(STDOUT_FILENO, F_SETPIPE_SZ, GEN_PIPE_SIZE) < GEN_PIPE_SIZE)
		helper_die("gen", "F_SETPIPE_SZ %d on stdout: %s", GEN_PIPE_SIZE, strerror(errno));
	while (done < total) {
		size_t n;

		while (used < (64 << 10))
			used += (size_t)gen_record(buf + used, j++);
		n = total - done < (64 << 10) ? (size_t)(total - done) : (64 << 10);
		write_all("gen", STDOUT_FILENO, buf, n);
		h = fnv(h, buf, n);
		done += n;
		memmove(buf, buf + n, used - n);
		used -= n;
	}
	snprintf(path, sizeof(path), "%s/gen.status", argv[3]);
	write_status("gen", path, done, h);
	return 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* --pace DIR GATE: copies stdin to stdout, slowly and stopping after GATE
 * bytes until DIR/gate exists; DIR/started after the first MiB. */
static int pace_main(int argc, char **argv)
{
	static char buf[PACE_CHUNK];
	char gate[PATH_MAX], path[PATH_MAX];
	uint64_t limit, done = 0, h = 0xcbf29ce484222325ULL;
	bool open_gate = false;

	if (argc != 4)
		helper_die("pace", "usage: --pace DIR GATE");
	limit = strtoull(argv[3], NULL, 10);
	snprintf(gate, sizeof(gate), "%s/gate", argv[2]);
	if (fcntl(STDIN_FILENO, F_SETPIPE_SZ, PACE_PIPE_SIZE) < PACE_PIPE_SIZE)
		helper_die("pace", "F_SETPIPE_SZ %d on stdin: %s", PACE_PIPE_SIZE, strerror(errno));
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			helper_die("pace", "read stdin: %s", strerror(errno));
		if (n == 0)
			break;
		write_all("pace", STDOUT_FILENO, buf, (size_t)n);
		h = fnv(h, buf, (size_t)n);
		if (done < STARTED_BYTES && done + (uint64_t)n >= STARTED_BYTES) {
			snprintf(path, sizeof(path), "%s/started", argv[2]);
			write_status("pace", path, done + (uint64_t)n, 0);
		}
		done += (uint64_t)n;
		while (!open_gate) {
			open_gate = exists(gate);
			if (open_gate || done < limit) {
				if (!open_gate)
					cr_sleep_ms(PACE_SLEEP_MS);
				break;
			}
			cr_sleep_ms(10);
		}
	}
	snprintf(path, sizeof(path), "%s/pace.status", argv[2]);
	write_status("pace", path, done, h);
	return 0;
}

/* ---- the test ---- */

static char work[PATH_MAX / 2];

static void work_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", work, name);
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

static pid_t start_pipeline(const char *mib, const char *gate)
{
	static const char script[] =
		"\"$0\" --gen \"$2\" \"$1\" | gzip -n -1 | \"$0\" --pace \"$1\" \"$3\" | "
		"tee \"$1/data.gz\" | sha256sum > \"$1/sum\"";
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t pid;

	if (n <= 0)
		cr_die("readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	pid = cr_fork("sh");
	if (pid == 0) {
		sigset_t none;

		/* The pipeline gets the signal state of a shell started normally. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		execl("/bin/sh", "sh", "-c", script, exe, work, mib, gate, (char *)NULL);
		cr_log("exec /bin/sh: %s", strerror(errno));
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
			cr_die("the pipeline ended (status 0x%x) before it was under way", status);
		cr_sleep_ms(10);
	}
}

/* NAME.status of a helper: "bytes=N hash=H". */
static uint64_t status_bytes(const char *name, uint64_t *hash)
{
	char path[PATH_MAX], text[128];
	unsigned long long bytes, h = 0;

	work_path(path, sizeof(path), name);
	if (!exists(path)) {
		cr_fail("%s is missing: that stage did not finish", name);
		return 0;
	}
	cr_read_file(path, text, sizeof(text));
	if (sscanf(text, "bytes=%llu hash=%llx", &bytes, &h) != 2) {
		cr_fail("%s: unexpected contents '%s'", name, text);
		return 0;
	}
	if (hash)
		*hash = h;
	return bytes;
}

/* tee's file holds exactly the BYTES bytes with hash HASH that the pacer
 * forwarded: nothing lost, repeated or misplaced across the dumps. */
static void check_tee_file(uint64_t bytes, uint64_t hash)
{
	static char buf[1 << 20];
	char path[PATH_MAX];
	uint64_t total = 0, h = 0xcbf29ce484222325ULL;
	ssize_t n;
	int fd;

	work_path(path, sizeof(path), "data.gz");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cr_fail("open %s: %s", path, strerror(errno));
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		h = fnv(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	if (n < 0)
		cr_fail("read %s: %s", path, strerror(errno));
	close(fd);
	CR_EXPECT_EQ("bytes in tee's file", total, bytes);
	CR_CHECK(h == hash, "tee's file differs from the stream the pacer forwarded");
}

static void check_result(pid_t sh, uint64_t mib)
{
	char path[PATH_MAX], text[256];
	uint64_t compressed, hash = 0;
	int status;
	size_t hex;

	if (cr_wait_pid(sh, 600000, &status)) {
		cr_fail("the pipeline did not finish within 600 s");
		kill(sh, SIGKILL);
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		cr_fail("sh -c pipeline: status 0x%x", status);
	CR_EXPECT_EQ("bytes generated", status_bytes("gen.status", NULL), mib << 20);
	compressed = status_bytes("pace.status", &hash);
	check_tee_file(compressed, hash);
	/* The text is about half random: gzip must have had real work. */
	CR_CHECK(compressed > (mib << 20) / 8 && compressed < (mib << 20),
		 "%" PRIu64 " compressed bytes for %" PRIu64 " MiB", compressed, mib);
	work_path(path, sizeof(path), "sum");
	cr_read_file(path, text, sizeof(text));
	hex = strspn(text, "0123456789abcdef");
	if (hex != 64 || strcmp(text + hex, "  -\n")) {
		cr_fail("sha256sum wrote '%s'", text);
		return;
	}
	text[hex] = '\0';
	cr_log("%" PRIu64 " MiB -> %" PRIu64 " compressed bytes, sha256 %s", mib, compressed, text);
	cr_set_note("answer=%s", text);
}

int main(int argc, char **argv)
{
	bool uninterrupted = argc > 1 && !strcmp(argv[1], "-u");
	char gate[32], mib_text[32];
	uint64_t mib, gate_kib;
	pid_t sh;

	if (argc > 1 && !strcmp(argv[1], "--gen"))
		return gen_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "--pace"))
		return pace_main(argc, argv);
	if (uninterrupted) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	cr_init(argc, argv);
	mib = cr_arg(0) ? strtoull(cr_arg(0), NULL, 10) : 64;
	gate_kib = cr_arg(1) ? strtoull(cr_arg(1), NULL, 10) : 8192;
	if (mib < 1 || mib > 4096 || gate_kib < 1024)
		cr_die("bad arguments: MIB 1..4096, GATE_KIB >= 1024");
	snprintf(gate, sizeof(gate), "%" PRIu64, gate_kib << 10);
	cr_path(work, sizeof(work), uninterrupted ? "pipeline-u" : "pipeline");
	if (mkdir(work, 0755))
		cr_die("mkdir %s: %s", work, strerror(errno));
	if (uninterrupted)
		create_gate();
	snprintf(mib_text, sizeof(mib_text), "%" PRIu64, mib);
	sh = start_pipeline(mib_text, gate);
	if (!uninterrupted) {
		wait_started(sh);
		cr_ready();
		cr_wait_term();
		create_gate();
	}
	check_result(sh, mib);
	return cr_report();
}
