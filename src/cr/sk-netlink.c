#define LOG_PREFIX "netlink: "
/*
 * Netlink sockets: the protocol, the port id bound, the multicast groups
 * joined and the connected destination. Restore binds the same port id when
 * it is free and lets the kernel choose one otherwise (a port id is only a
 * name; the kernel answers requests to whatever the socket is bound to).
 * Messages queued in the socket are not saved: they were answers or
 * notifications the process had not read yet, and they are dropped.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "log.h"
#include "sk-inet.h"
#include "util.h"

int netlink_dump_one(int sk, uint64_t ino, NetlinkSkEntry **out, const char *who)
{
	NetlinkSkEntry *ne = *out = xmalloc(sizeof(*ne));
	struct sockaddr_nl a;
	socklen_t len = sizeof(a);
	uint32_t groups[64];
	int v;

	netlink_sk_entry__init(ne);
	ne->ino = ino;
	if (getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0)
		return log_errno(-errno, "%s: getsockopt(SO_PROTOCOL)", who);
	ne->protocol = v;
	len = sizeof(v);
	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return log_errno(-errno, "%s: getsockopt(SO_TYPE)", who);
	ne->type = v;
	len = sizeof(a);
	if (getsockname(sk, (struct sockaddr *)&a, &len) < 0)
		return log_errno(-errno, "%s: getsockname", who);
	ne->portid = a.nl_pid;
	len = sizeof(groups);
	if (getsockopt(sk, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len) < 0)
		return log_errno(-errno, "%s: getsockopt(NETLINK_LIST_MEMBERSHIPS)", who);
	len = min_t(socklen_t, len, sizeof(groups));
	while (len >= 4 && !groups[len / 4 - 1])
		len -= 4;
	ne->n_groups = len / 4;
	ne->groups = xmalloc(len + 4);
	memcpy(ne->groups, groups, len);
	len = sizeof(a);
	if (getpeername(sk, (struct sockaddr *)&a, &len) == 0 && (a.nl_pid || a.nl_groups)) {
		ne->has_dst_portid = ne->has_dst_group = true;
		ne->dst_portid = a.nl_pid;
		ne->dst_group = a.nl_groups;
	}
	return sk_opts_dump(sk, AF_NETLINK, ne->type, ne->protocol, &ne->opts, &ne->n_opts, who);
}

static int netlink_bind(int sk, const NetlinkSkEntry *ne, const char *who)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = ne->portid };

	if (!ne->portid)
		return 0;	/* never bound: autobinds on first use */
	if (bind(sk, (struct sockaddr *)&a, sizeof(a)) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return log_errno(-errno, "%s: can't bind port id %u", who, ne->portid);
	a.nl_pid = 0;
	if (bind(sk, (struct sockaddr *)&a, sizeof(a)) < 0)
		return log_errno(-errno, "%s: can't bind", who);
	pr_info("%s: port id %u is taken, the kernel chose another\n", who, ne->portid);
	return 0;
}

int netlink_open(const NetlinkSkEntry *ne, const char *who)
{
	_cleanup_close_ int sk = socket(AF_NETLINK, ne->type | SOCK_CLOEXEC, ne->protocol);
	int ret;

	if (sk < 0)
		return log_errno(-errno, "%s: socket(AF_NETLINK, %u, %u)", who, ne->type, ne->protocol);
	if ((ret = sk_opts_restore(sk, ne->opts, ne->n_opts, SK_OPTS_ALL, who)) < 0 || (ret = netlink_bind(sk, ne, who)) < 0)
		return ret;
	for (size_t w = 0; w < ne->n_groups; w++)
		for (int b = 0; b < 32; b++) {
			int g = w * 32 + b + 1;

			if (!(ne->groups[w] & (1u << b)))
				continue;
			if (setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
				return log_errno(-errno, "%s: can't join group %d", who, g);
		}
	if (ne->has_dst_portid) {
		struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = ne->dst_portid,
					 .nl_groups = ne->dst_group };

		if (connect(sk, (struct sockaddr *)&a, sizeof(a)) < 0)
			return log_errno(-errno, "%s: can't connect to port id %u", who, ne->dst_portid);
	}
	return TAKE_FD(sk);
}
