/*
 * /dev/null descriptors: stdin as the runner gives it (read-only), one
 * read-write, one write-only with O_APPEND and FD_CLOEXEC, and a dup at a
 * high number. After restore each must still be /dev/null with its flags
 * and behave like it.
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
	int flags;		/* to open with; -1: already open */
	bool cloexec;
	int fl, fdfl;
};

static struct nullfd fds[] = {
	{ 0, -1, false, 0, 0 },
	{ 5, O_RDWR, false, 0, 0 },
	{ 6, O_WRONLY | O_APPEND, true, 0, 0 },
	{ 42, -1, false, 0, 0 },	/* dup of 5 */
};

static void check_one(const struct nullfd *n, const char *when)
{
	struct stat st;
	char link[64] = "", buf[16];
	char path[64];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", n->fd);
	len = readlink(path, link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = '\0';
	if (fstat(n->fd, &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3) ||
	    strcmp(link, "/dev/null"))
		cr_fail("%s: fd %d is not /dev/null ('%s')", when, n->fd, link);
	if (fcntl(n->fd, F_GETFL) != n->fl || fcntl(n->fd, F_GETFD) != n->fdfl)
		cr_fail("%s: fd %d flags %#o/%d, were %#o/%d", when, n->fd, fcntl(n->fd, F_GETFL),
			fcntl(n->fd, F_GETFD), n->fl, n->fdfl);
	if ((n->fl & O_ACCMODE) != O_WRONLY && read(n->fd, buf, sizeof(buf)) != 0)
		cr_fail("%s: fd %d: read from /dev/null did not give EOF", when, n->fd);
	if ((n->fl & O_ACCMODE) != O_RDONLY && write(n->fd, "discard", 7) != 7)
		cr_fail("%s: fd %d: write to /dev/null failed: %s", when, n->fd, strerror(errno));
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
			int fd = open("/dev/null", n->flags | (n->cloexec ? O_CLOEXEC : 0));

			if (fd < 0 || dup3(fd, n->fd, n->cloexec ? O_CLOEXEC : 0) != n->fd)
				cr_die("open /dev/null as %d: %s", n->fd, strerror(errno));
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
		check_one(&fds[i], "after restore");
	return cr_report();
}
