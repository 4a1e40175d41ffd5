#define LOG_PREFIX "files: "
/*
 * Descriptors whose object is not the tree's own. A launcher that owns the
 * job's stdio (pipes it created) declares them at dump with --external ID,
 * ID being the descriptor's link as /proc shows it ("pipe:[1234]", a path);
 * nothing of them is saved but that id. At restore it hands in whatever now
 * plays that part with --inherit-fd N:ID, and every descriptor that was ID
 * becomes a dup of the restorer's N.
 *
 * Undeclared, a pipe with an end held outside the tree would come back as a
 * pipe of its own, cut from its other side: the dump refuses it.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cr.h"
#include "files.h"
#include "log.h"
#include "util.h"

struct pipe_ends {
	uint64_t ino;
	bool r, w;			/* an end of that kind is held in the tree */
	pid_t pid;			/* one holder, for messages */
	int fd;
};

bool external_declared(const struct file_seen *fs, const char *link)
{
	for (int i = 0; fs->opts && i < fs->opts->nr_externals; i++)
		if (!strcmp(fs->opts->externals[i], link))
			return true;
	return false;
}

void external_note_pipe(struct file_seen *fs, uint64_t ino, uint32_t flags, pid_t pid, int fd)
{
	struct pipe_ends *p = NULL;

	for (int i = 0; i < fs->nr_pipe_ends && !p; i++)
		if (fs->pipe_ends[i].ino == ino)
			p = &fs->pipe_ends[i];
	if (!p) {
		fs->pipe_ends = xrealloc(fs->pipe_ends, (fs->nr_pipe_ends + 1) * sizeof(*p));
		p = &fs->pipe_ends[fs->nr_pipe_ends++];
		*p = (struct pipe_ends){ .ino = ino, .pid = pid, .fd = fd };
	}
	if ((flags & O_ACCMODE) == O_RDONLY)
		p->r = true;
	else
		p->w = true;
}

static bool in_tree(const struct file_seen *fs, pid_t pid)
{
	return fs->tree && pstree_find(fs->tree, pid);
}

/* Does process pid (outside the tree) hold a descriptor of pipe ino? */
static int holds_pipe(pid_t pid, uint64_t ino, int *fd_out)
{
	char path[64], link[320], want[48];
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	snprintf(want, sizeof(want), "pipe:[%llu]", (unsigned long long)ino);
	d = opendir(path);
	if (!d)
		return 0;	/* gone, or a kernel thread */
	while ((de = readdir(d))) {
		char target[64];
		ssize_t n;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, want)) {
			*fd_out = atoi(de->d_name);
			return 1;
		}
	}
	return 0;
}

/* Pipes missing an end in the tree: is that end held by someone else? */
int external_check(struct file_seen *fs)
{
	_cleanup_closedir_ DIR *proc = NULL;
	struct dirent *de;
	bool any = false;

	for (int i = 0; i < fs->nr_pipe_ends; i++)
		any |= !(fs->pipe_ends[i].r && fs->pipe_ends[i].w);
	if (!any)
		return 0;
	proc = opendir("/proc");
	if (!proc)
		return log_errno(-errno, "can't list /proc");
	while ((de = readdir(proc))) {
		pid_t pid = atoi(de->d_name);

		if (pid <= 0 || pid == getpid() || in_tree(fs, pid))
			continue;
		for (int i = 0; i < fs->nr_pipe_ends; i++) {
			struct pipe_ends *p = &fs->pipe_ends[i];
			int fd;

			if (p->r && p->w)
				continue;
			if (holds_pipe(pid, p->ino, &fd)) {
				pr_err("pid %d: fd %d: pipe:[%llu] is also held by pid %d (fd %d) outside the "
				       "tree; declare it with --external 'pipe:[%llu]'\n", p->pid, p->fd,
				       (unsigned long long)p->ino, pid, fd, (unsigned long long)p->ino);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

static int external_dump(struct fd_dump *d, FdEntry *e)
{
	(void)d;
	(void)e;
	return 0;
}

static int external_open(struct rst_ctx *rc, const FdEntry *e)
{
	const struct restore_opts *o = rc->opts;
	const char *id = e->external_id ? e->external_id : e->path;
	int fd;

	for (int i = 0; o && i < o->nr_inherit; i++) {
		if (strcmp(o->inherit[i].id, id))
			continue;
		fd = fcntl(o->inherit[i].fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return log_errno(-errno, "--inherit-fd %d:%s: descriptor %d", o->inherit[i].fd,
					 id, o->inherit[i].fd);
		return fd;
	}
	pr_err("fd %u (%s) was the external '%s': give it with --inherit-fd N:%s\n", e->fd, e->path, id,
	       id);
	return -ENOENT;
}

const struct fd_ops external_ops = { FD_KIND__FD_EXTERNAL, "external", external_dump, external_open,
				     NULL };
