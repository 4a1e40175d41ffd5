/*
 * Working directory and root: the parent works in a directory with a space
 * in its name; a child is chrooted into another directory and works in a
 * subdirectory of it. Both must be the same directories after restore,
 * checked by inode, by path and by reading a file through the new root.
 */
#include "crtest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER "restored root marker\n"

struct place {
	dev_t cwd_dev, root_dev;
	ino_t cwd_ino, root_ino;
	char cwd[PATH_MAX];
};

static struct place was;
static char child_links[2][PATH_MAX];

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		cr_die("mkdir '%s': %s", path, strerror(errno));
}

static void where(struct place *p)
{
	struct stat cwd, root;

	if (stat(".", &cwd) || stat("/", &root) || !getcwd(p->cwd, sizeof(p->cwd)))
		cr_fail("stat/getcwd: %s", strerror(errno));
	p->cwd_dev = cwd.st_dev;
	p->cwd_ino = cwd.st_ino;
	p->root_dev = root.st_dev;
	p->root_ino = root.st_ino;
}

static void compare(const char *who)
{
	struct place now;

	where(&now);
	if (strcmp(now.cwd, was.cwd))
		cr_fail("%s: cwd '%s', was '%s'", who, now.cwd, was.cwd);
	if (now.cwd_dev != was.cwd_dev || now.cwd_ino != was.cwd_ino)
		cr_fail("%s: cwd inode %lu, was %lu", who, (unsigned long)now.cwd_ino,
			(unsigned long)was.cwd_ino);
	if (now.root_dev != was.root_dev || now.root_ino != was.root_ino)
		cr_fail("%s: root inode %lu, was %lu", who, (unsigned long)now.root_ino,
			(unsigned long)was.root_ino);
}

static void read_links(pid_t pid, char out[2][PATH_MAX])
{
	const char *names[2] = { "cwd", "root" };

	for (int i = 0; i < 2; i++) {
		char path[64];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, names[i]);
		n = readlink(path, out[i], PATH_MAX - 1);
		if (n < 0)
			cr_fail("readlink %s: %s", path, strerror(errno));
		out[i][n < 0 ? 0 : n] = '\0';
	}
}

static void __attribute__((noreturn)) jailed_child(const char *root)
{
	char text[64] = "";
	FILE *f;

	if (chroot(root) || chdir("/inner"))
		cr_die("chroot '%s': %s", root, strerror(errno));
	where(&was);
	cr_child_ready();
	cr_wait_term();
	compare("chrooted child");
	CR_CHECK(!strcmp(was.cwd, "/inner"), "chrooted child: cwd '%s'", was.cwd);
	f = fopen("/marker", "re");
	if (!f || !fgets(text, sizeof(text), f) || strcmp(text, MARKER))
		cr_fail("chrooted child: /marker unreadable or wrong ('%s')", text);
	if (f)
		fclose(f);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "chrooted" };
	char cwd_dir[PATH_MAX], root_dir[PATH_MAX], path[PATH_MAX + 16], links[2][PATH_MAX];
	FILE *f;
	pid_t kid;

	cr_init(argc, argv);
	cr_path(cwd_dir, sizeof(cwd_dir), "work dir");
	cr_path(root_dir, sizeof(root_dir), "root");
	make_dir(cwd_dir);
	snprintf(path, sizeof(path), "%s/sub", cwd_dir);
	make_dir(path);
	make_dir(root_dir);
	snprintf(path, sizeof(path), "%s/inner", root_dir);
	make_dir(path);
	snprintf(path, sizeof(path), "%s/marker", root_dir);
	f = fopen(path, "we");
	if (!f || fputs(MARKER, f) < 0 || fclose(f))
		cr_die("can't write '%s'", path);
	kid = cr_spawn("chrooted");
	if (kid == 0)
		jailed_child(root_dir);
	snprintf(path, sizeof(path), "%s/sub", cwd_dir);
	if (chdir(path))
		cr_die("chdir '%s': %s", path, strerror(errno));
	where(&was);
	read_links(kid, child_links);
	cr_ready();
	cr_wait_term();
	compare("parent");
	read_links(getpid(), links);
	if (strcmp(links[0], was.cwd) || strcmp(links[1], "/"))
		cr_fail("parent: /proc/self/cwd '%s' root '%s'", links[0], links[1]);
	read_links(kid, links);
	for (int i = 0; i < 2; i++)
		if (strcmp(links[i], child_links[i]))
			cr_fail("child's /proc %s link '%s', was '%s'", i ? "root" : "cwd", links[i],
				child_links[i]);
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
