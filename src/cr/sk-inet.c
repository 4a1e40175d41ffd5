#define LOG_PREFIX "inet: "
/*
 * TCP and UDP sockets, IPv4 and IPv6.
 *
 * Dump: once the tree is frozen, sk_dump_prepare() takes a copy of every
 * socket of the tree (pidfd_getfd), reads what it is and refuses what cannot
 * be restored. Connected TCP sockets are then blocked in the network lock
 * (netlock.c) and put in repair mode, all before any of them is read, so
 * that no byte moves between two sockets being dumped and no byte is
 * acknowledged to a peer outside the tree. Their sequence numbers, queues,
 * window and negotiated options are read with TCP_REPAIR; listeners get
 * their backlog and accept queue from INET_DIAG.
 *
 * Restore: a connected socket is rebuilt in repair mode (sequence numbers,
 * bind, connect without a handshake, options, queues, window); once every
 * description is open sk_restore_finish() leaves repair mode, unlocks, sends
 * what had never been sent, and sends the FIN again if one was sent. A
 * connection that waited in a listener's accept queue, with its client in
 * the tree, is made again by a real connect() of the restored client, which
 * then sends its unacknowledged data again: the listener accepts the same
 * 4-tuple with the same bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>

#include "cr.h"
#include "files.h"
#include "image.h"
#include "log.h"
#include "pstree.h"
#include "sk-inet.h"
#include "util.h"

#define UDP_CONNECTED 1
#define UDP_UNCONNECTED 7

struct sk_info {
	uint64_t ino;
	pid_t pid;			/* its first descriptor */
	int fd;
	int sk;				/* our copy */
	int family;
	InetSkEntry *ie;
	NetlinkSkEntry *ne;
	TcpStreamEntry *ts;
	struct netlock_conn conn;	/* connected TCP: local, remote (v4-mapped made v4) */
	bool connected, repair, locked;
};

struct diag_row {
	uint64_t ino;
	int family, state;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t rqueue, wqueue;
	uint8_t shutdown;
	uint32_t cookie[2];
	uint32_t ifindex;
};

struct sk_seen {
	struct sk_info *s;
	int nr;
	struct diag_row *rows;		/* every TCP socket of the host, both families */
	int nr_rows;
	struct netlock_conn *locks;	/* what we blocked */
	bool *lock_in_tree;
	int nr_locks;
	uint32_t next_stream;
};

/* Restore side: the image, and what sk_restore_finish() must still do. */
struct rst_sk_open {
	uint32_t file_id;
	InetSkEntry *ie;
	TcpStreamEntry *ts;
	uint32_t flags;
	uint32_t fd;			/* the first descriptor's number, for messages */
};

struct rst_sk {
	InetSkEntry **inet;
	size_t n_inet;
	NetlinkSkEntry **nl;
	size_t n_nl;
	struct rst_sk_open *open;
	int nr_open;
};

static void *xmemdup(const void *p, size_t len)
{
	return memcpy(xmalloc(len), p, len);
}

static const char *state_name(int st)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN_SENT", [TCP_SYN_RECV] = "SYN_RECV",
		[TCP_FIN_WAIT1] = "FIN_WAIT1", [TCP_FIN_WAIT2] = "FIN_WAIT2", [TCP_TIME_WAIT] = "TIME_WAIT",
		[TCP_CLOSE] = "CLOSE", [TCP_CLOSE_WAIT] = "CLOSE_WAIT", [TCP_LAST_ACK] = "LAST_ACK",
		[TCP_LISTEN] = "LISTEN", [TCP_CLOSING] = "CLOSING",
	};
	return st > 0 && st < (int)ARRAY_SIZE(names) && names[st] ? names[st] : "?";
}

static bool fin_sent_state(int st)
{
	return st == TCP_FIN_WAIT1 || st == TCP_FIN_WAIT2 || st == TCP_CLOSING || st == TCP_LAST_ACK;
}

static bool fin_received_state(int st)
{
	return st == TCP_CLOSE_WAIT || st == TCP_CLOSING || st == TCP_LAST_ACK;
}

static bool connected_state(int st)
{
	return st == TCP_ESTABLISHED || fin_sent_state(st) || fin_received_state(st);
}

/* Addresses as the wire sees them: a v4-mapped IPv6 address is IPv4. */
static void wire_addr(int family, const void *addr, int *wfam, uint8_t out[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	memset(out, 0, 16);
	if (family == AF_INET6 && !memcmp(addr, mapped, 12)) {
		*wfam = AF_INET;
		memcpy(out, (const uint8_t *)addr + 12, 4);
	} else {
		*wfam = family;
		memcpy(out, addr, family == AF_INET6 ? 16 : 4);
	}
}

static bool addr_any(int family, const uint8_t *a)
{
	static const uint8_t zero[16];

	return !memcmp(a, zero, family == AF_INET6 ? 16 : 4);
}

/* "pid 12: fd 3 (TCP 127.0.0.1:80 - 127.0.0.1:41000)" */
static void sk_who(char *buf, size_t len, const struct sk_info *s)
{
	char a[64], b[64];

	netlock_fmt(a, sizeof(a), s->ie->family, s->ie->src_addr.data, s->ie->src_port);
	if (s->ie->has_dst_port) {
		netlock_fmt(b, sizeof(b), s->ie->family, s->ie->dst_addr.data, s->ie->dst_port);
		snprintf(buf, len, "pid %d: fd %d (%s %s - %s)", s->pid, s->fd,
			 s->ie->proto == IPPROTO_TCP ? "TCP" : "UDP", a, b);
	} else {
		snprintf(buf, len, "pid %d: fd %d (%s %s)", s->pid, s->fd,
			 s->ie->proto == IPPROTO_TCP ? "TCP" : "UDP", a);
	}
}

/* ---------------------------------------------------------------- INET_DIAG */

static int diag_parse(struct sk_seen *ss, const struct nlmsghdr *h)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct diag_row *r;
	int alen, rem = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

	if (rem < 0)
		return -EBADMSG;
	ss->rows = xrealloc(ss->rows, (ss->nr_rows + 1) * sizeof(*ss->rows));
	r = &ss->rows[ss->nr_rows++];
	memset(r, 0, sizeof(*r));
	alen = m->idiag_family == AF_INET6 ? 16 : 4;
	r->ino = m->idiag_inode;
	r->family = m->idiag_family;
	r->state = m->idiag_state;
	memcpy(r->src, m->id.idiag_src, alen);
	memcpy(r->dst, m->id.idiag_dst, alen);
	r->sport = ntohs(m->id.idiag_sport);
	r->dport = ntohs(m->id.idiag_dport);
	r->rqueue = m->idiag_rqueue;
	r->wqueue = m->idiag_wqueue;
	r->cookie[0] = m->id.idiag_cookie[0];
	r->cookie[1] = m->id.idiag_cookie[1];
	r->ifindex = m->id.idiag_if;
	for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, rem); a = RTA_NEXT(a, rem))
		if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1)
			r->shutdown = *(uint8_t *)RTA_DATA(a);
	return 0;
}

/* Every TCP socket of this network namespace, of one family. */
static int diag_dump_tcp(struct sk_seen *ss, int family, pid_t pid)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0U },
	};
	/* In the tree's network namespace, which may be its own. */
	_cleanup_close_ int nl = sock_diag_socket(pid);
	static char buf[65536] __attribute__((aligned(8)));

	if (nl < 0)
		return nl;
	if (send(nl, &req, sizeof(req), 0) < 0)
		return log_errno(-errno, "INET_DIAG request (family %d)", family);
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);

		if (n < 0)
			return log_errno(-errno, "INET_DIAG reply (family %d)", family);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);
				return log_errno(e->error ? e->error : -EIO, "INET_DIAG (family %d)", family);
			}
			if (diag_parse(ss, h) < 0)
				return log_errno(-EBADMSG, "INET_DIAG: short message");
		}
	}
}

static const struct diag_row *diag_find(const struct sk_seen *ss, uint64_t ino)
{
	for (int i = 0; i < ss->nr_rows; i++)
		if (ss->rows[i].ino == ino)
			return &ss->rows[i];
	return NULL;
}

/* ---------------------------------------------------------------- collecting */

static int get_int(int sk, int level, int name, int *v, const char *who, const char *what)
{
	socklen_t len = sizeof(*v);

	if (getsockopt(sk, level, name, v, &len) < 0)
		return log_errno(-errno, "%s: getsockopt(%s)", who, what);
	return 0;
}

static void set_addr(ProtobufCBinaryData *b, int family, const struct sockaddr_storage *ss, uint32_t *port)
{
	int alen = family == AF_INET6 ? 16 : 4;

	b->len = alen;
	b->data = xmalloc(alen);
	if (family == AF_INET6) {
		memcpy(b->data, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		*port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	} else {
		memcpy(b->data, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		*port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	}
}

static int inet_collect(struct sk_seen *ss, struct sk_info *s, const char *link)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	int type, proto, ret;
	InetSkEntry *ie;
	char who[160];

	snprintf(who, sizeof(who), "pid %d: fd %d (%s)", s->pid, s->fd, link);
	if ((ret = get_int(s->sk, SOL_SOCKET, SO_TYPE, &type, who, "SO_TYPE")) < 0 ||
	    (ret = get_int(s->sk, SOL_SOCKET, SO_PROTOCOL, &proto, who, "SO_PROTOCOL")) < 0)
		return ret;
	if (!((type == SOCK_STREAM && proto == IPPROTO_TCP) || (type == SOCK_DGRAM && proto == IPPROTO_UDP))) {
		pr_err("%s: %s %s socket of protocol %d is not supported (TCP and UDP are)\n", who,
		       type == SOCK_RAW ? "a raw" : "an", s->family == AF_INET6 ? "IPv6" : "IPv4", proto);
		return -EOPNOTSUPP;
	}
	ie = s->ie = xmalloc(sizeof(*ie));
	inet_sk_entry__init(ie);
	ie->ino = s->ino;
	ie->family = s->family;
	ie->type = type;
	ie->proto = proto;
	if (getsockname(s->sk, (struct sockaddr *)&a, &alen) < 0)
		return log_errno(-errno, "%s: getsockname", who);
	set_addr(&ie->src_addr, s->family, &a, &ie->src_port);
	alen = sizeof(a);
	if (getpeername(s->sk, (struct sockaddr *)&a, &alen) == 0) {
		ie->has_dst_port = ie->has_dst_addr = true;
		set_addr(&ie->dst_addr, s->family, &a, &ie->dst_port);
	} else if (errno != ENOTCONN) {
		return log_errno(-errno, "%s: getpeername", who);
	}
	sk_who(who, sizeof(who), s);
	if (proto == IPPROTO_UDP) {
		ie->state = ie->has_dst_port ? UDP_CONNECTED : UDP_UNCONNECTED;
	} else {
		const struct diag_row *r = diag_find(ss, s->ino);

		if (!r) {
			pr_err("%s: not found by INET_DIAG\n", who);
			return -ENOENT;
		}
		ie->state = r->state;
		if (r->state == TCP_LISTEN) {
			ie->has_backlog = true;
			ie->backlog = r->wqueue;
		}
		ie->has_shut_rd = true;
		ie->shut_rd = r->shutdown & 1;	/* RCV_SHUTDOWN */
		if (!connected_state(r->state) && r->state != TCP_LISTEN && r->state != TCP_CLOSE) {
			pr_err("%s: TCP state %s cannot be restored (a connection being set up)\n", who,
			       state_name(r->state));
			return -EOPNOTSUPP;
		}
		s->connected = connected_state(r->state) && ie->has_dst_port;
	}
	if (s->connected) {
		wire_addr(s->family, ie->src_addr.data, &s->conn.family, s->conn.src);
		wire_addr(s->family, ie->dst_addr.data, &s->conn.family, s->conn.dst);
		s->conn.sport = ie->src_port;
		s->conn.dport = ie->dst_port;
	}
	return sk_opts_dump(s->sk, s->family, type, proto, &ie->opts, &ie->n_opts, who);
}

static int sk_collect_one(struct sk_seen *ss, pid_t pid, int pidfd, int fd, const char *link, uint64_t ino)
{
	struct sk_info *s;
	int sk, family, ret;
	char who[128];

	for (int i = 0; i < ss->nr; i++)
		if (ss->s[i].ino == ino)
			return 0;
	sk = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (sk < 0)
		return log_errno(-errno, "pid %d: fd %d (%s): pidfd_getfd", pid, fd, link);
	snprintf(who, sizeof(who), "pid %d: fd %d (%s)", pid, fd, link);
	if ((ret = get_int(sk, SOL_SOCKET, SO_DOMAIN, &family, who, "SO_DOMAIN")) < 0) {
		close(sk);
		return ret;
	}
	if (family == AF_PACKET) {
		close(sk);
		pr_err("%s: packet sockets are not supported\n", who);
		return -EOPNOTSUPP;
	}
	if (family != AF_INET && family != AF_INET6 && family != AF_NETLINK) {
		close(sk);	/* another module's (unix...) */
		return 0;
	}
	ss->s = xrealloc(ss->s, (ss->nr + 1) * sizeof(*ss->s));
	s = &ss->s[ss->nr++];
	memset(s, 0, sizeof(*s));
	*s = (struct sk_info){ .ino = ino, .pid = pid, .fd = fd, .sk = sk, .family = family };
	if (family == AF_NETLINK)
		return netlink_dump_one(sk, ino, &s->ne, who);
	return inet_collect(ss, s, link);
}

static int sk_collect_task(struct sk_seen *ss, pid_t pid)
{
	char path[64], link[64];
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_close_ int pidfd = -1;
	struct dirent *de;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return log_errno(-errno, "pid %d: can't list %s", pid, path);
	while (!ret && (de = readdir(d))) {
		char fdp[sizeof(path) + 256];
		ssize_t n;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s", path, de->d_name);
		n = readlink(fdp, link, sizeof(link) - 1);
		if (n < 0 || strncmp(link, "socket:[", 8) || (link[n] = '\0', stat(fdp, &st) < 0))
			continue;	/* not a socket, or closed meanwhile (the dump notices) */
		if (pidfd < 0 && (pidfd = syscall(SYS_pidfd_open, pid, 0)) < 0)
			return log_errno(-errno, "pid %d: pidfd_open", pid);
		ret = sk_collect_one(ss, pid, pidfd, atoi(de->d_name), link, st.st_ino);
	}
	return ret;
}

static struct sk_info *find_conn(struct sk_seen *ss, const struct netlock_conn *c, bool reversed)
{
	for (int i = 0; i < ss->nr; i++) {
		const struct netlock_conn *o = &ss->s[i].conn;

		if (!ss->s[i].connected || o->family != c->family)
			continue;
		if (reversed && o->sport == c->dport && o->dport == c->sport && !memcmp(o->src, c->dst, 16) &&
		    !memcmp(o->dst, c->src, 16))
			return &ss->s[i];
		if (!reversed && o->sport == c->sport && o->dport == c->dport && !memcmp(o->src, c->src, 16) &&
		    !memcmp(o->dst, c->dst, 16))
			return &ss->s[i];
	}
	return NULL;
}

/*
 * The accept queue of a listener: established children without a
 * descriptor on its port. Each must have its client in the tree, and have
 * received nothing (their bytes could not be read without accepting them).
 */
static int listener_pending(struct sk_seen *ss, struct sk_info *l)
{
	InetSkEntry *ie = l->ie;
	char who[160];

	sk_who(who, sizeof(who), l);
	for (int i = 0; i < ss->nr_rows; i++) {
		const struct diag_row *r = &ss->rows[i];
		struct netlock_conn c = { .sport = r->sport, .dport = r->dport };
		struct sk_info *client;
		InetPending *p;
		char b[64];

		if (r->ino || r->sport != ie->src_port || r->family != (int)ie->family ||
		    (r->state != TCP_ESTABLISHED && r->state != TCP_CLOSE_WAIT) ||
		    (!addr_any(ie->family, ie->src_addr.data) && memcmp(r->src, ie->src_addr.data, ie->src_addr.len)))
			continue;
		wire_addr(r->family, r->src, &c.family, c.src);
		wire_addr(r->family, r->dst, &c.family, c.dst);
		client = find_conn(ss, &c, true);
		netlock_fmt(b, sizeof(b), r->family, r->dst, r->dport);
		if (!client) {
			pr_err("%s: a connection from %s waits in the accept queue and its client is not in the "
			       "tree; not supported\n", who, b);
			return -EOPNOTSUPP;
		}
		if (r->rqueue || r->state != TCP_ESTABLISHED || client->ie->state != TCP_ESTABLISHED) {
			pr_err("%s: the connection from %s waiting in the accept queue has received data or a FIN "
			       "(%u bytes, %s); not supported\n", who, b, r->rqueue, state_name(r->state));
			return -EOPNOTSUPP;
		}
		client->ie->has_reconnect = client->ie->reconnect = true;
		p = xmalloc(sizeof(*p));
		inet_pending__init(p);
		p->src_addr.len = p->dst_addr.len = r->family == AF_INET6 ? 16 : 4;
		p->src_addr.data = xmemdup(r->src, p->src_addr.len);
		p->dst_addr.data = xmemdup(r->dst, p->dst_addr.len);
		p->src_port = r->sport;
		p->dst_port = r->dport;
		ie->pending = xrealloc(ie->pending, (ie->n_pending + 1) * sizeof(*ie->pending));
		ie->pending[ie->n_pending++] = p;
	}
	return 0;
}

/* Connections whose peer is not in the tree need --tcp-established; which to block. */
static int check_peers(struct sk_seen *ss, bool tcp_established)
{
	for (int i = 0; i < ss->nr; i++) {
		int ret = ss->s[i].ie && ss->s[i].ie->state == TCP_LISTEN ? listener_pending(ss, &ss->s[i]) : 0;

		if (ret < 0)
			return ret;
	}
	for (int i = 0; i < ss->nr; i++) {
		struct sk_info *s = &ss->s[i], *peer;
		char who[160];

		if (!s->connected)
			continue;
		peer = find_conn(ss, &s->conn, true);
		sk_who(who, sizeof(who), s);
		if (s->ie->reconnect) {
			peer = s;	/* its peer waits in a listener of the tree */
		} else if (!peer && !tcp_established) {
			pr_err("%s: the TCP connection leads out of the tree (%s); dump with --tcp-established "
			       "to take it\n", who, state_name(s->ie->state));
			return -EOPNOTSUPP;
		}
		if (!peer && fin_received_state(s->ie->state)) {
			pr_err("%s: the peer outside the tree has closed its side (%s); its FIN cannot be "
			       "replayed at restore\n", who, state_name(s->ie->state));
			return -EOPNOTSUPP;
		}
		if (peer && peer < s)
			continue;	/* the pair's lock is already there */
		ss->locks = xrealloc(ss->locks, (ss->nr_locks + 1) * sizeof(*ss->locks));
		ss->lock_in_tree = xrealloc(ss->lock_in_tree, (ss->nr_locks + 1) * sizeof(bool));
		ss->locks[ss->nr_locks] = s->conn;
		ss->lock_in_tree[ss->nr_locks++] = peer != NULL;
		if (!peer)
			pr_info("%s: peer outside the tree, taken (--tcp-established)\n", who);
	}
	return 0;
}

/* ---------------------------------------------------------------- TCP repair, dump */

static int repair(int sk, int on, const char *who)
{
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return log_errno(-errno, "%s: TCP_REPAIR %s", who, on ? "on" : "off");
	return 0;
}

static int repair_queue(int sk, int q, const char *who)
{
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) < 0)
		return log_errno(-errno, "%s: TCP_REPAIR_QUEUE %d", who, q);
	return 0;
}

/* The queue selected with TCP_REPAIR_QUEUE: its last sequence number and its bytes. */
static int read_queue(int sk, int q, int size, uint32_t *seq, ProtobufCBinaryData *data, const char *who)
{
	socklen_t len = sizeof(*seq);
	ssize_t n;
	int ret = repair_queue(sk, q, who);

	if (ret < 0)
		return ret;
	if (getsockopt(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len) < 0)
		return log_errno(-errno, "%s: TCP_QUEUE_SEQ of the %s queue", who, q == TCP_SEND_QUEUE ? "send" : "receive");
	data->data = xmalloc(size + 1);
	data->len = 0;
	if (size == 0)
		return 0;
	n = recv(sk, data->data, size + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		n = 0;
	if (n < 0)
		return log_errno(-errno, "%s: can't peek %d bytes of the %s queue", who, size,
				 q == TCP_SEND_QUEUE ? "send" : "receive");
	data->len = n;
	return 0;
}

static int tcp_read_stream(struct sk_seen *ss, struct sk_info *s)
{
	TcpStreamEntry *ts = xmalloc(sizeof(*ts));
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq, unsent, inq, st = s->ie->state, ret, v;
	uint32_t wseq, rseq;
	char who[160];

	tcp_stream_entry__init(ts);
	s->ts = ts;
	sk_who(who, sizeof(who), s);
	if (getsockopt(s->sk, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return log_errno(-errno, "%s: TCP_INFO", who);
	if (ioctl(s->sk, SIOCOUTQ, &outq) < 0 || ioctl(s->sk, SIOCOUTQNSD, &unsent) < 0 ||
	    ioctl(s->sk, SIOCINQ, &inq) < 0)
		return log_errno(-errno, "%s: can't size its queues", who);
	ts->fin_sent = fin_sent_state(st);
	ts->fin_received = fin_received_state(st);
	if ((ret = read_queue(s->sk, TCP_SEND_QUEUE, outq, &wseq, &ts->send_queue, who)) < 0 ||
	    (ret = read_queue(s->sk, TCP_RECV_QUEUE, inq + 1, &rseq, &ts->recv_queue, who)) < 0 ||
	    (ret = repair_queue(s->sk, TCP_NO_QUEUE, who)) < 0)
		return ret;
	ts->send_seq = wseq - ts->fin_sent - ts->send_queue.len;
	ts->recv_seq = rseq - ts->fin_received - ts->recv_queue.len;
	if (unsent > 0 && ts->fin_sent)
		unsent--;	/* the FIN is not sent yet either */
	ts->unsent = min_t(uint32_t, unsent, ts->send_queue.len);
	ts->options = ti.tcpi_options;
	ts->snd_wscale = ti.tcpi_snd_wscale;
	ts->rcv_wscale = ti.tcpi_rcv_wscale;
	if ((ret = get_int(s->sk, IPPROTO_TCP, TCP_MAXSEG, &v, who, "TCP_MAXSEG")) < 0)
		return ret;
	ts->mss = v;
	if ((ret = get_int(s->sk, IPPROTO_TCP, TCP_TIMESTAMP, &v, who, "TCP_TIMESTAMP")) < 0)
		return ret;
	ts->timestamp = v;
	len = sizeof(w);
	if (getsockopt(s->sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) < 0)
		return log_errno(-errno, "%s: TCP_REPAIR_WINDOW", who);
	ts->snd_wl1 = w.snd_wl1;
	ts->snd_wnd = w.snd_wnd;
	ts->max_window = w.max_window;
	ts->rcv_wnd = w.rcv_wnd;
	ts->rcv_wup = w.rcv_wup;
	s->ie->has_stream_id = true;
	s->ie->stream_id = ++ss->next_stream;
	pr_debug("%s: %s, send %u+%zu (%u unsent), receive %u+%zu\n", who, state_name(st), ts->send_seq,
		 ts->send_queue.len, ts->unsent, ts->recv_seq, ts->recv_queue.len);
	return 0;
}

int sk_dump_prepare(struct file_seen *fs)
{
	struct sk_seen *ss = fs->sk = xzalloc(sizeof(*ss));
	pid_t root = pstree_root(fs->tree)->pid;
	int ret = diag_dump_tcp(ss, AF_INET, root);

	if (!ret)
		ret = diag_dump_tcp(ss, AF_INET6, root);
	for (int i = 0; i < fs->tree->nr && !ret; i++)
		if (!fs->tree->items[i]->zombie)
			ret = sk_collect_task(ss, fs->tree->items[i]->pid);
	if (!ret)
		ret = check_peers(ss, fs->opts->tcp_established);
	if (!ret && ss->nr_locks && (ret = netlock_lock(ss->locks, ss->nr_locks)) == 0)
		for (int i = 0; i < ss->nr; i++)
			ss->s[i].locked = ss->s[i].connected;
	for (int i = 0; i < ss->nr && !ret; i++) {
		struct sk_info *s = &ss->s[i];
		char who[160];

		if (!s->connected)
			continue;
		sk_who(who, sizeof(who), s);
		ret = repair(s->sk, 1, who);
		s->repair = !ret;
		if (!ret)
			ret = tcp_read_stream(ss, s);
	}
	free(ss->rows);
	ss->rows = NULL;
	return ret;
}

const struct fd_ops *sk_classify(const struct fd_dump *d)
{
	struct sk_seen *ss = d->fs->sk;

	for (int i = 0; ss && i < ss->nr; i++)
		if (ss->s[i].ino == d->st.st_ino)
			return ss->s[i].family == AF_NETLINK ? &netlink_ops : &inet_ops;
	return NULL;
}

int sk_dump_finish(struct file_seen *fs, int dirfd, const char *dir)
{
	struct sk_seen *ss = fs->sk;
	struct img *inet = NULL, *nl = NULL;
	int ret = 0;

	for (int i = 0; ss && i < ss->nr && !ret; i++) {
		struct sk_info *s = &ss->s[i];
		struct img **img = s->ie ? &inet : &nl;

		if (!*img && !(*img = img_open_write(dirfd, dir, s->ie ? IMG_INETSK : IMG_NETLINKSK, 0)))
			ret = -EIO;
		if (!ret)
			ret = img_write_msg(*img, s->ie ? &s->ie->base : &s->ne->base);
		if (!ret && s->ts)
			ret = img_write_one(dirfd, dir, IMG_TCPSTREAM, s->ie->stream_id, &s->ts->base);
	}
	if (inet && (ret ? (img_abort(inet), 0) : (ret = img_close(inet))) < 0)
		return ret;
	if (nl && (ret ? (img_abort(nl), 0) : (ret = img_close(nl))) < 0)
		return ret;
	return ret;
}

void sk_dump_resume(struct file_seen *fs)
{
	struct sk_seen *ss = fs->sk;

	for (int i = 0; ss && i < ss->nr; i++) {
		struct sk_info *s = &ss->s[i];
		char who[160];

		if (!s->repair)
			continue;
		sk_who(who, sizeof(who), s);
		/* Leaving repair mode clears SO_REUSEADDR: give it back. */
		repair(s->sk, 0, who);
		for (size_t k = 0; k < s->ie->n_opts; k++)
			if (s->ie->opts[k]->level == SOL_SOCKET && s->ie->opts[k]->name == SO_REUSEADDR)
				sk_opts_restore(s->sk, &s->ie->opts[k], 1, SK_OPTS_ALL, who);
		s->repair = false;
	}
	if (ss && ss->nr_locks)
		netlock_unlock(ss->locks, ss->nr_locks);
	if (ss)
		ss->nr_locks = 0;
}

void sk_dump_killed(struct file_seen *fs)
{
	struct sk_seen *ss = fs->sk;
	int in = 0, out;

	/* Our copies keep the sockets alive: the last reference goes while still blocked. */
	for (int i = 0; ss && i < ss->nr; i++) {
		close(ss->s[i].sk);
		ss->s[i].sk = -1;
	}
	if (!ss || !ss->nr_locks)
		return;
	/* In-tree pairs first, then the connections to the outside. */
	for (int i = 0; i < ss->nr_locks; i++)
		if (ss->lock_in_tree[i]) {
			struct netlock_conn t = ss->locks[in];

			ss->locks[in] = ss->locks[i];
			ss->locks[i] = t;
			ss->lock_in_tree[i] = ss->lock_in_tree[in];
			ss->lock_in_tree[in++] = true;
		}
	out = ss->nr_locks - in;
	netlock_unlock(ss->locks, in);
	/* A failure is logged: the images are complete, the peers may see a reset after 10 minutes. */
	netlock_keep(ss->locks + in, out);
}

void sk_dump_free(struct file_seen *fs)
{
	struct sk_seen *ss = fs->sk;

	if (!ss)
		return;
	for (int i = 0; i < ss->nr; i++) {
		if (ss->s[i].sk >= 0)
			close(ss->s[i].sk);
		img_free_msg(ss->s[i].ie ? &ss->s[i].ie->base : NULL);
		img_free_msg(ss->s[i].ne ? &ss->s[i].ne->base : NULL);
		img_free_msg(ss->s[i].ts ? &ss->s[i].ts->base : NULL);
	}
	free(ss->s);
	free(ss->rows);
	free(ss->locks);
	free(ss->lock_in_tree);
	free(ss);
	fs->sk = NULL;
}

static int inet_dump(struct fd_dump *d, FdEntry *e)
{
	return 0;	/* everything is in inetsk.img, by inode */
}

/* ---------------------------------------------------------------- restore */

static void to_sockaddr(int family, const ProtobufCBinaryData *a, uint32_t port, struct sockaddr_storage *ss,
			socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a->data, min_t(size_t, a->len, 16));
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a->data, min_t(size_t, a->len, 4));
		*len = sizeof(*s4);
	}
}

static void rst_who(char *buf, size_t len, const FdEntry *e, const InetSkEntry *ie)
{
	char a[64], b[64] = "";

	netlock_fmt(a, sizeof(a), ie->family, ie->src_addr.data, ie->src_port);
	if (ie->has_dst_port)
		netlock_fmt(b, sizeof(b), ie->family, ie->dst_addr.data, ie->dst_port);
	snprintf(buf, len, "fd %u (%s %s%s%s)", e->fd, ie->proto == IPPROTO_TCP ? "TCP" : "UDP", a,
		 ie->has_dst_port ? " - " : "", b);
}

static int64_t saved_opt(const InetSkEntry *ie, int level, int name)
{
	for (size_t k = 0; k < ie->n_opts; k++)
		if (ie->opts[k]->level == level && ie->opts[k]->name == name)
			return ie->opts[k]->value;
	return 0;
}

/*
 * Binding an IPv6 socket to an address makes it IPv6-only; a connected one
 * that is not was bound by connect() itself: bind only its port, and let
 * connect() pick the same source address again (checked in sk_connect()).
 */
static bool bind_port_only(const InetSkEntry *ie)
{
	return ie->family == AF_INET6 && ie->has_dst_port && !saved_opt(ie, IPPROTO_IPV6, IPV6_V6ONLY) &&
	       !addr_any(AF_INET6, ie->src_addr.data);
}

static int sk_bind(int sk, const InetSkEntry *ie, const char *who)
{
	static const uint8_t any[16];
	struct sockaddr_storage a;
	socklen_t len;
	ProtobufCBinaryData addr = ie->src_addr;

	if (bind_port_only(ie))
		addr.data = (uint8_t *)any;
	to_sockaddr(ie->family, &addr, ie->src_port, &a, &len);
	if (bind(sk, (struct sockaddr *)&a, len) < 0)
		return log_errno(-errno, "%s: can't bind", who);
	return 0;
}

static int sk_connect(int sk, const InetSkEntry *ie, const char *who)
{
	struct sockaddr_storage a;
	struct sockaddr_in6 self;
	socklen_t len, slen = sizeof(self);

	to_sockaddr(ie->family, &ie->dst_addr, ie->dst_port, &a, &len);
	if (connect(sk, (struct sockaddr *)&a, len) < 0)
		return log_errno(-errno, "%s: can't connect", who);
	if (!bind_port_only(ie))
		return 0;
	if (getsockname(sk, (struct sockaddr *)&self, &slen) < 0)
		return log_errno(-errno, "%s: getsockname", who);
	if (memcmp(&self.sin6_addr, ie->src_addr.data, 16)) {
		pr_err("%s: connect() chose another source address; the route to the peer changed\n", who);
		return -EADDRNOTAVAIL;
	}
	return 0;
}

static int set_int(int sk, int level, int name, int v, const char *who, const char *what)
{
	if (setsockopt(sk, level, name, &v, sizeof(v)) < 0)
		return log_errno(-errno, "%s: setsockopt(%s, %d)", who, what, v);
	return 0;
}

/* Room in the socket's buffers for the queues written back (the saved sizes come at the end). */
static int make_buffer_room(int sk, const TcpStreamEntry *ts, const char *who)
{
	int snd, rcv, ret;

	if ((ret = get_int(sk, SOL_SOCKET, SO_SNDBUF, &snd, who, "SO_SNDBUF")) < 0 ||
	    (ret = get_int(sk, SOL_SOCKET, SO_RCVBUF, &rcv, who, "SO_RCVBUF")) < 0)
		return ret;
	if ((size_t)snd < 2 * ts->send_queue.len + 65536 &&
	    (ret = set_int(sk, SOL_SOCKET, SO_SNDBUFFORCE, ts->send_queue.len * 2 + 65536, who, "SO_SNDBUFFORCE")) < 0)
		return ret;
	if ((size_t)rcv < 2 * ts->recv_queue.len + 65536 &&
	    (ret = set_int(sk, SOL_SOCKET, SO_RCVBUFFORCE, ts->recv_queue.len * 2 + 65536, who, "SO_RCVBUFFORCE")) < 0)
		return ret;
	return 0;
}

/* Write bytes into the queue selected in repair mode (or, q < 0, send them for real). */
static int write_queue(int sk, int q, const uint8_t *data, size_t len, const char *who)
{
	int ret = q >= 0 ? repair_queue(sk, q, who) : 0;

	for (size_t off = 0; !ret && off < len;) {
		ssize_t n = send(sk, data + off, min_t(size_t, len - off, 65536), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			return log_errno(n < 0 ? -errno : -EIO, "%s: can't queue %zu bytes of its %s queue again",
					 who, len - off, q == TCP_RECV_QUEUE ? "receive" : "send");
		off += n;
	}
	return ret;
}

static int tcp_repair_options(int sk, const TcpStreamEntry *ts, const char *who)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, ts->mss };
	if (ts->options & TCPI_OPT_WSCALE)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, ts->snd_wscale | ts->rcv_wscale << 16 };
	if (ts->options & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (ts->options & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])) < 0)
		return log_errno(-errno, "%s: TCP_REPAIR_OPTIONS", who);
	if ((ts->options & TCPI_OPT_TIMESTAMPS) &&
	    setsockopt(sk, IPPROTO_TCP, TCP_TIMESTAMP, &ts->timestamp, sizeof(ts->timestamp)) < 0)
		return log_errno(-errno, "%s: TCP_TIMESTAMP", who);
	return 0;
}

static int tcp_repair_window(int sk, const TcpStreamEntry *ts, const char *who)
{
	uint32_t rcv_nxt = ts->recv_seq + ts->recv_queue.len;
	struct tcp_repair_window w = { .snd_wl1 = ts->snd_wl1, .snd_wnd = ts->snd_wnd,
				       .max_window = ts->max_window, .rcv_wnd = ts->rcv_wnd,
				       .rcv_wup = ts->rcv_wup };

	/* The peer's FIN is not in rcv_nxt: keep the window inside what the kernel accepts. */
	if ((int32_t)(w.rcv_wup - rcv_nxt) > 0)
		w.rcv_wup = rcv_nxt;
	if ((int32_t)(w.snd_wl1 - (rcv_nxt + w.rcv_wnd)) > 0)
		w.snd_wl1 = rcv_nxt;
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
		return log_errno(-errno, "%s: TCP_REPAIR_WINDOW", who);
	return 0;
}

static void repair_mss_hint(int sk, uint32_t mss, const char *who)
{
	int v = mss;

	if ((v == 0 || v >= 88) && setsockopt(sk, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)) < 0)
		pr_debug("%s: TCP_MAXSEG %d: %s (segments may start small)\n", who, v, strerror(errno));
}

/* A connected socket rebuilt in repair mode; it leaves repair mode in sk_restore_finish(). */
static int tcp_repair_open(int sk, const InetSkEntry *ie, const TcpStreamEntry *ts, const char *who)
{
	int ret = repair(sk, 1, who);

	if (!ret)
		ret = sk_opts_restore(sk, ie->opts, ie->n_opts, SK_OPTS_EARLY, who);
	if (!ret)
		ret = make_buffer_room(sk, ts, who);
	if (!ret && (ret = repair_queue(sk, TCP_SEND_QUEUE, who)) == 0 &&
	    setsockopt(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &ts->send_seq, sizeof(ts->send_seq)) < 0)
		ret = log_errno(-errno, "%s: TCP_QUEUE_SEQ %u (send)", who, ts->send_seq);
	if (!ret && (ret = repair_queue(sk, TCP_RECV_QUEUE, who)) == 0 &&
	    setsockopt(sk, IPPROTO_TCP, TCP_QUEUE_SEQ, &ts->recv_seq, sizeof(ts->recv_seq)) < 0)
		ret = log_errno(-errno, "%s: TCP_QUEUE_SEQ %u (receive)", who, ts->recv_seq);
	/* The address may come to this host later (a virtual address that moves with the job). */
	if (!ret)
		ret = set_int(sk, IPPROTO_IP, IP_FREEBIND, 1, who, "IP_FREEBIND");
	if (!ret)
		ret = sk_bind(sk, ie, who);
	/*
	 * connect() sizes segments from the MSS it knows then, and the repair
	 * options do not size them again: give it the real one (TCP_MAXSEG takes
	 * at most 32767: loopback's 65495 becomes that), then forget it.
	 */
	if (!ret)
		repair_mss_hint(sk, min_t(uint32_t, ts->mss, 32767), who);
	if (!ret)
		ret = sk_connect(sk, ie, who);
	if (!ret)
		repair_mss_hint(sk, 0, who);
	if (!ret)
		ret = set_int(sk, IPPROTO_IP, IP_FREEBIND, saved_opt(ie, IPPROTO_IP, IP_FREEBIND), who, "IP_FREEBIND");
	if (!ret)
		ret = tcp_repair_options(sk, ts, who);
	if (!ret)
		ret = write_queue(sk, TCP_RECV_QUEUE, ts->recv_queue.data, ts->recv_queue.len, who);
	if (!ret)
		ret = write_queue(sk, TCP_SEND_QUEUE, ts->send_queue.data, ts->send_queue.len - ts->unsent, who);
	if (!ret)
		ret = tcp_repair_window(sk, ts, who);
	if (!ret)
		ret = repair_queue(sk, TCP_NO_QUEUE, who);
	return ret;
}

static const InetSkEntry *find_inet(struct rst_ctx *rc, uint64_t ino)
{
	for (size_t i = 0; rc->sk && i < rc->sk->n_inet; i++)
		if (rc->sk->inet[i]->ino == ino)
			return rc->sk->inet[i];
	return NULL;
}

/* Not connected: options, bind, listen. */
static int plain_open(int sk, const InetSkEntry *ie, const char *who)
{
	int ret = sk_opts_restore(sk, ie->opts, ie->n_opts, SK_OPTS_ALL, who);

	/* Restored connections of this port are bound already (in repair mode): share it. */
	if (!ret && ie->state == TCP_LISTEN)
		ret = set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1, who, "SO_REUSEADDR");
	if (!ret && (ie->src_port || !addr_any(ie->family, ie->src_addr.data)))
		ret = sk_bind(sk, ie, who);
	if (!ret && ie->state == TCP_LISTEN) {
		if (listen(sk, ie->has_backlog ? (int)ie->backlog : 128) < 0)
			return log_errno(-errno, "%s: listen", who);
		ret = set_int(sk, SOL_SOCKET, SO_REUSEADDR, saved_opt(ie, SOL_SOCKET, SO_REUSEADDR), who, "SO_REUSEADDR");
	}
	if (!ret && ie->proto == IPPROTO_UDP && ie->has_dst_port)
		ret = sk_connect(sk, ie, who);
	return ret;
}

static int inet_open(struct rst_ctx *rc, const FdEntry *e)
{
	const InetSkEntry *ie = find_inet(rc, e->ino);
	TcpStreamEntry *ts = NULL;
	struct rst_sk *rs = rc->sk;
	_cleanup_close_ int sk = -1;
	char who[160];
	int ret;

	if (!ie) {
		pr_err("fd %u: socket %" PRIu64 " is not in inetsk.img\n", e->fd, e->ino);
		return -ENOENT;
	}
	rst_who(who, sizeof(who), e, ie);
	if (ie->has_stream_id &&
	    (ret = img_read_one(rc->dirfd, rc->dir, IMG_TCPSTREAM, ie->stream_id, &tcp_stream_entry__descriptor,
				(ProtobufCMessage **)&ts)) < 0)
		return ret;
	if (ts && ts->unsent > ts->send_queue.len) {
		pr_err("%s: tcp-stream-%u.img: %u unsent bytes in a send queue of %zu\n", who, ie->stream_id,
		       ts->unsent, ts->send_queue.len);
		img_free_msg(&ts->base);
		return -EINVAL;
	}
	sk = socket(ie->family, ie->type | SOCK_CLOEXEC, ie->proto);
	if (sk < 0) {
		img_free_msg(ts ? &ts->base : NULL);
		return log_errno(-errno, "%s: socket", who);
	}
	rs->open = xrealloc(rs->open, (rs->nr_open + 1) * sizeof(*rs->open));
	rs->open[rs->nr_open++] = (struct rst_sk_open){ e->file_id, (InetSkEntry *)ie, ts, e->flags, e->fd };
	if (ts && !ie->reconnect)
		ret = tcp_repair_open(sk, ie, ts, who);
	else if (ts)	/* connected again in sk_restore_finish() */
		ret = sk_opts_restore(sk, ie->opts, ie->n_opts, SK_OPTS_EARLY, who) ?: sk_bind(sk, ie, who);
	else
		ret = plain_open(sk, ie, who);
	if (!ret && !ts && ie->shut_rd && shutdown(sk, SHUT_RD) < 0)
		ret = log_errno(-errno, "%s: shutdown(SHUT_RD)", who);
	if (!ret && !ts && (e->flags & O_NONBLOCK) && fcntl(sk, F_SETFL, O_NONBLOCK) < 0)
		ret = log_errno(-errno, "%s: F_SETFL O_NONBLOCK", who);
	return ret < 0 ? ret : TAKE_FD(sk);
}

/* SOCK_DESTROY one socket found by INET_DIAG. */
static int diag_destroy(const struct diag_row *r)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DESTROY, .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK },
		.r = { .sdiag_family = r->family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = 1U << r->state,
		       .id = { .idiag_sport = htons(r->sport), .idiag_dport = htons(r->dport), .idiag_if = r->ifindex,
			       .idiag_cookie = { r->cookie[0], r->cookie[1] } } },
	};
	struct { struct nlmsghdr h; struct nlmsgerr e; } ack;
	_cleanup_close_ int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	char a[64], b[64];

	memcpy(req.r.id.idiag_src, r->src, 16);
	memcpy(req.r.id.idiag_dst, r->dst, 16);
	netlock_fmt(a, sizeof(a), r->family, r->src, r->sport);
	netlock_fmt(b, sizeof(b), r->family, r->dst, r->dport);
	if (nl < 0 || send(nl, &req, sizeof(req), 0) < 0 || recv(nl, &ack, sizeof(ack), 0) < (ssize_t)sizeof(ack))
		return log_errno(-errno, "SOCK_DESTROY %s - %s", a, b);
	if (ack.h.nlmsg_type == NLMSG_ERROR && ack.e.error)
		return log_errno(ack.e.error, "SOCK_DESTROY %s - %s (%s)", a, b, state_name(r->state));
	pr_info("removed the leftover %s - %s (%s) of the dumped tree\n", a, b, state_name(r->state));
	return 0;
}

static bool binds_same(const InetSkEntry *ie, const struct diag_row *r)
{
	int fam;
	uint8_t want[16];

	wire_addr(ie->family, ie->src_addr.data, &fam, want);
	if (r->sport != ie->src_port || !ie->src_port)
		return false;
	if (addr_any(ie->family, ie->src_addr.data))
		return true;
	return r->family == fam ? !memcmp(r->src, want, 16) : false;
}

/*
 * A tree killed without its dump (a node failure, SIGKILL) left its closed
 * connections behind: TIME_WAIT and orphans finishing their close hold the
 * ports and 4-tuples the restored sockets need. They are the dead
 * incarnation of what is restored: they go (SOCK_DESTROY).
 */
static int tcp_clear_leftovers(struct rst_sk *rs)
{
	struct sk_seen tmp = { 0 };
	bool any = false;
	int ret;

	for (size_t i = 0; i < rs->n_inet; i++)
		any = any || (rs->inet[i]->proto == IPPROTO_TCP && rs->inet[i]->src_port);
	if (!any)
		return 0;
	/* In the namespace crtool is in now: the tree's, when it has its own. */
	if ((ret = diag_dump_tcp(&tmp, AF_INET, getpid())) < 0 ||
	    (ret = diag_dump_tcp(&tmp, AF_INET6, getpid())) < 0)
		goto out;
	for (int k = 0; k < tmp.nr_rows && !ret; k++) {
		const struct diag_row *r = &tmp.rows[k];

		if (r->ino || r->state == TCP_LISTEN || r->state == TCP_SYN_RECV)
			continue;
		for (size_t i = 0; i < rs->n_inet; i++)
			if (rs->inet[i]->proto == IPPROTO_TCP && binds_same(rs->inet[i], r)) {
				ret = diag_destroy(r);
				break;
			}
	}
out:
	free(tmp.rows);
	return ret;
}

/* Images are input: addresses must have the family's length. */
static bool inet_entry_valid(const InetSkEntry *ie)
{
	size_t alen = ie->family == AF_INET6 ? 16 : 4;

	if ((ie->family != AF_INET && ie->family != AF_INET6) || ie->src_addr.len != alen ||
	    (ie->has_dst_port && (!ie->has_dst_addr || ie->dst_addr.len != alen)))
		return false;
	for (size_t i = 0; i < ie->n_pending; i++)
		if (ie->pending[i]->src_addr.len != alen || ie->pending[i]->dst_addr.len != alen)
			return false;
	return true;
}

int sk_restore_load(struct rst_ctx *rc)
{
	struct rst_sk *rs = rc->sk = xzalloc(sizeof(*rs));
	struct img *img;
	ProtobufCMessage *m;
	int ret;

	for (int kind = IMG_INETSK; kind <= IMG_NETLINKSK; kind++) {
		char path[PATH_MAX_LEN];

		snprintf(path, sizeof(path), "%s/%s", rc->dir, img_kinds[kind].name);
		if (access(path, F_OK) < 0)
			continue;	/* no socket of this kind */
		img = img_open_read(rc->dirfd, rc->dir, kind, 0);
		if (!img)
			return -EIO;
		while ((ret = img_read_msg(img, img_kinds[kind].desc, &m)) > 0) {
			if (kind == IMG_INETSK && !inet_entry_valid((InetSkEntry *)m)) {
				pr_err("%s: socket %" PRIu64 ": bad family or address length\n", img->path,
				       ((InetSkEntry *)m)->ino);
				img_free_msg(m);
				ret = -EINVAL;
				break;
			}
			if (kind == IMG_INETSK) {
				rs->inet = xrealloc(rs->inet, (rs->n_inet + 1) * sizeof(*rs->inet));
				rs->inet[rs->n_inet++] = (InetSkEntry *)m;
			} else {
				rs->nl = xrealloc(rs->nl, (rs->n_nl + 1) * sizeof(*rs->nl));
				rs->nl[rs->n_nl++] = (NetlinkSkEntry *)m;
			}
		}
		img_abort(img);
		if (ret < 0)
			return ret;
	}
	return tcp_clear_leftovers(rs);
}

static int our_fd(struct rst_ctx *rc, uint32_t id)
{
	for (int i = 0; i < rc->nr_files; i++)
		if (rc->files[i].id == id)
			return rc->files[i].fd;
	return -1;
}

static void conn_of(const InetSkEntry *ie, struct netlock_conn *c)
{
	memset(c, 0, sizeof(*c));
	wire_addr(ie->family, ie->src_addr.data, &c->family, c->src);
	wire_addr(ie->family, ie->dst_addr.data, &c->family, c->dst);
	c->sport = ie->src_port;
	c->dport = ie->dst_port;
}

/* After repair mode: what was never sent, the FIN, the options, O_NONBLOCK. */
static int tcp_finish_one(int sk, const struct rst_sk_open *o, const char *who)
{
	const TcpStreamEntry *ts = o->ts;
	const InetSkEntry *ie = o->ie;
	size_t from = ie->reconnect ? 0 : ts->send_queue.len - ts->unsent;
	int ret = ie->reconnect ? sk_connect(sk, ie, who) : 0;

	if (!ret)
		ret = write_queue(sk, -1, ts->send_queue.data + from, ts->send_queue.len - from, who);
	if (!ret && ts->fin_sent && shutdown(sk, SHUT_WR) < 0)
		ret = log_errno(-errno, "%s: shutdown(SHUT_WR)", who);
	if (!ret && ie->shut_rd && !ts->fin_received && shutdown(sk, SHUT_RD) < 0)
		ret = log_errno(-errno, "%s: shutdown(SHUT_RD)", who);
	if (!ret)
		ret = sk_opts_restore(sk, ie->opts, ie->n_opts, SK_OPTS_LATE, who);
	if (!ret && (o->flags & O_NONBLOCK) && fcntl(sk, F_SETFL, O_NONBLOCK) < 0)
		ret = log_errno(-errno, "%s: F_SETFL O_NONBLOCK", who);
	return ret;
}

int sk_restore_finish(struct rst_ctx *rc)
{
	struct rst_sk *rs = rc->sk;
	struct netlock_conn *conns;
	int n = 0, ret = 0;

	if (!rs || !rs->nr_open)
		return 0;
	conns = xzalloc(rs->nr_open * sizeof(*conns));
	for (int i = 0; i < rs->nr_open && !ret; i++) {
		const struct rst_sk_open *o = &rs->open[i];

		if (!o->ts)
			continue;
		conn_of(o->ie, &conns[n++]);
		if (!o->ie->reconnect)
			ret = repair(our_fd(rc, o->file_id), 0, "restored TCP connection");
	}
	/* Repair mode left everywhere: the connections may talk again. */
	netlock_unlock(conns, n);
	free(conns);
	for (int i = 0; i < rs->nr_open && !ret; i++) {
		const struct rst_sk_open *o = &rs->open[i];
		char who[160];
		FdEntry e = { .fd = o->fd };

		if (!o->ts)
			continue;
		rst_who(who, sizeof(who), &e, o->ie);
		ret = tcp_finish_one(our_fd(rc, o->file_id), o, who);
	}
	return ret;
}

void sk_restore_release(struct rst_ctx *rc)
{
	struct rst_sk *rs = rc->sk;

	if (!rs)
		return;
	for (size_t i = 0; i < rs->n_inet; i++)
		img_free_msg(&rs->inet[i]->base);
	for (size_t i = 0; i < rs->n_nl; i++)
		img_free_msg(&rs->nl[i]->base);
	for (int i = 0; i < rs->nr_open; i++)
		img_free_msg(rs->open[i].ts ? &rs->open[i].ts->base : NULL);
	free(rs->inet);
	free(rs->nl);
	free(rs->open);
	free(rs);
	rc->sk = NULL;
}

static int netlink_open_fd(struct rst_ctx *rc, const FdEntry *e)
{
	struct rst_sk *rs = rc->sk;
	char who[64];
	int sk;

	snprintf(who, sizeof(who), "fd %u (netlink socket)", e->fd);
	for (size_t i = 0; rs && i < rs->n_nl; i++) {
		if (rs->nl[i]->ino != e->ino)
			continue;
		sk = netlink_open(rs->nl[i], who);
		if (sk >= 0 && (e->flags & O_NONBLOCK) && fcntl(sk, F_SETFL, O_NONBLOCK) < 0) {
			int err = log_errno(-errno, "%s: F_SETFL O_NONBLOCK", who);
			close(sk);
			return err;
		}
		return sk;
	}
	pr_err("%s: socket %" PRIu64 " is not in netlinksk.img\n", who, e->ino);
	return -ENOENT;
}

const struct fd_ops inet_ops = { FD_KIND__FD_INETSK, "inet socket", inet_dump, inet_open, NULL };
const struct fd_ops netlink_ops = { FD_KIND__FD_NETLINKSK, "netlink socket", inet_dump, netlink_open_fd, NULL };

/* ---------------------------------------------------------------- options */

enum { OPT_INT, OPT_BUF, OPT_LINGER, OPT_TIMEO };

static const struct sk_opt_desc {
	int level, name, family, proto, kind;
	const char *what;
	bool early;			/* only before bind(): set before a connection is rebuilt */
} sk_opt_table[] = {
	{ SOL_SOCKET, SO_REUSEADDR, 0, 0, OPT_INT, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_REUSEPORT, 0, 0, OPT_INT, "SO_REUSEPORT", true },
	{ SOL_SOCKET, SO_KEEPALIVE, 0, 0, OPT_INT, "SO_KEEPALIVE" },
	{ SOL_SOCKET, SO_BROADCAST, 0, 0, OPT_INT, "SO_BROADCAST" },
	{ SOL_SOCKET, SO_PRIORITY, 0, 0, OPT_INT, "SO_PRIORITY" },
	{ SOL_SOCKET, SO_RCVLOWAT, 0, 0, OPT_INT, "SO_RCVLOWAT" },
	{ SOL_SOCKET, SO_MARK, 0, 0, OPT_INT, "SO_MARK" },
	{ SOL_SOCKET, SO_OOBINLINE, 0, 0, OPT_INT, "SO_OOBINLINE" },
	{ SOL_SOCKET, SO_PASSCRED, 0, 0, OPT_INT, "SO_PASSCRED" },
	{ SOL_SOCKET, SO_SNDBUF, 0, 0, OPT_BUF, "SO_SNDBUF" },
	{ SOL_SOCKET, SO_RCVBUF, 0, 0, OPT_BUF, "SO_RCVBUF" },
	{ SOL_SOCKET, SO_LINGER, 0, 0, OPT_LINGER, "SO_LINGER" },
	{ SOL_SOCKET, SO_RCVTIMEO, 0, 0, OPT_TIMEO, "SO_RCVTIMEO" },
	{ SOL_SOCKET, SO_SNDTIMEO, 0, 0, OPT_TIMEO, "SO_SNDTIMEO" },
	{ IPPROTO_TCP, TCP_NODELAY, 0, IPPROTO_TCP, OPT_INT, "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_CORK, 0, IPPROTO_TCP, OPT_INT, "TCP_CORK" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, 0, IPPROTO_TCP, OPT_INT, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, 0, IPPROTO_TCP, OPT_INT, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, 0, IPPROTO_TCP, OPT_INT, "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, 0, IPPROTO_TCP, OPT_INT, "TCP_USER_TIMEOUT" },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0, IPPROTO_TCP, OPT_INT, "TCP_NOTSENT_LOWAT" },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, IPPROTO_TCP, OPT_INT, "TCP_DEFER_ACCEPT" },
	{ IPPROTO_TCP, TCP_QUICKACK, 0, IPPROTO_TCP, OPT_INT, "TCP_QUICKACK" },
	{ IPPROTO_IP, IP_TOS, AF_INET, 0, OPT_INT, "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, AF_INET, 0, OPT_INT, "IP_TTL" },
	{ IPPROTO_IP, IP_FREEBIND, 0, 0, OPT_INT, "IP_FREEBIND", true },
	{ IPPROTO_IP, IP_PKTINFO, AF_INET, IPPROTO_UDP, OPT_INT, "IP_PKTINFO" },
	{ IPPROTO_IP, IP_RECVERR, AF_INET, 0, OPT_INT, "IP_RECVERR" },
	{ IPPROTO_IPV6, IPV6_V6ONLY, AF_INET6, 0, OPT_INT, "IPV6_V6ONLY", true },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, AF_INET6, 0, OPT_INT, "IPV6_UNICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_TCLASS, AF_INET6, 0, OPT_INT, "IPV6_TCLASS" },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, AF_INET6, IPPROTO_UDP, OPT_INT, "IPV6_RECVPKTINFO" },
	{ IPPROTO_IPV6, IPV6_RECVERR, AF_INET6, 0, OPT_INT, "IPV6_RECVERR" },
};

static int opt_get(int sk, const struct sk_opt_desc *d, int64_t *v)
{
	union { int i; struct linger l; struct timeval t; } u;
	socklen_t len = sizeof(u);

	memset(&u, 0, sizeof(u));
	if (getsockopt(sk, d->level, d->name, &u, &len) < 0)
		return -errno;
	switch (d->kind) {
	case OPT_LINGER: *v = (int64_t)u.l.l_onoff << 32 | (uint32_t)u.l.l_linger; break;
	case OPT_TIMEO: *v = (int64_t)u.t.tv_sec * 1000000 + u.t.tv_usec; break;
	default: *v = u.i;
	}
	return 0;
}

static const struct sk_opt_desc *opt_desc(int level, int name)
{
	for (size_t i = 0; i < ARRAY_SIZE(sk_opt_table); i++)
		if (sk_opt_table[i].level == level && sk_opt_table[i].name == name)
			return &sk_opt_table[i];
	return NULL;
}

/* Only what differs from a new socket of the same kind is saved. */
int sk_opts_dump(int sk, int family, int type, int proto, SkOpt ***opts, size_t *n, const char *who)
{
	_cleanup_close_ int fresh = socket(family, type | SOCK_CLOEXEC, proto);

	if (fresh < 0)
		return log_errno(-errno, "%s: can't open a socket to compare options with", who);
	for (size_t i = 0; i < ARRAY_SIZE(sk_opt_table); i++) {
		const struct sk_opt_desc *d = &sk_opt_table[i];
		int64_t v, def;
		SkOpt *o;

		if ((d->family && d->family != family) || (d->proto && d->proto != proto) ||
		    (family == AF_NETLINK && d->level != SOL_SOCKET))
			continue;
		if (opt_get(sk, d, &v) < 0 || (opt_get(fresh, d, &def) == 0 && v == def))
			continue;
		o = xmalloc(sizeof(*o));
		sk_opt__init(o);
		o->level = d->level;
		o->name = d->name;
		o->value = v;
		*opts = xrealloc(*opts, (*n + 1) * sizeof(**opts));
		(*opts)[(*n)++] = o;
	}
	return 0;
}

int sk_opts_restore(int sk, SkOpt *const *opts, size_t n, enum sk_opts_when when, const char *who)
{
	for (size_t i = 0; i < n; i++) {
		const struct sk_opt_desc *d = opt_desc(opts[i]->level, opts[i]->name);
		int64_t v = opts[i]->value;
		union { int i; struct linger l; struct timeval t; } u;
		socklen_t len = sizeof(int);
		int level, name;

		if (!d) {
			pr_err("%s: unknown socket option %d/%d in the image\n", who, opts[i]->level, opts[i]->name);
			return -EINVAL;
		}
		if ((when == SK_OPTS_EARLY && !d->early) || (when == SK_OPTS_LATE && d->early))
			continue;
		level = d->level;
		name = d->name;
		memset(&u, 0, sizeof(u));
		u.i = (int)v;
		if (d->kind == OPT_BUF) {
			/* The kernel doubles what it is given; FORCE: above the sysctl limits too. */
			u.i = (int)(v / 2);
			name = name == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
		} else if (d->kind == OPT_LINGER) {
			u.l.l_onoff = (int)(v >> 32);
			u.l.l_linger = (int)(uint32_t)v;
			len = sizeof(u.l);
		} else if (d->kind == OPT_TIMEO) {
			u.t.tv_sec = v / 1000000;
			u.t.tv_usec = v % 1000000;
			len = sizeof(u.t);
		}
		if (setsockopt(sk, level, name, &u, len) < 0)
			return log_errno(-errno, "%s: setsockopt(%s, %lld)", who, d->what, (long long)v);
	}
	return 0;
}
