/*
 * Task names: the process name set with PR_SET_NAME (with a space and
 * parentheses, as a /proc/PID/stat parser must cope with), different names
 * per thread with pthread_setname_np, one thread keeping the inherited
 * name, and a child with its own.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAIN_NAME "crt (main) x"
#define NR_THREADS 3

static const char *const thread_names[NR_THREADS] = { "worker-0", "w 1) (x", NULL };

struct named {
	pthread_t thread;
	pid_t tid;
	char name[16];
};

static struct named named[NR_THREADS];
static atomic_int nr_ready, stop;

static void check_name(pid_t tid, const char *want, const char *who)
{
	char path[64], text[64], stat[512], expect[32];

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	cr_read_file(path, text, sizeof(text));
	text[strcspn(text, "\n")] = '\0';
	if (strcmp(text, want))
		cr_fail("%s: comm '%s', expected '%s'", who, text, want);
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	cr_read_file(path, stat, sizeof(stat));
	snprintf(expect, sizeof(expect), "%d (%s) ", (int)tid, want);
	if (strncmp(stat, expect, strlen(expect)))
		cr_fail("%s: stat starts '%.40s', expected '%s'", who, stat, expect);
}

static void check_own_name(const char *want, const char *who)
{
	char name[17] = "";

	prctl(PR_GET_NAME, name, 0, 0, 0);
	if (strcmp(name, want))
		cr_fail("%s: PR_GET_NAME '%s', expected '%s'", who, name, want);
	check_name(gettid(), want, who);
}

static void *thread_main(void *arg)
{
	struct named *n = arg;
	int idx = (int)(n - named);

	n->tid = gettid();
	if (thread_names[idx] && prctl(PR_SET_NAME, thread_names[idx], 0, 0, 0))
		cr_die("PR_SET_NAME: %s", strerror(errno));
	prctl(PR_GET_NAME, n->name, 0, 0, 0);
	atomic_fetch_add(&nr_ready, 1);
	while (!atomic_load(&stop))
		cr_sleep_ms(20);
	check_own_name(n->name, "thread");
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	char name[16];
	pid_t kid;

	cr_init(argc, argv);
	if (prctl(PR_SET_NAME, MAIN_NAME, 0, 0, 0))
		cr_die("PR_SET_NAME: %s", strerror(errno));
	kid = cr_spawn("child");
	if (kid == 0) {
		prctl(PR_SET_NAME, "crt-child", 0, 0, 0);
		cr_child_ready();
		cr_wait_term();
		check_own_name("crt-child", "child");
		cr_child_exit();
	}
	for (int i = 0; i < NR_THREADS; i++)
		if (pthread_create(&named[i].thread, NULL, thread_main, &named[i]))
			cr_die("pthread_create failed");
	while (atomic_load(&nr_ready) < NR_THREADS)
		cr_sleep_ms(1);
	/* Named from outside too: the thread keeps the name it set itself
	 * unless told otherwise, so rename the first one from here. */
	if (pthread_setname_np(named[0].thread, "renamed-0"))
		cr_die("pthread_setname_np failed");
	snprintf(named[0].name, sizeof(named[0].name), "renamed-0");
	if (strcmp(named[2].name, MAIN_NAME))
		cr_die("thread 2 did not inherit the name: '%s'", named[2].name);
	cr_ready();
	cr_wait_term();
	check_own_name(MAIN_NAME, "main");
	for (int i = 0; i < NR_THREADS; i++) {
		if (pthread_getname_np(named[i].thread, name, sizeof(name)) || strcmp(name, named[i].name))
			cr_fail("pthread_getname_np of thread %d: '%s', expected '%s'", i, name,
				named[i].name);
		check_name(named[i].tid, named[i].name, "thread (from main)");
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NR_THREADS; i++)
		pthread_join(named[i].thread, NULL);
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
