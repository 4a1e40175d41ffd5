#define LOG_PREFIX "dump: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>

#include "cr.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "pidns.h"
#include "sk-inet.h"
#include "util.h"

/* Put the gadget in the target's vDSO (never dumped: it is remapped at restore). */
static int inject_begin(struct dump_ctx *c)
{
	uint64_t addr = 0;
	long scratch;
	int ret;

	for (int i = 0; i < c->nr_vmas && !addr; i++)
		if (c->vmas[i].path && !strcmp(c->vmas[i].path, "[vdso]"))
			addr = c->vmas[i].start;
	for (int i = 0; i < c->nr_vmas && !addr; i++)
		if (c->vmas[i].prot & PROT_EXEC)
			addr = c->vmas[i].start;
	if (!addr) {
		pr_err("pid %d: no executable mapping to run remote syscalls from\n", c->it->pid);
		return -ENOEXEC;
	}
	ret = rsys_read_mem(c->it->pid, addr, c->saved_code, sizeof(c->saved_code));
	if (ret < 0)
		return ret;
	ret = rsys_write_mem(c->it->pid, addr, cr_syscall_gadget, ARCH_GADGET_LEN);
	if (ret < 0)
		return ret;
	c->code_addr = addr;
	ret = rsys_attach(&c->rs, c->it->pid, addr);
	if (ret < 0)
		return ret;
	scratch = RCALL(&c->rs, "mmap (scratch)", SYS_mmap, 0, SCRATCH_PAGES * PAGE_SIZE,
			PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch < 0)
		return scratch;
	c->rs.scratch = scratch;
	c->rs.scratch_len = SCRATCH_PAGES * PAGE_SIZE;
	return 0;
}

static int inject_end(struct dump_ctx *c)
{
	int ret = 0;

	if (c->rs.scratch && RCALL(&c->rs, "munmap (scratch)", SYS_munmap, c->rs.scratch,
				   c->rs.scratch_len) < 0)
		ret = -EIO;
	c->rs.scratch = 0;
	if (c->rs.tid && rsys_detach(&c->rs) < 0)
		ret = -EIO;
	c->rs.tid = 0;
	if (c->code_addr &&
	    rsys_write_mem(c->it->pid, c->code_addr, c->saved_code, ARCH_GADGET_LEN) < 0)
		ret = -EIO;
	c->code_addr = 0;
	return ret;
}

static int dump_one_process(struct dump_ctx *c)
{
	int ret = proc_parse_smaps(c->it->pid, &c->vmas, &c->nr_vmas);

	if (ret < 0)
		return ret;
	ret = inject_begin(c);
	if (!ret)
		ret = dump_task_core(c);
	if (inject_end(c) < 0 && !ret)
		ret = -EIO;
	if (!ret)
		ret = dump_task_mm(c);
	if (!ret)
		ret = dump_task_fds(c);
	proc_free_vmas(c->vmas, c->nr_vmas);
	c->vmas = NULL;
	return ret;
}

static int write_inventory(int dirfd, const char *dir, struct pstree *t)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct utsname u;

	inv.format_version = CR_FORMAT_VERSION;
	inv.root_pid = pstree_root(t)->pid;
	inv.root_is_pidns_init = t->root_is_pidns_init;
	inv.nr_tasks = t->nr;
	if (uname(&u) == 0)
		inv.kernel = u.release;
	inv.has_dump_time_ns = true;
	inv.dump_time_ns = now_ns(CLOCK_REALTIME);
	return img_write_one(dirfd, dir, IMG_INVENTORY, 0, &inv.base);
}

static bool same_kcmp(pid_t a, pid_t b, int type)
{
	return syscall(SYS_kcmp, a, b, type, 0, 0) == 0;
}

/* The ancestor whose cwd and root (descriptor table) this process shares, or itself. */
static struct pstree_item *fs_owner(struct pstree_item *it)
{
	while (it->share_fs)
		it = it->parent;
	return it;
}

static struct pstree_item *files_owner(struct pstree_item *it)
{
	while (it->share_files)
		it = it->parent;
	return it;
}

/*
 * A process sharing its descriptor table (CLONE_FILES without CLONE_THREAD)
 * or its cwd, root and umask (CLONE_FS) with its parent is recorded, and the
 * sharing rebuilt at restore; sharing that did not come from a parent (the
 * parent unshared since) is refused.
 */
static int check_sharing(struct pstree *t)
{
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];

		bool live = !it->zombie && it->parent && !it->parent->zombie;

		it->share_fs = live && same_kcmp(it->pid, it->parent->pid, KCMP_FS);
		it->share_files = live && same_kcmp(it->pid, it->parent->pid, KCMP_FILES);
	}
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];

		for (int k = i + 1; k < t->nr && !it->zombie; k++) {
			struct pstree_item *o = t->items[k];

			if (o->zombie)
				continue;
			if (files_owner(it) != files_owner(o) && same_kcmp(it->pid, o->pid, KCMP_FILES)) {
				pr_err("pid %d shares its descriptor table with pid %d, not through its parent "
				       "(CLONE_FILES); not supported\n", o->pid, it->pid);
				return -EOPNOTSUPP;
			}
			if (fs_owner(it) != fs_owner(o) && same_kcmp(it->pid, o->pid, KCMP_FS)) {
				pr_err("pid %d shares its cwd and root with pid %d, not through its parent "
				       "(CLONE_FS); not supported\n", o->pid, it->pid);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

static int check_tree(struct pstree *t)
{
	struct pstree_item *root = pstree_root(t);
	int ret;

	if (root->ns_levels > 1 && !t->root_is_pidns_init) {
		pr_err("pid %d lives in a child PID namespace whose init is not in the tree; dump the init instead\n",
		       root->pid);
		return -EOPNOTSUPP;
	}
	ret = pidns_dump_check(t);
	if (ret == 0)
		ret = ns_check_tree(t);
	return ret < 0 ? ret : check_sharing(t);
}

static int open_dir(const char *dir)
{
	int ret = mkdir_p(dir, 0700), fd;

	if (ret < 0)
		return log_errno(ret, "can't create the image directory '%s'", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "can't open the image directory '%s'", dir);
	/* A previous complete dump here must not look complete if this one fails. */
	if (unlinkat(fd, "inventory.img", 0) < 0 && errno != ENOENT) {
		close(fd);
		return log_errno(-errno, "can't remove the old %s/inventory.img", dir);
	}
	return fd;
}

static int call_hook(const struct dump_opts *o, enum dump_stage stage)
{
	int ret = o->hook ? o->hook(o->hook_arg, stage) : 0;

	if (ret)
		pr_err("the dump was cancelled by its caller (stage %d)\n", stage);
	return ret ? -ECANCELED : 0;
}

int cr_dump(const struct dump_opts *o)
{
	struct pstree tree = { 0 };
	struct shmem_seen shm = { 0 };
	struct file_seen files = { .ghost_limit = o->ghost_limit, .opts = o, .tree = &tree };
	uint64_t t_start = now_ns(CLOCK_MONOTONIC), t0, t_frozen, t_end, bytes = 0;
	_cleanup_close_ int dirfd = open_dir(o->dir);
	int ret;

	if (dirfd < 0)
		return dirfd;
	t0 = now_ns(CLOCK_MONOTONIC);
	ret = seize_tree(o->pid, &tree);
	t_frozen = now_ns(CLOCK_MONOTONIC);
	if (!ret)
		ret = check_tree(&tree);
	if (!ret)
		ret = sk_dump_prepare(&files);
	if (!ret)
		ret = call_hook(o, DUMP_STAGE_FROZEN);
	for (int i = 0; i < tree.nr && !ret; i++) {
		struct dump_ctx c = { .it = tree.items[i], .dirfd = dirfd, .dir = o->dir, .shm = &shm,
					 .files = &files };

		if (c.it->zombie)
			continue;
		ret = dump_one_process(&c);
		bytes += c.bytes_written;
		if (!ret)
			ret = call_hook(o, DUMP_STAGE_TASK_DONE);
	}
	if (!ret)
		ret = dump_files_finish(&files, dirfd, o->dir);
	if (!ret)
		ret = ns_dump(&tree, dirfd, o->dir, o->max_tmpfs);
	if (!ret)
		ret = pstree_write_image(dirfd, o->dir, &tree);
	if (!ret)
		ret = write_inventory(dirfd, o->dir, &tree);
	if (!ret && fsync(dirfd) < 0)
		ret = log_errno(-errno, "can't fsync '%s'", o->dir);
	if (!ret)
		ret = call_hook(o, DUMP_STAGE_WRITTEN);
	if (ret)
		unlinkat(dirfd, "inventory.img", 0);
	/* The images stand either way: a failure here is logged, the bytes are lost. */
	if (ret || o->after != DUMP_KILL)
		ttys_dump_give_back(&files);
	/* Sockets leave repair mode and their connections unblock before the tree runs again. */
	if (ret || o->after != DUMP_KILL)
		sk_dump_resume(&files);
	/* A failed dump never kills: the tree goes on running. */
	seize_release(&tree, ret ? RELEASE_RUN : o->after == DUMP_KILL ? RELEASE_KILL :
			     o->after == DUMP_LEAVE_STOPPED ? RELEASE_STOP : RELEASE_RUN);
	if (!ret && o->after == DUMP_KILL)
		sk_dump_killed(&files);
	t_end = now_ns(CLOCK_MONOTONIC);
	if (!ret && o->stats)
		cr_log(LOG_ERR, "stats: tasks=%d frozen_ms=%.1f dump_ms=%.1f bytes=%llu\n", tree.nr,
		       (t_end - t_frozen) / 1e6 + (t_frozen - t0) / 1e6, (t_end - t0) / 1e6,
		       (unsigned long long)bytes);
	if (!ret && o->stats_out)
		*o->stats_out = (struct dump_stats){ .nr_tasks = tree.nr, .frozen_ns = t_end - t0,
						     .total_ns = now_ns(CLOCK_MONOTONIC) - t_start,
						     .page_bytes = bytes };
	free(shm.ino);
	dump_files_free(&files);
	pstree_free(&tree);
	return ret;
}
