#define LOG_PREFIX "seize: "
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pstree.h"
#include "rsys.h"
#include "util.h"

/* A thread the kernel refuses to seize with EPERM may just have exited. */
static bool thread_exited(pid_t tid)
{
	struct proc_stat ps;
	char path[48];

	snprintf(path, sizeof(path), "/proc/%d/task/%d", tid, tid);
	if (access(path, F_OK) < 0)
		return errno == ENOENT;
	return proc_parse_stat(tid, tid, &ps) == 0 && (ps.state == 'Z' || ps.state == 'X');
}

/* Seize one thread and bring it to a ptrace stop. */
static int seize_thread(pid_t tid)
{
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
		if (errno == ESRCH || (errno == EPERM && thread_exited(tid)))
			return -ESRCH;	/* exited meanwhile */
		pr_perror("tid %d: can't seize", tid);
		return -errno;
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
		pr_perror("tid %d: can't interrupt", tid);
		return -errno;
	}
	for (;;) {
		int st;

		if (waitpid(tid, &st, __WALL) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("tid %d: waitpid", tid);
			return -errno;
		}
		/* Caught on its way out (exit_group of a short-lived child):
		 * no error, the caller sees the process become a zombie. */
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			pr_debug("tid %d: exited while being seized (status %#x)\n", tid, st);
			return -ESRCH;
		}
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;
		if (st >> 16) {
			/* Another ptrace event: keep going until the interrupt. */
			if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0)
				return -errno;
			continue;
		}
		/* A signal was being delivered: let it be, the interrupt stays pending. */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(st)) < 0) {
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
			ret = seize_thread(tids[i]);
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
		int ret = proc_parse_status(it->pid, it->threads[i], &st);

		if (ret < 0)
			return ret;
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

#define EXIT_WAIT_MS 2000

/*
 * Every thread of IT exited while we seized them: a short-lived child (a
 * shell's command substitution) caught in exit. Its parent is frozen
 * already, so it is about to stay a zombie: dump it as one. Returns 1 if
 * it vanished instead (reaped at once: its parent ignores SIGCHLD).
 */
static int wait_exited(struct pstree_item *it)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", it->pid);
	for (int ms = 0; ms < EXIT_WAIT_MS; ms++) {
		struct proc_stat ps;

		if (access(path, F_OK) < 0 && errno == ENOENT)
			return 1;
		if (proc_parse_stat(it->pid, 0, &ps) == 0 && ps.state == 'Z') {
			pr_info("pid %d: exited while being frozen: dumped as a zombie\n", it->pid);
			it->zombie = true;
			it->exit_code = ps.exit_code;
			snprintf(it->comm, sizeof(it->comm), "%.15s", ps.comm);
			it->thread_nspid = xzalloc(sizeof(pid_t) * it->ns_levels);
			return 0;
		}
		usleep(1000);
	}
	pr_err("pid %d: exited while being frozen, and is still no zombie after %d ms\n", it->pid,
	       EXIT_WAIT_MS);
	return -ESRCH;
}

/* Forget an item that vanished while being seized (it has no children yet). */
static void drop_item(struct pstree *t, struct pstree_item *it)
{
	struct pstree_item *parent = it->parent;

	for (int i = it->idx + 1; i < t->nr; i++) {
		t->items[i - 1] = t->items[i];
		t->items[i - 1]->idx = i - 1;
	}
	t->nr--;
	for (int k = 0; parent && k < parent->nr_children; k++)
		if (parent->children[k] == it) {
			memmove(&parent->children[k], &parent->children[k + 1],
				(parent->nr_children - k - 1) * sizeof(*parent->children));
			parent->nr_children--;
			break;
		}
	free(it->threads);
	free(it->seized);
	free(it->thread_nspid);
	free(it->children);
	free(it);
}

/* 0: seized or a zombie; 1: vanished; < 0: error. */
static int seize_item(struct pstree_item *it)
{
	struct proc_stat ps;
	struct proc_status st;
	char path[32];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d", it->pid);
	if (it->parent && access(path, F_OK) < 0 && errno == ENOENT)
		return 1;
	ret = proc_parse_stat(it->pid, 0, &ps);
	if (ret < 0)
		return ret;
	it->ppid = ps.ppid;
	it->pgid = ps.pgrp;
	it->sid = ps.session;
	if (ps.state == 'Z') {
		it->zombie = true;
		it->exit_code = ps.exit_code;
		snprintf(it->comm, sizeof(it->comm), "%.15s", ps.comm);
	}
	ret = proc_parse_status(it->pid, 0, &st);
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
	if (!it->nr_threads)
		return wait_exited(it);
	return collect_thread_nspids(it);
}

static bool tree_is_stable(struct pstree *t)
{
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];
		_cleanup_free_ pid_t *kids = NULL;
		int n = 0;

		if (it->zombie)
			continue;
		if (proc_children(it->pid, &kids, &n) < 0 || n != it->nr_children)
			return false;
		for (int k = 0; k < n; k++)
			if (!pstree_find(t, kids[k]))
				return false;
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
	r = pstree_add(t, NULL, root);
	/* Breadth first: a parent is frozen before its children are listed. */
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];
		_cleanup_free_ pid_t *kids = NULL;
		int n = 0;

		ret = seize_item(it);
		if (ret < 0)
			return ret;
		if (ret > 0 && i > 0) {
			pr_info("pid %d: exited and was reaped while being frozen\n", it->pid);
			drop_item(t, it);
			i--;
			continue;
		}
		if (ret > 0) {
			pr_err("pid %d: exited while being frozen\n", it->pid);
			return -ESRCH;
		}
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
	 * Collect the tracee deaths so the tree is gone when we return; children
	 * first, since a dying PID-namespace init waits for them to be reaped.
	 */
	for (int i = t->nr - 1; i >= 0; i--) {
		struct pstree_item *it = t->items[i];
		/* Secondary threads first: the leader is reported only after them. */
		for (int k = it->nr_threads - 1; k >= 0; k--) {
			int st;
			while (waitpid(it->threads[k], &st, __WALL) > 0 && !WIFEXITED(st) &&
			       !WIFSIGNALED(st))
				;
		}
	}
}
