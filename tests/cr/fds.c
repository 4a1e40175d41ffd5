/*
 * Regular-file descriptors: read-only, write-only with O_APPEND, read-write
 * with FD_CLOEXEC, O_NONBLOCK|O_NOATIME, numbers with gaps (7, 8, 9, 100),
 * a dup sharing its offset, and a descriptor shared with a child across
 * fork. After restore the fd table must be the same set, each descriptor
 * the same file with the same offset and flags, offsets shared as before,
 * and reads and writes must behave accordingly.
 */
#include "crtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_BYTES (64 * 1024)

struct fd_spec {
	int fd;
	const char *file;
	int flags;
	bool cloexec;
	off_t offset;
};

static const struct fd_spec specs[] = {
	{ 7, "data", O_RDONLY, false, 1234 },
	{ 8, "data", O_RDWR, true, 4096 + 17 },
	{ 10, "data", O_RDONLY | O_NONBLOCK | O_NOATIME, false, 60000 },
	{ 11, "trunc", O_WRONLY | O_CREAT | O_TRUNC, true, 0 },
	{ 12, "shared-with-child", O_RDONLY, false, 100 },
	{ 100, "append", O_WRONLY | O_APPEND | O_CREAT, false, 0 },
};
#define DUP_FD 9	/* dup of 7 */

struct fd_state {
	int fd;
	dev_t dev;
	ino_t ino;
	int fl, fdfl;
	off_t pos;
	char fdinfo[256];	/* pos, flags and mnt_id lines */
};

static struct fd_state was[32];
static int nr_was;
static char fd_list[256];

static void path_of(const char *file, char *buf, size_t len)
{
	cr_path(buf, len, file);
}

static void make_data(void)
{
	static char data[DATA_BYTES];
	char path[PATH_MAX];
	int fd;

	path_of("data", path, sizeof(path));
	cr_fill(data, sizeof(data), 0xda7a);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data) || close(fd))
		cr_die("write '%s': %s", path, strerror(errno));
	path_of("shared-with-child", path, sizeof(path));
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, 4096) != 4096 || close(fd))
		cr_die("write '%s': %s", path, strerror(errno));
}

/* Closes every descriptor but stdio, so the table holds only ours. */
static void close_others(void)
{
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
}

static void open_specs(void)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(specs); i++) {
		const struct fd_spec *s = &specs[i];
		char path[PATH_MAX];
		int fd;

		path_of(s->file, path, sizeof(path));
		fd = open(path, s->flags, 0644);
		if (fd < 0 || dup2(fd, s->fd) != s->fd)
			cr_die("open '%s' as fd %d: %s", path, s->fd, strerror(errno));
		close(fd);
		if (s->cloexec && fcntl(s->fd, F_SETFD, FD_CLOEXEC))
			cr_die("F_SETFD: %s", strerror(errno));
		if (lseek(s->fd, s->offset, SEEK_SET) != s->offset)
			cr_die("lseek fd %d: %s", s->fd, strerror(errno));
	}
	if (write(100, "hello\n", 6) != 6 || write(100, "world\n", 6) != 6 ||
	    write(11, "0123456789", 10) != 10)
		cr_die("write: %s", strerror(errno));
	if (dup2(7, DUP_FD) != DUP_FD)
		cr_die("dup2: %s", strerror(errno));
}

static void list_fds(char *out, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	int fds[64], n = 0;
	size_t used = 0;
	struct dirent *de;

	if (!d)
		cr_die("opendir /proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)) && n < 64)
		if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d))
			fds[n++] = atoi(de->d_name);
	closedir(d);
	for (int i = 0; i < n; i++)	/* insertion sort: small */
		for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
			int t = fds[j];

			fds[j] = fds[j - 1];
			fds[j - 1] = t;
		}
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, len - used, "%d ", fds[i]);
}

static void fdinfo_of(int fd, char *out, size_t len)
{
	char path[64], text[1024];
	size_t used = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	cr_read_file(path, text, sizeof(text));
	out[0] = '\0';
	for (char *line = text; *line; line += strcspn(line, "\n") + 1) {
		size_t n = strcspn(line, "\n");

		if (!strncmp(line, "pos:", 4) || !strncmp(line, "flags:", 6) ||
		    !strncmp(line, "mnt_id:", 7))
			used += (size_t)snprintf(out + used, len - used, "%.*s;", (int)n, line);
		if (!line[n])
			break;
	}
}

static void state_of(int fd, struct fd_state *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	if (fstat(fd, &st)) {
		cr_fail("fstat %d: %s", fd, strerror(errno));
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->fl = fcntl(fd, F_GETFL);
	s->fdfl = fcntl(fd, F_GETFD);
	s->pos = lseek(fd, 0, SEEK_CUR);
	fdinfo_of(fd, s->fdinfo, sizeof(s->fdinfo));
}

static void record(void)
{
	const int all[] = { 0, 1, 2, 7, 8, DUP_FD, 10, 11, 12, 100 };

	nr_was = 0;
	for (size_t i = 0; i < CR_ARRAY_SIZE(all); i++)
		state_of(all[i], &was[nr_was++]);
	list_fds(fd_list, sizeof(fd_list));
}

static void compare(const char *who)
{
	char list[256];

	list_fds(list, sizeof(list));
	if (strcmp(list, fd_list))
		cr_fail("%s: open fds '%s', were '%s'", who, list, fd_list);
	for (int i = 0; i < nr_was; i++) {
		struct fd_state now, *w = &was[i];

		state_of(w->fd, &now);
		if (now.dev != w->dev || now.ino != w->ino)
			cr_fail("%s: fd %d is another file", who, w->fd);
		if (now.fl != w->fl || now.fdfl != w->fdfl)
			cr_fail("%s: fd %d flags %#o/%d, were %#o/%d", who, w->fd, now.fl, now.fdfl,
				w->fl, w->fdfl);
		/* stdout and stderr append to the log: their offset moves. */
		if (w->fd == 1 || w->fd == 2) {
			if (!(now.fl & O_APPEND))
				cr_fail("%s: fd %d lost O_APPEND", who, w->fd);
			continue;
		}
		if (now.pos != w->pos)
			cr_fail("%s: fd %d at offset %lld, was %lld", who, w->fd,
				(long long)now.pos, (long long)w->pos);
		if (strcmp(now.fdinfo, w->fdinfo))
			cr_fail("%s: fd %d fdinfo '%s', was '%s'", who, w->fd, now.fdinfo, w->fdinfo);
	}
}

/* Reads and writes through the restored descriptors. */
static void exercise(void)
{
	static char data[DATA_BYTES];
	char buf[64], path[PATH_MAX];
	struct stat st;

	cr_fill(data, sizeof(data), 0xda7a);
	if (read(7, buf, 16) != 16 || memcmp(buf, data + 1234, 16))
		cr_fail("fd 7 does not read the data at offset 1234");
	if (lseek(DUP_FD, 0, SEEK_CUR) != 1234 + 16)
		cr_fail("fd %d no longer shares the offset of fd 7", DUP_FD);
	if (read(8, buf, 8) != 8 || memcmp(buf, data + 4096 + 17, 8))
		cr_fail("fd 8 does not read the data at its offset");
	if (write(8, "XY", 2) != 2)
		cr_fail("fd 8 is not writable: %s", strerror(errno));
	if (read(10, buf, 64) != 64 || memcmp(buf, data + 60000, 64))
		cr_fail("fd 10 does not read the data at offset 60000");
	lseek(100, 0, SEEK_SET);
	if (write(100, "again\n", 6) != 6)
		cr_fail("fd 100 write: %s", strerror(errno));
	path_of("append", path, sizeof(path));
	if (stat(path, &st) || st.st_size != 18 || lseek(100, 0, SEEK_CUR) != 18)
		cr_fail("fd 100 lost O_APPEND: size %lld, offset %lld", (long long)st.st_size,
			(long long)lseek(100, 0, SEEK_CUR));
	if (read(11, buf, 1) >= 0 || errno != EBADF)
		cr_fail("fd 11 (O_WRONLY) became readable");
	path_of("trunc", path, sizeof(path));
	if (stat(path, &st) || st.st_size != 10)
		cr_fail("the file of fd 11 (opened with O_TRUNC) has %lld bytes, not 10",
			(long long)st.st_size);
}

static void __attribute__((noreturn)) child(_Atomic int *step)
{
	char buf[10];

	close(100);
	if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0)
		cr_die("child: open /dev/null: %s", strerror(errno));
	cr_child_ready();
	cr_wait_term();
	/* Advance the offset the parent shares, then let it look. */
	if (read(12, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		cr_fail("child: read fd 12: %s", strerror(errno));
	atomic_store(step, 1);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	_Atomic int *step;
	pid_t kid;

	cr_init(argc, argv);
	close_others();
	make_data();
	step = mmap(NULL, CR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (step == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	open_specs();
	kid = cr_spawn("child");
	if (kid == 0)
		child(step);
	record();
	cr_ready();
	cr_wait_term();
	compare("parent");
	exercise();
	kill(kid, SIGTERM);
	for (int i = 0; i < 1000 && !atomic_load(step); i++)
		cr_sleep_ms(10);
	if (lseek(12, 0, SEEK_CUR) != 110)
		cr_fail("fd 12 offset %lld after the child read 10 bytes: no longer shared",
			(long long)lseek(12, 0, SEEK_CUR));
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
