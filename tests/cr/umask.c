/*
 * umask: 027 in the parent, 077 in a child, 0 in a grandchild. Each must
 * keep its own after restore, as /proc reports it and as newly created
 * files get it.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mode_t mask;

static void check_umask(const char *who)
{
	char text[16], path[PATH_MAX], name[64];
	mode_t now = umask(0);
	struct stat st;
	int fd;

	umask(now);
	if (now != mask)
		cr_fail("%s: umask %03o, was %03o", who, (unsigned)now, (unsigned)mask);
	if (!cr_status_field("/proc/self/status", "Umask", text, sizeof(text)) ||
	    strtoul(text, NULL, 8) != mask)
		cr_fail("%s: /proc Umask '%s', expected %04o", who, text, (unsigned)mask);
	snprintf(name, sizeof(name), "file-of-%s", who);
	cr_path(path, sizeof(path), name);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
	if (fd < 0 || fstat(fd, &st)) {
		cr_fail("%s: create '%s': %s", who, path, strerror(errno));
	} else if ((st.st_mode & 0777) != (0666 & ~mask)) {
		cr_fail("%s: new file mode %03o, expected %03o", who, st.st_mode & 0777,
			0666 & ~mask);
	}
	if (fd >= 0)
		close(fd);
}

static void __attribute__((noreturn)) run_child(const char *who, mode_t m, bool fork_more)
{
	static const char *const roles[] = { "grandchild" };
	pid_t kid = 0;

	mask = m;
	umask(m);
	if (fork_more) {
		kid = cr_spawn("grandchild");
		if (kid == 0)
			run_child("grandchild", 0, false);
	}
	cr_child_ready();
	cr_wait_term();
	check_umask(who);
	if (kid)
		cr_finish_children(&kid, roles, 1);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	kid = cr_spawn("child");
	if (kid == 0)
		run_child("child", 077, true);
	mask = 027;
	umask(mask);
	cr_ready();
	cr_wait_term();
	check_umask("parent");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
