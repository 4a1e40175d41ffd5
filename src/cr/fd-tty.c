#define LOG_PREFIX "tty: "
/*
 * Terminals. Unix98 pseudo-terminal pairs the tree holds the master of
 * (/dev/ptmx, and its slave /dev/pts/N) are saved and recreated; the pair is
 * named by its pts index N. The pair's state (the slave's termios, window
 * size, packet mode, lock, exclusive modes) is read through a duplicate of
 * the master's description (pidfd_getfd) and saved once, in the first
 * fd_entry of its master. A terminal whose master is not the tree's (the
 * user's terminal, a pty held by a launcher) makes the dump fail unless it
 * is declared with --external tty; it is then handed back at restore with
 * --inherit-fd N:tty.
 *
 * The restorer creates each pair with the same index: the kernel gives the
 * lowest free index of the devpts instance, so it opens ptmx until it gets
 * N, holding the lower ones meanwhile, and fails if N is taken. A pts name
 * is visible to the program (ttyname, /proc/PID/fd, a path it may reopen),
 * so restoring under another index would be a silent change; a private
 * devpts instance per job (mount namespace) makes the index always free.
 *
 * Bytes written on the slave and not yet read on the master (a rank's
 * output its launcher has not read yet) are read from the master while the
 * tree is frozen, saved, and written back at restore through the slave with
 * output processing (OPOST) off for that write, so they arrive on the
 * master as they were: the master's line discipline is always raw. If the
 * tree lives on (a failed dump, --leave-running), they are written back the
 * same way before it is released. Bytes written on the master and not yet
 * read on the slave cannot be read without consuming them and the slave's
 * canonical-mode line state cannot be put back: they are dropped, with a
 * warning giving their count.
 *
 * Controlling terminals (/proc/PID/stat tty_nr) are recorded per process;
 * a session leader takes its terminal again with TIOCSCTTY right after its
 * setsid(), before it forks the rest of its session, and the foreground
 * group is set with TIOCSPGRP once the groups exist. A descriptor of
 * /dev/tty names its opener's controlling terminal: it is opened again by a
 * short-lived helper whose controlling terminal is the restored pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asm/termbits.h>

#include "cr.h"
#include "files.h"
#include "log.h"
#include "util.h"

#define PTS_MAJOR_FIRST 136	/* UNIX98_PTY_SLAVE_MAJOR, 8 majors of 256 */
#define PTS_MAJOR_LAST 143
#define EXTERNAL_TTY_ID "tty"

#define OUTPUT_MAX (1u << 20)	/* far above what a pty buffers */

struct tty_seen {
	uint32_t index;
	bool state_saved;
	bool input_counted;		/* the slave's unread input was reported */
};

struct tty_taken {			/* output read from a live master */
	uint32_t index;
	int master;			/* our copy of its description */
	uint8_t *data;
	size_t len;
};

struct rst_tty {
	uint32_t index;
	int master, slave;		/* ours; slave -1 unless needed */
	const TtyState *st;		/* the entry carrying the pair's state */
	bool need_slave, slave_excl;
	bool checked;			/* the devpts directory's slave is the master's peer */
	pid_t first_pid;		/* for messages */
};

static bool is_pts(dev_t rdev)
{
	return major(rdev) >= PTS_MAJOR_FIRST && major(rdev) <= PTS_MAJOR_LAST;
}

static uint32_t pts_index(dev_t rdev)
{
	return (major(rdev) - PTS_MAJOR_FIRST) * 256 + minor(rdev);
}

static bool is_ptmx(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 2;
}

bool tty_chrdev(dev_t rdev)
{
	/* tty0-63 and serial lines, /dev/tty, /dev/console, /dev/ptmx, /dev/pts/N */
	return major(rdev) == 4 || (major(rdev) == 5 && minor(rdev) <= 2) || is_pts(rdev);
}

/* A descriptor of ours for the description behind pid's fd. */
static int grab_fd(pid_t pid, int fd)
{
	int pfd = syscall(SYS_pidfd_open, pid, 0), r;

	if (pfd < 0)
		return log_errno(-errno, "pid %d: pidfd_open", pid);
	r = syscall(SYS_pidfd_getfd, pfd, fd, 0);
	if (r < 0)
		r = log_errno(-errno, "pid %d: can't get a copy of fd %d (pidfd_getfd)", pid, fd);
	close(pfd);
	return r;
}

/* ---- dump ---------------------------------------------------------------- */

static struct tty_seen *seen_pair(struct file_seen *fs, uint32_t index)
{
	for (int i = 0; i < fs->nr_ttys; i++)
		if (fs->ttys[i].index == index)
			return &fs->ttys[i];
	return NULL;
}

static int scan_one(struct file_seen *fs, pid_t pid)
{
	_cleanup_free_ int *fds = NULL;
	int nr, ret = list_fds(pid, &fds, &nr);

	for (int i = 0; i < nr && !ret; i++) {
		_cleanup_free_ char *info = NULL;
		const char *v;
		struct stat st;
		char rel[64];

		snprintf(rel, sizeof(rel), "/proc/%d/fd/%d", pid, fds[i]);
		if (stat(rel, &st) < 0 || !S_ISCHR(st.st_mode) || !is_ptmx(st.st_rdev))
			continue;
		snprintf(rel, sizeof(rel), "fdinfo/%d", fds[i]);
		if (read_proc_file(pid, 0, rel, &info) < 0 || !(v = fdinfo_field(info, "tty-index"))) {
			pr_err("pid %d: fd %d: /dev/ptmx without a tty-index in its fdinfo\n", pid, fds[i]);
			return -EOPNOTSUPP;
		}
		if (!seen_pair(fs, strtoul(v, NULL, 10))) {
			fs->ttys = xrealloc(fs->ttys, (fs->nr_ttys + 1) * sizeof(*fs->ttys));
			fs->ttys[fs->nr_ttys++] = (struct tty_seen){ .index = strtoul(v, NULL, 10) };
		}
	}
	return ret;
}

/* The pty masters held anywhere in the tree, before any descriptor is dumped. */
static int scan_tree(struct file_seen *fs)
{
	int ret = 0;

	fs->ttys_scanned = true;
	for (int i = 0; fs->tree && i < fs->tree->nr && !ret; i++)
		if (!fs->tree->items[i]->zombie)
			ret = scan_one(fs, fs->tree->items[i]->pid);
	return ret;
}

/*
 * A terminal the tree does not own: refused, or one external terminal.
 * what names it in messages.
 */
static int outside(struct file_seen *fs, pid_t pid, int fd, const char *what, dev_t rdev)
{
	if (!external_declared(fs, EXTERNAL_TTY_ID)) {
		if (fd >= 0)
			pr_err("pid %d: fd %d: %s is a terminal outside the tree (not a pty whose master "
			       "the tree holds); declare it with --external tty\n", pid, fd, what);
		else
			pr_err("pid %d: its controlling terminal %s is outside the tree (not a pty whose "
			       "master the tree holds); declare it with --external tty\n", pid, what);
		return -EOPNOTSUPP;
	}
	if (fs->external_tty_rdev && fs->external_tty_rdev != rdev) {
		pr_err("pid %d: %s is a second terminal outside the tree (%u:%u was the first); "
		       "--external tty covers one\n", pid, what, major(fs->external_tty_rdev),
		       minor(fs->external_tty_rdev));
		return -EOPNOTSUPP;
	}
	fs->external_tty_rdev = rdev;
	return 0;
}

/*
 * Write on the slave, with output processing off meanwhile, bytes that were
 * read from the master: they reach the master's (raw) side unchanged.
 */
static int give_back(int slave, uint32_t index, const uint8_t *data, size_t len)
{
	struct termios2 t, raw;
	int ret = 0;

	if (ioctl(slave, TCGETS2, &t) < 0)
		return log_errno(-errno, "/dev/pts/%u: TCGETS2", index);
	raw = t;
	raw.c_oflag &= ~OPOST;
	if (ioctl(slave, TCSETS2, &raw) < 0)
		return log_errno(-errno, "/dev/pts/%u: TCSETS2", index);
	for (size_t done = 0; done < len && !ret;) {
		struct pollfd p = { slave, POLLOUT, 0 };
		ssize_t n = write(slave, data + done, len - done);

		if (n > 0) {
			done += n;
			continue;
		}
		/* Full until the kernel moves what it holds on to the master's line discipline. */
		if ((n < 0 && errno != EAGAIN && errno != EINTR) || poll(&p, 1, 2000) <= 0)
			ret = log_errno(n < 0 && errno != EAGAIN ? -errno : -EIO, "/dev/pts/%u: can't give "
					"back %zu bytes of output its master had not read", index, len);
	}
	if (ioctl(slave, TCSETS2, &t) < 0 && !ret)
		ret = log_errno(-errno, "/dev/pts/%u: TCSETS2", index);
	return ret;
}

/* What the master can read now; its holder is frozen, so nobody else reads. */
static int take_output(struct fd_dump *d, int m, TtyState *ts)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = 0;

	while (!ret) {
		struct pollfd p = { m, POLLIN | POLLPRI, 0 };
		int avail = 0;
		ssize_t n;

		if (poll(&p, 1, 0) < 0 || ioctl(m, FIONREAD, &avail) < 0) {
			ret = log_errno(-errno, "pid %d: fd %d: pty %u: poll/FIONREAD", d->pid, d->fd,
					ts->index);
			break;
		}
		if (avail <= 0 || !(p.revents & POLLIN))
			break;
		if ((p.revents & POLLPRI) || len + avail > OUTPUT_MAX) {
			/* A packet-mode status byte would be consumed with the data: leave both. */
			ts->has_output_dropped = true;
			ts->output_dropped = avail;
			pr_warn("pid %d: fd %d: pty %u: %d bytes of output its master has not read are "
				"dropped\n", d->pid, d->fd, ts->index, avail);
			break;
		}
		buf = xrealloc(buf, len + avail + 1);
		n = read(m, buf + len, avail + (ts->packet ? 1 : 0));
		if (n <= 0 || (ts->packet && buf[len] != 0)) {
			/* What was read before is given back if the tree lives on. */
			pr_err("pid %d: fd %d: pty %u: reading its buffered output failed (%zd)\n", d->pid,
			       d->fd, ts->index, n);
			ret = -EIO;
			break;
		}
		if (ts->packet)
			memmove(buf + len, buf + len + 1, --n);
		len += n;
	}
	if (!len) {
		free(buf);
		return ret;
	}
	ts->has_output = true;
	ts->output.len = len;
	ts->output.data = xmalloc(len);
	memcpy(ts->output.data, buf, len);
	d->fs->taken = xrealloc(d->fs->taken, (d->fs->nr_taken + 1) * sizeof(*d->fs->taken));
	d->fs->taken[d->fs->nr_taken++] = (struct tty_taken){ ts->index, fcntl(m, F_DUPFD_CLOEXEC, 0),
							       buf, len };
	if (d->fs->taken[d->fs->nr_taken - 1].master < 0)
		ret = log_errno(-errno, "pid %d: fd %d: pty %u: F_DUPFD", d->pid, d->fd, ts->index);
	return ret;
}

static int save_pair_state(struct fd_dump *d, int m, TtyState *ts)
{
	struct termios2 t;
	struct winsize ws;
	int pkt, lck, excl;
	struct pollfd p = { m, POLLIN, 0 };
	pid_t sid = 0, pgrp = 0;

	if (ioctl(m, TCGETS2, &t) < 0 || ioctl(m, TIOCGWINSZ, &ws) < 0 || ioctl(m, TIOCGPKT, &pkt) < 0 ||
	    ioctl(m, TIOCGPTLCK, &lck) < 0 || ioctl(m, TIOCGEXCL, &excl) < 0 || poll(&p, 1, 0) < 0)
		return log_errno(-errno, "pid %d: fd %d: can't read the state of pty %u", d->pid, d->fd,
				 ts->index);
	/* No session, no group: ENOTTY, which means 0 here. */
	if (ioctl(m, TIOCGSID, &sid) < 0)
		sid = 0;
	if (ioctl(m, TIOCGPGRP, &pgrp) < 0)
		pgrp = 0;
	ts->termios = xmalloc(sizeof(*ts->termios));
	termios_state__init(ts->termios);
	ts->termios->iflag = t.c_iflag;
	ts->termios->oflag = t.c_oflag;
	ts->termios->cflag = t.c_cflag;
	ts->termios->lflag = t.c_lflag;
	ts->termios->line = t.c_line;
	ts->termios->cc.len = sizeof(t.c_cc);
	ts->termios->cc.data = xmalloc(sizeof(t.c_cc));
	memcpy(ts->termios->cc.data, t.c_cc, sizeof(t.c_cc));
	ts->termios->ispeed = t.c_ispeed;
	ts->termios->ospeed = t.c_ospeed;
	ts->has_ws_row = ts->has_ws_col = ts->has_ws_xpixel = ts->has_ws_ypixel = true;
	ts->ws_row = ws.ws_row;
	ts->ws_col = ws.ws_col;
	ts->ws_xpixel = ws.ws_xpixel;
	ts->ws_ypixel = ws.ws_ypixel;
	ts->has_packet = ts->has_locked = ts->has_master_excl = ts->has_hup = true;
	ts->packet = pkt;
	ts->locked = lck;
	ts->master_excl = excl;
	ts->hup = !!(p.revents & POLLHUP);
	ts->has_sid = ts->has_pgrp = true;
	ts->sid = sid > 0 ? sid : 0;
	ts->pgrp = pgrp > 0 ? pgrp : 0;
	return take_output(d, m, ts);
}

/* A slave of the live pair behind our master copy, unlocked for the open if need be. */
static int live_slave(int m, uint32_t index)
{
	int lck = 0, zero = 0, s;

	if (ioctl(m, TIOCGPTLCK, &lck) < 0 || (lck && ioctl(m, TIOCSPTLCK, &zero) < 0))
		return log_errno(-errno, "/dev/pts/%u: can't unlock it", index);
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (s < 0)
		s = log_errno(-errno, "/dev/pts/%u: TIOCGPTPEER", index);
	if (lck && ioctl(m, TIOCSPTLCK, &lck) < 0)
		pr_perror("/dev/pts/%u: can't lock it again", index);
	return s;
}

int ttys_dump_give_back(struct file_seen *fs)
{
	int ret = 0;

	for (int i = 0; i < fs->nr_taken; i++) {
		struct tty_taken *t = &fs->taken[i];
		int s = live_slave(t->master, t->index);

		if (s < 0 || give_back(s, t->index, t->data, t->len) < 0) {
			pr_err("/dev/pts/%u: %zu bytes of output its master had not read are lost\n",
			       t->index, t->len);
			ret = -EIO;
		}
		if (s >= 0)
			close(s);
	}
	return ret;
}

void ttys_dump_free(struct file_seen *fs)
{
	for (int i = 0; i < fs->nr_taken; i++) {
		if (fs->taken[i].master >= 0)
			close(fs->taken[i].master);
		free(fs->taken[i].data);
	}
	free(fs->taken);
	fs->taken = NULL;
	fs->nr_taken = 0;
}

static int save_slave_state(struct fd_dump *d, int s, struct tty_seen *pair, TtyState *ts)
{
	int excl, inq = 0;

	if (ioctl(s, TIOCGEXCL, &excl) < 0 || ioctl(s, FIONREAD, &inq) < 0)
		return log_errno(-errno, "pid %d: fd %d: can't read the state of %s", d->pid, d->fd,
				 d->target);
	ts->has_slave_excl = true;
	ts->slave_excl = excl;
	if (inq > 0 && !pair->input_counted) {
		pair->input_counted = true;
		ts->has_input_dropped = true;
		ts->input_dropped = inq;
		pr_warn("pid %d: fd %d: %d bytes written on the master of %s and not yet read are "
			"dropped\n", d->pid, d->fd, inq, d->target);
	}
	return 0;
}

/* /dev/tty: which terminal it stands for (TIOCGDEV). */
static int real_tty(struct fd_dump *d, dev_t *rdev)
{
	_cleanup_close_ int fd = grab_fd(d->pid, d->fd);
	unsigned int dev;

	if (fd < 0)
		return fd;
	if (ioctl(fd, TIOCGDEV, &dev) < 0)
		return log_errno(-errno, "pid %d: fd %d (%s): TIOCGDEV", d->pid, d->fd, d->target);
	*rdev = makedev((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
	return 0;
}

/* The devpts instance on /dev/pts as pid sees it (in its mount namespace). */
static int devpts_of(pid_t pid, dev_t *dev)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/root/dev/pts", pid);
	if (stat(path, &st) < 0)
		return log_errno(-errno, "can't stat %s", path);
	*dev = st.st_dev;
	return 0;
}

static int same_devpts(struct fd_dump *d)
{
	dev_t dev;
	int ret = devpts_of(d->pid, &dev);

	if (ret < 0)
		return ret;
	if (dev != d->st.st_dev) {
		pr_err("pid %d: fd %d: %s belongs to another devpts instance than its /dev/pts; "
		       "not supported\n", d->pid, d->fd, d->target);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int tty_dump(struct fd_dump *d, FdEntry *e)
{
	struct file_seen *fs = d->fs;
	dev_t rdev = d->st.st_rdev;
	bool dev_tty = major(rdev) == 5 && minor(rdev) == 0, master = is_ptmx(rdev);
	struct tty_seen *pair;
	_cleanup_close_ int fd = -1;
	const char *v;
	TtyState *ts;
	int ret;

	if (!fs->ttys_scanned && (ret = scan_tree(fs)) < 0)
		return ret;
	if (dev_tty && (ret = real_tty(d, &rdev)) < 0)
		return ret;
	if (master) {
		if (!(v = fdinfo_field(d->fdinfo, "tty-index")))
			return log_errno(-EOPNOTSUPP, "pid %d: fd %d: no tty-index in its fdinfo", d->pid, d->fd);
		pair = seen_pair(fs, strtoul(v, NULL, 10));
	} else {
		pair = is_pts(rdev) ? seen_pair(fs, pts_index(rdev)) : NULL;
	}
	if (!pair) {
		if ((ret = outside(fs, d->pid, d->fd, d->target, rdev)) < 0)
			return ret;
		e->kind = FD_KIND__FD_EXTERNAL;
		e->external_id = xstrdup(EXTERNAL_TTY_ID);
		return 0;
	}
	if (!master && !dev_tty && (ret = same_devpts(d)) < 0)
		return ret;
	ts = e->tty = xmalloc(sizeof(*ts));
	tty_state__init(ts);
	ts->index = pair->index;
	ts->master = master;
	ts->has_dev_tty = ts->dev_tty = dev_tty;
	if (dev_tty)
		return 0;
	if ((fd = grab_fd(d->pid, d->fd)) < 0)
		return fd;
	if (!master)
		return save_slave_state(d, fd, pair, ts);
	if (pair->state_saved)
		return 0;
	pair->state_saved = true;
	return save_pair_state(d, fd, ts);
}

/*
 * Which pair of the tree pid's fd is an end of, or NULL. A master says only
 * its index: it counts when pid sees the tree's devpts instance (ptmx_same).
 */
static struct tty_seen *holds_pair(struct file_seen *fs, pid_t pid, const char *fd, dev_t devpts,
				   bool ptmx_same)
{
	_cleanup_free_ char *info = NULL;
	char path[320];
	const char *v;
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fd);
	if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode))
		return NULL;
	if (is_pts(st.st_rdev) && st.st_dev == devpts)
		return seen_pair(fs, pts_index(st.st_rdev));
	if (!is_ptmx(st.st_rdev) || !ptmx_same)
		return NULL;
	snprintf(path, sizeof(path), "fdinfo/%s", fd);
	if (read_proc_file(pid, 0, path, &info) < 0 || !(v = fdinfo_field(info, "tty-index")))
		return NULL;
	return seen_pair(fs, strtoul(v, NULL, 10));
}

/* Does pid, outside the tree, hold an end of one of the tree's pairs? */
static int check_outside_one(struct file_seen *fs, pid_t pid, dev_t pts)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *fe;
	char path[64];
	struct stat st;
	/* A process that sees another devpts on /dev/pts has masters of another index space. */
	bool same;

	snprintf(path, sizeof(path), "/proc/%d/root/dev/pts", pid);
	same = stat(path, &st) == 0 && st.st_dev == pts;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(d = opendir(path)))
		return 0;	/* gone, or a kernel thread */
	while ((fe = readdir(d))) {
		struct tty_seen *p = fe->d_name[0] == '.' ? NULL : holds_pair(fs, pid, fe->d_name, pts, same);

		if (p) {
			pr_err("pid %d (outside the tree) holds fd %s of the pty /dev/pts/%u, whose master "
			       "the tree holds; not supported\n", pid, fe->d_name, p->index);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/*
 * A pair of the tree with an end held by a process outside it would come
 * back cut from that process: refused, as a pipe would be.
 */
int ttys_dump_check_outside(struct file_seen *fs)
{
	_cleanup_closedir_ DIR *proc = NULL;
	struct dirent *de;
	dev_t pts;
	int ret;

	if (!fs->nr_ttys)
		return 0;
	if ((ret = devpts_of(pstree_root(fs->tree)->pid, &pts)) < 0)
		return ret;
	proc = opendir("/proc");
	if (!proc)
		return log_errno(-errno, "can't list /proc");
	while ((de = readdir(proc)) && !ret) {
		pid_t pid = atoi(de->d_name);

		if (pid > 0 && pid != getpid() && !pstree_find(fs->tree, pid))
			ret = check_outside_one(fs, pid, pts);
	}
	return ret;
}

/* The controlling terminal of the process, from /proc/PID/stat. */
int tty_dump_ctty(struct dump_ctx *c, FdsEntry *fe)
{
	struct file_seen *fs = c->files;
	struct pstree_item *leader;
	pid_t pid = c->it->pid;
	struct proc_stat st;
	char what[48];
	dev_t rdev;
	int ret;

	if ((ret = proc_parse_stat(pid, 0, &st)) < 0)
		return ret;
	if (!st.tty_nr)
		return 0;
	if (!fs->ttys_scanned && (ret = scan_tree(fs)) < 0)
		return ret;
	rdev = makedev((st.tty_nr >> 8) & 0xfff, (st.tty_nr & 0xff) | ((st.tty_nr >> 12) & 0xfff00));
	leader = fs->tree ? pstree_find(fs->tree, st.session) : NULL;
	if (st.session != pid && (!leader || leader->zombie)) {
		pr_err("pid %d: its controlling terminal belongs to session %d, whose leader is not in "
		       "the tree; not supported\n", pid, st.session);
		return -EOPNOTSUPP;
	}
	fe->ctty = xmalloc(sizeof(*fe->ctty));
	ctty_entry__init(fe->ctty);
	fe->ctty->has_fg_pgrp = true;
	fe->ctty->fg_pgrp = st.tpgid > 0 ? st.tpgid : 0;
	if (is_pts(rdev) && seen_pair(fs, pts_index(rdev))) {
		fe->ctty->has_index = true;
		fe->ctty->index = pts_index(rdev);
		return 0;
	}
	if (is_pts(rdev))
		snprintf(what, sizeof(what), "/dev/pts/%u", pts_index(rdev));
	else
		snprintf(what, sizeof(what), "(device %u:%u)", major(rdev), minor(rdev));
	if ((ret = outside(fs, pid, -1, what, rdev)) < 0)
		return ret;
	fe->ctty->external_id = xstrdup(EXTERNAL_TTY_ID);
	return 0;
}

/* ---- restore ------------------------------------------------------------- */

static struct rst_tty *find_pair(struct rst_ctx *rc, uint32_t index)
{
	for (int i = 0; i < rc->nr_ttys; i++)
		if (rc->ttys[i].index == index)
			return &rc->ttys[i];
	return NULL;
}

static struct rst_tty *add_pair(struct rst_ctx *rc, uint32_t index, pid_t pid)
{
	struct rst_tty *p = find_pair(rc, index);

	if (p)
		return p;
	rc->ttys = xrealloc(rc->ttys, (rc->nr_ttys + 1) * sizeof(*rc->ttys));
	p = &rc->ttys[rc->nr_ttys++];
	*p = (struct rst_tty){ .index = index, .master = -1, .slave = -1, .first_pid = pid };
	return p;
}

static int cmp_pair(const void *a, const void *b)
{
	const struct rst_tty *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

static const struct inherit_fd *external_tty(struct rst_ctx *rc)
{
	for (int i = 0; rc->opts && i < rc->opts->nr_inherit; i++)
		if (!strcmp(rc->opts->inherit[i].id, EXTERNAL_TTY_ID))
			return &rc->opts->inherit[i];
	return NULL;
}

static int collect_pairs(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;
		pid_t pid = rc->tasks[i].it->pid;

		for (size_t k = 0; fds && k < fds->n_fds; k++) {
			const FdEntry *e = fds->fds[k];
			struct rst_tty *p;

			if (e->kind != FD_KIND__FD_TTY)
				continue;
			if (!e->tty) {
				pr_err("pid %d: fd %u: a terminal without its tty_state in the image\n", pid, e->fd);
				return -EBADMSG;
			}
			p = add_pair(rc, e->tty->index, pid);
			if (e->tty->termios)
				p->st = e->tty;
			p->need_slave |= !e->tty->master;
			p->slave_excl |= e->tty->slave_excl;
		}
		if (fds && fds->ctty && fds->ctty->has_index)
			add_pair(rc, fds->ctty->index, pid)->need_slave = true;
		if (fds && fds->ctty && fds->ctty->external_id && !external_tty(rc)) {
			pr_err("pid %d: its controlling terminal was external: give it with "
			       "--inherit-fd N:tty\n", pid);
			return -ENOENT;
		}
	}
	for (int i = 0; i < rc->nr_ttys; i++) {
		const TtyState *st = rc->ttys[i].st;

		if (!st || st->termios->cc.len != sizeof(((struct termios2 *)0)->c_cc)) {
			pr_err("pid %d: /dev/pts/%u: the image has no (valid) state for its pair\n",
			       rc->ttys[i].first_pid, rc->ttys[i].index);
			return -EBADMSG;
		}
	}
	if (rc->nr_ttys)
		qsort(rc->ttys, rc->nr_ttys, sizeof(*rc->ttys), cmp_pair);
	return 0;
}

/* Descriptors held at once: the lower indices while a master is created, our ends. */
int ttys_restore_fd_need(struct rst_ctx *rc)
{
	uint64_t top = 0, ends = 0;

	for (int i = 0; i < rc->tree.nr; i++) {
		FdsEntry *fds = rc->tasks[i].fds;

		for (size_t k = 0; fds && k < fds->n_fds; k++) {
			if (!fds->fds[k]->tty)
				continue;
			top = max_t(uint64_t, top, fds->fds[k]->tty->index + 1ull);
			ends += 2;
		}
	}
	return min_t(uint64_t, top + ends, 1 << 20);
}

/* A master with exactly this index: lower free ones are held until we get it. */
static int open_master(struct rst_ctx *rc, struct rst_tty *p)
{
	const char *ptmx = rc->ptmx_path ? rc->ptmx_path : "/dev/ptmx";
	int *fillers = NULL, nr = 0, fd = -1, ret = 0;

	for (;;) {
		unsigned int got;

		fd = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			ret = log_errno(-errno, "pid %d: /dev/pts/%u: can't open %s", p->first_pid, p->index, ptmx);
			break;
		}
		if (ioctl(fd, TIOCGPTN, &got) < 0) {
			ret = log_errno(-errno, "%s: TIOCGPTN", ptmx);
			break;
		}
		if (got == p->index)
			break;
		if (got > p->index) {
			pr_err("pid %d: /dev/pts/%u is taken on this machine (%s gave %u): the pty cannot "
			       "get its index back; a private devpts instance avoids this\n", p->first_pid,
			       p->index, ptmx, got);
			ret = -EEXIST;
			break;
		}
		fillers = xrealloc(fillers, (nr + 1) * sizeof(int));
		fillers[nr++] = fd;
	}
	for (int i = 0; i < nr; i++)
		close(fillers[i]);
	free(fillers);
	if (ret < 0) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	p->master = fd;
	return 0;
}

static int devpts_dir(struct rst_ctx *rc)
{
	if (rc->devpts_dirfd >= 0)
		return rc->devpts_dirfd;
	rc->devpts_dirfd = open("/dev/pts", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rc->devpts_dirfd < 0)
		return log_errno(-errno, "can't open /dev/pts");
	rc->own_devpts_dirfd = true;
	return rc->devpts_dirfd;
}

/* The master's own peer is the file we opened (same devpts instance, same index). */
static bool is_peer(struct rst_tty *p, const struct stat *st)
{
	struct stat peer;
	int fd;

	if (p->checked)
		return true;
	fd = ioctl(p->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("/dev/pts/%u: TIOCGPTPEER", p->index);
		return false;
	}
	p->checked = fstat(fd, &peer) == 0 && peer.st_dev == st->st_dev && peer.st_rdev == st->st_rdev;
	close(fd);
	return p->checked;
}

/* The slave of pair p, checked to be it (and not another instance's). */
static int open_slave(struct rst_ctx *rc, struct rst_tty *p, int flags)
{
	char name[16];
	struct stat st;
	int dir = devpts_dir(rc), fd;

	if (dir < 0)
		return dir;
	snprintf(name, sizeof(name), "%u", p->index);
	fd = openat(dir, name, flags | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "pid %d: can't open /dev/pts/%u", p->first_pid, p->index);
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || !is_pts(st.st_rdev) ||
	    pts_index(st.st_rdev) != p->index || !is_peer(p, &st)) {
		close(fd);
		pr_err("/dev/pts/%u is not the slave of the master just created (is the ptmx in use "
		       "that of the devpts directory?)\n", p->index);
		return -ESTALE;
	}
	return fd;
}

static int apply_state(struct rst_tty *p)
{
	const TtyState *s = p->st;
	struct termios2 t = { .c_iflag = s->termios->iflag, .c_oflag = s->termios->oflag,
			      .c_cflag = s->termios->cflag, .c_lflag = s->termios->lflag,
			      .c_line = s->termios->line, .c_ispeed = s->termios->ispeed,
			      .c_ospeed = s->termios->ospeed };
	struct winsize ws = { s->ws_row, s->ws_col, s->ws_xpixel, s->ws_ypixel };
	int pkt = s->packet;

	memcpy(t.c_cc, s->termios->cc.data, sizeof(t.c_cc));
	if (ioctl(p->master, TCSETS2, &t) < 0)
		return log_errno(-errno, "/dev/pts/%u: can't set its termios", p->index);
	if (ioctl(p->master, TIOCSWINSZ, &ws) < 0 || ioctl(p->master, TIOCPKT, &pkt) < 0)
		return log_errno(-errno, "/dev/pts/%u: can't set its window size or packet mode", p->index);
	if (s->master_excl && ioctl(p->master, TIOCEXCL) < 0)
		return log_errno(-errno, "/dev/pts/%u: TIOCEXCL on the master", p->index);
	if (p->slave >= 0 && p->slave_excl && ioctl(p->slave, TIOCEXCL) < 0)
		return log_errno(-errno, "/dev/pts/%u: TIOCEXCL", p->index);
	return 0;
}

/* The output the master had not read, in again through the slave. */
static int restore_output(struct rst_ctx *rc, struct rst_tty *p)
{
	int s = open_slave(rc, p, O_RDWR | O_NONBLOCK), ret;

	if (s < 0)
		return s;
	ret = give_back(s, p->index, p->st->output.data, p->st->output.len);
	close(s);
	return ret;
}

/*
 * Every pair, in index order, before any other descriptor: unlocked for now
 * (ttys_restore_lock() locks again those that were locked).
 */
int ttys_restore_prepare(struct rst_ctx *rc)
{
	int unlock = 0, ret = collect_pairs(rc);

	for (int i = 0; i < rc->nr_ttys && !ret; i++)
		ret = open_master(rc, &rc->ttys[i]);
	for (int i = 0; i < rc->nr_ttys && !ret; i++) {
		struct rst_tty *p = &rc->ttys[i];

		if (ioctl(p->master, TIOCSPTLCK, &unlock) < 0)
			return log_errno(-errno, "/dev/pts/%u: can't unlock it", p->index);
		/* Every slave closed at dump: opened and closed once, so the master reads EIO. */
		if ((p->need_slave || p->st->hup) && (p->slave = open_slave(rc, p, O_RDWR)) < 0)
			return p->slave;
		ret = apply_state(p);
		if (!ret && p->st->has_output && p->st->output.len)
			ret = restore_output(rc, p);
		if (!ret && !p->need_slave) {
			close(p->slave);
			p->slave = -1;
		}
	}
	return ret;
}

int ttys_restore_lock(struct rst_ctx *rc)
{
	int lock = 1;

	for (int i = 0; i < rc->nr_ttys; i++)
		if (rc->ttys[i].st->locked && ioctl(rc->ttys[i].master, TIOCSPTLCK, &lock) < 0)
			return log_errno(-errno, "/dev/pts/%u: can't lock it again", rc->ttys[i].index);
	return 0;
}

void ttys_restore_release(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->nr_ttys; i++) {
		if (rc->ttys[i].master >= 0)
			close(rc->ttys[i].master);
		if (rc->ttys[i].slave >= 0)
			close(rc->ttys[i].slave);
	}
	free(rc->ttys);
	rc->ttys = NULL;
	rc->nr_ttys = 0;
	if (rc->own_devpts_dirfd && rc->devpts_dirfd >= 0)
		close(rc->devpts_dirfd);
	rc->devpts_dirfd = -1;
	rc->own_devpts_dirfd = false;
}

/*
 * /dev/tty opened by a helper whose controlling terminal is the pair: a new
 * session leader that takes the slave, opens /dev/tty, and waits until we
 * have copied that descriptor and kill it. Its exit gives the terminal up
 * again (a pty is not hung up when its session leader exits).
 */
static int open_dev_tty(struct rst_tty *p, const FdEntry *e)
{
	int sync[2], fd = -1, child_fd = -1, pfd;
	pid_t pid;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return log_errno(-errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(sync[0]);
		close(sync[1]);
		return log_errno(-errno, "fork");
	}
	if (pid == 0) {
		int r = -1;

		signal(SIGHUP, SIG_IGN);
		close(sync[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setsid() >= 0 && ioctl(p->slave, TIOCSCTTY, 0) == 0)
			r = open("/dev/tty", (e->flags & (O_ACCMODE | O_NONBLOCK)) | O_NOCTTY | O_CLOEXEC);
		if (r < 0)
			r = -errno;
		if (write(sync[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		for (;;)
			pause();	/* until the restorer has its copy and kills us */
	}
	close(sync[1]);
	if (read(sync[0], &child_fd, sizeof(child_fd)) != sizeof(child_fd) || child_fd < 0) {
		pr_err("fd %u: can't open /dev/tty for /dev/pts/%u: %s\n", e->fd, p->index,
		       strerror(child_fd < 0 ? -child_fd : EIO));
	} else if ((pfd = syscall(SYS_pidfd_open, pid, 0)) < 0) {
		pr_perror("pidfd_open %d", pid);
	} else {
		fd = syscall(SYS_pidfd_getfd, pfd, child_fd, 0);
		if (fd < 0)
			pr_perror("fd %u: pidfd_getfd of the helper's /dev/tty", e->fd);
		close(pfd);
	}
	close(sync[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return fd < 0 ? -EIO : fd;
}

static int set_status(const FdEntry *e, int fd)
{
	if (fcntl(fd, F_SETFL, e->flags & (O_NONBLOCK | O_APPEND | O_ASYNC)) < 0) {
		int err = log_errno(-errno, "fd %u: %s: can't set flags 0%o", e->fd, e->path, e->flags);
		close(fd);
		return err;
	}
	return fd;
}

static int tty_open(struct rst_ctx *rc, const FdEntry *e)
{
	struct rst_tty *p = e->tty ? find_pair(rc, e->tty->index) : NULL;
	int fd;

	if (!p) {
		pr_err("fd %u: %s: its pty pair was not created\n", e->fd, e->path);
		return -EBADMSG;
	}
	if (e->tty->dev_tty)
		fd = open_dev_tty(p, e);
	else if (e->tty->master)
		/* A master has one open file description: ours. */
		fd = fcntl(p->master, F_DUPFD_CLOEXEC, 0);
	else
		fd = open_slave(rc, p, e->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY | O_CLOEXEC));
	if (fd == -1)
		return log_errno(-errno, "fd %u: dup of the master of /dev/pts/%u", e->fd, p->index);
	return fd < 0 ? fd : set_status(e, fd);
}

/* In a restored session leader, right after setsid(). */
int tty_restore_ctty(struct rst_ctx *rc, struct rst_task *t)
{
	const CttyEntry *c = t->fds ? t->fds->ctty : NULL;
	const struct inherit_fd *ext;
	int fd;

	if (!c || t->it->sid != t->it->pid)
		return 0;
	if (c->has_index) {
		struct rst_tty *p = find_pair(rc, c->index);

		fd = p ? p->slave : -1;
	} else {
		ext = external_tty(rc);
		fd = ext ? ext->fd : -1;
	}
	if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
		return log_errno(fd < 0 ? -ENOENT : -errno, "pid %d: can't take its controlling terminal "
				 "back (TIOCSCTTY)", t->it->pid);
	return 0;
}

/* A process that had no controlling terminal drops the one it inherited. */
int tty_drop_ctty(struct rst_task *t)
{
	int fd;

	if (t->fds && t->fds->ctty)
		return 0;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return 0;	/* none */
	if (ioctl(fd, TIOCNOTTY) < 0) {
		int err = log_errno(-errno, "pid %d: TIOCNOTTY", t->it->pid);
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

/* The pgid of the tree whose number is pgid, as its own namespace sees it. */
static pid_t ns_pgid(struct rst_ctx *rc, pid_t pgid)
{
	for (int i = 0; i < rc->tree.nr; i++)
		if (rc->tree.items[i]->pgid == pgid)
			return rc->tree.items[i]->nspgid;
	return 0;
}

/* In each session leader with a terminal: its foreground group. */
int ttys_restore_fg(struct rst_ctx *rc)
{
	for (int i = 0; i < rc->tree.nr; i++) {
		struct rst_task *t = &rc->tasks[i];
		const CttyEntry *c = t->fds ? t->fds->ctty : NULL;
		pid_t pg;
		uint64_t a;
		long fd, r;

		if (!c || !c->fg_pgrp || t->it->zombie || t->it->sid != t->it->pid)
			continue;
		pg = ns_pgid(rc, c->fg_pgrp);
		if (!pg) {
			pr_warn("pid %d: the foreground group %u of its terminal is not in the tree; left "
				"to the session\n", t->it->pid, c->fg_pgrp);
			continue;
		}
		fd = remote_open_path(&t->rs, "/dev/tty", O_RDWR | O_NOCTTY);
		if (fd < 0)
			return fd;
		a = rsys_scratch_put(&t->rs, 0, &pg, sizeof(pg));
		r = a ? RCALL(&t->rs, "ioctl(TIOCSPGRP)", SYS_ioctl, fd, TIOCSPGRP, a) : -EIO;
		if (RCALL(&t->rs, "close", SYS_close, fd) < 0 || r < 0) {
			pr_err("pid %d: can't make group %u the foreground of its terminal\n", t->it->pid,
			       c->fg_pgrp);
			return -EIO;
		}
	}
	return 0;
}

const struct fd_ops tty_ops = { FD_KIND__FD_TTY, "tty", tty_dump, tty_open, NULL };
