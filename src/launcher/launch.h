/* crlaunch: shared declarations of the launcher modules. */
#ifndef CRL_LAUNCH_H
#define CRL_LAUNCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit statuses of crlaunch itself (doc/crlaunch.1, EXIT STATUS). */
#define CRL_EXIT_CHECKPOINTED 75	/* checkpoint-exit done: EX_TEMPFAIL, requeue me */
#define CRL_EXIT_ERROR 125		/* crlaunch failed before or instead of the job */

/*
 * Namespaces of the job container. PID, IPC and mount namespaces (a private
 * /dev/shm and /proc) are the default; a network namespace of the job's own
 * (loopback only) is for when the engine dumps those.
 */
enum {
	CRL_NS_PID = 1 << 0,
	CRL_NS_IPC = 1 << 1,
	CRL_NS_MNT = 1 << 2,		/* private /dev/shm (tmpfs) and /proc */
	CRL_NS_NET = 1 << 3,		/* loopback only: the job's own ports */
};
#define CRL_NS_DEFAULT (CRL_NS_PID | CRL_NS_IPC | CRL_NS_MNT)

/* The job's identity: what must match for an epoch to be restored. */
struct job_ident {
	char *cwd;
	char **argv;
	int argc;
};

/* The job's standard streams, as the engine saw them (external pipes). */
enum { STREAM_STDIN, STREAM_STDOUT, STREAM_STDERR, NR_STREAMS };
extern const char *const stream_names[NR_STREAMS];

struct file_sum {
	char *name;			/* relative to the epoch directory */
	uint64_t size;
	uint64_t hash;
};

struct manifest {
	unsigned epoch;
	uint64_t time_ns;		/* CLOCK_REALTIME at commit */
	struct job_ident id;
	int nr_nodes;			/* node-000 ... */
	pid_t init_pid;			/* the container's init on the host (node 0) */
	char *external[NR_STREAMS];	/* "pipe:[INO]" held by crlaunch, or NULL */
	uint64_t stream_bytes[NR_STREAMS]; /* output forwarded up to the freeze */
	/* statistics */
	int processes;
	uint64_t bytes, frozen_ns, total_ns;
	struct file_sum *files;
	int nr_files;
};

/* ident.c: escaping and the identity */
char *str_escape(const char *s);
char *str_unescape(const char *s);
int ident_from_cmd(struct job_ident *id, int argc, char **argv);
bool ident_equal(const struct job_ident *a, const struct job_ident *b);
char *ident_describe(const struct job_ident *id);	/* "'a b c' in /cwd" */
void ident_free(struct job_ident *id);
/* The job file (CKPT_DIR/job): written at the first launch. */
int job_file_check(int dirfd, const struct job_ident *id, const char *ckpt_dir);

/* manifest.c */
char *manifest_format(const struct manifest *m, size_t *len);
int manifest_parse(const char *text, size_t len, struct manifest *m, char *err, size_t errlen);
void manifest_free(struct manifest *m);

/* epoch.c: the checkpoint directory */
#define EPOCH_NAME_FMT "epoch-%06u"
struct epoch_info {
	unsigned epoch;
	bool has_manifest;		/* a MANIFEST that parses */
	struct manifest m;
};
/* Every epoch-NNNNNN in dirfd, newest first. */
int epochs_list(int dirfd, struct epoch_info **out, int *nr);
void epochs_free(struct epoch_info *e, int nr);
int epoch_read_manifest(int dirfd, unsigned epoch, struct manifest *m, bool quiet);
/* Sizes and checksums of every file the manifest names; 0 or -EBADMSG. */
int epoch_verify(int dirfd, const struct manifest *m, char *why, size_t whylen);
/* Hash (and fsync) every file under epoch/node-NNN into m->files. */
int epoch_sum_files(int dirfd, unsigned epoch, struct manifest *m);
/* Write MANIFEST (temporary name, fsync, rename, fsync the directory). */
int epoch_commit(int dirfd, const struct manifest *m, int (*fault)(const char *step));
int epoch_remove(int dirfd, unsigned epoch);
/* Drop epochs without a valid MANIFEST (but `busy`) and all but the `keep` newest. */
int epochs_prune(int dirfd, int keep, unsigned busy);
int epochs_print(int dirfd, FILE *f);

/* util */
int parse_duration(const char *s, uint64_t *ns);
char *fmt_bytes(uint64_t b, char *buf, size_t len);
int rm_tree_at(int dirfd, const char *name);

/* control.c: the socket crctl talks to */
#define CONTROL_SOCK "control"
int control_path(int dirfd, char *buf, size_t len);

#endif
