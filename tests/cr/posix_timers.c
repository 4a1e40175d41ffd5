/*
 * POSIX timers: periodic timers on CLOCK_MONOTONIC, CLOCK_REALTIME and the
 * process CPU clock, one aimed at a single thread (SIGEV_THREAD_ID), a
 * SIGEV_NONE one-shot far in the future and a disarmed one, with a gap in
 * the ids (a deleted timer). After restore /proc/self/timers must read the
 * same, each id must name the same timer with the same interval and
 * signal value, and the periodic ones must keep firing.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

enum { MONO, REAL, CPU, THREAD, ONESHOT, DISARMED, NR_TIMERS };

struct ptimer {
	const char *name;
	clockid_t clock;
	int notify, sig;
	long first_ms, interval_ms;
	int min_per_second;
	timer_t id;
	struct itimerspec set;
	atomic_int fired, bad;
};

static struct ptimer timers[NR_TIMERS] = {
	[MONO] = { "monotonic", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 20, 30, 10 },
	[REAL] = { "realtime", CLOCK_REALTIME, SIGEV_SIGNAL, 0, 25, 40, 8 },
	[CPU] = { "process-cpu", CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, 0, 20, 20, 3 },
	[THREAD] = { "thread-id", CLOCK_MONOTONIC, SIGEV_THREAD_ID, 0, 50, 50, 5 },
	[ONESHOT] = { "sigev-none", CLOCK_BOOTTIME, SIGEV_NONE, 0, 1000000, 0, 0 },
	[DISARMED] = { "disarmed", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 0, 0, 0 },
};

static atomic_int stop;
static _Atomic pid_t waiter_tid;
static struct timespec oneshot_left;
static uint64_t oneshot_at;
static char proc_timers[4096];

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	for (int i = 0; i < NR_TIMERS; i++) {
		struct ptimer *t = &timers[i];

		if (t->sig != sig)
			continue;
		if (si->si_code != SI_TIMER || si->si_value.sival_ptr != t ||
		    si->si_timerid != (int)(intptr_t)t->id ||
		    (i == THREAD && gettid() != atomic_load(&waiter_tid)))
			atomic_fetch_add(&t->bad, 1);
		atomic_fetch_add(&t->fired, 1);
	}
}

static void block_timer_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	for (int i = 0; i < NR_TIMERS; i++)
		sigaddset(&set, timers[i].sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *burner(void *arg)
{
	volatile uint64_t x = 0;

	(void)arg;
	block_timer_signals();
	while (!atomic_load(&stop))
		x = cr_mix(x);
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	atomic_store(&waiter_tid, gettid());
	while (!atomic_load(&stop))
		cr_sleep_ms(20);
	return NULL;
}

static void create_timer(struct ptimer *t, int sig)
{
	struct sigevent sev = { .sigev_notify = t->notify, .sigev_signo = sig };
	struct sigaction sa = { .sa_sigaction = on_timer, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct itimerspec its = {
		.it_value = { t->first_ms / 1000, (t->first_ms % 1000) * 1000000 },
		.it_interval = { t->interval_ms / 1000, (t->interval_ms % 1000) * 1000000 },
	};

	t->sig = t->notify == SIGEV_NONE ? 0 : sig;
	sev.sigev_value.sival_ptr = t;
	if (t->notify == SIGEV_THREAD_ID)
		sev.sigev_notify_thread_id = atomic_load(&waiter_tid);
	if (t->sig && sigaction(sig, &sa, NULL))
		cr_die("sigaction %d: %s", sig, strerror(errno));
	if (timer_create(t->clock, &sev, &t->id))
		cr_die("timer_create %s: %s", t->name, strerror(errno));
	if (t->first_ms && timer_settime(t->id, 0, &its, NULL))
		cr_die("timer_settime %s: %s", t->name, strerror(errno));
	timer_gettime(t->id, &t->set);
}

static long ts_ms(struct timespec ts)
{
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static long ts_us(struct timespec ts)
{
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static void check_timer(struct ptimer *t)
{
	struct itimerspec now;

	if (timer_gettime(t->id, &now)) {
		cr_fail("%s: timer_gettime(%ld): %s", t->name, (long)(intptr_t)t->id,
			strerror(errno));
		return;
	}
	/*
	 * A periodic timer that has just expired reads 0 until its signal is
	 * delivered, which rearms it: ask again a few times. One that was
	 * restored disarmed stays at 0.
	 */
	for (int i = 0; i < 20 && t->interval_ms && ts_us(now.it_value) == 0; i++) {
		cr_sleep_ms(1);
		if (timer_gettime(t->id, &now))
			break;
	}
	if (ts_us(now.it_interval) != ts_us(t->set.it_interval))
		cr_fail("%s: interval %ld us, was %ld us", t->name, ts_us(now.it_interval),
			ts_us(t->set.it_interval));
	if (t->interval_ms && (ts_us(now.it_value) <= 0 || ts_ms(now.it_value) > t->interval_ms))
		cr_fail("%s: %ld us to the next expiry, interval %ld ms", t->name,
			ts_us(now.it_value), t->interval_ms);
	if (!t->first_ms && ts_us(now.it_value))
		cr_fail("%s: armed (%ld us) after restore", t->name, ts_us(now.it_value));
	if (timer_getoverrun(t->id) < 0)
		cr_fail("%s: timer_getoverrun: %s", t->name, strerror(errno));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* /proc/self/timers with its entries sorted: the list order reflects the
 * order of creation, which restore need not repeat. */
static void read_timers_sorted(char *buf, size_t len)
{
	char text[4096], *entries[64];
	int n = 0;
	size_t used = 0;

	n = (int)cr_read_file("/proc/self/timers", text, sizeof(text));
	while (n > 0 && text[n - 1] == '\n')
		text[--n] = '\0';
	n = 0;
	for (char *p = strstr(text, "ID: "); p && n < 64; p = strstr(p + 1, "\nID: ")) {
		if (*p == '\n')
			*p++ = '\0';
		entries[n++] = p;
	}
	qsort(entries, (size_t)n, sizeof(entries[0]), cmp_str);
	buf[0] = '\0';
	for (int i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s\n", entries[i]);
}

static void record_oneshot(void)
{
	struct itimerspec its;

	timer_gettime(timers[ONESHOT].id, &its);
	oneshot_left = its.it_value;
	oneshot_at = cr_now_ns();
}

static void check_oneshot(void)
{
	struct itimerspec now;
	long lost_ms, elapsed_ms = (long)((cr_now_ns() - oneshot_at) / 1000000);

	timer_gettime(timers[ONESHOT].id, &now);
	lost_ms = ts_ms(oneshot_left) - ts_ms(now.it_value);
	if (ts_us(now.it_value) <= 0 || lost_ms < 0 || lost_ms > elapsed_ms + 2000)
		cr_fail("%s: %ld ms left, had %ld ms %ld ms ago", timers[ONESHOT].name,
			ts_ms(now.it_value), ts_ms(oneshot_left), elapsed_ms);
}

static void check_firing(void)
{
	int before[NR_TIMERS];

	for (int i = 0; i < NR_TIMERS; i++)
		before[i] = atomic_load(&timers[i].fired);
	cr_sleep_ms(1000);
	for (int i = 0; i < NR_TIMERS; i++) {
		int fired = atomic_load(&timers[i].fired) - before[i];

		if (fired < timers[i].min_per_second)
			cr_fail("%s fired %d times in a second after restore", timers[i].name, fired);
		if (!timers[i].interval_ms && fired)
			cr_fail("%s fired %d times", timers[i].name, fired);
		if (atomic_load(&timers[i].bad))
			cr_fail("%s: %d deliveries with a wrong siginfo or thread", timers[i].name,
				atomic_load(&timers[i].bad));
	}
}

static void create_all(void)
{
	timer_t gap;
	struct sigevent none = { .sigev_notify = SIGEV_NONE };

	create_timer(&timers[MONO], SIGRTMIN + 1);
	/* A deleted timer leaves a hole in the ids. */
	if (timer_create(CLOCK_MONOTONIC, &none, &gap) || timer_delete(gap))
		cr_die("timer_create/delete: %s", strerror(errno));
	create_timer(&timers[REAL], SIGRTMIN + 2);
	create_timer(&timers[CPU], SIGRTMIN + 3);
	create_timer(&timers[THREAD], SIGRTMIN + 4);
	create_timer(&timers[ONESHOT], 0);
	create_timer(&timers[DISARMED], SIGRTMIN + 6);
	for (int i = 0; i < NR_TIMERS; i++)
		cr_log("timer %s: id %ld", timers[i].name, (long)(intptr_t)timers[i].id);
}

int main(int argc, char **argv)
{
	pthread_t burn, wait;
	char now[sizeof(proc_timers)];
	int err;

	cr_init(argc, argv);
	err = pthread_create(&burn, NULL, burner, NULL);
	err = err ? err : pthread_create(&wait, NULL, waiter, NULL);
	if (err)
		cr_die("pthread_create: %s", strerror(err));
	while (!atomic_load(&waiter_tid))
		cr_sleep_ms(1);
	create_all();
	for (int i = 0; i < NR_TIMERS; i++)
		while (timers[i].interval_ms && atomic_load(&timers[i].fired) < 2)
			cr_sleep_ms(10);
	read_timers_sorted(proc_timers, sizeof(proc_timers));
	record_oneshot();
	cr_ready();
	cr_wait_term();
	read_timers_sorted(now, sizeof(now));
	if (strcmp(now, proc_timers))
		cr_fail("/proc/self/timers differs:\n%s\nwas:\n%s", now, proc_timers);
	for (int i = 0; i < NR_TIMERS; i++)
		check_timer(&timers[i]);
	check_oneshot();
	check_firing();
	atomic_store(&stop, 1);
	pthread_join(burn, NULL);
	pthread_join(wait, NULL);
	return cr_report();
}
