/*
 * The tree owns a network namespace (run under `unshare --net`): the dump
 * must be refused with a clear error, and the tree must go on running
 * untouched (the runner checks the refusal and that no task changed; this
 * checks that both processes still answer SIGTERM).
 */
#include "crtest.h"

#include <unistd.h>

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	kid = cr_spawn("child");
	if (kid == 0) {
		cr_child_ready();
		cr_wait_term();
		cr_child_exit();
	}
	cr_ready();
	cr_wait_term();
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
