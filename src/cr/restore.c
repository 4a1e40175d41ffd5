#define LOG_PREFIX "restore: "
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "cr.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "linux/cr-compat.h"
#include "log.h"
#include "pidns.h"
#include "util.h"

struct notify_msg {
	int32_t pid;
	int32_t err;
	int32_t idx;		/* the task's place in the tree */
	int32_t own_fds[2];	/* our descriptors left in it: closed once it is seized */
};

/* ---- reading and checking every image before anything is created -------- */

static int load_task_images(struct rst_ctx *rc, struct rst_task *t)
{
	pid_t pid = t->it->pid;
	int ret;

	ret = img_read_one(rc->dirfd, rc->dir, IMG_CORE, pid, &task_core_entry__descriptor,
			   (ProtobufCMessage **)&t->core);
	if (!ret)
		ret = img_read_one(rc->dirfd, rc->dir, IMG_MM, pid, &mm_entry__descriptor,
				   (ProtobufCMessage **)&t->mm);
	if (!ret)
		ret = img_read_one(rc->dirfd, rc->dir, IMG_FDS, pid, &fds_entry__descriptor,
				   (ProtobufCMessage **)&t->fds);
	if (ret)
		return ret;
	if (t->core->pid != (uint32_t)pid || t->core->n_threads != (size_t)t->it->nr_threads) {
		pr_err("%s/core-%d.img does not match pstree.img (pid %u, %zu threads)\n", rc->dir, pid,
		       t->core->pid, t->core->n_threads);
		return -EBADMSG;
	}
	for (size_t i = 0; i < t->core->n_threads; i++) {
		if (t->core->threads[i]->tid != (uint32_t)t->it->threads[i]) {
			pr_err("%s/core-%d.img: thread %zu is %u, pstree.img says %d\n", rc->dir, pid, i,
			       t->core->threads[i]->tid, t->it->threads[i]);
			return -EBADMSG;
		}
	}
	return 0;
}

static int pid_in_use(pid_t pid)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", pid);
	return stat(path, &st) == 0;
}

static int check_pids_free(struct rst_ctx *rc)
{
	if (rc->tree.root_is_pidns_init) {
		struct pstree_item *r = pstree_root(&rc->tree);
		if (pid_in_use(r->pid)) {
			pr_err("pid %d (the init of the dumped PID namespace) is in use in this PID namespace\n",
			       r->pid);
			return -EEXIST;
		}
		return 0;
	}
	for (int i = 0; i < rc->tree.nr; i++) {
		struct pstree_item *it = rc->tree.items[i];
		for (int k = 0; k < max_t(int, it->nr_threads, 1); k++) {
			pid_t p = it->nr_threads ? it->threads[k] : it->pid;
			if (pid_in_use(p)) {
				pr_err("pid %d is in use in this PID namespace: cannot restore %s %d\n", p,
				       k ? "thread" : "process", p);
				return -EEXIST;
			}
		}
	}
	return 0;
}

static int load_images(struct rst_ctx *rc)
{
	InventoryEntry *inv;
	int ret;

	/* inventory.img is written last: without it the dump never completed. */
	if (faccessat(rc->dirfd, "inventory.img", F_OK, 0) < 0 && errno == ENOENT) {
		pr_err("%s holds no complete dump: %s/inventory.img is missing\n", rc->dir, rc->dir);
		return -ENOENT;
	}
	ret = img_read_one(rc->dirfd, rc->dir, IMG_INVENTORY, 0, &inventory_entry__descriptor,
			   (ProtobufCMessage **)&inv);
	if (ret < 0)
		return ret;	/* said why, naming the file */
	if (inv->format_version != CR_FORMAT_VERSION) {
		pr_err("%s: image format version %u, this crtool reads version %d\n", rc->dir,
		       inv->format_version, CR_FORMAT_VERSION);
		img_free_msg(&inv->base);
		return -EBADMSG;
	}
	rc->tree.root_is_pidns_init = inv->root_is_pidns_init;
	img_free_msg(&inv->base);
	ret = pstree_read_image(rc->dirfd, rc->dir, &rc->tree);
	if (!ret)
		ret = pidns_check_image(&rc->tree, rc->dir);
	if (ret < 0)
		return ret;
	rc->tasks = xzalloc(rc->tree.nr * sizeof(*rc->tasks));
	for (int i = 0; i < rc->tree.nr && !ret; i++) {
		rc->tasks[i].it = rc->tree.items[i];
		if (!rc->tree.items[i]->zombie)
			ret = load_task_images(rc, &rc->tasks[i]);
	}
	return ret;
}

/* ---- forking the tree ---------------------------------------------------- */

/* clone3() with the task's pid at every namespace level (set_tid is a pid_t array). */
static pid_t clone_task(struct pstree_item *it, bool newpid, int *pidfd)
{
	pid_t set_tid[PROC_MAX_NS];
	struct cr_clone_args args = { 0 };

	for (int l = 0; l < it->ns_levels; l++)
		set_tid[l] = it->nspid[it->ns_levels - 1 - l];
	args.flags = (newpid ? CLONE_NEWPID : 0) | (it->share_fs ? CLONE_FS : 0) |
		     (it->share_files ? CLONE_FILES : 0) | (pidfd ? CLONE_PIDFD : 0);
	args.pidfd = (uint64_t)(uintptr_t)pidfd;
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)set_tid;
	args.set_tid_size = it->ns_levels;
	return syscall(SYS_clone3, &args, CR_CLONE_ARGS_SIZE_VER2);
}

static void notify(int fd, int err, int idx)
{
	struct notify_msg m = { getpid(), err, idx, { fd, cr_log_fd } };

	if (write(fd, &m, sizeof(m)) != sizeof(m))
		_exit(2);
}

/* The same, from a task whose descriptors the restorer must not close. */
static void notify_shared(int fd, int idx)
{
	struct notify_msg m = { getpid(), 0, idx, { -1, -1 } };

	if (write(fd, &m, sizeof(m)) != sizeof(m))
		_exit(2);
}

static void child_fail(int fd, int err) __attribute__((noreturn));
static void child_fail(int fd, int err)
{
	notify(fd, err, -1);
	_exit(1);
}

static void become_zombie(struct pstree_item *it)
{
	struct rlimit no_core = { 0, 0 };

	if (it->pgid == it->pid)
		setpgid(0, 0);
	prctl(PR_SET_NAME, it->comm);
	if (WIFSIGNALED(it->exit_code)) {
		sigset_t all;
		setrlimit(RLIMIT_CORE, &no_core);
		signal(WTERMSIG(it->exit_code), SIG_DFL);
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		kill(getpid(), WTERMSIG(it->exit_code));
	}
	_exit(WEXITSTATUS(it->exit_code));
}

static void restore_child(struct rst_ctx *rc, struct rst_task *t, int nfd) __attribute__((noreturn));

/*
 * A session or group whose leader is gone (its members were adopted by a
 * subreaper) is recreated by a short-lived helper with the leader's pid: it
 * starts the session or group, forks the members and exits, and they are
 * adopted again by their real parent. Returns the helper pid needed, or 0.
 */
static pid_t leaderless_id(struct rst_ctx *rc, struct pstree_item *c, bool *session)
{
	struct pstree_item *root = pstree_root(&rc->tree);

	*session = false;
	if (c->zombie)
		return 0;
	if (c->sid != c->pid && !pstree_find(&rc->tree, c->sid) && c->sid != root->sid) {
		*session = true;
		return c->sid;
	}
	if (c->pgid != c->pid && !pstree_find(&rc->tree, c->pgid) && c->pgid != root->pgid)
		return c->pgid;
	return 0;
}

static int check_helpers(struct rst_ctx *rc)
{
	for (int i = 1; i < rc->tree.nr; i++) {
		struct pstree_item *c = rc->tree.items[i];
		bool session;
		pid_t x = leaderless_id(rc, c, &session);

		if (!x)
			continue;
		if (session && c->pgid != c->pid && c->pgid != c->sid && !pstree_find(&rc->tree, c->pgid)) {
			pr_err("pid %d: both its session %d and its group %d lost their leaders; not supported\n",
			       c->pid, c->sid, c->pgid);
			return -EOPNOTSUPP;
		}
		if (c->ns_levels > 2) {
			pr_err("pid %d: leaderless %s %d in a nested PID namespace is not supported\n", c->pid,
			       session ? "session" : "group", x);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/*
 * A child sharing our descriptor table (CLONE_FILES) leaves the table to us:
 * we must not touch it until the child has forked its own children (which
 * need the restorer's descriptions) and reported ready. It says so with a
 * byte on this pipe; we also watch for its death.
 */
static int share_sync[2] = { -1, -1 };

static int wait_sharing_child(struct pstree_item *c, pid_t pid)
{
	char b;
	int ret = 0;

	for (;;) {
		struct pollfd p = { share_sync[0], POLLIN, 0 };

		if (poll(&p, 1, 100) > 0 && read(share_sync[0], &b, 1) == 1)
			break;
		if (waitpid(pid, NULL, WNOHANG) != 0) {
			ret = log_errno(-ECHILD, "pid %d (sharing its parent's descriptors) failed", c->pid);
			break;
		}
	}
	close(share_sync[0]);
	close(share_sync[1]);
	share_sync[0] = share_sync[1] = -1;
	return ret;
}

static int fork_one(struct rst_ctx *rc, struct pstree_item *parent, struct pstree_item *c, int nfd)
{
	pid_t pid;

	bool ns_init = pidns_is_init_child(parent, c);
	int ret = pidns_before_fork(&rc->tree, parent, c);

	if (ret < 0)
		return ret;
	if (c->share_files && pipe2(share_sync, O_CLOEXEC) < 0)
		return log_errno(-errno, "pid %d: pipe", c->pid);
	/* The parent keeps a pidfd of the init its later children go in with. */
	pid = clone_task(c, ns_init,
			 parent->has_pidns_child && parent->pidns_child == c->pid ? &c->pidfd : NULL);

	if (pid < 0) {
		int e = errno;
		if (e == EEXIST)
			pr_err("pid %d is in use: cannot restore process %d\n", c->pid, c->pid);
		else
			pr_perror("can't create process %d", c->pid);
		return -e;
	}
	if (pid == 0)
		restore_child(rc, &rc->tasks[c->idx], nfd);
	return c->share_files ? wait_sharing_child(c, pid) : 0;
}

static void run_helper(struct rst_ctx *rc, struct pstree_item *it, pid_t x, bool session, int nfd)
{
	if (session ? setsid() < 0 : setpgid(0, 0) < 0) {
		pr_perror("helper %d: can't start the %s", x, session ? "session" : "group");
		_exit(1);
	}
	for (int i = 0; i < it->nr_children; i++) {
		struct pstree_item *c = it->children[i];
		bool s;

		if (leaderless_id(rc, c, &s) == x && fork_one(rc, it, c, nfd) < 0)
			_exit(1);
	}
	_exit(0);
}

static int fork_helper(struct rst_ctx *rc, struct pstree_item *it, struct pstree_item *c, int nfd)
{
	struct pstree_item h = { .ns_levels = it->ns_levels };
	bool session;
	pid_t x = leaderless_id(rc, c, &session), pid;
	int st;

	/* The helper's children come back to us when it exits. */
	if (pidns_before_fork(&rc->tree, it, NULL) < 0)
		return -EINVAL;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return log_errno(-errno, "pid %d: PR_SET_CHILD_SUBREAPER", it->pid);
	h.nspid[0] = x;
	if (h.ns_levels == 2)
		h.nspid[1] = session ? c->nssid : c->nspgid;
	pid = clone_task(&h, false, NULL);
	if (pid < 0)
		return log_errno(-errno, "can't create the helper %d for the %s of pid %d", x,
				 session ? "session" : "group", c->pid);
	if (pid == 0)
		run_helper(rc, it, x, session, nfd);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return log_errno(-ECHILD, "helper %d for pid %d failed", x, c->pid);
	return 0;
}

static bool first_with_helper(struct rst_ctx *rc, struct pstree_item *it, int i)
{
	bool s;
	pid_t x = leaderless_id(rc, it->children[i], &s);

	for (int k = 0; k < i; k++)
		if (leaderless_id(rc, it->children[k], &s) == x)
			return false;
	return true;
}

static int fork_children(struct rst_ctx *rc, struct pstree_item *it, int nfd, bool before_setsid)
{
	for (int i = 0; i < it->nr_children; i++) {
		struct pstree_item *c = it->children[i];
		/* A child still in our old session must be forked before we setsid(). */
		bool old_session = c->sid != it->pid, session;
		pid_t x = leaderless_id(rc, c, &session);
		int ret;

		if (session)
			old_session = true;	/* a session helper can start any time */
		if (it->sid == it->pid && old_session != before_setsid)
			continue;
		if (it->sid != it->pid && !before_setsid)
			continue;
		if (x && !first_with_helper(rc, it, i))
			continue;
		ret = x ? fork_helper(rc, it, c, nfd) : fork_one(rc, it, c, nfd);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int child_setup(struct rst_ctx *rc, struct rst_task *t, int *nfd)
{
	struct pstree_item *it = t->it;
	TaskCoreEntry *core = t->core;
	int ret;

	ret = tty_drop_ctty(t);
	/* A shared descriptor table is set up by the parent, after us. */
	if (!ret)
		ret = it->share_files ? 0 : restore_fds_in_child(rc, t->fds, nfd);
	if (ret < 0)
		return ret;
	/* Paths are as seen from our root; chroot comes last, from the restorer. */
	if (chdir(core->cwd) < 0)
		return log_errno(-errno, "pid %d: can't chdir to '%s'", it->pid, core->cwd);
	umask(core->umask);
	return 0;
}

static void restore_child(struct rst_ctx *rc, struct rst_task *t, int nfd)
{
	struct pstree_item *it = t->it;
	int sync = share_sync[1];	/* ours to answer on, if we share the table */
	int ret;

	bool session;

	/*
	 * Until the real value is restored: die with the parent, so killing the
	 * root cleans up. A helper's child waits until its real parent adopts it.
	 */
	if (leaderless_id(rc, it, &session)) {
		/* The helper's pid as we see it (it may be gone already). */
		pid_t helper = it->ns_levels == 2 ? (session ? it->nssid : it->nspgid)
						   : (session ? it->sid : it->pgid);
		while (getppid() == helper)
			usleep(1000);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (it->zombie)
		become_zombie(it);
	pidns_child_reset();
	ret = fork_children(rc, it, nfd, true);
	if (!ret && it->sid == it->pid && setsid() < 0)
		ret = log_errno(-errno, "pid %d: setsid", it->pid);
	/* Before the session's other members are forked: they inherit it. */
	if (!ret)
		ret = tty_restore_ctty(rc, t);
	if (!ret)
		ret = fork_children(rc, it, nfd, false);
	if (!ret)
		ret = pidns_after_forks(&rc->tree, it);
	if (!ret)
		ret = child_setup(rc, t, &nfd);
	if (ret < 0)
		child_fail(nfd, ret);
	/*
	 * The restorer may seize us right after this write, before the closes
	 * below run: it closes both again from inside, whatever happened.
	 */
	if (it->share_files) {
		/* Our descriptors are the parent's: leave them to it, and let it go on. */
		cr_log_fd = -1;
		notify_shared(nfd, t->it->idx);
		if (write(sync, "", 1) != 1)
			_exit(2);
	} else {
		notify(nfd, 0, t->it->idx);
		close(nfd);
		close(cr_log_fd);
	}
	for (;;)
		pause();
}

static int wait_children_ready(struct rst_ctx *rc, int rfd, pid_t root)
{
	int expected = 0;

	for (int i = 0; i < rc->tree.nr; i++)
		expected += !rc->tree.items[i]->zombie;
	while (expected) {
		struct pollfd p = { rfd, POLLIN, 0 };
		struct notify_msg m;
		int r = poll(&p, 1, 30000);

		if (r == 0) {
			pr_err("processes of the tree did not get ready within 30 s\n");
			return -ETIMEDOUT;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (read_full(rfd, &m, sizeof(m)) != sizeof(m)) {
			pr_err("a restored process died while being created (root %d)\n", root);
			return -ECHILD;
		}
		if (m.err < 0) {
			pr_err("process %d could not be set up: %s\n", m.pid, strerror(-m.err));
			return m.err;
		}
		if (m.idx < 0 || m.idx >= rc->tree.nr) {
			pr_err("bad readiness message from process %d\n", m.pid);
			return -EPROTO;
		}
		rc->tasks[m.idx].own_fds[0] = m.own_fds[0];
		rc->tasks[m.idx].own_fds[1] = m.own_fds[1];
		expected--;
	}
	return 0;
}

static int fork_tree(struct rst_ctx *rc, pid_t *root_out)
{
	int p[2], ret;
	pid_t root;

	if (pipe2(p, O_CLOEXEC) < 0)
		return log_errno(-errno, "can't create a pipe");
	root = clone_task(pstree_root(&rc->tree), rc->tree.root_is_pidns_init, NULL);
	if (root == 0) {
		close(p[0]);
		restore_child(rc, &rc->tasks[0], p[1]);
	}
	close(p[1]);
	if (root < 0) {
		ret = -errno;
		if (ret == -EEXIST)
			pr_err("pid %d is in use: cannot restore the root process\n",
			       pstree_root(&rc->tree)->pid);
		else
			pr_perror("can't create the root process %d", pstree_root(&rc->tree)->pid);
		close(p[0]);
		return ret;
	}
	*root_out = root;
	ret = wait_children_ready(rc, p[0], root);
	close(p[0]);
	return ret;
}

/* ---- driving the restored tasks ----------------------------------------- */

static int seize_restored(struct rst_ctx *rc)
{
	long opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;

	for (int i = 0; i < rc->tree.nr; i++) {
		struct pstree_item *it = rc->tree.items[i];
		int st;

		if (it->zombie)
			continue;
		if (ptrace(PTRACE_SEIZE, it->pid, NULL, (void *)opts) < 0 ||
		    ptrace(PTRACE_INTERRUPT, it->pid, NULL, NULL) < 0)
			return log_errno(-errno, "pid %d: can't seize the restored process", it->pid);
		it->seized[0] = true;
		st = ptrace_wait_stop(it->pid);
		if (st < 0)
			return st;
		if ((st >> 16) != PTRACE_EVENT_STOP) {
			pr_err("pid %d: unexpected stop %#x after seizing\n", it->pid, st);
			return -EINVAL;
		}
	}
	return 0;
}

/* Group leaders first, so members find their group. */
static int restore_pgids(struct rst_ctx *rc)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < rc->tree.nr; i++) {
			struct rst_task *t = &rc->tasks[i];
			struct pstree_item *it = t->it;
			bool leader = it->pgid == it->pid;

			if (it->zombie || leader != (pass == 0))
				continue;
			if (!leader && !pstree_find(&rc->tree, it->pgid)) {
				if (getpgid(it->pid) != it->pgid)
					pr_warn("pid %d: process group %d is outside the tree; keeping %d\n",
						it->pid, it->pgid, getpgid(it->pid));
				continue;
			}
			if (getpgid(it->pid) == it->pgid)
				continue;
			if (!leader && !it->nspgid) {
				/* Its group leader is outside its PID namespace: only fork can put it there. */
				pr_err("pid %d: process group %d is led from outside its PID namespace\n",
				       it->pid, it->pgid);
				return -EOPNOTSUPP;
			}
			if (RCALL(&t->rs, "setpgid", SYS_setpgid, 0, leader ? 0 : it->nspgid) < 0)
				return -EIO;
		}
	}
	return 0;
}

static int release_restored(struct rst_ctx *rc)
{
	for (int i = rc->tree.nr - 1; i >= 0; i--) {
		struct pstree_item *it = rc->tree.items[i];

		if (it->stopped)
			kill(it->pid, SIGSTOP);
		/*
		 * Secondary threads first. A process released already may end
		 * others, or its own threads, right away (exit_group): that is
		 * its own doing, not a failure; the death of a task we still
		 * trace is collected.
		 */
		for (int k = it->nr_threads - 1; k >= 0; k--) {
			if (!it->seized[k])
				continue;
			it->seized[k] = false;
			if (ptrace(PTRACE_DETACH, it->threads[k], NULL, NULL) == 0)
				continue;
			if (errno != ESRCH)
				return log_errno(-errno, "tid %d: can't detach", it->threads[k]);
			pr_debug("tid %d: exited as soon as its process was released\n", it->threads[k]);
			waitpid(it->threads[k], NULL, __WALL | WNOHANG);
		}
	}
	return 0;
}

static int drive_tree(struct rst_ctx *rc)
{
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	int ret = seize_restored(rc);

	for (int i = 0; i < rc->tree.nr && !ret; i++)
		if (!rc->tasks[i].it->zombie)
			ret = restore_task_mm(rc, &rc->tasks[i]);
	pr_info("memory restored in %.1f ms\n", (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	if (!ret)
		ret = ns_restore_after_mm(rc);
	if (!ret)
		ret = restore_pgids(rc);
	if (!ret)
		ret = ttys_restore_fg(rc);
	for (int i = 0; i < rc->tree.nr && !ret; i++)
		if (!rc->tasks[i].it->zombie)
			ret = restore_task_core(rc, &rc->tasks[i]);
	for (int i = 0; i < rc->tree.nr && !ret; i++)
		if (!rc->tasks[i].it->zombie)
			ret = restore_task_finish(rc, &rc->tasks[i]);
	if (!ret)
		ret = release_restored(rc);
	return ret;
}

static void free_ctx(struct rst_ctx *rc)
{
	for (int i = 0; rc->tasks && i < rc->tree.nr; i++) {
		struct rst_task *t = &rc->tasks[i];

		/* A zombie has none of these. */
		img_free_msg(t->core ? &t->core->base : NULL);
		img_free_msg(t->mm ? &t->mm->base : NULL);
		img_free_msg(t->fds ? &t->fds->base : NULL);
	}
	free(rc->tasks);
	for (int i = 0; i < rc->nr_shm; i++)
		if (rc->shm[i].addr)
			munmap(rc->shm[i].addr, rc->shm[i].size);
	free(rc->shm);
	ghosts_restore_release(rc);
	ns_restore_release(rc);
	pstree_free(&rc->tree);
	if (rc->dirfd >= 0)
		close(rc->dirfd);
	free((char *)rc->dir);
}

static int write_pidfile(const char *path, pid_t pid)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", pid);

	if (fd < 0 || write_full(fd, buf, n) != n)
		return log_errno(-errno, "can't write the pid file '%s'", path);
	return 0;
}

static int wait_root(pid_t root)
{
	int st;

	while (waitpid(root, &st, 0) < 0) {
		if (errno != EINTR)
			return log_errno(-errno, "can't wait for the restored root %d", root);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

int cr_restore(const struct restore_opts *o)
{
	struct rst_ctx rc = { .dirfd = -1, .opts = o,
			      .ns = { .own_mnt_fd = -1, .tree_mnt_fd = -1, .devpts_fd = -1,
				      .own_fd = { -1, -1, -1 } },
			      .devpts_dirfd = -1 };
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	pid_t root = 0;
	int ret;

	rc.dir = realpath(o->dir, NULL);
	if (!rc.dir)
		return log_errno(-errno, "image directory '%s'", o->dir);
	rc.dirfd = open(rc.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rc.dirfd < 0) {
		ret = log_errno(-errno, "can't open the image directory '%s'", rc.dir);
		goto out;
	}
	ret = load_images(&rc);
	if (!ret)
		ret = ns_restore_load(&rc);
	if (!ret)
		ret = check_pids_free(&rc);
	if (!ret)
		ret = check_helpers(&rc);
	if (!ret)
		ret = ns_restore_enter(&rc);
	if (!ret)
		ret = restore_shmem_prepare(&rc);
	if (!ret)
		ret = restore_files_prepare(&rc);
	if (!ret)
		ret = fork_tree(&rc, &root);
	if (!ret)
		ret = ns_restore_leave(&rc);
	restore_files_release(&rc);
	pr_info("images loaded and tree forked in %.1f ms\n", (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
	if (!ret)
		ret = drive_tree(&rc);
	if (ret && root > 0) {
		/* Nothing half-restored is left behind. */
		kill(root, SIGKILL);	/* the others die with it (PDEATHSIG) */
		waitpid(root, NULL, __WALL);
	}
	if (!ret && o->pidfile)
		ret = write_pidfile(o->pidfile, root);
	if (!ret && o->root_pid)
		*o->root_pid = root;
	if (!ret) {
		pr_info("restored %d process(es), root %d\n", rc.tree.nr, root);
		if (!o->detach) {
			free_ctx(&rc);
			return wait_root(root);
		}
	}
out:
	free_ctx(&rc);
	return ret < 0 ? ret : 0;
}
