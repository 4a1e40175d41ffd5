/*
 * Groups and sessions whose leader is gone: a group leader and a session
 * leader exit after forking, so their children (adopted by the root, a
 * child subreaper) keep a pgid or sid that names no live process. A third
 * child joins the leaderless group. Restore has to recreate the ids
 * without their leaders.
 */
#include "crtest.h"

static const struct cr_node nodes[] = {
	{ "root", -1, CR_STAY, 0, false },
	{ "grp-leader", 0, CR_NEWPGRP, 0, true },	/* 1 */
	{ "grp-member", 1, CR_STAY, 0, false },		/* 2 */
	{ "grp-member2", 1, CR_STAY, 0, false },	/* 3 */
	{ "sess-leader", 0, CR_SETSID, 0, true },	/* 4 */
	{ "sess-member", 4, CR_STAY, 0, false },	/* 5 */
	{ "sess-grp", 4, CR_NEWPGRP, 0, false },	/* 6 */
	{ "joiner", 0, CR_JOINPGRP, 1, false },		/* 7 */
};

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	return cr_tree_run(nodes, CR_ARRAY_SIZE(nodes), NULL);
}
