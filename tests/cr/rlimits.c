/*
 * Resource limits, lowered only (root here lacks CAP_SYS_RESOURCE, so a
 * hard limit can never be raised back): RLIMIT_NOFILE, RLIMIT_STACK,
 * RLIMIT_CORE and a few more in the parent, other values in a child. All
 * 16 limits must be the same after restore, /proc/self/limits must read
 * the same, and the new RLIMIT_NOFILE must still be enforced.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	apply(parent_limits, CR_ARRAY_SIZE(parent_limits));
	kid = cr_spawn("child");
	if (kid == 0) {
		apply(child_limits, CR_ARRAY_SIZE(child_limits));
		save();
		cr_child_ready();
		cr_wait_term();
		compare("child");
		cr_child_exit();
	}
	save();
	cr_ready();
	cr_wait_term();
	compare("parent");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
