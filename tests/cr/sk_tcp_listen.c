/*
 * Listening TCP sockets: one on 127.0.0.1 with three connections from the
 * child waiting in its accept queue (never accepted before the checkpoint),
 * one on ::1 (when the host has IPv6 loopback) with one waiting connection,
 * and one with an empty queue and options (SO_REUSEADDR, TCP_DEFER_ACCEPT
 * off, a backlog of 3). After SIGTERM the parent accepts every waiting
 * connection: each must come from one of the child's sockets (same
 * addresses), in the order they were made, and carry sequence-numbered data
 * both ways; every listener must still accept a new connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crtest.h"
#include "skstream.h"

#define NR_WAIT 4	/* three on the IPv4 listener, one on the IPv6 one */

static int lsk[3] = { -1, -1, -1 };
static struct sockaddr_storage laddr[3];
static int csk[NR_WAIT];
static struct sockaddr_storage *caddr;	/* the clients' own addresses, shared with the parent */
static bool have_v6;

static socklen_t addr_len(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int listener(int k, int family, int backlog)
{
	struct sockaddr_storage a = { .ss_family = family };
	socklen_t l = sizeof(a);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (k == 2)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, addr_len(&a)) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&laddr[k], &l) < 0) {
		close(fd);
		return -1;
	}
	lsk[k] = fd;
	return fd;
}

static int target(int i)
{
	return i == 3 && have_v6 ? 1 : 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	return ((const struct sockaddr_in *)a)->sin_port == ((const struct sockaddr_in *)b)->sin_port &&
	       ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

static void child(void)
{
	struct sks s[NR_WAIT], *v[NR_WAIT];
	char name[NR_WAIT][16];

	for (int k = 0; k < 3; k++)
		if (lsk[k] >= 0)
			close(lsk[k]);
	for (int i = 0; i < NR_WAIT; i++) {
		const struct sockaddr_storage *a = &laddr[target(i)];
		socklen_t l = sizeof(caddr[i]);

		csk[i] = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (csk[i] < 0 || connect(csk[i], (const struct sockaddr *)a, addr_len(a)) < 0 ||
		    getsockname(csk[i], (struct sockaddr *)&caddr[i], &l) < 0)
			cr_die("client %d: connect: %s", i, strerror(errno));
	}
	cr_child_ready();
	cr_wait_term();
	for (int i = 0; i < NR_WAIT; i++) {
		struct sockaddr_storage now;
		socklen_t l = sizeof(now);

		CR_CHECK(getsockname(csk[i], (struct sockaddr *)&now, &l) == 0 && same_addr(&now, &caddr[i]),
			 "client %d: local address changed", i);
		snprintf(name[i], sizeof(name[i]), "client%d", i);
		s[i] = (struct sks){ .name = name[i], .fd = csk[i] };
		for (int k = 0; k < 50; k++)
			sks_write(&s[i], 1000);
		v[i] = &s[i];
	}
	sks_finish(v, NR_WAIT);
	cr_child_exit();
}

/* A new connection to listener k is accepted. */
static void check_accepts(int k)
{
	int c = socket(laddr[k].ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), a;

	CR_CHECK(c >= 0 && connect(c, (struct sockaddr *)&laddr[k], addr_len(&laddr[k])) == 0,
		 "listener %d: connect: %s", k, strerror(errno));
	a = accept4(lsk[k], NULL, NULL, SOCK_CLOEXEC);
	CR_CHECK(a >= 0, "listener %d: accept: %s", k, strerror(errno));
	close(a);
	close(c);
}

int main(int argc, char **argv)
{
	struct sks s[NR_WAIT], *v[NR_WAIT];
	char name[NR_WAIT][16];
	int status, one = 0;
	pid_t pid;

	cr_init(argc, argv);
	if (listener(0, AF_INET, 5) < 0 || listener(2, AF_INET, 3) < 0)
		cr_die("IPv4 loopback listener: %s", strerror(errno));
	have_v6 = listener(1, AF_INET6, 2) >= 0;
	if (!have_v6)
		cr_log("no IPv6 loopback: every connection over IPv4");
	setsockopt(lsk[2], IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
	caddr = mmap(NULL, NR_WAIT * sizeof(*caddr), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (caddr == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	pid = cr_spawn("child");
	if (pid == 0)
		child();
	cr_ready();
	cr_wait_term();
	kill(pid, SIGTERM);
	for (int i = 0; i < NR_WAIT; i++) {
		struct sockaddr_storage peer;
		socklen_t l = sizeof(peer);
		int fd = accept4(lsk[target(i)], (struct sockaddr *)&peer, &l, SOCK_CLOEXEC);

		if (fd < 0) {
			cr_fail("waiting connection %d: accept: %s", i, strerror(errno));
			return cr_report();
		}
		snprintf(name[i], sizeof(name[i]), "server%d", i);
		s[i] = (struct sks){ .name = name[i], .fd = fd };
		v[i] = &s[i];
		CR_CHECK(same_addr(&peer, &caddr[i]), "waiting connection %d does not come from client %d", i, i);
		for (int k = 0; k < 50; k++)
			sks_write(&s[i], 1000);
	}
	sks_finish(v, NR_WAIT);
	for (int k = 0; k < 3; k++)
		if (lsk[k] >= 0)
			check_accepts(k);
	if (cr_wait_pid(pid, 60000, &status) < 0)
		cr_fail("child did not exit");
	else
		CR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %#x)", status);
	return cr_report();
}
