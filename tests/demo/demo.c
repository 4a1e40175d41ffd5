/*
 * demo: a deterministic computation that takes a while, for showing that a
 * checkpointed and restored run ends with the same answer as an uninterrupted
 * one (scripts/demo.sh).
 *
 * A buffer of --mib MiB is split between --threads worker threads. In each of
 * --steps steps every worker mixes its slice --passes times and folds it into
 * a per-thread sum; the main thread combines the sums in thread order, so the
 * result does not depend on scheduling. Progress goes to stdout, one line per
 * step, and the last line is "result: <16 hex digits>".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 64

struct params {
	unsigned int steps, passes, threads;
	size_t mib;
};

struct worker {
	pthread_t thread;
	unsigned int idx;
	uint64_t *slice;
	size_t words;
	uint64_t sum;		/* written by the worker, read after the barrier */
};

static struct params params = { .steps = 40, .passes = 12, .threads = 2, .mib = 256 };
static pthread_barrier_t step_start, step_done;
static unsigned int current_step;

/* splitmix64 finaliser: cheap, and every input bit reaches every output bit. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t mix_slice(struct worker *w, unsigned int step)
{
	uint64_t sum = 0;

	for (unsigned int pass = 0; pass < params.passes; pass++) {
		uint64_t salt = mix64(((uint64_t)step << 32) | (pass << 8) | w->idx);

		for (size_t i = 0; i < w->words; i++) {
			uint64_t x = mix64(w->slice[i] ^ salt ^ i);

			w->slice[i] = x;
			sum = (sum << 7 | sum >> 57) ^ x;
		}
	}
	return sum;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		pthread_barrier_wait(&step_start);
		if (current_step >= params.steps)
			return NULL;
		w->sum = mix_slice(w, current_step);
		pthread_barrier_wait(&step_done);
	}
}

static int parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || end == s || *end || *out == 0 || *out > max) {
		fprintf(stderr, "demo: --%s wants an integer in 1..%lu, got '%s'\n", opt, max, s);
		return -1;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: demo [--steps N] [--passes N] [--threads N] [--mib N]\n"
		   "defaults: --steps 40 --passes 12 --threads 2 --mib 256\n");
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "steps", required_argument, NULL, 's' },
		{ "passes", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "mib", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *name = c == 's' ? "steps" : c == 'p' ? "passes" : c == 't' ? "threads" : "mib";
		unsigned long max = c == 't' ? MAX_THREADS : c == 'm' ? 65536 : 1000000;

		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?' || parse_uint(name, optarg, max, &v) < 0) {
			usage(stderr);
			return -1;
		}
		if (c == 's')
			params.steps = v;
		else if (c == 'p')
			params.passes = v;
		else if (c == 't')
			params.threads = v;
		else
			params.mib = v;
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int start_workers(struct worker *w, uint64_t *buf)
{
	size_t words = params.mib * (1 << 20) / sizeof(uint64_t);
	size_t per = words / params.threads;

	for (unsigned int i = 0; i < params.threads; i++) {
		int r;

		w[i].idx = i;
		w[i].slice = buf + i * per;
		w[i].words = i + 1 == params.threads ? words - i * per : per;
		r = pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
		if (r) {
			fprintf(stderr, "demo: pthread_create worker %u: %s\n", i, strerror(r));
			return -1;
		}
	}
	return 0;
}

/* Everything but stdio was inherited by accident: don't carry it along. */
static void close_inherited_fds(void)
{
	if (syscall(SYS_close_range, 3U, ~0U, 0) < 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
}

static uint64_t run_steps(struct worker *w)
{
	uint64_t h = 0x63726c61756e6368ULL; /* "crlaunch" */

	for (current_step = 0; current_step < params.steps; current_step++) {
		pthread_barrier_wait(&step_start);
		pthread_barrier_wait(&step_done);
		for (unsigned int i = 0; i < params.threads; i++)
			h = mix64(h ^ w[i].sum);
		printf("step %u/%u: %016" PRIx64 "\n", current_step + 1, params.steps, h);
	}
	pthread_barrier_wait(&step_start); /* lets the workers see the end */
	return h;
}

int main(int argc, char **argv)
{
	struct worker w[MAX_THREADS] = { 0 };
	uint64_t *buf, h;

	if (parse_args(argc, argv) < 0)
		return 2;
	close_inherited_fds();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* calloc: the first step reads zeroes, so the initial state is fixed. */
	buf = calloc(params.mib, 1 << 20);
	if (!buf) {
		fprintf(stderr, "demo: cannot allocate %zu MiB\n", params.mib);
		return 1;
	}
	pthread_barrier_init(&step_start, NULL, params.threads + 1);
	pthread_barrier_init(&step_done, NULL, params.threads + 1);
	printf("demo: pid %d, %u steps x %u passes over %zu MiB with %u threads\n",
	       (int)getpid(), params.steps, params.passes, params.mib, params.threads);
	if (start_workers(w, buf) < 0)
		return 1;

	h = run_steps(w);
	for (unsigned int i = 0; i < params.threads; i++)
		pthread_join(w[i].thread, NULL);
	printf("result: %016" PRIx64 "\n", h);
	free(buf);
	return 0;
}
