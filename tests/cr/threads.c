/*
 * Threads: 8 threads, each with its own TLS (__thread data reached through
 * the fs base), signal mask and tid, blocked in a different way or
 * computing a hash chain in registers. After SIGTERM the computing threads
 * must still make progress, every thread checks its own state, and all of
 * them are woken and joined.
 */
#include "crtest.h"

#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NR_WORKERS 8
#define CHUNK (1u << 16)
#define NR_SNAPS 64

enum kind { COMPUTE, CONDVAR, NANOSLEEP, FUTEX, SIGWAIT };
static const enum kind kinds[NR_WORKERS] = {
	COMPUTE, CONDVAR, COMPUTE, NANOSLEEP, COMPUTE, FUTEX, COMPUTE, SIGWAIT,
};

struct worker {
	int idx;
	pthread_t thread;
	pid_t tid;
	unsigned long fs_base;
	sigset_t mask;
	char sigblk[32];	/* SigBlk: of its /proc status */
	uint64_t seed;
	uint64_t x;
	_Atomic uint64_t n;	/* hash steps done, published per chunk */
	uint64_t snaps[NR_SNAPS];	/* x after chunk k, at k % NR_SNAPS */
	siginfo_t woken_by;
};

static struct worker workers[NR_WORKERS];
static _Atomic int nr_started;
static atomic_int stop;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static _Atomic int futex_word;

static __thread uint64_t tls_word = 0x1234567890abcdefULL;	/* .tdata */
static __thread char tls_buf[512];				/* .tbss */
static __thread struct worker *tls_self;

static uint64_t xorshift(uint64_t x)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static unsigned long get_fs_base(void)
{
	unsigned long fs = 0;

	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
	return fs;
}

static void sigblk_of(pid_t tid, char *buf, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (!cr_status_field(path, "SigBlk", buf, len))
		cr_fail("no SigBlk in %s", path);
}

static void setup_thread_state(struct worker *w)
{
	sigset_t block;

	tls_word = cr_mix(w->seed);
	cr_fill(tls_buf, sizeof(tls_buf), w->seed);
	tls_self = w;
	w->tid = gettid();
	w->fs_base = get_fs_base();
	if (w->fs_base != (unsigned long)pthread_self())
		cr_fail("thread %d: fs base %#lx, pthread_self %#lx", w->idx, w->fs_base,
			(unsigned long)pthread_self());
	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + w->idx);
	sigaddset(&block, w->idx % 2 ? SIGUSR1 : SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &w->mask);
	sigblk_of(w->tid, w->sigblk, sizeof(w->sigblk));
}

static void check_thread_state(struct worker *w)
{
	sigset_t now;
	char sigblk[32];

	CR_EXPECT_EQ("gettid()", gettid(), w->tid);
	if (get_fs_base() != w->fs_base || w->fs_base != (unsigned long)pthread_self())
		cr_fail("thread %d: fs base %#lx, was %#lx", w->idx, get_fs_base(), w->fs_base);
	if (tls_self != w || tls_word != cr_mix(w->seed))
		cr_fail("thread %d: TLS variables changed", w->idx);
	if (cr_check_fill(tls_buf, sizeof(tls_buf), w->seed) >= 0)
		cr_fail("thread %d: TLS buffer changed", w->idx);
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&now, sig) != sigismember(&w->mask, sig))
			cr_fail("thread %d: signal %d %s blocked", w->idx, sig,
				sigismember(&now, sig) ? "now" : "no longer");
	sigblk_of(w->tid, sigblk, sizeof(sigblk));
	if (strcmp(sigblk, w->sigblk))
		cr_fail("thread %d: SigBlk %s, was %s", w->idx, sigblk, w->sigblk);
}

static void compute(struct worker *w)
{
	uint64_t x = w->seed, n = 0;

	w->snaps[0] = x;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		for (unsigned i = 0; i < CHUNK; i++)
			x = xorshift(x);
		n += CHUNK;
		w->snaps[(n / CHUNK) % NR_SNAPS] = x;
		w->x = x;
		atomic_store(&w->n, n);
	}
}

/* The last snapshots must chain, and x must be the last one. */
static void check_chain(struct worker *w)
{
	uint64_t k = atomic_load(&w->n) / CHUNK;
	uint64_t first = k >= NR_SNAPS ? k - NR_SNAPS + 1 : 0;

	if (k == 0) {
		cr_fail("thread %d never computed a chunk", w->idx);
		return;
	}
	if (w->snaps[k % NR_SNAPS] != w->x)
		cr_fail("thread %d: x differs from its last snapshot", w->idx);
	if (first == 0 && w->snaps[0] != w->seed)
		cr_fail("thread %d: first snapshot is not the seed", w->idx);
	for (uint64_t c = first; c < k; c++) {
		uint64_t x = w->snaps[c % NR_SNAPS];

		for (unsigned i = 0; i < CHUNK; i++)
			x = xorshift(x);
		if (x != w->snaps[(c + 1) % NR_SNAPS]) {
			cr_fail("thread %d: hash chain broken after chunk %llu of %llu", w->idx,
				(unsigned long long)c, (unsigned long long)k);
			return;
		}
	}
}

static void wait_condvar(void)
{
	pthread_mutex_lock(&lock);
	while (!atomic_load(&stop))
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void wait_nanosleep(void)
{
	while (!atomic_load(&stop)) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
}

static void wait_futex(void)
{
	while (!atomic_load(&futex_word))
		syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

/* Waits for SIGRTMIN+idx (blocked) which main sends at the end. */
static void wait_signal(struct worker *w)
{
	sigset_t set;
	struct timespec ts = { 0, 200 * 1000 * 1000 };

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + w->idx);
	while (sigtimedwait(&set, &w->woken_by, &ts) < 0)
		;
	/* glibc's sigtimedwait reports SI_TKILL as SI_USER. */
	if (w->woken_by.si_signo != SIGRTMIN + w->idx || w->woken_by.si_pid != getpid() ||
	    w->woken_by.si_code != SI_USER)
		cr_fail("thread %d: woken by signal %d code %d pid %d", w->idx,
			w->woken_by.si_signo, w->woken_by.si_code, (int)w->woken_by.si_pid);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	setup_thread_state(w);
	atomic_fetch_add(&nr_started, 1);
	switch (kinds[w->idx]) {
	case COMPUTE: compute(w); break;
	case CONDVAR: wait_condvar(); break;
	case NANOSLEEP: wait_nanosleep(); break;
	case FUTEX: wait_futex(); break;
	case SIGWAIT: wait_signal(w); break;
	}
	check_thread_state(w);
	if (kinds[w->idx] == COMPUTE)
		check_chain(w);
	return NULL;
}

static int list_tasks(pid_t *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		cr_die("opendir /proc/self/task: %s", strerror(errno));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && n < max)
			tids[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

static bool has_tid(const pid_t *tids, int n, pid_t tid)
{
	for (int i = 0; i < n; i++)
		if (tids[i] == tid)
			return true;
	return false;
}

static void check_task_list(void)
{
	pid_t tids[64];
	int n = list_tasks(tids, 64);

	CR_EXPECT_EQ("number of tasks in /proc/self/task", n, NR_WORKERS + 1);
	if (!has_tid(tids, n, getpid()))
		cr_fail("main thread missing from /proc/self/task");
	for (int i = 0; i < NR_WORKERS; i++)
		if (!has_tid(tids, n, workers[i].tid))
			cr_fail("thread %d (tid %d) missing from /proc/self/task", i,
				(int)workers[i].tid);
}

/* The computing threads must still run after the restore. */
static void check_progress(void)
{
	uint64_t before[NR_WORKERS];

	for (int i = 0; i < NR_WORKERS; i++)
		before[i] = atomic_load(&workers[i].n);
	cr_sleep_ms(300);
	for (int i = 0; i < NR_WORKERS; i++)
		if (kinds[i] == COMPUTE && atomic_load(&workers[i].n) == before[i])
			cr_fail("computing thread %d made no progress in 300 ms", i);
}

static void stop_and_join(void)
{
	struct timespec deadline;

	pthread_mutex_lock(&lock);
	atomic_store(&stop, 1);
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	atomic_store(&futex_word, 1);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	for (int i = 0; i < NR_WORKERS; i++)
		if (kinds[i] == SIGWAIT)
			pthread_kill(workers[i].thread, SIGRTMIN + i);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	for (int i = 0; i < NR_WORKERS; i++) {
		int err = pthread_timedjoin_np(workers[i].thread, NULL, &deadline);

		if (err)
			cr_fail("joining thread %d: %s", i, strerror(err));
	}
}

int main(int argc, char **argv)
{
	struct worker self = { .idx = 0, .seed = 0xabad1deaULL };
	char threads[16];

	cr_init(argc, argv);
	setup_thread_state(&self);
	for (int i = 0; i < NR_WORKERS; i++) {
		int err;

		workers[i].idx = i;
		workers[i].seed = cr_mix(1000 + i);
		err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (err)
			cr_die("pthread_create %d: %s", i, strerror(err));
	}
	while (atomic_load(&nr_started) < NR_WORKERS)
		cr_sleep_ms(1);
	while (atomic_load(&workers[0].n) == 0)
		cr_sleep_ms(1);
	check_task_list();
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	check_task_list();
	if (!cr_status_field("/proc/self/status", "Threads", threads, sizeof(threads)) ||
	    atoi(threads) != NR_WORKERS + 1)
		cr_fail("Threads: %s in /proc/self/status", threads);
	check_progress();
	check_thread_state(&self);
	stop_and_join();
	return cr_report();
}
