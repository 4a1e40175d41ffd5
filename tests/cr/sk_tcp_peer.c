/*
 * Both ends of the sk_tcp_ext.sh test, one TCP connection over 127.0.0.1
 * streaming sequence-numbered words both ways (skstream.h):
 *   sk_tcp_peer OUTFILE server PORTFILE   listens, writes its port to
 *       PORTFILE, accepts one connection and streams until the client has
 *       ended its side, then ends its own; runs outside the dumped tree.
 *   sk_tcp_peer OUTFILE client PORT       the tree: connects, streams until
 *       SIGTERM, then ends its side and reads the server's to its end; it
 *       also holds an unlinked 64 KiB file (a dump can be made to fail late).
 * Each writes PASS or FAIL to its OUTFILE (crtest protocol).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crtest.h"
#include "skstream.h"

static struct sks s = { .name = "stream" };

/* One step of streaming: a little data out, whatever came in. */
static void step(const sigset_t *mask)
{
	struct timespec ts = { 0, 2000000 };
	struct pollfd p = { .fd = s.fd, .events = s.rd_done ? 0 : POLLIN };

	if (sks_write(&s, 4096) < 0)
		cr_fail("send: %s", strerror(errno));
	ppoll(&p, 1, &ts, mask);
	sks_read(&s);
}

static int server(const char *portfile)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sigset_t mask;
	char path[4096], tmp[4200], port[16];
	FILE *f;

	cr_set_note("server");
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, l) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &l) < 0)
		cr_die("listen: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s", portfile);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(port, sizeof(port), "%u\n", ntohs(a.sin_port));
	f = fopen(tmp, "we");
	if (!f || fputs(port, f) == EOF || fclose(f) == EOF || rename(tmp, path) < 0)
		cr_die("can't write %s", path);
	s.fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s.fd < 0)
		cr_die("accept: %s", strerror(errno));
	close(ls);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	while (!s.rd_done && !cr_term_flag && !cr_failures())
		step(&mask);
	if (cr_term_flag)
		cr_fail("killed before the client ended (received %llu bytes)", (unsigned long long)s.rcvd);
	{
		struct sks *v[] = { &s };
		sks_finish(v, 1);
	}
	cr_log("server: sent %llu, received %llu", (unsigned long long)s.sent, (unsigned long long)s.rcvd);
	return cr_report();
}

static int client(const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(atoi(port)) };
	sigset_t mask;
	struct sks *v[] = { &s };

	char path[4096], block[4096];
	int ghost;

	/* 64 KiB in an unlinked file: a dump with --ghost-limit 4K fails late, after the lock. */
	cr_path(path, sizeof(path), "ghost");
	ghost = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	memset(block, 'g', sizeof(block));
	for (int i = 0; ghost >= 0 && i < 16; i++)
		if (write(ghost, block, sizeof(block)) != (ssize_t)sizeof(block))
			cr_die("write %s: %s", path, strerror(errno));
	if (ghost < 0 || unlink(path) < 0)
		cr_die("ghost file %s: %s", path, strerror(errno));
	s.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s.fd < 0 || connect(s.fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		cr_die("connect to 127.0.0.1:%s: %s", port, strerror(errno));
	fcntl(s.fd, F_SETFL, O_NONBLOCK);
	cr_ready();
	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	while (!cr_term_flag)
		step(&mask);
	cr_wait_term();
	sks_finish(v, 1);
	cr_log("client: sent %llu, received %llu", (unsigned long long)s.sent, (unsigned long long)s.rcvd);
	return cr_report();
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	if (cr_argc() == 2 && !strcmp(cr_arg(0), "server"))
		return server(cr_arg(1));
	if (cr_argc() == 2 && !strcmp(cr_arg(0), "client"))
		return client(cr_arg(1));
	cr_die("usage: sk_tcp_peer OUTFILE server PORTFILE | client PORT");
}
