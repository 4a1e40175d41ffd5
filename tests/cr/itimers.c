/*
 * itimers: ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF firing periodically
 * (a thread burns CPU for the last two), and a child with a one-shot
 * ITIMER_REAL far in the future. After restore the intervals must be the
 * same, every periodic timer must keep firing, and the one-shot timer must
 * not have been reset or lost.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct timer {
	const char *name;
	int which, sig;
	long first_us, interval_us;
	int min_per_second;	/* firings expected in a second, at least */
	atomic_int fired;
	struct itimerval set;	/* as read back after setting */
};

static struct timer timers[] = {
	{ "ITIMER_REAL", ITIMER_REAL, SIGALRM, 30000, 50000, 5, 0, { { 0, 0 }, { 0, 0 } } },
	{ "ITIMER_VIRTUAL", ITIMER_VIRTUAL, SIGVTALRM, 20000, 20000, 3, 0, { { 0, 0 }, { 0, 0 } } },
	{ "ITIMER_PROF", ITIMER_PROF, SIGPROF, 25000, 25000, 3, 0, { { 0, 0 }, { 0, 0 } } },
};
#define NR_TIMERS ((int)CR_ARRAY_SIZE(timers))

static atomic_int stop;
static atomic_int child_alarm;

static void on_timer(int sig)
{
	for (int i = 0; i < NR_TIMERS; i++)
		if (timers[i].sig == sig)
			atomic_fetch_add(&timers[i].fired, 1);
	if (sig == SIGALRM && !cr_is_root())
		atomic_store(&child_alarm, 1);
}

static void *burn(void *arg)
{
	sigset_t block;
	volatile uint64_t x = 0;

	(void)arg;
	sigemptyset(&block);
	for (int i = 0; i < NR_TIMERS; i++)
		sigaddset(&block, timers[i].sig);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	while (!atomic_load(&stop))
		x = cr_mix(x);
	return NULL;
}

static long tv_us(struct timeval tv)
{
	return tv.tv_sec * 1000000L + tv.tv_usec;
}

static void start_timer(struct timer *t)
{
	struct itimerval it = {
		.it_interval = { t->interval_us / 1000000, t->interval_us % 1000000 },
		.it_value = { t->first_us / 1000000, t->first_us % 1000000 },
	};
	struct sigaction sa = { .sa_handler = on_timer, .sa_flags = SA_RESTART };

	if (sigaction(t->sig, &sa, NULL) || setitimer(t->which, &it, NULL))
		cr_die("%s: %s", t->name, strerror(errno));
	getitimer(t->which, &t->set);
}

static void check_timer(struct timer *t)
{
	struct itimerval now;

	getitimer(t->which, &now);
	if (tv_us(now.it_interval) != tv_us(t->set.it_interval))
		cr_fail("%s: interval %ld us, was %ld us", t->name, tv_us(now.it_interval),
			tv_us(t->set.it_interval));
	if (tv_us(now.it_value) <= 0 || tv_us(now.it_value) > t->interval_us)
		cr_fail("%s: value %ld us, interval %ld us", t->name, tv_us(now.it_value),
			t->interval_us);
}

/* A one-shot ITIMER_REAL of 1000 s: its remaining time may shrink by the
 * time that passed, but must not grow back or vanish. */
static void __attribute__((noreturn)) child(void)
{
	struct itimerval it = { .it_value = { 1000, 0 } }, before, after;
	struct sigaction sa = { .sa_handler = on_timer };
	uint64_t t0, t1;
	long lost_us;

	for (int i = 0; i < NR_TIMERS; i++) {
		struct itimerval off = { { 0, 0 }, { 0, 0 } };

		setitimer(timers[i].which, &off, NULL);
	}
	sigaction(SIGALRM, &sa, NULL);
	if (setitimer(ITIMER_REAL, &it, NULL))
		cr_die("setitimer: %s", strerror(errno));
	getitimer(ITIMER_REAL, &before);
	t0 = cr_now_ns();
	cr_child_ready();
	cr_wait_term();
	getitimer(ITIMER_REAL, &after);
	t1 = cr_now_ns();
	lost_us = tv_us(before.it_value) - tv_us(after.it_value);
	if (tv_us(after.it_interval) != 0)
		cr_fail("child: one-shot timer got an interval of %ld us", tv_us(after.it_interval));
	if (tv_us(after.it_value) <= 0 || lost_us < 0 ||
	    lost_us > (long)((t1 - t0) / 1000) + 2000000)
		cr_fail("child: ITIMER_REAL has %ld us left, had %ld us %llu ms ago",
			tv_us(after.it_value), tv_us(before.it_value),
			(unsigned long long)((t1 - t0) / 1000000));
	if (atomic_load(&child_alarm))
		cr_fail("child: the one-shot timer fired");
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	int before[NR_TIMERS];
	pthread_t burner;
	pid_t kid;
	int err;

	cr_init(argc, argv);
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	err = pthread_create(&burner, NULL, burn, NULL);
	if (err)
		cr_die("pthread_create: %s", strerror(err));
	for (int i = 0; i < NR_TIMERS; i++)
		start_timer(&timers[i]);
	for (int i = 0; i < NR_TIMERS; i++)
		while (atomic_load(&timers[i].fired) < 2)
			cr_sleep_ms(10);
	cr_ready();
	cr_wait_term();
	for (int i = 0; i < NR_TIMERS; i++) {
		check_timer(&timers[i]);
		before[i] = atomic_load(&timers[i].fired);
	}
	cr_sleep_ms(1000);
	for (int i = 0; i < NR_TIMERS; i++) {
		int fired = atomic_load(&timers[i].fired) - before[i];

		if (fired < timers[i].min_per_second)
			cr_fail("%s fired %d times in a second after restore", timers[i].name, fired);
	}
	atomic_store(&stop, 1);
	pthread_join(burner, NULL);
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
