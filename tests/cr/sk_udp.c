/*
 * UDP sockets over 127.0.0.1 and ::1 (when the host has IPv6 loopback): a
 * bound one, one bound and connected to it, one never bound, with options
 * (SO_REUSEADDR, SO_BROADCAST, SO_RCVBUF, IP_TOS, IPV6_V6ONLY) and
 * O_NONBLOCK. After SIGTERM the addresses, options and flags must be the
 * same, and numbered datagrams must go both ways between the pairs.
 * Datagrams still queued at checkpoint time are not kept (crtool(8)), so
 * none is left queued before the checkpoint.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crtest.h"

enum { B4, C4, B6, C6, FREE, NR };
static const char *const names[NR] = { "bound4", "conn4", "bound6", "conn6", "unbound" };

struct state {
	struct sockaddr_storage self, peer;
	socklen_t self_len, peer_len;
	int reuse, bcast, rcvbuf, tos, v6only, flags;
};

static int fd[NR] = { -1, -1, -1, -1, -1 };
static struct state rec[NR];

static void record(int i, struct state *s)
{
	socklen_t l;

	memset(s, 0, sizeof(*s));
	s->self_len = sizeof(s->self);
	getsockname(fd[i], (struct sockaddr *)&s->self, &s->self_len);
	s->peer_len = sizeof(s->peer);
	if (getpeername(fd[i], (struct sockaddr *)&s->peer, &s->peer_len) < 0)
		s->peer_len = 0;
	l = sizeof(int);
	getsockopt(fd[i], SOL_SOCKET, SO_REUSEADDR, &s->reuse, &l);
	getsockopt(fd[i], SOL_SOCKET, SO_BROADCAST, &s->bcast, &l);
	getsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &s->rcvbuf, &l);
	if (i == B6 || i == C6)
		getsockopt(fd[i], IPPROTO_IPV6, IPV6_V6ONLY, &s->v6only, &l);
	else
		getsockopt(fd[i], IPPROTO_IP, IP_TOS, &s->tos, &l);
	s->flags = fcntl(fd[i], F_GETFL);
}

static void compare(int i)
{
	struct state now;

	record(i, &now);
	CR_CHECK(now.self_len == rec[i].self_len && !memcmp(&now.self, &rec[i].self, now.self_len),
		 "%s: local address changed", names[i]);
	CR_CHECK(now.peer_len == rec[i].peer_len && !memcmp(&now.peer, &rec[i].peer, now.peer_len),
		 "%s: peer address changed", names[i]);
	CR_EXPECT_EQ("SO_REUSEADDR", now.reuse, rec[i].reuse);
	CR_EXPECT_EQ("SO_BROADCAST", now.bcast, rec[i].bcast);
	CR_EXPECT_EQ("SO_RCVBUF", now.rcvbuf, rec[i].rcvbuf);
	CR_EXPECT_EQ("IP_TOS", now.tos, rec[i].tos);
	CR_EXPECT_EQ("IPV6_V6ONLY", now.v6only, rec[i].v6only);
	CR_EXPECT_EQ("file status flags", now.flags, rec[i].flags);
}

static int make_pair(int b, int c, int family)
{
	struct sockaddr_storage a = { .ss_family = family };
	socklen_t l = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int one = 1, tos = 0x10, buf = 50000;

	if (family == AF_INET6)
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd[b] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	fd[c] = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd[b] < 0 || fd[c] < 0)
		return -1;
	setsockopt(fd[b], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd[b], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (family == AF_INET6)
		setsockopt(fd[b], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	else
		setsockopt(fd[c], IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	setsockopt(fd[c], SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	if (bind(fd[b], (struct sockaddr *)&a, l) < 0 || getsockname(fd[b], (struct sockaddr *)&a, &l) < 0 ||
	    connect(fd[c], (struct sockaddr *)&a, l) < 0)
		return -1;
	return 0;
}

static void exchange(int b, int c)
{
	for (uint32_t n = 0; n < 100; n++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		struct pollfd p = { .fd = fd[b], .events = POLLIN };
		uint32_t got = ~0U;

		if (send(fd[c], &n, sizeof(n), 0) != sizeof(n)) {
			cr_fail("%s: send %u: %s", names[c], n, strerror(errno));
			return;
		}
		if (poll(&p, 1, 5000) != 1 || recvfrom(fd[b], &got, sizeof(got), 0, (struct sockaddr *)&from, &fl) != 4 ||
		    got != n) {
			cr_fail("%s: datagram %u not received (got %u)", names[b], n, got);
			return;
		}
		n = ~n;	/* and back, to the connected one's address */
		if (sendto(fd[b], &n, sizeof(n), 0, (struct sockaddr *)&from, fl) != sizeof(n)) {
			cr_fail("%s: sendto: %s", names[b], strerror(errno));
			return;
		}
		p.fd = fd[c];
		if (poll(&p, 1, 5000) != 1 || recv(fd[c], &got, sizeof(got), 0) != 4 || got != n) {
			cr_fail("%s: answer %u not received", names[c], ~n);
			return;
		}
		n = ~n;
	}
}

int main(int argc, char **argv)
{
	bool v6;

	cr_init(argc, argv);
	if (make_pair(B4, C4, AF_INET) < 0)
		cr_die("IPv4 UDP pair: %s", strerror(errno));
	v6 = make_pair(B6, C6, AF_INET6) == 0;
	if (!v6) {
		cr_log("no IPv6 loopback: IPv4 only");
		close(fd[B6]);
		close(fd[C6]);
		fd[B6] = fd[C6] = -1;
	}
	fd[FREE] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd[FREE] < 0)
		cr_die("socket: %s", strerror(errno));
	exchange(B4, C4);
	if (v6)
		exchange(B6, C6);
	for (int i = 0; i < NR; i++)
		if (fd[i] >= 0)
			record(i, &rec[i]);
	cr_ready();
	cr_wait_term();
	for (int i = 0; i < NR; i++)
		if (fd[i] >= 0)
			compare(i);
	exchange(B4, C4);
	if (v6)
		exchange(B6, C6);
	return cr_report();
}
