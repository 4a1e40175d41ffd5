/*
 * rseq: glibc registers an rseq area for every thread, at the thread
 * pointer plus __rseq_offset. After restore each thread's registration
 * must be the same (re-registering the same area, length and signature
 * must fail with EBUSY, the kernel's "already registered") and live: the
 * kernel must overwrite a scrambled cpu_id with the cpu the thread runs on
 * at its next signal delivery, and sched_getcpu() must agree.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NR_THREADS 2
#define SCRAMBLED 0xfffffff0u

struct reg {
	const char *name;
	struct rseq *area;
	uint32_t len;
	pthread_t thread;
};

static struct reg regs[NR_THREADS + 1] = {
	{ .name = "main" }, { .name = "thread1" }, { .name = "thread2" },
};
static atomic_int nr_ready, stop;
static long nr_cpus;

static void on_usr1(int sig)
{
	(void)sig;
}

static struct rseq *own_area(void)
{
	char *tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (struct rseq *)(tp + __rseq_offset);
}

static long rseq_register(struct rseq *area, uint32_t len)
{
	return syscall(SYS_rseq, area, len, 0, RSEQ_SIG);
}

/* The registered length is not exported: find the one the kernel accepts
 * as "this exact registration exists". */
static uint32_t registered_len(struct rseq *area)
{
	const uint32_t candidates[] = { 32, (uint32_t)__rseq_size, sizeof(struct rseq) };

	for (size_t i = 0; i < CR_ARRAY_SIZE(candidates); i++)
		if (rseq_register(area, candidates[i]) < 0 && errno == EBUSY)
			return candidates[i];
	return 0;
}

static void record(struct reg *r)
{
	r->area = own_area();
	r->len = registered_len(r->area);
	if (!r->len)
		cr_die("%s: no rseq registration found (glibc.pthread.rseq=0?)", r->name);
	if ((int32_t)r->area->cpu_id < 0)
		cr_die("%s: rseq cpu_id %d", r->name, (int32_t)r->area->cpu_id);
}

static void verify(struct reg *r)
{
	volatile struct rseq *area = own_area();
	unsigned cpu = 0;
	long ret;

	if ((struct rseq *)area != r->area)
		cr_fail("%s: rseq area at %p, was %p", r->name, (void *)area, (void *)r->area);
	ret = rseq_register(r->area, r->len);
	if (ret == 0) {
		cr_fail("%s: rseq was not registered after restore", r->name);
		return;
	}
	if (errno != EBUSY)
		cr_fail("%s: rseq(%p, %u) gave %s: registered differently", r->name,
			(void *)r->area, r->len, strerror(errno));
	/* Retry: the thread may migrate between the update and getcpu. */
	for (int attempt = 0; attempt < 5; attempt++) {
		area->cpu_id = SCRAMBLED;
		area->cpu_id_start = SCRAMBLED;
		pthread_kill(pthread_self(), SIGUSR1);
		syscall(SYS_getcpu, &cpu, NULL, NULL);
		if (area->cpu_id == cpu && area->cpu_id_start == cpu)
			break;
	}
	if (area->cpu_id == SCRAMBLED || (long)area->cpu_id >= nr_cpus)
		cr_fail("%s: the kernel no longer updates rseq cpu_id (%#x)", r->name, area->cpu_id);
	else if (area->cpu_id != cpu)
		cr_fail("%s: rseq cpu_id %u, getcpu %u", r->name, area->cpu_id, cpu);
	if (sched_getcpu() < 0 || sched_getcpu() >= nr_cpus)
		cr_fail("%s: sched_getcpu() %d", r->name, sched_getcpu());
}

static void *thread_main(void *arg)
{
	struct reg *r = arg;

	record(r);
	atomic_fetch_add(&nr_ready, 1);
	while (!atomic_load(&stop))
		cr_sleep_ms(20);
	verify(r);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };

	cr_init(argc, argv);
	nr_cpus = sysconf(_SC_NPROCESSORS_CONF);
	sigaction(SIGUSR1, &sa, NULL);
	record(&regs[0]);
	cr_log("rseq area %p, registered length %u", (void *)regs[0].area, regs[0].len);
	for (int i = 1; i <= NR_THREADS; i++)
		if (pthread_create(&regs[i].thread, NULL, thread_main, &regs[i]))
			cr_die("pthread_create failed");
	while (atomic_load(&nr_ready) < NR_THREADS)
		cr_sleep_ms(1);
	cr_ready();
	cr_wait_term();
	verify(&regs[0]);
	atomic_store(&stop, 1);
	for (int i = 1; i <= NR_THREADS; i++)
		pthread_join(regs[i].thread, NULL);
	return cr_report();
}
