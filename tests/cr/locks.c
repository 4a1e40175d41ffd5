/*
 * File locks: an exclusive flock, a shared flock on a description shared
 * with a child, POSIX record locks of the root (write, 100-199) and of the
 * child (read, 300-399, and read to EOF from 1000), and an OFD write lock.
 * After restore a probe process started then must find each lock held by
 * the same owner, with the same type and range, and the gaps free.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

enum { FD_EX = 5, FD_SH = 6, FD_POSIX = 7, FD_OFD = 8 };

static char paths[4][PATH_MAX];
static const char *const names[4] = { "flock-ex", "flock-sh", "posix", "ofd" };

static int open_at(int i, int fd)
{
	int f = open(paths[i], O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (f < 0 || dup2(f, fd) != fd)
		cr_die("open %s: %s", paths[i], strerror(errno));
	close(f);
	return fd;
}

static void posix_lock(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, F_SETLK, &fl) < 0)
		cr_die("F_SETLK %lld+%lld: %s", (long long)start, (long long)len, strerror(errno));
}

/* In a fresh probe process: who holds what. */
static void expect_posix(int fd, off_t start, off_t len, short type, pid_t pid)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, F_GETLK, &fl) < 0) {
		cr_fail("F_GETLK: %s", strerror(errno));
		return;
	}
	CR_EXPECT_EQ("posix lock type", fl.l_type, type);
	if (type != F_UNLCK)
		CR_EXPECT_EQ("posix lock owner", fl.l_pid, pid);
}

static void expect_flock(int i, int op, bool ok)
{
	int fd = open(paths[i], O_RDONLY | O_CLOEXEC), r;

	r = flock(fd, op | LOCK_NB);
	if (ok)
		CR_CHECK(r == 0, "%s: flock(%d) refused: %s", names[i], op, strerror(errno));
	else
		CR_CHECK(r < 0 && errno == EWOULDBLOCK, "%s: flock(%d) granted: lock lost", names[i], op);
	close(fd);
}

static void probe(pid_t root, pid_t kid)
{
	int fd = open(paths[2], O_RDWR | O_CLOEXEC), ofd = open(paths[3], O_RDWR | O_CLOEXEC);
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };

	expect_flock(0, LOCK_SH, false);
	expect_flock(1, LOCK_EX, false);
	expect_flock(1, LOCK_SH, true);
	expect_posix(fd, 100, 100, F_WRLCK, root);
	expect_posix(fd, 150, 1, F_WRLCK, root);
	expect_posix(fd, 300, 100, F_RDLCK, kid);
	expect_posix(fd, 5000, 1, F_RDLCK, kid);
	expect_posix(fd, 200, 100, F_UNLCK, 0);
	expect_posix(fd, 400, 600, F_UNLCK, 0);
	if (fcntl(ofd, F_OFD_GETLK, &fl) < 0)
		cr_fail("F_OFD_GETLK: %s", strerror(errno));
	else
		CR_EXPECT_EQ("ofd lock type", fl.l_type, F_WRLCK);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	const char *roles[] = { "child" };
	struct flock ofl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	pid_t kid, prober, root = getpid();
	int st;

	cr_init(argc, argv);
	for (int i = 0; i < 4; i++)
		cr_path(paths[i], sizeof(paths[i]), names[i]);
	open_at(0, FD_EX);
	open_at(1, FD_SH);
	open_at(2, FD_POSIX);
	open_at(3, FD_OFD);
	if (flock(FD_EX, LOCK_EX | LOCK_NB) || flock(FD_SH, LOCK_SH | LOCK_NB) ||
	    fcntl(FD_OFD, F_OFD_SETLK, &ofl))
		cr_die("lock: %s", strerror(errno));
	posix_lock(FD_POSIX, F_WRLCK, 100, 100);
	kid = cr_spawn("child");
	if (kid == 0) {
		posix_lock(FD_POSIX, F_RDLCK, 300, 100);
		posix_lock(FD_POSIX, F_RDLCK, 1000, 0);
		cr_child_ready();
		cr_wait_term();
		cr_child_exit();
	}
	cr_ready();
	cr_wait_term();
	prober = cr_fork("probe");
	if (prober == 0)
		probe(root, kid);
	if (cr_wait_pid(prober, 30000, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		cr_fail("the probe found locks missing or changed");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
