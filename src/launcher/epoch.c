#define LOG_PREFIX "crlaunch: "
/*
 * The checkpoint directory (doc/epochs.md):
 *   CKPT_DIR/job                   identity of the job the directory belongs to
 *   CKPT_DIR/epoch-NNNNNN/node-000/  engine images of node 0
 *   CKPT_DIR/epoch-NNNNNN/MANIFEST   written last: temporary name, fsync, rename
 *   CKPT_DIR/latest -> epoch-NNNNNN
 * An epoch is consistent when its MANIFEST parses and every file it lists has
 * the recorded size and checksum. Removal deletes the MANIFEST first, so a
 * removal cut short leaves an epoch nobody will use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "launch.h"
#include "log.h"
#include "util.h"

static bool parse_epoch_name(const char *name, unsigned *epoch)
{
	char *end;
	unsigned long v;

	if (strncmp(name, "epoch-", 6) || strlen(name) != 12)
		return false;
	v = strtoul(name + 6, &end, 10);
	if (*end || name[6] < '0' || name[6] > '9')
		return false;
	*epoch = v;
	return true;
}

int epoch_read_manifest(int dirfd, unsigned epoch, struct manifest *m, bool quiet)
{
	char path[64], err[128];
	_cleanup_free_ char *text = NULL;
	ssize_t n;

	snprintf(path, sizeof(path), EPOCH_NAME_FMT "/MANIFEST", epoch);
	n = read_file_at(dirfd, path, &text);
	if (n < 0)
		return n;
	if (manifest_parse(text, n, m, err, sizeof(err)) < 0) {
		if (!quiet)
			pr_warn(EPOCH_NAME_FMT ": MANIFEST is not valid: %s\n", epoch, err);
		return -EBADMSG;
	}
	if (m->epoch != epoch) {
		if (!quiet)
			pr_warn(EPOCH_NAME_FMT ": MANIFEST names epoch %u\n", epoch, m->epoch);
		manifest_free(m);
		return -EBADMSG;
	}
	return 0;
}

static int cmp_epoch_desc(const void *a, const void *b)
{
	const struct epoch_info *x = a, *y = b;

	return x->epoch < y->epoch ? 1 : x->epoch > y->epoch ? -1 : 0;
}

int epochs_list(int dirfd, struct epoch_info **out, int *nr)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct epoch_info *e = NULL;
	struct dirent *de;
	int n = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return log_errno(-errno, "can't list the checkpoint directory");
	}
	rewinddir(d);	/* the duplicate shares its position with dirfd */
	while ((de = readdir(d))) {
		unsigned epoch;

		if (!parse_epoch_name(de->d_name, &epoch))
			continue;
		e = xrealloc(e, (n + 1) * sizeof(*e));
		e[n] = (struct epoch_info){ .epoch = epoch };
		e[n].has_manifest = epoch_read_manifest(dirfd, epoch, &e[n].m, true) == 0;
		n++;
	}
	closedir(d);
	if (n)
		qsort(e, n, sizeof(*e), cmp_epoch_desc);
	*out = e;
	*nr = n;
	return 0;
}

void epochs_free(struct epoch_info *e, int nr)
{
	for (int i = 0; i < nr; i++)
		if (e[i].has_manifest)
			manifest_free(&e[i].m);
	free(e);
}

/* XXH64 of a file, its size, and an fsync while we hold it open. */
static int sum_file(int dirfd, const char *path, uint64_t *size, uint64_t *hash, bool sync)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	static char buf[1 << 20];
	struct xxh64 h;
	ssize_t n;

	if (fd < 0)
		return -errno;
	xxh64_init(&h, 0);
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		xxh64_update(&h, buf, n);
		*size += n;
	}
	if (n < 0)
		return -errno;
	if (sync && fsync(fd) < 0)
		return -errno;
	*hash = xxh64_final(&h);
	return 0;
}

int epoch_verify(int dirfd, const struct manifest *m, char *why, size_t whylen)
{
	for (int i = 0; i < m->nr_files; i++) {
		const struct file_sum *f = &m->files[i];
		char path[PATH_MAX_LEN];
		uint64_t size, hash;
		int ret;

		snprintf(path, sizeof(path), EPOCH_NAME_FMT "/%s", m->epoch, f->name);
		ret = sum_file(dirfd, path, &size, &hash, false);
		if (ret < 0) {
			snprintf(why, whylen, "%s: %s", f->name, strerror(-ret));
			return -EBADMSG;
		}
		if (size != f->size || hash != f->hash) {
			snprintf(why, whylen, "%s: %s mismatch (%" PRIu64 " bytes, %016" PRIx64
				 "; the MANIFEST says %" PRIu64 ", %016" PRIx64 ")", f->name,
				 size != f->size ? "size" : "checksum", size, hash, f->size, f->hash);
			return -EBADMSG;
		}
	}
	return 0;
}

static int sum_dir(int dirfd, const char *rel, struct manifest *m)
{
	_cleanup_closedir_ DIR *d = NULL;
	char dpath[PATH_MAX_LEN], path[PATH_MAX_LEN];
	struct dirent *de;
	int fd, ret;

	snprintf(dpath, sizeof(dpath), EPOCH_NAME_FMT "/%s", m->epoch, rel);
	snprintf(path, sizeof(path), "%s", dpath);
	fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "can't open %s", path);
	if (fsync(fd) < 0) {
		close(fd);
		return log_errno(-errno, "can't fsync %s", path);
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return log_errno(-errno, "can't list %s", path);
	}
	while ((de = readdir(d))) {
		struct file_sum f = { 0 };

		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return log_errno(-errno, "can't stat %s/%s", dpath, de->d_name);
		if (!S_ISREG(st.st_mode)) {
			pr_err("%s/%s: not a regular file in an image directory\n", dpath, de->d_name);
			return -EINVAL;
		}
		if (asprintf(&f.name, "%s/%s", rel, de->d_name) < 0)
			abort();
		snprintf(path, sizeof(path), EPOCH_NAME_FMT "/%s", m->epoch, f.name);
		ret = sum_file(dirfd, path, &f.size, &f.hash, true);
		if (ret < 0) {
			free(f.name);
			return log_errno(ret, "can't read %s", path);
		}
		m->files = xrealloc(m->files, (m->nr_files + 1) * sizeof(*m->files));
		m->files[m->nr_files++] = f;
		m->bytes += f.size;
	}
	return 0;
}

static int cmp_file_name(const void *a, const void *b)
{
	return strcmp(((const struct file_sum *)a)->name, ((const struct file_sum *)b)->name);
}

int epoch_sum_files(int dirfd, unsigned epoch, struct manifest *m)
{
	m->epoch = epoch;
	m->bytes = 0;
	for (int n = 0; n < m->nr_nodes; n++) {
		char rel[32];
		int ret;

		snprintf(rel, sizeof(rel), "node-%03d", n);
		ret = sum_dir(dirfd, rel, m);
		if (ret < 0)
			return ret;
	}
	if (m->nr_files)
		qsort(m->files, m->nr_files, sizeof(*m->files), cmp_file_name);
	return 0;
}

static int write_file_sync(int dirfd, const char *path, const char *data, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return log_errno(-errno, "can't create %s", path);
	if (write_full(fd, data, len) != (ssize_t)len)
		return log_errno(-errno, "can't write %s", path);
	if (fsync(fd) < 0)
		return log_errno(-errno, "can't fsync %s", path);
	return 0;
}

int epoch_commit(int dirfd, const struct manifest *m, int (*fault)(const char *step))
{
	char tmp[64], final[64], ename[32];
	size_t len;
	_cleanup_free_ char *text = manifest_format(m, &len);
	_cleanup_close_ int efd = -1;
	int ret;

	snprintf(ename, sizeof(ename), EPOCH_NAME_FMT, m->epoch);
	snprintf(tmp, sizeof(tmp), "%s/MANIFEST.tmp", ename);
	snprintf(final, sizeof(final), "%s/MANIFEST", ename);
	if (fault("before-manifest") < 0)
		return -ECANCELED;
	ret = write_file_sync(dirfd, tmp, text, len);
	if (ret < 0)
		return ret;
	if (fault("manifest-tmp") < 0)
		return -ECANCELED;
	if (renameat(dirfd, tmp, dirfd, final) < 0)
		return log_errno(-errno, "can't rename %s to MANIFEST", tmp);
	efd = openat(dirfd, ename, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (efd < 0 || fsync(efd) < 0)
		return log_errno(-errno, "can't fsync %s", ename);
	if (fault("after-manifest") < 0)
		return -ECANCELED;
	/* latest: a convenience for people; restart scans, it does not trust the link. */
	unlinkat(dirfd, "latest.tmp", 0);
	if (symlinkat(ename, dirfd, "latest.tmp") < 0 || renameat(dirfd, "latest.tmp", dirfd, "latest") < 0)
		pr_warn("can't point 'latest' at %s: %s\n", ename, strerror(errno));
	if (fsync(dirfd) < 0)
		return log_errno(-errno, "can't fsync the checkpoint directory");
	return 0;
}

int rm_tree_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
		return errno == ENOENT ? 0 : -errno;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) && !ret) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_DIR)
			ret = rm_tree_at(fd, de->d_name);
		else if (unlinkat(fd, de->d_name, 0) < 0)
			ret = errno == EISDIR ? rm_tree_at(fd, de->d_name) : -errno;
	}
	closedir(d);
	if (!ret && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		ret = -errno;
	return ret;
}

int epoch_remove(int dirfd, unsigned epoch)
{
	char name[32], path[64];
	int ret;

	snprintf(name, sizeof(name), EPOCH_NAME_FMT, epoch);
	snprintf(path, sizeof(path), "%s/MANIFEST", name);
	/* The MANIFEST first: half removed, the epoch is plainly not consistent. */
	if (unlinkat(dirfd, path, 0) < 0 && errno != ENOENT)
		return log_errno(-errno, "can't remove %s", path);
	ret = rm_tree_at(dirfd, name);
	if (ret < 0)
		return log_errno(ret, "can't remove %s", name);
	return 0;
}

int epochs_prune(int dirfd, int keep, unsigned busy)
{
	struct epoch_info *e;
	int nr, kept = 0, ret = epochs_list(dirfd, &e, &nr);

	if (ret < 0)
		return ret;
	for (int i = 0; i < nr; i++) {
		if (e[i].epoch == busy) {
			kept += e[i].has_manifest;
			continue;
		}
		if (e[i].has_manifest && kept < keep) {
			kept++;
			continue;
		}
		pr_info("removing " EPOCH_NAME_FMT "%s\n", e[i].epoch,
			e[i].has_manifest ? "" : " (no valid MANIFEST)");
		if (epoch_remove(dirfd, e[i].epoch) < 0)
			ret = -EIO;
	}
	epochs_free(e, nr);
	return ret;
}

int epochs_print(int dirfd, FILE *f)
{
	struct epoch_info *e;
	int nr, ret = epochs_list(dirfd, &e, &nr);

	if (ret < 0)
		return ret;
	fprintf(f, "%-12s  %-10s  %-20s  %9s  %10s  %10s\n", "EPOCH", "STATE", "TIME (UTC)", "PROCESSES",
		"BYTES", "FROZEN");
	for (int i = 0; i < nr; i++) {
		char when[32] = "-", bytes[32] = "-", frozen[32] = "-", procs[16] = "-";
		const char *state = "incomplete";

		if (e[i].has_manifest) {
			char why[256];
			time_t t = e[i].m.time_ns / 1000000000ull;
			struct tm tm;

			state = epoch_verify(dirfd, &e[i].m, why, sizeof(why)) ? "corrupt" : "consistent";
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
			fmt_bytes(e[i].m.bytes, bytes, sizeof(bytes));
			snprintf(frozen, sizeof(frozen), "%.1f ms", e[i].m.frozen_ns / 1e6);
			snprintf(procs, sizeof(procs), "%d", e[i].m.processes);
		}
		fprintf(f, EPOCH_NAME_FMT "  %-10s  %-20s  %9s  %10s  %10s\n", e[i].epoch, state, when,
			procs, bytes, frozen);
	}
	epochs_free(e, nr);
	return 0;
}

/* "90", "90s", "1500ms", "5m", "2h", "1d". */
int parse_duration(const char *s, uint64_t *ns)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "", 1000000000ull }, { "s", 1000000000ull }, { "ms", 1000000ull },
		{ "m", 60000000000ull }, { "min", 60000000000ull }, { "h", 3600000000000ull },
		{ "d", 86400000000000ull },
	};
	char *end;
	double v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || v > 1e9)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (!strcmp(end, units[i].suffix)) {
			*ns = (uint64_t)(v * units[i].mult);
			return 0;
		}
	}
	return -EINVAL;
}

char *fmt_bytes(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ull << 30))
		snprintf(buf, len, "%.2f GiB", b / (double)(1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(buf, len, "%.1f MiB", b / (double)(1ull << 20));
	else if (b >= 1024)
		snprintf(buf, len, "%.1f KiB", b / 1024.0);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
	return buf;
}

/* /proc/self/fd/N/control: short enough for sun_path whatever CKPT_DIR is. */
int control_path(int dirfd, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d/" CONTROL_SOCK, dirfd);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
