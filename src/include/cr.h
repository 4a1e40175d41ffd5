/* Internal interfaces between the engine's dump and restore modules. */
#ifndef CR_CR_H
#define CR_CR_H

#include <stdbool.h>
#include <stdint.h>

#include "ns.h"
#include "proc.h"
#include "pstree.h"
#include "rsys.h"

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "mm.pb-c.h"

#define CR_FORMAT_VERSION 1
#define SCRATCH_PAGES 16

/* One process while it is dumped. */
struct dump_ctx {
	struct pstree_item *it;
	int dirfd;
	const char *dir;
	struct rsys rs;			/* remote syscalls in the main thread */
	uint64_t code_addr;		/* where the gadget was written */
	uint8_t saved_code[8];		/* the bytes it replaced */
	struct proc_vma *vmas;
	int nr_vmas;
	struct shmem_seen *shm;		/* shared anonymous objects already saved */
	struct file_seen *files;
	uint64_t pages_written, bytes_written;
};

/* Open file descriptions seen so far in the tree, to find shared ones. */
struct file_seen {
	void *by_desc;			/* tsearch tree of struct file_key (files.c) */
	uint32_t next_id;
	/* fd-pipe.c: contents of the pipes and fifos met so far */
	struct PipeDataEntry **pipes;
	int nr_pipes;
	/* fd-anon.c: epoll descriptions, and those whose items have a registering process */
	struct { uint32_t id; pid_t pid; int fd; bool owned; } *epolls;
	int nr_epolls;
	/* ghost.c: unlinked files and memfds saved so far */
	GhostEntry **ghosts;
	int nr_ghosts;
	uint64_t ghost_limit;		/* bytes of data one may hold */
	/* external.c: what the user declared outside the tree, pipe ends we hold */
	const struct dump_opts *opts;
	struct pstree *tree;
	struct pipe_ends *pipe_ends;
	int nr_pipe_ends;
	/* fd-tty.c: pty pairs whose master the tree holds, the terminal declared external */
	struct tty_seen *ttys;
	int nr_ttys;
	bool ttys_scanned;
	uint64_t external_tty_rdev;	/* the one terminal outside the tree (--external tty) */
	struct tty_taken *taken;	/* output read from masters, to give back if the tree lives on */
	int nr_taken;
	/* sk-unix.c: the unix sockets of the tree's network namespace */
	struct unix_table *unixsk;
	/* sk-inet.c: the tree's inet and netlink sockets */
	struct sk_seen *sk;
};

struct shmem_seen {
	uint64_t *ino;
	int nr;
};

/* What a dump cost, for a launcher's log and manifest (dump_opts.stats_out). */
struct dump_stats {
	int nr_tasks;
	uint64_t frozen_ns;		/* from the first seize to the release */
	uint64_t total_ns;
	uint64_t page_bytes;		/* memory pages written */
};

/* Points where dump_opts.hook is called, the tree frozen every time. */
enum dump_stage {
	DUMP_STAGE_FROZEN,		/* seized, nothing written yet */
	DUMP_STAGE_TASK_DONE,		/* one more process written */
	DUMP_STAGE_WRITTEN,		/* every image written and synced, not yet released */
};

struct dump_opts {
	pid_t pid;
	const char *dir;
	enum { DUMP_KILL, DUMP_LEAVE_RUNNING, DUMP_LEAVE_STOPPED } after;
	bool stats;
	uint64_t ghost_limit;		/* 0: the default */
	uint64_t max_tmpfs;		/* --max-tmpfs-size; 0: the default */
	const char **externals;		/* --external: fd link texts that are not ours */
	int nr_externals;
	bool tcp_established;		/* take TCP connections to peers outside the tree */
	/* A launcher's hooks: a nonzero return fails the dump (the tree runs on). */
	int (*hook)(void *arg, enum dump_stage stage);
	void *hook_arg;
	struct dump_stats *stats_out;	/* filled on success when not NULL */
};

struct inherit_fd {			/* --inherit-fd N:ID */
	int fd;
	const char *id;
};

struct restore_opts {
	const char *dir;
	bool detach;
	const char *pidfile;
	struct inherit_fd *inherit;
	int nr_inherit;
	pid_t *root_pid;		/* with detach: where the root's pid goes */
};

int cr_dump(const struct dump_opts *o);
int cr_restore(const struct restore_opts *o);

/* task.c: registers, signals, timers, creds, limits and the mm fields */
int dump_task_core(struct dump_ctx *c);

/* mem.c */
int dump_task_mm(struct dump_ctx *c);

/* files.c */
int dump_task_fds(struct dump_ctx *c);
/* After every process: objects shared across the tree (pipe contents...). */
int dump_files_finish(struct file_seen *fs, int dirfd, const char *dir);
void dump_files_free(struct file_seen *fs);
/* Open every file description once, before the tree is forked. */
struct rst_ctx;
int restore_files_prepare(struct rst_ctx *rc);
void restore_files_release(struct rst_ctx *rc);

/* In the restored child, before it is seized: put every descriptor in place. */
int restore_fds_in_child(struct rst_ctx *rc, FdsEntry *fds, int *nfd);

/* Restore side: one process driven by the restorer. */
struct rst_task {
	struct pstree_item *it;
	TaskCoreEntry *core;
	MmEntry *mm;
	FdsEntry *fds;
	struct rsys rs;			/* main thread */
	int own_fds[2];			/* restorer descriptors to close in it */
	uint64_t hole;			/* our code + scratch in the task */
	size_t hole_len;
};

struct rst_shmem {			/* shared anonymous objects, created by the restorer */
	uint64_t ino;
	uint64_t size;
	void *addr;			/* our own mapping of it */
	char path[96];			/* /proc/<us>/map_files/... for the tasks to open */
};

struct rst_file {
	uint32_t id;
	int fd;				/* ours, inherited by every task */
};

struct rst_ctx {
	const char *dir;		/* absolute */
	struct rst_file *files;
	int nr_files;
	int files_end;			/* first descriptor above ours */
	int dirfd;
	struct pstree tree;
	struct rst_task *tasks;		/* same order as tree.items */
	struct rst_shmem *shm;
	int nr_shm;
	struct rst_pipe *pipes;		/* fd-pipe.c: one per pipe or fifo */
	int nr_pipes;
	struct rst_ghost *ghosts;	/* ghost.c: recreated, held until the end */
	int nr_ghosts;
	struct rst_ns ns;		/* ns.c: namespaces the tree owns */
	/*
	 * fd-tty.c: pty pairs, created in the devpts instance of devpts_dirfd
	 * (-1: /dev/pts, opened when needed) through ptmx_path (NULL:
	 * /dev/ptmx), which must be that instance's ptmx.
	 */
	int devpts_dirfd;
	bool own_devpts_dirfd;
	const char *ptmx_path;
	struct rst_tty *ttys;
	int nr_ttys;
	struct rst_unix *unixsk;	/* sk-unix.c: every unix socket, made before the files */
	int nr_unixsk;
	struct rst_sk *sk;		/* sk-inet.c: socket images, connections to finish */
	const struct restore_opts *opts;
};

/* ghost.c: files open or mapped but unlinked, and memfds */
int ghost_dump(struct file_seen *fs, int dirfd, const char *dir, pid_t pid, const char *src,
	       const char *link, uint32_t *id);
int ghosts_dump_finish(struct file_seen *fs, int dirfd, const char *dir);
int ghosts_restore_load(struct rst_ctx *rc);
void ghosts_restore_release(struct rst_ctx *rc);
/* Our descriptor of ghost id, and a path the restored tasks can open it by. */
int ghost_fd(struct rst_ctx *rc, uint32_t id, const char **path);

/* fd-tty.c: controlling terminals and pty pairs */
int tty_dump_ctty(struct dump_ctx *c, FdsEntry *fe);
/* The tree is not killed: the output read from its masters goes back in. */
int ttys_dump_give_back(struct file_seen *fs);
void ttys_dump_free(struct file_seen *fs);
int ttys_restore_prepare(struct rst_ctx *rc);
int ttys_restore_fd_need(struct rst_ctx *rc);
int ttys_restore_lock(struct rst_ctx *rc);
void ttys_restore_release(struct rst_ctx *rc);
/* In the restored child: after its setsid (leader), and once its children exist. */
int tty_restore_ctty(struct rst_ctx *rc, struct rst_task *t);
int tty_drop_ctty(struct rst_task *t);
/* From the restorer, once the process groups exist: the foreground groups. */
int ttys_restore_fg(struct rst_ctx *rc);
bool link_is_deleted(const char *link);

int restore_task_mm(struct rst_ctx *rc, struct rst_task *t);
int restore_shmem_prepare(struct rst_ctx *rc);
int restore_task_core(struct rst_ctx *rc, struct rst_task *t);
int restore_task_finish(struct rst_ctx *rc, struct rst_task *t);

/* Remote helpers shared by the modules. */
long remote_open_path(struct rsys *r, const char *path, int flags);
int rsys_check(struct rsys *r, long *ret, long nr, const uint64_t args[6], const char *what);
#define RCALL(r, what, nr, ...) ({ long __v; int __e = rsys_check(r, &__v, nr, (uint64_t[6]){ __VA_ARGS__ }, what); __e < 0 ? (long)__e : __v; })

#endif
