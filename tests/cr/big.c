/*
 * The acceptance workload: N MiB of memory (default 64; the acceptance
 * check uses 4096) worked on by 8 threads in rounds, each round chained to
 * the previous one across threads, so the final answer depends on every
 * byte and every register surviving; an itimer and a POSIX timer with
 * signal handlers; and a child in a session of its own computing a part of
 * the answer.
 *
 *   big [-u] OUTFILE [MIB [ROUNDS]]
 *
 * Normally it signals readiness as soon as the work starts, and after
 * SIGTERM finishes the work and writes "PASS answer=<hex>". With -u it
 * runs uninterrupted: no readiness, no SIGTERM, the same answer. The runner
 * compares the two (compare=answer in big.desc).
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NR_THREADS 8
#define CHILD_BYTES (16UL << 20)
#define CHILD_ROUNDS 64

struct shared_result {
	_Atomic uint64_t answer;
	atomic_int done;
};

static uint64_t *memory;
static size_t nr_words;
static unsigned rounds;
static pthread_barrier_t barrier;
static uint64_t carries[2][NR_THREADS];	/* per round parity */
static uint64_t sums[NR_THREADS];
static _Atomic unsigned rounds_done;
static atomic_int itimer_ticks, ptimer_ticks;
static struct shared_result *child_result;

static inline uint64_t step(uint64_t w, uint64_t carry, uint64_t round)
{
	uint64_t x = (w ^ carry ^ round) * 0x9e3779b97f4a7c15ULL;

	return x ^ (x >> 29);
}

/* One thread's slice, ROUNDS times; each round starts from the carry the
 * next thread ended the previous round with. */
static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	size_t lo = nr_words * (size_t)t / NR_THREADS, hi = nr_words * (size_t)(t + 1) / NR_THREADS;
	uint64_t carry = 0, sum = 0;

	for (size_t i = lo; i < hi; i++)
		memory[i] = cr_mix(i);
	pthread_barrier_wait(&barrier);
	for (unsigned r = 0; r < rounds; r++) {
		carry = r ? carries[(r - 1) & 1][(t + 1) % NR_THREADS] : (uint64_t)t;
		sum = 0;
		for (size_t i = lo; i < hi; i++) {
			uint64_t x = step(memory[i], carry, r);

			memory[i] = x;
			carry += x;
			sum ^= x;
		}
		carries[r & 1][t] = carry;
		sums[t] = sum;
		if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
			atomic_store(&rounds_done, r + 1);
	}
	return NULL;
}

static uint64_t child_work(void)
{
	uint64_t *buf = mmap(NULL, CHILD_BYTES, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t carry = 1;

	if (buf == MAP_FAILED)
		cr_die("child: mmap: %s", strerror(errno));
	for (size_t i = 0; i < CHILD_BYTES / 8; i++)
		buf[i] = cr_mix(~i);
	for (unsigned r = 0; r < CHILD_ROUNDS; r++)
		for (size_t i = 0; i < CHILD_BYTES / 8; i++) {
			buf[i] = step(buf[i], carry, r);
			carry += buf[i];
		}
	return carry;
}

static void __attribute__((noreturn)) child(void)
{
	pid_t self;

	if (setsid() < 0)
		cr_die("child: setsid: %s", strerror(errno));
	self = getpid();
	cr_child_ready();
	atomic_store(&child_result->answer, child_work());
	atomic_store(&child_result->done, 1);
	cr_wait_term();
	CR_EXPECT_EQ("child getsid()", getsid(0), self);
	CR_EXPECT_EQ("child getpgid()", getpgid(0), self);
	cr_child_exit();
}

static void on_tick(int sig)
{
	atomic_fetch_add(sig == SIGALRM ? &itimer_ticks : &ptimer_ticks, 1);
}

static timer_t start_timers(void)
{
	struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART };
	struct itimerval it = { { 0, 10000 }, { 0, 10000 } };
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1 };
	struct itimerspec its = { { 0, 15000000 }, { 0, 15000000 } };
	timer_t timer;

	if (sigaction(SIGALRM, &sa, NULL) || sigaction(SIGRTMIN + 1, &sa, NULL) ||
	    setitimer(ITIMER_REAL, &it, NULL) || timer_create(CLOCK_MONOTONIC, &sev, &timer) ||
	    timer_settime(timer, 0, &its, NULL))
		cr_die("timers: %s", strerror(errno));
	return timer;
}

static void check_timers(timer_t timer)
{
	int it0 = atomic_load(&itimer_ticks), pt0 = atomic_load(&ptimer_ticks);
	struct itimerspec its;
	struct itimerval it;

	cr_sleep_ms(500);
	if (atomic_load(&itimer_ticks) - it0 < 10 || atomic_load(&ptimer_ticks) - pt0 < 10)
		cr_fail("timers stalled: %d itimer and %d POSIX timer ticks in 500 ms",
			atomic_load(&itimer_ticks) - it0, atomic_load(&ptimer_ticks) - pt0);
	getitimer(ITIMER_REAL, &it);
	if (timer_gettime(timer, &its) || its.it_interval.tv_nsec != 15000000 ||
	    it.it_interval.tv_usec != 10000)
		cr_fail("timer intervals changed");
}

static uint64_t answer(void)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (int t = 0; t < NR_THREADS; t++)
		h = cr_mix(h ^ carries[(rounds - 1) & 1][t]) ^ sums[t];
	return cr_mix(h ^ atomic_load(&child_result->answer));
}

static void parse_args(void)
{
	unsigned long mib = cr_arg(0) ? strtoul(cr_arg(0), NULL, 10) : 64;

	if (mib < 1 || mib > (1UL << 20))
		cr_die("bad size '%s' MiB", cr_arg(0));
	nr_words = mib << 17;
	/* Seconds of work, so the checkpoints fall in the middle of it: about
	 * 8 s for 64 MiB here, 30 s for 4 GiB (which takes longer to dump). */
	rounds = cr_arg(1) ? (unsigned)strtoul(cr_arg(1), NULL, 10) : (unsigned)(24576 / mib);
	if (rounds < 24 && !cr_arg(1))
		rounds = 24;
	if (rounds < 1)
		cr_die("bad number of rounds '%s'", cr_arg(1));
	cr_log("%lu MiB, %u rounds", mib, rounds);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	bool uninterrupted = argc > 1 && !strcmp(argv[1], "-u");
	pthread_t threads[NR_THREADS];
	timer_t timer;
	pid_t kid;

	if (uninterrupted) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	cr_init(argc, argv);
	parse_args();
	child_result = mmap(NULL, CR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memory = mmap(NULL, nr_words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (child_result == MAP_FAILED || memory == MAP_FAILED)
		cr_die("mmap %zu MiB: %s", nr_words >> 17, strerror(errno));
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	timer = start_timers();
	pthread_barrier_init(&barrier, NULL, NR_THREADS);
	for (int t = 0; t < NR_THREADS; t++)
		if (pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t))
			cr_die("pthread_create failed");
	if (!uninterrupted) {
		while (atomic_load(&rounds_done) == 0 && rounds > 1)
			cr_sleep_ms(5);
		cr_ready();
		cr_wait_term();
		cr_log("%u of %u rounds done at SIGTERM", atomic_load(&rounds_done), rounds);
	}
	for (int t = 0; t < NR_THREADS; t++)
		pthread_join(threads[t], NULL);
	for (int i = 0; i < 3000 && !atomic_load(&child_result->done); i++)
		cr_sleep_ms(10);
	if (!atomic_load(&child_result->done))
		cr_fail("the child did not finish its part");
	check_timers(timer);
	cr_finish_children(&kid, roles, 1);
	cr_set_note("answer=%016llx", (unsigned long long)answer());
	return cr_report();
}
