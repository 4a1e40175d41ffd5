/*
 * PID namespaces nested inside the tree (run with flags=pidns, so the root
 * is already the init of namespace A):
 *
 *   root (1 in A)
 *    `- unsharer (A)          unshare(CLONE_NEWPID): its new children go into B
 *        |- binit (1 in B)    init of B
 *        |   |- zombie (B)    exited with status 33, not reaped
 *        |   |- plain (B)
 *        |   `- cinit (1 in C, a namespace in B: clone with CLONE_NEWPID)
 *        |       `- cmember (2 in C)
 *        `- bmember (B)       a child of unsharer that is not B's init
 *
 * After restore every process must have the same pid at every level
 * (NSpid, NStgid, NSpgid, NSsid), the same getpid()/getppid(), the same
 * children; the zombie its status; unsharer's new children must still go
 * into B, binit's and cinit's into their own namespaces.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct ids {
	pid_t pid, ppid;
	char nspid[128], nstgid[128], nspgid[128], nssid[128];
	char children[256];
	int levels;
	bool children_ns_own;	/* pid_for_children is our own namespace */
};

static struct ids me;

static int count_levels(const char *s)
{
	int n = 0;

	for (char *end; ; s = end, n++) {
		strtol(s, &end, 10);
		if (end == s)
			return n;
	}
}

static ino_t ns_ino(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		cr_die("stat %s: %s", path, strerror(errno));
	return st.st_ino;
}

static void record(struct ids *r)
{
	r->pid = getpid();
	r->ppid = getppid();
	if (!cr_status_field("/proc/self/status", "NSpid", r->nspid, sizeof(r->nspid)) ||
	    !cr_status_field("/proc/self/status", "NStgid", r->nstgid, sizeof(r->nstgid)) ||
	    !cr_status_field("/proc/self/status", "NSpgid", r->nspgid, sizeof(r->nspgid)) ||
	    !cr_status_field("/proc/self/status", "NSsid", r->nssid, sizeof(r->nssid)))
		cr_die("no NS* fields in /proc/self/status");
	cr_read_file("/proc/thread-self/children", r->children, sizeof(r->children));
	r->levels = count_levels(r->nspid);
	r->children_ns_own =
		ns_ino("/proc/self/ns/pid") == ns_ino("/proc/self/ns/pid_for_children");
}

static void check_ids(void)
{
	struct ids now;

	record(&now);
	CR_EXPECT_EQ("getpid", now.pid, me.pid);
	CR_EXPECT_EQ("getppid", now.ppid, me.ppid);
	CR_CHECK(!strcmp(now.nspid, me.nspid), "NSpid '%s', was '%s'", now.nspid, me.nspid);
	CR_CHECK(!strcmp(now.nstgid, me.nstgid), "NStgid '%s', was '%s'", now.nstgid, me.nstgid);
	CR_CHECK(!strcmp(now.nspgid, me.nspgid), "NSpgid '%s', was '%s'", now.nspgid, me.nspgid);
	CR_CHECK(!strcmp(now.nssid, me.nssid), "NSsid '%s', was '%s'", now.nssid, me.nssid);
	CR_CHECK(!strcmp(now.children, me.children), "children '%s', was '%s'", now.children,
		 me.children);
	CR_CHECK(now.children_ns_own == me.children_ns_own,
		 "pid_for_children is %s our namespace, was %s", now.children_ns_own ? "" : "not",
		 me.children_ns_own ? "" : "not");
}

/* A child forked now must land PLUS levels deeper than us (0 or 1). */
static void check_new_child(int plus)
{
	int st;
	pid_t p = fork();

	if (p < 0) {
		cr_fail("fork after restore: %s", strerror(errno));
		return;
	}
	if (p == 0) {
		char v[128];

		cr_status_field("/proc/self/status", "NSpid", v, sizeof(v));
		_exit(count_levels(v));
	}
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st))
		cr_fail("new child %d: wait failed or status 0x%x", (int)p, st);
	else
		CR_EXPECT_EQ("pid levels of a new child", WEXITSTATUS(st), me.levels + plus);
}

static void expect_level(const char *who, int levels, pid_t own)
{
	if (me.levels != levels)
		cr_die("%s: %d pid levels (NSpid %s), expected %d", who, me.levels, me.nspid, levels);
	if (own && me.pid != own)
		cr_die("%s: pid %d, expected %d", who, (int)me.pid, (int)own);
}

static void __attribute__((noreturn)) leaf(int levels)
{
	record(&me);
	expect_level("leaf", levels, 0);
	cr_child_ready();
	cr_wait_term();
	check_ids();
	cr_child_exit();
}

static void __attribute__((noreturn)) cinit(int levels)
{
	static const char *const roles[] = { "cmember" };
	pid_t kid = cr_spawn("cmember");

	if (kid == 0)
		leaf(levels);
	record(&me);
	expect_level("cinit", levels, 1);
	cr_child_ready();
	cr_wait_term();
	check_ids();
	cr_finish_children(&kid, roles, 1);
	cr_child_exit();
}

static void __attribute__((noreturn)) binit(int levels)
{
	static const char *const roles[] = { "plain", "cinit" };
	siginfo_t si;
	pid_t zombie, kids[2];
	int st, self_ns;

	zombie = cr_fork("zombie");
	if (zombie == 0)
		_exit(33);
	while (waitid(P_PID, (id_t)zombie, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			cr_die("waitid zombie: %s", strerror(errno));
	kids[0] = cr_spawn("plain");
	if (kids[0] == 0)
		leaf(levels);
	/* clone(CLONE_NEWPID) by hand: unshare, fork, and back to our own namespace. */
	self_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (self_ns < 0 || unshare(CLONE_NEWPID))
		cr_die("unshare(CLONE_NEWPID) in binit: %s", strerror(errno));
	kids[1] = cr_spawn("cinit");
	if (kids[1] == 0) {
		close(self_ns);
		cinit(levels + 1);
	}
	if (setns(self_ns, CLONE_NEWPID))
		cr_die("setns back to our own PID namespace: %s", strerror(errno));
	close(self_ns);
	record(&me);
	expect_level("binit", levels, 1);
	cr_child_ready();
	cr_wait_term();
	check_ids();
	check_new_child(0);
	if (waitpid(zombie, &st, WNOHANG) != zombie)
		cr_fail("zombie %d: not reapable: %s", (int)zombie, strerror(errno));
	else if (!WIFEXITED(st) || WEXITSTATUS(st) != 33)
		cr_fail("zombie: status 0x%x, expected exit 33", st);
	cr_finish_children(kids, roles, 2);
	cr_child_exit();
}

/* Our children's namespaces, seen through /proc (the host's): both must be pid_for_children. */
static void check_children_ns(void)
{
	ino_t want = ns_ino("/proc/self/ns/pid_for_children");
	char list[256], *p = list, *end;
	int n = 0;

	CR_CHECK(want != ns_ino("/proc/self/ns/pid"), "unsharer: pid_for_children is its own namespace");
	cr_read_file("/proc/thread-self/children", list, sizeof(list));
	for (long c; (c = strtol(p, &end, 10)), end != p; p = end, n++) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%ld/ns/pid", c);
		CR_CHECK(ns_ino(path) == want, "unsharer: child %ld is not in its pid_for_children namespace", c);
	}
	CR_EXPECT_EQ("unsharer: children", n, 2);
}

static void __attribute__((noreturn)) unsharer(int levels)
{
	static const char *const roles[] = { "binit", "bmember" };
	pid_t kids[2];

	if (unshare(CLONE_NEWPID))
		cr_die("unshare(CLONE_NEWPID): %s", strerror(errno));
	kids[0] = cr_spawn("binit");
	if (kids[0] == 0)
		binit(levels + 1);
	kids[1] = cr_spawn("bmember");
	if (kids[1] == 0)
		leaf(levels + 1);
	record(&me);
	expect_level("unsharer", levels, 0);
	cr_child_ready();
	cr_wait_term();
	check_ids();
	check_children_ns();
	check_new_child(1);
	/* bmember first: when binit exits, every process of B is killed. */
	cr_finish_children(&kids[1], &roles[1], 1);
	cr_finish_children(&kids[0], &roles[0], 1);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "unsharer" };
	pid_t kid;

	cr_init(argc, argv);
	record(&me);
	if (me.levels < 2 || me.pid != 1)
		cr_die("run me as the init of a PID namespace (flags=pidns): NSpid %s", me.nspid);
	kid = cr_spawn("unsharer");
	if (kid == 0)
		unsharer(me.levels);
	record(&me);
	cr_ready();
	cr_wait_term();
	check_ids();
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
