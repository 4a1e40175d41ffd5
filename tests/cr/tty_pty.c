/*
 * Pseudo-terminal pairs, each with its own state:
 *  - A (fds 10, 11): raw mode with odd c_cc values and split custom speeds,
 *    a window size with pixels, master and slave in the root;
 *  - B (fds 12, 13): echo off, packet mode, slave O_NONBLOCK; shared with a
 *    child (forked after the opens), which also has its own description of
 *    the slave (fd 14);
 *  - C (fd 15): a master never unlocked (opening its slave fails with EIO);
 *  - D (fd 16): a master unlocked whose slave was never opened, in
 *    exclusive mode (TIOCEXCL); A's slave is in exclusive mode too;
 *  - E (fd 17): a master whose slave was opened and closed again (the
 *    master polls POLLHUP).
 * Output written on A's and B's slaves before the checkpoint is left unread
 * on their masters.
 * After restore: the same indices, termios (every termios2 field), window
 * sizes, packet modes, locks and hang-up states; the unread output is read
 * first, byte for byte; bytes written on either side arrive on the other,
 * unchanged in raw mode, through the line discipline otherwise; the child's
 * descriptions are shared as they were.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <asm/termbits.h>

enum { A_M = 10, A_S = 11, B_M = 12, B_S = 13, B_S2 = 14, C_M = 15, D_M = 16, E_M = 17 };

struct pair {
	const char *name;
	int master;
	unsigned int index;
	struct termios2 t;
	struct winsize ws;
	int pkt, lock, excl;
	bool hup;
};

static struct pair pairs[] = {
	{ "A", A_M, 0, { 0 }, { 0 }, 0, 0, 0, false },
	{ "B", B_M, 0, { 0 }, { 0 }, 0, 0, 0, false },
	{ "C", C_M, 0, { 0 }, { 0 }, 0, 0, 0, false },
	{ "D", D_M, 0, { 0 }, { 0 }, 0, 0, 0, false },
	{ "E", E_M, 0, { 0 }, { 0 }, 0, 0, 0, false },
};

static void move_to(int fd, int want)
{
	if (fd != want && (dup3(fd, want, 0) != want || close(fd)))
		cr_die("dup3 to %d: %s", want, strerror(errno));
}

static int open_master(int want)
{
	int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY);

	if (fd < 0)
		cr_die("open /dev/ptmx: %s", strerror(errno));
	move_to(fd, want);
	return want;
}

static int open_slave(int master, int flags)
{
	unsigned int n;
	char path[32];

	if (ioctl(master, TIOCGPTN, &n))
		cr_die("TIOCGPTN: %s", strerror(errno));
	snprintf(path, sizeof(path), "/dev/pts/%u", n);
	return open(path, flags | O_NOCTTY);
}

static void unlock(int master)
{
	int zero = 0;

	if (ioctl(master, TIOCSPTLCK, &zero))
		cr_die("TIOCSPTLCK: %s", strerror(errno));
}

static bool polls_hup(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) >= 0 && (p.revents & POLLHUP);
}

static void record(struct pair *p)
{
	if (ioctl(p->master, TIOCGPTN, &p->index) || ioctl(p->master, TCGETS2, &p->t) ||
	    ioctl(p->master, TIOCGWINSZ, &p->ws) || ioctl(p->master, TIOCGPKT, &p->pkt) ||
	    ioctl(p->master, TIOCGPTLCK, &p->lock) || ioctl(p->master, TIOCGEXCL, &p->excl))
		cr_die("pair %s: can't read its state: %s", p->name, strerror(errno));
	p->hup = polls_hup(p->master);
}

static void check_pair(const struct pair *p)
{
	struct pair now = *p;

	record(&now);
	CR_EXPECT_EQ("index", now.index, p->index);
	if (memcmp(&now.t, &p->t, sizeof(p->t)))
		cr_fail("pair %s: termios2 iflag %#x/%#x oflag %#x/%#x cflag %#x/%#x lflag %#x/%#x "
			"line %d/%d speeds %u,%u/%u,%u, or c_cc differ", p->name, now.t.c_iflag,
			p->t.c_iflag, now.t.c_oflag, p->t.c_oflag, now.t.c_cflag, p->t.c_cflag,
			now.t.c_lflag, p->t.c_lflag, now.t.c_line, p->t.c_line, now.t.c_ispeed,
			now.t.c_ospeed, p->t.c_ispeed, p->t.c_ospeed);
	if (memcmp(&now.ws, &p->ws, sizeof(p->ws)))
		cr_fail("pair %s: window %ux%u (%ux%u px), was %ux%u (%ux%u px)", p->name, now.ws.ws_row,
			now.ws.ws_col, now.ws.ws_xpixel, now.ws.ws_ypixel, p->ws.ws_row, p->ws.ws_col,
			p->ws.ws_xpixel, p->ws.ws_ypixel);
	if (now.pkt != p->pkt || now.lock != p->lock || now.hup != p->hup || now.excl != p->excl)
		cr_fail("pair %s: packet %d lock %d hup %d excl %d, were %d %d %d %d", p->name, now.pkt,
			now.lock, now.hup, now.excl, p->pkt, p->lock, p->hup, p->excl);
}

/* Up to len bytes within 5 s; a packet-mode master's header bytes are dropped. */
static size_t read_some(int fd, char *buf, size_t len, bool packet)
{
	size_t got = 0;
	char tmp[512];

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			break;
		n = read(fd, tmp, packet || len - got > sizeof(tmp) ? sizeof(tmp) : len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (packet) {
			if (tmp[0] != 0) {
				cr_fail("packet-mode read with status byte %#x", tmp[0]);
				continue;
			}
			memmove(tmp, tmp + 1, --n);
		}
		if ((size_t)n > len - got)
			n = len - got;
		memcpy(buf + got, tmp, n);
		got += n;
	}
	return got;
}

static void expect_bytes(const char *what, int fd, const void *want, size_t len, bool packet)
{
	char buf[512];
	size_t got = read_some(fd, buf, len, packet);

	if (got != len || memcmp(buf, want, len))
		cr_fail("%s: got %zu of %zu bytes ('%.*s')", what, got, len, (int)got, buf);
}

static void put(int fd, const void *buf, size_t len)
{
	if (write(fd, buf, len) != (ssize_t)len)
		cr_fail("write of %zu bytes on fd %d: %s", len, fd, strerror(errno));
}

static void setup_a(void)
{
	struct termios2 t;
	struct winsize ws = { 50, 132, 800, 600 };

	open_master(A_M);
	unlock(A_M);
	move_to(open_slave(A_M, O_RDWR), A_S);
	if (ioctl(A_S, TCGETS2, &t))
		cr_die("TCGETS2: %s", strerror(errno));
	/* raw, as cfmakeraw, plus odd choices */
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_oflag &= ~OPOST;
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(CSIZE | PARENB | CBAUD | (CBAUD << IBSHIFT));
	t.c_cflag |= CS8 | BOTHER | (BOTHER << IBSHIFT);
	t.c_ispeed = 12345;
	t.c_ospeed = 57600;
	t.c_cc[VMIN] = 3;
	t.c_cc[VTIME] = 7;
	t.c_cc[VINTR] = 0x01;
	t.c_cc[VEOF] = 0x7e;
	t.c_cc[VERASE] = 0x08;
	t.c_cc[VKILL] = 0xff;
	if (ioctl(A_S, TCSETS2, &t) || ioctl(A_M, TIOCSWINSZ, &ws) || ioctl(A_S, TIOCEXCL))
		cr_die("pair A: TCSETS2/TIOCSWINSZ: %s", strerror(errno));
}

static void setup_b(void)
{
	struct termios2 t;
	int one = 1;

	open_master(B_M);
	unlock(B_M);
	move_to(open_slave(B_M, O_RDWR | O_NONBLOCK), B_S);
	if (ioctl(B_S, TCGETS2, &t))
		cr_die("TCGETS2: %s", strerror(errno));
	t.c_lflag &= ~ECHO;
	if (ioctl(B_S, TCSETS2, &t) || ioctl(B_M, TIOCPKT, &one))
		cr_die("pair B: TCSETS2/TIOCPKT: %s", strerror(errno));
}

static void setup_cde(void)
{
	int s;

	open_master(C_M);
	open_master(D_M);
	unlock(D_M);
	if (ioctl(D_M, TIOCEXCL))
		cr_die("TIOCEXCL: %s", strerror(errno));
	open_master(E_M);
	unlock(E_M);
	s = open_slave(E_M, O_RDWR);
	if (s < 0)
		cr_die("pair E: open its slave: %s", strerror(errno));
	close(s);
}

static int kcmp_file(pid_t other, int fd1, int fd2)
{
	return syscall(SYS_kcmp, getpid(), other, KCMP_FILE, fd1, fd2);
}

static void child(pid_t parent)
{
	unsigned int n;

	cr_child_ready();
	cr_wait_term();
	CR_CHECK(kcmp_file(parent, B_M, B_M) == 0, "child: B's master is not the parent's description");
	CR_CHECK(kcmp_file(parent, B_S, B_S) == 0, "child: B's slave fd 13 is not the parent's description");
	CR_CHECK(kcmp_file(parent, B_S2, B_S) != 0, "child: its own slave fd 14 shares the parent's description");
	CR_CHECK(fcntl(B_S, F_GETFL) & O_NONBLOCK, "child: fd 13 lost O_NONBLOCK");
	CR_CHECK(!(fcntl(B_S2, F_GETFL) & O_NONBLOCK), "child: fd 14 gained O_NONBLOCK");
	if (ioctl(B_M, TIOCGPTN, &n) || n != pairs[1].index)
		cr_fail("child: B's master now has index %u, was %u", n, pairs[1].index);
	put(B_S2, "child\n", 6);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	static const char pattern[] = "raw\0bytes\r\n\x01\x7e\xff\x08 through the pair";
	char line[64];
	pid_t kid;
	int fd;

	cr_init(argc, argv);
	setup_a();
	setup_b();
	setup_cde();
	for (size_t i = 0; i < CR_ARRAY_SIZE(pairs); i++)
		record(&pairs[i]);
	if (!pairs[0].t.c_ispeed || pairs[2].lock != 1 || pairs[3].lock || !pairs[4].hup || pairs[3].hup ||
	    pairs[3].excl != 1 || pairs[0].excl)
		cr_die("setup: unexpected state (speed %u, locks %d %d, hup %d %d)", pairs[0].t.c_ispeed,
		       pairs[2].lock, pairs[3].lock, pairs[3].hup, pairs[4].hup);
	/* Left unread on the masters across the checkpoints. */
	put(A_S, "pending\0\r\n\xff", 12);
	put(B_S, "queued\n", 7);
	kid = cr_spawn("child");
	if (kid == 0) {
		int s2 = open_slave(B_M, O_RDWR);

		if (s2 < 0)
			cr_die("child: open B's slave: %s", strerror(errno));
		move_to(s2, B_S2);
		child(getppid());
	}
	cr_ready();
	cr_wait_term();
	for (size_t i = 0; i < CR_ARRAY_SIZE(pairs); i++)
		check_pair(&pairs[i]);
	{
		int excl = 0;

		if (ioctl(A_S, TIOCGEXCL, &excl) || excl != 1)
			cr_fail("A: the slave's exclusive mode is %d, was 1", excl);
	}
	cr_finish_children(&kid, roles, 1);

	/* A: raw both ways, every byte as written. */
	expect_bytes("A: output left unread", A_M, "pending\0\r\n\xff", 12, false);
	put(A_S, pattern, sizeof(pattern));
	expect_bytes("A: slave to master", A_M, pattern, sizeof(pattern), false);
	put(A_M, pattern, sizeof(pattern));
	expect_bytes("A: master to slave", A_S, pattern, sizeof(pattern), false);
	/* B: the child's line, then ours, through ONLCR and the packet header. */
	/* (one read: a packet-mode read may return both lines at once) */
	expect_bytes("B: output left unread, then the child's line", B_M, "queued\r\nchild\r\n", 15, true);
	put(B_S, "pong\n", 5);
	expect_bytes("B: slave to master", B_M, "pong\r\n", 6, true);
	put(B_M, "ping\n", 5);
	expect_bytes("B: master to slave", B_S, "ping\n", 5, false);
	/* C: still locked. */
	fd = open_slave(C_M, O_RDWR);
	if (fd >= 0 || errno != EIO)
		cr_fail("C: opening the slave of a locked pair gave %d (%s), not EIO", fd, strerror(errno));
	if (fd >= 0)
		close(fd);
	/* D: the slave can be opened and works. */
	fd = open_slave(D_M, O_RDWR);
	if (fd < 0) {
		cr_fail("D: can't open its slave: %s", strerror(errno));
	} else {
		snprintf(line, sizeof(line), "d\n");
		put(fd, line, 2);
		expect_bytes("D: slave to master", D_M, "d\r\n", 3, false);
		close(fd);
	}
	return cr_report();
}
