/*
 * Anonymous pipes, with what is buffered in them:
 *  A  5000 bytes; both ends shared by the parent and child1 (fork), a dup
 *     of the read end, and in child1 a second read description opened
 *     through /proc;
 *  B  full: 16 KiB pipe (F_SETPIPE_SZ) filled to the last byte, write end
 *     O_NONBLOCK (a write must still fail with EAGAIN);
 *  C  256 KiB pipe holding 200000 bytes, read end O_NONBLOCK;
 *  D  O_DIRECT (packet mode), read end O_NONBLOCK: packets of 1, 100, 4096, 7, 3000 bytes and a
 *     10000-byte write (4096 + 4096 + 1808): each read must return exactly
 *     one packet;
 *  E  the write end closed: the bytes, then end of file;
 *  F  the read end closed: a write fails with EPIPE, and a reader opened
 *     through /proc still finds the 500 bytes;
 *  G  between the parent (read end) and child2 (write end): 1000 bytes,
 *     then what child2 writes after restore, then end of file.
 * After restore every descriptor has its flags, every pipe its size and
 * exactly its bytes (FIONREAD and contents), and new writes reach the
 * right reader.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum {
	A_R = 10, A_W = 11, A_DUP = 12, A_R2 = 13,	/* A_R2: child1 only */
	B_R = 14, B_W = 15, C_R = 16, C_W = 17, D_R = 18, D_W = 19,
	E_R = 20, F_W = 21, G_R = 22, G_W = 23,
};

#define A_BYTES 5000
#define B_SIZE (16 * 1024)
#define C_SIZE (256 * 1024)
#define C_BYTES 200000
#define E_BYTES 3000
#define F_BYTES 500
#define G_BYTES 1000

static const size_t d_writes[] = { 1, 100, 4096, 7, 3000, 10000 };
static const size_t d_packets[] = { 1, 100, 4096, 7, 3000, 4096, 4096, 1808 };

static const char child1_msg[] = "child1 wrote this after restore";
static const char child2_msg[] = "child2 says goodbye";

static char buf[C_SIZE + 8], want[C_SIZE + 8];
static int fl_was[32], fdfl_was[32];

static void to_fd(int fd, int want)
{
	if (fd == want)
		return;
	if (fd < 0 || dup2(fd, want) != want)
		cr_die("descriptor %d: %s", want, strerror(errno));
	close(fd);
}

static void make_pipe(int r, int w, int flags)
{
	int p[2];

	if (pipe2(p, flags))
		cr_die("pipe2 for fds %d/%d: %s", r, w, strerror(errno));
	to_fd(p[0], r);
	to_fd(p[1], w);
}

/* LEN bytes of the pattern of SEED into want[] (cr_fill fills whole words). */
static void pattern(size_t len, uint64_t seed)
{
	cr_fill(want, len + 7, seed);
}

static void put(int fd, size_t len, uint64_t seed)
{
	pattern(len, seed);
	if (write(fd, want, len) != (ssize_t)len)
		cr_die("fd %d: write of %zu bytes: %s", fd, len, strerror(errno));
}

static void set_size(int fd, int size)
{
	if (fcntl(fd, F_SETPIPE_SZ, size) != size)
		cr_die("fd %d: F_SETPIPE_SZ %d: %s", fd, size, strerror(errno));
}

static void set_fl(int fd, int add)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | add))
		cr_die("fd %d: F_SETFL: %s", fd, strerror(errno));
}

static void setup_pipes(void)
{
	make_pipe(A_R, A_W, 0);
	put(A_W, A_BYTES, 0xa);
	to_fd(dup(A_R), A_DUP);

	make_pipe(B_R, B_W, 0);
	set_size(B_W, B_SIZE);
	set_fl(B_W, O_NONBLOCK);
	put(B_W, B_SIZE, 0xb);
	if (write(B_W, "x", 1) != -1 || errno != EAGAIN)
		cr_die("pipe B is not full");

	make_pipe(C_R, C_W, 0);
	set_size(C_R, C_SIZE);
	set_fl(C_R, O_NONBLOCK);
	put(C_W, C_BYTES, 0xc);

	make_pipe(D_R, D_W, O_DIRECT);
	set_fl(D_R, O_NONBLOCK);
	for (size_t i = 0; i < CR_ARRAY_SIZE(d_writes); i++)
		put(D_W, d_writes[i], 0xd0 + i);
}

/* Pipes E and F lose one end at once. */
static void setup_half_pipes(void)
{
	make_pipe(E_R, 30, 0);
	put(30, E_BYTES, 0xe);
	close(30);
	make_pipe(30, F_W, 0);
	put(F_W, F_BYTES, 0xf);
	close(30);
}

/* Flags of fds 0-2 and of the pipes (not of cr_spawn's readiness pipe). */
static void record_flags(void)
{
	for (int fd = 0; fd < 32; fd = fd == 2 ? A_R : fd + 1) {
		fl_was[fd] = fcntl(fd, F_GETFL);
		fdfl_was[fd] = fcntl(fd, F_GETFD);
	}
}

static void check_flags(void)
{
	for (int fd = 0; fd < 32; fd = fd == 2 ? A_R : fd + 1) {
		int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

		if (fl != fl_was[fd] || fdfl != fdfl_was[fd])
			cr_fail("fd %d: flags %#o/%d, were %#o/%d", fd, fl, fdfl, fl_was[fd],
				fdfl_was[fd]);
	}
}

static int bytes_in(int fd)
{
	int n = -1;

	if (ioctl(fd, FIONREAD, &n))
		cr_fail("fd %d: FIONREAD: %s", fd, strerror(errno));
	return n;
}

static void expect_size(const char *what, int fd, int size)
{
	int got = fcntl(fd, F_GETPIPE_SZ);

	if (got != size)
		cr_fail("%s: fd %d: pipe size %d, expected %d", what, fd, got, size);
}

/* Reads exactly LEN bytes (several reads if needed) and checks the pattern. */
static void expect_bytes(const char *what, int fd, size_t len, uint64_t seed)
{
	size_t got = 0;

	CR_EXPECT_EQ(what, bytes_in(fd), len);
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0) {
			cr_fail("%s: fd %d: read after %zu of %zu bytes: %zd (%s)", what, fd, got, len,
				n, n < 0 ? strerror(errno) : "end of file");
			return;
		}
		got += n;
	}
	pattern(len, seed);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != want[i]) {
			cr_fail("%s: byte %zu of %zu differs", what, i, len);
			break;
		}
	if (bytes_in(fd) != 0)
		cr_fail("%s: %d bytes more than were buffered", what, bytes_in(fd));
}

static void expect_eof(const char *what, int fd)
{
	ssize_t n = read(fd, buf, 1);

	if (n != 0)
		cr_fail("%s: fd %d: read gave %zd (%s), not end of file: a write end survived",
			what, fd, n, n < 0 ? strerror(errno) : "data");
}

static void check_a(void)
{
	expect_bytes("pipe A", A_R, A_BYTES, 0xa);
	/* The dup reads the same pipe. */
	if (write(A_W, "ab", 2) != 2 || read(A_DUP, buf, 2) != 2 || memcmp(buf, "ab", 2))
		cr_fail("pipe A: what fd %d writes is not read by its dup %d", A_W, A_DUP);
}

static void check_b(void)
{
	expect_size("pipe B", B_R, B_SIZE);
	expect_size("pipe B", B_W, B_SIZE);
	CR_EXPECT_EQ("pipe B: bytes buffered", bytes_in(B_R), B_SIZE);
	if (write(B_W, "x", 1) != -1 || errno != EAGAIN)
		cr_fail("pipe B: a write to the full pipe did not fail with EAGAIN");
	expect_bytes("pipe B", B_R, B_SIZE, 0xb);
	if (write(B_W, "y", 1) != 1 || read(B_R, buf, 2) != 1 || buf[0] != 'y')
		cr_fail("pipe B: a byte written after draining did not come through");
}

static void check_c(void)
{
	expect_size("pipe C", C_W, C_SIZE);
	expect_bytes("pipe C", C_R, C_BYTES, 0xc);
	if (read(C_R, buf, 1) != -1 || errno != EAGAIN)
		cr_fail("pipe C: reading the empty O_NONBLOCK end did not fail with EAGAIN");
}

static void check_d(void)
{
	for (size_t i = 0, w = 0, off = 0; i < CR_ARRAY_SIZE(d_packets); i++) {
		ssize_t n = read(D_R, buf, sizeof(buf));

		pattern(d_writes[w], 0xd0 + w);
		if (n != (ssize_t)d_packets[i] || memcmp(buf, want + off, n))
			cr_fail("pipe D: packet %zu: read %zd bytes, expected %zu%s", i, n,
				d_packets[i], n == (ssize_t)d_packets[i] ? " (contents differ)" : "");
		off += d_packets[i];
		if (off == d_writes[w]) {
			w++;
			off = 0;
		}
	}
	CR_EXPECT_EQ("pipe D: bytes left", bytes_in(D_R), 0);
	if (write(D_W, "12", 2) != 2 || write(D_W, "345", 3) != 3 || read(D_R, buf, 100) != 2 ||
	    read(D_R, buf + 2, 100) != 3 || memcmp(buf, "12345", 5))
		cr_fail("pipe D: new writes are not kept as packets");
}

static void check_e_f(void)
{
	char self[64];
	int r;

	expect_bytes("pipe E", E_R, E_BYTES, 0xe);
	expect_eof("pipe E", E_R);
	if (write(F_W, "x", 1) != -1 || errno != EPIPE)
		cr_fail("pipe F: a write without a reader did not fail with EPIPE");
	snprintf(self, sizeof(self), "/proc/self/fd/%d", F_W);
	r = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (r < 0) {
		cr_fail("pipe F: can't open a reader through %s: %s", self, strerror(errno));
		return;
	}
	expect_bytes("pipe F", r, F_BYTES, 0xf);
	close(r);
}

static void __attribute__((noreturn)) child1(void)
{
	char self[64];

	snprintf(self, sizeof(self), "/proc/self/fd/%d", A_R);
	to_fd(open(self, O_RDONLY | O_CLOEXEC), A_R2);
	record_flags();
	cr_child_ready();
	cr_wait_term();
	check_flags();
	/* fd 13 is another description of the same pipe... */
	if (write(A_W, "abc", 3) != 3 || bytes_in(A_R2) != 3 || read(A_R2, buf, 3) != 3 ||
	    memcmp(buf, "abc", 3))
		cr_fail("child1: fd %d does not read what fd %d writes", A_R2, A_W);
	/* ...and the parent reads this from its fd 10. */
	if (write(A_W, child1_msg, sizeof(child1_msg)) != sizeof(child1_msg))
		cr_fail("child1: write to pipe A: %s", strerror(errno));
	cr_child_exit();
}

static void __attribute__((noreturn)) child2(void)
{
	for (int fd = A_R; fd <= G_R; fd++)
		close(fd);
	put(G_W, G_BYTES, 0x6);
	record_flags();
	cr_child_ready();
	cr_wait_term();
	check_flags();
	if (write(G_W, child2_msg, sizeof(child2_msg)) != sizeof(child2_msg))
		cr_fail("child2: write to pipe G: %s", strerror(errno));
	cr_child_exit();
}

static void expect_msg(const char *what, int fd, const char *msg, size_t len)
{
	CR_EXPECT_EQ(what, bytes_in(fd), len);
	if (read(fd, buf, len + 1) != (ssize_t)len || memcmp(buf, msg, len))
		cr_fail("%s: did not read '%s'", what, msg);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child1", "child2" };
	pid_t kids[2];

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		cr_die("SIGPIPE: %s", strerror(errno));
	setup_pipes();
	setup_half_pipes();
	kids[0] = cr_spawn("child1");
	if (kids[0] == 0)
		child1();
	make_pipe(G_R, G_W, 0);
	kids[1] = cr_spawn("child2");
	if (kids[1] == 0)
		child2();
	close(G_W);
	record_flags();
	cr_ready();
	cr_wait_term();
	check_flags();
	check_a();
	check_b();
	check_c();
	check_d();
	check_e_f();
	expect_bytes("pipe G", G_R, G_BYTES, 0x6);
	cr_finish_children(kids, roles, 2);
	expect_msg("pipe A, from child1", A_R, child1_msg, sizeof(child1_msg));
	expect_msg("pipe G, from child2", G_R, child2_msg, sizeof(child2_msg));
	expect_eof("pipe G", G_R);
	return cr_report();
}
