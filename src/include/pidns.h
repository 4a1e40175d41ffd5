/*
 * PID namespaces nested inside the tree: a process that is the init of a
 * namespace below its parent's (clone(CLONE_NEWPID), unshare --pid --fork),
 * other members of such a namespace whose parent is outside it, and a
 * parent whose new children go into another namespace (pid_for_children).
 */
#ifndef CR_PIDNS_H
#define CR_PIDNS_H

#include <stdbool.h>

#include "pstree.h"

/* Dump: check every nesting is one the restore can rebuild, and set pidns_child. */
int pidns_dump_check(struct pstree *t);
/* Restore: the same rules, checked on pstree.img before anything is created. */
int pidns_check_image(struct pstree *t, const char *dir);

/* Restored child c is a pid-ns init: clone it with CLONE_NEWPID. */
static inline bool pidns_is_init_child(const struct pstree_item *parent, const struct pstree_item *c)
{
	return c->ns_levels > parent->ns_levels && item_vpid(c) == 1;
}

/* First thing in a restored process: forget its parent's state. */
void pidns_child_reset(void);
/* In the restored parent, before cloning c: point pid_for_children where c belongs
 * (c NULL: its own namespace). */
int pidns_before_fork(struct pstree *t, struct pstree_item *parent, struct pstree_item *c);
/* In the restored parent, once its children exist: leave pid_for_children as dumped. */
int pidns_after_forks(struct pstree *t, struct pstree_item *it);

#endif
