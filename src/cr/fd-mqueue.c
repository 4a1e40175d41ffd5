#define LOG_PREFIX "files: "
/*
 * POSIX message queue descriptors. The link of one reads "/NAME" (its path
 * in the mqueue filesystem of its IPC namespace); restore opens the queue
 * again by name with the same access mode and O_NONBLOCK. The queue itself
 * (attributes, messages) is saved with the IPC namespace (ipc.c) when the
 * tree owns it; otherwise it must still exist in crtool's namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>

#include "cr.h"
#include "files.h"
#include "log.h"
#include "util.h"

#define MQUEUE_MAGIC 0x19800202

bool fd_is_mqueue(const struct fd_dump *d)
{
	char link[64];
	struct statfs sf;

	if (!S_ISREG(d->st.st_mode) || d->target[0] != '/')
		return false;
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
	return statfs(link, &sf) == 0 && sf.f_type == MQUEUE_MAGIC;
}

static int mqueue_dump(struct fd_dump *d, FdEntry *e)
{
	const char *name = d->target + 1;

	if (!*name || strchr(name, '/') || strlen(name) > NAME_MAX) {
		pr_err("pid %d: fd %d: message queue '%s' has no name it can be opened by\n", d->pid,
		       d->fd, d->target);
		return -EOPNOTSUPP;
	}
	e->mq_name = xstrdup(name);
	return 0;
}

static int mqueue_open(struct rst_ctx *rc, const FdEntry *e)
{
	char qname[NAME_MAX + 2];
	mqd_t q;

	(void)rc;
	if (!e->mq_name || !e->mq_name[0] || strchr(e->mq_name, '/') || strlen(e->mq_name) > NAME_MAX) {
		pr_err("fd %u: message queue without a valid name in the image\n", e->fd);
		return -EBADMSG;
	}
	snprintf(qname, sizeof(qname), "/%s", e->mq_name);
	q = mq_open(qname, (e->flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC);
	if (q == (mqd_t)-1)
		return log_errno(-errno, "fd %u: can't open POSIX message queue %s", e->fd, qname);
	return q;
}

const struct fd_ops mqueue_ops = { FD_KIND__FD_MQUEUE, "message queue", mqueue_dump, mqueue_open, NULL };
