/*
 * Process tree: children, grandchildren and a great-grandchild. Each
 * process checks its pid, parent, group, session and list of children.
 */
#include "crtest.h"

static const struct cr_node nodes[] = {
	{ "root", -1, CR_STAY, 0, false },
	{ "c1", 0, CR_STAY, 0, false },
	{ "c2", 0, CR_STAY, 0, false },
	{ "c3", 0, CR_STAY, 0, false },
	{ "g1a", 1, CR_STAY, 0, false },
	{ "g1b", 1, CR_STAY, 0, false },
	{ "g2", 2, CR_STAY, 0, false },
	{ "gg1", 4, CR_STAY, 0, false },
};

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	return cr_tree_run(nodes, CR_ARRAY_SIZE(nodes), NULL);
}
