/*
 * Character devices without state. /dev/null: stdin as the runner gives it
 * (read-only), one read-write, one write-only with O_APPEND and
 * FD_CLOEXEC, and a dup at a high number; /dev/zero read-write, /dev/full
 * write-only, /dev/urandom and /dev/random (O_NONBLOCK) read-only, and
 * /dev/tty when this process has a controlling terminal (the runner gives
 * none: then it is only logged). After restore each must still be the same
 * device with its flags and behave like it: null reads EOF and swallows
 * writes, zero reads zeros, full refuses writes with ENOSPC, the random
 * devices give bytes.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct nullfd {
	int fd;
	const char *path;
	unsigned min;		/* minor of major 1 (mem devices); 0: /dev/tty */
	int flags;		/* to open with; -1: already open */
	bool cloexec;
	int fl, fdfl;
};

static struct nullfd fds[] = {
	{ 0, "/dev/null", 3, -1, false, 0, 0 },
	{ 5, "/dev/null", 3, O_RDWR, false, 0, 0 },
	{ 6, "/dev/null", 3, O_WRONLY | O_APPEND, true, 0, 0 },
	{ 42, "/dev/null", 3, -1, false, 0, 0 },	/* dup of 5 */
	{ 7, "/dev/zero", 5, O_RDWR, false, 0, 0 },
	{ 8, "/dev/full", 7, O_WRONLY, true, 0, 0 },
	{ 9, "/dev/random", 8, O_RDONLY | O_NONBLOCK, false, 0, 0 },
	{ 10, "/dev/urandom", 9, O_RDONLY, false, 0, 0 },
	{ 11, "/dev/tty", 0, O_RDWR | O_NOCTTY, false, 0, 0 },	/* if we have one */
};
static bool have_tty;

static bool expected_dev(const struct nullfd *n, dev_t rdev)
{
	return n->min ? rdev == makedev(1, n->min) : rdev == makedev(5, 0);
}

/* What reading and writing the device must do. */
static void check_io(const struct nullfd *n, const char *when)
{
	char buf[16];
	int acc = n->fl & O_ACCMODE;
	ssize_t r;

	if (acc != O_WRONLY && n->min) {
		memset(buf, 0x55, sizeof(buf));
		r = read(n->fd, buf, sizeof(buf));
		if (n->min == 3 && r != 0)
			cr_fail("%s: fd %d: read from /dev/null did not give EOF", when, n->fd);
		if (n->min == 5 && (r != sizeof(buf) || memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16)))
			cr_fail("%s: fd %d: /dev/zero read %zd bytes, not 16 zeros", when, n->fd, r);
		if ((n->min == 8 || n->min == 9) && r <= 0)
			cr_fail("%s: fd %d: %s gave no bytes: %s", when, n->fd, n->path, strerror(errno));
	}
	if (acc != O_RDONLY && n->min) {
		r = write(n->fd, "discard", 7);
		if (n->min == 7 && (r != -1 || errno != ENOSPC))
			cr_fail("%s: fd %d: a write to /dev/full did not fail with ENOSPC", when, n->fd);
		if (n->min != 7 && r != 7)
			cr_fail("%s: fd %d: write to %s failed: %s", when, n->fd, n->path, strerror(errno));
	}
}

static void check_one(const struct nullfd *n, const char *when)
{
	struct stat st;
	char link[64] = "";
	char path[64];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", n->fd);
	len = readlink(path, link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = '\0';
	if (fstat(n->fd, &st) || !S_ISCHR(st.st_mode) || !expected_dev(n, st.st_rdev) ||
	    strcmp(link, n->path))
		cr_fail("%s: fd %d is not %s ('%s')", when, n->fd, n->path, link);
	if (fcntl(n->fd, F_GETFL) != n->fl || fcntl(n->fd, F_GETFD) != n->fdfl)
		cr_fail("%s: fd %d flags %#o/%d, were %#o/%d", when, n->fd, fcntl(n->fd, F_GETFL),
			fcntl(n->fd, F_GETFD), n->fl, n->fdfl);
	check_io(n, when);
}

int main(int argc, char **argv)
{
	struct stat st;

	cr_init(argc, argv);
	if (fstat(0, &st) || st.st_rdev != makedev(1, 3))
		cr_die("stdin is not /dev/null (run through run.sh)");
	for (size_t i = 0; i < CR_ARRAY_SIZE(fds); i++) {
		struct nullfd *n = &fds[i];

		if (n->flags >= 0) {
			int fd = open(n->path, n->flags | (n->cloexec ? O_CLOEXEC : 0));

			if (fd < 0 && !n->min) {
				cr_log("no controlling terminal (%s): /dev/tty not tested", strerror(errno));
				continue;
			}
			if (!n->min)
				have_tty = true;
			if (fd < 0 || dup3(fd, n->fd, n->cloexec ? O_CLOEXEC : 0) != n->fd)
				cr_die("open %s as %d: %s", n->path, n->fd, strerror(errno));
			close(fd);
		} else if (n->fd == 42 && dup2(5, 42) != 42) {
			cr_die("dup2: %s", strerror(errno));
		}
		n->fl = fcntl(n->fd, F_GETFL);
		n->fdfl = fcntl(n->fd, F_GETFD);
		check_one(n, "before checkpoint");
	}
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	for (size_t i = 0; i < CR_ARRAY_SIZE(fds); i++)
		if (fds[i].min || have_tty)
			check_one(&fds[i], "after restore");
	return cr_report();
}
