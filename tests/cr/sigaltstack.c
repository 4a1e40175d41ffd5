/*
 * sigaltstack per thread: the main thread's on a static buffer, one
 * thread's with SS_AUTODISARM, one thread without, and one thread that is
 * inside an SA_ONSTACK handler (running on its alternate stack) for the
 * whole checkpoint and must return from it normally afterwards.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)	/* linux/signal.h, Linux 4.7 */
#endif

#define STACK_SIZE (128 * 1024)

struct alt {
	const char *name;
	bool enabled;
	int flags;		/* SS_AUTODISARM or 0 */
	stack_t ss;		/* as set and read back */
	pthread_t thread;
	/* Filled by the SIGUSR1 handler. */
	uintptr_t handler_sp;
	stack_t in_handler;
};

static char main_stack[STACK_SIZE] __attribute__((aligned(16)));
static _Thread_local struct alt *self;
static atomic_int stop, nr_ready, in_sleeper;
static stack_t sleeper_in_handler;
static uint64_t sleeper_canary;

static void on_usr1(int sig)
{
	volatile char here;

	(void)sig;
	self->handler_sp = (uintptr_t)&here;
	sigaltstack(NULL, &self->in_handler);
}

/* Sleeps on the alternate stack until stop, with live data there. */
static void on_usr2(int sig)
{
	volatile uint64_t canary = cr_mix(0x5a5a);

	(void)sig;
	sigaltstack(NULL, &sleeper_in_handler);
	sleeper_canary = canary;
	atomic_store(&in_sleeper, 1);
	while (!atomic_load(&stop))
		cr_sleep_ms(20);
	if (canary != cr_mix(0x5a5a))
		cr_fail("sleeper: local variable on the alternate stack changed");
	sigaltstack(NULL, &sleeper_in_handler);
}

static void setup_alt(struct alt *a, void *mem)
{
	stack_t ss = { .ss_sp = mem, .ss_size = STACK_SIZE, .ss_flags = a->flags };

	self = a;
	if (!a->enabled)
		ss.ss_flags = SS_DISABLE;
	if (sigaltstack(&ss, NULL))
		cr_die("%s: sigaltstack: %s", a->name, strerror(errno));
	sigaltstack(NULL, &a->ss);
}

/* Checks the stack setting, then that a SA_ONSTACK handler runs on it. */
static void check_alt(struct alt *a, const char *when)
{
	stack_t now;
	uintptr_t lo = (uintptr_t)a->ss.ss_sp, hi = lo + a->ss.ss_size;
	bool on_alt;

	sigaltstack(NULL, &now);
	if (now.ss_sp != a->ss.ss_sp || now.ss_size != a->ss.ss_size ||
	    now.ss_flags != a->ss.ss_flags)
		cr_fail("%s %s: sigaltstack is %p+%zu flags %#x, was %p+%zu flags %#x", a->name,
			when, now.ss_sp, now.ss_size, now.ss_flags, a->ss.ss_sp, a->ss.ss_size,
			a->ss.ss_flags);
	a->handler_sp = 0;
	pthread_kill(pthread_self(), SIGUSR1);
	on_alt = a->handler_sp >= lo && a->handler_sp < hi;
	if (!a->handler_sp)
		cr_fail("%s %s: SIGUSR1 handler did not run", a->name, when);
	else if (on_alt != a->enabled)
		cr_fail("%s %s: handler ran %s the alternate stack", a->name, when,
			on_alt ? "on" : "off");
	/* An auto-disarmed stack reads as disabled inside the handler. */
	if (a->enabled &&
	    !(a->in_handler.ss_flags & (a->flags & SS_AUTODISARM ? SS_DISABLE : SS_ONSTACK)))
		cr_fail("%s %s: in the handler ss_flags %#x", a->name, when,
			a->in_handler.ss_flags);
	/* SS_AUTODISARM must have re-armed on return. */
	sigaltstack(NULL, &now);
	if (now.ss_flags != a->ss.ss_flags)
		cr_fail("%s %s: after the handler ss_flags %#x", a->name, when, now.ss_flags);
}

static void *thread_main(void *arg)
{
	struct alt *a = arg;
	void *mem = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	setup_alt(a, mem);
	check_alt(a, "before checkpoint");
	atomic_fetch_add(&nr_ready, 1);
	while (!atomic_load(&stop))
		cr_sleep_ms(20);
	check_alt(a, "after restore");
	return NULL;
}

static void *sleeper_main(void *arg)
{
	struct alt *a = arg;
	void *mem = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	setup_alt(a, mem);
	pthread_kill(pthread_self(), SIGUSR2);
	/* Back from the handler after the restore. */
	if (!(sleeper_in_handler.ss_flags & SS_ONSTACK))
		cr_fail("sleeper: not on the alternate stack in the handler (flags %#x)",
			sleeper_in_handler.ss_flags);
	check_alt(a, "after its handler returned");
	return NULL;
}

static struct alt alts[] = {
	{ .name = "main", .enabled = true },
	{ .name = "autodisarm", .enabled = true, .flags = SS_AUTODISARM },
	{ .name = "none", .enabled = false },
	{ .name = "plain", .enabled = true },
	{ .name = "sleeper", .enabled = true },
};

int main(int argc, char **argv)
{
	struct sigaction usr1 = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	struct sigaction usr2 = { .sa_handler = on_usr2, .sa_flags = SA_ONSTACK };
	int n = (int)CR_ARRAY_SIZE(alts);

	cr_init(argc, argv);
	if (sigaction(SIGUSR1, &usr1, NULL) || sigaction(SIGUSR2, &usr2, NULL))
		cr_die("sigaction: %s", strerror(errno));
	setup_alt(&alts[0], main_stack);
	check_alt(&alts[0], "before checkpoint");
	for (int i = 1; i < n; i++) {
		int err = pthread_create(&alts[i].thread, NULL,
					 i == n - 1 ? sleeper_main : thread_main, &alts[i]);

		if (err)
			cr_die("pthread_create: %s", strerror(err));
	}
	while (atomic_load(&nr_ready) < n - 2 || !atomic_load(&in_sleeper))
		cr_sleep_ms(1);
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	check_alt(&alts[0], "after restore");
	atomic_store(&stop, 1);
	for (int i = 1; i < n; i++)
		pthread_join(alts[i].thread, NULL);
	return cr_report();
}
