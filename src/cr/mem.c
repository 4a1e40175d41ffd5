#define LOG_PREFIX "mem: "
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/rseq.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include "cr.h"
#include "image.h"
#include "linux/cr-compat.h"
#include "log.h"
#include "pagemap.pb-c.h"
#include "util.h"

#define PE_PRESENT 1u
#define COPY_CHUNK (64UL << 20)
#define SCAN_VEC 512

/* ---- dump: classify VMAs ------------------------------------------------ */

static bool path_is(const char *p, const char *name) { return p && !strcmp(p, name); }

static bool is_deleted(const char *p)
{
	size_t l = p ? strlen(p) : 0;
	return l > 10 && !strcmp(p + l - 10, " (deleted)");
}

static int vma_kind(pid_t pid, const struct proc_vma *v)
{
	const char *p = v->path;

	if (path_is(p, "[vvar]") || path_is(p, "[vvar_vclock]"))
		return VMA_KIND__VMA_VVAR;
	if (path_is(p, "[vdso]"))
		return VMA_KIND__VMA_VDSO;
	if (v->io || v->pfnmap || v->mixedmap) {
		pr_err("pid %d: mapping %#" PRIx64 "-%#" PRIx64 " (%s) is a device mapping; not supported\n",
		       pid, v->start, v->end, p ? p : "anonymous");
		return -EOPNOTSUPP;
	}
	if (v->shared && (path_is(p, "/dev/zero (deleted)") || (!p && v->ino)))
		return VMA_KIND__VMA_ANON_SHARED;
	if (!v->shared && (!p || path_is(p, "[heap]") || path_is(p, "[stack]") ||
			   !strncmp(p, "[anon:", 6)))
		return path_is(p, "[stack]") ? VMA_KIND__VMA_STACK :
		       path_is(p, "[heap]") ? VMA_KIND__VMA_HEAP : VMA_KIND__VMA_ANON_PRIVATE;
	if (v->shared && p && !strncmp(p, "/SYSV", 5) && is_deleted(p))
		return VMA_KIND__VMA_SYSV_SHM;
	/* Unlinked files and memfds too (ghost.c); SysV segments are not files. */
	if (p && p[0] == '/' && v->ino && strncmp(p, "/SYSV", 5))
		return v->shared ? VMA_KIND__VMA_FILE_SHARED : VMA_KIND__VMA_FILE_PRIVATE;
	pr_err("pid %d: mapping %#" PRIx64 "-%#" PRIx64 " of '%s' is not supported yet\n", pid,
	       v->start, v->end, p ? p : "anonymous");
	return -EOPNOTSUPP;
}

/* The file behind a mapping must be the one we will find by name at restore. */
static int check_mapped_file(pid_t pid, const struct proc_vma *v, VmaEntry *e)
{
	char tp[PATH_MAX_LEN + 32];
	struct stat st;

	if (stat(ns_tree_path(v->path, tp, sizeof(tp)), &st) < 0) {
		pr_perror("pid %d: mapped file '%s'", pid, v->path);
		return -errno;
	}
	if (st.st_ino != v->ino || major(st.st_dev) != v->dev_major || minor(st.st_dev) != v->dev_minor) {
		pr_err("pid %d: mapping %#" PRIx64 " of '%s': the path now names another file\n", pid,
		       v->start, v->path);
		return -ESTALE;
	}
	e->has_dev = e->has_ino = e->has_file_size = true;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->file_size = st.st_size;
	return 0;
}

static int fill_vma_entry(struct dump_ctx *c, const struct proc_vma *v, VmaEntry *e)
{
	pid_t pid = c->it->pid;
	int kind = vma_kind(pid, v);
	char src[96];

	if (kind < 0)
		return kind;
	vma_entry__init(e);
	e->start = v->start;
	e->end = v->end;
	e->kind = kind;
	e->prot = v->prot;
	e->flags = (v->shared ? MAP_SHARED : MAP_PRIVATE) | (v->growsdown ? MAP_GROWSDOWN : 0) |
		   (v->noreserve ? MAP_NORESERVE : 0) | (v->locked ? MAP_LOCKED : 0);
	e->pgoff = v->pgoff;
	e->madv = v->madv;
	if (v->path && v->path[0] == '[')
		e->name = xstrdup(v->path);
	if (kind == VMA_KIND__VMA_FILE_PRIVATE || kind == VMA_KIND__VMA_FILE_SHARED) {
		e->path = xstrdup(v->path);
		e->has_file_rw = true;
		e->file_rw = v->shared && v->maywrite;
		if (!is_deleted(v->path))
			return check_mapped_file(pid, v, e);
		snprintf(src, sizeof(src), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start, v->end);
		e->has_ghost_id = true;
		return ghost_dump(c->files, c->dirfd, c->dir, pid, src, v->path, &e->ghost_id);
	}
	if (kind == VMA_KIND__VMA_ANON_SHARED || kind == VMA_KIND__VMA_SYSV_SHM) {
		e->has_shmid = true;
		e->shmid = v->ino;	/* a SysV segment's inode number is its id */
	}
	if (kind == VMA_KIND__VMA_SYSV_SHM && !(c->files->tree->owned_ns & CLONE_NEWIPC)) {
		pr_err("pid %d: mapping %#" PRIx64 "-%#" PRIx64 " is SysV shared memory segment %" PRIu64
		       ", saved only with an IPC namespace of the tree's own; not supported\n",
		       pid, v->start, v->end, v->ino);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* ---- dump: pages ---------------------------------------------------------- */

/*
 * Pages are copied out of the target into one buffer while a writer thread
 * writes the other to the image, so the copy overlaps the I/O. crtool dump
 * never forks, so a thread is safe here.
 */
struct async_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;
	const char *path;
	const uint8_t *data;
	size_t len;
	bool busy, stop;
	int err;
	bool reported;			/* err was logged (once) */
};

static void *aw_main(void *arg)
{
	struct async_writer *aw = arg;

	pthread_mutex_lock(&aw->lock);
	for (;;) {
		while (!aw->busy && !aw->stop)
			pthread_cond_wait(&aw->cond, &aw->lock);
		if (!aw->busy)
			break;
		pthread_mutex_unlock(&aw->lock);
		ssize_t n = write_full(aw->fd, aw->data, aw->len);
		pthread_mutex_lock(&aw->lock);
		if (n < 0 && !aw->err)
			aw->err = n;
		aw->busy = false;
		pthread_cond_broadcast(&aw->cond);
	}
	pthread_mutex_unlock(&aw->lock);
	return NULL;
}

static int aw_wait_idle(struct async_writer *aw)
{
	int err;

	pthread_mutex_lock(&aw->lock);
	while (aw->busy)
		pthread_cond_wait(&aw->cond, &aw->lock);
	err = aw->err;
	pthread_mutex_unlock(&aw->lock);
	if (err && !aw->reported) {
		aw->reported = true;
		return log_errno(err, "can't write %s", aw->path);
	}
	return err;
}

static int aw_submit(struct async_writer *aw, const uint8_t *data, size_t len)
{
	int ret = aw_wait_idle(aw);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&aw->lock);
	aw->data = data;
	aw->len = len;
	aw->busy = true;
	pthread_cond_broadcast(&aw->cond);
	pthread_mutex_unlock(&aw->lock);
	return 0;
}

static int aw_start(struct async_writer *aw, int fd, const char *path)
{
	int ret;

	memset(aw, 0, sizeof(*aw));
	aw->fd = fd;
	aw->path = path;
	pthread_mutex_init(&aw->lock, NULL);
	pthread_cond_init(&aw->cond, NULL);
	ret = pthread_create(&aw->thread, NULL, aw_main, aw);
	if (ret)
		return log_errno(-ret, "can't start the writer thread for %s", path);
	return 0;
}

/* Waits for the last write; returns its error, if any. */
static int aw_stop(struct async_writer *aw)
{
	int ret = aw_wait_idle(aw);

	pthread_mutex_lock(&aw->lock);
	aw->stop = true;
	pthread_cond_broadcast(&aw->cond);
	pthread_mutex_unlock(&aw->lock);
	pthread_join(aw->thread, NULL);
	pthread_mutex_destroy(&aw->lock);
	pthread_cond_destroy(&aw->cond);
	return ret;
}

struct page_writer {
	struct async_writer aw;
	const char *path;
	struct img *pm;			/* pagemap-PID.img */
	uint64_t offset;		/* bytes handed to the writer */
	uint8_t *bufs[2];
	uint8_t *buf;			/* the one being filled */
	size_t buf_len, cap;
	struct iovec riov[1024];	/* remote ranges of the batch in buf */
	int nr_riov;
	pid_t pid;
	/* the pagemap entry being grown */
	uint64_t pe_vaddr, pe_pages, pe_off;
};

static int pw_emit_entry(struct page_writer *w)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (!w->pe_pages)
		return 0;
	pe.vaddr = w->pe_vaddr;
	pe.nr_pages = w->pe_pages;
	pe.flags = PE_PRESENT;
	pe.has_offset = true;
	pe.offset = w->pe_off;
	w->pe_pages = 0;
	return img_write_msg(w->pm, &pe.base);
}

static int pw_flush(struct page_writer *w)
{
	ssize_t n;

	if (w->nr_riov) {
		struct iovec l = { w->buf, w->buf_len };
		n = process_vm_readv(w->pid, &l, 1, w->riov, w->nr_riov, 0);
		if (n != (ssize_t)w->buf_len) {
			if (n < 0)
				pr_perror("pid %d: can't read memory at %p", w->pid, w->riov[0].iov_base);
			else
				pr_err("pid %d: short memory read at %p (%zd of %zu)\n", w->pid,
				       w->riov[0].iov_base, n, w->buf_len);
			return -EIO;
		}
		w->nr_riov = 0;
	}
	if (!w->buf_len)
		return 0;
	n = aw_submit(&w->aw, w->buf, w->buf_len);
	if (n < 0)
		return n;
	w->buf = w->buf == w->bufs[0] ? w->bufs[1] : w->bufs[0];
	w->offset += w->buf_len;
	w->buf_len = 0;
	return 0;
}

/* Note that pages [vaddr, vaddr+len) land at the current end of the pages image. */
static int pw_note(struct page_writer *w, uint64_t vaddr, uint64_t len)
{
	uint64_t off = w->offset + w->buf_len;

	if (w->pe_pages && w->pe_vaddr + w->pe_pages * PAGE_SIZE == vaddr &&
	    w->pe_off + w->pe_pages * PAGE_SIZE == off && w->pe_pages + len / PAGE_SIZE < UINT32_MAX) {
		w->pe_pages += len / PAGE_SIZE;
		return 0;
	}
	if (pw_emit_entry(w) < 0)
		return -EIO;
	w->pe_vaddr = vaddr;
	w->pe_pages = len / PAGE_SIZE;
	w->pe_off = off;
	return 0;
}

/* Queue a range of target memory, read with process_vm_readv. */
static int pw_add_remote(struct page_writer *w, uint64_t vaddr, uint64_t len)
{
	while (len) {
		uint64_t n = min_t(uint64_t, len, w->cap - w->buf_len);
		int ret;

		if (w->nr_riov == ARRAY_SIZE(w->riov) || !n) {
			if ((ret = pw_flush(w)) < 0)
				return ret;
			continue;
		}
		if ((ret = pw_note(w, vaddr, n)) < 0)
			return ret;
		w->riov[w->nr_riov].iov_base = (void *)vaddr;
		w->riov[w->nr_riov++].iov_len = n;
		w->buf_len += n;
		vaddr += n;
		len -= n;
	}
	return 0;
}

/* Queue a range read from a file (the shmem object behind a shared mapping). */
static int pw_add_file(struct page_writer *w, int fd, uint64_t off, uint64_t vaddr, uint64_t len)
{
	while (len) {
		uint64_t n;
		ssize_t r;
		int ret;

		if ((ret = pw_flush(w)) < 0)
			return ret;
		n = min_t(uint64_t, len, w->cap);
		if ((ret = pw_note(w, vaddr, n)) < 0)
			return ret;
		r = pread_full(fd, w->buf, n, off);
		if (r != (ssize_t)n)
			return log_errno(r < 0 ? r : -EIO, "pid %d: can't read shared memory at %#" PRIx64,
					 w->pid, vaddr);
		w->buf_len = n;
		vaddr += n;
		off += n;
		len -= n;
	}
	return pw_flush(w);
}

/* process_vm_readv needs PROT_READ; /proc/PID/mem reads what ptrace could. */
static int pw_add_unreadable(struct page_writer *w, uint64_t vaddr, uint64_t len)
{
	char path[64];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/mem", w->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "can't open %s", path);
	return pw_add_file(w, fd, vaddr, vaddr, len);
}

static int scan_vma(struct page_writer *w, int pagemap_fd, const VmaEntry *e)
{
	struct cr_page_region vec[SCAN_VEC];
	struct cr_pm_scan_arg arg = {
		.size = sizeof(arg), .start = e->start, .end = e->end,
		.vec = (uint64_t)(uintptr_t)vec, .vec_len = SCAN_VEC,
		.category_anyof_mask = CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED,
		.return_mask = CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED,
	};

	/* Kernels before PAGE_IS_GUARD reject the bit; they have no guard markers either. */
	static uint64_t guard_bit = CR_PAGE_IS_GUARD;

	/*
	 * Zero pages read back as zero anyway, unmodified file pages stay in the
	 * file, and guard markers (non-present entries) are no data.
	 */
	arg.category_inverted = arg.category_mask = CR_PAGE_IS_PFNZERO | guard_bit;
	if (e->kind == VMA_KIND__VMA_FILE_PRIVATE)
		arg.category_inverted = arg.category_mask |= CR_PAGE_IS_FILE;
	while (arg.start < arg.end) {
		long n = ioctl(pagemap_fd, CR_PAGEMAP_SCAN, &arg);

		if (n < 0 && errno == EINVAL && guard_bit) {
			guard_bit = 0;
			arg.category_inverted &= ~CR_PAGE_IS_GUARD;
			arg.category_mask &= ~CR_PAGE_IS_GUARD;
			continue;
		}

		if (n < 0) {
			pr_perror("pid %d: PAGEMAP_SCAN of %#" PRIx64 "-%#" PRIx64, w->pid, (uint64_t)arg.start,
				  (uint64_t)arg.end);
			return -errno;
		}
		for (long i = 0; i < n; i++) {
			uint64_t len = vec[i].end - vec[i].start;
			int ret = e->prot & PROT_READ ? pw_add_remote(w, vec[i].start, len)
						      : pw_add_unreadable(w, vec[i].start, len);
			if (ret < 0)
				return ret;
		}
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
	return 0;
}

static int dump_shmem(struct dump_ctx *c, struct page_writer *w, const VmaEntry *e)
{
	char path[96];
	_cleanup_close_ int fd = -1;
	uint64_t off = e->pgoff, end = e->pgoff + (e->end - e->start);

	for (int i = 0; i < c->shm->nr; i++)
		if (c->shm->ino[i] == e->shmid)
			return 0;	/* saved with an earlier mapping */
	c->shm->ino = xrealloc(c->shm->ino, (c->shm->nr + 1) * sizeof(uint64_t));
	c->shm->ino[c->shm->nr++] = e->shmid;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, c->it->pid,
		 e->start, e->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("pid %d: can't open the shared memory behind %s", c->it->pid, path);
		return -errno;
	}
	if (pw_flush(w) < 0)
		return -EIO;
	/* Only the populated parts of the object: SEEK_DATA/SEEK_HOLE. */
	while (off < end) {
		off_t d = lseek(fd, off, SEEK_DATA), h;
		int ret;

		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0)
			return log_errno(-errno, "pid %d: SEEK_DATA in %s", c->it->pid, path);
		if ((uint64_t)d >= end)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return log_errno(-errno, "pid %d: SEEK_HOLE in %s", c->it->pid, path);
		h = min_t(uint64_t, PAGE_ALIGN((uint64_t)h), end);
		ret = pw_add_file(w, fd, d, e->start + (d - e->pgoff), h - d);
		if (ret < 0)
			return ret;
		off = h;
	}
	return 0;
}

static int dump_pages(struct dump_ctx *c, MmEntry *mm)
{
	char name[64], ppath[PATH_MAX_LEN];
	_cleanup_close_ int pagemap_fd = -1;
	struct page_writer w = { .pid = c->it->pid };
	PagemapHead head = PAGEMAP_HEAD__INIT;
	_cleanup_close_ int fd = -1;
	int ret = 0;

	snprintf(name, sizeof(name), "/proc/%d/pagemap", c->it->pid);
	pagemap_fd = open(name, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		return log_errno(-errno, "can't open %s", name);
	snprintf(name, sizeof(name), "pages-%d.img", c->it->pid);
	snprintf(ppath, sizeof(ppath), "%s/%s", c->dir, name);
	w.path = ppath;
	fd = openat(c->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_errno(-errno, "can't create %s", ppath);
	w.pm = img_open_write(c->dirfd, c->dir, IMG_PAGEMAP, c->it->pid);
	if (!w.pm)
		return -EIO;
	if (aw_start(&w.aw, fd, ppath) < 0) {
		img_abort(w.pm);
		return -EIO;
	}
	w.cap = COPY_CHUNK;
	w.bufs[0] = xmalloc(w.cap);
	w.bufs[1] = xmalloc(w.cap);
	w.buf = w.bufs[0];
	head.page_size = PAGE_SIZE;
	ret = img_write_msg(w.pm, &head.base);
	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *e = mm->vmas[i];

		/* An entry never spans two VMAs: restore looks each up by address. */
		ret = pw_emit_entry(&w);
		if (ret)
			break;
		switch (e->kind) {
		case VMA_KIND__VMA_ANON_PRIVATE:
		case VMA_KIND__VMA_STACK:
		case VMA_KIND__VMA_HEAP:
		case VMA_KIND__VMA_FILE_PRIVATE:
			ret = scan_vma(&w, pagemap_fd, e);
			break;
		case VMA_KIND__VMA_ANON_SHARED:
			ret = dump_shmem(c, &w, e);
			break;
		default:
			break;
		}
	}
	if (!ret)
		ret = pw_flush(&w);
	if (!ret)
		ret = pw_emit_entry(&w);
	if (aw_stop(&w.aw) < 0 && !ret)
		ret = -EIO;
	if (!ret && fsync(fd) < 0)
		ret = log_errno(-errno, "can't fsync %s", ppath);
	free(w.bufs[0]);
	free(w.bufs[1]);
	if (ret) {
		img_abort(w.pm);
		return ret;
	}
	c->bytes_written += w.offset;
	c->pages_written += w.offset / PAGE_SIZE;
	return img_close(w.pm);
}

/* Guard regions read as holes to everything else: list them by their own category. */
static int scan_guards(pid_t pid, MmEntry *mm)
{
	char name[64];
	_cleanup_close_ int fd = -1;
	struct cr_page_region vec[SCAN_VEC];

	snprintf(name, sizeof(name), "/proc/%d/pagemap", pid);
	fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "can't open %s", name);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		struct cr_pm_scan_arg arg = {
			.size = sizeof(arg), .start = e->start, .end = e->end,
			.vec = (uint64_t)(uintptr_t)vec, .vec_len = SCAN_VEC,
			.category_anyof_mask = CR_PAGE_IS_GUARD, .return_mask = CR_PAGE_IS_GUARD,
		};

		if (e->kind == VMA_KIND__VMA_VDSO || e->kind == VMA_KIND__VMA_VVAR)
			continue;
		while (arg.start < arg.end) {
			long n = ioctl(fd, CR_PAGEMAP_SCAN, &arg);

			if (n < 0 && errno == EINVAL)
				return 0;	/* no PAGE_IS_GUARD: the kernel has no guard regions either */
			if (n < 0)
				return log_errno(-errno, "pid %d: PAGEMAP_SCAN for guard regions", pid);
			for (long k = 0; k < n; k++) {
				GuardRange *g = xmalloc(sizeof(*g));

				guard_range__init(g);
				g->start = vec[k].start;
				g->end = vec[k].end;
				mm->guards = xrealloc(mm->guards, (mm->n_guards + 1) * sizeof(*mm->guards));
				mm->guards[mm->n_guards++] = g;
			}
			if (arg.walk_end <= arg.start)
				break;
			arg.start = arg.walk_end;
		}
	}
	return 0;
}

int dump_task_mm(struct dump_ctx *c)
{
	MmEntry *mm = xmalloc(sizeof(*mm));
	int ret = 0;

	mm_entry__init(mm);
	mm->vmas = xzalloc(sizeof(*mm->vmas) * (c->nr_vmas + 1));
	for (int i = 0; i < c->nr_vmas && !ret; i++) {
		if (path_is(c->vmas[i].path, "[vsyscall]"))
			continue;
		mm->vmas[mm->n_vmas] = xmalloc(sizeof(VmaEntry));
		vma_entry__init(mm->vmas[mm->n_vmas]);
		ret = fill_vma_entry(c, &c->vmas[i], mm->vmas[mm->n_vmas++]);
	}
	if (!ret)
		ret = dump_pages(c, mm);
	if (!ret)
		ret = scan_guards(c->it->pid, mm);
	if (!ret)
		ret = img_write_one(c->dirfd, c->dir, IMG_MM, c->it->pid, &mm->base);
	protobuf_c_message_free_unpacked(&mm->base, NULL);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

static struct rst_shmem *find_shmem(struct rst_ctx *rc, uint64_t ino)
{
	for (int i = 0; i < rc->nr_shm; i++)
		if (rc->shm[i].ino == ino)
			return &rc->shm[i];
	return NULL;
}

/* Shared anonymous objects are created here and opened by each task by path. */
int restore_shmem_prepare(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		MmEntry *mm = rc->tasks[i].mm;

		for (size_t k = 0; mm && k < mm->n_vmas; k++) {
			VmaEntry *e = mm->vmas[k];
			uint64_t need = e->pgoff + (e->end - e->start);
			struct rst_shmem *s;

			if (e->kind != VMA_KIND__VMA_ANON_SHARED)
				continue;
			s = find_shmem(rc, e->shmid);
			if (!s) {
				rc->shm = xrealloc(rc->shm, (rc->nr_shm + 1) * sizeof(*rc->shm));
				s = &rc->shm[rc->nr_shm++];
				memset(s, 0, sizeof(*s));
				s->ino = e->shmid;
			}
			s->size = max_t(uint64_t, s->size, need);
		}
	}
	for (int i = 0; i < rc->nr_shm; i++) {
		struct rst_shmem *s = &rc->shm[i];
		void *a = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (a == MAP_FAILED)
			return log_errno(-errno, "can't create shared memory %#" PRIx64 " (%" PRIu64 " bytes)",
					 s->ino, s->size);
		s->addr = a;
		snprintf(s->path, sizeof(s->path), "/proc/%d/map_files/%lx-%lx", getpid(),
			 (unsigned long)a, (unsigned long)a + s->size);
	}
	return 0;
}

/* Put a NUL-terminated string into the task's scratch area (at its end). */
static uint64_t scratch_str(struct rsys *r, const char *s)
{
	size_t len = strlen(s) + 1;

	if (len > 2 * PAGE_SIZE) {
		pr_err("path too long for the scratch area: %s\n", s);
		return 0;
	}
	return rsys_scratch_put(r, r->scratch_len - 2 * PAGE_SIZE, s, len);
}

long remote_open_path(struct rsys *r, const char *path, int flags)
{
	uint64_t a = scratch_str(r, path);
	long fd;

	if (!a)
		return -EIO;
	fd = RCALL(r, "openat", SYS_openat, AT_FDCWD, a, flags | O_CLOEXEC, 0);
	if (fd < 0)
		pr_err("pid %d: can't open '%s' in the restored task\n", r->tid, path);
	return fd;
}

struct range { uint64_t start, end; };

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* A free spot for our code and scratch, outside the image's VMAs and the current ones. */
static uint64_t find_hole(struct rst_task *t, size_t len, uint64_t *top)
{
	struct proc_vma *cur;
	int nc, n = 0;
	uint64_t addr = 1UL << 20;
	struct range *r;

	if (proc_parse_smaps(t->it->pid, &cur, &nc) < 0)
		return 0;
	r = xmalloc((nc + t->mm->n_vmas) * sizeof(*r));
	*top = arch_task_size();
	for (int i = 0; i < nc; i++) {
		if (cur[i].start >= (1ULL << 56))
			continue;	/* [vsyscall] */
		r[n++] = (struct range){ cur[i].start, cur[i].end };
		*top = max_t(uint64_t, *top, cur[i].end);
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		r[n++] = (struct range){ t->mm->vmas[i]->start, t->mm->vmas[i]->end };
	qsort(r, n, sizeof(*r), cmp_range);
	for (int i = 0; i < n; i++) {
		/* keep a page of distance from a grows-down stack's neighbourhood */
		if (addr + len + PAGE_SIZE <= r[i].start)
			break;
		addr = max_t(uint64_t, addr, r[i].end + PAGE_SIZE);
	}
	proc_free_vmas(cur, nc);
	free(r);
	return addr + len < arch_task_size() ? addr : 0;
}

static int unregister_inherited_rseq(struct rsys *r)
{
	struct cr_ptrace_rseq_configuration rc = { 0 };

	if (ptrace(CR_PTRACE_GET_RSEQ_CONFIGURATION, r->tid, sizeof(rc), &rc) < 0 || !rc.rseq_abi_pointer)
		return 0;
	/* The kernel would keep writing into the old address, now the task's memory. */
	return RCALL(r, "rseq (unregister)", SYS_rseq, rc.rseq_abi_pointer, rc.rseq_abi_size,
		     RSEQ_FLAG_UNREGISTER, rc.signature) < 0 ? -EIO : 0;
}

/* Replace everything the forked restorer left in the task with our hole alone. */
static int clear_address_space(struct rst_task *t)
{
	struct rsys *r = &t->rs;
	size_t len = SCRATCH_PAGES * PAGE_SIZE;
	uint64_t top, hole = find_hole(t, len, &top);
	long a;

	if (!hole) {
		pr_err("pid %d: no room for the restorer's scratch area\n", t->it->pid);
		return -ENOMEM;
	}
	if (unregister_inherited_rseq(r) < 0)
		return -EIO;
	a = RCALL(r, "mmap (restorer area)", SYS_mmap, hole, len,
		  PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		  -1, 0);
	if (a < 0)
		return a;
	if (rsys_write_mem(t->it->pid, hole, cr_syscall_gadget, ARCH_GADGET_LEN) < 0)
		return -EIO;
	t->hole = hole;
	t->hole_len = len;
	r->gadget = hole;
	r->scratch = hole + PAGE_SIZE;
	r->scratch_len = len - PAGE_SIZE;
	if (RCALL(r, "munmap (below)", SYS_munmap, 0, hole) < 0 ||
	    RCALL(r, "munmap (above)", SYS_munmap, hole + len, top - hole - len) < 0)
		return -EIO;
	return 0;
}

static int check_vdso_layout(struct rst_task *t)
{
	struct proc_vma *cur;
	int nc, ret = 0;
	size_t k = 0;

	if (proc_parse_smaps(t->it->pid, &cur, &nc) < 0)
		return -EIO;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		VmaEntry *e = t->mm->vmas[i];
		int j;

		if (e->kind != VMA_KIND__VMA_VDSO && e->kind != VMA_KIND__VMA_VVAR)
			continue;
		for (j = 0; j < nc; j++)
			if (cur[j].start == e->start && cur[j].end == e->end && cur[j].path &&
			    e->name && !strcmp(cur[j].path, e->name))
				break;
		if (j == nc) {
			pr_err("pid %d: the vDSO area of this kernel does not match the image (%s at %#" PRIx64 "-%#" PRIx64 ")\n",
			       t->it->pid, e->name ? e->name : "?", e->start, e->end);
			ret = -EINVAL;
		}
		k++;
	}
	proc_free_vmas(cur, nc);
	return ret;
}

static int map_vdso(struct rst_task *t)
{
	uint64_t start = UINT64_MAX;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		VmaEntry *e = t->mm->vmas[i];
		if (e->kind == VMA_KIND__VMA_VDSO || e->kind == VMA_KIND__VMA_VVAR)
			start = min_t(uint64_t, start, e->start);
	}
	if (start == UINT64_MAX)
		return 0;	/* the task had no vDSO */
	if (RCALL(&t->rs, "arch_prctl(ARCH_MAP_VDSO_64)", SYS_arch_prctl, ARCH_MAP_VDSO_CODE, start) < 0)
		return -EIO;
	return check_vdso_layout(t);
}

struct fd_cache {
	const char *path;
	long fd;
	bool rw;
};

static int cache_close(struct rsys *r, struct fd_cache *fc)
{
	if (fc->fd >= 0 && RCALL(r, "close", SYS_close, fc->fd) < 0)
		return -EIO;
	fc->fd = -1;
	fc->path = NULL;
	return 0;
}

static long cached_open(struct rsys *r, struct fd_cache *fc, const char *path, bool rw)
{
	if (fc->path && fc->fd >= 0 && !strcmp(fc->path, path) && fc->rw == rw)
		return fc->fd;
	if (cache_close(r, fc) < 0)
		return -EIO;
	fc->fd = remote_open_path(r, path, rw ? O_RDWR : O_RDONLY);
	if (fc->fd < 0)
		return fc->fd;
	fc->path = path;
	fc->rw = rw;
	return fc->fd;
}

/*
 * A SysV attach: the whole segment at its place (SHM_REMAP), or, for a piece
 * of one, attached anywhere and the piece moved to its address.
 */
static int map_sysv_shm(struct rst_ctx *rc, struct rst_task *t, VmaEntry *e)
{
	struct rsys *r = &t->rs;
	uint64_t size = PAGE_ALIGN(ipc_shm_size(rc, e->shmid)), len = e->end - e->start;
	int flags = (e->prot & PROT_WRITE ? 0 : SHM_RDONLY) | (e->prot & PROT_EXEC ? SHM_EXEC : 0);
	long a;

	if (!size || !e->has_shmid || e->pgoff + len > size) {
		pr_err("pid %d: mapping %#" PRIx64 " of SysV segment %" PRIu64 " does not match ipc.img\n",
		       t->it->pid, e->start, e->shmid);
		return -EBADMSG;
	}
	if (!e->pgoff && len == size) {
		a = RCALL(r, "shmat", SYS_shmat, e->shmid, e->start, flags | SHM_REMAP);
		return a < 0 ? a : 0;
	}
	a = RCALL(r, "shmat", SYS_shmat, e->shmid, 0, flags);
	if (a < 0)
		return a;
	if (RCALL(r, "mremap (SysV piece)", SYS_mremap, a + e->pgoff, len, len,
		  MREMAP_MAYMOVE | MREMAP_FIXED, e->start) < 0)
		return -EIO;
	if ((e->pgoff && RCALL(r, "munmap", SYS_munmap, a, e->pgoff) < 0) ||
	    (e->pgoff + len < size &&
	     RCALL(r, "munmap", SYS_munmap, a + e->pgoff + len, size - e->pgoff - len) < 0))
		return -EIO;
	return 0;
}

static int map_one_vma(struct rst_ctx *rc, struct rst_task *t, VmaEntry *e, struct fd_cache *fc)
{
	struct rsys *r = &t->rs;
	uint64_t len = e->end - e->start;
	/* Writable while we fill it; the real protection comes after. */
	uint32_t prot = e->prot | PROT_WRITE;
	uint32_t flags = (e->flags & ~(MAP_SHARED | MAP_PRIVATE)) | MAP_FIXED;
	const char *path = e->path;
	long fd = -1, a;

	if (e->has_ghost_id && ghost_fd(rc, e->ghost_id, &path) < 0)
		return -ENOENT;
	switch (e->kind) {
	case VMA_KIND__VMA_ANON_PRIVATE:
	case VMA_KIND__VMA_STACK:
	case VMA_KIND__VMA_HEAP:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	case VMA_KIND__VMA_FILE_PRIVATE:
		flags |= MAP_PRIVATE;
		fd = cached_open(r, fc, path, false);
		break;
	case VMA_KIND__VMA_FILE_SHARED:
		flags |= MAP_SHARED;
		prot = e->prot;
		fd = cached_open(r, fc, path, e->file_rw);
		break;
	case VMA_KIND__VMA_SYSV_SHM:
		return map_sysv_shm(rc, t, e);
	case VMA_KIND__VMA_ANON_SHARED: {
		struct rst_shmem *s = find_shmem(rc, e->shmid);
		flags |= MAP_SHARED;
		prot = e->prot;
		fd = s ? cached_open(r, fc, s->path, true) : -ENOENT;
		break;
	}
	default:
		return 0;
	}
	if (fd < -1 || (fd < 0 && !(flags & MAP_ANONYMOUS)))
		return -EIO;
	a = RCALL(r, "mmap", SYS_mmap, e->start, len, prot, flags & ~MAP_LOCKED, fd, e->pgoff);
	if (a < 0) {
		pr_err("pid %d: can't map %#" PRIx64 "-%#" PRIx64 " (%s)\n", t->it->pid, e->start, e->end,
		       e->path ? e->path : e->name ? e->name : "anonymous");
		return a;
	}
	return 0;
}

/* The VMA holding [addr, addr + len): binary search, the VMAs being in address order. */
static VmaEntry *vma_of(MmEntry *mm, uint64_t addr, uint64_t len)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {		/* first VMA starting above addr */
		size_t mid = lo + (hi - lo) / 2;

		if (mm->vmas[mid]->start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && mm->vmas[lo - 1]->start <= addr && addr + len <= mm->vmas[lo - 1]->end &&
	    addr + len >= addr)
		return mm->vmas[lo - 1];
	return NULL;
}

/*
 * Pages go in from here: the pages image is mapped (straight from the page
 * cache) and copied into the task with process_vm_writev by a few worker
 * threads, which also fault the target pages in. crtool restore forks
 * nothing after the tree is created, so threads are safe at this point.
 */
struct fill_job {
	const uint8_t *src;
	uint64_t dst, len;
};

struct page_filler {
	struct rst_task *t;
	const char *path;
	const uint8_t *map;		/* the whole pages image */
	uint64_t file_size;
	struct fill_job *jobs;
	size_t nr_jobs, cap_jobs, next;
	pthread_mutex_t lock;
	int err;
};

#define FILL_JOB_MAX (32UL << 20)

static void add_job(struct page_filler *f, const uint8_t *src, uint64_t dst, uint64_t len)
{
	while (len) {
		uint64_t n = min_t(uint64_t, len, FILL_JOB_MAX);

		if (f->nr_jobs && f->jobs[f->nr_jobs - 1].dst + f->jobs[f->nr_jobs - 1].len == dst &&
		    f->jobs[f->nr_jobs - 1].src + f->jobs[f->nr_jobs - 1].len == src &&
		    f->jobs[f->nr_jobs - 1].len + n <= FILL_JOB_MAX) {
			f->jobs[f->nr_jobs - 1].len += n;
		} else {
			if (f->nr_jobs == f->cap_jobs) {
				f->cap_jobs = f->cap_jobs ? f->cap_jobs * 2 : 64;
				f->jobs = xrealloc(f->jobs, f->cap_jobs * sizeof(*f->jobs));
			}
			f->jobs[f->nr_jobs++] = (struct fill_job){ src, dst, n };
		}
		src += n;
		dst += n;
		len -= n;
	}
}

static int run_job(struct page_filler *f, const struct fill_job *j)
{
	struct iovec l = { (void *)j->src, j->len }, r = { (void *)j->dst, j->len };
	ssize_t n = process_vm_writev(f->t->it->pid, &l, 1, &r, 1, 0);

	if (n == (ssize_t)j->len)
		return 0;
	if (n < 0)
		return log_errno(-errno, "pid %d: can't write pages at %#" PRIx64, f->t->it->pid, j->dst);
	pr_err("pid %d: short page write at %#" PRIx64 " (%zd of %" PRIu64 ")\n", f->t->it->pid, j->dst,
	       n, j->len);
	return -EIO;
}

static void *fill_worker(void *arg)
{
	struct page_filler *f = arg;

	for (;;) {
		size_t i;
		int ret;

		pthread_mutex_lock(&f->lock);
		i = f->err ? f->nr_jobs : f->next++;
		pthread_mutex_unlock(&f->lock);
		if (i >= f->nr_jobs)
			return NULL;
		ret = run_job(f, &f->jobs[i]);
		if (ret < 0) {
			pthread_mutex_lock(&f->lock);
			f->err = ret;
			pthread_mutex_unlock(&f->lock);
		}
	}
}

static int run_fill_jobs(struct page_filler *f)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int nth = f->nr_jobs < 2 ? 1 : (int)min_t(long, max_t(long, cpus, 1), 4);
	pthread_t th[4];
	int started = 0;

	pthread_mutex_init(&f->lock, NULL);
	for (int i = 1; i < nth; i++) {
		if (pthread_create(&th[i], NULL, fill_worker, f))
			break;
		started++;
	}
	fill_worker(f);
	for (int i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&f->lock);
	return f->err;
}

static int fill_shmem(struct rst_ctx *rc, struct page_filler *f, VmaEntry *e, uint64_t vaddr,
		      uint64_t len, uint64_t off)
{
	struct rst_shmem *s = find_shmem(rc, e->shmid);
	uint64_t obj_off = e->pgoff + (vaddr - e->start);

	if (!s || obj_off + len > s->size)
		return -EINVAL;
	memcpy((uint8_t *)s->addr + obj_off, f->map + off, len);
	return 0;
}

static int fill_entry(struct rst_ctx *rc, struct page_filler *f, PagemapEntry *pe)
{
	uint64_t len = (uint64_t)pe->nr_pages * PAGE_SIZE;
	VmaEntry *e = vma_of(f->t->mm, pe->vaddr, len);

	if (e && pe->has_offset && pe->offset + len > f->file_size && pe->offset + len > pe->offset) {
		pr_err("%s is truncated: pagemap entry %#" PRIx64 " (%u pages) needs %" PRIu64
		       " bytes, the file has %" PRIu64 "\n", f->path, pe->vaddr, pe->nr_pages,
		       pe->offset + len, (uint64_t)f->file_size);
		return -EBADMSG;
	}
	if (!e || !pe->has_offset || !(pe->flags & PE_PRESENT) || pe->offset + len > f->file_size ||
	    pe->offset + len < pe->offset) {
		pr_err("%s: pagemap entry %#" PRIx64 " (%u pages) is inconsistent with the image\n",
		       f->path, pe->vaddr, pe->nr_pages);
		return -EBADMSG;
	}
	if (e->kind == VMA_KIND__VMA_ANON_SHARED)
		return fill_shmem(rc, f, e, pe->vaddr, len, pe->offset);
	add_job(f, f->map + pe->offset, pe->vaddr, len);
	return 0;
}

static int map_pages_image(struct rst_ctx *rc, struct page_filler *f, const char *name)
{
	_cleanup_close_ int fd = openat(rc->dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *m;

	if (fd < 0 || fstat(fd, &st) < 0)
		return log_errno(-errno, "can't open %s", f->path);
	f->file_size = st.st_size;
	if (!st.st_size)
		return 0;
	m = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (m == MAP_FAILED)
		return log_errno(-errno, "can't map %s", f->path);
	f->map = m;
	return 0;
}

static int fill_pages(struct rst_ctx *rc, struct rst_task *t)
{
	char name[64], path[PATH_MAX_LEN];
	struct page_filler f = { .t = t, .path = path };
	struct img *pm = img_open_read(rc->dirfd, rc->dir, IMG_PAGEMAP, t->it->pid);
	PagemapHead *head = NULL;
	int ret;

	if (!pm)
		return -ENOENT;
	snprintf(name, sizeof(name), "pages-%d.img", t->it->pid);
	snprintf(path, sizeof(path), "%s/%s", rc->dir, name);
	ret = map_pages_image(rc, &f, name);
	if (ret < 0)
		goto out;
	ret = img_read_msg(pm, &pagemap_head__descriptor, (ProtobufCMessage **)&head);
	if (ret == 0 || (ret > 0 && head->page_size != PAGE_SIZE)) {
		pr_err("%s/pagemap-%d.img: missing or bad head\n", rc->dir, t->it->pid);
		ret = -EBADMSG;
	}
	if (ret < 0)
		goto out;
	for (;;) {
		PagemapEntry *pe;

		ret = img_read_msg(pm, &pagemap_entry__descriptor, (ProtobufCMessage **)&pe);
		if (ret <= 0)
			break;
		ret = fill_entry(rc, &f, pe);
		img_free_msg(&pe->base);
		if (ret < 0)
			break;
	}
	if (!ret)
		ret = run_fill_jobs(&f);
out:
	img_free_msg(head ? &head->base : NULL);
	if (f.map)
		munmap((void *)f.map, f.file_size);
	free(f.jobs);
	img_abort(pm);
	return ret;
}

static int finish_vma(struct rst_task *t, VmaEntry *e)
{
	static const struct { uint32_t bit; int advice; } madv[] = {
		{ VMA_MADV_DONTFORK, MADV_DONTFORK }, { VMA_MADV_WIPEONFORK, MADV_WIPEONFORK },
		{ VMA_MADV_DONTDUMP, MADV_DONTDUMP }, { VMA_MADV_HUGEPAGE, MADV_HUGEPAGE },
		{ VMA_MADV_NOHUGEPAGE, MADV_NOHUGEPAGE }, { VMA_MADV_MERGEABLE, MADV_MERGEABLE },
	};
	struct rsys *r = &t->rs;
	uint64_t len = e->end - e->start;

	if (e->kind == VMA_KIND__VMA_VDSO || e->kind == VMA_KIND__VMA_VVAR)
		return 0;
	if (RCALL(r, "mprotect", SYS_mprotect, e->start, len, e->prot) < 0)
		return -EIO;
	for (size_t i = 0; i < ARRAY_SIZE(madv); i++)
		if ((e->madv & madv[i].bit) &&
		    RCALL(r, "madvise", SYS_madvise, e->start, len, madv[i].advice) < 0)
			return -EIO;
	if ((e->flags & MAP_LOCKED) && RCALL(r, "mlock", SYS_mlock, e->start, len) < 0)
		return -EIO;
	return 0;
}

/* VMAs come in address order, apart and non-empty (the page lookups rely on it). */
static int check_vma_order(struct rst_ctx *rc, struct rst_task *t)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (e->start >= e->end || (i && t->mm->vmas[i - 1]->end > e->start)) {
			pr_err("%s/mm-%d.img: VMA %zu (%#" PRIx64 "-%#" PRIx64 ") is empty, out of order "
			       "or overlaps the one before\n", rc->dir, t->it->pid, i, e->start, e->end);
			return -EBADMSG;
		}
	}
	return 0;
}

int restore_task_mm(struct rst_ctx *rc, struct rst_task *t)
{
	struct fd_cache fc = { .fd = -1 };
	int ret = check_vma_order(rc, t);

	if (!ret)
		ret = rsys_attach(&t->rs, t->it->pid, (uint64_t)(uintptr_t)cr_syscall_gadget);

	/* The readiness pipe and log descriptor, if the task had no time to close them. */
	for (int i = 0; i < 2 && !ret; i++) {
		long r;
		if (rsys_call(&t->rs, SYS_close, &r, t->own_fds[i], 0, 0, 0, 0, 0) < 0)
			ret = -EIO;
	}
	if (!ret)
		ret = clear_address_space(t);
	if (!ret)
		ret = map_vdso(t);
	for (size_t i = 0; i < t->mm->n_vmas && !ret; i++)
		ret = map_one_vma(rc, t, t->mm->vmas[i], &fc);
	if (!ret)
		ret = cache_close(&t->rs, &fc);
	if (!ret)
		ret = fill_pages(rc, t);
	for (size_t i = 0; i < t->mm->n_vmas && !ret; i++)
		ret = finish_vma(t, t->mm->vmas[i]);
	for (size_t i = 0; i < t->mm->n_guards && !ret; i++) {
		GuardRange *g = t->mm->guards[i];
		if (RCALL(&t->rs, "madvise(MADV_GUARD_INSTALL)", SYS_madvise, g->start,
			  g->end - g->start, CR_MADV_GUARD_INSTALL) < 0)
			ret = -EIO;
	}
	return ret;
}
