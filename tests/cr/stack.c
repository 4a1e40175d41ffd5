/*
 * Stack: the main thread and a second thread wait for the checkpoint at
 * the bottom of a deep recursion, each frame holding its own data, with a
 * large alloca at the bottom. After restore every frame must unwind and
 * find its data intact, and the [stack] mapping must be the same.
 */
#include "crtest.h"

#include <alloca.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAIN_DEPTH 3000
#define THREAD_DEPTH 1000
#define FRAME_BYTES 256
#define ALLOCA_BYTES (1 << 20)

static atomic_int thread_at_bottom, stop;
static char stack_line[512];
static uintptr_t main_bottom_sp;

typedef void bottom_fn(void);

/* Grows the stack mapping past what the calls below will ever use, so
 * its extent can be compared. */
static void __attribute__((noinline)) touch_below(void)
{
	volatile char pad[64 << 10];

	for (size_t i = 0; i < sizeof(pad); i += 512)
		pad[i] = 1;
}

static void __attribute__((noinline)) at_bottom_main(void)
{
	char *big = alloca(ALLOCA_BYTES);
	volatile char marker;

	cr_fill(big, ALLOCA_BYTES, 0xb16b16);
	main_bottom_sp = (uintptr_t)&marker;
	touch_below();
	while (!atomic_load(&thread_at_bottom))
		cr_sleep_ms(1);
	cr_maps_line((void *)main_bottom_sp, stack_line, sizeof(stack_line));
	if (!strstr(stack_line, "[stack]"))
		cr_die("bottom of the recursion is not in [stack]: %s", stack_line);
	cr_ready();
	cr_wait_term();
	if (cr_check_fill(big, ALLOCA_BYTES, 0xb16b16) >= 0)
		cr_fail("main: the alloca'd megabyte changed");
	if ((uintptr_t)&marker != main_bottom_sp)
		cr_fail("main: stack pointer moved");
}

static void __attribute__((noinline)) at_bottom_thread(void)
{
	char *big = alloca(ALLOCA_BYTES / 4);

	cr_fill(big, ALLOCA_BYTES / 4, 0x7b16);
	atomic_store(&thread_at_bottom, 1);
	while (!atomic_load(&stop))
		cr_sleep_ms(10);
	if (cr_check_fill(big, ALLOCA_BYTES / 4, 0x7b16) >= 0)
		cr_fail("thread: the alloca'd block changed");
}

/* Each frame fills its buffer before recursing and checks it after. */
static int __attribute__((noinline, noclone)) recurse(int depth, uint64_t seed, bottom_fn *bottom)
{
	volatile char frame[FRAME_BYTES];
	int bad = 0;

	cr_fill((char *)frame, sizeof(frame), seed + (uint64_t)depth * 64);
	if (depth > 0)
		bad = recurse(depth - 1, seed, bottom);
	else
		bottom();
	if (cr_check_fill((char *)frame, sizeof(frame), seed + (uint64_t)depth * 64) >= 0) {
		if (!bad)
			cr_fail("stack frame at depth %d changed", depth);
		bad = 1;
	}
	return bad;
}

static void *thread_main(void *arg)
{
	(void)arg;
	recurse(THREAD_DEPTH, 0x7777000, at_bottom_thread);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	pthread_t thread;
	char line[512] = "";

	cr_init(argc, argv);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 8 << 20);
	if (pthread_create(&thread, &attr, thread_main, NULL))
		cr_die("pthread_create failed");
	recurse(MAIN_DEPTH, 0x5555000, at_bottom_main);
	cr_maps_line((void *)main_bottom_sp, line, sizeof(line));
	if (strcmp(line, stack_line))
		cr_fail("[stack] mapping '%s', was '%s'", line, stack_line);
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	return cr_report();
}
