/*
 * The tree root is the init of its own PID namespace (run with
 * flags=pidns: the runner starts it under `unshare --pid --fork`). Restore
 * must recreate the namespace: the root is pid 1 with no visible parent,
 * every process keeps its pid inside the namespace, and they all share one
 * namespace, a child of their host's.
 */
#include "crtest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cr_node nodes[] = {
	{ "root", -1, CR_STAY, 0, false },
	{ "a", 0, CR_STAY, 0, false },
	{ "a1", 1, CR_STAY, 0, false },
	{ "b", 0, CR_NEWPGRP, 0, false },
	{ "b1", 3, CR_STAY, 0, false },
	{ "c", 0, CR_SETSID, 0, false },
};

static int nspid_levels;

/* Number of entries of NSpid: (one per nested PID namespace); the last
 * one is our pid in our own namespace. */
static int nspid(pid_t *own)
{
	char text[256], *p = text, *end;
	int n = 0;
	long v = 0;

	if (!cr_status_field("/proc/self/status", "NSpid", text, sizeof(text)))
		cr_die("no NSpid in /proc/self/status");
	for (;;) {
		long x = strtol(p, &end, 10);

		if (end == p)
			break;
		v = x;
		n++;
		p = end;
	}
	*own = (pid_t)v;
	return n;
}

/* /proc is the host's: the parent's host pid is field 4 of our stat. */
static pid_t host_ppid(void)
{
	char text[1024];
	int ppid = 0;
	char *p;

	cr_read_file("/proc/self/stat", text, sizeof(text));
	p = strrchr(text, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		cr_fail("can't parse /proc/self/stat");
	return ppid;
}

static void ns_link(const char *pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/ns/pid", pid);
	n = readlink(path, buf, len - 1);
	if (n < 0) {
		cr_fail("readlink %s: %s", path, strerror(errno));
		n = 0;
	}
	buf[n] = '\0';
}

static void check_namespace(int node, bool after)
{
	char mine[64], parents[64], pp[32];
	pid_t own;
	int levels = nspid(&own);

	CR_EXPECT_EQ("last NSpid entry", own, getpid());
	if (!after)
		nspid_levels = levels;
	CR_EXPECT_EQ("NSpid levels", levels, nspid_levels);
	if (levels < 2)
		cr_fail("NSpid has %d entries: not in a child PID namespace", levels);
	ns_link("self", mine, sizeof(mine));
	snprintf(pp, sizeof(pp), "%d", (int)host_ppid());
	ns_link(pp, parents, sizeof(parents));
	if (node == 0 && !strcmp(mine, parents))
		cr_fail("root shares its parent's PID namespace %s", mine);
	if (node != 0 && strcmp(mine, parents))
		cr_fail("in PID namespace %s, parent in %s", mine, parents);
}

static void hook(int node, bool after)
{
	if (node == 0) {
		if (!after && getpid() != 1)
			cr_die("pid %d: not the init of a PID namespace (run with flags=pidns)",
			       (int)getpid());
		CR_EXPECT_EQ("root getpid()", getpid(), 1);
		CR_EXPECT_EQ("root getppid()", getppid(), 0);
	} else {
		/* Forked in table order inside a fresh namespace. */
		CR_EXPECT_EQ("getpid() in the namespace", getpid(), node + 1);
	}
	check_namespace(node, after);
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	return cr_tree_run(nodes, CR_ARRAY_SIZE(nodes), hook);
}
