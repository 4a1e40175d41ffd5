#define LOG_PREFIX "crlaunch: "
/*
 * One checkpoint, as the two-phase commit of DESIGN.md on a single node:
 *   mkdir epoch-N/          FREEZE + DUMP: the engine writes node-000/ with the
 *                           job frozen, our pipes declared external
 *   checksums, MANIFEST     COMMIT: MANIFEST.tmp, fsync, rename, `latest`
 *   resume | exit           the job resumes as soon as its images are synced;
 *                           with checkpoint-exit it stays frozen until the
 *                           commit and is killed only after it.
 * Any failure before the rename removes the epoch and leaves the job running.
 *
 * CRLAUNCH_FAULT=STEP[@N][:fail] stops crlaunch with SIGKILL (or, with
 * ":fail", makes the step fail) at STEP of its N-th checkpoint (default 1):
 * before-images, during-images, after-images, before-manifest, manifest-tmp,
 * after-manifest.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cr.h"
#include "crlaunch.h"
#include "log.h"
#include "util.h"

static int checkpoint_seq;		/* the checkpoint in progress, 1-based, this run */

int fault(const char *step)
{
	const char *spec = getenv("CRLAUNCH_FAULT"), *at, *colon;
	size_t len;
	int nth = 1;

	if (!spec || !*spec)
		return 0;
	at = strchr(spec, '@');
	colon = strchr(spec, ':');
	len = at ? (size_t)(at - spec) : colon ? (size_t)(colon - spec) : strlen(spec);
	if (at)
		nth = atoi(at + 1);
	if (len != strlen(step) || strncmp(spec, step, len) || nth != checkpoint_seq)
		return 0;
	if (colon && !strcmp(colon, ":fail")) {
		pr_err("fault injected: %s fails (CRLAUNCH_FAULT)\n", step);
		return -1;
	}
	cr_log(LOG_ERR, "crlaunch: fault injected: killed at %s (CRLAUNCH_FAULT)\n", step);
	kill(getpid(), SIGKILL);
	pause();
	return -1;
}

struct ckpt {
	struct launcher *l;
	struct manifest *m;
	bool exit_after;
	bool committed;
	int tasks_done;
	uint64_t deadline;		/* checkpoint-exit: give up after --grace */
	uint64_t t0, t_frozen;
};

static void manifest_fill_job(struct launcher *l, struct manifest *m, unsigned epoch)
{
	m->epoch = epoch;
	m->id = l->id;			/* borrowed: not freed with m (see manifest_release) */
	m->nr_nodes = 1;
	m->init_pid = l->init_pid;
	for (int i = 0; i < NR_STREAMS; i++) {
		struct stream *s = &l->streams[i];

		m->external[i] = s->fd >= 0 && s->ext_id ? xstrdup(s->ext_id) : NULL;
		m->stream_bytes[i] = s->bytes;
	}
}

/* Free what a manifest filled by manifest_fill_job owns. */
static void manifest_release(struct manifest *m)
{
	m->id = (struct job_ident){ 0 };
	manifest_free(m);
}

static int commit(struct ckpt *c)
{
	struct launcher *l = c->l;
	int ret;

	if (fault("after-images") < 0)
		return -ECANCELED;
	ret = epoch_sum_files(l->dirfd, c->m->epoch, c->m);
	if (ret < 0)
		return ret;
	c->m->time_ns = now_ns(CLOCK_REALTIME);
	c->m->total_ns = now_ns(CLOCK_MONOTONIC) - c->t0;
	if (c->exit_after)	/* still frozen: the whole checkpoint so far */
		c->m->frozen_ns = now_ns(CLOCK_MONOTONIC) - c->t_frozen;
	ret = epoch_commit(l->dirfd, c->m, fault);
	if (ret == 0)
		c->committed = true;
	return ret;
}

static int dump_hook(void *arg, enum dump_stage stage)
{
	struct ckpt *c = arg;

	switch (stage) {
	case DUMP_STAGE_FROZEN:
		c->t_frozen = now_ns(CLOCK_MONOTONIC);
		/* Output written before the freeze belongs to this epoch: forward it now. */
		streams_drain(c->l);
		for (int i = 0; i < NR_STREAMS; i++)
			c->m->stream_bytes[i] = c->l->streams[i].bytes;
		return 0;
	case DUMP_STAGE_TASK_DONE:
		if (c->tasks_done++ == 0 && fault("during-images") < 0)
			return -1;
		if (c->deadline && now_ns(CLOCK_MONOTONIC) > c->deadline) {
			pr_err("the checkpoint did not finish within --grace; abandoned\n");
			return -1;
		}
		return 0;
	case DUMP_STAGE_WRITTEN:
		c->m->processes = c->tasks_done;
		/* checkpoint-exit: commit before the engine kills the job. */
		return c->exit_after ? commit(c) : 0;
	}
	return 0;
}

static void log_checkpoint(struct manifest *m, char *msg, size_t msglen)
{
	char bytes[32], rate[32];
	double secs = m->total_ns / 1e9;

	fmt_bytes(m->bytes, bytes, sizeof(bytes));
	fmt_bytes(secs > 0 ? (uint64_t)(m->bytes / secs) : 0, rate, sizeof(rate));
	snprintf(msg, msglen,
		 "checkpoint epoch %u: %d processes, %s written, frozen %.1f ms, total %.1f ms, %s/s",
		 m->epoch, m->processes, bytes, m->frozen_ns / 1e6, m->total_ns / 1e6, rate);
	cr_log(LOG_ERR, "crlaunch: %s\n", msg);
}

static int dump_epoch(struct launcher *l, struct ckpt *c, const char *node_dir)
{
	const char *ext[NR_STREAMS];
	struct dump_stats st = { 0 };
	struct dump_opts o = {
		.pid = l->init_pid, .dir = node_dir,
		.after = c->exit_after ? DUMP_KILL : DUMP_LEAVE_RUNNING,
		.hook = dump_hook, .hook_arg = c, .stats_out = &st, .externals = ext,
	};
	int ret;

	for (int i = 0; i < NR_STREAMS; i++)
		if (l->streams[i].fd >= 0 && l->streams[i].ext_id)
			ext[o.nr_externals++] = l->streams[i].ext_id;
	ret = cr_dump(&o);
	if (ret < 0)
		return ret;
	if (!c->exit_after)
		c->m->frozen_ns = st.frozen_ns;
	return 0;
}

int checkpoint(struct launcher *l, bool exit_after, char *msg, size_t msglen)
{
	struct manifest m = { 0 };
	struct ckpt c = { .l = l, .m = &m, .exit_after = exit_after };
	char ename[32], node_dir[PATH_MAX_LEN];
	unsigned epoch = l->last_epoch + 1;
	int ret;

	checkpoint_seq++;
	c.t0 = now_ns(CLOCK_MONOTONIC);
	if (exit_after && l->grace_ns)
		c.deadline = c.t0 + l->grace_ns;
	snprintf(ename, sizeof(ename), EPOCH_NAME_FMT, epoch);
	snprintf(node_dir, sizeof(node_dir), "%s/%s/node-000", l->ckpt_dir, ename);
	/* A leftover of the same number (a crash we did not see) is no epoch. */
	epoch_remove(l->dirfd, epoch);
	if (mkdirat(l->dirfd, ename, 0700) < 0) {
		ret = log_errno(-errno, "can't create %s/%s", l->ckpt_dir, ename);
		snprintf(msg, msglen, "can't create %s: %s", ename, strerror(-ret));
		return ret;
	}
	l->last_epoch = epoch;
	manifest_fill_job(l, &m, epoch);
	ret = fault("before-images") < 0 ? -ECANCELED : dump_epoch(l, &c, node_dir);
	if (!ret && !exit_after)
		ret = commit(&c);
	if (ret < 0 || !c.committed) {
		/* The job runs on (the engine released it); the epoch never counts. */
		snprintf(msg, msglen, "checkpoint epoch %u failed (%s); the job goes on, the previous "
			 "epoch stays", epoch, strerror(ret < 0 ? -ret : EIO));
		pr_err("%s\n", msg);
		epoch_remove(l->dirfd, epoch);
		manifest_release(&m);
		return ret < 0 ? ret : -EIO;
	}
	m.total_ns = now_ns(CLOCK_MONOTONIC) - c.t0;
	log_checkpoint(&m, msg, msglen);
	l->nr_checkpoints++;
	if (l->have_last)
		manifest_free(&l->last);
	l->last = m;
	l->last.id = (struct job_ident){ 0 };
	l->have_last = true;
	epochs_prune(l->dirfd, l->keep, epoch);
	return 0;
}

/* ---- restart ------------------------------------------------------------- */

/*
 * The engine gives every process its old pid at every level, the host's
 * too: after a crash the old container init may still be a zombie for a
 * second or two, until the host's init reaps it. Wait for it a little.
 */
static void wait_pid_free(pid_t pid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	for (int i = 0; pid > 0 && access(path, F_OK) == 0; i++) {
		if (i == 0)
			pr_info("pid %d of the job's old container is still in use; waiting for it\n", pid);
		if (i == 100)
			return;		/* 10 s: let the engine say what is wrong */
		usleep(100000);
	}
}

static int restore_epoch(struct launcher *l, const struct manifest *m)
{
	struct inherit_fd inh[NR_STREAMS];
	char dir[PATH_MAX_LEN];
	struct restore_opts o = { .dir = dir, .detach = true, .inherit = inh, .root_pid = &l->init_pid };
	int ret;

	l->stdin_eof = !m->external[STREAM_STDIN];
	ret = streams_open(l);
	if (ret < 0)
		return ret;
	for (int i = 0; i < NR_STREAMS; i++) {
		if (!m->external[i])
			continue;
		inh[o.nr_inherit].fd = l->streams[i].job_fd;
		inh[o.nr_inherit++].id = m->external[i];
	}
	snprintf(dir, sizeof(dir), "%s/" EPOCH_NAME_FMT "/node-000", l->ckpt_dir, m->epoch);
	wait_pid_free(m->init_pid);
	ret = cr_restore(&o);
	streams_close_job_ends(l);
	if (ret < 0) {
		for (int i = 0; i < NR_STREAMS; i++) {
			if (l->streams[i].fd >= 0)
				close(l->streams[i].fd);
			l->streams[i].fd = -1;
		}
		return ret;
	}
	for (int i = 0; i < NR_STREAMS; i++)
		l->streams[i].bytes = m->stream_bytes[i];
	return 0;
}

/*
 * The newest consistent epoch of this job, else the one before it, and so on.
 * Returns 1 when the job was restored, 0 when there is nothing to restore.
 */
int restart_from_epochs(struct launcher *l)
{
	struct epoch_info *e;
	int nr, ret = epochs_list(l->dirfd, &e, &nr), restored = 0, candidates = 0;

	if (ret < 0)
		return ret;
	if (nr)
		l->last_epoch = e[0].epoch;
	for (int i = 0; i < nr && !restored; i++) {
		char why[512];
		uint64_t t0 = now_ns(CLOCK_MONOTONIC);

		if (!e[i].has_manifest)
			continue;	/* pruned below */
		if (!ident_equal(&e[i].m.id, &l->id)) {
			_cleanup_free_ char *theirs = ident_describe(&e[i].m.id), *ours = ident_describe(&l->id);

			pr_err("%s/" EPOCH_NAME_FMT " is a checkpoint of another job (%s), not of %s; "
			       "refusing it\n", l->ckpt_dir, e[i].epoch, theirs, ours);
			ret = -EEXIST;
			break;
		}
		candidates++;
		if (epoch_verify(l->dirfd, &e[i].m, why, sizeof(why)) < 0) {
			pr_warn(EPOCH_NAME_FMT " is corrupt (%s); trying the epoch before it\n", e[i].epoch, why);
			continue;
		}
		ret = restore_epoch(l, &e[i].m);
		if (ret < 0) {
			pr_warn("restoring " EPOCH_NAME_FMT " failed; trying the epoch before it\n", e[i].epoch);
			ret = 0;
			continue;
		}
		l->restored_from = e[i].epoch;
		cr_log(LOG_ERR, "crlaunch: restored epoch %u (%d processes) in %.1f ms\n", e[i].epoch,
		       e[i].m.processes, (now_ns(CLOCK_MONOTONIC) - t0) / 1e6);
		restored = 1;
	}
	epochs_free(e, nr);
	if (ret < 0)
		return ret;
	if (!restored && candidates) {
		pr_err("none of the %d checkpoint(s) in %s could be restored; to start the job over, "
		       "use --restart never\n", candidates, l->ckpt_dir);
		return -ENOENT;
	}
	return restored;
}
