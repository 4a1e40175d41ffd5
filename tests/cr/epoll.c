/*
 * epoll instances and their items:
 *  A (fd 20): the read end of a pipe holding data (EPOLLIN, data 0x1111),
 *     an eventfd with a count (EPOLLIN|EPOLLET, 0x2222), an empty eventfd
 *     (EPOLLIN|EPOLLONESHOT, 0x3333), the pipe's write end (EPOLLOUT,
 *     0x4444), and a timerfd (EPOLLIN|EPOLLRDHUP, 0x7777);
 *  B (fd 21): epoll A (EPOLLIN, 0xaaaa) and the counted eventfd again
 *     (EPOLLIN|EPOLLPRI, 0x5555): one file in two epolls, an epoll in an
 *     epoll;
 *  C (fd 22): the counted eventfd with EPOLLEXCLUSIVE (0x6666);
 *  D (fd 23): a one-shot item that already fired (0x8888) and a level one
 *     whose data is a pointer-sized value (0x0123456789abcdef).
 * A and B are shared with a child (forked once the items were recorded). After restore every epoll lists the same
 * items (fdinfo: target fd, events, data), epoll_wait reports the ready
 * ones with their data, edge-triggered and one-shot items behave as such,
 * and the child waits on the shared epoll.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum { P_R = 10, P_W = 11, E1 = 12, E2 = 13, E3 = 14, T1 = 15, EA = 20, EB = 21, EC = 22, ED = 23 };
#define BIG_DATA 0x0123456789abcdefULL

static char items_was[32][1024];

static void to_fd(int fd, int want)
{
	if (fd < 0 || dup2(fd, want) != want)
		cr_die("descriptor %d: %s", want, strerror(errno));
	if (fd != want)
		close(fd);
}

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		cr_die("epoll %d: add fd %d (events %#x): %s", ep, fd, events, strerror(errno));
}

/* Sorts the lines of TEXT in place (fdinfo lists items in kernel order). */
static void sort_lines(char *text)
{
	char *lines[32], copy[1024], *save = NULL;
	int n = 0;
	size_t used = 0;

	snprintf(copy, sizeof(copy), "%s", text);
	for (char *l = strtok_r(copy, "\n", &save); l && n < 32; l = strtok_r(NULL, "\n", &save)) {
		int k = n++;

		for (; k > 0 && strcmp(lines[k - 1], l) > 0; k--)
			lines[k] = lines[k - 1];
		lines[k] = l;
	}
	text[0] = '\0';
	for (int i = 0; i < n; i++)
		used += snprintf(text + used, 1024 - used, "%s ", lines[i]);
}

/* The "tfd: events: data:" part of each item line of fdinfo (ino and pos
 * follow, and a restored pipe has a new inode). */
static void items(int ep, char *out, size_t len)
{
	char path[64], text[4096];
	size_t used = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	cr_read_file(path, text, sizeof(text));
	out[0] = '\0';
	for (const char *l = strstr(text, "tfd:"); l && used < len; l = strstr(l + 1, "\ntfd:")) {
		unsigned tfd, events;
		unsigned long long data;

		if (*l == '\n')
			l++;
		if (sscanf(l, "tfd: %u events: %x data: %llx", &tfd, &events, &data) != 3) {
			cr_fail("epoll %d: can't parse '%.*s'", ep, (int)strcspn(l, "\n"), l);
			return;
		}
		used += snprintf(out + used, len - used, "%u:%x:%llx\n", tfd, events, data);
	}
	sort_lines(out);
}

/* The data of the ready items, sorted, as text. */
static void ready(int ep, char *out, size_t len)
{
	struct epoll_event evs[16];
	uint64_t d[16];
	int n = epoll_wait(ep, evs, 16, 0);
	size_t used = 0;

	out[0] = '\0';
	if (n < 0) {
		cr_fail("epoll_wait %d: %s", ep, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		int k = i;

		for (; k > 0 && d[k - 1] > evs[i].data.u64; k--)
			d[k] = d[k - 1];
		d[k] = evs[i].data.u64;
	}
	for (int i = 0; i < n && used < len; i++)
		used += snprintf(out + used, len - used, "%s%" PRIx64, i ? " " : "", d[i]);
}

static void expect_ready(const char *what, int ep, const char *want)
{
	char got[256];

	ready(ep, got, sizeof(got));
	if (strcmp(got, want))
		cr_fail("%s: epoll %d reports '%s', expected '%s'", what, ep, got, want);
}

static void check_items(const char *who, int from, int to)
{
	char now[1024];

	for (int ep = from; ep <= to; ep++) {
		items(ep, now, sizeof(now));
		if (strcmp(now, items_was[ep]))
			cr_fail("%s: epoll %d items '%s', were '%s'", who, ep, now, items_was[ep]);
	}
}

static void bump(int fd)
{
	if (write(fd, &(uint64_t){ 1 }, 8) != 8)
		cr_fail("eventfd %d: write: %s", fd, strerror(errno));
}

static void setup(void)
{
	int p[2];
	struct itimerspec its = { { 0, 0 }, { 3600, 0 } };

	if (pipe2(p, 0))
		cr_die("pipe: %s", strerror(errno));
	to_fd(p[0], P_R);
	to_fd(p[1], P_W);
	if (write(P_W, "data", 4) != 4)
		cr_die("pipe write: %s", strerror(errno));
	to_fd(eventfd(1, 0), E1);
	to_fd(eventfd(0, EFD_NONBLOCK), E2);
	to_fd(eventfd(1, 0), E3);
	to_fd(timerfd_create(CLOCK_MONOTONIC, 0), T1);
	if (timerfd_settime(T1, 0, &its, NULL))
		cr_die("timerfd_settime: %s", strerror(errno));
	for (int ep = EA; ep <= ED; ep++)
		to_fd(epoll_create1(0), ep);
	add(EA, P_R, EPOLLIN, 0x1111);
	add(EA, E1, EPOLLIN | EPOLLET, 0x2222);
	add(EA, E2, EPOLLIN | EPOLLONESHOT, 0x3333);
	add(EA, P_W, EPOLLOUT, 0x4444);
	add(EA, T1, EPOLLIN | EPOLLRDHUP, 0x7777);
	add(EB, EA, EPOLLIN, 0xaaaa);
	add(EB, E1, EPOLLIN | EPOLLPRI, 0x5555);
	add(EC, E1, EPOLLIN | EPOLLEXCLUSIVE, 0x6666);
	add(ED, E3, EPOLLIN | EPOLLONESHOT, 0x8888);
	add(ED, P_R, EPOLLIN, BIG_DATA);
	/* D's one-shot item fires now and is disarmed at checkpoint time. */
	expect_ready("setup", ED, "8888 123456789abcdef");
	if (cr_failures())
		cr_die("setup checks failed");
}

static void __attribute__((noreturn)) child(void)
{
	close(EC);
	close(ED);
	cr_child_ready();
	cr_wait_term();
	/* A's items are the parent's to check: it has fired the one-shot. */
	check_items("child", EB, EB);
	/* Level-triggered items are still ready for the child. */
	expect_ready("child", EA, "1111 4444");
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	setup();
	for (int ep = EA; ep <= ED; ep++)
		items(ep, items_was[ep], sizeof(items_was[ep]));
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	cr_ready();
	cr_wait_term();
	check_items("parent", EA, ED);
	expect_ready("B", EB, "5555 aaaa");
	expect_ready("C", EC, "6666");
	expect_ready("A", EA, "1111 2222 4444");
	/* Edge-triggered: not again until a new event; one-shot: once. */
	expect_ready("A, again", EA, "1111 4444");
	bump(E2);
	bump(E1);
	expect_ready("A, after two writes", EA, "1111 2222 3333 4444");
	bump(E2);
	expect_ready("A, one-shot spent", EA, "1111 4444");
	expect_ready("D, one-shot spent", ED, "123456789abcdef");
	bump(E3);
	expect_ready("D, one-shot spent, after a write", ED, "123456789abcdef");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
