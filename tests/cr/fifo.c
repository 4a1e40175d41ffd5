/*
 * Named pipes in the scratch directory:
 *  - "fifo1": the parent holds the read end (O_NONBLOCK, fd 10), the child
 *    the write end (fd 11), 3000 bytes buffered, pipe size 32 KiB;
 *  - "fifo2": opened O_RDWR by the parent (fd 12) with 700 bytes buffered,
 *    and a dup at fd 13.
 * After restore each descriptor is the same fifo (path and inode) with its
 * flags, the size and exactly the bytes buffered; what the child writes
 * after restore reaches the parent, and once the child is gone the read end
 * sees end of file (no write end left over by the restorer).
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

enum { R1 = 10, W1 = 11, RW2 = 12, DUP2 = 13 };
#define BYTES1 3000
#define BYTES2 700
#define SIZE1 (32 * 1024)

static char path1[PATH_MAX], path2[PATH_MAX];
static char buf[8192], want[8192];
static int fl_was[16], fdfl_was[16];
static const char child_msg[] = "written by the child after restore";

static void to_fd(int fd, int want_fd)
{
	if (fd < 0 || dup2(fd, want_fd) != want_fd)
		cr_die("descriptor %d: %s", want_fd, strerror(errno));
	if (fd != want_fd)
		close(fd);
}

static void put(int fd, size_t len, uint64_t seed)
{
	cr_fill(want, len + 7, seed);
	if (write(fd, want, len) != (ssize_t)len)
		cr_die("fd %d: write of %zu bytes: %s", fd, len, strerror(errno));
}

static int bytes_in(int fd)
{
	int n = -1;

	if (ioctl(fd, FIONREAD, &n))
		cr_fail("fd %d: FIONREAD: %s", fd, strerror(errno));
	return n;
}

static void record(int from, int to)
{
	for (int fd = from; fd <= to; fd++) {
		fl_was[fd] = fcntl(fd, F_GETFL);
		fdfl_was[fd] = fcntl(fd, F_GETFD);
	}
}

/* Same flags, and still the fifo at PATH. */
static void check_fd(int fd, const char *path)
{
	struct stat st, pst;

	if (fcntl(fd, F_GETFL) != fl_was[fd] || fcntl(fd, F_GETFD) != fdfl_was[fd])
		cr_fail("fd %d: flags %#o/%d, were %#o/%d", fd, fcntl(fd, F_GETFL), fcntl(fd, F_GETFD),
			fl_was[fd], fdfl_was[fd]);
	if (fstat(fd, &st) || stat(path, &pst) || !S_ISFIFO(st.st_mode) || st.st_ino != pst.st_ino ||
	    st.st_dev != pst.st_dev)
		cr_fail("fd %d is not the fifo %s", fd, path);
}

static void expect_bytes(const char *what, int fd, size_t len, uint64_t seed)
{
	ssize_t n;

	CR_EXPECT_EQ(what, bytes_in(fd), len);
	n = read(fd, buf, sizeof(buf));
	cr_fill(want, len + 7, seed);
	if (n != (ssize_t)len || memcmp(buf, want, len))
		cr_fail("%s: read %zd bytes, expected the %zu buffered", what, n, len);
}

static void __attribute__((noreturn)) child(void)
{
	close(R1);
	close(RW2);
	close(DUP2);
	to_fd(open(path1, O_WRONLY | O_CLOEXEC), W1);
	put(W1, BYTES1, 0xf1);
	record(W1, W1);
	cr_child_ready();
	cr_wait_term();
	check_fd(W1, path1);
	if (write(W1, child_msg, sizeof(child_msg)) != sizeof(child_msg))
		cr_fail("child: write to %s: %s", path1, strerror(errno));
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;
	ssize_t n;

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	cr_path(path1, sizeof(path1), "fifo1");
	cr_path(path2, sizeof(path2), "fifo2");
	if (mkfifo(path1, 0600) || mkfifo(path2, 0640))
		cr_die("mkfifo: %s", strerror(errno));
	to_fd(open(path1, O_RDONLY | O_NONBLOCK | O_CLOEXEC), R1);
	if (fcntl(R1, F_SETPIPE_SZ, SIZE1) != SIZE1)
		cr_die("F_SETPIPE_SZ: %s", strerror(errno));
	to_fd(open(path2, O_RDWR), RW2);
	put(RW2, BYTES2, 0xf2);
	to_fd(dup(RW2), DUP2);
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	record(R1, DUP2);
	cr_ready();
	cr_wait_term();
	check_fd(R1, path1);
	check_fd(RW2, path2);
	check_fd(DUP2, path2);
	CR_EXPECT_EQ("fifo1 size", fcntl(R1, F_GETPIPE_SZ), SIZE1);
	expect_bytes("fifo1", R1, BYTES1, 0xf1);
	if (read(R1, buf, 1) != -1 || errno != EAGAIN)
		cr_fail("fifo1: the drained read end did not say EAGAIN while the child holds the writer");
	expect_bytes("fifo2", RW2, BYTES2, 0xf2);
	if (write(DUP2, "loop", 4) != 4 || read(RW2, buf, sizeof(buf)) != 4 || memcmp(buf, "loop", 4))
		cr_fail("fifo2: what fd %d writes is not read back by fd %d", DUP2, RW2);
	cr_finish_children(&kid, roles, 1);
	n = read(R1, buf, sizeof(buf));
	if (n != sizeof(child_msg) || memcmp(buf, child_msg, n))
		cr_fail("fifo1: read %zd bytes, not the child's message", n);
	n = read(R1, buf, 1);
	if (n != 0)
		cr_fail("fifo1: read gave %zd (%s), not end of file: a writer survived", n,
			n < 0 ? strerror(errno) : "data");
	return cr_report();
}
