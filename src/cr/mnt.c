/*
 * A mount namespace the tree owns. The supported shape is a job container's:
 * a copy of the host's mounts (same superblock, root and mount point as a
 * mount of crtool's namespace: taken as they are), plus tmpfs mounts of its
 * own (saved with their whole content and recreated), proc instances
 * (mounted again by the tree's pidns init) and a devpts instance with its
 * ptmx bound on /dev/ptmx (mounted again as a new instance; the terminals
 * in the one on /dev/pts are the tty code's, which gets its directory and
 * ptmx through rc->devpts_dirfd and rc->ptmx_path). Anything
 * else fails the dump, naming the mount point and the filesystem type.
 *
 * Restore: crtool unshares a copy of its own namespace, makes it private,
 * unmounts what the dumped namespace did not have, and recreates the tmpfs
 * mounts in mountinfo order (parents first); proc comes after the memory of
 * the tasks, through a remote mount(2) in the tree's root.
 */
#define LOG_PREFIX "mnt: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "cr.h"
#include "image.h"
#include "log.h"
#include "mnt.pb-c.h"
#include "ns.h"
#include "util.h"

#define COPY_BUF (1UL << 20)
#define DEFAULT_MAX_TMPFS (1ULL << 30)

struct mnt_info {
	uint32_t id, parent;
	uint64_t dev;
	char *root, *mp, *opts, *fstype, *source, *super;
};

struct rst_mnt {
	char *ptmx;			/* the new devpts instance's ptmx, for fd-tty.c */
	MntEntry **mnts;
	int nr;
	MntFileEntry **files;
	int nr_files;
};

/* ---- mountinfo ----------------------------------------------------------- */

/* Mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0');
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return out;
}

static void free_mounts(struct mnt_info *m, int n)
{
	for (int i = 0; i < n; i++) {
		free(m[i].root);
		free(m[i].mp);
		free(m[i].opts);
		free(m[i].fstype);
		free(m[i].source);
		free(m[i].super);
	}
	free(m);
}

/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
static int parse_line(char *line, struct mnt_info *m)
{
	char *f[9], *save = NULL, *sep = strstr(line, " - ");
	unsigned maj, min;
	int n = 0;

	if (!sep)
		return -EINVAL;
	*sep = '\0';
	for (char *t = strtok_r(line, " ", &save); t && n < 6; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n < 6)
		return -EINVAL;
	for (char *t = strtok_r(sep + 3, " ", &save); t && n < 9; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n < 8 || sscanf(f[2], "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	m->id = strtoul(f[0], NULL, 10);
	m->parent = strtoul(f[1], NULL, 10);
	m->dev = makedev(maj, min);
	m->root = unescape(f[3]);
	m->mp = unescape(f[4]);
	m->opts = xstrdup(f[5]);
	m->fstype = unescape(f[6]);
	m->source = unescape(f[7]);
	m->super = xstrdup(n > 8 ? f[8] : "");
	return 0;
}

static int parse_mountinfo(pid_t pid, struct mnt_info **out, int *nr)
{
	char path[64];
	_cleanup_free_ char *text = NULL;
	struct mnt_info *m = NULL;
	char *line, *save = NULL;
	ssize_t len;
	int n = 0;

	snprintf(path, sizeof(path), pid ? "/proc/%d/mountinfo" : "/proc/self/mountinfo", pid);
	len = read_file_at(AT_FDCWD, path, &text);
	if (len < 0)
		return log_errno(len, "can't read %s", path);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		m = xrealloc(m, (n + 1) * sizeof(*m));
		memset(&m[n], 0, sizeof(*m));
		if (parse_line(line, &m[n]) < 0) {
			free_mounts(m, n + 1);
			pr_err("%s: can't parse '%s'\n", path, line);
			return -EINVAL;
		}
		n++;
	}
	*out = m;
	*nr = n;
	return 0;
}

/* The last line of super options ("rw,size=1024k\n") without rw/ro. */
static char *fs_data(const char *super)
{
	char *copy = xstrdup(super), *save = NULL, *out = xzalloc(strlen(super) + 1);

	for (char *t = strtok_r(copy, ",\n", &save); t; t = strtok_r(NULL, ",\n", &save)) {
		if (!strcmp(t, "rw") || !strcmp(t, "ro"))
			continue;
		if (*out)
			strcat(out, ",");
		strcat(out, t);
	}
	free(copy);
	return out;
}

static uint32_t mnt_flags(const char *opts)
{
	static const struct { const char *name; uint32_t flag; } known[] = {
		{ "ro", MS_RDONLY }, { "nosuid", MS_NOSUID }, { "nodev", MS_NODEV },
		{ "noexec", MS_NOEXEC }, { "noatime", MS_NOATIME }, { "nodiratime", MS_NODIRATIME },
		{ "relatime", MS_RELATIME }, { "strictatime", MS_STRICTATIME },
	};
	_cleanup_free_ char *copy = xstrdup(opts);
	char *save = NULL;
	uint32_t flags = 0;

	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			if (!strcmp(t, known[i].name))
				flags |= known[i].flag;
	return flags;
}

/* ---- dump ---------------------------------------------------------------- */

static int classify(pid_t root, const struct mnt_info *m, const struct mnt_info *h, int nh)
{
	for (int i = 0; i < nh; i++)
		if (h[i].dev == m->dev && !strcmp(h[i].root, m->root) && !strcmp(h[i].mp, m->mp))
			return MNT_KIND__MNT_HOST;
	if (!strcmp(m->root, "/") && !strcmp(m->fstype, "tmpfs"))
		return MNT_KIND__MNT_TMPFS;
	if (!strcmp(m->root, "/") && !strcmp(m->fstype, "proc"))
		return MNT_KIND__MNT_PROC;
	if ((!strcmp(m->root, "/") || !strcmp(m->root, "/ptmx")) && !strcmp(m->fstype, "devpts"))
		return MNT_KIND__MNT_DEVPTS;
	pr_err("pid %d: mount point %s (%s, source '%s', root %s) of the tree's mount namespace is "
	       "neither crtool's nor a tmpfs, proc or devpts of its own; not supported\n",
	       root, m->mp, m->fstype, m->source, m->root);
	return -EOPNOTSUPP;
}

/*
 * The terminals of a devpts instance of the tree's own are the tty code's
 * (fd-tty.c, which recreates each pair with its index in the new instance);
 * a bind of a ptmx must be of an instance mounted in the namespace.
 */
static int check_devpts(pid_t root, const struct mnt_info *t, int nt, int i)
{
	const struct mnt_info *m = &t[i];

	if (!strcmp(m->root, "/ptmx")) {
		for (int k = 0; k < nt; k++)
			if (k != i && t[k].dev == m->dev && !strcmp(t[k].root, "/"))
				return 0;
		pr_err("pid %d: %s is the ptmx of a devpts instance not mounted in the tree's namespace; not supported\n",
		       root, m->mp);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int classify_all(pid_t root, struct mnt_info **t, int *nt, int **kinds)
{
	struct mnt_info *h = NULL;
	int nh = 0, ret = parse_mountinfo(root, t, nt);

	if (ret < 0)
		return ret;
	ret = parse_mountinfo(0, &h, &nh);
	*kinds = xzalloc((*nt + 1) * sizeof(int));
	for (int i = 0; i < *nt && !ret; i++) {
		int k = classify(root, &(*t)[i], h, nh);

		if (k < 0)
			ret = k;
		(*kinds)[i] = k;
	}
	for (int i = 0; i < *nt && !ret; i++)
		if ((*kinds)[i] == MNT_KIND__MNT_DEVPTS)
			ret = check_devpts(root, *t, *nt, i);
	free_mounts(h, nh);
	return ret;
}

int mnt_dump_check(pid_t root, uint64_t max_tmpfs)
{
	struct mnt_info *t = NULL;
	_cleanup_free_ int *kinds = NULL;
	int nt = 0, ret = classify_all(root, &t, &nt, &kinds);

	(void)max_tmpfs;
	free_mounts(t, nt);
	return ret;
}

struct saver {
	struct img *img;
	int data_fd;
	const char *data_name;
	const struct mnt_info *m;
	pid_t root;
	uint64_t total, limit;
	struct { uint64_t ino; char *path; } *links;
	int nr_links;
	char *buf;
};

static int write_file_entry(struct saver *s, MntFileEntry *f)
{
	MntImgEntry r = MNT_IMG_ENTRY__INIT;

	r.file = f;
	return img_write_msg(s->img, &r.base);
}

static int save_data(struct saver *s, int fd, const char *path, MntFileEntry *f)
{
	off_t off = 0;
	size_t n_ext = 0;

	for (;;) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return log_errno(-errno, "tmpfs %s: %s: SEEK_DATA/SEEK_HOLE", s->m->mp, path);
		f->extents = xrealloc(f->extents, (n_ext + 1) * sizeof(*f->extents));
		f->extents[n_ext] = xmalloc(sizeof(MntExtent));
		mnt_extent__init(f->extents[n_ext]);
		f->extents[n_ext]->off = data;
		f->extents[n_ext]->len = hole - data;
		f->n_extents = ++n_ext;
		for (off = data; off < hole;) {
			ssize_t r = pread_full(fd, s->buf, min_t(uint64_t, COPY_BUF, hole - off), off);

			if (r <= 0)
				return log_errno(r < 0 ? r : -EIO, "tmpfs %s: %s: read at %jd", s->m->mp, path,
						 (intmax_t)off);
			if (write_full(s->data_fd, s->buf, r) != r)
				return log_errno(-errno, "can't write %s", s->data_name);
			off += r;
		}
	}
	return 0;
}

static const char *seen_link(struct saver *s, const struct stat *st, const char *path)
{
	for (int i = 0; i < s->nr_links; i++)
		if (s->links[i].ino == st->st_ino)
			return s->links[i].path;
	s->links = xrealloc(s->links, (s->nr_links + 1) * sizeof(*s->links));
	s->links[s->nr_links].ino = st->st_ino;
	s->links[s->nr_links++].path = xstrdup(path);
	return NULL;
}

static int save_dir(struct saver *s, int dfd, const char *rel);

/* One entry of the tmpfs (name in dfd; rel: its path from the mount's root). */
static int save_entry(struct saver *s, int dfd, const char *name, const char *rel)
{
	MntFileEntry f = MNT_FILE_ENTRY__INIT;
	_cleanup_free_ char *target = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int ret = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return log_errno(-errno, "tmpfs %s: can't stat %s", s->m->mp, rel);
	f.mnt_id = s->m->id;
	f.path = (char *)rel;
	f.mode = st.st_mode;
	f.uid = st.st_uid;
	f.gid = st.st_gid;
	f.atime_ns = st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec;
	f.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	if (st.st_dev != s->m->dev) {
		/* Another mount on top of this directory: only the directory is ours. */
		f.mode = S_IFDIR | 0755;
		return write_file_entry(s, &f);
	}
	s->total += st.st_blocks * 512ULL;
	if (s->total > s->limit) {
		pr_err("pid %d: tmpfs %s holds more than %" PRIu64 " bytes (at %s); raise --max-tmpfs-size\n",
		       s->root, s->m->mp, s->limit, rel);
		return -EFBIG;
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		if ((ret = write_file_entry(s, &f)) < 0)
			return ret;
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
		if (fd < 0)
			return log_errno(-errno, "tmpfs %s: can't open directory %s", s->m->mp, rel);
		return save_dir(s, fd, rel);
	case S_IFREG:
		f.has_size = true;
		f.size = st.st_size;
		if (st.st_nlink > 1 && (f.hardlink = (char *)seen_link(s, &st, rel)))
			break;
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
		if (fd < 0)
			return log_errno(-errno, "tmpfs %s: can't open %s", s->m->mp, rel);
		ret = save_data(s, fd, rel, &f);
		break;
	case S_IFLNK:
		target = xmalloc(PATH_MAX_LEN);
		ret = readlinkat(dfd, name, target, PATH_MAX_LEN - 1);
		if (ret < 0)
			return log_errno(-errno, "tmpfs %s: readlink %s", s->m->mp, rel);
		target[ret] = '\0';
		f.symlink = target;
		ret = 0;
		break;
	case S_IFIFO: case S_IFCHR: case S_IFBLK:
		f.has_rdev = true;
		f.rdev = st.st_rdev;
		break;
	default:
		/* A socket: whoever binds it again recreates it. */
		pr_warn("tmpfs %s: %s is a socket; its name is not saved\n", s->m->mp, rel);
		return 0;
	}
	if (!ret)
		ret = write_file_entry(s, &f);
	for (size_t i = 0; i < f.n_extents; i++)
		free(f.extents[i]);
	free(f.extents);
	return ret;
}

static int save_dir(struct saver *s, int dfd, const char *rel)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		close(dfd);
		return log_errno(-errno, "tmpfs %s: can't list %s", s->m->mp, rel);
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		char *child;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strcmp(rel, "."))
			child = xstrdup(de->d_name);
		else if (asprintf(&child, "%s/%s", rel, de->d_name) < 0)
			abort();
		ret = save_entry(s, dirfd(d), de->d_name, child);
		free(child);
	}
	if (!ret && errno)
		ret = log_errno(-errno, "tmpfs %s: can't list %s", s->m->mp, rel);
	closedir(d);
	return ret;
}

static int save_tmpfs(struct img *img, int dirfd, const char *dir, pid_t root,
		      const struct mnt_info *m, uint64_t limit)
{
	struct saver s = { .img = img, .m = m, .root = root, .limit = limit };
	char path[PATH_MAX_LEN + 64], name[48];
	_cleanup_close_ int fd = -1;
	struct statfs sf;
	struct stat st;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/root%s", root, m->mp);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || fstatfs(fd, &sf) < 0)
		return log_errno(-errno, "pid %d: can't open its tmpfs %s", root, m->mp);
	if (st.st_dev != m->dev) {
		pr_err("pid %d: tmpfs %s is hidden by another mount on top of it; not supported\n", root, m->mp);
		return -EOPNOTSUPP;
	}
	if ((uint64_t)(sf.f_blocks - sf.f_bfree) * sf.f_bsize > limit) {
		pr_err("pid %d: tmpfs %s holds %" PRIu64 " bytes, more than %" PRIu64 "; raise --max-tmpfs-size\n",
		       root, m->mp, (uint64_t)(sf.f_blocks - sf.f_bfree) * sf.f_bsize, limit);
		return -EFBIG;
	}
	snprintf(name, sizeof(name), "mnt-%u.img", m->id);
	s.data_name = name;
	s.data_fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s.data_fd < 0)
		return log_errno(-errno, "can't create %s/%s", dir, name);
	s.buf = xmalloc(COPY_BUF);
	ret = save_entry(&s, fd, ".", ".");
	if (!ret && fsync(s.data_fd) < 0)
		ret = log_errno(-errno, "can't fsync %s/%s", dir, name);
	close(s.data_fd);
	free(s.buf);
	for (int i = 0; i < s.nr_links; i++)
		free(s.links[i].path);
	free(s.links);
	if (!ret)
		pr_info("tmpfs %s: %" PRIu64 " bytes saved\n", m->mp, s.total);
	return ret;
}

static int write_mounts(struct img *img, struct mnt_info *t, int nt, const int *kinds)
{
	for (int i = 0; i < nt; i++) {
		MntImgEntry r = MNT_IMG_ENTRY__INIT;
		MntEntry e = MNT_ENTRY__INIT;
		_cleanup_free_ char *data = fs_data(t[i].super);

		e.mnt_id = t[i].id;
		e.parent_id = t[i].parent;
		e.dev = t[i].dev;
		e.root = t[i].root;
		e.mountpoint = t[i].mp;
		e.fstype = t[i].fstype;
		e.source = t[i].source;
		e.flags = mnt_flags(t[i].opts);
		e.data = data;
		e.kind = kinds[i];
		r.mnt = &e;
		if (img_write_msg(img, &r.base) < 0)
			return -EIO;
	}
	return 0;
}

int mnt_dump(pid_t root, int dirfd, const char *dir, uint64_t max_tmpfs)
{
	struct mnt_info *t = NULL;
	_cleanup_free_ int *kinds = NULL;
	int nt = 0, ret = classify_all(root, &t, &nt, &kinds);
	struct img *img = ret ? NULL : img_open_write(dirfd, dir, IMG_MNT, 0);

	if (!ret && !img)
		ret = -EIO;
	if (!ret)
		ret = write_mounts(img, t, nt, kinds);
	for (int i = 0; i < nt && !ret; i++)
		if (kinds[i] == MNT_KIND__MNT_TMPFS)
			ret = save_tmpfs(img, dirfd, dir, root, &t[i],
					 max_tmpfs ? max_tmpfs : DEFAULT_MAX_TMPFS);
	free_mounts(t, nt);
	if (img && ret)
		img_abort(img);
	else if (img)
		ret = img_close(img);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

/* "." or a relative path of plain components: no "..", no "." inside, no "//". */
static bool safe_rel_path(const char *p)
{
	if (!strcmp(p, "."))
		return true;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

static int check_entry(struct rst_ctx *rc, struct rst_mnt *rm, MntImgEntry *r)
{
	if (!!r->mnt == !!r->file)
		goto bad;
	if (r->mnt) {
		if (r->mnt->mountpoint[0] != '/' || r->mnt->kind < MNT_KIND__MNT_HOST ||
		    r->mnt->kind > MNT_KIND__MNT_DEVPTS || rm->nr_files)
			goto bad;
		return 0;
	}
	if (!safe_rel_path(r->file->path) || (r->file->hardlink && !safe_rel_path(r->file->hardlink)))
		goto bad;
	for (int i = 0; i < rm->nr; i++)
		if (rm->mnts[i]->mnt_id == r->file->mnt_id && rm->mnts[i]->kind == MNT_KIND__MNT_TMPFS)
			return 0;
bad:
	pr_err("%s/mnt.img: bad entry %d\n", rc->dir, rm->nr + rm->nr_files);
	return -EBADMSG;
}

int mnt_restore_load(struct rst_ctx *rc)
{
	struct img *img = img_open_read(rc->dirfd, rc->dir, IMG_MNT, 0);
	struct rst_mnt *rm = xzalloc(sizeof(*rm));
	int ret;

	rc->ns.mnt = rm;
	if (!img)
		return -EIO;
	for (;;) {
		MntImgEntry *r;

		ret = img_read_msg(img, &mnt_img_entry__descriptor, (ProtobufCMessage **)&r);
		if (ret <= 0)
			break;
		ret = check_entry(rc, rm, r);
		if (ret < 0) {
			img_free_msg(&r->base);
			break;
		}
		if (r->mnt) {
			rm->mnts = xrealloc(rm->mnts, (rm->nr + 1) * sizeof(*rm->mnts));
			rm->mnts[rm->nr++] = r->mnt;
		} else {
			rm->files = xrealloc(rm->files, (rm->nr_files + 1) * sizeof(*rm->files));
			rm->files[rm->nr_files++] = r->file;
		}
		r->mnt = NULL;
		r->file = NULL;
		img_free_msg(&r->base);
	}
	img_abort(img);
	return ret;
}

void mnt_restore_release(struct rst_ctx *rc)
{
	struct rst_mnt *rm = rc->ns.mnt;

	if (!rm)
		return;
	for (int i = 0; i < rm->nr; i++)
		img_free_msg(&rm->mnts[i]->base);
	for (int i = 0; i < rm->nr_files; i++)
		img_free_msg(&rm->files[i]->base);
	free(rm->mnts);
	free(rm->files);
	if (rc->ptmx_path == rm->ptmx)
		rc->ptmx_path = NULL;
	free(rm->ptmx);
	free(rm);
	rc->ns.mnt = NULL;
}

bool mnt_dev_recreated(struct rst_ctx *rc, uint64_t dev)
{
	struct rst_mnt *rm = rc->ns.mnt;

	for (int i = 0; rm && i < rm->nr; i++)
		if (rm->mnts[i]->kind == MNT_KIND__MNT_TMPFS && rm->mnts[i]->dev == dev)
			return true;
	return false;
}

static bool is_dumped_host_mount(struct rst_mnt *rm, const struct mnt_info *h)
{
	for (int i = 0; i < rm->nr; i++) {
		MntEntry *e = rm->mnts[i];

		if (e->kind != MNT_KIND__MNT_HOST || strcmp(e->root, h->root) || strcmp(e->mountpoint, h->mp))
			continue;
		if (e->dev == h->dev || (!strcmp(e->fstype, h->fstype) && !strcmp(e->source, h->source)))
			return true;
	}
	return false;
}

static bool is_current_mount(const MntEntry *e, const struct mnt_info *h, int nh)
{
	for (int i = 0; i < nh; i++)
		if (!strcmp(e->root, h[i].root) && !strcmp(e->mountpoint, h[i].mp) &&
		    (e->dev == h[i].dev || (!strcmp(e->fstype, h[i].fstype) && !strcmp(e->source, h[i].source))))
			return true;
	return false;
}

/* Our copy of crtool's mounts, less what the dumped namespace did not have. */
static int trim_host_mounts(struct rst_mnt *rm)
{
	struct mnt_info *h = NULL;
	int nh = 0, ret = parse_mountinfo(0, &h, &nh);

	for (int i = 0; i < rm->nr && !ret; i++) {
		if (rm->mnts[i]->kind == MNT_KIND__MNT_HOST && !is_current_mount(rm->mnts[i], h, nh)) {
			/*
			 * A namespace handle (`ip netns add`, a container
			 * runtime's) that went away since: it held no data, and
			 * the tree's own namespaces are rebuilt by crtool.
			 */
			if (!strcmp(rm->mnts[i]->fstype, "nsfs")) {
				pr_warn("mount %s (nsfs) of the dumped namespace is gone; restored without it\n",
					rm->mnts[i]->mountpoint);
				continue;
			}
			pr_err("mount %s (%s, source '%s') of the dumped namespace is not in crtool's\n",
			       rm->mnts[i]->mountpoint, rm->mnts[i]->fstype, rm->mnts[i]->source);
			ret = -ENOENT;
		}
	}
	for (int i = nh - 1; i >= 0 && !ret; i--) {
		bool on_top = true;

		if (is_dumped_host_mount(rm, &h[i]))
			continue;
		for (int k = i + 1; k < nh; k++)
			if (!strcmp(h[k].mp, h[i].mp))
				on_top = false;
		if (!on_top) {
			pr_debug("%s (%s) is hidden under another mount: left\n", h[i].mp, h[i].fstype);
			continue;
		}
		pr_debug("unmounting %s (%s): not in the dumped namespace\n", h[i].mp, h[i].fstype);
		if (umount2(h[i].mp, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			ret = log_errno(-errno, "can't unmount %s (%s) from the tree's namespace", h[i].mp,
					h[i].fstype);
	}
	free_mounts(h, nh);
	return ret;
}

/* The parent directory of rel inside the mount, without following any symlink. */
static int open_parent(int rootfd, const char *rel, const char **base)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV };
	const char *slash = strrchr(rel, '/');
	_cleanup_free_ char *dir = NULL;
	int fd;

	*base = slash ? slash + 1 : rel;
	dir = slash ? strndup(rel, slash - rel) : xstrdup(".");
	fd = syscall(SYS_openat2, rootfd, dir, &how, sizeof(how));
	if (fd < 0)
		return log_errno(-errno, "can't open the directory of '%s' in the recreated tmpfs", rel);
	return fd;
}

static int fill_file(int pfd, const char *base, const MntFileEntry *f, int data_fd, const char *mp)
{
	_cleanup_free_ char *buf = xmalloc(COPY_BUF);
	_cleanup_close_ int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return log_errno(-errno, "tmpfs %s: can't create %s", mp, f->path);
	for (size_t i = 0; i < f->n_extents; i++) {
		for (uint64_t done = 0; done < f->extents[i]->len;) {
			size_t n = min_t(uint64_t, COPY_BUF, f->extents[i]->len - done);

			if (read_full(data_fd, buf, n) != (ssize_t)n) {
				pr_err("tmpfs %s: the data of %s is truncated in the image\n", mp, f->path);
				return -EBADMSG;
			}
			if (pwrite(fd, buf, n, f->extents[i]->off + done) != (ssize_t)n)
				return log_errno(-errno, "tmpfs %s: can't write %s", mp, f->path);
			done += n;
		}
	}
	if (ftruncate(fd, f->size) < 0)
		return log_errno(-errno, "tmpfs %s: can't size %s", mp, f->path);
	return 0;
}

static int make_entry(int rootfd, const MntFileEntry *f, int data_fd, const char *mp)
{
	const char *base;
	_cleanup_close_ int pfd = -1;
	mode_t perm = f->mode & 07777;
	int ret = 0;

	if (!strcmp(f->path, "."))
		return fchown(rootfd, f->uid, f->gid) < 0 || fchmod(rootfd, perm) < 0 ?
			log_errno(-errno, "tmpfs %s: can't set the root's owner and mode", mp) : 0;
	pfd = open_parent(rootfd, f->path, &base);
	if (pfd < 0)
		return pfd;
	switch (f->mode & S_IFMT) {
	case S_IFDIR:
		ret = mkdirat(pfd, base, 0700) < 0 ? -errno : 0;
		break;
	case S_IFREG:
		if (f->hardlink) {
			const char *lbase;
			_cleanup_close_ int lfd = open_parent(rootfd, f->hardlink, &lbase);

			if (lfd < 0)
				return lfd;
			ret = linkat(lfd, lbase, pfd, base, 0) < 0 ? -errno : 0;
			break;
		}
		ret = fill_file(pfd, base, f, data_fd, mp);
		if (ret < 0)
			return ret;
		break;
	case S_IFLNK:
		ret = f->symlink && symlinkat(f->symlink, pfd, base) < 0 ? -errno : f->symlink ? 0 : -EBADMSG;
		break;
	case S_IFIFO: case S_IFCHR: case S_IFBLK:
		ret = mknodat(pfd, base, f->mode, f->rdev) < 0 ? -errno : 0;
		break;
	default:
		ret = -EBADMSG;
	}
	if (ret < 0)
		return log_errno(ret, "tmpfs %s: can't recreate %s", mp, f->path);
	if (f->hardlink)
		return 0;
	if (fchownat(pfd, base, f->uid, f->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (!S_ISLNK(f->mode) && fchmodat(pfd, base, perm, 0) < 0))
		return log_errno(-errno, "tmpfs %s: %s: chown/chmod", mp, f->path);
	return 0;
}

static int set_times(int rootfd, const MntFileEntry *f, const char *mp)
{
	struct timespec ts[2] = {
		{ f->atime_ns / 1000000000LL, f->atime_ns % 1000000000LL },
		{ f->mtime_ns / 1000000000LL, f->mtime_ns % 1000000000LL },
	};
	const char *base;
	_cleanup_close_ int pfd = -1;

	if (f->hardlink)
		return 0;
	if (!strcmp(f->path, "."))
		return futimens(rootfd, ts) < 0 ? log_errno(-errno, "tmpfs %s: utimens", mp) : 0;
	pfd = open_parent(rootfd, f->path, &base);
	if (pfd < 0)
		return pfd;
	if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return log_errno(-errno, "tmpfs %s: %s: utimensat", mp, f->path);
	return 0;
}

static int fill_tmpfs(struct rst_ctx *rc, const MntEntry *m)
{
	struct rst_mnt *rm = rc->ns.mnt;
	_cleanup_close_ int rootfd = open(m->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int data_fd = -1;
	char name[48];
	int ret = 0;

	if (rootfd < 0)
		return log_errno(-errno, "can't open the recreated tmpfs %s", m->mountpoint);
	snprintf(name, sizeof(name), "mnt-%u.img", m->mnt_id);
	data_fd = openat(rc->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (data_fd < 0)
		return log_errno(-errno, "can't open %s/%s", rc->dir, name);
	for (int i = 0; i < rm->nr_files && !ret; i++)
		if (rm->files[i]->mnt_id == m->mnt_id)
			ret = make_entry(rootfd, rm->files[i], data_fd, m->mountpoint);
	/* Children change their directory's times: set them last, deepest first. */
	for (int i = rm->nr_files - 1; i >= 0 && !ret; i--)
		if (rm->files[i]->mnt_id == m->mnt_id)
			ret = set_times(rootfd, rm->files[i], m->mountpoint);
	return ret;
}

static int mount_tmpfs(struct rst_ctx *rc, const MntEntry *m)
{
	uint32_t flags = m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
				     MS_RELATIME | MS_STRICTATIME);
	int ret;

	if (mount(m->source, m->mountpoint, "tmpfs", flags, m->data) < 0)
		return log_errno(-errno, "can't mount tmpfs on %s (%s)", m->mountpoint, m->data);
	ret = fill_tmpfs(rc, m);
	if (!ret && (m->flags & MS_RDONLY) &&
	    mount(NULL, m->mountpoint, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0)
		ret = log_errno(-errno, "can't make tmpfs %s read-only", m->mountpoint);
	return ret;
}

/* A new devpts instance (its own pty numbers), or a bind of its ptmx. */
static int mount_devpts(struct rst_ctx *rc, const MntEntry *m)
{
	struct rst_mnt *rm = rc->ns.mnt;
	uint32_t flags = m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
				     MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
	char src[PATH_MAX_LEN];

	if (!strcmp(m->root, "/")) {
		if (mount(m->source, m->mountpoint, "devpts", flags, m->data) < 0)
			return log_errno(-errno, "can't mount devpts on %s (%s)", m->mountpoint, m->data);
		/* The terminals are recreated in the instance on /dev/pts (fd-tty.c). */
		if (rc->ns.devpts_fd < 0 && !strcmp(m->mountpoint, "/dev/pts")) {
			rc->ns.devpts_fd = open(m->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (rc->ns.devpts_fd < 0)
				return log_errno(-errno, "can't open the new devpts %s", m->mountpoint);
			rm->ptmx = xstrdup("/dev/pts/ptmx");
			rc->devpts_dirfd = rc->ns.devpts_fd;
			rc->own_devpts_dirfd = false;
			rc->ptmx_path = rm->ptmx;
		}
		return 0;
	}
	for (int i = 0; i < rm->nr; i++) {
		MntEntry *d = rm->mnts[i];

		if (d == m)
			break;
		if (d->kind != MNT_KIND__MNT_DEVPTS || d->dev != m->dev || strcmp(d->root, "/"))
			continue;
		snprintf(src, sizeof(src), "%s/ptmx", strcmp(d->mountpoint, "/") ? d->mountpoint : "");
		if (mount(src, m->mountpoint, NULL, MS_BIND, NULL) < 0)
			return log_errno(-errno, "can't bind %s on %s", src, m->mountpoint);
		/* Masters were opened as /dev/ptmx: their links must read that again. */
		if (rm->ptmx && !strcmp(d->mountpoint, "/dev/pts") && !strcmp(m->mountpoint, "/dev/ptmx")) {
			free(rm->ptmx);
			rm->ptmx = xstrdup("/dev/ptmx");
			rc->ptmx_path = rm->ptmx;
		}
		return 0;
	}
	pr_err("mnt.img: %s binds the ptmx of a devpts instance mounted after it, or not at all\n", m->mountpoint);
	return -EBADMSG;
}

int mnt_restore_build(struct rst_ctx *rc)
{
	struct rst_mnt *rm = rc->ns.mnt;
	int ret;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return log_errno(-errno, "can't make the tree's mount namespace private");
	ret = trim_host_mounts(rm);
	for (int i = 0; i < rm->nr && !ret; i++) {
		if (rm->mnts[i]->kind == MNT_KIND__MNT_TMPFS)
			ret = mount_tmpfs(rc, rm->mnts[i]);
		else if (rm->mnts[i]->kind == MNT_KIND__MNT_DEVPTS)
			ret = mount_devpts(rc, rm->mnts[i]);
	}
	return ret;
}

/* proc belongs to the pid namespace of whoever mounts it: the tree's root does. */
int mnt_restore_proc(struct rst_ctx *rc)
{
	struct rst_mnt *rm = rc->ns.mnt;
	struct rst_task *t = &rc->tasks[0];
	struct rsys *r = &t->rs;

	for (int i = 0; rm && i < rm->nr; i++) {
		MntEntry *m = rm->mnts[i];
		uint64_t src, mp, type, data;

		if (m->kind != MNT_KIND__MNT_PROC)
			continue;
		if (strlen(m->mountpoint) >= PAGE_SIZE || strlen(m->data) >= PAGE_SIZE) {
			pr_err("proc mount %s: path or options too long\n", m->mountpoint);
			return -ENAMETOOLONG;
		}
		src = rsys_scratch_put(r, 0, m->source, strlen(m->source) + 1);
		type = rsys_scratch_put(r, 256, "proc", 5);
		mp = rsys_scratch_put(r, PAGE_SIZE, m->mountpoint, strlen(m->mountpoint) + 1);
		data = rsys_scratch_put(r, 2 * PAGE_SIZE, m->data, strlen(m->data) + 1);
		if (!src || !type || !mp || !data)
			return -EIO;
		if (RCALL(r, "mount (proc)", SYS_mount, src, mp, type,
			  m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME | MS_NOATIME), data) < 0) {
			pr_err("pid %d: can't mount proc on %s\n", t->it->pid, m->mountpoint);
			return -EIO;
		}
	}
	return 0;
}
