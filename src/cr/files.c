#define LOG_PREFIX "files: "
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cr.h"
#include "image.h"
#include "log.h"
#include "util.h"

/* Character devices that carry no state and can simply be opened again. */
static bool stateless_chrdev(dev_t rdev)
{
	static const struct { unsigned maj, min; } ok[] = {
		{ 1, 3 } /* null */, { 1, 5 } /* zero */, { 1, 7 } /* full */,
		{ 1, 8 } /* random */, { 1, 9 } /* urandom */, { 5, 0 } /* tty */,
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (major(rdev) == ok[i].maj && minor(rdev) == ok[i].min)
			return true;
	return false;
}

static int dump_one_fd(pid_t pid, int fd, FdEntry *e)
{
	char link[64];
	_cleanup_free_ char *target = NULL;
	struct proc_fdinfo fi;
	struct stat st, pst;
	int ret;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	if ((ret = read_link(link, &target)) < 0)
		return log_errno(ret, "pid %d: can't read fd %d", pid, fd);
	if (stat(link, &st) < 0)
		return log_errno(-errno, "pid %d: fd %d (%s): can't stat", pid, fd, target);
	if ((ret = proc_parse_fdinfo(pid, fd, &fi)) < 0)
		return ret;
	fd_entry__init(e);
	e->fd = fd;
	e->flags = fi.flags;
	e->pos = fi.pos;
	e->has_dev = e->has_ino = e->has_mode = e->has_rdev = true;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->mode = st.st_mode;
	e->rdev = st.st_rdev;
	if (S_ISCHR(st.st_mode) && stateless_chrdev(st.st_rdev) && target[0] == '/') {
		e->kind = FD_KIND__FD_CHR;
	} else if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && target[0] == '/') {
		e->kind = FD_KIND__FD_REG;
		/* It must be reachable by name, as the same file, at restore. */
		if (stat(target, &pst) < 0 || pst.st_ino != st.st_ino || pst.st_dev != st.st_dev) {
			pr_err("pid %d: fd %d: '%s' is deleted or not reachable by its name; not supported yet\n",
			       pid, fd, target);
			return -EOPNOTSUPP;
		}
	} else {
		pr_err("pid %d: fd %d: '%s' is not supported yet\n", pid, fd, target);
		return -EOPNOTSUPP;
	}
	e->path = TAKE_PTR(target);
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_fds(pid_t pid, int **out, int *nr)
{
	char path[64];
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return log_errno(-errno, "pid %d: can't list %s", pid, path);
	*out = NULL;
	*nr = 0;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		*out = xrealloc(*out, (*nr + 1) * sizeof(int));
		(*out)[(*nr)++] = atoi(de->d_name);
	}
	qsort(*out, *nr, sizeof(int), cmp_int);
	return 0;
}

int dump_task_fds(struct dump_ctx *c)
{
	FdsEntry *fe = xmalloc(sizeof(*fe));
	_cleanup_free_ int *fds = NULL;
	int n = 0, ret;

	fds_entry__init(fe);
	ret = list_fds(c->it->pid, &fds, &n);
	if (!ret)
		fe->fds = xzalloc((n + 1) * sizeof(*fe->fds));
	for (int i = 0; i < n && !ret; i++) {
		fe->fds[i] = xmalloc(sizeof(FdEntry));
		fd_entry__init(fe->fds[i]);
		fe->n_fds++;
		ret = dump_one_fd(c->it->pid, fds[i], fe->fds[i]);
	}
	if (!ret)
		ret = img_write_one(c->dirfd, c->dir, IMG_FDS, c->it->pid, &fe->base);
	protobuf_c_message_free_unpacked(&fe->base, NULL);
	return ret;
}

/* Runs in the restored child: no logging to our stdout once fds are replaced. */
static int open_one_fd(const FdEntry *e)
{
	int flags = e->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY);
	int fd = open(e->path, flags | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return log_errno(-errno, "fd %u: can't open '%s'", e->fd, e->path);
	if (fstat(fd, &st) < 0 || ((st.st_mode & S_IFMT) != (e->mode & S_IFMT)) ||
	    (e->kind == FD_KIND__FD_REG && (st.st_ino != e->ino || st.st_dev != e->dev))) {
		close(fd);
		pr_err("fd %u: '%s' is no longer the file that was dumped\n", e->fd, e->path);
		return -ESTALE;
	}
	if (fd != (int)e->fd) {
		int nfd = dup3(fd, e->fd, flags & O_CLOEXEC);
		close(fd);
		if (nfd < 0)
			return log_errno(-errno, "fd %u: can't dup '%s'", e->fd, e->path);
	}
	if (e->kind == FD_KIND__FD_REG && !S_ISDIR(st.st_mode) &&
	    lseek(e->fd, e->pos, SEEK_SET) < 0)
		return log_errno(-errno, "fd %u: can't seek '%s' to %llu", e->fd, e->path,
				 (unsigned long long)e->pos);
	return 0;
}

int restore_fds_in_child(FdsEntry *fds, int keep_fd)
{
	for (size_t i = 0; i < fds->n_fds; i++) {
		int ret;

		if ((int)fds->fds[i]->fd == keep_fd) {
			pr_err("fd %u collides with the restorer's own descriptor\n", fds->fds[i]->fd);
			return -EBUSY;
		}
		ret = open_one_fd(fds->fds[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}
