/*
 * More descriptor kinds and sharing:
 *  - O_DIRECT on a file (flag kept, aligned I/O works);
 *  - O_PATH on a file and on a directory (flag kept, same inode, reads
 *    refused, usable as a dirfd);
 *  - a directory read half-way with getdents64: the rest comes after
 *    restore, no name lost or repeated;
 *  - a child created with CLONE_FS: after restore its chdir() and umask()
 *    still change the parent's;
 *  - a child created with CLONE_FILES: after restore a descriptor it opens
 *    is the parent's too.
 */
#include "crtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_NAMES 300
enum { FD_DIRECT = 5, FD_OPATH = 6, FD_OPATH_DIR = 7, FD_DIR = 8 };

static char dir_path[PATH_MAX], sub_path[PATH_MAX];
static char seen[NR_NAMES];	/* names f000..f299 read from FD_DIR */
static struct stat st_file, st_dir;
static char dents[1024];
static char aligned[8192] __attribute__((aligned(4096)));

static void to_fd(int fd, int want)
{
	if (fd < 0 || dup2(fd, want) != want)
		cr_die("descriptor %d: %s", want, strerror(errno));
	close(fd);
}

/* One getdents64 call's worth of names; returns how many bytes it got. */
static long read_some(void)
{
	long n = syscall(SYS_getdents64, FD_DIR, dents, sizeof(dents));

	for (long off = 0; off < n;) {
		struct dirent64 *d = (struct dirent64 *)(dents + off);
		int i;

		off += d->d_reclen;
		if (d->d_name[0] != 'f')
			continue;
		i = atoi(d->d_name + 1);
		if (i < 0 || i >= NR_NAMES)
			continue;
		if (seen[i])
			cr_fail("directory: %s read twice", d->d_name);
		seen[i] = 1;
	}
	return n;
}

static void setup_files(void)
{
	char p[PATH_MAX + 16];

	cr_path(dir_path, sizeof(dir_path), "dir");
	cr_path(sub_path, sizeof(sub_path), "dir/sub");
	if (mkdir(dir_path, 0755) || mkdir(sub_path, 0755))
		cr_die("mkdir: %s", strerror(errno));
	for (int i = 0; i < NR_NAMES; i++) {
		snprintf(p, sizeof(p), "%s/f%03d", dir_path, i);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			cr_die("create %s: %s", p, strerror(errno));
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/f000", dir_path);
	cr_fill(aligned, sizeof(aligned), 0xd1ec7);
	to_fd(open(p, O_RDWR | O_DIRECT | O_CLOEXEC), FD_DIRECT);
	if (pwrite(FD_DIRECT, aligned, sizeof(aligned), 0) != (ssize_t)sizeof(aligned))
		cr_die("O_DIRECT write: %s", strerror(errno));
	to_fd(open(p, O_PATH | O_CLOEXEC), FD_OPATH);
	to_fd(open(sub_path, O_PATH | O_DIRECTORY | O_CLOEXEC), FD_OPATH_DIR);
	to_fd(open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), FD_DIR);
	fstat(FD_OPATH, &st_file);
	fstat(FD_OPATH_DIR, &st_dir);
	if (read_some() <= 0)
		cr_die("getdents64: %s", strerror(errno));
}

static void check_files(void)
{
	struct stat st;
	char c;
	int n = 0, fd;

	CR_CHECK(fcntl(FD_DIRECT, F_GETFL) & O_DIRECT, "O_DIRECT lost");
	memset(aligned, 0, sizeof(aligned));
	CR_EXPECT_EQ("O_DIRECT read", pread(FD_DIRECT, aligned, sizeof(aligned), 0), sizeof(aligned));
	CR_CHECK(cr_check_fill(aligned, sizeof(aligned), 0xd1ec7) < 0, "O_DIRECT data");
	CR_CHECK(fcntl(FD_OPATH, F_GETFL) & O_PATH, "O_PATH lost on the file");
	CR_CHECK(fcntl(FD_OPATH_DIR, F_GETFL) & O_PATH, "O_PATH lost on the directory");
	CR_CHECK(fstat(FD_OPATH, &st) == 0 && st.st_ino == st_file.st_ino, "O_PATH file: other inode");
	CR_CHECK(fstat(FD_OPATH_DIR, &st) == 0 && st.st_ino == st_dir.st_ino, "O_PATH dir: other inode");
	CR_CHECK(read(FD_OPATH, &c, 1) < 0 && errno == EBADF, "O_PATH descriptor can read");
	fd = openat(FD_OPATH_DIR, "made-after", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CR_CHECK(fd >= 0, "O_PATH dir unusable as a dirfd: %s", strerror(errno));
	close(fd);
	while (read_some() > 0)
		;
	for (int i = 0; i < NR_NAMES; i++)
		n += seen[i];
	CR_EXPECT_EQ("directory: names read in all", n, NR_NAMES);
}

#define FD_FROM_CHILD 40

static void wait_term_only(const char *role)
{
	sigset_t mask;

	cr_set_role(role);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	while (!cr_term_flag)
		sigsuspend(&mask);
}

static int fs_child(void)
{
	wait_term_only("fs-child");
	/* Shared fs_struct: these change the parent too. */
	if (chdir(sub_path) < 0)
		_exit(2);
	umask(0077);
	_exit(0);
}

static int files_child(void)
{
	int fd;

	wait_term_only("files-child");
	/* Shared descriptor table: the parent gets this one. */
	fd = open(sub_path, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || dup2(fd, FD_FROM_CHILD) != FD_FROM_CHILD)
		_exit(2);
	close(fd);
	_exit(0);
}

static pid_t clone_child(unsigned long flags, int (*fn)(void))
{
	pid_t pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);

	if (pid < 0)
		cr_die("clone(%#lx): %s", flags, strerror(errno));
	if (pid == 0)
		_exit(fn());
	return pid;
}

static void finish(pid_t kid, const char *what)
{
	int st = 0;

	kill(kid, SIGTERM);
	if (cr_wait_pid(kid, 30000, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		cr_fail("the %s child failed (status %#x)", what, st);
}

int main(int argc, char **argv)
{
	char cwd[PATH_MAX];
	pid_t fs_kid, files_kid;
	struct stat a, b;
	mode_t old;

	cr_init(argc, argv);
	setup_files();
	umask(0022);
	fs_kid = clone_child(CLONE_FS, fs_child);
	files_kid = clone_child(CLONE_FILES, files_child);
	cr_ready();
	cr_wait_term();
	check_files();
	finish(files_kid, "CLONE_FILES");
	CR_CHECK(fstat(FD_FROM_CHILD, &a) == 0 && stat(sub_path, &b) == 0 && a.st_ino == b.st_ino,
		 "CLONE_FILES: the child's new descriptor %d is not ours", FD_FROM_CHILD);
	close(FD_FROM_CHILD);
	finish(fs_kid, "CLONE_FS");
	CR_CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, sub_path),
		 "CLONE_FS: the child's chdir did not move us (cwd %s)", cwd);
	old = umask(0022);
	CR_EXPECT_EQ("CLONE_FS: umask set by the child", old, 0077);
	return cr_report();
}
