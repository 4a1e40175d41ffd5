/*
 * POSIX message queues of an IPC namespace the tree owns (unshare=ipc): a
 * queue with messages of several priorities, attributes, mode and owner;
 * an empty one; descriptors open on them in two processes with different
 * access modes and O_NONBLOCK. After restore the messages come out in the
 * same order with the same priorities, the attributes and descriptor flags
 * are the same, and a message sent by the child reaches the root.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { unsigned prio; const char *text; } sent[] = {
	{ 1, "a: prio 1" }, { 5, "b: prio 5" }, { 1, "c: prio 1 again" }, { 0, "" }, { 5, "e: prio 5, second" },
	{ 31, "f: the highest" },
};
/* Receive order: by priority, then first in first out. */
static const int order[] = { 5, 1, 4, 0, 2, 3 };

static mqd_t q1, q2;

static void check_attr(const char *who, mqd_t q, long flags, long maxmsg, long msgsize, long cur)
{
	struct mq_attr at;

	if (mq_getattr(q, &at) < 0) {
		cr_fail("%s: mq_getattr: %s", who, strerror(errno));
		return;
	}
	CR_CHECK(at.mq_flags == flags && at.mq_maxmsg == maxmsg && at.mq_msgsize == msgsize &&
		 at.mq_curmsgs == cur,
		 "%s: attrs flags %#lx max %ld size %ld cur %ld, expected %#lx %ld %ld %ld", who,
		 at.mq_flags, at.mq_maxmsg, at.mq_msgsize, at.mq_curmsgs, flags, maxmsg, msgsize, cur);
}

static void check_root(void)
{
	struct stat st;
	char buf[128];
	unsigned prio;

	check_attr("root q1", q1, O_NONBLOCK, 8, 100, CR_ARRAY_SIZE(sent));
	CR_EXPECT_EQ("root q1 access mode", fcntl(q1, F_GETFL) & O_ACCMODE, O_RDWR);
	if (fstat(q1, &st) < 0)
		cr_fail("fstat q1: %s", strerror(errno));
	CR_CHECK((st.st_mode & 07777) == 0640 && st.st_uid == 1000 && st.st_gid == 1002,
		 "q1: mode %o owner %u:%u, expected 640 1000:1002", st.st_mode & 07777, st.st_uid,
		 st.st_gid);
	for (size_t i = 0; i < CR_ARRAY_SIZE(order); i++) {
		ssize_t n = mq_receive(q1, buf, sizeof(buf), &prio);
		int k = order[i];

		if (n < 0) {
			cr_fail("q1 message %zu: %s", i, strerror(errno));
			break;
		}
		CR_CHECK(prio == sent[k].prio && (size_t)n == strlen(sent[k].text) &&
			 !memcmp(buf, sent[k].text, n),
			 "q1 message %zu: prio %u '%.*s', expected prio %u '%s'", i, prio, (int)n, buf,
			 sent[k].prio, sent[k].text);
	}
	CR_CHECK(mq_receive(q1, buf, sizeof(buf), &prio) < 0 && errno == EAGAIN,
		 "q1 holds more messages than were sent");
}

static void __attribute__((noreturn)) child(void)
{
	mqd_t r = mq_open("/crtest-q1", O_RDONLY);
	mqd_t w = mq_open("/crtest-q2", O_WRONLY | O_NONBLOCK);

	if (r == (mqd_t)-1 || w == (mqd_t)-1)
		cr_die("child mq_open: %s", strerror(errno));
	cr_child_ready();
	cr_wait_term();
	check_attr("child q1", r, 0, 8, 100, CR_ARRAY_SIZE(sent));
	check_attr("child q2", w, O_NONBLOCK, 10, 8192, 0);
	CR_EXPECT_EQ("child q1 access mode", fcntl(r, F_GETFL) & O_ACCMODE, O_RDONLY);
	CR_EXPECT_EQ("child q2 access mode", fcntl(w, F_GETFL) & O_ACCMODE, O_WRONLY);
	CR_CHECK(mq_send(w, "from the child", 14, 3) == 0, "child mq_send: %s", strerror(errno));
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	struct mq_attr at = { .mq_maxmsg = 8, .mq_msgsize = 100 };
	char buf[8192];
	unsigned prio;
	pid_t kid;
	mqd_t r2;
	ssize_t n;

	cr_init(argc, argv);
	q1 = mq_open("/crtest-q1", O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &at);
	q2 = mq_open("/crtest-q2", O_RDONLY | O_CREAT | O_EXCL, 0600, NULL);
	if (q1 == (mqd_t)-1 || q2 == (mqd_t)-1)
		cr_die("mq_open: %s", strerror(errno));
	/* Only the child holds q2 at checkpoint time. */
	mq_close(q2);
	if (fchown(q1, 1000, 1002) < 0 || fchmod(q1, 0640) < 0)
		cr_die("fchown/fchmod q1: %s", strerror(errno));
	for (size_t i = 0; i < CR_ARRAY_SIZE(sent); i++)
		if (mq_send(q1, sent[i].text, strlen(sent[i].text), sent[i].prio) < 0)
			cr_die("mq_send: %s", strerror(errno));
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	cr_ready();
	cr_wait_term();
	cr_finish_children(&kid, roles, 1);
	check_root();
	r2 = mq_open("/crtest-q2", O_RDONLY | O_NONBLOCK);
	n = r2 == (mqd_t)-1 ? -1 : mq_receive(r2, buf, sizeof(buf), &prio);
	CR_CHECK(n == 14 && prio == 3 && !memcmp(buf, "from the child", 14),
		 "q2: the child's message did not arrive (%zd: %s)", n, n < 0 ? strerror(errno) : "");
	if (r2 != (mqd_t)-1)
		mq_close(r2);
	mq_unlink("/crtest-q1");
	mq_unlink("/crtest-q2");
	return cr_report();
}
