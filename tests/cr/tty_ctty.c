/*
 * A session with a pty as its controlling terminal: the root (session
 * leader) opens the slave without O_NOCTTY, opens /dev/tty, and forks a
 * child into its own process group, which it makes the foreground group;
 * a second child stays in the root's (background) group.
 * After restore: /proc/PID/stat tty_nr of all three names the slave again,
 * the terminal's session is the root's and its foreground group the
 * child's; /dev/tty still reaches the pty; a window size change (TIOCSWINSZ
 * on the master) sends SIGWINCH to the foreground group only.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <asm/termbits.h>

enum { M = 10, S = 11, DEVTTY = 12 };

static volatile sig_atomic_t winches;
static unsigned int slave_nr;	/* /proc/PID/stat encoding of the slave */

static void on_winch(int sig)
{
	(void)sig;
	winches++;
}

static unsigned int stat_tty_nr(void)
{
	char buf[1024], *p;
	unsigned int nr = 0;

	cr_read_file("/proc/self/stat", buf, sizeof(buf));
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %u", &nr) != 1)
		cr_fail("can't parse /proc/self/stat");
	return nr;
}

static void move_to(int fd, int want)
{
	if (fd < 0)
		cr_die("open for fd %d: %s", want, strerror(errno));
	if (fd != want && (dup3(fd, want, 0) != want || close(fd)))
		cr_die("dup3 to %d: %s", want, strerror(errno));
}

static void check_ctty(const char *who)
{
	unsigned int nr = stat_tty_nr();

	if (nr != slave_nr)
		cr_fail("%s: /proc/self/stat tty_nr is %#x, expected %#x (the slave)", who, nr, slave_nr);
}

static pid_t fg_pgrp(void)
{
	pid_t pg = -1;

	if (ioctl(S, TIOCGPGRP, &pg))
		cr_fail("TIOCGPGRP: %s", strerror(errno));
	return pg;
}

static void wait_winch(const char *who)
{
	for (int i = 0; i < 500 && !winches; i++)
		cr_sleep_ms(10);
	if (!winches)
		cr_fail("%s: no SIGWINCH after the window size changed", who);
}

static void child_fg(void)
{
	if (setpgid(0, 0))
		cr_die("setpgid: %s", strerror(errno));
	cr_child_ready();
	cr_wait_term();
	check_ctty("fg child");
	CR_EXPECT_EQ("fg child: foreground group", fg_pgrp(), getpgrp());
	wait_winch("fg child");
	cr_child_exit();
}

static void child_bg(void)
{
	cr_child_ready();
	cr_wait_term();
	check_ctty("bg child");
	/* The root changes the window before it stops us: SIGWINCH, if any, has come. */
	CR_EXPECT_EQ("bg child: SIGWINCHes received", winches, 0);
	cr_child_exit();
}

static void expect_master(const char *want)
{
	char buf[64];
	size_t got = 0, len = strlen(want);

	while (got < len) {
		struct pollfd p = { M, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			break;
		n = read(M, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	if (got != len || memcmp(buf, want, len))
		cr_fail("master read %zu bytes '%.*s', expected '%s'", got, (int)got, buf, want);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "fg", "bg" };
	struct sigaction sa = { .sa_handler = on_winch };
	struct winsize ws = { 40, 100, 0, 0 };
	struct stat st;
	pid_t kids[2], sid = 0;
	unsigned int dev = 0;
	int zero = 0;

	cr_init(argc, argv);
	if (sigaction(SIGWINCH, &sa, NULL))
		cr_die("sigaction: %s", strerror(errno));
	move_to(open("/dev/ptmx", O_RDWR | O_NOCTTY), M);
	if (ioctl(M, TIOCSPTLCK, &zero) || ioctl(M, TIOCSWINSZ, &ws))
		cr_die("unlock/TIOCSWINSZ: %s", strerror(errno));
	{
		unsigned int n;
		char path[32];

		if (ioctl(M, TIOCGPTN, &n))
			cr_die("TIOCGPTN: %s", strerror(errno));
		snprintf(path, sizeof(path), "/dev/pts/%u", n);
		move_to(open(path, O_RDWR), S);	/* no O_NOCTTY: our controlling terminal */
	}
	if (fstat(S, &st))
		cr_die("fstat: %s", strerror(errno));
	slave_nr = (minor(st.st_rdev) & 0xff) | (major(st.st_rdev) << 8) |
		   ((minor(st.st_rdev) & ~0xffu) << 12);
	check_ctty("root");
	move_to(open("/dev/tty", O_RDWR), DEVTTY);
	kids[0] = cr_spawn("fg");
	if (kids[0] == 0)
		child_fg();
	kids[1] = cr_spawn("bg");
	if (kids[1] == 0)
		child_bg();
	if (ioctl(S, TIOCSPGRP, &kids[0]))
		cr_die("TIOCSPGRP: %s", strerror(errno));
	if (fg_pgrp() != kids[0] || cr_failures())
		cr_die("setup: the foreground group is %d, not %d", fg_pgrp(), kids[0]);
	cr_ready();
	cr_wait_term();

	check_ctty("root");
	CR_EXPECT_EQ("foreground group", fg_pgrp(), kids[0]);
	if (ioctl(S, TIOCGSID, &sid))
		cr_fail("TIOCGSID: %s", strerror(errno));
	CR_EXPECT_EQ("session of the terminal", sid, getsid(0));
	CR_EXPECT_EQ("we lead our session", getsid(0), getpid());
	if (fstat(DEVTTY, &st) || st.st_rdev != makedev(5, 0) || ioctl(DEVTTY, TIOCGDEV, &dev) ||
	    dev != slave_nr)
		cr_fail("/dev/tty descriptor: rdev %u:%u, stands for %#x, expected 5:0 for %#x",
			major(st.st_rdev), minor(st.st_rdev), dev, slave_nr);
	if (write(DEVTTY, "via /dev/tty\n", 13) != 13)
		cr_fail("write on /dev/tty: %s", strerror(errno));
	expect_master("via /dev/tty\r\n");
	/* The window changes: the foreground child hears it, the background ones do not. */
	ws.ws_row = 24;
	if (ioctl(M, TIOCSWINSZ, &ws))
		cr_fail("TIOCSWINSZ: %s", strerror(errno));
	cr_finish_children(kids, roles, 2);
	CR_EXPECT_EQ("root: SIGWINCHes received (background)", winches, 0);
	return cr_report();
}
