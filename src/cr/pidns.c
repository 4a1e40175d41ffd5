#define LOG_PREFIX "pidns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pidns.h"
#include "util.h"

/* ---- dump ---------------------------------------------------------------- */

struct ns_pair {
	ino_t own, children;	/* /proc/PID/ns/pid and pid_for_children; 0 for a zombie */
};

static int read_ns(const struct pstree_item *it, struct ns_pair *ns)
{
	static const char *const names[] = { "pid", "pid_for_children" };
	ino_t *out[] = { &ns->own, &ns->children };

	ns->own = ns->children = 0;
	if (it->zombie)
		return 0;	/* a zombie has no namespace links any more */
	for (int k = 0; k < 2; k++) {
		char path[64];
		struct stat st;

		snprintf(path, sizeof(path), "/proc/%d/ns/%s", it->pid, names[k]);
		if (stat(path, &st) < 0 && errno == ENOENT && k == 1) {
			/* The kernel hides a namespace that has no init yet. */
			pr_err("pid %d: unshared a PID namespace that has no process yet (unshare --pid "
			       "without a fork); not supported\n", it->pid);
			return -EOPNOTSUPP;
		}
		if (stat(path, &st) < 0)
			return log_errno(-errno, "pid %d: can't stat %s", it->pid, path);
		*out[k] = st.st_ino;
	}
	return 0;
}

/* The child of it that is the init of the namespace its new children go into. */
static int find_children_ns_init(struct pstree_item *it, const struct ns_pair *ns)
{
	const struct ns_pair *mine = &ns[it->idx];

	it->has_pidns_child = false;
	if (it->zombie || mine->children == mine->own)
		return 0;
	for (int k = 0; k < it->nr_children; k++) {
		struct pstree_item *c = it->children[k];

		if (pidns_is_init_child(it, c) && ns[c->idx].own == mine->children) {
			it->has_pidns_child = true;
			it->pidns_child = c->pid;
			break;
		}
	}
	if (!it->has_pidns_child) {
		pr_err("pid %d: its new children go into PID namespace pid:[%lu], whose init is not one of "
		       "its children in the tree (unshare --pid without a fork, or setns); not supported\n",
		       it->pid, (unsigned long)mine->children);
		return -EOPNOTSUPP;
	}
	if (it->nr_threads > 1) {
		pr_err("pid %d: has %d threads and its new children go into another PID namespace; "
		       "not supported\n", it->pid, it->nr_threads);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int check_nesting(struct pstree_item *c, const struct ns_pair *ns)
{
	struct pstree_item *p = c->parent;
	int depth = c->ns_levels - p->ns_levels;

	if (depth == 0 || (depth == 1 && item_vpid(c) == 1))
		return 0;
	if (depth != 1) {
		pr_err("pid %d: its PID namespace is %d levels below its parent's (pid %d); not supported\n",
		       c->pid, depth, p->pid);
		return -EOPNOTSUPP;
	}
	/* A member of a nested namespace forked from outside it: its parent's pid_for_children. */
	if (!p->has_pidns_child || (!c->zombie && ns[c->idx].own != ns[p->idx].children)) {
		pr_err("pid %d (pid %d in its PID namespace) lives in a namespace below its parent's (pid %d) "
		       "but not in the one its parent's new children go into; not supported\n", c->pid,
		       item_vpid(c), p->pid);
		return -EOPNOTSUPP;
	}
	return 0;
}

int pidns_dump_check(struct pstree *t)
{
	_cleanup_free_ struct ns_pair *ns = xzalloc(sizeof(*ns) * t->nr);
	int ret = 0;

	for (int i = 0; i < t->nr && !ret; i++)
		ret = read_ns(t->items[i], &ns[i]);
	for (int i = 0; i < t->nr && !ret; i++)
		ret = find_children_ns_init(t->items[i], ns);
	for (int i = 1; i < t->nr && !ret; i++)
		ret = check_nesting(t->items[i], ns);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

int pidns_check_image(struct pstree *t, const char *dir)
{
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i], *init;

		if (it->has_pidns_child) {
			init = pstree_find(t, it->pidns_child);
			if (!init || init->parent != it || !pidns_is_init_child(it, init) || init->zombie) {
				pr_err("%s/pstree.img: pid %d: pidns_child %d is not a namespace init among its "
				       "children\n", dir, it->pid, it->pidns_child);
				return -EBADMSG;
			}
		}
		if (!i)
			continue;
		int depth = it->ns_levels - it->parent->ns_levels;

		if (depth < 0 || depth > 1 ||
		    (depth == 1 && !pidns_is_init_child(it->parent, it) && !it->parent->has_pidns_child)) {
			pr_err("%s/pstree.img: pid %d: PID namespace levels %d under a parent with %d\n", dir,
			       it->pid, it->ns_levels, it->parent->ns_levels);
			return -EBADMSG;
		}
	}
	return 0;
}

/*
 * The restored parent's state, in its own memory: which namespace its next
 * child goes into. own_ns is its own namespace, to come back to (setns to
 * the active namespace is always allowed).
 */
static int own_ns = -1;
static bool in_child_ns;

static int set_children_ns(struct pstree *t, struct pstree_item *parent, bool child_ns)
{
	struct pstree_item *init;

	if (child_ns == in_child_ns)
		return 0;
	if (own_ns < 0) {
		own_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (own_ns < 0)
			return log_errno(-errno, "pid %d: can't open /proc/self/ns/pid", parent->pid);
	}
	if (!child_ns) {
		if (setns(own_ns, CLONE_NEWPID) < 0)
			return log_errno(-errno, "pid %d: can't go back to its own PID namespace", parent->pid);
		in_child_ns = false;
		return 0;
	}
	init = pstree_find(t, parent->pidns_child);
	if (!init || init->pidfd < 0) {
		pr_err("pid %d: the init %d of its children's PID namespace is not created yet\n",
		       parent->pid, parent->pidns_child);
		return -EINVAL;
	}
	if (setns(init->pidfd, CLONE_NEWPID) < 0)
		return log_errno(-errno, "pid %d: can't enter the PID namespace of pid %d for its children",
				 parent->pid, init->pid);
	in_child_ns = true;
	return 0;
}

void pidns_child_reset(void)
{
	/* A new process starts with pid_for_children its own namespace. */
	own_ns = -1;
	in_child_ns = false;
}

int pidns_before_fork(struct pstree *t, struct pstree_item *parent, struct pstree_item *c)
{
	bool child_ns = c && c->ns_levels > parent->ns_levels && !pidns_is_init_child(parent, c);

	return set_children_ns(t, parent, child_ns);
}

int pidns_after_forks(struct pstree *t, struct pstree_item *it)
{
	int ret = set_children_ns(t, it, it->has_pidns_child);

	for (int k = 0; k < it->nr_children; k++) {
		struct pstree_item *c = it->children[k];

		if (c->pidfd >= 0)
			close(c->pidfd);
		c->pidfd = -1;
	}
	if (own_ns >= 0)
		close(own_ns);
	own_ns = -1;
	return ret;
}
