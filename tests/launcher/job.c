/*
 * job STEPS OUTFILE [DELAY_MS]: the multi-process job the launcher tests
 * checkpoint. A parent and three workers; the parent sends each step's work
 * to a worker through a pipe, the worker sends the result back through
 * another, and the parent prints it and writes it to OUTFILE at its own file
 * position (as a program appending to its result file: no O_APPEND, so a
 * restored job writes the same bytes at the same place again). Every step
 * sleeps DELAY_MS, so that checkpoints fall in the middle. The output and
 * OUTFILE depend only on STEPS: an interrupted and restarted run must give
 * exactly the bytes of an uninterrupted one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NR_WORKERS 3

struct work { uint32_t step; uint64_t seed; };
struct result { uint32_t step; uint64_t value; };

static void die(const char *what)
{
	fprintf(stderr, "job: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void xread(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read");
		p += n;
		len -= n;
	}
}

static void xwrite(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		p += n;
		len -= n;
	}
}

/* Some arithmetic, so that memory and registers matter. */
static uint64_t compute(uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (int i = 0; i < 200000; i++)
		x ^= (x << 13) ^ (x >> 7) ^ (x << 17) ^ (uint64_t)i;
	return x;
}

static void worker(int in, int out)
{
	struct work w;
	struct result r;

	for (;;) {
		ssize_t n = read(in, &w, sizeof(w));
		if (n == 0)
			exit(0);
		if (n != sizeof(w)) {
			if (n < 0 && errno == EINTR)
				continue;
			die("worker read");
		}
		r.step = w.step;
		r.value = compute(w.seed);
		xwrite(out, &r, sizeof(r));
	}
}

int main(int argc, char **argv)
{
	int to[NR_WORKERS][2], from[2], steps, delay_ms, fd;
	pid_t pids[NR_WORKERS];
	uint64_t total = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: job STEPS OUTFILE [DELAY_MS]\n");
		return 2;
	}
	steps = atoi(argv[1]);
	delay_ms = argc > 3 ? atoi(argv[3]) : 100;
	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(argv[2]);
	if (pipe(from) < 0)
		die("pipe");
	for (int i = 0; i < NR_WORKERS; i++) {
		if (pipe(to[i]) < 0)
			die("pipe");
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0) {
			close(to[i][1]);
			close(from[0]);
			worker(to[i][0], from[1]);
		}
		close(to[i][0]);
	}
	close(from[1]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("job: %d steps, %d workers\n", steps, NR_WORKERS);
	for (int s = 0; s < steps; s++) {
		struct work w = { s, (uint64_t)s * 7919 + 1 };
		struct result r;
		char line[96];
		struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
		int n;

		xwrite(to[s % NR_WORKERS][1], &w, sizeof(w));
		xread(from[0], &r, sizeof(r));
		if (r.step != (uint32_t)s) {
			fprintf(stderr, "job: step %d got the result of step %u\n", s, r.step);
			return 3;
		}
		total += r.value;
		n = snprintf(line, sizeof(line), "step %d worker %d value %016llx\n", s, s % NR_WORKERS,
			     (unsigned long long)r.value);
		xwrite(fd, line, n);
		fputs(line, stdout);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	for (int i = 0; i < NR_WORKERS; i++)
		close(to[i][1]);
	for (int i = 0; i < NR_WORKERS; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			die("worker");
	}
	printf("job: done, total %016llx\n", (unsigned long long)total);
	fprintf(stderr, "job: finished\n");
	return 0;
}
