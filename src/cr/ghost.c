#define LOG_PREFIX "ghost: "
/*
 * Files that a process holds open or mapped after they were unlinked (a
 * deleted /dev/shm segment, a temporary file) and memfds have no name to be
 * found by at restore: their data is saved once per inode, whoever holds
 * them, in ghost-<id>.img (only the allocated extents). The restorer
 * recreates each one before the tree is forked (a memfd with its name and
 * seals; a file under its old name, then unlinked again, so /proc shows the
 * same "(deleted)" link) and keeps it open until every task has opened or
 * mapped it, through /proc/<restorer>/fd/N.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cr.h"
#include "image.h"
#include "log.h"
#include "util.h"

#define GHOST_LIMIT_DEFAULT (1ULL << 30)
#define DELETED " (deleted)"
#define MEMFD_PREFIX "/memfd:"
#define COPY_BUF (1 << 20)

struct rst_ghost {
	GhostEntry *g;
	int fd;
	char path[64];
};

bool link_is_deleted(const char *link)
{
	size_t l = strlen(link), d = strlen(DELETED);

	return l > d && !strcmp(link + l - d, DELETED);
}

static char *ghost_name(const char *link, bool *memfd)
{
	size_t l = strlen(link) - strlen(DELETED);

	*memfd = !strncmp(link, MEMFD_PREFIX, strlen(MEMFD_PREFIX));
	if (*memfd)
		return strndup(link + strlen(MEMFD_PREFIX), l - strlen(MEMFD_PREFIX));
	return strndup(link, l);
}

static void add_extent(GhostEntry *g, uint64_t off, uint64_t len)
{
	GhostExtent *x = xmalloc(sizeof(*x));

	ghost_extent__init(x);
	x->off = off;
	x->len = len;
	g->extents = xrealloc(g->extents, (g->n_extents + 1) * sizeof(*g->extents));
	g->extents[g->n_extents++] = x;
}

/* The allocated ranges of the file, and their total. */
static int find_extents(int fd, const char *what, GhostEntry *g, uint64_t *total)
{
	off_t data = 0, hole;

	*total = 0;
	while ((uint64_t)data < g->size) {
		data = lseek(fd, data, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return log_errno(-errno, "SEEK_DATA in %s", what);
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return log_errno(-errno, "SEEK_HOLE in %s", what);
		add_extent(g, data, hole - data);
		*total += hole - data;
		data = hole;
	}
	return 0;
}

static int copy_extents(int from, const char *what, int to, const char *img, const GhostEntry *g)
{
	_cleanup_free_ char *buf = xmalloc(COPY_BUF);

	for (size_t i = 0; i < g->n_extents; i++) {
		for (uint64_t done = 0; done < g->extents[i]->len;) {
			size_t n = min_t(uint64_t, COPY_BUF, g->extents[i]->len - done);
			ssize_t r = pread_full(from, buf, n, g->extents[i]->off + done);

			if (r < 0)
				return log_errno(-errno, "can't read %s", what);
			if (r == 0) {	/* shrunk under us: cannot happen while frozen */
				pr_err("%s ended at %" PRIu64 " while being saved\n", what,
				       g->extents[i]->off + done);
				return -EIO;
			}
			if (write_full(to, buf, r) != r)
				return log_errno(-errno, "can't write %s", img);
			done += r;
		}
	}
	return 0;
}

static GhostEntry *seen_ghost(struct file_seen *fs, const struct stat *st)
{
	for (int i = 0; i < fs->nr_ghosts; i++)
		if (fs->ghosts[i]->dev == st->st_dev && fs->ghosts[i]->ino == st->st_ino)
			return fs->ghosts[i];
	return NULL;
}

static int save_data(int dirfd, const char *dir, GhostEntry *g, int src_fd, const char *src)
{
	char name[32], img[PATH_MAX_LEN];
	_cleanup_close_ int out = -1;
	int ret;

	snprintf(name, sizeof(name), "ghost-%u.img", g->id);
	snprintf(img, sizeof(img), "%s/%s", dir, name);
	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return log_errno(-errno, "can't create %s", img);
	ret = copy_extents(src_fd, src, out, img, g);
	if (!ret && fsync(out) < 0)
		ret = log_errno(-errno, "can't fsync %s", img);
	return ret;
}

int ghost_dump(struct file_seen *fs, int dirfd, const char *dir, pid_t pid, const char *src,
	       const char *link, uint32_t *id)
{
	uint64_t limit = fs->ghost_limit ? fs->ghost_limit : GHOST_LIMIT_DEFAULT, total;
	_cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	GhostEntry *g;
	bool memfd;
	int ret, seals;

	if (fd < 0 || fstat(fd, &st) < 0)
		return log_errno(-errno, "pid %d: can't open '%s' through %s", pid, link, src);
	if ((g = seen_ghost(fs, &st))) {
		*id = g->id;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		pr_err("pid %d: '%s' is a deleted non-regular file; not supported\n", pid, link);
		return -EOPNOTSUPP;
	}
	if (st.st_nlink) {
		pr_err("pid %d: '%s' was unlinked but still has %ju other name(s); not supported\n", pid,
		       link, (uintmax_t)st.st_nlink);
		return -EOPNOTSUPP;
	}
	g = xmalloc(sizeof(*g));
	ghost_entry__init(g);
	fs->ghosts = xrealloc(fs->ghosts, (fs->nr_ghosts + 1) * sizeof(*fs->ghosts));
	fs->ghosts[fs->nr_ghosts++] = g;	/* freed with the others, even on error */
	g->id = *id = fs->nr_ghosts;
	g->dev = st.st_dev;
	g->ino = st.st_ino;
	g->size = st.st_size;
	g->mode = st.st_mode;
	g->uid = st.st_uid;
	g->gid = st.st_gid;
	g->path = ghost_name(link, &memfd);
	g->has_memfd = g->memfd = memfd;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals > 0) {
		g->has_seals = true;
		g->seals = seals;
	}
	if ((ret = find_extents(fd, link, g, &total)) < 0)
		return ret;
	if (total > limit) {
		pr_err("pid %d: '%s' holds %" PRIu64 " bytes, more than the limit of %" PRIu64
		       " (crtool dump --ghost-limit)\n", pid, link, total, limit);
		return -EFBIG;
	}
	return save_data(dirfd, dir, g, fd, link);
}

int ghosts_dump_finish(struct file_seen *fs, int dirfd, const char *dir)
{
	struct img *img;
	int ret = 0;

	if (!fs->nr_ghosts)
		return 0;
	img = img_open_write(dirfd, dir, IMG_GHOSTS, 0);
	if (!img)
		return -EIO;
	for (int i = 0; i < fs->nr_ghosts && !ret; i++)
		ret = img_write_msg(img, &fs->ghosts[i]->base);
	if (ret) {
		img_abort(img);
		return ret;
	}
	return img_close(img);
}

/* ---- restore ---- */

static bool uses_ghosts(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		struct rst_task *t = &rc->tasks[i];

		for (size_t k = 0; t->fds && k < t->fds->n_fds; k++)
			if (t->fds->fds[k]->has_ghost_id)
				return true;
		for (size_t k = 0; t->mm && k < t->mm->n_vmas; k++)
			if (t->mm->vmas[k]->has_ghost_id)
				return true;
	}
	return false;
}

static int fill(struct rst_ctx *rc, struct rst_ghost *rg)
{
	const GhostEntry *g = rg->g;
	char name[32];
	_cleanup_free_ char *buf = xmalloc(COPY_BUF);
	_cleanup_close_ int in = -1;

	snprintf(name, sizeof(name), "ghost-%u.img", g->id);
	in = openat(rc->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return log_errno(-errno, "can't open %s/%s", rc->dir, name);
	for (size_t i = 0; i < g->n_extents; i++) {
		for (uint64_t done = 0; done < g->extents[i]->len;) {
			size_t n = min_t(uint64_t, COPY_BUF, g->extents[i]->len - done);
			ssize_t r = read_full(in, buf, n);

			if (r != (ssize_t)n) {
				pr_err("%s/%s: truncated (extent %zu of '%s')\n", rc->dir, name, i, g->path);
				return -EIO;
			}
			if (pwrite(rg->fd, buf, n, g->extents[i]->off + done) != (ssize_t)n)
				return log_errno(-errno, "can't refill '%s'", g->path);
			done += n;
		}
	}
	if (ftruncate(rg->fd, g->size) < 0)
		return log_errno(-errno, "can't size '%s' to %" PRIu64, g->path, g->size);
	return 0;
}

static int create_memfd(struct rst_ghost *rg)
{
	const GhostEntry *g = rg->g;

	/* Created without MFD_ALLOW_SEALING, a memfd reports F_SEAL_SEAL alone. */
	rg->fd = memfd_create(g->path, MFD_CLOEXEC | (g->seals == F_SEAL_SEAL ? 0 : MFD_ALLOW_SEALING));
	if (rg->fd < 0)
		return log_errno(-errno, "can't create the memfd '%s'", g->path);
	return 0;
}

/* Under its old name if that is free, else a name beside it; unlinked once filled. */
static int create_file(struct rst_ghost *rg, char **made)
{
	const GhostEntry *g = rg->g;
	char *name = xstrdup(g->path);

	rg->fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (rg->fd < 0 && errno == EEXIST) {
		free(name);
		if (asprintf(&name, "%s.crtool-ghost-%d-%u", g->path, getpid(), g->id) < 0)
			abort();
		rg->fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (rg->fd < 0) {
		int err = log_errno(-errno, "can't recreate the deleted file '%s'", name);
		free(name);
		return err;
	}
	*made = name;
	return 0;
}

static int create_ghost(struct rst_ctx *rc, struct rst_ghost *rg)
{
	const GhostEntry *g = rg->g;
	_cleanup_free_ char *made = NULL;
	int ret = g->memfd ? create_memfd(rg) : create_file(rg, &made);

	if (ret < 0)
		return ret;
	if (!ret && fchown(rg->fd, g->uid, g->gid) < 0)
		ret = log_errno(-errno, "can't give '%s' to %u:%u", g->path, g->uid, g->gid);
	if (!ret && fchmod(rg->fd, g->mode & 07777) < 0)
		ret = log_errno(-errno, "can't chmod '%s' to %o", g->path, g->mode & 07777);
	if (!ret)
		ret = fill(rc, rg);
	if (made && unlink(made) < 0 && !ret)
		ret = log_errno(-errno, "can't unlink '%s' again", made);
	if (!ret && g->memfd && g->seals && g->seals != F_SEAL_SEAL &&
	    fcntl(rg->fd, F_ADD_SEALS, g->seals) < 0)
		ret = log_errno(-errno, "can't seal the memfd '%s' with %#x", g->path, g->seals);
	snprintf(rg->path, sizeof(rg->path), "/proc/%d/fd/%d", getpid(), rg->fd);
	return ret;
}

int ghosts_restore_load(struct rst_ctx *rc)
{
	struct img *img;
	ProtobufCMessage *m;
	int ret;

	if (!uses_ghosts(rc))
		return 0;
	img = img_open_read(rc->dirfd, rc->dir, IMG_GHOSTS, 0);
	if (!img)
		return -ENOENT;
	while ((ret = img_read_msg(img, &ghost_entry__descriptor, &m)) > 0) {
		struct rst_ghost *rg;

		rc->ghosts = xrealloc(rc->ghosts, (rc->nr_ghosts + 1) * sizeof(*rc->ghosts));
		rg = &rc->ghosts[rc->nr_ghosts++];
		rg->g = (GhostEntry *)m;
		rg->fd = -1;
		rg->path[0] = '\0';
		if ((ret = create_ghost(rc, rg)) < 0)
			break;
	}
	img_abort(img);
	return ret;
}

void ghosts_restore_release(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_ghosts; i++) {
		if (rc->ghosts[i].fd >= 0)
			close(rc->ghosts[i].fd);
		img_free_msg(&rc->ghosts[i].g->base);
	}
	free(rc->ghosts);
	rc->ghosts = NULL;
	rc->nr_ghosts = 0;
}

int ghost_fd(struct rst_ctx *rc, uint32_t id, const char **path)
{
	for (int i = 0; i < rc->nr_ghosts; i++)
		if (rc->ghosts[i].g->id == id) {
			if (path)
				*path = rc->ghosts[i].path;
			return rc->ghosts[i].fd;
		}
	pr_err("deleted file %u is missing from ghosts.img\n", id);
	return -ENOENT;
}
