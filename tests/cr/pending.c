/*
 * Pending signals: blocked standard and realtime signals queued to the
 * process and to single threads (with kill, tgkill, sigqueue and a forged
 * siginfo through rt_sigqueueinfo), two instances of one realtime signal,
 * and signals from the parent pending in a child. After restore the
 * pending sets must be the same and, once unblocked, every signal must be
 * delivered exactly once with its siginfo intact.
 */
#include "crtest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FORGED_CODE (-60)
#define FORGED_PID 4242

struct delivery {
	int signo, code, value;
	pid_t pid;
	uid_t uid;
};

static struct delivery got[32];
static atomic_int nr_got;
static int code_kill, code_tkill;	/* what this kernel puts in si_code */
static pid_t main_pid;
static pthread_t thread;
static atomic_int stop;

struct pend_text {
	char sigpnd[32], shdpnd[32];
};
static struct pend_text main_pend, thread_pend;
static pid_t thread_tid;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	int i = atomic_fetch_add(&nr_got, 1);

	(void)uc;
	if (i >= (int)CR_ARRAY_SIZE(got))
		return;
	got[i] = (struct delivery){ sig, si->si_code, si->si_value.sival_int, si->si_pid,
				    si->si_uid };
}

static sigset_t test_set(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGRTMIN + 1);
	sigaddset(&s, SIGRTMIN + 2);
	sigaddset(&s, SIGRTMIN + 3);
	sigaddset(&s, SIGRTMIN + 5);
	return s;
}

static int take(int sig, siginfo_t *si)
{
	sigset_t one;
	struct timespec zero = { 0, 0 };

	sigemptyset(&one);
	sigaddset(&one, sig);
	/* Not sigtimedwait(): glibc reports SI_TKILL as SI_USER. */
	return (int)syscall(SYS_rt_sigtimedwait, &one, si, &zero, _NSIG / 8);
}

/* What si_code this kernel gives kill() and tgkill(), queued to a
 * blocked signal that has a handler. */
static void calibrate(void)
{
	siginfo_t si;

	kill(getpid(), SIGUSR1);
	if (take(SIGUSR1, &si) != SIGUSR1)
		cr_die("calibration: SIGUSR1 not pending");
	code_kill = si.si_code;
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
	if (take(SIGUSR2, &si) != SIGUSR2)
		cr_die("calibration: SIGUSR2 not pending");
	code_tkill = si.si_code;
}

static void read_pending(pid_t tid, struct pend_text *p)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (!cr_status_field(path, "SigPnd", p->sigpnd, sizeof(p->sigpnd)) ||
	    !cr_status_field(path, "ShdPnd", p->shdpnd, sizeof(p->shdpnd)))
		cr_die("no SigPnd/ShdPnd in %s", path);
}

static void compare_pending(pid_t tid, const struct pend_text *was, const char *who)
{
	struct pend_text now;

	read_pending(tid, &now);
	if (strcmp(now.sigpnd, was->sigpnd) || strcmp(now.shdpnd, was->shdpnd))
		cr_fail("%s: SigPnd %s ShdPnd %s, was %s %s", who, now.sigpnd, now.shdpnd,
			was->sigpnd, was->shdpnd);
}

static void expect_taken(int sig, int code, pid_t pid, int value, const char *who)
{
	siginfo_t si = { 0 };

	if (take(sig, &si) != sig) {
		cr_fail("%s: signal %d not pending", who, sig);
		return;
	}
	if (si.si_code != code || si.si_pid != pid || (value && si.si_value.sival_int != value))
		cr_fail("%s: signal %d code %d pid %d value %d, expected %d %d %d", who, sig,
			si.si_code, (int)si.si_pid, si.si_value.sival_int, code, (int)pid, value);
}

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid();
	while (!atomic_load(&stop))
		cr_sleep_ms(10);
	expect_taken(SIGUSR2, code_tkill, main_pid, 0, "thread");
	expect_taken(SIGRTMIN + 3, SI_QUEUE, main_pid, 444, "thread");
	return NULL;
}

static void queue_signals(void)
{
	siginfo_t si = { 0 };
	union sigval v;

	kill(getpid(), SIGUSR1);
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
	v.sival_int = 111;
	sigqueue(getpid(), SIGRTMIN + 2, v);
	v.sival_int = 222;
	sigqueue(getpid(), SIGRTMIN + 2, v);
	si.si_signo = SIGRTMIN + 3;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = 333;
	if (syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN + 3, &si))
		cr_die("rt_tgsigqueueinfo: %s", strerror(errno));
	/* Nothing in the kernel would make this siginfo: it must be kept verbatim. */
	si.si_signo = SIGRTMIN + 5;
	si.si_code = FORGED_CODE;
	si.si_pid = FORGED_PID;
	si.si_uid = 4343;
	si.si_value.sival_int = 555;
	if (syscall(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN + 5, &si))
		cr_die("rt_sigqueueinfo: %s", strerror(errno));
	pthread_kill(thread, SIGUSR2);
	v.sival_int = 444;
	pthread_sigqueue(thread, SIGRTMIN + 3, v);
}

static const struct delivery expected[] = {
	{ SIGUSR1, 0, 0, 0, 0 },	/* code, pid filled in */
	{ SIGUSR2, 0, 0, 0, 0 },
	{ 0, SI_QUEUE, 111, 0, 0 },	/* SIGRTMIN+2, in this order */
	{ 0, SI_QUEUE, 222, 0, 0 },
	{ 0, SI_QUEUE, 333, 0, 0 },	/* SIGRTMIN+3 */
	{ 0, FORGED_CODE, 555, FORGED_PID, 4343 },	/* SIGRTMIN+5 */
};

static void check_deliveries(void)
{
	struct delivery want[CR_ARRAY_SIZE(expected)];
	int n = atomic_load(&nr_got), used[CR_ARRAY_SIZE(expected)] = { 0 };
	int nwant = (int)CR_ARRAY_SIZE(expected);

	memcpy(want, expected, sizeof(want));
	want[0].code = code_kill;
	want[1].code = code_tkill;
	want[2].signo = want[3].signo = SIGRTMIN + 2;
	want[4].signo = SIGRTMIN + 3;
	want[5].signo = SIGRTMIN + 5;
	for (int i = 0; i < 5; i++)
		want[i].pid = getpid();
	CR_EXPECT_EQ("signals delivered", n, nwant);
	for (int i = 0; i < n && i < (int)CR_ARRAY_SIZE(got); i++) {
		int j;

		/* The first unused match keeps the order of queued instances. */
		for (j = 0; j < nwant; j++)
			if (!used[j] && got[i].signo == want[j].signo)
				break;
		if (j == nwant) {
			cr_fail("unexpected delivery of signal %d", got[i].signo);
			continue;
		}
		used[j] = 1;
		if (got[i].code != want[j].code || got[i].pid != want[j].pid ||
		    (want[j].value && got[i].value != want[j].value) ||
		    got[i].uid != want[j].uid)
			cr_fail("signal %d: code %d pid %d uid %d value %d, expected %d %d %d %d",
				got[i].signo, got[i].code, (int)got[i].pid, (int)got[i].uid,
				got[i].value, want[j].code, (int)want[j].pid, (int)want[j].uid,
				want[j].value);
	}
}

static void __attribute__((noreturn)) child(void)
{
	cr_child_ready();
	cr_wait_term();
	expect_taken(SIGUSR1, code_kill, main_pid, 0, "child");
	expect_taken(SIGRTMIN + 1, SI_QUEUE, main_pid, 999, "child");
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	struct sigaction sa = { .sa_sigaction = on_signal, .sa_flags = SA_SIGINFO };
	sigset_t set = test_set();
	union sigval v = { .sival_int = 999 };
	sigset_t pending;
	pid_t kid;
	int err;

	cr_init(argc, argv);
	main_pid = getpid();
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&set, sig) && sigaction(sig, &sa, NULL))
			cr_die("sigaction %d: %s", sig, strerror(errno));
	calibrate();
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	kill(kid, SIGUSR1);
	sigqueue(kid, SIGRTMIN + 1, v);
	err = pthread_create(&thread, NULL, thread_main, NULL);
	if (err)
		cr_die("pthread_create: %s", strerror(err));
	while (!thread_tid)
		cr_sleep_ms(1);
	queue_signals();
	read_pending(getpid(), &main_pend);
	read_pending(thread_tid, &thread_pend);
	cr_ready();
	cr_wait_term();
	compare_pending(getpid(), &main_pend, "main");
	compare_pending(thread_tid, &thread_pend, "thread");
	sigpending(&pending);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGTERM && sigismember(&pending, sig) != sigismember(&set, sig) &&
		    sig != SIGRTMIN + 1)
			cr_fail("signal %d %s pending", sig, sigismember(&pending, sig) ? "" : "not");
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	check_deliveries();
	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
