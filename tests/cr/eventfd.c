/*
 * eventfd counters: 12345 (blocking), 3 with EFD_SEMAPHORE, 0 with
 * EFD_NONBLOCK, 7 with EFD_SEMAPHORE|EFD_NONBLOCK, the largest value
 * (0xfffffffffffffffe, a write must fail with EAGAIN), and a dup. All are
 * shared with a child. After restore fdinfo shows the same counts and modes,
 * reads return the counts (one at a time in semaphore mode), and what the
 * child adds after restore is what the parent reads.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAXCOUNT 0xfffffffffffffffeULL

static const struct efd {
	int fd;
	uint64_t count;
	int flags;
} efds[] = {
	{ 10, 12345, 0 },
	{ 11, 3, EFD_SEMAPHORE },
	{ 12, 0, EFD_NONBLOCK },
	{ 13, 7, EFD_SEMAPHORE | EFD_NONBLOCK },
	{ 14, MAXCOUNT, EFD_NONBLOCK },
};
#define DUP_FD 15	/* dup of 12 */

static int fl_was[16], fdfl_was[16];

/* The counter and mode as fdinfo shows them, without consuming anything. */
static bool fdinfo_state(int fd, uint64_t *count, int *sem)
{
	char path[64], text[1024];
	const char *c, *s;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	cr_read_file(path, text, sizeof(text));
	c = strstr(text, "eventfd-count:");
	s = strstr(text, "eventfd-semaphore:");
	if (!c || !s)
		return false;
	*count = strtoull(c + 14, NULL, 16);
	*sem = atoi(s + 18);
	return true;
}

static void check_state(const char *who, const struct efd *e, uint64_t count)
{
	uint64_t got;
	int sem;

	if (!fdinfo_state(e->fd, &got, &sem)) {
		cr_fail("%s: fd %d: no eventfd state in fdinfo", who, e->fd);
		return;
	}
	if (got != count || sem != !!(e->flags & EFD_SEMAPHORE))
		cr_fail("%s: fd %d: count %#" PRIx64 " semaphore %d, expected %#" PRIx64 " %d", who,
			e->fd, got, sem, count, !!(e->flags & EFD_SEMAPHORE));
	if (fcntl(e->fd, F_GETFL) != fl_was[e->fd] || fcntl(e->fd, F_GETFD) != fdfl_was[e->fd])
		cr_fail("%s: fd %d: flags %#o/%d, were %#o/%d", who, e->fd, fcntl(e->fd, F_GETFL),
			fcntl(e->fd, F_GETFD), fl_was[e->fd], fdfl_was[e->fd]);
}

static void expect_read(int fd, uint64_t want)
{
	uint64_t v = 0;
	ssize_t n = read(fd, &v, sizeof(v));

	if (n != sizeof(v) || v != want)
		cr_fail("fd %d: read %zd bytes, value %#" PRIx64 ", expected %#" PRIx64 " (%s)", fd, n, v,
			want, n < 0 ? strerror(errno) : "");
}

static void expect_empty(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != -1 || errno != EAGAIN)
		cr_fail("fd %d: a read of the empty nonblocking eventfd did not fail with EAGAIN", fd);
}

static void add(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		cr_fail("fd %d: write %#" PRIx64 ": %s", fd, v, strerror(errno));
}

static void check_all(void)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(efds); i++)
		check_state("parent", &efds[i], efds[i].count);
	expect_read(10, 12345);
	for (int k = 0; k < 3; k++)
		expect_read(11, 1);
	expect_empty(12);
	expect_empty(DUP_FD);
	for (int k = 0; k < 7; k++)
		expect_read(13, 1);
	expect_empty(13);
	if (write(14, &(uint64_t){ 1 }, 8) != -1 || errno != EAGAIN)
		cr_fail("fd 14: adding 1 to the largest count did not fail with EAGAIN");
	expect_read(14, MAXCOUNT);
	/* The dup is the same eventfd. */
	add(12, 9);
	expect_read(DUP_FD, 9);
}

static void __attribute__((noreturn)) child(void)
{
	cr_child_ready();
	cr_wait_term();
	/* The parent has read everything by now. */
	check_state("child", &efds[0], 0);
	add(10, 5);
	add(11, 2);
	add(12, 40);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	for (size_t i = 0; i < CR_ARRAY_SIZE(efds); i++) {
		const struct efd *e = &efds[i];
		int fd = eventfd(0, e->flags);

		if (fd < 0 || dup2(fd, e->fd) != e->fd)
			cr_die("eventfd %d: %s", e->fd, strerror(errno));
		close(fd);
		if (e->count && write(e->fd, &e->count, 8) != 8)
			cr_die("eventfd %d: write: %s", e->fd, strerror(errno));
	}
	if (dup2(12, DUP_FD) != DUP_FD)
		cr_die("dup2: %s", strerror(errno));
	for (int fd = 10; fd <= DUP_FD; fd++) {
		fl_was[fd] = fcntl(fd, F_GETFL);
		fdfl_was[fd] = fcntl(fd, F_GETFD);
	}
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	cr_ready();
	cr_wait_term();
	check_all();
	cr_finish_children(&kid, roles, 1);
	expect_read(10, 5);
	expect_read(11, 1);
	expect_read(11, 1);
	expect_read(12, 40);
	return cr_report();
}
