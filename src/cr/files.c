#define LOG_PREFIX "files: "
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <string.h>
#include <linux/kcmp.h>
#include <inttypes.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "cr.h"
#include "files.h"
#include "image.h"
#include "log.h"
#include "sk-inet.h"
#include "util.h"

/* Character devices that carry no state and can simply be opened again. */
static bool stateless_chrdev(dev_t rdev)
{
	static const struct { unsigned maj, min; } ok[] = {
		{ 1, 3 } /* null */, { 1, 5 } /* zero */, { 1, 7 } /* full */,
		{ 1, 8 } /* random */, { 1, 9 } /* urandom */,
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (major(rdev) == ok[i].maj && minor(rdev) == ok[i].min)
			return true;
	return false;
}

/*
 * Descriptors that share one open file description (dup, fork) share an id.
 * Descriptions met so far sit in a binary tree (tsearch) ordered by device,
 * inode, then by kcmp(KCMP_FILE), which orders descriptions as well as it
 * tells them apart (0 same, 1 less, 2 greater): finding a descriptor's
 * description takes O(log n) comparisons, kcmp only between descriptions of
 * one inode.
 */
struct file_key {
	pid_t pid;
	int fd;
	uint64_t dev, ino;
	uint32_t id;
};

static int kcmp_errno;		/* set when a comparison could not be made */

static int cmp_file_key(const void *pa, const void *pb)
{
	const struct file_key *a = pa, *b = pb;
	long r;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	r = syscall(SYS_kcmp, a->pid, b->pid, KCMP_FILE, a->fd, b->fd);
	if (r < 0 && !kcmp_errno)
		kcmp_errno = errno;
	return r == 0 ? 0 : r == 1 ? -1 : 1;
}

static int file_id(struct file_seen *fs, pid_t pid, int fd, const struct stat *st, uint32_t *id)
{
	struct file_key *k = xmalloc(sizeof(*k)), **found;

	*k = (struct file_key){ pid, fd, st->st_dev, st->st_ino, fs->next_id };
	kcmp_errno = 0;
	found = tsearch(k, &fs->by_desc, cmp_file_key);
	if (!found)
		abort();	/* out of memory, as xmalloc */
	if (kcmp_errno) {
		if (*found == k)
			tdelete(k, &fs->by_desc, cmp_file_key);
		free(k);
		return log_errno(-kcmp_errno, "pid %d: fd %d: kcmp(KCMP_FILE)", pid, fd);
	}
	if (*found != k) {
		free(k);
		*id = (*found)->id;
		return 0;
	}
	*id = fs->next_id++;
	return 0;
}

const char *fdinfo_field(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, n) && l[n] == ':')
			return l + n + 1;
	return NULL;
}

enum { LOCK_FLOCK = 1, LOCK_POSIX = 2, LOCK_OFD = 3 };

/*
 * Locks this descriptor shows in its fdinfo: flock and OFD locks of its
 * open file description, POSIX locks its process owns on the file.
 */
static int dump_locks(struct fd_dump *d, FdEntry *e)
{
	for (const char *l = d->fdinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char kind[16], adv[16], type[16], end[32];
		long long start;
		FileLock *fl;

		if (strncmp(l, "lock:", 5))
			continue;
		if (sscanf(l, "lock: %*d: %15s %15s %15s %*d %*s %lld %31s", kind, adv, type, &start,
			   end) != 5 || strcmp(adv, "ADVISORY") || strcmp(type, "UNLCK") == 0) {
			pr_err("pid %d: fd %d (%s): lock '%.*s' is not supported\n", d->pid, d->fd, d->target,
			       (int)strcspn(l, "\n"), l);
			return -EOPNOTSUPP;
		}
		fl = xmalloc(sizeof(*fl));
		file_lock__init(fl);
		e->locks = xrealloc(e->locks, (e->n_locks + 1) * sizeof(*e->locks));
		e->locks[e->n_locks++] = fl;
		fl->kind = !strcmp(kind, "FLOCK") ? LOCK_FLOCK : !strcmp(kind, "OFDLCK") ? LOCK_OFD :
			   !strcmp(kind, "POSIX") ? LOCK_POSIX : 0;
		if (!fl->kind) {
			pr_err("pid %d: fd %d (%s): a %s lock is not supported\n", d->pid, d->fd, d->target, kind);
			return -EOPNOTSUPP;
		}
		fl->write = !strcmp(type, "WRITE");
		fl->start = start;
		fl->len = strcmp(end, "EOF") ? strtoll(end, NULL, 10) - start + 1 : 0;
	}
	return 0;
}

/* flock and OFD locks belong to the description: taken here, by the restorer. */
static int restore_desc_locks(const FdEntry *e, int fd)
{
	for (size_t i = 0; i < e->n_locks; i++) {
		const FileLock *l = e->locks[i];
		struct flock fl = { .l_type = l->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
				    .l_start = l->start, .l_len = l->len };
		int r = 0;

		if (l->kind == LOCK_FLOCK)
			r = flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
		else if (l->kind == LOCK_OFD)
			r = fcntl(fd, F_OFD_SETLK, &fl);
		if (r < 0)
			return log_errno(-errno, "fd %u: can't lock '%s' again", e->fd, e->path);
	}
	return 0;
}

/* POSIX locks belong to the process: taken in it, once its descriptors are in place. */
static int reg_in_child(struct rst_ctx *rc, const FdEntry *e)
{
	(void)rc;
	for (size_t i = 0; i < e->n_locks; i++) {
		const FileLock *l = e->locks[i];
		struct flock fl = { .l_type = l->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
				    .l_start = l->start, .l_len = l->len };

		if (l->kind == LOCK_POSIX && fcntl(e->fd, F_SETLK, &fl) < 0)
			return log_errno(-errno, "fd %u: can't take the POSIX lock on '%s' at %" PRIu64
					 " again", e->fd, e->path, l->start);
	}
	return 0;
}

static int reg_dump(struct fd_dump *d, FdEntry *e)
{
	struct stat pst;
	char src[64], tp[PATH_MAX_LEN + 32];
	int ret = dump_locks(d, e);

	if (ret < 0)
		return ret;
	if (S_ISREG(d->st.st_mode) && (d->st.st_nlink == 0 || link_is_deleted(d->target))) {
		snprintf(src, sizeof(src), "/proc/%d/fd/%d", d->pid, d->fd);
		e->has_ghost_id = true;
		return ghost_dump(d->fs, d->dirfd, d->dir, d->pid, src, d->target, &e->ghost_id);
	}
	if (d->target[0] != '/' || stat(ns_tree_path(d->target, tp, sizeof(tp)), &pst) < 0 ||
	    pst.st_ino != d->st.st_ino ||
	    pst.st_dev != d->st.st_dev) {
		pr_err("pid %d: fd %d: '%s' is deleted or not reachable by its name; not supported yet\n",
		       d->pid, d->fd, d->target);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int path_open(struct rst_ctx *rc, const FdEntry *e);

static const struct fd_ops reg_ops = { FD_KIND__FD_REG, "file", reg_dump, path_open, reg_in_child };
static const struct fd_ops chr_ops = { FD_KIND__FD_CHR, "device", NULL, path_open, NULL };

static const struct fd_ops *const all_ops[] = {
	&reg_ops, &chr_ops, &pipe_ops, &fifo_ops, &eventfd_ops, &epoll_ops,
	&signalfd_ops, &timerfd_ops, &inotify_ops, &external_ops, &mqueue_ops, &tty_ops,
	&unixsk_ops, &inet_ops, &netlink_ops,
};

static const struct fd_ops *ops_of(FdKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(all_ops); i++)
		if (all_ops[i]->kind == kind)
			return all_ops[i];
	return NULL;
}

/* What the descriptor is, from its link and its inode; NULL: not supported. */
static const struct fd_ops *classify(const struct fd_dump *d)
{
	static const struct { const char *link; const struct fd_ops *ops; } anon[] = {
		{ "anon_inode:[eventfd]", &eventfd_ops }, { "anon_inode:[eventpoll]", &epoll_ops },
		{ "anon_inode:[signalfd]", &signalfd_ops }, { "anon_inode:[timerfd]", &timerfd_ops },
		{ "anon_inode:inotify", &inotify_ops },
	};
	mode_t fmt = d->st.st_mode & S_IFMT;

	if (external_declared(d->fs, d->target))
		return &external_ops;
	if (!strncmp(d->target, "pipe:[", 6) && fmt == S_IFIFO)
		return &pipe_ops;
	if (fmt == S_IFSOCK && sk_classify(d))	/* inet, netlink (sk_dump_prepare() saw them) */
		return sk_classify(d);
	if (d->target[0] == '/') {
		if (fmt == S_IFIFO)
			return &fifo_ops;
		if (fd_is_mqueue(d))
			return &mqueue_ops;
		if (fmt == S_IFCHR && tty_chrdev(d->st.st_rdev))
			return &tty_ops;
		if (fmt == S_IFCHR && stateless_chrdev(d->st.st_rdev))
			return &chr_ops;
		if (fmt == S_IFREG || fmt == S_IFDIR)
			return &reg_ops;
		return NULL;
	}
	if (fmt == S_IFSOCK && unix_sk_known(d->fs, d->pid, d->st.st_ino))
		return &unixsk_ops;
	for (size_t i = 0; i < ARRAY_SIZE(anon); i++)
		if (!strcmp(d->target, anon[i].link))
			return anon[i].ops;
	return NULL;
}

static int dump_one_fd(struct dump_ctx *c, int fd, FdEntry *e)
{
	struct file_seen *fs = c->files;
	pid_t pid = c->it->pid;
	char link[64];
	_cleanup_free_ char *target = NULL;
	struct fd_dump d = { .fs = fs, .dirfd = c->dirfd, .dir = c->dir, .pid = pid, .fd = fd };
	const struct fd_ops *ops;
	struct proc_fdinfo fi;
	uint32_t seen = fs->next_id;
	int ret;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	if ((ret = read_link(link, &target)) < 0)
		return log_errno(ret, "pid %d: can't read fd %d", pid, fd);
	if (stat(link, &d.st) < 0)
		return log_errno(-errno, "pid %d: fd %d (%s): can't stat", pid, fd, target);
	if ((ret = proc_parse_fdinfo(pid, fd, &fi)) < 0)
		return ret;
	d.target = target;
	ops = classify(&d);
	if (!ops) {
		pr_err("pid %d: fd %d: '%s' is not supported yet\n", pid, fd, target);
		return -EOPNOTSUPP;
	}
	fd_entry__init(e);
	e->fd = fd;
	e->kind = ops->kind;
	e->flags = fi.flags;
	e->pos = fi.pos;
	e->has_dev = e->has_ino = e->has_mode = e->has_rdev = true;
	e->dev = d.st.st_dev;
	e->ino = d.st.st_ino;
	e->mode = d.st.st_mode;
	e->rdev = d.st.st_rdev;
	if ((ret = file_id(fs, pid, fd, &d.st, &e->file_id)) < 0)
		return ret;
	if (ops->kind == FD_KIND__FD_PIPE)
		external_note_pipe(fs, d.st.st_ino, fi.flags, pid, fd);
	d.first = fs->next_id != seen;
	if (ops->dump) {
		snprintf(link, sizeof(link), "fdinfo/%d", fd);
		if ((ret = read_proc_file(pid, 0, link, &d.fdinfo)) < 0)
			return log_errno(ret, "can't read /proc/%d/fdinfo/%d", pid, fd);
		ret = ops->dump(&d, e);
		free(d.fdinfo);
		if (ret < 0)
			return ret;
	}
	e->path = TAKE_PTR(target);
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int list_fds(pid_t pid, int **out, int *nr)
{
	char path[64];
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return log_errno(-errno, "pid %d: can't list %s", pid, path);
	int cap = 0;

	*out = NULL;
	*nr = 0;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (*nr == cap) {	/* doubling: thousands of descriptors are no rare sight */
			cap = cap ? 2 * cap : 64;
			*out = xrealloc(*out, cap * sizeof(int));
		}
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
		ret = dump_one_fd(c, fds[i], fe->fds[i]);
	}
	if (!ret)
		ret = tty_dump_ctty(c, fe);
	if (!ret)
		ret = img_write_one(c->dirfd, c->dir, IMG_FDS, c->it->pid, &fe->base);
	protobuf_c_message_free_unpacked(&fe->base, NULL);
	return ret;
}

int dump_files_finish(struct file_seen *fs, int dirfd, const char *dir)
{
	int ret = anon_dump_finish(fs);

	if (!ret)
		ret = external_check(fs);
	if (!ret)
		ret = ttys_dump_check_outside(fs);
	if (!ret)
		ret = unix_dump_finish(fs, dirfd, dir);
	if (!ret)
		ret = ghosts_dump_finish(fs, dirfd, dir);
	if (!ret)
		ret = sk_dump_finish(fs, dirfd, dir);
	return ret ? ret : pipes_dump_finish(fs, dirfd, dir);
}

void dump_files_free(struct file_seen *fs)
{
	for (int i = 0; i < fs->nr_pipes; i++)
		protobuf_c_message_free_unpacked(&fs->pipes[i]->base, NULL);
	free(fs->pipes);
	for (int i = 0; i < fs->nr_ghosts; i++)
		protobuf_c_message_free_unpacked(&fs->ghosts[i]->base, NULL);
	free(fs->ghosts);
	free(fs->epolls);
	free(fs->pipe_ends);
	tdestroy(fs->by_desc, free);
	fs->by_desc = NULL;
	free(fs->ttys);
	ttys_dump_free(fs);
	unix_dump_free(fs);
	sk_dump_free(fs);
}

/*
 * Open one description by its path the way the dumped one was, and check it
 * is the same file. An unlinked file or memfd is opened again through the
 * restorer's descriptor of its recreated copy.
 */
static int path_open(struct rst_ctx *rc, const FdEntry *e)
{
	int flags = e->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_CLOEXEC);
	const char *path = e->path;
	struct stat st;
	int fd;

	if (e->has_ghost_id) {
		if (ghost_fd(rc, e->ghost_id, &path) < 0)
			return -ENOENT;
		/* Reopened through the restorer's /proc/self/fd link, which
		 * O_NOFOLLOW refuses with ELOOP (mkstemp() in Python passes
		 * it), and O_TMPFILE (with its O_DIRECTORY bit) with ENOTDIR.
		 * Both act only at open: the description is the same. */
		flags &= ~(O_NOFOLLOW | O_TMPFILE);
	}
	fd = open(path, flags | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "fd %u: can't open '%s'", e->fd, e->path);
	if (fstat(fd, &st) < 0 || ((st.st_mode & S_IFMT) != (e->mode & S_IFMT)) ||
	    (e->kind == FD_KIND__FD_REG && !e->has_ghost_id && !mnt_dev_recreated(rc, e->dev) &&
	     (st.st_ino != e->ino || st.st_dev != e->dev))) {
		close(fd);
		pr_err("fd %u: '%s' is no longer the file that was dumped\n", e->fd, e->path);
		return -ESTALE;
	}
	if (e->kind == FD_KIND__FD_REG && !(e->flags & O_PATH) && lseek(fd, e->pos, SEEK_SET) < 0) {
		int err = log_errno(-errno, "fd %u: can't seek '%s' to %llu", e->fd, e->path,
				    (unsigned long long)e->pos);
		close(fd);
		return err;
	}
	if (restore_desc_locks(e, fd) < 0) {
		close(fd);
		return -EAGAIN;
	}
	return fd;
}

static int highest_fd(struct rst_ctx *rc)
{
	int top = 2;

	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;
		for (size_t k = 0; fds && k < fds->n_fds; k++)
			top = max_t(int, top, (int)fds->fds[k]->fd);
	}
	return top;
}

static int cmp_rst_file(const void *a, const void *b)
{
	uint32_t x = ((const struct rst_file *)a)->id, y = ((const struct rst_file *)b)->id;

	return x < y ? -1 : x > y;
}

/* rc->files is sorted by id (restore_files_prepare opens them in id order). */
static struct rst_file *find_file(struct rst_ctx *rc, uint32_t id)
{
	struct rst_file key = { .id = id };

	return rc->nr_files ? bsearch(&key, rc->files, rc->nr_files, sizeof(key), cmp_rst_file) : NULL;
}

/* Every descriptor of the tree, by (file id, place in the tree): the first of each id opens it. */
struct fd_ref {
	uint32_t id;
	uint32_t seq;
	FdEntry *e;
};

static int cmp_fd_ref(const void *a, const void *b)
{
	const struct fd_ref *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Room for every description above the tasks' own descriptor numbers. */
static int make_room(int need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return log_errno(-errno, "getrlimit(RLIMIT_NOFILE)");
	if ((rlim_t)need <= rl.rlim_cur)
		return 0;
	if ((rlim_t)need > rl.rlim_max) {
		pr_err("restoring needs %d descriptors, RLIMIT_NOFILE allows %llu\n", need,
		       (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? log_errno(-errno, "setrlimit(RLIMIT_NOFILE)") : 0;
}

/* Open one description, above base, and append it to rc->files (kept sorted by id). */
static int open_description(struct rst_ctx *rc, FdEntry *e, int base)
{
	const struct fd_ops *ops = ops_of(e->kind);
	struct rst_file *f = &rc->files[rc->nr_files];
	int fd;

	if (!ops) {
		pr_err("fd %u: unknown kind %d in the image\n", e->fd, e->kind);
		return -EINVAL;
	}
	fd = ops->open(rc, e);
	if (fd < 0)
		return fd;
	f->id = e->file_id;
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, base);
	close(fd);
	if (f->fd < 0)
		return log_errno(-errno, "can't move the descriptor of '%s'", e->path);
	rc->files_end = max_t(int, rc->files_end, f->fd + 1);
	rc->nr_files++;
	return 0;
}

int restore_files_prepare(struct rst_ctx *rc)
{
	int base = highest_fd(rc) + 1, n = 0, ret = pipes_restore_load(rc);

	if (!ret)
		ret = ghosts_restore_load(rc);
	if (!ret)
		ret = unix_restore_prepare(rc);
	if (!ret)
		ret = sk_restore_load(rc);
	if (ret < 0)
		return ret;

	for (int i = 0; i < rc->tree.nr; i++)
		n += rc->tasks[i].fds ? rc->tasks[i].fds->n_fds : 0;
	rc->files = xzalloc((n + 1) * sizeof(*rc->files));
	_cleanup_free_ struct fd_ref *refs = xmalloc((n + 1) * sizeof(*refs));
	n = 0;
	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;

		for (size_t k = 0; fds && k < fds->n_fds; k++, n++)
			refs[n] = (struct fd_ref){ fds->fds[k]->file_id, n, fds->fds[k] };
	}
	/* Ids were given in order of first appearance: this is the dump's order. */
	qsort(refs, n, sizeof(*refs), cmp_fd_ref);
	/*
	 * Above the tasks' own numbers: one descriptor per description, and
	 * room for the pipe ends and ghosts held meanwhile, in case the numbers
	 * below are all taken, and a few more (the children's pipe and log).
	 */
	int descs = 0;
	for (int r = 0; r < n; r++)
		descs += !r || refs[r - 1].id != refs[r].id;
	ret = make_room(base + descs + 2 * rc->nr_pipes + rc->nr_ghosts + 16 + ttys_restore_fd_need(rc));
	/* Every pty pair first, with its index. */
	if (!ret)
		ret = ttys_restore_prepare(rc);
	if (ret < 0)
		return ret;
	for (int r = 0; r < n; r++) {
		if (r && refs[r - 1].id == refs[r].id)
			continue;
		ret = open_description(rc, refs[r].e, base);
		if (ret < 0)
			return ret;
	}
	rc->files_end = max_t(int, rc->files_end, base);
	ret = ttys_restore_lock(rc);
	return ret ? ret : sk_restore_finish(rc);
}

void restore_files_release(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_files; i++)
		close(rc->files[i].fd);
	free(rc->files);
	rc->files = NULL;
	rc->nr_files = 0;
	pipes_restore_release(rc);
	ttys_restore_release(rc);
	unix_restore_release(rc);
	sk_restore_release(rc);
}

/* Which descriptor numbers below top the task gets: one byte each. */
static uint8_t *target_fd_map(FdsEntry *fds, int top)
{
	uint8_t *map = xzalloc(top + 1);

	for (size_t i = 0; i < fds->n_fds; i++)
		if ((int)fds->fds[i]->fd < top)
			map[fds->fds[i]->fd] = 1;
	return map;
}

/*
 * Runs in the restored child. dup3() from the restorer's copies keeps one
 * open file description per dumped one, shared as it was.
 */
int restore_fds_in_child(struct rst_ctx *rc, FdsEntry *fds, int *nfd)
{
	int top;

	*nfd = fcntl(*nfd, F_DUPFD_CLOEXEC, rc->files_end);
	cr_log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, rc->files_end);
	if (*nfd < 0 || cr_log_fd < 0)
		return -EMFILE;
	for (size_t i = 0; i < fds->n_fds; i++) {
		FdEntry *e = fds->fds[i];
		struct rst_file *f = find_file(rc, e->file_id);

		if (!f || dup3(f->fd, e->fd, e->flags & O_CLOEXEC) < 0)
			return log_errno(f ? -errno : -ENOENT, "fd %u: can't install '%s'", e->fd, e->path);
	}
	/* Everything else inherited from crtool goes, whatever its number. */
	top = max_t(int, *nfd, cr_log_fd);
	_cleanup_free_ uint8_t *target = target_fd_map(fds, top);
	for (int fd = 0; fd < top; fd++)
		if (fd != *nfd && fd != cr_log_fd && !target[fd])
			close(fd);
	if (syscall(SYS_close_range, top + 1, ~0U, 0) < 0)
		return log_errno(-errno, "close_range");
	for (size_t i = 0; i < fds->n_fds; i++) {
		const struct fd_ops *ops = ops_of(fds->fds[i]->kind);
		int ret = ops && ops->in_child ? ops->in_child(rc, fds->fds[i]) : 0;

		if (ret < 0)
			return ret;
	}
	return 0;
}
