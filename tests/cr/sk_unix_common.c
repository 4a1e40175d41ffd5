/*
 * Unix sockets of one type (stream, seqpacket or datagram) through
 * checkpoints. Every socket's name, peer name, options (SO_SNDBUF,
 * SO_RCVBUF, SO_PASSCRED, SO_PASSSEC, SO_PEEK_OFF, SO_RCVLOWAT, SO_SNDTIMEO,
 * SO_RCVTIMEO) and descriptor flags must be as they were; every queued byte
 * or message must arrive in order with its boundaries (and, for datagrams,
 * its sender's address); shutdown states must act; new traffic must flow
 * both ways; bound files must exist again (with their mode) and unlinked
 * ones must not.
 *
 * Connection-oriented: a listener bound to an absolute path (SO_PASSCRED)
 * with an accepted connection carrying data both ways, two connections
 * waiting to be accepted (one with data, one shut down for writing), one
 * whose client closed after writing, one waiting whose client wrote and
 * closed, a listener with an abstract name and a
 * client bound to a relative path, a connection whose listener was closed
 * and its file unlinked, a listener whose file was unlinked.
 * Datagram: a receiver bound to a relative path with messages from four
 * senders (path, abstract, unbound, unbound and connected to it), a
 * one-way connection to an abstract socket, a named pair connected both
 * ways, a socket bound to an unlinked path, one connected to a closed peer.
 * Both: a socketpair shared with a child (which talks through it after the
 * restore), and shutdown(SHUT_WR) / shutdown(SHUT_RD) pairs.
 */
#include "crtest.h"
#include "sk_unix.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int type;
static bool conn;		/* stream or seqpacket */
static const char *tname;

/* ---- names and state of every socket, recorded at readiness ---- */

struct rec {
	int fd;
	char label[24];
	struct sockaddr_un name, peer;
	socklen_t nlen, plen;
	int opt[7];
	struct timeval tv[2];
	int fl, fdfl;
};

static struct rec recs[40];
static int nr_recs;

static const int opt_ids[7] = { SO_SNDBUF, SO_RCVBUF, SO_PASSCRED, SO_PASSSEC, SO_PEEK_OFF,
				SO_RCVLOWAT, SO_TYPE };
static const char *const opt_names[7] = { "SO_SNDBUF", "SO_RCVBUF", "SO_PASSCRED", "SO_PASSSEC",
					  "SO_PEEK_OFF", "SO_RCVLOWAT", "SO_TYPE" };

static void read_state(struct rec *r)
{
	r->nlen = sizeof(r->name);
	r->plen = sizeof(r->peer);
	memset(&r->name, 0, sizeof(r->name));
	memset(&r->peer, 0, sizeof(r->peer));
	if (getsockname(r->fd, (struct sockaddr *)&r->name, &r->nlen) < 0)
		r->nlen = 0;
	if (getpeername(r->fd, (struct sockaddr *)&r->peer, &r->plen) < 0)
		r->plen = 0;
	for (int i = 0; i < 7; i++) {
		socklen_t l = sizeof(int);
		if (getsockopt(r->fd, SOL_SOCKET, opt_ids[i], &r->opt[i], &l) < 0)
			r->opt[i] = -12345;
	}
	for (int i = 0; i < 2; i++) {
		socklen_t l = sizeof(r->tv[i]);
		if (getsockopt(r->fd, SOL_SOCKET, i ? SO_RCVTIMEO : SO_SNDTIMEO, &r->tv[i], &l) < 0)
			r->tv[i].tv_sec = -1;
	}
	r->fl = fcntl(r->fd, F_GETFL);
	r->fdfl = fcntl(r->fd, F_GETFD);
}

static void track(int fd, const char *label)
{
	struct rec *r = &recs[nr_recs++];

	r->fd = fd;
	snprintf(r->label, sizeof(r->label), "%s", label);
}

static void show_addr(const struct sockaddr_un *a, socklen_t len, char *buf, size_t blen)
{
	size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	size_t i;

	for (i = 0; i < n && i + 1 < blen; i++)
		buf[i] = a->sun_path[i] ? a->sun_path[i] : '@';
	buf[i] = '\0';
}

static void verify_rec(const struct rec *was)
{
	struct rec now = { .fd = was->fd };
	char a[256], b[256];

	read_state(&now);
	if (now.nlen != was->nlen || memcmp(&now.name, &was->name, was->nlen)) {
		show_addr(&now.name, now.nlen, a, sizeof(a));
		show_addr(&was->name, was->nlen, b, sizeof(b));
		cr_fail("%s: getsockname '%s' (%u), was '%s' (%u)", was->label, a, now.nlen, b, was->nlen);
	}
	if (now.plen != was->plen || memcmp(&now.peer, &was->peer, was->plen)) {
		show_addr(&now.peer, now.plen, a, sizeof(a));
		show_addr(&was->peer, was->plen, b, sizeof(b));
		cr_fail("%s: getpeername '%s' (%u), was '%s' (%u)", was->label, a, now.plen, b, was->plen);
	}
	for (int i = 0; i < 7; i++)
		if (now.opt[i] != was->opt[i])
			cr_fail("%s: %s is %d, was %d", was->label, opt_names[i], now.opt[i], was->opt[i]);
	for (int i = 0; i < 2; i++)
		if (now.tv[i].tv_sec != was->tv[i].tv_sec || now.tv[i].tv_usec != was->tv[i].tv_usec)
			cr_fail("%s: %s is %ld.%06ld, was %ld.%06ld", was->label, i ? "SO_RCVTIMEO" : "SO_SNDTIMEO",
				(long)now.tv[i].tv_sec, (long)now.tv[i].tv_usec, (long)was->tv[i].tv_sec,
				(long)was->tv[i].tv_usec);
	CR_CHECK(now.fl == was->fl, "%s: file flags 0%o, were 0%o", was->label, now.fl, was->fl);
	CR_CHECK(now.fdfl == was->fdfl, "%s: fd flags %d, were %d", was->label, now.fdfl, was->fdfl);
}

/* ---- helpers ---- */

static socklen_t addr(struct sockaddr_un *sa, const char *name, bool abstract)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (abstract) {
		snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "%s", name);
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", name);
	return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

static int sock(void)
{
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		cr_die("socket: %m");
	return fd;
}

static int bound(const char *name, bool abstract)
{
	struct sockaddr_un sa;
	socklen_t l = addr(&sa, name, abstract);
	int fd = sock();

	if (bind(fd, (struct sockaddr *)&sa, l) < 0)
		cr_die("bind %s%s: %m", abstract ? "@" : "", name);
	return fd;
}

static void connect_to(int fd, const char *name, bool abstract)
{
	struct sockaddr_un sa;
	socklen_t l = addr(&sa, name, abstract);

	if (connect(fd, (struct sockaddr *)&sa, l) < 0)
		cr_die("connect %s%s: %m", abstract ? "@" : "", name);
}

static int accept_one(int l)
{
	int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		cr_die("accept: %m");
	return fd;
}

static void put(int fd, const char *msg)
{
	if (send(fd, msg, strlen(msg), MSG_NOSIGNAL) != (ssize_t)strlen(msg))
		cr_die("send '%s': %m", msg);
}

static void put_to(int fd, const char *msg, const char *name, bool abstract)
{
	struct sockaddr_un sa;
	socklen_t l = addr(&sa, name, abstract);

	if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, l) != (ssize_t)strlen(msg))
		cr_die("sendto '%s' %s: %m", msg, name);
}

/*
 * The queue of fd holds exactly msgs, in order (for stream: their bytes
 * back to back), and then nothing (or end of stream if eof). from[i], if
 * given, is the sender's address ("" unbound, "@x" abstract).
 */
static void expect(int fd, const char *what, const char *const *msgs, int n, const char *const *from,
		   bool eof)
{
	char buf[4096], want[4096] = "", who[256];
	struct sockaddr_un sa;
	socklen_t sl;
	ssize_t got;

	if (type == SOCK_STREAM) {
		size_t total = 0;
		for (int i = 0; i < n; i++)
			strcat(want, msgs[i]);
		while (total < strlen(want)) {
			got = recv(fd, buf + total, sizeof(buf) - 1 - total, MSG_DONTWAIT);
			if (got <= 0)
				break;
			total += got;
		}
		buf[total] = '\0';
		CR_CHECK(!strcmp(buf, want), "%s: queued bytes '%s', expected '%s'", what, buf, want);
	} else {
		for (int i = 0; i < n; i++) {
			sl = sizeof(sa);
			memset(&sa, 0, sizeof(sa));
			got = recvfrom(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&sa, &sl);
			if (got < 0) {
				cr_fail("%s: message %d ('%s') missing: %m", what, i, msgs[i]);
				return;
			}
			buf[got] = '\0';
			CR_CHECK(!strcmp(buf, msgs[i]), "%s: message %d is '%s', expected '%s'", what, i, buf, msgs[i]);
			if (from && from[i]) {
				show_addr(&sa, sl, who, sizeof(who));
				CR_CHECK(!strcmp(who, from[i]) || (from[i][0] != '@' && !strncmp(who, from[i], strlen(from[i])) &&
								   who[strlen(from[i])] == '@' && !who[strlen(from[i]) + 1]),
					 "%s: message %d came from '%s', expected '%s'", what, i, who, from[i]);
			}
		}
	}
	got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (eof)
		CR_CHECK(got == 0, "%s: expected the end of stream, got %zd (%m)", what, got);
	else
		CR_CHECK(got < 0 && errno == EAGAIN, "%s: expected an empty queue, got %zd", what, got);
}

/* New traffic a -> b, and b -> a unless one_way. */
static void talk(int a, int b, const char *what, bool one_way)
{
	const char *ab[] = { "new-a-to-b" }, *ba[] = { "new-b-to-a" };

	put(a, ab[0]);
	expect(b, what, ab, 1, NULL, false);
	if (one_way)
		return;
	put(b, ba[0]);
	expect(a, what, ba, 1, NULL, false);
}

static void check_file(const char *path, bool exists, mode_t mode)
{
	struct stat st;
	int r = lstat(path, &st);

	if (!exists) {
		CR_CHECK(r < 0 && errno == ENOENT, "%s: unlinked before the checkpoint, exists now", path);
		return;
	}
	if (r < 0) {
		cr_fail("%s: socket file missing: %m", path);
		return;
	}
	CR_CHECK(S_ISSOCK(st.st_mode), "%s: not a socket file (mode 0%o)", path, st.st_mode);
	CR_CHECK((st.st_mode & 07777) == mode, "%s: mode 0%o, expected 0%o", path, st.st_mode & 07777, mode);
}

static void setopt(int fd, int opt, int v)
{
	if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		cr_die("setsockopt(%d, %d): %m", opt, v);
}

static void settimeo(int fd, int opt, long sec, long usec)
{
	struct timeval tv = { sec, usec };

	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0)
		cr_die("setsockopt timeout: %m");
}

static void nonblock(int fd)
{
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		cr_die("O_NONBLOCK: %m");
}

/* ---- the child that shares one end of a socketpair ---- */

static void child(int p1, int p2)
{
	struct rec r = { .fd = p2, .label = "child p2" };

	close(p1);
	read_state(&r);
	cr_child_ready();
	cr_wait_term();
	verify_rec(&r);
	put(p2, "from-child");
	cr_child_exit();
}

/* ---- connection-oriented ---- */

static struct {
	int l, c1, a1, c2, c3, c5, a5, l2, c4, a4, c6, a6, l4, c7;
} s;
static char lpath[512], abs1[64], abs2[64];

static const char *const c1_msgs[] = { "c1-to-a1 one", "c1-to-a1 two" };
static const char *const a1_msgs[] = { "a1-to-c1" };
static const char *const c2_msgs[] = { "waiting c2 one", "waiting c2 two" };
static const char *const c5_msgs[] = { "last words of c5" };
static const char *const orphan_msgs[] = { "from a client gone before accept" };
static const char *const c4_msgs[] = { "c4 before shutdown" };
static const char *const a4_msgs[] = { "a4 to c4" };

static void setup_conn(void)
{
	cr_path(lpath, sizeof(lpath), "listen.sock");
	s.l = bound(lpath, false);
	chmod(lpath, 0640);
	setopt(s.l, SO_PASSCRED, 1);
	if (listen(s.l, 8) < 0)
		cr_die("listen: %m");
	s.c1 = sock();
	connect_to(s.c1, lpath, false);
	s.a1 = accept_one(s.l);
	setopt(s.a1, SO_SNDBUF, 65536);
	setopt(s.a1, SO_RCVBUF, 98304);
	settimeo(s.a1, SO_SNDTIMEO, 1, 500000);
	settimeo(s.a1, SO_RCVTIMEO, 2, 250000);
	setopt(s.a1, SO_RCVLOWAT, 4);
	nonblock(s.a1);
	for (int i = 0; i < 2; i++)
		put(s.c1, c1_msgs[i]);
	put(s.a1, a1_msgs[0]);
	setopt(s.c1, SO_PEEK_OFF, 3);
	setopt(s.c1, SO_PASSSEC, 1);

	/* Accepted, then its client wrote and closed. */
	s.c5 = sock();
	connect_to(s.c5, lpath, false);
	s.a5 = accept_one(s.l);
	put(s.c5, c5_msgs[0]);
	close(s.c5);

	/* Waiting to be accepted: c2 with data, c3 shut down for writing. */
	s.c2 = sock();
	connect_to(s.c2, lpath, false);
	for (int i = 0; i < 2; i++)
		put(s.c2, c2_msgs[i]);
	s.c3 = sock();
	connect_to(s.c3, lpath, false);
	shutdown(s.c3, SHUT_WR);
	/* ...and one whose client wrote and closed. */
	{
		int c8 = sock();
		connect_to(c8, lpath, false);
		put(c8, orphan_msgs[0]);
		close(c8);
	}

	/* Abstract listener, client bound to a relative path. */
	snprintf(abs1, sizeof(abs1), "crl-sk-%s-%d-l2", tname, (int)getpid());
	s.l2 = bound(abs1, true);
	if (listen(s.l2, 2) < 0)
		cr_die("listen: %m");
	s.c4 = bound("c4.sock", false);
	chmod("c4.sock", 0751);
	connect_to(s.c4, abs1, true);
	s.a4 = accept_one(s.l2);
	put(s.c4, c4_msgs[0]);
	shutdown(s.c4, SHUT_WR);
	put(s.a4, a4_msgs[0]);

	/* Listener closed and its file unlinked after accepting. */
	{
		int l3 = bound("gone.sock", false);
		if (listen(l3, 1) < 0)
			cr_die("listen: %m");
		s.c6 = sock();
		connect_to(s.c6, "gone.sock", false);
		s.a6 = accept_one(l3);
		close(l3);
		unlink("gone.sock");
	}
	/* Listener whose file is unlinked, a client waiting. */
	s.l4 = bound("unl.sock", false);
	if (listen(s.l4, 1) < 0)
		cr_die("listen: %m");
	s.c7 = sock();
	connect_to(s.c7, "unl.sock", false);
	unlink("unl.sock");

	track(s.l, "listener");
	track(s.c1, "c1");
	track(s.a1, "a1");
	track(s.c2, "c2 waiting");
	track(s.c3, "c3 waiting");
	track(s.a5, "a5 peer closed");
	track(s.l2, "abstract listener");
	track(s.c4, "c4 bound client");
	track(s.a4, "a4");
	track(s.c6, "c6");
	track(s.a6, "a6 listener gone");
	track(s.l4, "unlinked listener");
	track(s.c7, "c7 waiting");
}

static void verify_conn(void)
{
	int w;

	check_file(lpath, true, 0640);
	check_file("gone.sock", false, 0);
	check_file("unl.sock", false, 0);
	check_file("c4.sock", true, 0751);

	/* c1's peek offset acts from where it was. */
	{
		char buf[8] = "";
		ssize_t n = recv(s.c1, buf, 5, MSG_PEEK | MSG_DONTWAIT);
		CR_CHECK(n == 5 && !memcmp(buf, "to-c1", 5), "c1: peek at offset 3 gave '%.*s'", (int)(n > 0 ? n : 0), buf);
		setopt(s.c1, SO_PEEK_OFF, -1);
	}
	expect(s.a1, "a1 queue", c1_msgs, 2, NULL, false);
	expect(s.c1, "c1 queue", a1_msgs, 1, NULL, false);
	talk(s.c1, s.a1, "c1<->a1", false);

	/* The waiting connections come out of the listener in order. */
	w = accept_one(s.l);
	expect(w, "accepted c2", c2_msgs, 2, NULL, false);
	talk(s.c2, w, "c2<->accepted", false);
	close(w);
	w = accept_one(s.l);
	expect(w, "accepted c3", NULL, 0, NULL, true);
	put(w, "to c3");
	{
		const char *m[] = { "to c3" };
		expect(s.c3, "c3", m, 1, NULL, false);
	}
	close(w);
	w = accept_one(s.l);
	expect(w, "accepted, client closed", orphan_msgs, 1, NULL, true);
	close(w);

	expect(s.a5, "a5 (client closed)", c5_msgs, 1, NULL, true);
	{
		int e = send(s.a5, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? errno : 0;
		CR_CHECK(e == EPIPE, "a5: send to a closed peer: errno %d, expected EPIPE", e);
	}

	expect(s.a4, "a4 (c4 shut down)", c4_msgs, 1, NULL, true);
	expect(s.c4, "c4", a4_msgs, 1, NULL, false);
	talk(s.a4, s.c4, "a4->c4", true);
	{
		int e = send(s.c4, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? errno : 0;
		CR_CHECK(e == EPIPE, "c4: send after SHUT_WR: errno %d, expected EPIPE", e);
	}

	talk(s.c6, s.a6, "c6<->a6", false);

	w = accept_one(s.l4);
	talk(s.c7, w, "c7<->accepted from unlinked listener", false);
	close(w);

	/* The listeners still take new connections. */
	{
		int c = sock(), a;
		connect_to(c, lpath, false);
		a = accept_one(s.l);
		talk(c, a, "new connection", false);
		close(a);
		close(c);
		c = sock();
		connect_to(c, abs1, true);
		a = accept_one(s.l2);
		talk(c, a, "new connection (abstract)", false);
		close(a);
		close(c);
	}
}

/* ---- datagram ---- */

static struct {
	int r, sa, sb, sc, sd, q, x, n1, n2, u, y;
} d;
static char sapath[512];

static void setup_dgram(void)
{
	int z;

	cr_path(sapath, sizeof(sapath), "sa.sock");
	snprintf(abs1, sizeof(abs1), "crl-sk-dgram-%d-sb", (int)getpid());
	snprintf(abs2, sizeof(abs2), "crl-sk-dgram-%d-q", (int)getpid());

	d.r = bound("recv.sock", false);
	chmod("recv.sock", 0600);
	setopt(d.r, SO_RCVBUF, 300000);
	setopt(d.r, SO_PASSSEC, 1);
	settimeo(d.r, SO_RCVTIMEO, 3, 0);
	d.sa = bound(sapath, false);
	chmod(sapath, 0604);
	d.sb = bound(abs1, true);
	d.sc = sock();
	d.sd = sock();
	connect_to(d.sd, "recv.sock", false);
	setopt(d.sd, SO_SNDBUF, 50000);
	put_to(d.sa, "from sa 1", "recv.sock", false);
	put_to(d.sb, "from sb", "recv.sock", false);
	put_to(d.sc, "", "recv.sock", false);	/* empty datagram */
	put(d.sd, "from sd (connected)");
	put_to(d.sa, "from sa 2", "recv.sock", false);

	/* One-way connection to an abstract socket. */
	d.q = bound(abs2, true);
	d.x = sock();
	connect_to(d.x, abs2, true);
	put(d.x, "x to q 1");
	put(d.x, "x to q 2");
	nonblock(d.x);

	/* A named pair connected both ways. */
	d.n1 = bound("n1.sock", false);
	{
		char n2[64];
		snprintf(n2, sizeof(n2), "crl-sk-dgram-%d-n2", (int)getpid());
		d.n2 = bound(n2, true);
		connect_to(d.n1, n2, true);
		connect_to(d.n2, "n1.sock", false);
	}
	put(d.n1, "n1 to n2");
	put(d.n2, "n2 to n1");

	/* Bound to a path that was unlinked, with a message waiting. */
	d.u = bound("unl.sock", false);
	put_to(d.sa, "sa to unlinked", "unl.sock", false);
	unlink("unl.sock");

	/* Connected to a socket that was closed since. */
	z = bound("z.sock", false);
	d.y = sock();
	connect_to(d.y, "z.sock", false);
	close(z);

	track(d.r, "receiver");
	track(d.sa, "sender sa");
	track(d.sb, "sender sb");
	track(d.sc, "sender sc");
	track(d.sd, "sender sd");
	track(d.q, "q");
	track(d.x, "x connected to q");
	track(d.n1, "n1");
	track(d.n2, "n2");
	track(d.u, "unlinked");
	track(d.y, "y peer closed");
}

static void verify_dgram(void)
{
	char sa_from[600];
	const char *r_msgs[] = { "from sa 1", "from sb", "", "from sd (connected)", "from sa 2" };
	const char *r_from[] = { sa_from, NULL, "", "", sa_from };
	const char *q_msgs[] = { "x to q 1", "x to q 2" };
	const char *u_msgs[] = { "sa to unlinked" };
	const char *n1_msgs[] = { "n2 to n1" }, *n2_msgs[] = { "n1 to n2" };
	char sb_from[80];
	int e;

	snprintf(sa_from, sizeof(sa_from), "%s", sapath);
	snprintf(sb_from, sizeof(sb_from), "@%s", abs1);
	r_from[1] = sb_from;
	check_file("recv.sock", true, 0600);
	check_file(sapath, true, 0604);
	check_file("unl.sock", false, 0);

	expect(d.r, "receiver", r_msgs, 5, r_from, false);
	put_to(d.sc, "sc again", "recv.sock", false);
	put(d.sd, "sd again");
	{
		const char *m[] = { "sc again", "sd again" };
		expect(d.r, "receiver, new", m, 2, NULL, false);
	}
	expect(d.q, "q", q_msgs, 2, NULL, false);
	talk(d.x, d.q, "x->q", true);
	expect(d.n1, "n1", n1_msgs, 1, NULL, false);
	expect(d.n2, "n2", n2_msgs, 1, NULL, false);
	talk(d.n1, d.n2, "n1<->n2", false);
	expect(d.u, "unlinked", u_msgs, 1, NULL, false);
	e = send(d.y, "x", 1, MSG_DONTWAIT) < 0 ? errno : 0;
	CR_CHECK(e == ECONNREFUSED, "y: send to a closed peer: errno %d, expected ECONNREFUSED", e);
}

/* ---- a queue filled until the sender would block ---- */

#define FULL_CHUNK 20000
static int f1, f2;
static long full_bytes;
static int full_msgs;

static void fill_full(void)
{
	static char buf[FULL_CHUNK];
	int sv[2];

	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		cr_die("socketpair: %m");
	f1 = sv[0];
	f2 = sv[1];
	for (;;) {
		ssize_t n;

		cr_fill(buf, sizeof(buf), 7000 + full_msgs);
		n = send(f1, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			cr_die("filling a queue: %m");
		full_bytes += n;
		full_msgs++;
		if (n < (ssize_t)sizeof(buf))
			break;	/* stream: the rest would block */
	}
	if (full_msgs < 2)
		cr_die("only %d messages fit the queue", full_msgs);
}

/* Every byte (stream) or message (with its length) comes back, then nothing. */
static void check_full(void)
{
	static char buf[FULL_CHUNK + 1];
	long total = 0;

	for (int i = 0; i < full_msgs; i++) {
		ssize_t want = type == SOCK_STREAM && i == full_msgs - 1 ? full_bytes - total : FULL_CHUNK;
		ssize_t got = 0, n;

		while (got < want) {
			n = recv(f2, buf + got, type == SOCK_STREAM ? (size_t)(want - got) : sizeof(buf), MSG_DONTWAIT);
			if (n <= 0) {
				cr_fail("full queue: message %d: %zd of %zd bytes (%m)", i, got, want);
				return;
			}
			got += n;
			if (type != SOCK_STREAM)
				break;
		}
		CR_CHECK(got == want, "full queue: message %d is %zd bytes, expected %zd", i, got, want);
		CR_CHECK(cr_check_fill(buf, want & ~7L, 7000 + i) < 0, "full queue: message %d differs", i);
		total += got;
	}
	CR_CHECK(recv(f2, buf, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "full queue: more than %ld bytes",
		 full_bytes);
	talk(f1, f2, "full queue pair", false);
}

/* ---- both ---- */

static int p1, p2, sh1, sh2, sh3, sh4;
static const char *const p1_msgs[] = { "p1 to p2 a", "p1 to p2 b", "p1 to p2 c" };
static const char *const p2_msgs[] = { "p2 to p1" };

int sk_unix_main(int argc, char **argv, int t)
{
	char dir[512];
	int sv[2];
	pid_t kid;
	const char *role = "child";

	type = t;
	conn = t != SOCK_DGRAM;
	tname = t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : "seqpacket";
	cr_init(argc, argv);
	cr_path(dir, sizeof(dir), "");
	if (chdir(dir) < 0)
		cr_die("chdir %s: %m", dir);

	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		cr_die("socketpair: %m");
	p1 = sv[0];
	p2 = sv[1];
	for (int i = 0; i < 3; i++)
		put(p1, p1_msgs[i]);
	put(p2, p2_msgs[0]);
	setopt(p1, SO_SNDBUF, 40000);
	settimeo(p2, SO_SNDTIMEO, 0, 700000);
	kid = cr_spawn(role);
	if (kid == 0)
		child(p1, p2);

	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		cr_die("socketpair: %m");
	sh1 = sv[0];
	sh2 = sv[1];
	put(sh1, "bye");
	shutdown(sh1, SHUT_WR);
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
		cr_die("socketpair: %m");
	sh3 = sv[0];
	sh4 = sv[1];
	shutdown(sh3, SHUT_RD);

	fill_full();
	track(f1, "full f1");
	track(f2, "full f2");
	track(p1, "p1");
	track(p2, "p2");
	track(sh1, "sh1 SHUT_WR");
	track(sh2, "sh2");
	track(sh3, "sh3 SHUT_RD");
	track(sh4, "sh4");
	if (conn)
		setup_conn();
	else
		setup_dgram();
	for (int i = 0; i < nr_recs; i++)
		read_state(&recs[i]);

	cr_ready();
	cr_wait_term();

	for (int i = 0; i < nr_recs; i++)
		verify_rec(&recs[i]);
	expect(p2, "p2", p1_msgs, 3, NULL, false);
	cr_finish_children(&kid, &role, 1);
	{
		const char *m[] = { "p2 to p1", "from-child" };
		expect(p1, "p1", m, 2, NULL, false);
	}
	talk(p1, p2, "p1<->p2", false);
	{
		const char *m[] = { "bye" };
		int e;

		expect(sh2, "sh2", m, 1, NULL, conn);
		e = send(sh1, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? errno : 0;
		CR_CHECK(e == EPIPE, "sh1: send after SHUT_WR: errno %d, expected EPIPE", e);
		if (conn) {
			e = send(sh4, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ? errno : 0;
			CR_CHECK(e == EPIPE, "sh4: send to a peer shut for reading: errno %d, expected EPIPE", e);
		}
		struct pollfd pf = { .fd = sh3, .events = POLLIN | POLLRDHUP };

		CR_CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLRDHUP), "sh3: no POLLRDHUP after SHUT_RD "
			 "(revents 0x%x)", pf.revents);
		talk(sh3, sh4, "sh3->sh4", true);
	}
	check_full();
	if (conn)
		verify_conn();
	else
		verify_dgram();
	return cr_report();
}
