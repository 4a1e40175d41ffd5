/*
 * Mount namespaces crtool must refuse (built three times, the kind is the
 * argument): `bind` a bind mount of a host directory, `mqueue` an mqueue
 * filesystem, `size` a tmpfs holding more than the dump's
 * --max-tmpfs-size. The runner requires the dump to fail with a clear
 * message (refuse= of the sidecar) and the tree to be left running; this
 * checks that the mount and its content are still as they were.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994
#define MQUEUE_MAGIC 0x19800202
#define BIG (2UL << 20)

static char mp[2048];

static void check_mount(const char *kind)
{
	struct statfs sf;
	struct stat st;
	char src[4096];

	if (statfs(mp, &sf) < 0) {
		cr_fail("statfs %s: %s", mp, strerror(errno));
		return;
	}
	if (!strcmp(kind, "bind")) {
		snprintf(src, sizeof(src), "%s/file", mp);
		CR_CHECK(stat(src, &st) == 0 && st.st_size == 5, "the bind mount lost %s", src);
	} else if (!strcmp(kind, "mqueue")) {
		CR_CHECK(sf.f_type == MQUEUE_MAGIC, "%s is no longer an mqueue filesystem", mp);
	} else {
		snprintf(src, sizeof(src), "%s/big", mp);
		CR_CHECK(sf.f_type == TMPFS_MAGIC && stat(src, &st) == 0 && st.st_size == (off_t)BIG,
			 "the tmpfs at %s lost its content", mp);
	}
}

static void setup(const char *kind)
{
	static char buf[BIG];
	char src[4096];
	int fd;

	cr_path(mp, sizeof(mp), "mnt");
	if (mkdir(mp, 0755) < 0)
		cr_die("mkdir %s: %s", mp, strerror(errno));
	if (!strcmp(kind, "bind")) {
		cr_path(src, sizeof(src), "src");
		if (mkdir(src, 0755) < 0)
			cr_die("mkdir %s: %s", src, strerror(errno));
		cr_path(src, sizeof(src), "src/file");
		fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "hello", 5) != 5)
			cr_die("%s: %s", src, strerror(errno));
		close(fd);
		cr_path(src, sizeof(src), "src");
		if (mount(src, mp, NULL, MS_BIND, NULL) < 0)
			cr_die("bind mount %s: %s", mp, strerror(errno));
	} else if (!strcmp(kind, "mqueue")) {
		if (mount("mqueue", mp, "mqueue", 0, NULL) < 0)
			cr_die("mount mqueue on %s: %s", mp, strerror(errno));
	} else if (!strcmp(kind, "size")) {
		if (mount("big", mp, "tmpfs", 0, "size=8m") < 0)
			cr_die("mount tmpfs on %s: %s", mp, strerror(errno));
		snprintf(src, sizeof(src), "%s/big", mp);
		memset(buf, 0x5a, sizeof(buf));
		fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			cr_die("%s: %s", src, strerror(errno));
		close(fd);
	} else {
		cr_die("unknown kind '%s' (bind, mqueue, size)", kind);
	}
}

int main(int argc, char **argv)
{
	const char *kind;

	cr_init(argc, argv);
	kind = cr_argc() > 0 ? cr_arg(0) : "";
	setup(kind);
	cr_ready();
	cr_wait_term();
	check_mount(kind);
	return cr_report();
}
