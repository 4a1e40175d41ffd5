/* Process trees for the C/R tests: see crtest.h. */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct ids {
	pid_t pid, ppid, pgid, sid;
};

static const struct cr_node *tree;
static int tree_len;
static cr_tree_hook tree_hook;
static pid_t node_pids[CR_TREE_MAX];

static struct ids want;
static pid_t kids[CR_TREE_MAX];
static const char *kid_roles[CR_TREE_MAX];
static int nr_kids;
/* False inside a new PID namespace: /proc then shows host pids. */
static bool proc_is_ours;

pid_t cr_tree_pid(int node)
{
	return node >= 0 && node < tree_len ? node_pids[node] : 0;
}

static void node_act(int i)
{
	const struct cr_node *n = &tree[i];

	switch (n->act) {
	case CR_STAY:
		break;
	case CR_SETSID:
		if (setsid() < 0)
			cr_die("setsid: %s", strerror(errno));
		break;
	case CR_NEWPGRP:
		if (setpgid(0, 0))
			cr_die("setpgid(0, 0): %s", strerror(errno));
		break;
	case CR_JOINPGRP:
		if (!node_pids[n->arg])
			cr_die("node %s joins the group of %s, not forked yet", n->role,
			       tree[n->arg].role);
		if (setpgid(0, node_pids[n->arg]))
			cr_die("setpgid(0, %d): %s", (int)node_pids[n->arg], strerror(errno));
		break;
	}
}

/* The pids listed in /proc/self/task/<pid>/children. */
static int read_children(pid_t *out, int max)
{
	char text[1024];
	int n = 0;

	/* thread-self, not self/task/<getpid()>: /proc may be of the parent
	 * PID namespace, where our pid differs. */
	cr_read_file("/proc/thread-self/children", text, sizeof(text));
	for (char *p = text; *p && n < max;) {
		char *end;
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		out[n++] = (pid_t)v;
		p = end;
	}
	return n;
}

static bool is_kid(pid_t pid)
{
	for (int i = 0; i < nr_kids; i++)
		if (kids[i] == pid)
			return true;
	return false;
}

/* Orphans of a vanished child were reparented to us (a subreaper). */
static void adopt_orphans(void)
{
	pid_t now[CR_TREE_MAX];
	int n = read_children(now, CR_TREE_MAX);

	if (!proc_is_ours)
		cr_die("vanishing nodes need /proc of our own PID namespace");
	for (int i = 0; i < n; i++)
		if (!is_kid(now[i])) {
			kid_roles[nr_kids] = "adopted";
			kids[nr_kids++] = now[i];
		}
}

static void check_children(const char *when)
{
	pid_t now[CR_TREE_MAX];
	int n = read_children(now, CR_TREE_MAX);

	if (n != nr_kids) {
		cr_fail("%s: /proc lists %d children, expected %d", when, n, nr_kids);
		return;
	}
	if (!proc_is_ours)
		return;
	for (int i = 0; i < n; i++)
		if (!is_kid(now[i]))
			cr_fail("%s: unexpected child %d", when, (int)now[i]);
}

static void record_ids(int i)
{
	const struct cr_node *n = &tree[i];
	int parent = n->parent;

	want.pid = getpid();
	want.ppid = getppid();
	want.pgid = getpgid(0);
	want.sid = getsid(0);
	/* The root's parent is outside the tree: after restore it is whoever
	 * restored it. */
	if (parent < 0)
		want.ppid = -1;
	/* Our parent exits after we are ready: we will belong to its parent. */
	if (parent >= 0 && tree[parent].vanish)
		want.ppid = node_pids[tree[parent].parent];
	if (n->act == CR_SETSID && (want.sid != want.pid || want.pgid != want.pid))
		cr_die("after setsid: sid %d pgid %d", (int)want.sid, (int)want.pgid);
	if (n->act == CR_NEWPGRP && want.pgid != want.pid)
		cr_die("after setpgid(0, 0): pgid %d", (int)want.pgid);
	if (n->act == CR_JOINPGRP && want.pgid != node_pids[n->arg])
		cr_die("pgid %d, expected %d", (int)want.pgid, (int)node_pids[n->arg]);
}

static void check_stat(void)
{
	char text[1024], state;
	int ppid, pgrp, sid, tty, tpgid;
	char *p;

	cr_read_file("/proc/self/stat", text, sizeof(text));
	p = strrchr(text, ')');
	if (!p || sscanf(p + 1, " %c %d %d %d %d %d", &state, &ppid, &pgrp, &sid, &tty,
			 &tpgid) != 6) {
		cr_fail("can't parse /proc/self/stat: %s", text);
		return;
	}
	CR_EXPECT_EQ("/proc/self/stat tty_nr", tty, 0);
	CR_EXPECT_EQ("/proc/self/stat tpgid", tpgid, -1);
	if (!proc_is_ours)
		return;
	if (want.ppid >= 0)
		CR_EXPECT_EQ("/proc/self/stat ppid", ppid, want.ppid);
	CR_EXPECT_EQ("/proc/self/stat pgrp", pgrp, want.pgid);
	CR_EXPECT_EQ("/proc/self/stat session", sid, want.sid);
}

static void verify_ids(void)
{
	CR_EXPECT_EQ("getpid()", getpid(), want.pid);
	if (want.ppid >= 0)
		CR_EXPECT_EQ("getppid()", getppid(), want.ppid);
	CR_EXPECT_EQ("getpgid(0)", getpgid(0), want.pgid);
	CR_EXPECT_EQ("getsid(0)", getsid(0), want.sid);
	CR_EXPECT_EQ("getpgrp()", getpgrp(), want.pgid);
	check_stat();
}

static void build(int i);

static void __attribute__((noreturn)) run_child(int i)
{
	build(i);
	cr_child_ready();
	if (tree[i].vanish)
		cr_child_exit();
	cr_wait_term();
	verify_ids();
	check_children("after restore");
	if (tree_hook)
		tree_hook(i, true);
	cr_finish_children(kids, kid_roles, nr_kids);
	cr_child_exit();
}

static void spawn_children(int i)
{
	for (int j = 0; j < tree_len; j++) {
		pid_t pid;
		int status;

		if (tree[j].parent != i)
			continue;
		pid = cr_spawn(tree[j].role);
		if (pid == 0)
			run_child(j);
		node_pids[j] = pid;
		if (!tree[j].vanish) {
			kid_roles[nr_kids] = tree[j].role;
			kids[nr_kids++] = pid;
			continue;
		}
		if (cr_wait_pid(pid, 10000, &status) || status != 0)
			cr_die("vanishing %s (pid %d) did not exit cleanly", tree[j].role, (int)pid);
	}
}

static void build(int i)
{
	bool subreaper = false;
	char self[32];
	ssize_t len;

	node_pids[i] = getpid();
	nr_kids = 0;
	len = readlink("/proc/self", self, sizeof(self) - 1);
	self[len > 0 ? len : 0] = '\0';
	proc_is_ours = atoi(self) == getpid();
	node_act(i);
	for (int j = 0; j < tree_len; j++)
		subreaper |= tree[j].parent == i && tree[j].vanish;
	if (subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		cr_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	spawn_children(i);
	if (subreaper)
		adopt_orphans();
	record_ids(i);
	check_children("before checkpoint");
	if (tree_hook)
		tree_hook(i, false);
}

int cr_tree_run(const struct cr_node *nodes, int n, cr_tree_hook hook)
{
	if (n > CR_TREE_MAX || nodes[0].parent != -1 || nodes[0].act != CR_STAY)
		cr_die("bad tree table");
	tree = nodes;
	tree_len = n;
	tree_hook = hook;
	build(0);
	if (cr_failures())
		cr_die("the tree is not as built (see above)");
	cr_ready();
	cr_wait_term();
	verify_ids();
	check_children("after restore");
	if (hook)
		hook(0, true);
	cr_finish_children(kids, kid_roles, nr_kids);
	return cr_report();
}
