/*
 * fdmaps: the subject of the object-count benchmark (bench/objects.sh).
 *
 *   fdmaps NFDS NMAPS OUTFILE
 *
 * Opens NFDS descriptors: half of them open file descriptions of their own
 * (/dev/null and a regular file, each opened again and again, so many
 * descriptions share one inode and only kcmp tells them apart), the other
 * half dups of those. Maps NMAPS one-page anonymous areas whose protections
 * alternate so no two merge, and writes a pattern into the writable ones.
 * Announces OUTFILE.ready (its pid), waits for SIGTERM, then checks that
 * every descriptor is still there and still shares (or not) its offset as
 * before, that every mapping has its contents, and writes
 * PASS or FAIL ... to OUTFILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define FIRST_FD 3

static volatile sig_atomic_t got_sigterm;

static void on_term(int sig)
{
	(void)sig;
	got_sigterm = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "fdmaps: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, const char *text)
{
	char tmp[4096];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) ||
	    rename(tmp, path))
		die(path);
}

static uint64_t word_of(size_t map, size_t i)
{
	uint64_t z = (map << 20) + i + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	return z ^ (z >> 27);
}

int main(int argc, char **argv)
{
	long nfds, nmaps, own;
	char **maps, data[4096], verdict[256] = "PASS";
	struct rlimit rl;
	struct sigaction sa;
	sigset_t term, old;
	int fd;

	if (argc != 4 || (nfds = atol(argv[1])) < 2 || (nmaps = atol(argv[2])) < 1) {
		fprintf(stderr, "usage: fdmaps NFDS NMAPS OUTFILE\n");
		return 2;
	}
	own = nfds / 2;
	/* Only stdio comes from the caller. */
	closefrom(FIRST_FD);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	if ((rlim_t)(nfds + FIRST_FD + 1) > rl.rlim_max) {
		errno = EMFILE;
		die("RLIMIT_NOFILE hard limit too low");
	}
	setrlimit(RLIMIT_NOFILE, &rl);
	snprintf(data, sizeof(data), "%s.data", argv[3]);
	write_file(data, "fdmaps data file\n");
	for (long i = 0; i < own; i++) {
		fd = open(i % 2 ? data : "/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd != FIRST_FD + i)
			die("open");
		if (i % 2)	/* offsets tell descriptions apart after restore */
			lseek(fd, i % 17, SEEK_SET);
	}
	for (long i = own; i < nfds; i++)
		if (fcntl(FIRST_FD + (i - own), F_DUPFD_CLOEXEC, FIRST_FD + i) != FIRST_FD + i)
			die("dup");
	maps = calloc(nmaps, sizeof(*maps));
	for (long m = 0; m < nmaps; m++) {
		int prot = m % 2 ? PROT_READ : PROT_READ | PROT_WRITE;

		maps[m] = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (maps[m] == MAP_FAILED)
			die("mmap");
		for (size_t i = 0; i < PAGE / 8; i++)
			((uint64_t *)maps[m])[i] = word_of(m, i);
		if (mprotect(maps[m], PAGE, prot))
			die("mprotect");
	}

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	{
		char path[4096], text[32];

		snprintf(path, sizeof(path), "%s.ready", argv[3]);
		snprintf(text, sizeof(text), "%d\n", (int)getpid());
		write_file(path, text);
	}
	while (!got_sigterm)
		sigsuspend(&old);

	for (long i = 0; i < nfds && !strcmp(verdict, "PASS"); i++) {
		long k = i < own ? i : i - own;	/* the description's own index */
		off_t want = k % 2 ? k % 17 : 0, got = lseek(FIRST_FD + i, 0, SEEK_CUR);
		struct stat st;

		if (fstat(FIRST_FD + i, &st) || got != want)
			snprintf(verdict, sizeof(verdict), "FAIL fd %ld: offset %lld, expected %lld (%s)",
				 FIRST_FD + i, (long long)got, (long long)want, strerror(errno));
	}
	/* A dup shares the offset of its original: move one, read the other. */
	if (!strcmp(verdict, "PASS") && own > 1) {
		lseek(FIRST_FD + 1, 5, SEEK_SET);
		if (lseek(FIRST_FD + own + 1, 0, SEEK_CUR) != 5)
			snprintf(verdict, sizeof(verdict), "FAIL fd %ld no longer shares fd %d's offset",
				 FIRST_FD + own + 1, FIRST_FD + 1);
	}
	if (!strcmp(verdict, "PASS") && fcntl(FIRST_FD + nfds, F_GETFD) != -1)
		snprintf(verdict, sizeof(verdict), "FAIL fd %ld exists", FIRST_FD + nfds);
	for (long m = 0; m < nmaps && !strcmp(verdict, "PASS"); m++) {
		for (size_t i = 0; i < PAGE / 8; i++) {
			if (((uint64_t *)maps[m])[i] != word_of(m, i)) {
				snprintf(verdict, sizeof(verdict), "FAIL mapping %ld word %zu", m, i);
				break;
			}
		}
	}
	{
		char line[300];

		snprintf(line, sizeof(line), "%s\n", verdict);
		write_file(argv[3], line);
	}
	return strcmp(verdict, "PASS") != 0;
}
