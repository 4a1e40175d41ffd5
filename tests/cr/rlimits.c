/*
 * Resource limits, lowered only (root here lacks CAP_SYS_RESOURCE, so a
 * hard limit can never be raised back): RLIMIT_NOFILE, RLIMIT_STACK,
 * RLIMIT_CORE and a few more in the parent, other values in a child. All
 * 16 limits must be the same after restore, /proc/self/limits must read
 * the same, and the new RLIMIT_NOFILE must still be enforced.
 *
 * A third process ("tight") lowers soft and hard limits below what the
 * restore itself needs in it, so they can only be applied at the very end:
 * RLIMIT_NOFILE 8 with descriptor 40 open, RLIMIT_SIGPENDING 1 with three
 * queued real-time signals, RLIMIT_AS just above its size, RLIMIT_NPROC 1,
 * RLIMIT_STACK, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_RTTIME, RLIMIT_MSGQUEUE 0.
 * After restore the signals must still be queued with their values and the
 * address-space limit must still refuse a large mapping.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

struct lower {
	int resource;
	rlim_t soft, hard;
};

static const struct lower parent_limits[] = {
	{ RLIMIT_NOFILE, 200, 1000 },
	{ RLIMIT_STACK, 4 << 20, 6 << 20 },
	{ RLIMIT_CORE, 0, 1 << 20 },
	{ RLIMIT_CPU, 3600, 7200 },
	{ RLIMIT_FSIZE, 1ULL << 32, 1ULL << 33 },
	{ RLIMIT_MSGQUEUE, 4096, 8192 },
	{ RLIMIT_SIGPENDING, 1000, 2000 },
	{ RLIMIT_MEMLOCK, 1 << 20, 2 << 20 },
};

static const struct lower child_limits[] = {
	{ RLIMIT_NOFILE, 100, 150 },
	{ RLIMIT_CORE, 0, 0 },
	{ RLIMIT_DATA, 1ULL << 34, 1ULL << 35 },
	{ RLIMIT_NICE, 0, 0 },
	{ RLIMIT_RTPRIO, 0, 0 },
};

#define TIGHT_FD 40
#define TIGHT_SIG (SIGRTMIN + 1)
#define TIGHT_NSIG 3
#define AS_SLACK (64UL << 20)

static struct lower tight_limits[] = {
	{ RLIMIT_NOFILE, 8, 8 },
	{ RLIMIT_SIGPENDING, 1, 1 },
	{ RLIMIT_AS, 0, 0 },		/* set from the current size */
	{ RLIMIT_NPROC, 1, 1 },
	{ RLIMIT_STACK, 256 << 10, 512 << 10 },
	{ RLIMIT_CORE, 0, 0 },
	{ RLIMIT_CPU, 600, 600 },
	{ RLIMIT_RTTIME, 1000000, 1000000 },
	{ RLIMIT_MSGQUEUE, 0, 0 },
};

static struct rlimit saved[RLIM_NLIMITS];
static char limits_text[4096];

/* Lowers only: a hard limit already below the target stays as it is. */
static void apply(const struct lower *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rlimit cur, want;

		getrlimit(l[i].resource, &cur);
		want.rlim_max = cur.rlim_max < l[i].hard ? cur.rlim_max : l[i].hard;
		want.rlim_cur = l[i].soft < want.rlim_max ? l[i].soft : want.rlim_max;
		if (setrlimit(l[i].resource, &want))
			cr_die("setrlimit %d: %s", l[i].resource, strerror(errno));
	}
}

static void save(void)
{
	for (int r = 0; r < RLIM_NLIMITS; r++)
		getrlimit(r, &saved[r]);
	cr_read_file("/proc/self/limits", limits_text, sizeof(limits_text));
}

static void compare(const char *who)
{
	char text[sizeof(limits_text)];
	struct rlimit nofile;

	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit now;

		getrlimit(r, &now);
		if (now.rlim_cur != saved[r].rlim_cur || now.rlim_max != saved[r].rlim_max)
			cr_fail("%s: limit %d is %llu/%llu, was %llu/%llu", who, r,
				(unsigned long long)now.rlim_cur, (unsigned long long)now.rlim_max,
				(unsigned long long)saved[r].rlim_cur,
				(unsigned long long)saved[r].rlim_max);
	}
	cr_read_file("/proc/self/limits", text, sizeof(text));
	if (strcmp(text, limits_text))
		cr_fail("%s: /proc/self/limits differs", who);
	/* The soft RLIMIT_NOFILE is the first fd number that can't be used. */
	getrlimit(RLIMIT_NOFILE, &nofile);
	int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, (int)nofile.rlim_cur - 1);

	if (fd != (int)nofile.rlim_cur - 1)
		cr_fail("%s: F_DUPFD to %d gave %d (%s)", who, (int)nofile.rlim_cur - 1, fd,
			strerror(errno));
	if (fd >= 0)
		close(fd);
	fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, (int)nofile.rlim_cur);
	if (fd >= 0 || errno != EINVAL)
		cr_fail("%s: F_DUPFD beyond RLIMIT_NOFILE gave %d", who, fd);
	if (fd >= 0)
		close(fd);
}

static unsigned long vm_size(void)
{
	char v[64];

	if (!cr_status_field("/proc/self/status", "VmSize", v, sizeof(v)))
		cr_die("no VmSize in /proc/self/status");
	return strtoul(v, NULL, 10) << 10;
}

static void tight_setup(void)
{
	sigset_t rt;

	sigemptyset(&rt);
	sigaddset(&rt, TIGHT_SIG);
	sigprocmask(SIG_BLOCK, &rt, NULL);
	for (int i = 0; i < TIGHT_NSIG; i++) {
		union sigval v = { .sival_int = 100 + i };

		if (sigqueue(getpid(), TIGHT_SIG, v))
			cr_die("sigqueue: %s", strerror(errno));
	}
	if (fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, TIGHT_FD) != TIGHT_FD)
		cr_die("F_DUPFD to %d: %s", TIGHT_FD, strerror(errno));
	for (size_t i = 0; i < CR_ARRAY_SIZE(tight_limits); i++)
		if (tight_limits[i].resource == RLIMIT_AS)
			tight_limits[i].soft = tight_limits[i].hard = vm_size() + AS_SLACK;
	apply(tight_limits, CR_ARRAY_SIZE(tight_limits));
}

static void tight_check(void)
{
	sigset_t rt;
	void *p;

	sigemptyset(&rt);
	sigaddset(&rt, TIGHT_SIG);
	for (int i = 0; i < TIGHT_NSIG; i++) {
		struct timespec zero = { 0, 0 };
		siginfo_t si;
		int sig = sigtimedwait(&rt, &si, &zero);

		if (sig != TIGHT_SIG) {
			cr_fail("tight: queued signal %d of %d is gone (%s)", i + 1, TIGHT_NSIG,
				strerror(errno));
			break;
		}
		CR_EXPECT_EQ("tight: signal value", si.si_value.sival_int, 100 + i);
		CR_EXPECT_EQ("tight: signal code", si.si_code, SI_QUEUE);
	}
	p = mmap(NULL, 2 * AS_SLACK, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED) {
		cr_fail("tight: a %lu MiB mapping went past RLIMIT_AS", (2 * AS_SLACK) >> 20);
		munmap(p, 2 * AS_SLACK);
	}
	p = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		cr_fail("tight: a 1 MiB mapping failed under RLIMIT_AS: %s", strerror(errno));
	else
		munmap(p, 1 << 20);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child", "tight" };
	pid_t kid[2];

	cr_init(argc, argv);
	apply(parent_limits, CR_ARRAY_SIZE(parent_limits));
	kid[0] = cr_spawn("child");
	if (kid[0] == 0) {
		apply(child_limits, CR_ARRAY_SIZE(child_limits));
		save();
		cr_child_ready();
		cr_wait_term();
		compare("child");
		cr_child_exit();
	}
	kid[1] = cr_spawn("tight");
	if (kid[1] == 0) {
		tight_setup();
		save();
		cr_child_ready();
		cr_wait_term();
		compare("tight");
		tight_check();
		cr_child_exit();
	}
	save();
	cr_ready();
	cr_wait_term();
	compare("parent");
	cr_finish_children(kid, roles, 2);
	return cr_report();
}
