/* The process tree being dumped or restored. */
#ifndef CR_PSTREE_H
#define CR_PSTREE_H

#include <stdbool.h>
#include <sys/types.h>

#include "proc.h"

struct pstree_item {
	pid_t pid, ppid, pgid, sid;	/* in the dumper's (restorer's) pid namespace */
	int ns_levels;			/* pid-ns levels below and including ours */
	pid_t nspid[PROC_MAX_NS];	/* outermost first, as /proc/PID/status NSpid */
	pid_t nspgid, nssid;		/* pgid and sid in the task's own namespace */
	int nr_threads;
	pid_t *threads;			/* main thread first */
	pid_t *thread_nspid;		/* nr_threads * ns_levels, outermost first */
	bool zombie, stopped;
	bool share_fs;			/* CLONE_FS with its parent */
	bool share_files;		/* CLONE_FILES with its parent */
	bool has_pidns_child;		/* its new children go into another PID namespace: */
	pid_t pidns_child;		/* the one whose init is this child of it */
	int pidfd;			/* restore: in the parent, of a pid-ns init child; else -1 */
	int exit_code;			/* wait status of a zombie */
	char comm[16];			/* name of a zombie */
	bool *seized;			/* per thread: we hold it in a ptrace stop */
	struct pstree_item *parent;
	struct pstree_item **children;
	int nr_children;
	int idx;
};

struct pstree {
	struct pstree_item **items;	/* parents before children */
	int nr;
	bool root_is_pidns_init;
	int owned_ns;			/* CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS the tree owns */
};

static inline struct pstree_item *pstree_root(struct pstree *t) { return t->items[0]; }
struct pstree_item *pstree_find(struct pstree *t, pid_t pid);
struct pstree_item *pstree_add(struct pstree *t, struct pstree_item *parent, pid_t pid);
void pstree_free(struct pstree *t);

/* The innermost pid / tid of an item or of its thread i. */
static inline pid_t item_vpid(const struct pstree_item *it) { return it->nspid[it->ns_levels - 1]; }
pid_t item_thread_vtid(const struct pstree_item *it, int i);

/* Freeze the tree rooted at pid: seize and interrupt every thread. */
int seize_tree(pid_t root, struct pstree *t);
enum release_mode { RELEASE_RUN, RELEASE_STOP, RELEASE_KILL };
/* Detach (leaving it running or stopped) or kill the whole tree. */
void seize_release(struct pstree *t, enum release_mode mode);

int pstree_write_image(int dirfd, const char *dir, struct pstree *t);
int pstree_read_image(int dirfd, const char *dir, struct pstree *t);

#endif
