/* Parsers for /proc/PID files. All return 0 or -errno and log what failed. */
#ifndef CR_PROC_H
#define CR_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* VmFlags from smaps that the engine re-applies with madvise (VMA_MADV_*). */
enum {
	VMA_MADV_DONTFORK = 1 << 0,	/* dc */
	VMA_MADV_WIPEONFORK = 1 << 1,	/* wf */
	VMA_MADV_DONTDUMP = 1 << 2,	/* dd */
	VMA_MADV_HUGEPAGE = 1 << 3,	/* hg */
	VMA_MADV_NOHUGEPAGE = 1 << 4,	/* nh */
	VMA_MADV_MERGEABLE = 1 << 5,	/* mg */
};

struct proc_vma {
	uint64_t start, end, pgoff;
	uint32_t prot;			/* PROT_* */
	bool shared;			/* 's' in the perms column */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	char *path;			/* file path, "[name]" or NULL for anonymous */
	uint32_t madv;			/* VMA_MADV_* */
	bool growsdown, locked, io, pfnmap, mixedmap, noreserve, maywrite;
	char vmflags[128];		/* raw VmFlags line for error messages */
};

int proc_parse_smaps(pid_t pid, struct proc_vma **out, int *nr);
void proc_free_vmas(struct proc_vma *v, int nr);

struct proc_stat {
	char state;
	pid_t ppid, pgrp, session;
	uint32_t tty_nr;		/* controlling terminal, kernel encoding; 0: none */
	pid_t tpgid;			/* its foreground process group, -1: none */
	uint32_t flags;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk, arg_start, arg_end, env_start, env_end;
	int exit_code;
	char comm[64];
};
int proc_parse_stat(pid_t pid, pid_t tid, struct proc_stat *st);
/* The same, but a task that is gone returns -ENOENT without a log line. */
int proc_try_parse_stat(pid_t pid, pid_t tid, struct proc_stat *st);

#define PROC_MAX_NS 33
struct proc_status {
	uint32_t uids[4], gids[4];
	uint32_t *groups;
	int nr_groups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint64_t sig_blk, shd_pnd, sig_pnd;
	pid_t nspid[PROC_MAX_NS], nspgid[PROC_MAX_NS], nssid[PROC_MAX_NS];
	int ns_levels;
	int seccomp;
	bool no_new_privs;
	uint32_t umask;
	char state;
};
int proc_parse_status(pid_t pid, pid_t tid, struct proc_status *st);
int proc_try_parse_status(pid_t pid, pid_t tid, struct proc_status *st);
void proc_free_status(struct proc_status *st);

struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags;
	int mnt_id;
	bool has_other;		/* extra lines this parser doesn't know (epoll, eventfd...) */
};
int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi);

struct proc_posix_timer {
	int id;
	int signo;
	uint64_t sival;
	int notify;		/* SIGEV_* */
	pid_t notify_tid;
	int clockid;
};
int proc_parse_timers(pid_t pid, struct proc_posix_timer **out, int *nr);

/* Children of every thread of pid (from task/TID/children), appended to *out. */
int proc_children(pid_t pid, pid_t **out, int *nr);
/* Thread ids of pid, sorted, main thread first. */
int proc_threads(pid_t pid, pid_t **out, int *nr);

/* Parse "start-end perms offset dev inode path" (one maps line); 0 or -EINVAL. */
int proc_parse_maps_line(const char *line, struct proc_vma *v);

#endif
