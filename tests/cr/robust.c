/*
 * clear_child_tid and robust futex lists. Every pthread has both: glibc
 * registers &pd->tid for clearing at exit (what pthread_join waits on) and
 * its robust list head. After restore both must be registered at the same
 * addresses and must act: threads can be joined, a thread and a child
 * process that exit holding a robust mutex hand it over with EOWNERDEAD.
 */
#include "crtest.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NR_THREADS 3

struct regs {
	void *robust_head;
	size_t robust_len;
	void *tid_address;
};

struct thread {
	pthread_t thread;
	pid_t tid;
	struct regs was;
	bool holds_mutex;
};

static struct thread threads[NR_THREADS] = { [0] = { .holds_mutex = true } };
static struct regs main_was;
static pthread_mutex_t *thread_mutex, *shared_mutex;	/* robust */
static atomic_int nr_ready, stop;

static void read_regs(struct regs *r)
{
	if (syscall(SYS_get_robust_list, 0, &r->robust_head, &r->robust_len))
		cr_fail("get_robust_list: %s", strerror(errno));
	if (prctl(PR_GET_TID_ADDRESS, &r->tid_address, 0, 0, 0))
		cr_fail("PR_GET_TID_ADDRESS: %s", strerror(errno));
}

static void compare_regs(const struct regs *was, const char *who)
{
	struct regs now;

	read_regs(&now);
	if (now.robust_head != was->robust_head || now.robust_len != was->robust_len)
		cr_fail("%s: robust list %p/%zu, was %p/%zu", who, now.robust_head,
			now.robust_len, was->robust_head, was->robust_len);
	if (now.tid_address != was->tid_address)
		cr_fail("%s: clear_child_tid %p, was %p", who, now.tid_address, was->tid_address);
}

static pthread_mutex_t *robust_mutex(bool shared)
{
	pthread_mutexattr_t attr;
	pthread_mutex_t *m = mmap(NULL, CR_PAGE, PROT_READ | PROT_WRITE,
				  (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (shared)
		pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (pthread_mutex_init(m, &attr))
		cr_die("pthread_mutex_init failed");
	return m;
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;

	t->tid = gettid();
	read_regs(&t->was);
	if (t->holds_mutex && pthread_mutex_lock(thread_mutex))
		cr_die("locking the robust mutex failed");
	atomic_fetch_add(&nr_ready, 1);
	while (!atomic_load(&stop))
		cr_sleep_ms(20);
	compare_regs(&t->was, "thread");
	/* Exit holding the mutex: the kernel walks our robust list. */
	return NULL;
}

/* Locks M, which a task that has exited was holding. */
static void expect_owner_died(pthread_mutex_t *m, const char *who)
{
	struct timespec deadline;
	int err;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	err = pthread_mutex_timedlock(m, &deadline);
	if (err != EOWNERDEAD) {
		cr_fail("%s: locking the mutex it held gave %s, not EOWNERDEAD", who,
			err ? strerror(err) : "success");
		return;
	}
	pthread_mutex_consistent(m);
	pthread_mutex_unlock(m);
}

static void join_all(void)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	for (int i = 0; i < NR_THREADS; i++) {
		int err = pthread_timedjoin_np(threads[i].thread, NULL, &deadline);

		if (err)
			cr_fail("joining thread %d (tid %d): %s (clear_child_tid lost?)", i,
				(int)threads[i].tid, strerror(err));
	}
}

static void __attribute__((noreturn)) child(void)
{
	struct regs was;

	if (pthread_mutex_lock(shared_mutex))
		cr_die("child: locking the shared robust mutex failed");
	read_regs(&was);
	cr_child_ready();
	cr_wait_term();
	compare_regs(&was, "child");
	cr_child_exit();	/* still holding the shared mutex */
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	thread_mutex = robust_mutex(false);
	shared_mutex = robust_mutex(true);
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	read_regs(&main_was);
	for (int i = 0; i < NR_THREADS; i++)
		if (pthread_create(&threads[i].thread, NULL, thread_main, &threads[i]))
			cr_die("pthread_create failed");
	while (atomic_load(&nr_ready) < NR_THREADS)
		cr_sleep_ms(1);
	for (int i = 0; i < NR_THREADS; i++)
		if (!threads[i].was.robust_head || !threads[i].was.tid_address)
			cr_die("thread %d: no robust list or clear_child_tid", i);
	cr_ready();
	cr_wait_term();
	compare_regs(&main_was, "main");
	atomic_store(&stop, 1);
	join_all();
	expect_owner_died(thread_mutex, "thread 0");
	cr_finish_children(&kid, roles, 1);
	expect_owner_died(shared_mutex, "child");
	return cr_report();
}
