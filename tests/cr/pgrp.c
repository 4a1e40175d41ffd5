/*
 * Process groups and sessions: a child in its own session with a group of
 * its own inside it, a child leading a group in the root's session, and a
 * child that joins its sibling's group.
 */
#include "crtest.h"

static const struct cr_node nodes[] = {
	{ "root", -1, CR_STAY, 0, false },
	{ "sess", 0, CR_SETSID, 0, false },		/* 1 */
	{ "sess-grp", 1, CR_NEWPGRP, 0, false },	/* 2 */
	{ "sess-stay", 1, CR_STAY, 0, false },		/* 3 */
	{ "grp", 0, CR_NEWPGRP, 0, false },		/* 4 */
	{ "grp-stay", 4, CR_STAY, 0, false },		/* 5 */
	{ "stay", 0, CR_STAY, 0, false },		/* 6 */
	{ "join-grp", 0, CR_JOINPGRP, 4, false },	/* 7 */
	{ "sess-join", 1, CR_JOINPGRP, 2, false },	/* 8 */
};

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	return cr_tree_run(nodes, CR_ARRAY_SIZE(nodes), NULL);
}
