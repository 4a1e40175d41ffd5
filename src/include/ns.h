/*
 * Namespaces a dumped tree owns besides its PID namespace: IPC (ipc.c),
 * UTS (here) and mount (mnt.c). The tree owns a namespace when its root's
 * differs from crtool's; every task must then be in the root's.
 */
#ifndef CR_NS_H
#define CR_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ns.pb-c.h"

struct pstree;
struct rst_ctx;
struct rst_ipc;
struct rst_mnt;

/* Restore side, in rst_ctx. */
struct rst_ns {
	NsEntry *ns;			/* NULL: the tree owns none */
	int own_mnt_fd;			/* crtool's own mount namespace, -1 */
	int own_fd[3];			/* crtool's own net, uts, ipc namespaces while it is in the tree's, -1 */
	int tree_mnt_fd;		/* the tree's, once built */
	int devpts_fd;			/* O_PATH of the tree's private devpts instance (for the tty code), -1 */
	struct rst_ipc *ipc;
	struct rst_mnt *mnt;
};

/* ---- dump ---- */
/* Which namespaces the tree owns (sets t->owned_ns); refuses the others. */
int ns_check_tree(struct pstree *t);
/*
 * A path read from the tree (fd link, mapping) as crtool can reach it: under
 * /proc/ROOT/root when the tree has its own mount namespace.
 */
const char *ns_tree_path(const char *path, char *buf, size_t len);
/* ns.img, ipc.img, mnt.img: after every process was dumped. */
int ns_dump(struct pstree *t, int dirfd, const char *dir, uint64_t max_tmpfs);

/* Enter the namespace of kind ("ipc", "mnt"...) of pid; *saved gets ours back. */
int ns_enter(pid_t pid, const char *kind, int nstype, int *saved);
int ns_return(int *saved, const char *kind, int nstype);

/* ---- restore ---- */
int ns_restore_load(struct rst_ctx *rc);
/* Before the tree is forked: create the namespaces and fill them (crtool enters them). */
int ns_restore_enter(struct rst_ctx *rc);
/* Once the tree is forked: crtool goes back to its own mount namespace. */
int ns_restore_leave(struct rst_ctx *rc);
/* After every task's memory: what needs the tasks (proc mounts, IPC_RMID). */
int ns_restore_after_mm(struct rst_ctx *rc);
void ns_restore_release(struct rst_ctx *rc);

/* ---- ipc.c ---- */
int ipc_dump(int dirfd, const char *dir);	/* in the tree's IPC namespace */
int ipc_restore_load(struct rst_ctx *rc);
int ipc_restore_create(struct rst_ctx *rc);	/* in the new IPC namespace */
int ipc_restore_finish(struct rst_ctx *rc);
void ipc_restore_release(struct rst_ctx *rc);
/* Size of the restored SysV segment id, 0 if unknown. */
uint64_t ipc_shm_size(struct rst_ctx *rc, int id);

/* ---- mnt.c ---- */
int mnt_dump_check(pid_t root, uint64_t max_tmpfs);
int mnt_dump(pid_t root, int dirfd, const char *dir, uint64_t max_tmpfs);
int mnt_restore_load(struct rst_ctx *rc);
int mnt_restore_build(struct rst_ctx *rc);	/* in the new mount namespace */
int mnt_restore_proc(struct rst_ctx *rc);	/* through the pidns init */
void mnt_restore_release(struct rst_ctx *rc);
/* Whether a dumped st_dev was a tmpfs recreated here (inode numbers changed). */
bool mnt_dev_recreated(struct rst_ctx *rc, uint64_t dev);

#endif
