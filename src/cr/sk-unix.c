#define LOG_PREFIX "unix: "
/*
 * Unix sockets. At dump the tree's network namespace is listed once with
 * UNIX_DIAG (type, state, name, peer, the clients waiting in each listener's
 * accept queue, queue lengths, shutdown); each socket the tree holds is then
 * read through a copy taken with pidfd_getfd: options, and its receive queue
 * peeked without consuming it (SO_PEEK_OFF), message by message. One record
 * per socket goes to unixsk.img.
 *
 * A connection that waits in an accept queue has no descriptor and no inode:
 * UNIX_DIAG only names its client. What the client sent into it can only be
 * read by accepting it, so that is done only by a dump that kills the tree.
 *
 * At restore the restorer makes every socket itself, in an order that gives
 * each the same name, peer and queue: bind and listen; connect (an accepted
 * socket is accepted from its listener, or from a stand-in listener bound to
 * its name when the real one is gone), the clients still waiting in a
 * listener connect last, in queue order; the queues are refilled by sending
 * from the socket that sent each message; datagram sockets connect after
 * their queue is full (a connected one accepts only its peer's messages);
 * then shutdowns, options, and the unlinking of names that were unlinked.
 * The tasks get their sockets like any other descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include "cr.h"
#include "files.h"
#include "image.h"
#include "log.h"
#include "util.h"

#include "sk-unix.pb-c.h"

#define SUN_LEN_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define ST_ESTABLISHED 1
#define ST_CLOSE 7
#define ST_LISTEN 10
#define MAX_QUEUED_MSGS (1 << 20)
#define RCV_SHUTDOWN 1		/* sk_shutdown bits, as UNIX_DIAG_SHUTDOWN shows them */
#define SEND_SHUTDOWN 2

/* One socket of the namespace, as UNIX_DIAG shows it. */
struct unix_sk {
	uint32_t ino, peer;
	uint8_t type, state, shutdown;
	bool has_vfs;
	uint32_t vfs_ino, vfs_dev;	/* the bound file; kernel dev_t encoding */
	uint32_t rqlen, wqlen;
	uint8_t name[SUN_LEN_MAX];
	uint32_t namelen;		/* 0: unbound */
	uint32_t *icons;		/* listener: inodes of the clients waiting */
	uint32_t nr_icons;
	pid_t pid;			/* first holder in the tree; 0: none */
	int fd;
	uint8_t peername[SUN_LEN_MAX];	/* getpeername() of a connected socket we hold */
	uint32_t peernamelen;
	bool connected;			/* it has a peer, alive or not */
	UnixSkEntry *e;
};

struct unix_table {
	struct unix_sk *sk;		/* sorted by inode */
	int nr;
	bool loaded, failed;
};

/* A name for messages: the path, "@abstract" or "unbound". */
static const char *name_str(const uint8_t *name, size_t len, char *buf, size_t blen)
{
	size_t i;

	if (!len)
		return "(unbound)";
	for (i = 0; i < len && i + 1 < blen; i++)
		buf[i] = name[i] ? (char)name[i] : '@';
	if (len && name[0])	/* a path: its NUL terminator is not part of it */
		while (i && buf[i - 1] == '@')
			i--;
	buf[i] = '\0';
	return buf;
}
#define NAME_BUF 2 * SUN_LEN_MAX
#define SKNAME(sk) name_str((sk)->name, (sk)->namelen, alloca(NAME_BUF), NAME_BUF)
#define PBNAME(b) name_str((b).data, (b).len, alloca(NAME_BUF), NAME_BUF)

/* ---- the namespace's sockets ---- */

struct ns_socket_arg {
	int nsfd, fd, err;
};

static void *socket_in_ns(void *p)
{
	struct ns_socket_arg *a = p;

	a->fd = -1;
	if (setns(a->nsfd, CLONE_NEWNET) < 0) {
		a->err = -errno;
		return NULL;
	}
	a->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	a->err = a->fd < 0 ? -errno : 0;
	return NULL;
}

/* A sock_diag socket in pid's network namespace (a thread enters it if it is not ours). */
int sock_diag_socket(pid_t pid)
{
	char path[64];
	struct stat theirs, ours;
	struct ns_socket_arg a = { .fd = -1 };
	pthread_t th;
	int fd, r;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (stat(path, &theirs) < 0)
		return log_errno(-errno, "pid %d: can't stat %s", pid, path);
	if (stat("/proc/self/ns/net", &ours) < 0)
		return log_errno(-errno, "can't stat /proc/self/ns/net");
	if (theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) {
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
		return fd < 0 ? log_errno(-errno, "can't create a NETLINK_SOCK_DIAG socket") : fd;
	}
	a.nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (a.nsfd < 0)
		return log_errno(-errno, "pid %d: can't open %s", pid, path);
	r = pthread_create(&th, NULL, socket_in_ns, &a);
	if (!r)
		pthread_join(th, NULL);
	close(a.nsfd);
	if (r)
		return log_errno(-r, "can't start a thread to enter %s", path);
	return a.fd < 0 ? log_errno(a.err, "pid %d: NETLINK_SOCK_DIAG socket in %s", pid, path) : a.fd;
}

static void parse_diag(struct unix_table *t, const struct unix_diag_msg *m, size_t len)
{
	struct unix_sk *sk;
	struct rtattr *a = (struct rtattr *)(m + 1);
	int alen = (int)len - (int)NLMSG_ALIGN(sizeof(*m));

	t->sk = xrealloc(t->sk, (t->nr + 1) * sizeof(*t->sk));
	sk = &t->sk[t->nr++];
	memset(sk, 0, sizeof(*sk));
	sk->ino = m->udiag_ino;
	sk->type = m->udiag_type;
	sk->state = m->udiag_state;
	for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
		void *v = RTA_DATA(a);
		size_t vl = RTA_PAYLOAD(a);

		switch (a->rta_type) {
		case UNIX_DIAG_NAME:
			sk->namelen = min_t(size_t, vl, SUN_LEN_MAX);
			memcpy(sk->name, v, sk->namelen);
			break;
		case UNIX_DIAG_VFS:
			if (vl >= sizeof(struct unix_diag_vfs)) {
				sk->has_vfs = true;
				sk->vfs_ino = ((struct unix_diag_vfs *)v)->udiag_vfs_ino;
				sk->vfs_dev = ((struct unix_diag_vfs *)v)->udiag_vfs_dev;
			}
			break;
		case UNIX_DIAG_PEER:
			if (vl >= 4)
				sk->peer = *(uint32_t *)v;
			break;
		case UNIX_DIAG_ICONS:
			sk->nr_icons = vl / 4;
			sk->icons = xmalloc(vl + 4);
			memcpy(sk->icons, v, sk->nr_icons * 4);
			break;
		case UNIX_DIAG_RQLEN:
			if (vl >= sizeof(struct unix_diag_rqlen)) {
				sk->rqlen = ((struct unix_diag_rqlen *)v)->udiag_rqueue;
				sk->wqlen = ((struct unix_diag_rqlen *)v)->udiag_wqueue;
			}
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (vl >= 1)
				sk->shutdown = *(uint8_t *)v;
			break;
		}
	}
}

static int cmp_sk(const void *a, const void *b)
{
	const struct unix_sk *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int load_table(struct unix_table *t, pid_t pid)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ~0U,
		       .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
				     UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN },
	};
	_cleanup_close_ int fd = sock_diag_socket(pid);
	_cleanup_free_ char *buf = xmalloc(1 << 16);

	if (fd < 0)
		return fd;
	if (send(fd, &req, sizeof(req), 0) != sizeof(req))
		return log_errno(-errno, "UNIX_DIAG request");
	for (;;) {
		ssize_t n = recv(fd, buf, 1 << 16, 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return log_errno(n < 0 ? -errno : -EIO, "UNIX_DIAG reply");
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				qsort(t->sk, t->nr, sizeof(*t->sk), cmp_sk);
				return 0;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *err = NLMSG_DATA(h);
				return log_errno(err->error ? err->error : -EIO, "UNIX_DIAG dump");
			}
			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
				parse_diag(t, NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN);
		}
	}
}

static struct unix_sk *find_sk(struct unix_table *t, uint64_t ino)
{
	struct unix_sk key = { .ino = (uint32_t)ino };

	if (!t || !ino || ino > UINT32_MAX)
		return NULL;
	return bsearch(&key, t->sk, t->nr, sizeof(*t->sk), cmp_sk);
}

bool unix_sk_known(struct file_seen *fs, pid_t pid, uint64_t ino)
{
	if (!fs->unixsk)
		fs->unixsk = xzalloc(sizeof(*fs->unixsk));
	if (!fs->unixsk->loaded && !fs->unixsk->failed) {
		fs->unixsk->failed = load_table(fs->unixsk, pid) < 0;
		fs->unixsk->loaded = !fs->unixsk->failed;
	}
	return find_sk(fs->unixsk, ino) != NULL;
}

/* ---- one socket the tree holds ---- */

static int sock_copy(pid_t pid, int fd)
{
	_cleanup_close_ int pidfd = syscall(SYS_pidfd_open, pid, 0);
	int c;

	if (pidfd < 0)
		return log_errno(-errno, "pidfd_open(%d)", pid);
	c = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	return c < 0 ? log_errno(-errno, "pid %d: fd %d: pidfd_getfd", pid, fd) : c;
}

static int get_opt(int fd, int opt, void *v, socklen_t len, const char *what, pid_t pid, int tfd)
{
	if (getsockopt(fd, SOL_SOCKET, opt, v, &len) < 0)
		return log_errno(-errno, "pid %d: fd %d: getsockopt(%s)", pid, tfd, what);
	return 0;
}

static int dump_opts(int fd, UnixSkOpts *o, pid_t pid, int tfd)
{
	int v[5];
	struct timeval snd, rcv;
	int ret = get_opt(fd, SO_SNDBUF, &v[0], sizeof(int), "SO_SNDBUF", pid, tfd);

	ret = ret ?: get_opt(fd, SO_RCVBUF, &v[1], sizeof(int), "SO_RCVBUF", pid, tfd);
	ret = ret ?: get_opt(fd, SO_PASSCRED, &v[2], sizeof(int), "SO_PASSCRED", pid, tfd);
	ret = ret ?: get_opt(fd, SO_PASSSEC, &v[3], sizeof(int), "SO_PASSSEC", pid, tfd);
	ret = ret ?: get_opt(fd, SO_PEEK_OFF, &o->peek_off, sizeof(int), "SO_PEEK_OFF", pid, tfd);
	ret = ret ?: get_opt(fd, SO_RCVLOWAT, &v[4], sizeof(int), "SO_RCVLOWAT", pid, tfd);
	ret = ret ?: get_opt(fd, SO_SNDTIMEO, &snd, sizeof(snd), "SO_SNDTIMEO", pid, tfd);
	ret = ret ?: get_opt(fd, SO_RCVTIMEO, &rcv, sizeof(rcv), "SO_RCVTIMEO", pid, tfd);
	if (ret)
		return ret;
	o->sndbuf = v[0];
	o->rcvbuf = v[1];
	o->has_passcred = o->passcred = v[2];
	o->has_passsec = o->passsec = v[3];
	o->has_peek_off = true;
	o->has_rcvlowat = true;
	o->rcvlowat = v[4];
	o->has_sndtimeo_us = o->has_rcvtimeo_us = true;
	o->sndtimeo_us = snd.tv_sec * 1000000ULL + snd.tv_usec;
	o->rcvtimeo_us = rcv.tv_sec * 1000000ULL + rcv.tv_usec;
	return 0;
}

static void add_msg(UnixSkMsg ***msgs, size_t *n, const void *data, size_t len,
		    const struct sockaddr_un *from, socklen_t fromlen, bool append)
{
	UnixSkMsg *m;

	if (append && *n) {
		m = (*msgs)[*n - 1];
		m->data.data = xrealloc(m->data.data, m->data.len + len + 1);
		memcpy(m->data.data + m->data.len, data, len);
		m->data.len += len;
		return;
	}
	m = xmalloc(sizeof(*m));
	unix_sk_msg__init(m);
	m->data.data = xmalloc(len + 1);
	memcpy(m->data.data, data, len);
	m->data.len = len;
	if (fromlen > offsetof(struct sockaddr_un, sun_path)) {
		m->has_sender_name = true;
		m->sender_name.len = fromlen - offsetof(struct sockaddr_un, sun_path);
		m->sender_name.data = xmalloc(m->sender_name.len + 1);
		memcpy(m->sender_name.data, from->sun_path, m->sender_name.len);
	}
	*msgs = xrealloc(*msgs, (*n + 1) * sizeof(**msgs));
	(*msgs)[(*n)++] = m;
}

/* Descriptors in flight cannot be saved: they were just installed in us. */
static int check_cmsgs(struct msghdr *mh, const char *who)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			close(((int *)CMSG_DATA(c))[i]);
		pr_err("%s: a descriptor in flight (SCM_RIGHTS) is queued; not supported\n", who);
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * Copy the receive queue of fd, leaving it in place: peeking from an offset
 * that we move (SO_PEEK_OFF) walks it message by message, and the socket's
 * own offset is put back. Stream bytes are kept as one run.
 */
static int read_queue(int fd, int type, bool rcv_shut, UnixSkMsg ***msgs, size_t *n, const char *who)
{
	size_t cap = 1 << 16;
	_cleanup_free_ uint8_t *buf = xmalloc(cap);
	union { char b[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(64)]; struct cmsghdr a; } cbuf;
	int old_off, off = 0, ret = 0;
	socklen_t l = sizeof(old_off);

	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old_off, &l) < 0)
		return log_errno(-errno, "%s: getsockopt(SO_PEEK_OFF)", who);
	for (int count = 0; !ret; count++) {
		struct sockaddr_un from;
		struct iovec iov = { buf, cap };
		struct msghdr mh = { &from, sizeof(from), &iov, 1, cbuf.b, sizeof(cbuf), 0 };
		ssize_t got;

		if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0) {
			ret = log_errno(-errno, "%s: setsockopt(SO_PEEK_OFF, %d)", who, off);
			break;
		}
		got = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (got < 0 && errno == EAGAIN)
			break;
		if (got < 0) {
			ret = log_errno(-errno, "%s: peek at the queue, offset %d", who, off);
			break;
		}
		if ((ret = check_cmsgs(&mh, who)) < 0)
			break;
		if (mh.msg_flags & MSG_TRUNC) {	/* a datagram larger than buf: again, larger */
			cap *= 4;
			buf = xrealloc(buf, cap);
			continue;
		}
		if (got == 0 && (type == SOCK_STREAM || rcv_shut))
			break;	/* end of stream */
		if (count >= MAX_QUEUED_MSGS || (uint64_t)off + got > INT_MAX) {
			pr_err("%s: more than %d messages or 2 GiB queued\n", who, MAX_QUEUED_MSGS);
			ret = -E2BIG;
			break;
		}
		add_msg(msgs, n, buf, got, &from, type == SOCK_DGRAM ? mh.msg_namelen : 0, type == SOCK_STREAM);
		off += got;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old_off, sizeof(old_off)) < 0 && !ret)
		ret = log_errno(-errno, "%s: can't put SO_PEEK_OFF back to %d", who, old_off);
	return ret;
}

/* Where a path name leads now, the socket file's owner and mode. */
static void note_file(pid_t pid, struct unix_sk *sk, UnixSkEntry *e)
{
	char name[SUN_LEN_MAX + 1], path[SUN_LEN_MAX + 64];
	struct stat st;

	memcpy(name, sk->name, sk->namelen);
	name[sk->namelen] = '\0';
	if (name[0] == '/') {
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, name);
	} else {
		char *cwd = NULL;

		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
		if (read_link(path, &cwd) == 0)
			e->bind_dir = cwd;
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", pid, name);
	}
	if (sk->has_vfs && stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == sk->vfs_ino &&
	    major(st.st_dev) == (sk->vfs_dev >> 20) && minor(st.st_dev) == (sk->vfs_dev & 0xfffff)) {
		e->has_file_mode = e->has_file_uid = e->has_file_gid = true;
		e->file_mode = st.st_mode & 07777;
		e->file_uid = st.st_uid;
		e->file_gid = st.st_gid;
	} else {
		e->has_unlinked = e->unlinked = true;
	}
}

static int dump_sock(struct fd_dump *d, struct unix_sk *sk)
{
	UnixSkEntry *e = xmalloc(sizeof(*e));
	char who[96];
	_cleanup_close_ int fd = -1;
	struct sockaddr_un pa;
	socklen_t pl = sizeof(pa);

	unix_sk_entry__init(e);
	e->opts = xmalloc(sizeof(*e->opts));
	unix_sk_opts__init(e->opts);
	sk->e = e;
	e->ino = sk->ino;
	e->type = sk->type;
	e->state = sk->state;
	e->has_shutdown = true;
	e->shutdown = sk->shutdown;
	if (sk->namelen) {
		e->has_name = true;
		e->name.len = sk->namelen;
		e->name.data = xmalloc(sk->namelen);
		memcpy(e->name.data, sk->name, sk->namelen);
		if (sk->name[0])
			note_file(d->pid, sk, e);
	}
	if (sk->state == ST_LISTEN) {
		e->has_backlog = true;
		e->backlog = sk->wqlen;	/* UNIX_DIAG_RQLEN of a listener: the backlog */
	}
	snprintf(who, sizeof(who), "pid %d: fd %d (unix socket %s)", d->pid, d->fd, SKNAME(sk));
	fd = sock_copy(d->pid, d->fd);
	if (fd < 0)
		return fd;
	/* A datagram socket others connected to is "established" too: ask for a peer. */
	sk->connected = sk->state != ST_LISTEN && getpeername(fd, (struct sockaddr *)&pa, &pl) == 0;
	if (sk->connected && pl > offsetof(struct sockaddr_un, sun_path)) {
		sk->peernamelen = min_t(size_t, pl - offsetof(struct sockaddr_un, sun_path), SUN_LEN_MAX);
		memcpy(sk->peername, pa.sun_path, sk->peernamelen);
		if (pa.sun_path[0] && pa.sun_path[0] != '/' && !e->bind_dir) {
			char link[64];

			snprintf(link, sizeof(link), "/proc/%d/cwd", d->pid);
			read_link(link, &e->bind_dir);	/* a relative peer name: from there */
		}
	}
	if (dump_opts(fd, e->opts, d->pid, d->fd) < 0)
		return -EIO;
	if (sk->state == ST_LISTEN)
		return 0;
	return read_queue(fd, sk->type, sk->shutdown & RCV_SHUTDOWN, &e->queue, &e->n_queue, who);
}

static int unixsk_dump(struct fd_dump *d, FdEntry *e)
{
	struct unix_sk *sk = find_sk(d->fs->unixsk, d->st.st_ino);

	if (!sk)
		return -ENOENT;
	e->has_unixsk_id = true;
	e->unixsk_id = sk->ino;
	if (sk->pid)
		return 0;	/* another descriptor of it */
	sk->pid = d->pid;
	sk->fd = d->fd;
	return dump_sock(d, sk);
}

/* ---- the whole tree ---- */

/* Is the socket outside the tree declared with --external unix:NAME or unix:[INO]? */
static bool declared(struct file_seen *fs, const struct unix_sk *o, uint32_t ino)
{
	char id[NAME_BUF + 16];

	snprintf(id, sizeof(id), "unix:[%u]", ino);
	if (external_declared(fs, id))
		return true;
	if (!o || !o->namelen)
		return false;
	snprintf(id, sizeof(id), "unix:%s", SKNAME(o));
	return external_declared(fs, id);
}

static int outside(struct file_seen *fs, struct unix_sk *sk, struct unix_sk *o, uint32_t ino,
		   const char *what)
{
	char id[NAME_BUF + 16];

	if (declared(fs, o, ino)) {
		if (!o || !o->namelen) {
			pr_err("pid %d: fd %d: unix socket %s: declared external peer [%u] has no name to "
			       "reconnect to\n", sk->pid, sk->fd, SKNAME(sk), ino);
			return -EOPNOTSUPP;
		}
		if (sk->type != SOCK_DGRAM && sk->e->n_queue) {
			pr_err("pid %d: fd %d: unix socket %s: data from the external peer %s is queued, "
			       "which only that peer could send again; not supported\n", sk->pid, sk->fd,
			       SKNAME(sk), SKNAME(o));
			return -EAGAIN;
		}
		sk->e->has_external_peer = true;
		sk->e->external_peer.len = o->namelen;
		sk->e->external_peer.data = xmalloc(o->namelen);
		memcpy(sk->e->external_peer.data, o->name, o->namelen);
		return 0;
	}
	if (o && o->namelen)
		snprintf(id, sizeof(id), "unix:%s", SKNAME(o));
	else
		snprintf(id, sizeof(id), "unix:[%u]", ino);
	pr_err("pid %d: fd %d: unix socket %s is %s %s [%u] outside the tree; declare it with "
	       "--external '%s'\n", sk->pid, sk->fd, SKNAME(sk), what,
	       o && o->namelen ? SKNAME(o) : "socket", ino, id);
	return -EOPNOTSUPP;
}

static struct unix_sk *listener_of(struct unix_table *t, uint32_t client)
{
	for (int i = 0; i < t->nr; i++)
		for (uint32_t k = 0; t->sk[i].state == ST_LISTEN && k < t->sk[i].nr_icons; k++)
			if (t->sk[i].icons[k] == client)
				return &t->sk[i];
	return NULL;
}

static int link_listener(struct file_seen *fs, struct unix_sk *sk)
{
	for (uint32_t k = 0; k < sk->nr_icons; k++) {
		struct unix_sk *c = find_sk(fs->unixsk, sk->icons[k]);
		UnixSkEntry *e = sk->e;

		if (!sk->icons[k]) {
			/* The client closed: the connection keeps what it sent. */
			UnixSkOrphan *o = xmalloc(sizeof(*o));

			unix_sk_orphan__init(o);
			e->orphans = xrealloc(e->orphans, (e->n_orphans + 1) * sizeof(*e->orphans));
			e->orphans[e->n_orphans++] = o;
			e->icons = xrealloc(e->icons, (e->n_icons + 1) * sizeof(*e->icons));
			e->icons[e->n_icons++] = 0;
		} else if (c && c->pid) {
			e->icons = xrealloc(e->icons, (e->n_icons + 1) * sizeof(*e->icons));
			e->icons[e->n_icons++] = c->ino;
			c->e->has_listener = true;
			c->e->listener = sk->ino;
		} else if (declared(fs, c, sk->icons[k])) {
			pr_warn("pid %d: fd %d: listener %s: the waiting connection of external [%u] is "
				"dropped\n", sk->pid, sk->fd, SKNAME(sk), sk->icons[k]);
		} else {
			pr_err("pid %d: fd %d: listener %s has a connection from socket [%u] outside the "
			       "tree waiting to be accepted; declare it with --external 'unix:[%u]'\n",
			       sk->pid, sk->fd, SKNAME(sk), sk->icons[k], sk->icons[k]);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static int link_peer(struct file_seen *fs, struct unix_sk *sk)
{
	struct unix_sk *p = find_sk(fs->unixsk, sk->peer), *l;
	UnixSkEntry *e = sk->e;

	if (sk->state == ST_LISTEN)
		return link_listener(fs, sk);
	if (p && p->pid) {
		if (sk->type == SOCK_DGRAM && !p->namelen && p->peer != sk->ino) {
			pr_err("pid %d: fd %d: unix socket %s is connected to an unbound socket that is "
			       "connected elsewhere; not supported\n", sk->pid, sk->fd, SKNAME(sk));
			return -EOPNOTSUPP;
		}
		e->has_peer = true;
		e->peer = p->ino;
		return 0;
	}
	if (p)
		return outside(fs, sk, p, p->ino, "connected to");
	if (!sk->connected)
		return 0;
	l = sk->peer ? NULL : listener_of(fs->unixsk, sk->ino);
	if (l && l->pid)
		return 0;	/* linked from the listener's side */
	if (l)
		return outside(fs, sk, l, l->ino, "waiting to be accepted by");
	e->has_peer_closed = e->peer_closed = true;
	if (sk->peernamelen) {
		e->has_peer_name = true;
		e->peer_name.len = sk->peernamelen;
		e->peer_name.data = xmalloc(sk->peernamelen);
		memcpy(e->peer_name.data, sk->peername, sk->peernamelen);
	}
	return 0;
}

static bool same_name(const struct unix_sk *s, const ProtobufCBinaryData *b)
{
	return s->namelen == b->len && (!b->len || !memcmp(s->name, b->data, b->len));
}

/* Which socket of the tree sent each queued datagram, from its address. */
static void find_senders(struct unix_table *t, struct unix_sk *sk)
{
	struct unix_sk *peer = find_sk(t, sk->e->peer);

	for (size_t i = 0; sk->type == SOCK_DGRAM && i < sk->e->n_queue; i++) {
		UnixSkMsg *m = sk->e->queue[i];
		ProtobufCBinaryData none = { 0, NULL }, *from = m->has_sender_name ? &m->sender_name : &none;
		struct unix_sk *s = peer && same_name(peer, from) ? peer : NULL;

		for (int k = 0; k < t->nr && !s; k++) {
			struct unix_sk *o = &t->sk[k];

			if (o->pid && o->type == SOCK_DGRAM && same_name(o, from) &&
			    (from->len || o->peer == sk->ino))
				s = o;
		}
		if (s) {
			m->has_sender = true;
			m->sender = s->ino;
		}
	}
}

/*
 * What waits in not-yet-accepted connections can only be read by accepting
 * them, which the listener could never undo: only when the tree is killed.
 */
static int read_waiting(struct file_seen *fs, struct unix_sk *l)
{
	_cleanup_close_ int lfd = -1;
	bool need = false;
	char who[NAME_BUF + 96];

	size_t orphan = 0;

	for (uint32_t k = 0; k < l->nr_icons; k++) {
		struct unix_sk *c = find_sk(fs->unixsk, l->icons[k]);
		need |= !l->icons[k] || (c && c->pid && c->wqlen);
	}
	if (!need)
		return 0;
	if (fs->opts && fs->opts->after != DUMP_KILL) {
		pr_err("pid %d: fd %d: listener %s: a connection waiting to be accepted holds data (or "
		       "its client closed), which only a dump that kills the tree can read; not supported "
		       "with this dump mode\n", l->pid, l->fd, SKNAME(l));
		return -EOPNOTSUPP;
	}
	lfd = sock_copy(l->pid, l->fd);
	if (lfd < 0)
		return lfd;
	for (uint32_t k = 0; k < l->nr_icons; k++) {
		struct unix_sk *c = find_sk(fs->unixsk, l->icons[k]);
		_cleanup_close_ int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		int ret;

		if (a < 0)
			return log_errno(-errno, "pid %d: fd %d: listener %s: accept a waiting connection",
					 l->pid, l->fd, SKNAME(l));
		if (!l->icons[k] && orphan < l->e->n_orphans) {
			UnixSkOrphan *o = l->e->orphans[orphan++];

			snprintf(who, sizeof(who), "listener %s: connection of a closed client", SKNAME(l));
			ret = read_queue(a, l->type, true, &o->queue, &o->n_queue, who);
			if (ret < 0)
				return ret;
			continue;
		}
		if (!c || !c->pid || !c->wqlen)
			continue;
		snprintf(who, sizeof(who), "listener %s: connection of pid %d fd %d", SKNAME(l), c->pid,
			 c->fd);
		ret = read_queue(a, c->type, false, &c->e->peer_queue, &c->e->n_peer_queue, who);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int unix_dump_finish(struct file_seen *fs, int dirfd, const char *dir)
{
	struct unix_table *t = fs->unixsk;
	struct img *img;
	int ret = 0;

	if (!t || !t->loaded)
		return 0;
	for (int i = 0; i < t->nr && !ret; i++)
		if (t->sk[i].pid)
			ret = link_peer(fs, &t->sk[i]);
	for (int i = 0; i < t->nr && !ret; i++)
		if (t->sk[i].pid && t->sk[i].state == ST_LISTEN)
			ret = read_waiting(fs, &t->sk[i]);
	if (ret)
		return ret;
	img = img_open_write(dirfd, dir, IMG_UNIXSK, 0);
	if (!img)
		return -EIO;
	for (int i = 0; i < t->nr && !ret; i++) {
		if (!t->sk[i].pid)
			continue;
		find_senders(t, &t->sk[i]);
		ret = img_write_msg(img, &t->sk[i].e->base);
	}
	if (ret) {
		img_abort(img);
		return ret;
	}
	return img_close(img);
}

void unix_dump_free(struct file_seen *fs)
{
	struct unix_table *t = fs->unixsk;

	for (int i = 0; t && i < t->nr; i++) {
		free(t->sk[i].icons);
		if (t->sk[i].e)
			protobuf_c_message_free_unpacked(&t->sk[i].e->base, NULL);
	}
	if (t)
		free(t->sk);
	free(t);
	fs->unixsk = NULL;
}

/* ---- restore ---- */

struct rst_unix {
	UnixSkEntry *e;
	int fd;				/* ours, -1 until made */
	int standin;			/* plays a peer that was closed, until the shutdowns */
	bool paired;			/* made connected by socketpair() */
	bool bound;			/* bound by us to its own name */
};

static struct rst_unix *rfind(struct rst_ctx *rc, uint64_t ino)
{
	for (int i = 0; i < rc->nr_unixsk; i++)
		if (rc->unixsk[i].e->ino == ino)
			return &rc->unixsk[i];
	return NULL;
}

static socklen_t make_addr(struct sockaddr_un *sa, const ProtobufCBinaryData *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (name->len)
		memcpy(sa->sun_path, name->data, min_t(size_t, name->len, SUN_LEN_MAX));
	return offsetof(struct sockaddr_un, sun_path) + min_t(size_t, name->len, SUN_LEN_MAX);
}

static bool is_path(const ProtobufCBinaryData *n)
{
	return n->len && n->data[0];
}

/* bind() or connect() to a name; a relative one from the directory it was bound in. */
static int addr_call(int (*fn)(int, const struct sockaddr *, socklen_t), int fd,
		     const ProtobufCBinaryData *name, const char *dir)
{
	struct sockaddr_un sa;
	socklen_t len = make_addr(&sa, name);
	_cleanup_close_ int here = -1;
	int r, err;

	if (!dir || !is_path(name) || name->data[0] == '/')
		return fn(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
	here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (here < 0 || chdir(dir) < 0)
		return -errno;
	r = fn(fd, (struct sockaddr *)&sa, len);
	err = errno;
	if (fchdir(here) < 0)
		return -errno;
	return r < 0 ? -err : 0;
}

static int unlink_name(const ProtobufCBinaryData *name, const char *dir)
{
	char path[SUN_LEN_MAX + PATH_MAX + 2];
	int n = (int)strnlen((const char *)name->data, name->len);

	if (name->data[0] == '/' || !dir)
		snprintf(path, sizeof(path), "%.*s", n, (const char *)name->data);
	else
		snprintf(path, sizeof(path), "%s/%.*s", dir, n, (const char *)name->data);
	if (unlink(path) < 0 && errno != ENOENT)
		return log_errno(-errno, "can't unlink the socket file '%s'", path);
	return 0;
}

/* A socket file left by the dumped socket: gone if nothing answers on it. */
static int clear_stale(const ProtobufCBinaryData *name, const char *dir, int type)
{
	_cleanup_close_ int probe = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r;

	if (probe < 0)
		return log_errno(-errno, "socket(AF_UNIX)");
	r = addr_call(connect, probe, name, dir);
	if (r == -ECONNREFUSED)
		return unlink_name(name, dir);
	pr_err("can't bind %s: it is in use (%s)\n", PBNAME(*name), strerror(r ? -r : EADDRINUSE));
	return -EADDRINUSE;
}

static int bind_to(int fd, const ProtobufCBinaryData *name, const char *dir, int type)
{
	int r = addr_call(bind, fd, name, dir);

	if (r == -EADDRINUSE && is_path(name)) {
		if ((r = clear_stale(name, dir, type)) < 0)
			return r;
		r = addr_call(bind, fd, name, dir);
	}
	return r < 0 ? log_errno(r, "can't bind a socket to %s", PBNAME(*name)) : 0;
}

static int set_file(const UnixSkEntry *e)
{
	char path[SUN_LEN_MAX + PATH_MAX + 2];
	int n;

	if (!is_path(&e->name) || !e->has_file_mode)
		return 0;
	n = (int)strnlen((const char *)e->name.data, e->name.len);
	if (e->name.data[0] == '/' || !e->bind_dir)
		snprintf(path, sizeof(path), "%.*s", n, (const char *)e->name.data);
	else
		snprintf(path, sizeof(path), "%s/%.*s", e->bind_dir, n, (const char *)e->name.data);
	if (chmod(path, e->file_mode) < 0 || lchown(path, e->file_uid, e->file_gid) < 0)
		return log_errno(-errno, "socket file '%s': can't set mode %o owner %u:%u", path,
				 e->file_mode, e->file_uid, e->file_gid);
	return 0;
}

/* Buffer sizes first: they bound what the queues can be refilled with. */
static int set_bufs(struct rst_unix *u)
{
	const UnixSkOpts *o = u->e->opts;
	static const struct { int get, force; } b[2] = { { SO_SNDBUF, SO_SNDBUFFORCE },
							 { SO_RCVBUF, SO_RCVBUFFORCE } };

	for (int i = 0; i < 2; i++) {
		int want = i ? o->rcvbuf : o->sndbuf, cur, half = want / 2;
		socklen_t l = sizeof(cur);

		if (getsockopt(u->fd, SOL_SOCKET, b[i].get, &cur, &l) < 0)
			return log_errno(-errno, "unix socket [%" PRIu64 "]: getsockopt", u->e->ino);
		/* The kernel doubles what it is given. */
		if (cur != want && setsockopt(u->fd, SOL_SOCKET, b[i].force, &half, sizeof(half)) < 0)
			return log_errno(-errno, "unix socket [%" PRIu64 "]: can't set %s to %d", u->e->ino,
					 i ? "SO_RCVBUF" : "SO_SNDBUF", want);
	}
	return 0;
}

static int new_socket(struct rst_unix *u)
{
	u->fd = socket(AF_UNIX, u->e->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (u->fd < 0)
		return log_errno(-errno, "socket(AF_UNIX, %u)", u->e->type);
	return set_bufs(u);
}

static int new_pair(int type, int *a, int *b)
{
	int sv[2];

	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return log_errno(-errno, "socketpair(AF_UNIX, %d)", type);
	*a = sv[0];
	*b = sv[1];
	return 0;
}

static bool conn_oriented(const UnixSkEntry *e)
{
	return e->type == SOCK_STREAM || e->type == SOCK_SEQPACKET;
}

static struct rst_unix *listener_named(struct rst_ctx *rc, const ProtobufCBinaryData *n, uint32_t type);

/* Of two connected stream sockets, the accepted one: it carries its listener's name. */
static bool is_accepted_side(struct rst_ctx *rc, const UnixSkEntry *a, const UnixSkEntry *b)
{
	if (!a->has_name || !b->has_name)
		return a->has_name;
	if (listener_named(rc, &a->name, a->type))
		return true;
	if (listener_named(rc, &b->name, b->type))
		return false;
	return a->ino < b->ino;
}

static struct rst_unix *listener_named(struct rst_ctx *rc, const ProtobufCBinaryData *n, uint32_t type)
{
	for (int i = 0; i < rc->nr_unixsk; i++) {
		const UnixSkEntry *l = rc->unixsk[i].e;

		if (l->state == ST_LISTEN && l->type == type && l->name.len == n->len &&
		    (!n->len || !memcmp(l->name.data, n->data, n->len)))
			return &rc->unixsk[i];
	}
	return NULL;
}

/*
 * A connection whose accepted end has NAME: from the listener of that name
 * if the image has it, else from a stand-in listener bound to it for the
 * moment (its file stays if keep_file). Returns the accepted end.
 */
static int connect_accept(struct rst_ctx *rc, int cfd, uint32_t type, const ProtobufCBinaryData *name,
			  const char *dir, bool keep_file)
{
	struct rst_unix *l = listener_named(rc, name, type);
	_cleanup_close_ int tmp = -1;
	int lfd, r, a;

	if (l) {
		lfd = l->fd;
	} else {
		tmp = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
		if (tmp < 0)
			return log_errno(-errno, "socket(AF_UNIX)");
		if ((r = bind_to(tmp, name, dir, type)) < 0)
			return r;
		if (listen(tmp, 1) < 0)
			return log_errno(-errno, "listen on %s", PBNAME(*name));
		lfd = tmp;
	}
	r = addr_call(connect, cfd, name, dir);
	if (r < 0)
		return log_errno(r, "can't connect to %s", PBNAME(*name));
	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (a < 0)
		return log_errno(-errno, "can't accept the connection to %s", PBNAME(*name));
	if (!l && is_path(name) && !keep_file && unlink_name(name, dir) < 0) {
		close(a);
		return -EIO;
	}
	return a;
}

/* Sockets made alone or in pairs, bound, listening. */
static int make_sockets(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_unixsk; i++) {
		struct rst_unix *u = &rc->unixsk[i], *p = rfind(rc, u->e->peer);
		UnixSkEntry *e = u->e;
		int r = 0;

		if (u->fd >= 0)
			continue;
		if (p && (e->type == SOCK_DGRAM ? p->e->peer == e->ino && (!e->has_name || !p->e->has_name) :
			  !e->has_name && !p->e->has_name)) {
			/* Mutually connected, one unbound: a socketpair, named afterwards. */
			r = new_pair(e->type, &u->fd, &p->fd);
			u->paired = p->paired = true;
			r = r ?: set_bufs(u);
			r = r ?: set_bufs(p);
			if (!r && p->e->has_name)
				r = bind_to(p->fd, &p->e->name, p->e->bind_dir, p->e->type);
			p->bound = p->e->has_name;
		} else if (p && conn_oriented(e) && is_accepted_side(rc, e, p->e)) {
			continue;	/* accepted once its peer exists */
		} else if (e->peer_closed && !conn_oriented(e) && e->has_peer_name) {
			/* Connected, after its queue is filled, to a stand-in with the peer's name. */
			r = new_socket(u);
			u->standin = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (!r && u->standin < 0)
				r = log_errno(-errno, "socket(AF_UNIX)");
			r = r ?: bind_to(u->standin, &e->peer_name, e->bind_dir, e->type);
		} else if (e->peer_closed && (!conn_oriented(e) || (!e->has_name && !e->has_peer_name))) {
			r = new_pair(e->type, &u->fd, &u->standin);
			u->paired = true;
			r = r ?: set_bufs(u);
		} else if (e->peer_closed && e->has_name) {
			continue;	/* accepted from a stand-in client */
		} else {
			r = new_socket(u);
		}
		if (!r && e->has_name && u->fd >= 0)
			r = bind_to(u->fd, &e->name, e->bind_dir, e->type);
		u->bound = e->has_name;
		if (!r && e->state == ST_LISTEN && listen(u->fd, e->backlog) < 0)
			r = log_errno(-errno, "listen on %s", PBNAME(e->name));
		if (r < 0)
			return r;
	}
	return 0;
}

static int connect_to(int fd, const ProtobufCBinaryData *name, const char *dir)
{
	int r = addr_call(connect, fd, name, dir);

	return r < 0 ? log_errno(r, "can't connect to %s", PBNAME(*name)) : 0;
}

static int send_msg(int fd, const UnixSkMsg *m, const struct sockaddr_un *to, socklen_t tolen,
		    const UnixSkEntry *e);

/* A waiting connection whose client closed: a stand-in client sends what it had, and closes. */
static int connect_orphan(const UnixSkEntry *l, const UnixSkOrphan *o)
{
	_cleanup_close_ int c = socket(AF_UNIX, l->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (c < 0)
		return log_errno(-errno, "socket(AF_UNIX)");
	if (connect_to(c, &l->name, l->bind_dir) < 0)
		return -ECONNREFUSED;
	for (size_t i = 0; i < o->n_queue; i++)
		if (send_msg(c, o->queue[i], NULL, 0, l) < 0)
			return -EIO;
	return 0;
}

/* Stream connections: accepted pairs first, then the clients still waiting, in order. */
static int make_connections(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_unixsk; i++) {
		struct rst_unix *u = &rc->unixsk[i], *p = rfind(rc, u->e->peer);
		UnixSkEntry *e = u->e;

		if (u->fd >= 0 || !conn_oriented(e))
			continue;
		if (p && p->fd < 0) {
			pr_err("unixsk.img: sockets [%" PRIu64 "] and [%" PRIu64 "] both look accepted\n",
			       e->ino, p->e->ino);
			return -EINVAL;
		} else if (p) {
			u->fd = connect_accept(rc, p->fd, e->type, &e->name, e->bind_dir, !e->unlinked);
		} else if (e->peer_closed) {
			u->standin = socket(AF_UNIX, e->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (u->standin < 0)
				return log_errno(-errno, "socket(AF_UNIX)");
			u->fd = connect_accept(rc, u->standin, e->type, &e->name, e->bind_dir, !e->unlinked);
		}
		if (u->fd < 0)
			return u->fd;
		if (set_bufs(u) < 0)
			return -EIO;
	}
	for (int i = 0; i < rc->nr_unixsk; i++) {
		struct rst_unix *u = &rc->unixsk[i];
		UnixSkEntry *e = u->e;

		if (conn_oriented(e) && e->peer_closed && u->standin < 0) {
			/* The client of a closed accepted socket: its stand-in is accepted. */
			u->standin = connect_accept(rc, u->fd, e->type, &e->peer_name, e->bind_dir, false);
			if (u->standin < 0)
				return u->standin;
		}
		if (conn_oriented(e) && e->has_external_peer &&
		    connect_to(u->fd, &e->external_peer, NULL) < 0)
			return -ECONNREFUSED;
	}
	for (int i = 0; i < rc->nr_unixsk; i++) {
		UnixSkEntry *l = rc->unixsk[i].e;
		size_t orphan = 0;

		for (size_t k = 0; l->state == ST_LISTEN && k < l->n_icons; k++) {
			struct rst_unix *c = rfind(rc, l->icons[k]);

			if (!l->icons[k]) {
				if (orphan >= l->n_orphans || connect_orphan(l, l->orphans[orphan++]) < 0)
					return -EINVAL;
				continue;
			}
			if (!c) {
				pr_err("unixsk.img: listener %s waits for socket [%" PRIu64 "], which is not "
				       "in the image\n", PBNAME(l->name), l->icons[k]);
				return -EINVAL;
			}
			if (connect_to(c->fd, &l->name, l->bind_dir) < 0)
				return -ECONNREFUSED;
		}
	}
	return 0;
}

static int send_msg(int fd, const UnixSkMsg *m, const struct sockaddr_un *to, socklen_t tolen,
		    const UnixSkEntry *e)
{
	const uint8_t *data = m->data.len ? m->data.data : (const uint8_t *)"";
	int room = INT_MAX / 2;
	size_t off = 0;

	/*
	 * The sender's buffer is put back afterwards: the dumped queue may have
	 * gone over it (the last skb may), and ours are cut differently.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof(room)) < 0)
		return log_errno(-errno, "unix socket %s [%" PRIu64 "]: SO_SNDBUFFORCE for the refill",
				 PBNAME(e->name), e->ino);

	do {
		ssize_t n = sendto(fd, data + off, m->data.len - off, MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)to, to ? tolen : 0);

		if (n < 0)
			return log_errno(-errno, "unix socket %s [%" PRIu64 "]: can't queue %zu bytes again",
					 PBNAME(e->name), e->ino, m->data.len - off);
		off += n;
	} while (off < m->data.len);
	return 0;
}

/* A datagram from a sender that is not in the image: from a stand-in with its name. */
static int send_from_standin(const UnixSkMsg *m, const UnixSkEntry *e)
{
	_cleanup_close_ int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un to;
	socklen_t tolen = make_addr(&to, &e->name);
	bool named = m->has_sender_name && m->sender_name.len;

	if (s < 0)
		return log_errno(-errno, "socket(AF_UNIX)");
	if (named && addr_call(bind, s, &m->sender_name, NULL) < 0)
		pr_warn("unix socket %s: a queued datagram came from %s, which is taken now: it is "
			"sent again without that address\n", PBNAME(e->name), PBNAME(m->sender_name));
	else if (named && is_path(&m->sender_name))
		unlink_name(&m->sender_name, NULL);
	if (!e->has_name) {
		pr_err("unix socket [%" PRIu64 "]: a datagram from outside the image waits in an unbound "
		       "socket; can't send it again\n", e->ino);
		return -EINVAL;
	}
	return send_msg(s, m, &to, tolen, e);
}

static int fill_queue_here(struct rst_ctx *rc, struct rst_unix *u);

/* Datagrams go to the socket's name: a relative one from its directory. */
static int fill_queue(struct rst_ctx *rc, struct rst_unix *u)
{
	const UnixSkEntry *e = u->e;
	_cleanup_close_ int here = -1;
	int r;

	if (!e->n_queue || !e->bind_dir || !is_path(&e->name) || e->name.data[0] == '/')
		return fill_queue_here(rc, u);
	here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (here < 0)
		return log_errno(-errno, "can't open the current directory");
	if (chdir(e->bind_dir) < 0)
		return log_errno(-errno, "can't enter '%s'", e->bind_dir);
	r = fill_queue_here(rc, u);
	if (fchdir(here) < 0)
		return log_errno(-errno, "can't go back to the restorer's directory");
	return r;
}

static int fill_queue_here(struct rst_ctx *rc, struct rst_unix *u)
{
	UnixSkEntry *e = u->e;
	struct rst_unix *p = rfind(rc, e->peer);
	int partner = p ? p->fd : u->standin;

	for (size_t i = 0; i < e->n_queue; i++) {
		UnixSkMsg *m = e->queue[i];
		struct rst_unix *s = m->has_sender ? rfind(rc, m->sender) : NULL;
		struct sockaddr_un to;
		socklen_t tolen = make_addr(&to, &e->name);
		int r;

		if (conn_oriented(e) || (!e->has_name && partner >= 0)) {
			if (partner < 0) {
				pr_err("unix socket %s [%" PRIu64 "]: data is queued but no peer can send it\n",
				       PBNAME(e->name), e->ino);
				return -EINVAL;
			}
			r = send_msg(partner, m, NULL, 0, e);
		} else if (s) {
			r = send_msg(s->fd, m, &to, tolen, e);
		} else if (!m->has_sender_name && partner >= 0) {
			r = send_msg(partner, m, &to, tolen, e);
		} else {
			r = send_from_standin(m, e);
		}
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < e->n_peer_queue; i++)
		if (send_msg(u->fd, e->peer_queue[i], NULL, 0, e) < 0)
			return -EIO;
	return 0;
}

static int set_opt(int fd, int opt, const void *v, socklen_t len, const char *what, const UnixSkEntry *e)
{
	if (setsockopt(fd, SOL_SOCKET, opt, v, len) < 0)
		return log_errno(-errno, "unix socket %s [%" PRIu64 "]: can't set %s", PBNAME(e->name),
				 e->ino, what);
	return 0;
}

static int finish_socket(struct rst_unix *u)
{
	const UnixSkEntry *e = u->e;
	const UnixSkOpts *o = e->opts;
	int v[4] = { o->passcred, o->passsec, o->peek_off, o->rcvlowat };
	struct timeval snd = { o->sndtimeo_us / 1000000, o->sndtimeo_us % 1000000 };
	struct timeval rcv = { o->rcvtimeo_us / 1000000, o->rcvtimeo_us % 1000000 };
	int r = set_bufs(u);

	if (r < 0)
		return r;
	if (e->shutdown & (RCV_SHUTDOWN | SEND_SHUTDOWN)) {
		int how = e->shutdown == (RCV_SHUTDOWN | SEND_SHUTDOWN) ? SHUT_RDWR :
			  e->shutdown & RCV_SHUTDOWN ? SHUT_RD : SHUT_WR;

		if (shutdown(u->fd, how) < 0 && errno != ENOTCONN)
			return log_errno(-errno, "unix socket %s [%" PRIu64 "]: shutdown(%d)",
					 PBNAME(e->name), e->ino, how);
	}
	if (v[0])
		r = r ?: set_opt(u->fd, SO_PASSCRED, &v[0], sizeof(int), "SO_PASSCRED", e);
	if (v[1])
		r = r ?: set_opt(u->fd, SO_PASSSEC, &v[1], sizeof(int), "SO_PASSSEC", e);
	if (v[2] >= 0)
		r = r ?: set_opt(u->fd, SO_PEEK_OFF, &v[2], sizeof(int), "SO_PEEK_OFF", e);
	if (v[3] != 1)
		r = r ?: set_opt(u->fd, SO_RCVLOWAT, &v[3], sizeof(int), "SO_RCVLOWAT", e);
	if (o->sndtimeo_us)
		r = r ?: set_opt(u->fd, SO_SNDTIMEO, &snd, sizeof(snd), "SO_SNDTIMEO", e);
	if (o->rcvtimeo_us)
		r = r ?: set_opt(u->fd, SO_RCVTIMEO, &rcv, sizeof(rcv), "SO_RCVTIMEO", e);
	return r ?: set_file(e);
}

static int restore_all(struct rst_ctx *rc)
{
	int r = make_sockets(rc);

	r = r ?: make_connections(rc);
	for (int i = 0; i < rc->nr_unixsk && !r; i++)
		r = fill_queue(rc, &rc->unixsk[i]);
	/* Datagram sockets connect once their queue is full: then only the peer may send. */
	for (int i = 0; i < rc->nr_unixsk && !r; i++) {
		struct rst_unix *u = &rc->unixsk[i], *p = rfind(rc, u->e->peer);

		if (conn_oriented(u->e) || u->paired)
			continue;
		if (p)
			r = connect_to(u->fd, &p->e->name, p->e->bind_dir);
		else if (u->e->has_external_peer)
			r = connect_to(u->fd, &u->e->external_peer, NULL);
		else if (u->e->peer_closed && u->e->has_peer_name)
			r = connect_to(u->fd, &u->e->peer_name, u->e->bind_dir);
	}
	for (int i = 0; i < rc->nr_unixsk; i++) {
		if (rc->unixsk[i].standin >= 0)
			close(rc->unixsk[i].standin);
		rc->unixsk[i].standin = -1;
	}
	for (int i = 0; i < rc->nr_unixsk && !r; i++)
		r = finish_socket(&rc->unixsk[i]);
	/* Names unlinked at dump time go once nobody needs to connect to them. */
	for (int i = 0; i < rc->nr_unixsk && !r; i++) {
		const UnixSkEntry *e = rc->unixsk[i].e;

		if (e->unlinked && is_path(&e->name) && rc->unixsk[i].bound)
			r = unlink_name(&e->name, e->bind_dir);
	}
	return r;
}

static bool image_has_unix(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;
		for (size_t k = 0; fds && k < fds->n_fds; k++)
			if (fds->fds[k]->kind == FD_KIND__FD_UNIXSK)
				return true;
	}
	return false;
}

int unix_restore_prepare(struct rst_ctx *rc)
{
	struct img *img;
	ProtobufCMessage *m;
	int ret;

	if (!image_has_unix(rc))
		return 0;
	img = img_open_read(rc->dirfd, rc->dir, IMG_UNIXSK, 0);
	if (!img)
		return -ENOENT;
	while ((ret = img_read_msg(img, &unix_sk_entry__descriptor, &m)) > 0) {
		struct rst_unix *u;

		rc->unixsk = xrealloc(rc->unixsk, (rc->nr_unixsk + 1) * sizeof(*rc->unixsk));
		u = &rc->unixsk[rc->nr_unixsk++];
		*u = (struct rst_unix){ .e = (UnixSkEntry *)m, .fd = -1, .standin = -1 };
		if (u->e->type != SOCK_STREAM && u->e->type != SOCK_DGRAM && u->e->type != SOCK_SEQPACKET) {
			pr_err("unixsk.img: socket [%" PRIu64 "] has an unknown type %u\n", u->e->ino,
			       u->e->type);
			ret = -EINVAL;
			break;
		}
	}
	img_abort(img);
	return ret < 0 ? ret : restore_all(rc);
}

void unix_restore_release(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_unixsk; i++) {
		if (rc->unixsk[i].fd >= 0)
			close(rc->unixsk[i].fd);
		if (rc->unixsk[i].standin >= 0)
			close(rc->unixsk[i].standin);
		img_free_msg(&rc->unixsk[i].e->base);
	}
	free(rc->unixsk);
	rc->unixsk = NULL;
	rc->nr_unixsk = 0;
}

static int unixsk_open(struct rst_ctx *rc, const FdEntry *e)
{
	struct rst_unix *u = e->has_unixsk_id ? rfind(rc, e->unixsk_id) : NULL;
	int fd;

	if (!u || u->fd < 0) {
		pr_err("fd %u: %s: the socket is missing from unixsk.img\n", e->fd, e->path);
		return -ENOENT;
	}
	fd = fcntl(u->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(-errno, "fd %u: dup of %s", e->fd, e->path);
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_ASYNC)) < 0) {
		int err = log_errno(-errno, "fd %u: %s: can't set flags 0%o", e->fd, e->path, e->flags);
		close(fd);
		return err;
	}
	return fd;
}

const struct fd_ops unixsk_ops = { FD_KIND__FD_UNIXSK, "unix socket", unixsk_dump, unixsk_open, NULL };
