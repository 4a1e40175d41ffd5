/*
 * TCP connections with both ends in the tree (a parent and its child),
 * over 127.0.0.1 and ::1 when the host has IPv6 loopback:
 *  - "live": both sides stream sequence-numbered words all the time, also
 *    while the tree is dumped, and check each word as it arrives;
 *  - "full": both sides filled it until the kernel took no more (send
 *    queues with unsent and unacknowledged bytes, full receive queues);
 *  - "half": the parent sent some words and shut down its side (FIN_WAIT2 /
 *    CLOSE_WAIT, data and the FIN not read yet);
 *  - "eof": the child shut down its side and the parent read up to the EOF.
 * After SIGTERM every stream is run to its end both ways: no byte may be
 * lost or repeated, each side must see the other's end word and EOF. The
 * addresses, options (TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE, SO_LINGER,
 * SO_SNDBUF) and O_NONBLOCK must be the same, and the listener must still
 * accept a new connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crtest.h"
#include "skstream.h"

enum { LIVE, FULL, HALF, EOFC, NR_CONN };
static const char *const names[NR_CONN] = { "live", "full", "half", "eof" };

struct sk_state {
	struct sockaddr_storage self, peer;
	int nodelay, keepalive, keepidle, sndbuf, flags, v6only;
	struct linger linger;
};

static struct sks st[NR_CONN];
static struct sk_state rec[NR_CONN];
static int lsk[2] = { -1, -1 };		/* listeners: IPv4, IPv6 */
static struct sockaddr_storage laddr[2];
static bool have_v6;

static socklen_t addr_len(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void record(int fd, struct sk_state *s)
{
	socklen_t l;

	memset(s, 0, sizeof(*s));
	l = sizeof(s->self);
	getsockname(fd, (struct sockaddr *)&s->self, &l);
	l = sizeof(s->peer);
	getpeername(fd, (struct sockaddr *)&s->peer, &l);
	l = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &s->nodelay, &l);
	l = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &s->keepalive, &l);
	l = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &s->keepidle, &l);
	l = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, &l);
	l = sizeof(s->linger);
	getsockopt(fd, SOL_SOCKET, SO_LINGER, &s->linger, &l);
	l = sizeof(int);
	getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &s->v6only, &l);	/* fails on IPv4: stays 0 */
	s->flags = fcntl(fd, F_GETFL);
}

static void compare(int i)
{
	struct sk_state now;

	record(st[i].fd, &now);
	CR_CHECK(!memcmp(&now.self, &rec[i].self, addr_len(&rec[i].self)), "%s: local address changed", names[i]);
	if (memcmp(&now.peer, &rec[i].peer, addr_len(&rec[i].peer))) {
		char a[128] = "", b[128] = "";

		for (socklen_t k = 0; k < addr_len(&rec[i].peer); k++) {
			snprintf(a + 2 * k, 3, "%02x", ((uint8_t *)&rec[i].peer)[k]);
			snprintf(b + 2 * k, 3, "%02x", ((uint8_t *)&now.peer)[k]);
		}
		cr_fail("%s: peer address changed: was %s, now %s", names[i], a, b);
	}
	CR_EXPECT_EQ("TCP_NODELAY", now.nodelay, rec[i].nodelay);
	CR_EXPECT_EQ("SO_KEEPALIVE", now.keepalive, rec[i].keepalive);
	CR_EXPECT_EQ("TCP_KEEPIDLE", now.keepidle, rec[i].keepidle);
	CR_EXPECT_EQ("SO_LINGER on", now.linger.l_onoff, rec[i].linger.l_onoff);
	CR_EXPECT_EQ("SO_LINGER time", now.linger.l_linger, rec[i].linger.l_linger);
	CR_EXPECT_EQ("file status flags", now.flags, rec[i].flags);
	CR_EXPECT_EQ("IPV6_V6ONLY", now.v6only, rec[i].v6only);
	if (i != FULL)	/* the full one's buffers were auto-tuned; only a set size must hold */
		CR_EXPECT_EQ("SO_SNDBUF", now.sndbuf, rec[i].sndbuf);
}

static int listener(int family)
{
	struct sockaddr_storage a = { .ss_family = family };
	socklen_t l = sizeof(a);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (family == AF_INET6) {
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	} else {
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&laddr[family == AF_INET6], &l) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int family_of(int i)
{
	return (i == HALF || i == EOFC) && have_v6 ? 1 : 0;
}

static int dial(int i)
{
	const struct sockaddr_storage *a = &laddr[family_of(i)];
	int fd = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)a, addr_len(a)) < 0)
		cr_die("%s: connect: %s", names[i], strerror(errno));
	return fd;
}

static void set_opts(int i, bool child)
{
	int one = 1, idle = 77 + child;
	struct linger lg = { 1, 5 };
	int sz = 65536;

	if (i == LIVE)
		setsockopt(st[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (i == FULL) {
		setsockopt(st[i].fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(st[i].fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	}
	if (i == HALF) {
		setsockopt(st[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(st[i].fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	fcntl(st[i].fd, F_SETFL, O_NONBLOCK);
}

/* Streams the live connection until SIGTERM, at a modest pace. */
static void run_live(void)
{
	sigset_t mask;
	struct timespec ts = { 0, 2000000 };

	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	while (!cr_term_flag) {
		/* At EOF the socket stays readable: then only sleep, or SIGTERM never gets in. */
		struct pollfd p = { .fd = st[LIVE].fd, .events = st[LIVE].rd_done ? 0 : POLLIN };

		if (sks_write(&st[LIVE], 4096) < 0)
			cr_fail("live: send: %s", strerror(errno));
		ppoll(&p, 1, &ts, &mask);
		if (sks_read(&st[LIVE]) < 0)
			break;
	}
}

static void compare_all(void)
{
	for (int i = 0; i < NR_CONN; i++)
		compare(i);
}

/*
 * Streams run to their end. Once both FINs are through a socket is closed
 * and has no peer address any more: the parent compares before it sends
 * SIGTERM to the child, and ends "half" and "eof" only once the child has
 * ended "live" (after its own comparison).
 */
static void finish_all(bool parent)
{
	struct sks *first[] = { &st[LIVE], &st[FULL] }, *then[] = { &st[HALF], &st[EOFC] };
	struct sks *all[] = { &st[LIVE], &st[FULL], &st[HALF], &st[EOFC] };

	if (parent) {
		sks_finish(first, 2);
		sks_finish(then, 2);
	} else {
		sks_finish(all, 4);
	}
	cr_log("live: sent %llu, received %llu; full: sent %llu, received %llu",
	       (unsigned long long)st[LIVE].sent, (unsigned long long)st[LIVE].rcvd,
	       (unsigned long long)st[FULL].sent, (unsigned long long)st[FULL].rcvd);
}

static void child(void)
{
	for (int k = 0; k < 2; k++)
		if (lsk[k] >= 0)
			close(lsk[k]);
	for (int i = 0; i < NR_CONN; i++) {
		st[i] = (struct sks){ .name = names[i], .fd = dial(i) };
		set_opts(i, true);
	}
	if (sks_fill(&st[FULL]) < 0)
		cr_die("full: fill: %s", strerror(errno));
	/* eof: our side says everything now. */
	for (int k = 0; k < 100; k++)
		sks_write(&st[EOFC], 4096);
	sks_end(&st[EOFC]);
	while (!st[EOFC].wr_done)
		if (sks_write(&st[EOFC], 0) < 0)
			cr_die("eof: send: %s", strerror(errno));
	for (int i = 0; i < NR_CONN; i++)
		record(st[i].fd, &rec[i]);
	cr_child_ready();
	run_live();
	cr_check_fds();
	compare_all();
	finish_all(false);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	pid_t pid;
	int status;

	cr_init(argc, argv);
	lsk[0] = listener(AF_INET);
	if (lsk[0] < 0)
		cr_die("IPv4 loopback listener: %s", strerror(errno));
	lsk[1] = listener(AF_INET6);
	have_v6 = lsk[1] >= 0;
	if (!have_v6)
		cr_log("no IPv6 loopback: every connection over IPv4");
	pid = cr_spawn("child");
	if (pid == 0)
		child();
	for (int i = 0; i < NR_CONN; i++) {
		st[i] = (struct sks){ .name = names[i], .fd = accept4(lsk[family_of(i)], NULL, NULL, SOCK_CLOEXEC) };
		if (st[i].fd < 0)
			cr_die("%s: accept: %s", names[i], strerror(errno));
		set_opts(i, false);
	}
	if (sks_fill(&st[FULL]) < 0)
		cr_die("full: fill: %s", strerror(errno));
	/* half: some words, then our side is shut, nothing of it read yet. */
	for (int k = 0; k < 10; k++)
		sks_write(&st[HALF], 4096);
	sks_end(&st[HALF]);
	while (!st[HALF].wr_done)
		if (sks_write(&st[HALF], 0) < 0)
			cr_die("half: send: %s", strerror(errno));
	/* eof: read the child's words up to its FIN. */
	while (!st[EOFC].rd_done) {
		struct pollfd p = { .fd = st[EOFC].fd, .events = POLLIN };

		poll(&p, 1, 1000);
		if (sks_read(&st[EOFC]) < 0)
			cr_die("eof: bad data before the checkpoint");
	}
	for (int i = 0; i < NR_CONN; i++)
		record(st[i].fd, &rec[i]);
	cr_ready();
	run_live();
	compare_all();
	kill(pid, SIGTERM);
	cr_wait_term();
	finish_all(true);
	/* The listener still listens. */
	{
		int c = socket(laddr[0].ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), a;

		CR_CHECK(c >= 0 && connect(c, (struct sockaddr *)&laddr[0], addr_len(&laddr[0])) == 0,
			 "connect to the restored listener: %s", strerror(errno));
		a = accept4(lsk[0], NULL, NULL, SOCK_CLOEXEC);
		CR_CHECK(a >= 0, "accept on the restored listener: %s", strerror(errno));
		close(a);
		close(c);
	}
	if (cr_wait_pid(pid, 60000, &status) < 0)
		cr_fail("child did not exit");
	else
		CR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	return cr_report();
}
