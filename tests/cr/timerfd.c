/*
 * timerfd on every clock:
 *  fd 10 MONOTONIC, one-shot in an hour;
 *  fd 11 REALTIME, absolute (TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET), an
 *        hour from now, every 7 s;
 *  fd 12 BOOTTIME, every 50 ms, TFD_NONBLOCK: keeps firing;
 *  fd 13 MONOTONIC, one-shot that expired once, not read: 1 tick;
 *  fd 14 MONOTONIC, disarmed, with 17 ticks set (TFD_IOC_SET_TICKS);
 *  fd 15 REALTIME, never armed, TFD_NONBLOCK;
 *  fd 16 MONOTONIC, one-shot in 300 ms: fires once after restore;
 *  fd 17/18 REALTIME_ALARM/BOOTTIME_ALARM in an hour, when they can be
 *        created here (CAP_WAKE_ALARM and an RTC).
 * After restore: clock, flags and settime flags as before (fdinfo), the
 * same intervals, armed timers still armed with no more time left than
 * before, the expirations not read are still there, and the running timers
 * fire. No assertion depends on how long the checkpoint takes.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

#define SEC 1000000000LL
#define HOUR (3600 * SEC)

struct tspec {
	int fd;
	int clock;
	int flags;		/* timerfd_create */
	int set_flags;		/* timerfd_settime */
	long long value, interval;	/* ns; value relative even with ABSTIME */
	bool optional;		/* may be missing (alarm clocks) */
};

static const struct tspec specs[] = {
	{ 10, CLOCK_MONOTONIC, 0, 0, HOUR, 0, false },
	{ 11, CLOCK_REALTIME, 0, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, HOUR, 7 * SEC, false },
	{ 12, CLOCK_BOOTTIME, TFD_NONBLOCK, 0, 50000000, 50000000, false },
	{ 13, CLOCK_MONOTONIC, 0, 0, 1000000, 0, false },
	{ 14, CLOCK_MONOTONIC, TFD_NONBLOCK, 0, 0, 0, false },
	{ 15, CLOCK_REALTIME, TFD_NONBLOCK, 0, 0, 0, false },
	{ 16, CLOCK_MONOTONIC, 0, 0, 300000000, 0, false },
	{ 17, CLOCK_REALTIME_ALARM, 0, 0, HOUR, 0, true },
	{ 18, CLOCK_BOOTTIME_ALARM, TFD_NONBLOCK, 0, HOUR, HOUR, true },
};

static bool present[32];
static struct itimerspec was[32];
static char fdinfo_was[32][256];
static int fl_was[32], fdfl_was[32];

static long long ns_of(struct timespec t)
{
	return t.tv_sec * SEC + t.tv_nsec;
}

static struct timespec ts_of(long long ns)
{
	return (struct timespec){ ns / SEC, ns % SEC };
}

/* The lines of fdinfo that do not move with time: clockid, settime flags. */
static void fdinfo_fixed(int fd, char *out, size_t len)
{
	char path[64], text[1024];
	const char *c, *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	cr_read_file(path, text, sizeof(text));
	c = strstr(text, "clockid:");
	f = strstr(text, "settime flags:");
	snprintf(out, len, "%.*s / %.*s", c ? (int)strcspn(c, "\n") : 0, c ? c : "",
		 f ? (int)strcspn(f, "\n") : 0, f ? f : "");
}

static uint64_t fdinfo_ticks(int fd)
{
	char path[64], text[1024];
	const char *t;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	cr_read_file(path, text, sizeof(text));
	t = strstr(text, "ticks:");
	return t ? strtoull(t + 6, NULL, 10) : ~0ULL;
}

static bool make_timer(const struct tspec *s)
{
	struct itimerspec its = { ts_of(s->interval), ts_of(s->value) };
	int fd = timerfd_create(s->clock, s->flags | TFD_CLOEXEC);

	if (fd < 0 && s->optional) {
		cr_log("clock %d: no timerfd here (%s), not tested", s->clock, strerror(errno));
		return false;
	}
	if (fd < 0 || dup3(fd, s->fd, 0) != s->fd)
		cr_die("timerfd %d (clock %d): %s", s->fd, s->clock, strerror(errno));
	close(fd);
	if (s->set_flags & TFD_TIMER_ABSTIME) {
		struct timespec now;

		clock_gettime(s->clock, &now);
		its.it_value = ts_of(ns_of(now) + s->value);
	}
	if (s->value && timerfd_settime(s->fd, s->set_flags, &its, NULL))
		cr_die("timerfd_settime %d: %s", s->fd, strerror(errno));
	return true;
}

static uint64_t read_ticks(int fd, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, wait_ms) != 1)
		return 0;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		cr_fail("fd %d: read: %s", fd, strerror(errno));
	return n;
}

static void setup(void)
{
	uint64_t ticks = 17;

	for (size_t i = 0; i < CR_ARRAY_SIZE(specs); i++)
		present[specs[i].fd] = make_timer(&specs[i]);
	/* fd 13 expires once; fd 14 holds ticks that were never read. */
	while (fdinfo_ticks(13) != 1)
		cr_sleep_ms(1);
	if (ioctl(14, TFD_IOC_SET_TICKS, &ticks))
		cr_die("TFD_IOC_SET_TICKS: %s", strerror(errno));
	for (int fd = 10; fd < 32; fd++) {
		if (!present[fd])
			continue;
		timerfd_gettime(fd, &was[fd]);
		fdinfo_fixed(fd, fdinfo_was[fd], sizeof(fdinfo_was[fd]));
		fl_was[fd] = fcntl(fd, F_GETFL);
		fdfl_was[fd] = fcntl(fd, F_GETFD);
	}
}

/* Same clock, flags and interval; armed as before, with no more time left. */
static void check_one(int fd)
{
	struct itimerspec now;
	char info[256];
	long long left, left_was = ns_of(was[fd].it_value);

	fdinfo_fixed(fd, info, sizeof(info));
	if (strcmp(info, fdinfo_was[fd]))
		cr_fail("fd %d: '%s', was '%s'", fd, info, fdinfo_was[fd]);
	if (fcntl(fd, F_GETFL) != fl_was[fd] || fcntl(fd, F_GETFD) != fdfl_was[fd])
		cr_fail("fd %d: flags %#o/%d, were %#o/%d", fd, fcntl(fd, F_GETFL), fcntl(fd, F_GETFD),
			fl_was[fd], fdfl_was[fd]);
	if (timerfd_gettime(fd, &now)) {
		cr_fail("fd %d: timerfd_gettime: %s", fd, strerror(errno));
		return;
	}
	if (ns_of(now.it_interval) != ns_of(was[fd].it_interval))
		cr_fail("fd %d: interval %lld ns, was %lld", fd, ns_of(now.it_interval),
			ns_of(was[fd].it_interval));
	left = ns_of(now.it_value);
	/* Long timers cannot have expired; disarmed one-shots stay disarmed (a
	 * periodic one shows 0 left whenever an expiration is unread). */
	if ((left_was > 60 * SEC || (left_was == 0 && ns_of(was[fd].it_interval) == 0)) &&
	    (left == 0) != (left_was == 0))
		cr_fail("fd %d: %lld ns left, was %lld", fd, left, left_was);
	if (left > left_was && ns_of(was[fd].it_interval) == 0)
		cr_fail("fd %d: %lld ns left, more than the %lld at checkpoint", fd, left, left_was);
}

int main(int argc, char **argv)
{
	uint64_t n;

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	setup();
	cr_ready();
	cr_wait_term();
	for (int fd = 10; fd < 32; fd++)
		if (present[fd])
			check_one(fd);
	CR_EXPECT_EQ("fd 13 (expired once, not read): ticks", fdinfo_ticks(13), 1);
	CR_EXPECT_EQ("fd 13: ticks read", read_ticks(13, 0), 1);
	CR_EXPECT_EQ("fd 14 (17 ticks set): ticks read", read_ticks(14, 0), 17);
	CR_EXPECT_EQ("fd 14: ticks read again", read_ticks(14, 0), 0);
	if (read(15, &n, sizeof(n)) != -1 || errno != EAGAIN)
		cr_fail("fd 15 (never armed): read did not fail with EAGAIN");
	/* The periodic timer keeps firing, the short one-shot fires once. */
	if (read_ticks(12, 10000) == 0)
		cr_fail("fd 12 (every 50 ms): did not fire within 10 s");
	if (read_ticks(12, 10000) == 0)
		cr_fail("fd 12 (every 50 ms): did not fire again within 10 s");
	CR_EXPECT_EQ("fd 16 (300 ms one-shot): ticks", read_ticks(16, 10000), 1);
	CR_EXPECT_EQ("fd 16: ticks after it fired", read_ticks(16, 200), 0);
	return cr_report();
}
