/*
 * Netlink sockets as libraries open them: a NETLINK_ROUTE socket bound by
 * the kernel (port id chosen at bind) and subscribed to link and address
 * groups (one through bind, one through NETLINK_ADD_MEMBERSHIP, above 32),
 * and one never bound, O_NONBLOCK. After SIGTERM the protocol, type, port id,
 * groups and flags must be the same, and an RTM_GETLINK dump must be
 * answered on each (the unbound one binds itself by sending).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "crtest.h"

#define NR 2
#define BIG_GROUP 33	/* RTNLGRP_IPV6_PREFIX + ... any group above 32 */

struct state {
	struct sockaddr_nl self;
	int proto, type, flags;
	uint32_t groups[4];
	socklen_t glen;
};

static int fd[NR];
static struct state rec[NR];

static void record(int i, struct state *s)
{
	socklen_t l = sizeof(s->self);

	memset(s, 0, sizeof(*s));
	getsockname(fd[i], (struct sockaddr *)&s->self, &l);
	l = sizeof(int);
	getsockopt(fd[i], SOL_SOCKET, SO_PROTOCOL, &s->proto, &l);
	getsockopt(fd[i], SOL_SOCKET, SO_TYPE, &s->type, &l);
	s->glen = sizeof(s->groups);
	getsockopt(fd[i], SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, s->groups, &s->glen);
	s->flags = fcntl(fd[i], F_GETFL);
}

static void compare(int i)
{
	struct state now;

	record(i, &now);
	CR_EXPECT_EQ("port id", now.self.nl_pid, rec[i].self.nl_pid);
	CR_EXPECT_EQ("groups (bind)", now.self.nl_groups, rec[i].self.nl_groups);
	CR_EXPECT_EQ("protocol", now.proto, rec[i].proto);
	CR_EXPECT_EQ("type", now.type, rec[i].type);
	CR_EXPECT_EQ("file status flags", now.flags, rec[i].flags);
	CR_CHECK(!memcmp(now.groups, rec[i].groups, sizeof(now.groups)), "socket %d: group memberships changed", i);
}

/* An RTM_GETLINK dump is answered up to NLMSG_DONE. */
static void dump_links(int i, uint32_t seq)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg m;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = seq } };
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	static char buf[65536] __attribute__((aligned(8)));

	if (sendto(fd[i], &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		cr_fail("socket %d: RTM_GETLINK: %s", i, strerror(errno));
		return;
	}
	for (;;) {
		struct pollfd p = { .fd = fd[i], .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) != 1) {
			cr_fail("socket %d: no answer to RTM_GETLINK", i);
			return;
		}
		n = recv(fd[i], buf, sizeof(buf), 0);
		if (n < 0) {
			cr_fail("socket %d: recv: %s", i, strerror(errno));
			return;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;	/* a notification of the groups */
			if (h->nlmsg_type == NLMSG_DONE)
				return;
			if (h->nlmsg_type == NLMSG_ERROR) {
				cr_fail("socket %d: RTM_GETLINK answered with an error", i);
				return;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR };
	int g = BIG_GROUP;

	cr_init(argc, argv);
	fd[0] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	fd[1] = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (fd[0] < 0 || fd[1] < 0 || bind(fd[0], (struct sockaddr *)&a, sizeof(a)) < 0)
		cr_die("netlink socket: %s", strerror(errno));
	if (setsockopt(fd[0], SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
		cr_die("NETLINK_ADD_MEMBERSHIP %d: %s", g, strerror(errno));
	dump_links(0, 1);
	for (int i = 0; i < NR; i++)
		record(i, &rec[i]);
	cr_ready();
	cr_wait_term();
	for (int i = 0; i < NR; i++)
		compare(i);
	dump_links(0, 2);
	dump_links(1, 3);
	return cr_report();
}
