/*
 * A tree that never stops forking while it is frozen: children appear,
 * exit and are reaped between the moment crtool lists a parent's children
 * and the moment it seizes them. Two workers:
 *  - "reaper" forks batches of short-lived children (half of them fork and
 *    reap a grandchild first), reaps each with waitpid and checks its exact
 *    exit status: a child caught exiting is dumped as a zombie and must come
 *    back as one with the same status; one caught alive must run on;
 *  - "autoreap" ignores SIGCHLD, so its children vanish as soon as they
 *    exit, possibly between being listed and being seized;
 *  - "threaded" forks children that start two threads and exit_group()
 *    at once: a child may begin to exit while its threads are being seized.
 * Every dump must succeed; after SIGTERM each worker checks that it had no
 * stray child, no wrong status, and that it kept forking.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 4

static bool term_pending(void)
{
	sigset_t s;

	return sigpending(&s) == 0 && sigismember(&s, SIGTERM);
}

static void __attribute__((noreturn)) short_life(unsigned long n)
{
	if (n & 1) {
		pid_t g = fork();
		int st;

		if (g == 0)
			_exit(3);
		if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
			_exit(120);
	}
	_exit((int)(n % 100));
}

static void __attribute__((noreturn)) reaper(void)
{
	unsigned long n = 0, bad = 0;
	pid_t kids[BATCH];

	cr_child_ready();
	while (!term_pending()) {
		for (int i = 0; i < BATCH; i++) {
			kids[i] = fork();
			if (kids[i] < 0)
				cr_die("fork: %s", strerror(errno));
			if (kids[i] == 0)
				short_life(n + i);
		}
		for (int i = 0; i < BATCH; i++) {
			int st;
			pid_t p;

			while ((p = waitpid(kids[i], &st, 0)) < 0 && errno == EINTR)
				;
			if (p != kids[i]) {
				cr_fail("waitpid %d: %s", (int)kids[i], strerror(errno));
				bad++;
			} else if (!WIFEXITED(st) || WEXITSTATUS(st) != (int)((n + i) % 100)) {
				cr_fail("child %lu (pid %d): status 0x%x, expected exit %lu", n + i,
					(int)kids[i], st, (n + i) % 100);
				bad++;
			}
			if (bad > 5)
				break;
		}
		n += BATCH;
		if (bad > 5)
			break;
	}
	cr_wait_term();
	cr_log("reaper: %lu children", n);
	CR_CHECK(n > 0, "reaper forked no child");
	CR_CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "reaper: a stray child is left");
	cr_child_exit();
}

static void __attribute__((noreturn)) autoreap(void)
{
	unsigned long n = 0;

	signal(SIGCHLD, SIG_IGN);
	cr_child_ready();
	while (!term_pending()) {
		pid_t p = fork();

		if (p < 0 && errno != EAGAIN)
			cr_die("fork: %s", strerror(errno));
		if (p == 0)
			_exit(0);
		n++;
		if (n % 64 == 0)
			cr_sleep_ms(1);
	}
	cr_wait_term();
	cr_log("autoreap: %lu children", n);
	CR_CHECK(n > 0, "autoreap forked no child");
	/* Children still exiting are reaped by the kernel: wait returns ECHILD once they are gone. */
	for (int i = 0; i < 1000 && waitpid(-1, NULL, 0) >= 0; i++)
		;
	CR_CHECK(errno == ECHILD, "autoreap: wait gave %s, not ECHILD", strerror(errno));
	cr_child_exit();
}

static void *spin(void *arg)
{
	for (volatile unsigned long i = 0;; i++)
		if (i == (unsigned long)arg)
			sched_yield();
	return NULL;
}

static void __attribute__((noreturn)) threaded(void)
{
	unsigned long n = 0;

	cr_child_ready();
	while (!term_pending()) {
		pid_t p = fork();
		int st;

		if (p < 0)
			cr_die("fork: %s", strerror(errno));
		if (p == 0) {
			pthread_t t;

			for (int i = 0; i < 2; i++)
				if (pthread_create(&t, NULL, spin, (void *)1000UL))
					_exit(120);
			_exit(7);	/* exit_group: the spinning threads are killed */
		}
		while (waitpid(p, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) {
			cr_fail("threaded child %d: status 0x%x, expected exit 7", (int)p, st);
			break;
		}
		n++;
	}
	cr_wait_term();
	cr_log("threaded: %lu children", n);
	CR_CHECK(n > 0, "threaded forked no child");
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "reaper", "autoreap", "threaded" };
	pid_t kids[3];

	cr_init(argc, argv);
	kids[0] = cr_spawn("reaper");
	if (kids[0] == 0)
		reaper();
	kids[1] = cr_spawn("autoreap");
	if (kids[1] == 0)
		autoreap();
	kids[2] = cr_spawn("threaded");
	if (kids[2] == 0)
		threaded();
	cr_ready();
	cr_wait_term();
	cr_finish_children(kids, roles, 3);
	return cr_report();
}
