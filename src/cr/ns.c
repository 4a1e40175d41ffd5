/*
 * Namespaces the tree owns: which ones (the root's differs from crtool's),
 * the UTS names and the IPC limits. Restore makes crtool itself unshare them
 * before the tree is forked, fills them, and the tree inherits them; crtool
 * goes back to its own mount namespace once the tree exists, so its /proc
 * stays the host's.
 */
#define LOG_PREFIX "ns: "
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "cr.h"
#include "image.h"
#include "log.h"
#include "netns.h"
#include "ns.h"
#include "util.h"

static const struct ns_kind {
	const char *name;
	int flag;		/* CLONE_NEW*, 0: never owned */
	const char *why;	/* refusal, when flag is 0 */
} ns_kinds[] = {
	{ "ipc", CLONE_NEWIPC, NULL },
	{ "uts", CLONE_NEWUTS, NULL },
	{ "mnt", CLONE_NEWNS, NULL },
	{ "net", CLONE_NEWNET, NULL },
	{ "user", 0, "user namespaces are not supported" },
	{ "cgroup", 0, "cgroup namespaces are not supported" },
	{ "time", 0, "time namespaces are not supported" },
};

/* Per-IPC-namespace limits, written in this order (msg_max before msg_default). */
static const char *const ipc_sysctls[] = {
	"kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/shm_rmid_forced",
	"kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/sem",
	"fs/mqueue/queues_max", "fs/mqueue/msg_max", "fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default", "fs/mqueue/msgsize_default",
};

/* Namespaces crtool enters while it restores, and leaves again (not mnt: mnt.c). */
static const struct {
	const char *name, *path;
	int flag;
} own_kinds[3] = {
	{ "net", "/proc/self/ns/net", CLONE_NEWNET },
	{ "uts", "/proc/self/ns/uts", CLONE_NEWUTS },
	{ "ipc", "/proc/self/ns/ipc", CLONE_NEWIPC },
};

static pid_t mnt_root;		/* dump: the tree has its own mount namespace */

static int ns_ino(pid_t pid, const char *kind, struct stat *st)
{
	char path[64];

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	if (stat(path, st) < 0)
		return -errno;
	return 0;
}

static bool same_ns(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

/* One kind: the root's namespace must be ours or owned; every task must share it. */
static int check_kind(struct pstree *t, const struct ns_kind *k)
{
	struct pstree_item *root = pstree_root(t);
	struct stat mine, rootns, st;
	int ret;

	if (ns_ino(0, k->name, &mine) < 0)
		return 0;	/* this kernel has no such namespace */
	if ((ret = ns_ino(root->pid, k->name, &rootns)) < 0)
		return log_errno(ret, "pid %d: can't stat /proc/%d/ns/%s", root->pid, root->pid, k->name);
	for (int i = 1; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];

		if (it->zombie)
			continue;
		if ((ret = ns_ino(it->pid, k->name, &st)) < 0)
			return log_errno(ret, "pid %d: can't stat /proc/%d/ns/%s", it->pid, it->pid, k->name);
		if (!same_ns(&st, &rootns)) {
			pr_err("pid %d is not in the %s namespace of the tree's root %d; not supported\n",
			       it->pid, k->name, root->pid);
			return -EOPNOTSUPP;
		}
	}
	if (same_ns(&mine, &rootns))
		return 0;
	if (!k->flag) {
		pr_err("pid %d: the tree has its own %s namespace: %s\n", root->pid, k->name, k->why);
		return -EOPNOTSUPP;
	}
	t->owned_ns |= k->flag;
	return 0;
}

int ns_check_tree(struct pstree *t)
{
	int ret = 0;

	t->owned_ns = 0;
	mnt_root = 0;
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds) && !ret; i++)
		ret = check_kind(t, &ns_kinds[i]);
	if (!ret && (t->owned_ns & CLONE_NEWNS)) {
		mnt_root = pstree_root(t)->pid;
		ret = mnt_dump_check(mnt_root, 0);
	}
	if (!ret && t->owned_ns)
		pr_info("the tree owns namespaces:%s%s%s%s\n", t->owned_ns & CLONE_NEWIPC ? " ipc" : "",
			t->owned_ns & CLONE_NEWUTS ? " uts" : "", t->owned_ns & CLONE_NEWNS ? " mnt" : "",
			t->owned_ns & CLONE_NEWNET ? " net" : "");
	return ret;
}

const char *ns_tree_path(const char *path, char *buf, size_t len)
{
	if (!mnt_root || path[0] != '/')
		return path;
	if ((size_t)snprintf(buf, len, "/proc/%d/root%s", mnt_root, path) >= len)
		return path;
	return buf;
}

int ns_enter(pid_t pid, const char *kind, int nstype, int *saved)
{
	char path[64];
	_cleanup_close_ int fd = -1;

	*saved = open(nstype == CLONE_NEWNS ? "/proc/self/ns/mnt" : nstype == CLONE_NEWIPC ?
		      "/proc/self/ns/ipc" : "/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (*saved < 0)
		return log_errno(-errno, "can't open our own %s namespace", kind);
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, nstype) < 0) {
		int err = log_errno(-errno, "pid %d: can't enter its %s namespace (%s)", pid, kind, path);
		close(*saved);
		*saved = -1;
		return err;
	}
	return 0;
}

int ns_return(int *saved, const char *kind, int nstype)
{
	int ret = 0;

	if (*saved < 0)
		return 0;
	if (setns(*saved, nstype) < 0)
		ret = log_errno(-errno, "can't go back to our own %s namespace", kind);
	close(*saved);
	*saved = -1;
	return ret;
}

/* ---- dump ---------------------------------------------------------------- */

static int dump_uts(pid_t root, NsEntry *e)
{
	struct utsname u;
	int saved, ret = ns_enter(root, "uts", CLONE_NEWUTS, &saved);

	if (ret < 0)
		return ret;
	if (uname(&u) < 0)
		ret = log_errno(-errno, "pid %d: uname in its UTS namespace", root);
	else {
		e->hostname = xstrdup(u.nodename);
		e->domainname = xstrdup(u.domainname);
	}
	if (ns_return(&saved, "uts", CLONE_NEWUTS) < 0 && !ret)
		ret = -EIO;
	return ret;
}

/* Read in the tree's IPC namespace: /proc/sys/kernel/shm* follow the reader's. */
static int dump_ipc_sysctls(NsEntry *e)
{
	e->ipc_sysctls = xzalloc(ARRAY_SIZE(ipc_sysctls) * sizeof(*e->ipc_sysctls));
	for (size_t i = 0; i < ARRAY_SIZE(ipc_sysctls); i++) {
		char path[96], *text = NULL, *nl;
		SysctlEntry *s;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/sys/%s", ipc_sysctls[i]);
		n = read_file_at(AT_FDCWD, path, &text);
		if (n == -ENOENT)
			continue;	/* not in this kernel */
		if (n < 0)
			return log_errno(n, "can't read %s", path);
		if ((nl = strchr(text, '\n')))
			*nl = '\0';
		s = xmalloc(sizeof(*s));
		sysctl_entry__init(s);
		s->name = xstrdup(ipc_sysctls[i]);
		s->value = text;
		e->ipc_sysctls[e->n_ipc_sysctls++] = s;
	}
	return 0;
}

static int dump_ipc(pid_t root, int dirfd, const char *dir, NsEntry *e)
{
	int saved, ret = ns_enter(root, "ipc", CLONE_NEWIPC, &saved);

	if (ret < 0)
		return ret;
	ret = dump_ipc_sysctls(e);
	if (!ret)
		ret = ipc_dump(dirfd, dir);
	if (ns_return(&saved, "ipc", CLONE_NEWIPC) < 0 && !ret)
		ret = -EIO;
	return ret;
}

int ns_dump(struct pstree *t, int dirfd, const char *dir, uint64_t max_tmpfs)
{
	pid_t root = pstree_root(t)->pid;
	NsEntry e = NS_ENTRY__INIT;
	int ret = 0;

	e.has_ipc = e.has_uts = e.has_mnt = true;
	e.ipc = t->owned_ns & CLONE_NEWIPC;
	e.uts = t->owned_ns & CLONE_NEWUTS;
	e.mnt = t->owned_ns & CLONE_NEWNS;
	e.has_net = true;
	e.net = t->owned_ns & CLONE_NEWNET;
	if (e.uts)
		ret = dump_uts(root, &e);
	if (!ret && e.ipc)
		ret = dump_ipc(root, dirfd, dir, &e);
	if (!ret && e.mnt)
		ret = mnt_dump(root, dirfd, dir, max_tmpfs);
	if (!ret && e.net)
		ret = netns_dump(root, dirfd, dir);
	if (!ret)
		ret = img_write_one(dirfd, dir, IMG_NS, 0, &e.base);
	free(e.hostname);
	free(e.domainname);
	for (size_t i = 0; i < e.n_ipc_sysctls; i++) {
		free(e.ipc_sysctls[i]->name);
		free(e.ipc_sysctls[i]->value);
		free(e.ipc_sysctls[i]);
	}
	free(e.ipc_sysctls);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

int ns_restore_load(struct rst_ctx *rc)
{
	struct rst_ns *n = &rc->ns;
	int ret;

	n->own_mnt_fd = n->tree_mnt_fd = n->devpts_fd = -1;
	n->own_fd[0] = n->own_fd[1] = n->own_fd[2] = -1;
	if (faccessat(rc->dirfd, "ns.img", F_OK, 0) < 0 && errno == ENOENT)
		return 0;	/* an older dump: no namespace of its own */
	ret = img_read_one(rc->dirfd, rc->dir, IMG_NS, 0, &ns_entry__descriptor,
			   (ProtobufCMessage **)&n->ns);
	if (ret < 0)
		return ret;
	if (n->ns->uts && (!n->ns->hostname || !n->ns->domainname)) {
		pr_err("%s/ns.img: a UTS namespace without its names\n", rc->dir);
		return -EBADMSG;
	}
	rc->tree.owned_ns = (n->ns->ipc ? CLONE_NEWIPC : 0) | (n->ns->uts ? CLONE_NEWUTS : 0) |
			    (n->ns->mnt ? CLONE_NEWNS : 0) | (n->ns->net ? CLONE_NEWNET : 0);
	if (n->ns->ipc && (ret = ipc_restore_load(rc)) < 0)
		return ret;
	if (n->ns->mnt && (ret = mnt_restore_load(rc)) < 0)
		return ret;
	return 0;
}

static int restore_uts(NsEntry *e)
{
	if (sethostname(e->hostname, strlen(e->hostname)) < 0)
		return log_errno(-errno, "can't set the hostname '%s'", e->hostname);
	if (setdomainname(e->domainname, strlen(e->domainname)) < 0)
		return log_errno(-errno, "can't set the domain name '%s'", e->domainname);
	return 0;
}

static bool known_sysctl(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(ipc_sysctls); i++)
		if (!strcmp(name, ipc_sysctls[i]))
			return true;
	return false;
}

static int restore_ipc_sysctls(NsEntry *e)
{
	for (size_t i = 0; i < e->n_ipc_sysctls; i++) {
		SysctlEntry *s = e->ipc_sysctls[i];
		char path[96];
		_cleanup_close_ int fd = -1;

		/* Only names we know: the image must not pick any file under /proc/sys. */
		if (!known_sysctl(s->name)) {
			pr_err("ns.img: '%s' is not an IPC namespace sysctl\n", s->name);
			return -EBADMSG;
		}
		snprintf(path, sizeof(path), "/proc/sys/%s", s->name);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write_full(fd, s->value, strlen(s->value)) < 0)
			return log_errno(-errno, "can't set %s to '%s'", path, s->value);
	}
	return 0;
}

int ns_restore_enter(struct rst_ctx *rc)
{
	struct rst_ns *n = &rc->ns;
	int flags = rc->tree.owned_ns, ret = 0;

	if (!flags)
		return 0;
	if (flags & CLONE_NEWNS) {
		n->own_mnt_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
		if (n->own_mnt_fd < 0)
			return log_errno(-errno, "can't open /proc/self/ns/mnt");
	}
	/* Kept to come back: crtool may be a library in a long-lived launcher. */
	for (int k = 0; k < 3; k++) {
		if (!(flags & own_kinds[k].flag))
			continue;
		n->own_fd[k] = open(own_kinds[k].path, O_RDONLY | O_CLOEXEC);
		if (n->own_fd[k] < 0)
			return log_errno(-errno, "can't open %s", own_kinds[k].path);
	}
	if (unshare(flags) < 0)
		return log_errno(-errno, "can't create the tree's namespaces (unshare %#x)", flags);
	if (flags & CLONE_NEWNET) {
		_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

		if (self < 0)
			return log_errno(-errno, "can't open the tree's new network namespace");
		ret = netns_restore(rc->dirfd, rc->dir, self);
	}
	if (!ret && (flags & CLONE_NEWUTS))
		ret = restore_uts(n->ns);
	if (!ret && (flags & CLONE_NEWIPC))
		ret = restore_ipc_sysctls(n->ns);
	if (!ret && (flags & CLONE_NEWNS))
		ret = mnt_restore_build(rc);
	if (!ret && (flags & CLONE_NEWIPC))
		ret = ipc_restore_create(rc);
	return ret;
}

int ns_restore_leave(struct rst_ctx *rc)
{
	struct rst_ns *n = &rc->ns;
	int ret = 0;

	/* Not ipc yet: removed segments are removed once the tree is back (after_mm). */
	for (int k = 0; k < 2 && !ret; k++)
		ret = ns_return(&n->own_fd[k], own_kinds[k].name, own_kinds[k].flag);
	if (ret || n->own_mnt_fd < 0)
		return ret;
	n->tree_mnt_fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (n->tree_mnt_fd < 0)
		return log_errno(-errno, "can't open the tree's mount namespace");
	return ns_return(&n->own_mnt_fd, "mnt", CLONE_NEWNS);
}

int ns_restore_after_mm(struct rst_ctx *rc)
{
	int ret = 0;

	if (rc->tree.owned_ns & CLONE_NEWIPC) {
		ret = ipc_restore_finish(rc);
		int r = ns_return(&rc->ns.own_fd[2], own_kinds[2].name, own_kinds[2].flag);
		if (!ret)
			ret = r;
	}
	if (!ret && (rc->tree.owned_ns & CLONE_NEWNS))
		ret = mnt_restore_proc(rc);
	return ret;
}

void ns_restore_release(struct rst_ctx *rc)
{
	struct rst_ns *n = &rc->ns;

	ipc_restore_release(rc);
	mnt_restore_release(rc);
	img_free_msg(n->ns ? &n->ns->base : NULL);
	n->ns = NULL;
	if (n->own_mnt_fd >= 0)
		close(n->own_mnt_fd);
	for (int k = 0; k < 3; k++) {
		/* A failed restore still leaves crtool where it was. */
		ns_return(&n->own_fd[k], own_kinds[k].name, own_kinds[k].flag);
	}
	if (n->tree_mnt_fd >= 0)
		close(n->tree_mnt_fd);
	if (n->devpts_fd >= 0)
		close(n->devpts_fd);
	if (rc->devpts_dirfd == n->devpts_fd)
		rc->devpts_dirfd = -1;
	n->own_mnt_fd = n->tree_mnt_fd = n->devpts_fd = -1;
}
