#define LOG_PREFIX "pipes: "
/*
 * Pipes and fifos. The bytes buffered in one are read without consuming
 * them: a read end opened through /proc/PID/fd/N is tee()d into a pipe of
 * ours as large as the tree's, then read from ours. tee() keeps the packet
 * mark of the buffers an O_DIRECT writer made, and a read() stops at the
 * end of a packet: the lengths the reads return are the packets, saved with
 * the bytes and written back one by one in packet mode. The contents are
 * saved once per pipe (device and inode: a fifo's inode number can be a
 * pipe's too) in pipes.img; each descriptor only records its end, flags and
 * description. At restore the restorer creates each pipe once
 * (fifos: opens the path once read-write, which keeps opens from blocking),
 * refills it, and gives out its ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cr.h"
#include "files.h"
#include "image.h"
#include "log.h"
#include "util.h"

struct rst_pipe {
	uint64_t dev, ino;
	int ends[2];			/* pipe: read, write; fifo: ends[0] is the keeper */
	bool given[2];			/* that end's first description was handed out */
	PipeDataEntry *data;
};

static PipeDataEntry *seen_pipe(struct file_seen *fs, uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < fs->nr_pipes; i++)
		if (fs->pipes[i]->ino == ino && fs->pipes[i]->dev == dev)
			return fs->pipes[i];
	return NULL;
}

/* Our copy, one read() at a time: each read ends at a packet's end. */
static int read_pieces(struct fd_dump *d, int rfd, PipeDataEntry *pe, size_t len)
{
	pe->data.len = 0;
	pe->data.data = xmalloc(len + 1);
	while (pe->data.len < len) {
		ssize_t n = read(rfd, pe->data.data + pe->data.len, len - pe->data.len);

		if (n <= 0)
			return log_errno(n < 0 ? -errno : -EIO, "pid %d: fd %d (%s): short read of "
					 "%zu buffered bytes", d->pid, d->fd, d->target, len);
		pe->data.len += n;
		pe->packets = xrealloc(pe->packets, (pe->n_packets + 1) * sizeof(*pe->packets));
		pe->packets[pe->n_packets++] = n;
	}
	return 0;
}

/* Copy what is buffered in the pipe behind pid's fd, leaving it there. */
static int peek_pipe(struct fd_dump *d, PipeDataEntry *pe)
{
	char link[64];
	_cleanup_close_ int rfd = -1;
	int p[2] = { -1, -1 }, size, ret = 0;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
	rfd = open(link, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (rfd < 0)
		return log_errno(-errno, "pid %d: fd %d (%s): can't open a read end", d->pid, d->fd,
				 d->target);
	size = fcntl(rfd, F_GETPIPE_SZ);
	if (size < 0)
		return log_errno(-errno, "pid %d: fd %d (%s): F_GETPIPE_SZ", d->pid, d->fd, d->target);
	pe->pipe_size = size;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return log_errno(-errno, "pid %d: fd %d: can't create a pipe to copy '%s'", d->pid, d->fd,
				 d->target);
	if (fcntl(p[1], F_SETPIPE_SZ, size) < size) {
		ret = log_errno(-errno, "pid %d: fd %d: can't size a copy pipe to %d bytes", d->pid, d->fd,
				size);
		goto out;
	}
	n = tee(rfd, p[1], size, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN) {
		ret = log_errno(-errno, "pid %d: fd %d (%s): tee", d->pid, d->fd, d->target);
		goto out;
	}
	ret = read_pieces(d, p[0], pe, n > 0 ? n : 0);
out:
	close(p[0]);
	close(p[1]);
	return ret;
}

static int pipe_dump(struct fd_dump *d, FdEntry *e)
{
	PipeDataEntry *pe;
	int ret;

	(void)e;
	if (seen_pipe(d->fs, d->st.st_dev, d->st.st_ino))
		return 0;
	pe = xmalloc(sizeof(*pe));
	pipe_data_entry__init(pe);
	pe->ino = d->st.st_ino;
	pe->has_dev = true;
	pe->dev = d->st.st_dev;
	pe->has_fifo = pe->fifo = S_ISFIFO(d->st.st_mode) && d->target[0] == '/';
	ret = peek_pipe(d, pe);
	d->fs->pipes = xrealloc(d->fs->pipes, (d->fs->nr_pipes + 1) * sizeof(*d->fs->pipes));
	d->fs->pipes[d->fs->nr_pipes++] = pe;	/* freed with the others, even on error */
	return ret;
}

static int fifo_dump(struct fd_dump *d, FdEntry *e)
{
	char tp[PATH_MAX_LEN + 32];
	struct stat pst;

	if (stat(ns_tree_path(d->target, tp, sizeof(tp)), &pst) < 0 || pst.st_ino != d->st.st_ino || pst.st_dev != d->st.st_dev) {
		pr_err("pid %d: fd %d: fifo '%s' is deleted or not reachable by its name; not supported yet\n",
		       d->pid, d->fd, d->target);
		return -EOPNOTSUPP;
	}
	return pipe_dump(d, e);
}

int pipes_dump_finish(struct file_seen *fs, int dirfd, const char *dir)
{
	struct img *img = img_open_write(dirfd, dir, IMG_PIPES, 0);
	int ret = img ? 0 : -EIO;

	for (int i = 0; i < fs->nr_pipes && !ret; i++)
		ret = img_write_msg(img, &fs->pipes[i]->base);
	if (!img)
		return ret;
	if (ret) {
		img_abort(img);
		return ret;
	}
	return img_close(img);
}

/* ---- restore ---- */

static bool image_has_pipes(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;
		for (size_t k = 0; fds && k < fds->n_fds; k++)
			if (fds->fds[k]->kind == FD_KIND__FD_PIPE || fds->fds[k]->kind == FD_KIND__FD_FIFO)
				return true;
	}
	return false;
}

int pipes_restore_load(struct rst_ctx *rc)
{
	struct img *img;
	ProtobufCMessage *m;
	int ret;

	if (!image_has_pipes(rc))
		return 0;
	img = img_open_read(rc->dirfd, rc->dir, IMG_PIPES, 0);
	if (!img)
		return -ENOENT;
	while ((ret = img_read_msg(img, &pipe_data_entry__descriptor, &m)) > 0) {
		struct rst_pipe *p;

		rc->pipes = xrealloc(rc->pipes, (rc->nr_pipes + 1) * sizeof(*rc->pipes));
		p = &rc->pipes[rc->nr_pipes++];
		memset(p, 0, sizeof(*p));
		p->ends[0] = p->ends[1] = -1;
		p->data = (PipeDataEntry *)m;
		p->ino = p->data->ino;
		p->dev = p->data->dev;
	}
	img_abort(img);
	return ret;
}

void pipes_restore_release(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_pipes; i++) {
		struct rst_pipe *p = &rc->pipes[i];

		for (int k = 0; k < 2; k++)
			if (p->ends[k] >= 0)
				close(p->ends[k]);
		img_free_msg(&p->data->base);
	}
	free(rc->pipes);
	rc->pipes = NULL;
	rc->nr_pipes = 0;
}

static struct rst_pipe *find_pipe(struct rst_ctx *rc, const FdEntry *e)
{
	for (int i = 0; i < rc->nr_pipes; i++)
		if (rc->pipes[i].ino == e->ino && (!rc->pipes[i].data->has_dev || rc->pipes[i].dev == e->dev))
			return &rc->pipes[i];
	pr_err("fd %u: %s: its contents are missing from pipes.img\n", e->fd, e->path);
	return NULL;
}

/* Does a description of this pipe have O_DIRECT (packet mode)? */
static bool has_direct_end(struct rst_ctx *rc, const struct rst_pipe *p)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;

		for (size_t k = 0; fds && k < fds->n_fds; k++) {
			const FdEntry *e = fds->fds[k];

			if ((e->kind == FD_KIND__FD_PIPE || e->kind == FD_KIND__FD_FIFO) &&
			    e->ino == p->ino && (!p->data->has_dev || e->dev == p->dev) &&
			    (e->flags & O_DIRECT))
				return true;
		}
	}
	return false;
}

/* Are the saved pieces packets, and do they fit the pipe? */
static int check_pieces(const FdEntry *e, const PipeDataEntry *pe, bool packets)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < pe->n_packets; i++)
		sum += pe->packets[i];
	if (pe->data.len > pe->pipe_size || (pe->n_packets && sum != pe->data.len) ||
	    (packets && pe->n_packets > pe->pipe_size / (uint32_t)getpagesize())) {
		pr_err("fd %u: %s: %zu buffered bytes in %zu pieces do not fit a pipe of %u\n", e->fd,
		       e->path, pe->data.len, pe->n_packets, pe->pipe_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * The bytes that were buffered, written into an empty pipe of the right
 * size; a packet pipe's one write per packet, with O_DIRECT. Nonblocking:
 * a bad image fails instead of hanging.
 */
static int refill(struct rst_ctx *rc, const FdEntry *e, struct rst_pipe *p, int wfd)
{
	PipeDataEntry *pe = p->data;
	bool packets = pe->n_packets > 1 || (pe->data.len && has_direct_end(rc, p));
	int fl = fcntl(wfd, F_GETFL), ret;
	size_t off = 0;

	if (pe->pipe_size && fcntl(wfd, F_SETPIPE_SZ, pe->pipe_size) < (int)pe->pipe_size)
		return log_errno(-errno, "fd %u: %s: can't set the pipe size to %u", e->fd, e->path,
				 pe->pipe_size);
	if ((ret = check_pieces(e, pe, packets)) < 0)
		return ret;
	if (fl < 0 || fcntl(wfd, F_SETFL, fl | O_NONBLOCK | (packets ? O_DIRECT : 0)) < 0)
		return log_errno(-errno, "fd %u: %s: can't set the flags to refill it", e->fd, e->path);
	for (size_t i = 0; off < pe->data.len; i++) {
		size_t len = packets && i < pe->n_packets ? pe->packets[i] : pe->data.len - off;
		ssize_t n = write(wfd, pe->data.data + off, len);

		if (n != (ssize_t)len)
			return log_errno(n < 0 ? -errno : -EIO, "fd %u: %s: can't refill %zu bytes at %zu",
					 e->fd, e->path, len, off);
		off += len;
	}
	if (fcntl(wfd, F_SETFL, fl) < 0)
		return log_errno(-errno, "fd %u: %s: can't set the flags back to 0%o", e->fd, e->path, fl);
	return 0;
}

/* Status flags (O_NONBLOCK, O_DIRECT...) of the dumped description. */
static int set_status(const FdEntry *e, int fd)
{
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME)) < 0) {
		int err = log_errno(-errno, "fd %u: %s: can't set flags 0%o", e->fd, e->path, e->flags);
		close(fd);
		return err;
	}
	return fd;
}

/* Another description of an end we hold: opened again through /proc. */
static int reopen(const FdEntry *e, int ours)
{
	char link[64];
	int fd;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", ours);
	fd = open(link, (e->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "fd %u: can't open another description of %s", e->fd, e->path);
	return fd;
}

static int pipe_open(struct rst_ctx *rc, const FdEntry *e)
{
	struct rst_pipe *p = find_pipe(rc, e);
	int end = (e->flags & O_ACCMODE) == O_RDONLY ? 0 : 1, fd, ret;

	if (!p)
		return -ENOENT;
	if (p->ends[0] < 0) {
		if (pipe2(p->ends, O_CLOEXEC | (e->flags & O_DIRECT)) < 0)
			return log_errno(-errno, "fd %u: can't create %s", e->fd, e->path);
		if ((ret = refill(rc, e, p, p->ends[1])) < 0)
			return ret;
	}
	if (p->given[end])
		fd = reopen(e, p->ends[end]);
	else
		fd = fcntl(p->ends[end], F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return fd == -1 ? log_errno(-errno, "fd %u: dup of %s", e->fd, e->path) : fd;
	p->given[end] = true;
	return set_status(e, fd);
}

static int fifo_open(struct rst_ctx *rc, const FdEntry *e)
{
	struct rst_pipe *p = find_pipe(rc, e);
	struct stat st;
	int fd, ret;

	if (!p)
		return -ENOENT;
	if (p->ends[0] < 0) {
		/* Read-write: a reader and a writer exist, so no open below blocks. */
		p->ends[0] = open(e->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (p->ends[0] < 0)
			return log_errno(-errno, "fd %u: can't open the fifo '%s'", e->fd, e->path);
		if (fstat(p->ends[0], &st) < 0 || !S_ISFIFO(st.st_mode) ||
		    (!mnt_dev_recreated(rc, e->dev) && (st.st_ino != e->ino || st.st_dev != e->dev))) {
			pr_err("fd %u: '%s' is no longer the fifo that was dumped\n", e->fd, e->path);
			return -ESTALE;
		}
		if ((ret = refill(rc, e, p, p->ends[0])) < 0)
			return ret;
	}
	fd = reopen(e, p->ends[0]);
	return fd < 0 ? fd : set_status(e, fd);
}

const struct fd_ops pipe_ops = { FD_KIND__FD_PIPE, "pipe", pipe_dump, pipe_open, NULL };
const struct fd_ops fifo_ops = { FD_KIND__FD_FIFO, "fifo", fifo_dump, fifo_open, NULL };
