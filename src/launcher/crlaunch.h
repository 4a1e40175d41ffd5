/* crlaunch's state, shared by its modules (crlaunch.c, container.c, checkpoint.c, control.c). */
#ifndef CRL_CRLAUNCH_H
#define CRL_CRLAUNCH_H

#include "launch.h"

enum sig_action { SA_NONE, SA_CHECKPOINT, SA_CHECKPOINT_EXIT, SA_FORWARD, SA_IGNORE };
enum restart_mode { RESTART_AUTO, RESTART_ALWAYS, RESTART_NEVER };

struct stream {
	int fd;				/* our end, -1 once closed */
	int job_fd;			/* the job's end, until it is handed over */
	char *ext_id;			/* "pipe:[INO]" of the job's end */
	uint64_t bytes;			/* moved since the job started (over restarts) */
	char buf[65536];		/* stdin: read from ours, not yet in the pipe */
	size_t buffered;
};

struct waiter {				/* a crctl waiting for a checkpoint */
	int fd;
	struct waiter *next;
};

struct launcher {
	/* options */
	const char *ckpt_dir;
	uint64_t interval_ns, grace_ns;
	int keep;
	enum restart_mode restart;
	enum sig_action on_signal[65];
	bool on_signal_set[65];		/* given with --on-signal */
	unsigned ns_flags;
	struct job_ident id;
	/* state */
	int dirfd;			/* CKPT_DIR, flock'ed while we run */
	pid_t init_pid;			/* the container's PID 1, as we see it */
	struct stream streams[NR_STREAMS];
	bool stdin_eof;
	unsigned last_epoch;		/* newest epoch number seen or written */
	unsigned restored_from;		/* 0: launched fresh */
	int nr_checkpoints;		/* by this crlaunch */
	struct manifest last;		/* the last committed, for status */
	bool have_last;
	uint64_t start_ns;
	/* requests, served between events */
	bool want_checkpoint, want_exit;
	struct waiter *waiters;
	uint64_t stop_deadline;		/* after `crctl stop`: SIGKILL then */
	bool exiting;			/* checkpoint-exit done, the job is gone */
	int sfd, tfd, lfd;		/* signalfd, interval timerfd, control socket */
};

/* container.c */
int streams_open(struct launcher *l);
int container_start(struct launcher *l);
const char *init_path(void);
void stream_pump(struct launcher *l, int i);
void stdin_feed(struct launcher *l);
void streams_drain(struct launcher *l);
void streams_close_job_ends(struct launcher *l);

/* checkpoint.c */
int checkpoint(struct launcher *l, bool exit_after, char *msg, size_t msglen);
/* 1: restored, 0: nothing to restore (launch), <0: error */
int restart_from_epochs(struct launcher *l);
int fault(const char *step);

/* control.c */
int control_listen(struct launcher *l);
void control_accept(struct launcher *l);
void control_answer_waiters(struct launcher *l, bool ok, const char *msg);
void control_close(struct launcher *l);

#endif
