#define LOG_PREFIX "files: "
/*
 * Descriptors on anonymous inodes: eventfd, signalfd, timerfd, inotify and
 * epoll. Their state is read from /proc/PID/fdinfo; the restorer creates
 * each one again with it. Epoll items are keyed by the registering process's
 * fd numbers, so they are added back inside a process of the tree where
 * every target still has the fd number it was registered with (checked at
 * dump with kcmp(KCMP_EPOLL_TFD)).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <linux/kcmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cr.h"
#include "files.h"
#include "log.h"
#include "util.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static int bad_fdinfo(const struct fd_dump *d, const char *what)
{
	pr_err("pid %d: fd %d (%s): can't parse '%s' in its fdinfo\n", d->pid, d->fd, d->target, what);
	return -EINVAL;
}

/* The nonblocking bit the dumped description had, for the kinds that take it at creation. */
static int nonblock(const FdEntry *e)
{
	return e->flags & O_NONBLOCK;
}

/* ---- eventfd ---- */

static int eventfd_dump(struct fd_dump *d, FdEntry *e)
{
	const char *v = fdinfo_field(d->fdinfo, "eventfd-count");
	const char *sem = fdinfo_field(d->fdinfo, "eventfd-semaphore");

	if (!d->first)
		return 0;
	if (!v)
		return bad_fdinfo(d, "eventfd-count");
	e->has_eventfd_count = e->has_eventfd_semaphore = true;
	e->eventfd_count = strtoull(v, NULL, 16);
	e->eventfd_semaphore = sem && atoi(sem);
	return 0;
}

static int eventfd_open(struct rst_ctx *rc, const FdEntry *e)
{
	int fd = eventfd(0, EFD_CLOEXEC | nonblock(e) | (e->eventfd_semaphore ? EFD_SEMAPHORE : 0));
	uint64_t v = e->eventfd_count;

	(void)rc;
	if (fd < 0)
		return log_errno(-errno, "fd %u: eventfd", e->fd);
	if (v && write(fd, &v, sizeof(v)) != sizeof(v)) {
		int err = log_errno(-errno, "fd %u: can't set the eventfd counter to %" PRIu64, e->fd, v);
		close(fd);
		return err;
	}
	return fd;
}

/* ---- signalfd ---- */

static int signalfd_dump(struct fd_dump *d, FdEntry *e)
{
	const char *v = fdinfo_field(d->fdinfo, "sigmask");

	if (!d->first)
		return 0;
	if (!v)
		return bad_fdinfo(d, "sigmask");
	e->has_signalfd_mask = true;
	e->signalfd_mask = strtoull(v, NULL, 16);
	return 0;
}

static int signalfd_open(struct rst_ctx *rc, const FdEntry *e)
{
	sigset_t mask;
	int fd;

	(void)rc;
	sigemptyset(&mask);
	memcpy(&mask, &e->signalfd_mask, sizeof(e->signalfd_mask));
	fd = signalfd(-1, &mask, SFD_CLOEXEC | nonblock(e));
	if (fd < 0)
		return log_errno(-errno, "fd %u: signalfd with mask %#" PRIx64, e->fd, e->signalfd_mask);
	return fd;
}

/* ---- timerfd ---- */

static bool parse_pair(const char *v, uint64_t *ns)
{
	unsigned long long s, n;

	if (!v || sscanf(v, " (%llu, %llu)", &s, &n) != 2)
		return false;
	*ns = s * 1000000000ull + n;
	return true;
}

static int timerfd_dump(struct fd_dump *d, FdEntry *e)
{
	const char *clk = fdinfo_field(d->fdinfo, "clockid"), *ticks = fdinfo_field(d->fdinfo, "ticks");
	const char *fl = fdinfo_field(d->fdinfo, "settime flags");
	TimerfdState *t;

	if (!d->first)
		return 0;
	t = xmalloc(sizeof(*t));
	timerfd_state__init(t);
	e->timerfd = t;
	if (!clk || !ticks || !fl)
		return bad_fdinfo(d, "clockid/ticks/settime flags");
	t->clockid = atoi(clk);
	t->ticks = strtoull(ticks, NULL, 10);
	t->settime_flags = strtoul(fl, NULL, 8);
	if (!parse_pair(fdinfo_field(d->fdinfo, "it_value"), &t->value_ns) ||
	    !parse_pair(fdinfo_field(d->fdinfo, "it_interval"), &t->interval_ns))
		return bad_fdinfo(d, "it_value/it_interval");
	return 0;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){ ns / 1000000000ull, ns % 1000000000ull };
}

/*
 * Time left before the next expiration. A periodic timer that expired and
 * was not read since shows none in fdinfo: the kernel moves it on only when
 * it is read. It runs on, one interval from now, its ticks kept.
 */
static uint64_t timerfd_left(const TimerfdState *t)
{
	return t->value_ns ? t->value_ns : t->interval_ns;
}

static int timerfd_open(struct rst_ctx *rc, const FdEntry *e)
{
	const TimerfdState *t = e->timerfd;
	uint64_t left = t ? timerfd_left(t) : 0;
	struct itimerspec its = { ns_ts(t ? t->interval_ns : 0), ns_ts(left) };
	int fd, flags = 0;

	(void)rc;
	if (!t) {
		pr_err("fd %u: the timerfd has no state in the image\n", e->fd);
		return -EINVAL;
	}
	fd = timerfd_create(t->clockid, TFD_CLOEXEC | nonblock(e));
	if (fd < 0)
		return log_errno(-errno, "fd %u: timerfd_create(clock %d)", e->fd, t->clockid);
	if (left && (t->settime_flags & TFD_TIMER_ABSTIME)) {
		/* The time left is kept; an absolute timer stays absolute (and cancelable). */
		struct timespec now;
		uint64_t at;

		clock_gettime(t->clockid, &now);
		at = now.tv_sec * 1000000000ull + now.tv_nsec + left;
		its.it_value = ns_ts(at);
		flags = t->settime_flags;
	}
	if (left && timerfd_settime(fd, flags, &its, NULL) < 0)
		goto fail;
	if (t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks) < 0)
		goto fail;
	return fd;
fail:
	flags = log_errno(-errno, "fd %u: can't arm the timerfd (clock %d, %" PRIu64 " ns, %" PRIu64
			  " ticks)", e->fd, t->clockid, left, t->ticks);
	close(fd);
	return flags;
}

/* ---- inotify ---- */

static int hex_bytes(const char *s, ProtobufCBinaryData *out)
{
	size_t n = strspn(s, "0123456789abcdefABCDEF") / 2;

	out->data = xmalloc(n + 1);
	out->len = n;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out->data[i] = v;
	}
	return 0;
}

static int parse_watch(struct fd_dump *d, const char *l, InotifyWatch *w)
{
	unsigned wd, sdev, mask, ign, bytes;
	unsigned long long ino;
	int type, n = 0;
	const char *h;

	if (sscanf(l, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
		      "fhandle-type:%x f_handle:%n", &wd, &ino, &sdev, &mask, &ign, &bytes, &type, &n) < 7 ||
	    !n)
		return bad_fdinfo(d, "inotify wd");
	h = l + n;
	w->wd = wd;
	w->ino = ino;
	w->sdev = sdev;
	w->mask = mask;
	w->ignored_mask = ign;
	w->handle_type = type;
	if (hex_bytes(h, &w->handle) < 0 || w->handle.len != bytes)
		return bad_fdinfo(d, "f_handle");
	return 0;
}

static int inotify_dump(struct fd_dump *d, FdEntry *e)
{
	if (!d->first)
		return 0;
	for (const char *l = d->fdinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		InotifyWatch *w;
		int ret;

		if (strncmp(l, "inotify wd:", 11))
			continue;
		w = xmalloc(sizeof(*w));
		inotify_watch__init(w);
		e->inotify = xrealloc(e->inotify, (e->n_inotify + 1) * sizeof(*e->inotify));
		e->inotify[e->n_inotify++] = w;
		if ((ret = parse_watch(d, l, w)) < 0)
			return ret;
	}
	return 0;
}

/*
 * A directory of the mount holding device dev (kernel encoding), as we see
 * it. Not O_PATH: open_by_handle_at() refuses such a mount fd (EBADF).
 */
static int mount_of(uint32_t sdev)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[4096];
	unsigned maj, min;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mp) == 3 &&
		    maj == (sdev >> 20) && min == (sdev & 0xfffff))
			return open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return -ENOENT;
}

/* The watched inode, found by its file handle. */
static int open_watched(const FdEntry *e, const InotifyWatch *w)
{
	struct file_handle *fh = xmalloc(sizeof(*fh) + w->handle.len);
	_cleanup_close_ int mfd = mount_of(w->sdev);
	struct stat st;
	int fd = -1;

	fh->handle_bytes = w->handle.len;
	fh->handle_type = w->handle_type;
	memcpy(fh->f_handle, w->handle.data, w->handle.len);
	if (mfd >= 0)
		fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	free(fh);
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != w->ino)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		return log_errno(mfd < 0 ? -ENOENT : -errno,
				 "fd %u: inotify watch %u: can't find inode %" PRIu64 " on device %u:%u",
				 e->fd, w->wd, w->ino, w->sdev >> 20, w->sdev & 0xfffff);
	return fd;
}

/*
 * Watch descriptors are handed out in increasing order: burn the numbers
 * below the one wanted with a watch on a fresh pipe inode, added and removed.
 */
static int add_watch_as(int ifd, const FdEntry *e, const InotifyWatch *w, int target)
{
	char path[64];
	int wd;

	for (;;) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", target);
		wd = inotify_add_watch(ifd, path, w->mask);
		if (wd < 0)
			return log_errno(-errno, "fd %u: inotify watch %u", e->fd, w->wd);
		if ((uint32_t)wd == w->wd)
			return 0;
		if ((uint32_t)wd > w->wd) {
			pr_err("fd %u: inotify watch %u came back as %d\n", e->fd, w->wd, wd);
			return -EINVAL;
		}
		inotify_rm_watch(ifd, wd);
	}
}

static int cmp_wd(const void *a, const void *b)
{
	const InotifyWatch *x = *(InotifyWatch *const *)a, *y = *(InotifyWatch *const *)b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

/*
 * Removing the watches that burnt watch numbers queued IN_IGNORED events
 * for them: read them all (the dumped queue was not saved either).
 */
static int drain_events(const FdEntry *e, int ifd)
{
	char buf[4096] __attribute__((aligned(8)));
	int fl = fcntl(ifd, F_GETFL);

	if (fl < 0 || fcntl(ifd, F_SETFL, fl | O_NONBLOCK) < 0)
		return log_errno(-errno, "fd %u: inotify: F_SETFL", e->fd);
	while (read(ifd, buf, sizeof(buf)) > 0)
		;
	if (errno != EAGAIN)
		return log_errno(-errno, "fd %u: inotify: can't read the queued events", e->fd);
	if (fcntl(ifd, F_SETFL, fl) < 0)
		return log_errno(-errno, "fd %u: inotify: F_SETFL", e->fd);
	return 0;
}

static int inotify_open(struct rst_ctx *rc, const FdEntry *e)
{
	int ifd = inotify_init1(IN_CLOEXEC | nonblock(e)), ret = 0;

	(void)rc;
	if (ifd < 0)
		return log_errno(-errno, "fd %u: inotify_init1", e->fd);
	qsort(e->inotify, e->n_inotify, sizeof(*e->inotify), cmp_wd);
	for (size_t i = 0; i < e->n_inotify && !ret; i++) {
		int target = open_watched(e, e->inotify[i]);

		if (target < 0) {
			ret = target;
			break;
		}
		ret = add_watch_as(ifd, e, e->inotify[i], target);
		close(target);
	}
	if (!ret)
		ret = drain_events(e, ifd);
	if (ret < 0) {
		close(ifd);
		return ret;
	}
	return ifd;
}

/* ---- epoll ---- */

static int parse_items(struct fd_dump *d, FdEntry *e)
{
	for (const char *l = d->fdinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned tfd, events;
		unsigned long long data;
		EpollItem *it;

		if (strncmp(l, "tfd:", 4))
			continue;
		if (sscanf(l, "tfd: %u events: %x data: %llx", &tfd, &events, &data) != 3)
			return bad_fdinfo(d, "tfd");
		it = xmalloc(sizeof(*it));
		epoll_item__init(it);
		it->tfd = tfd;
		it->events = events;
		it->data = data;
		e->epoll = xrealloc(e->epoll, (e->n_epoll + 1) * sizeof(*e->epoll));
		e->epoll[e->n_epoll++] = it;
	}
	return 0;
}

/* Does every item's target still sit under its fd number in this process? */
static bool items_match(struct fd_dump *d, const FdEntry *e)
{
	for (size_t i = 0; i < e->n_epoll; i++) {
		struct kcmp_epoll_slot slot = { .efd = d->fd, .tfd = e->epoll[i]->tfd, .toff = 0 };

		if (syscall(SYS_kcmp, d->pid, d->pid, KCMP_EPOLL_TFD, e->epoll[i]->tfd, &slot) != 0)
			return false;
	}
	return true;
}

static int epoll_dump(struct fd_dump *d, FdEntry *e)
{
	struct file_seen *fs = d->fs;
	int i, ret;

	for (i = 0; i < fs->nr_epolls && fs->epolls[i].id != e->file_id; i++)
		;
	if (i == fs->nr_epolls) {
		fs->epolls = xrealloc(fs->epolls, (i + 1) * sizeof(*fs->epolls));
		fs->epolls[i].id = e->file_id;
		fs->epolls[i].pid = d->pid;
		fs->epolls[i].fd = d->fd;
		fs->epolls[i].owned = false;
		fs->nr_epolls++;
	}
	if (fs->epolls[i].owned)
		return 0;
	if ((ret = parse_items(d, e)) < 0)
		return ret;
	if (items_match(d, e)) {
		e->has_epoll_owner = e->epoll_owner = true;
		fs->epolls[i].owned = true;
		return 0;
	}
	for (size_t k = 0; k < e->n_epoll; k++)
		epoll_item__free_unpacked(e->epoll[k], NULL);
	free(e->epoll);
	e->epoll = NULL;
	e->n_epoll = 0;
	return 0;
}

int anon_dump_finish(struct file_seen *fs)
{
	for (int i = 0; i < fs->nr_epolls; i++)
		if (!fs->epolls[i].owned) {
			pr_err("pid %d: fd %d: an epoll target was closed or renumbered after it was added, "
			       "in every process holding the epoll; not supported\n",
			       fs->epolls[i].pid, fs->epolls[i].fd);
			return -EOPNOTSUPP;
		}
	return 0;
}

static int epoll_open(struct rst_ctx *rc, const FdEntry *e)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	(void)rc;
	if (fd < 0)
		return log_errno(-errno, "fd %u: epoll_create1", e->fd);
	return fd;
}

/* Bits epoll keeps in an item across a one-shot firing. */
#define EP_PRIVATE_BITS (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)

/*
 * A one-shot item that fired and was not re-armed since has no event bits
 * left, not even EPOLLERR|EPOLLHUP, which EPOLL_CTL_ADD and _MOD always add.
 */
static bool spent_oneshot(const EpollItem *it)
{
	return (it->events & EPOLLONESHOT) && !(it->events & ~EP_PRIVATE_BITS);
}

static int epoll_add(const FdEntry *e, const EpollItem *it, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = it->data };

	if (epoll_ctl(e->fd, EPOLL_CTL_ADD, it->tfd, &ev) < 0)
		return log_errno(-errno, "epoll fd %u: can't add fd %u (events %#x)", e->fd, it->tfd,
				 events);
	return 0;
}

/* Does the item on tfd have event bits, by the epoll's fdinfo? */
static bool item_armed(const char *fdinfo, uint32_t tfd)
{
	for (const char *l = fdinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned t, events;

		if (sscanf(l, "tfd: %u events: %x", &t, &events) == 2 && t == tfd)
			return events & ~EP_PRIVATE_BITS;
	}
	return false;
}

/*
 * Spent one-shot items are added first, ready for anything, and fire once
 * in an epoll that holds nothing else yet, so the kernel disarms them as it
 * had. One whose target is ready for nothing now stays armed for EPOLLERR
 * and EPOLLHUP only (logged).
 */
static int add_spent(const FdEntry *e)
{
	const uint32_t any = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP;
	struct epoll_event evs[16];
	_cleanup_free_ char *info = NULL;
	char path[64];
	int n = 0, ret;

	for (size_t i = 0; i < e->n_epoll; i++) {
		if (!spent_oneshot(e->epoll[i]))
			continue;
		if ((ret = epoll_add(e, e->epoll[i], e->epoll[i]->events | any)) < 0)
			return ret;
		n++;
	}
	while (n && (ret = epoll_wait(e->fd, evs, ARRAY_SIZE(evs), 0)) > 0)
		;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%u", e->fd);
	if (n && read_file_at(AT_FDCWD, path, &info) < 0)
		return log_errno(-EIO, "epoll fd %u: can't read %s", e->fd, path);
	for (size_t i = 0; n && i < e->n_epoll; i++) {
		struct epoll_event ev = { .events = e->epoll[i]->events, .data.u64 = e->epoll[i]->data };

		if (!spent_oneshot(e->epoll[i]) || !item_armed(info, e->epoll[i]->tfd))
			continue;
		pr_warn("epoll fd %u: fd %u, a one-shot item that fired, comes back armed for "
			"EPOLLERR|EPOLLHUP\n", e->fd, e->epoll[i]->tfd);
		if (epoll_ctl(e->fd, EPOLL_CTL_MOD, e->epoll[i]->tfd, &ev) < 0)
			return log_errno(-errno, "epoll fd %u: can't modify fd %u", e->fd, e->epoll[i]->tfd);
	}
	return 0;
}

static int epoll_in_child(struct rst_ctx *rc, const FdEntry *e)
{
	int ret;

	(void)rc;
	if (!e->epoll_owner)
		return 0;
	if ((ret = add_spent(e)) < 0)
		return ret;
	for (size_t i = 0; i < e->n_epoll; i++)
		if (!spent_oneshot(e->epoll[i]) && (ret = epoll_add(e, e->epoll[i], e->epoll[i]->events)) < 0)
			return ret;
	return 0;
}

const struct fd_ops eventfd_ops = { FD_KIND__FD_EVENTFD, "eventfd", eventfd_dump, eventfd_open, NULL };
const struct fd_ops signalfd_ops = { FD_KIND__FD_SIGNALFD, "signalfd", signalfd_dump, signalfd_open, NULL };
const struct fd_ops timerfd_ops = { FD_KIND__FD_TIMERFD, "timerfd", timerfd_dump, timerfd_open, NULL };
const struct fd_ops inotify_ops = { FD_KIND__FD_INOTIFY, "inotify", inotify_dump, inotify_open, NULL };
const struct fd_ops epoll_ops = { FD_KIND__FD_EPOLL, "epoll", epoll_dump, epoll_open, epoll_in_child };
