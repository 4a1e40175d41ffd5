/*
 * inotify: fd 10 watches a directory (IN_CREATE|IN_DELETE|IN_MOVED_TO), a
 * file (IN_MODIFY|IN_CLOSE_WRITE), a file with IN_ONESHOT|IN_ATTRIB, and a
 * directory with IN_ONLYDIR|IN_EXCL_UNLINK|IN_CREATE; a watch removed
 * before the checkpoint leaves a gap in the watch numbers. fd 11
 * (IN_NONBLOCK) watches a third directory with IN_ALL_EVENTS; a dup of
 * it is shared with a child. After restore fdinfo lists the same watches
 * (wd, inode, device, masks, file handle), changes to the watched files
 * give events with the same watch descriptors, the one-shot watch fires
 * once, and nothing else is queued: events pending at checkpoint time are
 * documented as dropped, so none are left unread here.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

enum { IN1 = 10, IN2 = 11, IN2_DUP = 12 };

static char dir3[PATH_MAX], dir1[PATH_MAX], dir2[PATH_MAX], file1[PATH_MAX], file2[PATH_MAX],
	gone[PATH_MAX];
static int wd_dir1, wd_file1, wd_file2, wd_dir2, wd_dir3;
static char watches_was[2][2048];
static int fl_was[16], fdfl_was[16];
static char evbuf[8192] __attribute__((aligned(8)));

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

	if (fd < 0 || close(fd))
		cr_die("create %s: %s", path, strerror(errno));
}

static int watch(int ifd, const char *path, uint32_t mask)
{
	int wd = inotify_add_watch(ifd, path, mask);

	if (wd < 0)
		cr_die("inotify_add_watch %s: %s", path, strerror(errno));
	return wd;
}

/* The "inotify wd:" lines of fdinfo. */
static void watches(int fd, char *out, size_t len)
{
	char path[64], text[4096];
	size_t used = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	cr_read_file(path, text, sizeof(text));
	out[0] = '\0';
	for (const char *l = strstr(text, "inotify wd:"); l && used < len; l = strstr(l + 1, "inotify wd:"))
		used += snprintf(out + used, len - used, "%.*s\n", (int)strcspn(l, "\n"), l);
}

/* Reads every queued event (waiting up to WAIT_MS for the first) as
 * "wd:mask:name" words. */
static void events(int fd, int wait_ms, char *out, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t used = 0;

	out[0] = '\0';
	while (poll(&p, 1, wait_ms) == 1) {
		ssize_t n = read(fd, evbuf, sizeof(evbuf));

		if (n <= 0) {
			cr_fail("inotify %d: read: %zd (%s)", fd, n, strerror(errno));
			return;
		}
		for (ssize_t off = 0; off < n;) {
			struct inotify_event *ev = (struct inotify_event *)(evbuf + off);

			used += snprintf(out + used, used < len ? len - used : 0, "%d:%x:%s ", ev->wd,
					 ev->mask, ev->len ? ev->name : "");
			off += sizeof(*ev) + ev->len;
		}
		wait_ms = 200;	/* the rest of a burst */
	}
}

/* WANT empty: nothing may come within 200 ms; else it must come. */
static void expect_events(const char *what, int fd, const char *want)
{
	char got[1024];

	events(fd, want[0] ? 10000 : 200, got, sizeof(got));
	if (strcmp(got, want))
		cr_fail("%s: inotify %d gave '%s', expected '%s'", what, fd, got, want);
}

static void setup(void)
{
	int ifd;

	cr_path(dir3, sizeof(dir3), "dir3");
	cr_path(dir1, sizeof(dir1), "dir1");
	cr_path(dir2, sizeof(dir2), "dir2");
	cr_path(file1, sizeof(file1), "file1");
	cr_path(file2, sizeof(file2), "file2");
	cr_path(gone, sizeof(gone), "gone");
	if (mkdir(dir1, 0755) || mkdir(dir2, 0755) || mkdir(dir3, 0755))
		cr_die("mkdir: %s", strerror(errno));
	touch(file1);
	touch(file2);
	touch(gone);
	ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0 || dup2(ifd, IN1) != IN1)
		cr_die("inotify_init1: %s", strerror(errno));
	close(ifd);
	wd_dir1 = watch(IN1, dir1, IN_CREATE | IN_DELETE | IN_MOVED_TO);
	if (inotify_rm_watch(IN1, watch(IN1, gone, IN_ALL_EVENTS)))
		cr_die("inotify_rm_watch: %s", strerror(errno));
	wd_file1 = watch(IN1, file1, IN_MODIFY | IN_CLOSE_WRITE);
	wd_file2 = watch(IN1, file2, IN_ONESHOT | IN_ATTRIB);
	wd_dir2 = watch(IN1, dir2, IN_ONLYDIR | IN_EXCL_UNLINK | IN_CREATE);
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0 || dup2(ifd, IN2) != IN2 || dup2(ifd, IN2_DUP) != IN2_DUP)
		cr_die("inotify_init1: %s", strerror(errno));
	close(ifd);
	wd_dir3 = watch(IN2, dir3, IN_ALL_EVENTS);
	/* The IN_IGNORED of the removed watch: read now, nothing is pending. */
	expect_events("setup", IN1, "2:8000: ");
	if (cr_failures())
		cr_die("setup checks failed");
}

static void record(int from, int to)
{
	for (int fd = from; fd <= to; fd++) {
		fl_was[fd] = fcntl(fd, F_GETFL);
		fdfl_was[fd] = fcntl(fd, F_GETFD);
	}
	watches(IN1, watches_was[0], sizeof(watches_was[0]));
	watches(IN2, watches_was[1], sizeof(watches_was[1]));
}

static void check_flags(const char *who, int from, int to)
{
	for (int fd = from; fd <= to; fd++)
		if (fcntl(fd, F_GETFL) != fl_was[fd] || fcntl(fd, F_GETFD) != fdfl_was[fd])
			cr_fail("%s: fd %d: flags %#o/%d, were %#o/%d", who, fd, fcntl(fd, F_GETFL),
				fcntl(fd, F_GETFD), fl_was[fd], fdfl_was[fd]);
}

static void check_state(const char *who, int from, int to)
{
	char now[2048];

	check_flags(who, from, to);
	for (int i = 0; i < 2; i++) {
		watches(i ? IN2 : IN1, now, sizeof(now));
		if (strcmp(now, watches_was[i]))
			cr_fail("%s: inotify fd %d watches '%s', were '%s'", who, i ? IN2 : IN1, now,
				watches_was[i]);
	}
}

static void __attribute__((noreturn)) child(void)
{
	char path[PATH_MAX + 16], want[256], now[2048];

	close(IN1);
	close(IN2);
	cr_child_ready();
	cr_wait_term();
	check_flags("child", IN2_DUP, IN2_DUP);
	watches(IN2_DUP, now, sizeof(now));
	if (strcmp(now, watches_was[1]))
		cr_fail("child: inotify fd %d watches '%s', were '%s'", IN2_DUP, now, watches_was[1]);
	snprintf(path, sizeof(path), "%s/by-child", dir3);
	touch(path);
	snprintf(want, sizeof(want), "%d:%x:by-child %d:%x:by-child %d:%x:by-child ", wd_dir3,
		 IN_CREATE, wd_dir3, IN_OPEN, wd_dir3, IN_CLOSE_WRITE);
	expect_events("child", IN2_DUP, want);
	cr_child_exit();
}

static void exercise(void)
{
	char path[PATH_MAX + 16], want[512];
	int fd;

	snprintf(path, sizeof(path), "%s/new", dir1);
	touch(path);
	fd = open(file1, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd))
		cr_fail("write %s: %s", file1, strerror(errno));
	if (chmod(file2, 0600) || chmod(file2, 0640))
		cr_fail("chmod %s: %s", file2, strerror(errno));
	snprintf(path, sizeof(path), "%s/new", dir2);
	touch(path);
	snprintf(want, sizeof(want), "%d:%x:new %d:%x: %d:%x: %d:%x: %d:%x: %d:%x:new ", wd_dir1,
		 IN_CREATE, wd_file1, IN_MODIFY, wd_file1, IN_CLOSE_WRITE, wd_file2, IN_ATTRIB,
		 wd_file2, IN_IGNORED, wd_dir2, IN_CREATE);
	expect_events("after restore", IN1, want);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	setup();
	record(IN1, IN2_DUP);
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	expect_events("before checkpoint", IN2, "");
	cr_ready();
	cr_wait_term();
	check_state("parent", IN1, IN2_DUP);
	expect_events("nothing queued after restore", IN2, "");
	exercise();
	expect_events("nothing for fd 11 after the changes elsewhere", IN2, "");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
