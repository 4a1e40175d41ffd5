#define LOG_PREFIX "seize: "
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pstree.h"
#include "rsys.h"
#include "util.h"

/*
 * The tree goes on running until each task is seized: a child may exit (and
 * be reaped, by the kernel when its parent ignores SIGCHLD) between the
 * moment its parent's children are listed and the moment it is seized.
 * Such a task is dumped as the zombie it has become, or dropped if it is gone;
 * -ESRCH below means "exited meanwhile", without a log line.
 */
#define SEIZE_WAIT_MS 60000

static bool state_dead(char state)
{
	return state == 'Z' || state == 'X';
}

/* The thread is gone or exiting: a failed ptrace call on it is no error. */
static bool thread_exiting(pid_t pid, pid_t tid)
{
	struct proc_stat ps;
	int ret = proc_try_parse_stat(pid, tid, &ps);

	return ret == -ENOENT || (ret == 0 && state_dead(ps.state));
}

/*
 * Wait for a ptrace stop of tid, or for its exit (-ESRCH). Polled: the exit
 * of a traced group leader may be reported late, and must not hang us.
 */
static int seize_wait(pid_t tid)
{
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);

	for (int i = 0; now_ns(CLOCK_MONOTONIC) - t0 < SEIZE_WAIT_MS * 1000000ULL; i++) {
		int st;
		pid_t p = waitpid(tid, &st, __WALL | WNOHANG);

		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0 && errno == ECHILD)
			return -ESRCH;	/* reaped by someone else: gone */
		if (p < 0)
			return log_errno(-errno, "tid %d: waitpid", tid);
		if (p == tid && (WIFEXITED(st) || WIFSIGNALED(st)))
			return -ESRCH;
		if (p == tid && WIFSTOPPED(st))
			return st;
		usleep(i < 100 ? 20 : 1000);
	}
	pr_err("tid %d: did not stop within %d s\n", tid, SEIZE_WAIT_MS / 1000);
	return -ETIMEDOUT;
}

/* Seize one thread of pid and bring it to a ptrace stop. */
static int seize_thread(pid_t pid, pid_t tid)
{
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
		if (errno == ESRCH || (errno == EPERM && thread_exiting(pid, tid)))
			return -ESRCH;
		pr_perror("tid %d: can't seize", tid);
		return -errno;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
		if (errno == ESRCH)
			return seize_wait(tid) == -ESRCH ? -ESRCH : -EIO;
		pr_perror("tid %d: can't interrupt", tid);
		return -errno;
	}
	for (;;) {
		int st = seize_wait(tid);

		if (st < 0)
			return st;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;
		if (st >> 16) {
			/* Another ptrace event: keep going until the interrupt. */
			if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0)
				return errno == ESRCH ? seize_wait(tid) : -errno;
			continue;
		}
		/* A signal was being delivered: let it be, the interrupt stays pending. */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(st)) < 0) {
			if (errno == ESRCH)
				return seize_wait(tid);
			pr_perror("tid %d: can't pass signal %d on", tid, WSTOPSIG(st));
			return -errno;
		}
	}
}

static int fill_ns_ids(struct pstree_item *it, const struct proc_status *st)
{
	it->ns_levels = st->ns_levels ? st->ns_levels : 1;
	if (st->ns_levels) {
		memcpy(it->nspid, st->nspid, sizeof(pid_t) * st->ns_levels);
		it->nspgid = st->nspgid[st->ns_levels - 1];
		it->nssid = st->nssid[st->ns_levels - 1];
	} else {
		it->nspid[0] = it->pid;
		it->nspgid = it->pgid;
		it->nssid = it->sid;
	}
	return 0;
}

/* Seize every thread of it, re-reading the thread list until no new one shows up. */
static int seize_threads(struct pstree_item *it)
{
	bool again = true;

	while (again) {
		_cleanup_free_ pid_t *tids = NULL;
		int n = 0, ret = proc_threads(it->pid, &tids, &n);

		if (ret == -ENOENT)
			return 0;	/* the whole process is gone */
		if (ret < 0)
			return ret;
		again = false;
		for (int i = 0; i < n; i++) {
			int k;

			for (k = 0; k < it->nr_threads; k++)
				if (it->threads[k] == tids[i])
					break;
			if (k < it->nr_threads)
				continue;
			ret = seize_thread(it->pid, tids[i]);
			if (ret == -ESRCH)
				continue;
			if (ret < 0)
				return ret;
			it->threads = xrealloc(it->threads, (it->nr_threads + 1) * sizeof(pid_t));
			it->seized = xrealloc(it->seized, (it->nr_threads + 1) * sizeof(bool));
			it->threads[it->nr_threads] = tids[i];
			it->seized[it->nr_threads++] = true;
			again = true;
		}
	}
	return 0;
}

/* -ESRCH: a thread is dying (group exit in progress, SIGKILL pending). */
static int collect_thread_nspids(struct pstree_item *it)
{
	it->thread_nspid = xzalloc(sizeof(pid_t) * it->nr_threads * it->ns_levels);
	/* Keep the main thread first, whatever order the threads were seized in. */
	for (int i = 0; i < it->nr_threads; i++) {
		if (it->threads[i] == it->pid && i) {
			it->threads[i] = it->threads[0];
			it->threads[0] = it->pid;
		}
	}
	for (int i = 0; i < it->nr_threads; i++) {
		struct proc_status st;
		int ret = proc_try_parse_status(it->pid, it->threads[i], &st);

		if (ret == -ENOENT)
			return -ESRCH;
		if (ret < 0)
			return ret;
		if (state_dead(st.state) || (st.sig_pnd & (1ULL << (SIGKILL - 1)))) {
			proc_free_status(&st);
			return -ESRCH;
		}
		if (st.ns_levels != it->ns_levels) {
			pr_err("pid %d: thread %d has %d pid levels, the process %d\n", it->pid,
			       it->threads[i], st.ns_levels, it->ns_levels);
			proc_free_status(&st);
			return -EINVAL;
		}
		memcpy(it->thread_nspid + i * it->ns_levels, st.nspid, sizeof(pid_t) * it->ns_levels);
		proc_free_status(&st);
	}
	return 0;
}

/*
 * The process began to exit while its threads were being seized: let the
 * ones we hold go (or collect their deaths) and forget them, so it can
 * become a zombie or disappear. 0 once it has, -EAGAIN if it stays alive.
 */
static int let_go_exiting(struct pstree_item *it)
{
	for (int i = 0; i < it->nr_threads; i++) {
		if (ptrace(PTRACE_DETACH, it->threads[i], NULL, NULL) < 0 && seize_wait(it->threads[i]) >= 0)
			ptrace(PTRACE_DETACH, it->threads[i], NULL, NULL);
	}
	it->nr_threads = 0;
	free(it->thread_nspid);
	it->thread_nspid = NULL;
	for (int ms = 0; ms < SEIZE_WAIT_MS; ms++) {
		struct proc_stat ps;
		int ret = proc_try_parse_stat(it->pid, 0, &ps);

		if (ret == -ENOENT || (ret == 0 && state_dead(ps.state)))
			return 0;
		if (ret < 0)
			return ret;
		usleep(1000);
	}
	pr_err("pid %d: began to exit while being frozen but did not finish\n", it->pid);
	return -EAGAIN;
}

/* 0: seized (or a zombie), -ESRCH: gone, without a log line. */
static int seize_item(struct pstree_item *it)
{
	struct proc_stat ps;
	struct proc_status st;

	for (int tries = 0;; tries++) {
		int ret = proc_try_parse_stat(it->pid, 0, &ps);

		if (ret == -ENOENT || (ret == 0 && ps.state == 'X'))
			return -ESRCH;
		if (ret < 0)
			return ret;
		it->ppid = ps.ppid;
		it->pgid = ps.pgrp;
		it->sid = ps.session;
		it->zombie = ps.state == 'Z';
		if (it->zombie) {
			it->exit_code = ps.exit_code;
			snprintf(it->comm, sizeof(it->comm), "%.15s", ps.comm);
		}
		ret = proc_try_parse_status(it->pid, 0, &st);
		if (ret == -ENOENT)
			return -ESRCH;
		if (ret < 0)
			return ret;
		it->stopped = st.state == 'T';
		fill_ns_ids(it, &st);
		proc_free_status(&st);
		if (it->zombie) {
			it->thread_nspid = xzalloc(sizeof(pid_t) * it->ns_levels);
			return 0;
		}
		ret = seize_threads(it);
		if (ret < 0)
			return ret;
		ret = it->nr_threads ? collect_thread_nspids(it) : -ESRCH;
		if (ret != -ESRCH)
			return ret;
		/* Exiting: wait until it is a zombie or gone, then look again. */
		if (tries == 2) {
			pr_err("pid %d: kept exiting while being frozen\n", it->pid);
			return -EAGAIN;
		}
		ret = let_go_exiting(it);
		if (ret < 0)
			return ret;
	}
}

/* Drop an item that exited and was reaped before we got hold of it (no children yet). */
static void forget_item(struct pstree *t, struct pstree_item *it)
{
	struct pstree_item *p = it->parent;

	for (int k = 0; p && k < p->nr_children; k++) {
		if (p->children[k] == it) {
			memmove(p->children + k, p->children + k + 1,
				(p->nr_children - k - 1) * sizeof(*p->children));
			p->nr_children--;
			break;
		}
	}
	memmove(t->items + it->idx, t->items + it->idx + 1, (t->nr - it->idx - 1) * sizeof(*t->items));
	t->nr--;
	for (int i = it->idx; i < t->nr; i++)
		t->items[i]->idx = i;
	free(it->threads);
	free(it->thread_nspid);
	free(it->seized);
	free(it->children);
	free(it);
}

#define CR_PF_KTHREAD 0x00200000	/* PF_KTHREAD in the flags of /proc/PID/stat */

static bool is_kernel_thread(pid_t pid)
{
	struct proc_stat ps;

	return proc_try_parse_stat(pid, 0, &ps) == 0 && (ps.flags & CR_PF_KTHREAD);
}

/* A child listed now that is not in the tree is only allowed to be on its way out. */
static bool tree_is_stable(struct pstree *t)
{
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];
		_cleanup_free_ pid_t *kids = NULL;
		int n = 0;

		if (it->zombie)
			continue;
		if (proc_children(it->pid, &kids, &n) < 0)
			return false;
		for (int k = 0; k < n; k++) {
			struct proc_stat ps;
			int ret;

			if (pstree_find(t, kids[k]))
				continue;
			ret = proc_try_parse_stat(kids[k], 0, &ps);
			if (ret != -ENOENT && !(ret == 0 && ps.state == 'X'))
				return false;
		}
	}
	return true;
}

int seize_tree(pid_t root, struct pstree *t)
{
	struct pstree_item *r;
	int ret;

	if (root <= 0 || kill(root, 0) < 0) {
		pr_err("pid %d: no such process\n", root);
		return -ESRCH;
	}
	if (root == getpid()) {
		pr_err("pid %d: is crtool itself\n", root);
		return -EINVAL;
	}
	if (is_kernel_thread(root)) {
		pr_err("pid %d: is a kernel thread; nothing to dump\n", root);
		return -EINVAL;
	}
	r = pstree_add(t, NULL, root);
	/* Breadth first: a parent is frozen before its children are listed. */
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];
		_cleanup_free_ pid_t *kids = NULL;
		int n = 0;

		ret = seize_item(it);
		if (ret == -ESRCH && i == 0) {
			pr_err("pid %d: exited before it could be frozen\n", root);
			return ret;
		}
		if (ret == -ESRCH) {
			pr_debug("pid %d: exited and was reaped while the tree was being frozen\n", it->pid);
			forget_item(t, it);
			i--;
			continue;
		}
		if (ret < 0)
			return ret;
		if (it->zombie)
			continue;
		ret = proc_children(it->pid, &kids, &n);
		if (ret < 0)
			return ret;
		for (int k = 0; k < n; k++)
			if (!pstree_find(t, kids[k]))
				pstree_add(t, it, kids[k]);
	}
	if (r->zombie) {
		pr_err("pid %d: is a zombie; nothing to dump\n", root);
		return -ESRCH;
	}
	if (!tree_is_stable(t)) {
		pr_err("pid %d: the process tree kept changing while being frozen\n", root);
		return -EAGAIN;
	}
	t->root_is_pidns_init = r->ns_levels > 1 && r->nspid[r->ns_levels - 1] == 1;
	return 0;
}

static void release_item(struct pstree_item *it, enum release_mode mode)
{
	if (mode == RELEASE_KILL) {
		kill(it->pid, SIGKILL);
	} else if (mode == RELEASE_STOP && !it->zombie) {
		kill(it->pid, SIGSTOP);
	}
	for (int i = 0; i < it->nr_threads; i++) {
		if (!it->seized || !it->seized[i])
			continue;
		if (mode != RELEASE_KILL && ptrace(PTRACE_DETACH, it->threads[i], NULL, NULL) < 0 &&
		    errno != ESRCH)
			pr_perror("tid %d: can't detach", it->threads[i]);
		it->seized[i] = false;
	}
}

void seize_release(struct pstree *t, enum release_mode mode)
{
	for (int i = t->nr - 1; i >= 0; i--)
		release_item(t->items[i], mode);
	if (mode != RELEASE_KILL)
		return;
	/*
	 * Collect the tracee deaths so the tree is gone when we return. Polled,
	 * every thread at once: the last live thread of a dying PID-namespace
	 * init waits for every other task of its namespace to be reaped, its
	 * own traced zombie threads included, so waiting on any one thread
	 * first could wait forever.
	 */
	int nr = 0, left;
	for (int i = 0; i < t->nr; i++)
		nr += t->items[i]->nr_threads;
	_cleanup_free_ pid_t *tids = xmalloc((nr + 1) * sizeof(*tids));
	nr = 0;
	for (int i = t->nr - 1; i >= 0; i--)
		for (int k = t->items[i]->nr_threads - 1; k >= 0; k--)
			tids[nr++] = t->items[i]->threads[k];
	left = nr;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	while (left > 0) {
		bool progress = false;

		for (int k = 0; k < nr; k++) {
			int st;
			pid_t p;

			if (!tids[k])
				continue;
			p = waitpid(tids[k], &st, __WALL | WNOHANG);
			if ((p == tids[k] && (WIFEXITED(st) || WIFSIGNALED(st))) ||
			    (p < 0 && errno == ECHILD)) {
				tids[k] = 0;
				left--;
				progress = true;
			} else if (p < 0 && errno != EINTR) {
				pr_perror("tid %d: waitpid after SIGKILL", tids[k]);
				tids[k] = 0;
				left--;
			}
		}
		if (progress)
			continue;
		if (now_ns(CLOCK_MONOTONIC) - t0 > SEIZE_WAIT_MS * 1000000ULL) {
			pr_err("%d killed thread(s) of the tree did not exit within %d s\n", left,
			       SEIZE_WAIT_MS / 1000);
			break;
		}
		usleep(1000);
	}
}
