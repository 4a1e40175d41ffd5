/* Open descriptors: one set of operations per kind of file. */
#ifndef CR_FILES_H
#define CR_FILES_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fdinfo.pb-c.h"

struct file_seen;
struct rst_ctx;

/* One descriptor while it is dumped. */
struct fd_dump {
	struct file_seen *fs;
	int dirfd;			/* the image directory */
	const char *dir;
	pid_t pid;
	int fd;
	const char *target;		/* the /proc/PID/fd link */
	struct stat st;
	char *fdinfo;			/* text of /proc/PID/fdinfo/FD */
	bool first;			/* first descriptor of its open file description */
};

struct fd_ops {
	FdKind kind;
	const char *name;
	/* Fill the kind's fields; for every descriptor (d->first tells). */
	int (*dump)(struct fd_dump *d, FdEntry *e);
	/* Open the description in the restorer; returns our descriptor. */
	int (*open)(struct rst_ctx *rc, const FdEntry *e);
	/* In the restored process once all its descriptors are in place. */
	int (*in_child)(struct rst_ctx *rc, const FdEntry *e);
};

extern const struct fd_ops pipe_ops, fifo_ops;
extern const struct fd_ops external_ops;
extern const struct fd_ops mqueue_ops;

/* fd-mqueue.c */
bool fd_is_mqueue(const struct fd_dump *d);
extern const struct fd_ops tty_ops;
extern const struct fd_ops unixsk_ops;
extern const struct fd_ops eventfd_ops, signalfd_ops, timerfd_ops, inotify_ops, epoll_ops;

/* fd-pipe.c: pipe and fifo contents */
int pipes_dump_finish(struct file_seen *fs, int dirfd, const char *dir);
int pipes_restore_load(struct rst_ctx *rc);
void pipes_restore_release(struct rst_ctx *rc);

/* fd-tty.c: terminal devices (ptys, /dev/tty, consoles, serial lines) */
bool tty_chrdev(dev_t rdev);
int ttys_dump_check_outside(struct file_seen *fs);

/* fd-anon.c: checks that need the whole tree */
int anon_dump_finish(struct file_seen *fs);

 /* external.c */
bool external_declared(const struct file_seen *fs, const char *link);
void external_note_pipe(struct file_seen *fs, uint64_t ino, uint32_t flags, pid_t pid, int fd);
int external_check(struct file_seen *fs);

 /* sk-unix.c: the namespace's unix sockets, listed on first use */
bool unix_sk_known(struct file_seen *fs, pid_t pid, uint64_t ino);
int unix_dump_finish(struct file_seen *fs, int dirfd, const char *dir);
/* The descriptor numbers of pid, sorted (files.c). */
int list_fds(pid_t pid, int **out, int *nr);
/* A NETLINK_SOCK_DIAG socket in pid's network namespace. */
int sock_diag_socket(pid_t pid);
void unix_dump_free(struct file_seen *fs);
int unix_restore_prepare(struct rst_ctx *rc);
void unix_restore_release(struct rst_ctx *rc);

/* A line "key: value" of an fdinfo text, or NULL. */
const char *fdinfo_field(const char *text, const char *key);

#endif
