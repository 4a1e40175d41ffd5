#define LOG_PREFIX "crlaunch: "
/*
 * crlaunch [OPTIONS] [--] CMD [ARGS...]: runs CMD in a job container and
 * checkpoints it into epochs on signals, on a timer and on crctl's request;
 * run again with the same command line and directory, it restores the
 * newest consistent epoch instead (doc/crlaunch.1).
 *
 * One thread, one poll loop: a signalfd, the interval timer, the control
 * socket and the job's pipes. A checkpoint runs inside the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crlaunch.h"
#include "log.h"
#include "util.h"

static const struct { const char *name; int sig; } signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "WINCH", SIGWINCH },
	{ "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
	{ "URG", SIGURG }, { "PWR", SIGPWR },
};

static const char *const action_names[] = {
	[SA_CHECKPOINT] = "checkpoint", [SA_CHECKPOINT_EXIT] = "checkpoint-exit",
	[SA_FORWARD] = "forward", [SA_IGNORE] = "ignore",
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: crlaunch [OPTIONS] [--] CMD [ARGS...]\n"
"Run CMD in a job container that can be checkpointed and restarted.\n"
"\n"
"  --ckpt-dir DIR        checkpoint directory (default ./crlaunch.ckpt, made mode 0700);\n"
"                        holds epoch-NNNNNN/ directories and the control socket\n"
"  --interval DURATION   checkpoint every DURATION as well (e.g. 30m, 2h; default never)\n"
"  --keep N              consistent epochs kept (default 2)\n"
"  --restart MODE        auto: restore the newest consistent epoch of this job if there\n"
"                        is one, else launch (default); always: restore or fail;\n"
"                        never: launch afresh (epoch numbers go on)\n"
"  --on-signal SIG=ACTION  what a signal to crlaunch does: checkpoint, checkpoint-exit,\n"
"                        forward (to the job), ignore. Defaults: USR1=checkpoint,\n"
"                        TERM=checkpoint-exit, others (HUP INT QUIT USR2 ALRM ...) forward\n"
"  --grace DURATION      time budget of a checkpoint-exit: past it, the checkpoint is\n"
"                        abandoned and the signal forwarded (default: no limit); also\n"
"                        the delay of `crctl stop` before SIGKILL (default 10s)\n"
"  --namespaces LIST     container namespaces, of pid,ipc,mnt,net (mnt: a private\n"
"                        /dev/shm and /proc; net: loopback only); default: pid,ipc,mnt\n"
"  -v, --verbose         more messages (repeat for more)\n"
"  -h, --help            this help\n"
"\n"
"DURATION: a number with s (default), ms, m, h or d. The job's exit status is\n"
"crlaunch's; after a checkpoint-exit crlaunch exits with %d, and with %d when it\n"
"fails itself. Talk to a running crlaunch with crctl(1). See crlaunch(1).\n",
		CRL_EXIT_CHECKPOINTED, CRL_EXIT_ERROR);
}

static int parse_signal(const char *s)
{
	char *end;
	long v;

	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (!strcasecmp(s, signals[i].name))
			return signals[i].sig;
	v = strtol(s, &end, 10);
	for (size_t i = 0; *s && !*end && i < ARRAY_SIZE(signals); i++)
		if (signals[i].sig == v)
			return v;
	return -1;
}

static int parse_on_signal(struct launcher *l, const char *arg)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *eq = strchr(copy, '=');
	int sig;

	if (!eq)
		goto bad;
	*eq = '\0';
	sig = parse_signal(copy);
	if (sig < 0) {
		pr_err("--on-signal %s: '%s' is not a signal crlaunch handles (HUP INT QUIT USR1 USR2 "
		       "ALRM TERM WINCH XCPU XFSZ VTALRM PROF URG PWR)\n", arg, copy);
		return -1;
	}
	for (size_t a = SA_CHECKPOINT; a < ARRAY_SIZE(action_names); a++) {
		if (!strcmp(eq + 1, action_names[a])) {
			l->on_signal[sig] = a;
			l->on_signal_set[sig] = true;
			return 0;
		}
	}
bad:
	pr_err("--on-signal '%s': expected SIG=ACTION, ACTION one of checkpoint, checkpoint-exit, "
	       "forward, ignore\n", arg);
	return -1;
}

static int parse_namespaces(struct launcher *l, const char *arg)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *save = NULL;

	l->ns_flags = 0;
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (!strcmp(w, "pid"))
			l->ns_flags |= CRL_NS_PID;
		else if (!strcmp(w, "ipc"))
			l->ns_flags |= CRL_NS_IPC;
		else if (!strcmp(w, "mnt"))
			l->ns_flags |= CRL_NS_MNT;
		else if (!strcmp(w, "net"))
			l->ns_flags |= CRL_NS_NET;
		else {
			pr_err("--namespaces: unknown namespace '%s' (pid, ipc, mnt, net)\n", w);
			return -1;
		}
	}
	if (!(l->ns_flags & CRL_NS_PID)) {
		pr_err("--namespaces: the job container needs its own PID namespace ('pid')\n");
		return -1;
	}
	return 0;
}

enum { OPT_CKPT_DIR = 256, OPT_INTERVAL, OPT_KEEP, OPT_RESTART, OPT_ON_SIGNAL, OPT_GRACE, OPT_NS };

static int parse_args(struct launcher *l, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ckpt-dir", required_argument, NULL, OPT_CKPT_DIR },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "restart", required_argument, NULL, OPT_RESTART },
		{ "on-signal", required_argument, NULL, OPT_ON_SIGNAL },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "namespaces", required_argument, NULL, OPT_NS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int opt;

	while ((opt = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_CKPT_DIR:
			l->ckpt_dir = optarg;
			break;
		case OPT_INTERVAL:
		case OPT_GRACE:
			if (parse_duration(optarg, opt == OPT_GRACE ? &l->grace_ns : &l->interval_ns) < 0) {
				pr_err("--%s '%s': expected a duration like 90s, 30m or 2h\n",
				       opt == OPT_GRACE ? "grace" : "interval", optarg);
				return -1;
			}
			break;
		case OPT_KEEP:
			l->keep = strtol(optarg, &end, 10);
			if (*end || end == optarg || l->keep < 1 || l->keep > 999999) {
				pr_err("--keep '%s': expected a number of epochs, at least 1\n", optarg);
				return -1;
			}
			break;
		case OPT_RESTART:
			if (!strcmp(optarg, "auto"))
				l->restart = RESTART_AUTO;
			else if (!strcmp(optarg, "always"))
				l->restart = RESTART_ALWAYS;
			else if (!strcmp(optarg, "never"))
				l->restart = RESTART_NEVER;
			else {
				pr_err("--restart '%s': expected auto, always or never\n", optarg);
				return -1;
			}
			break;
		case OPT_ON_SIGNAL:
			if (parse_on_signal(l, optarg) < 0)
				return -1;
			break;
		case OPT_NS:
			if (parse_namespaces(l, optarg) < 0)
				return -1;
			break;
		case 'v':
			cr_loglevel++;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind >= argc) {
		pr_err("no command given\n");
		usage(stderr);
		return -1;
	}
	return optind;
}

/* CKPT_DIR: created 0700, locked for as long as we run. */
static int open_ckpt_dir(struct launcher *l)
{
	struct stat st;
	int ret = mkdir_p(l->ckpt_dir, 0700);

	if (ret < 0)
		return log_errno(ret, "can't create the checkpoint directory '%s'", l->ckpt_dir);
	l->dirfd = open(l->ckpt_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0)
		return log_errno(-errno, "can't open the checkpoint directory '%s'", l->ckpt_dir);
	if (fstat(l->dirfd, &st) < 0)
		return log_errno(-errno, "can't stat '%s'", l->ckpt_dir);
	if (st.st_uid != getuid()) {
		pr_err("the checkpoint directory '%s' belongs to uid %d, not to us (%d)\n", l->ckpt_dir,
		       (int)st.st_uid, (int)getuid());
		return -EPERM;
	}
	/* Images hold the job's memory: nobody else may read them. */
	if ((st.st_mode & 077) && fchmod(l->dirfd, 0700) < 0)
		return log_errno(-errno, "can't make '%s' mode 0700", l->ckpt_dir);
	if (flock(l->dirfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			pr_err("another crlaunch is running with --ckpt-dir %s\n", l->ckpt_dir);
			return -EBUSY;
		}
		return log_errno(-errno, "can't lock '%s'", l->ckpt_dir);
	}
	return 0;
}

static int setup_signals(struct launcher *l)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++) {
		int sig = signals[i].sig;
		struct sigaction old;

		sigaddset(&set, sig);
		/*
		 * An ignored signal never reaches a signalfd. A shell starts a
		 * background job with INT and QUIT ignored, nohup HUP: those stay
		 * ignored unless told otherwise; what we act on must come through.
		 */
		if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN) {
			if (l->on_signal[sig] == SA_FORWARD && !l->on_signal_set[sig])
				l->on_signal[sig] = SA_IGNORE;
			else
				signal(sig, SIG_DFL);
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return log_errno(-errno, "sigprocmask");
	l->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l->sfd < 0)
		return log_errno(-errno, "signalfd");
	if (l->interval_ns) {
		struct itimerspec its = { 0 };

		its.it_interval.tv_sec = l->interval_ns / 1000000000ull;
		its.it_interval.tv_nsec = l->interval_ns % 1000000000ull;
		its.it_value = its.it_interval;
		l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (l->tfd < 0 || timerfd_settime(l->tfd, 0, &its, NULL) < 0)
			return log_errno(-errno, "can't arm the --interval timer");
	}
	return 0;
}

/*
 * CKPT_DIR/done: the job ran to its end. Its epochs stay (--restart always
 * still takes them) but running the same line again starts it over.
 */
static bool job_done(struct launcher *l)
{
	return faccessat(l->dirfd, "done", F_OK, 0) == 0;
}

static void mark_done(struct launcher *l, int status)
{
	char text[16];
	int n = snprintf(text, sizeof(text), "%d\n", status);
	_cleanup_close_ int fd = openat(l->dirfd, "done", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || write_full(fd, text, n) != n || fsync(fd) < 0)
		pr_warn("can't write %s/done: %s\n", l->ckpt_dir, strerror(errno));
}

static int start_job(struct launcher *l)
{
	bool fresh = l->restart == RESTART_NEVER || (l->restart == RESTART_AUTO && job_done(l));
	int r = fresh ? 0 : restart_from_epochs(l);

	if (r < 0)
		return r;
	if (r == 0 && l->restart == RESTART_ALWAYS) {
		pr_err("--restart always: %s holds no checkpoint of this job\n", l->ckpt_dir);
		return -ENOENT;
	}
	if (fresh) {
		struct epoch_info *e;
		int nr;

		/* Numbers go on after the epochs already there. */
		if (epochs_list(l->dirfd, &e, &nr) == 0) {
			l->last_epoch = nr ? e[0].epoch : 0;
			epochs_free(e, nr);
		}
	}
	epochs_prune(l->dirfd, l->keep, l->restored_from);
	if (r == 1)
		return 0;
	if (unlinkat(l->dirfd, "done", 0) < 0 && errno != ENOENT)
		return log_errno(-errno, "can't remove %s/done", l->ckpt_dir);
	r = streams_open(l);
	if (r < 0)
		return r;
	return container_start(l);
}

static int job_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The job is over: forward the rest of its output, give its status. */
static int finish(struct launcher *l, int st)
{
	for (int i = STREAM_STDOUT; i <= STREAM_STDERR; i++) {
		if (l->streams[i].fd >= 0)
			fcntl(l->streams[i].fd, F_SETFL, 0);	/* every writer is dead: EOF comes */
		stream_pump(l, i);
	}
	if (l->exiting)
		return CRL_EXIT_CHECKPOINTED;
	pr_info("the job exited with status %d\n", job_status(st));
	mark_done(l, job_status(st));
	return job_status(st);
}

static void do_checkpoint(struct launcher *l, int fallback_sig)
{
	char msg[512];
	bool ex = l->want_exit;
	int ret;

	l->want_checkpoint = l->want_exit = false;
	ret = checkpoint(l, ex, msg, sizeof(msg));
	control_answer_waiters(l, ret == 0, msg);
	if (ret == 0 && ex)
		l->exiting = true;	/* the engine killed the job after the commit */
	else if (ret < 0 && ex && fallback_sig)
		kill(l->init_pid, fallback_sig);
}

static void on_signal(struct launcher *l, int sig, int *fallback)
{
	switch (l->on_signal[sig]) {
	case SA_CHECKPOINT:
		l->want_checkpoint = true;
		break;
	case SA_CHECKPOINT_EXIT:
		l->want_checkpoint = l->want_exit = true;
		*fallback = sig;
		break;
	case SA_FORWARD:
		kill(l->init_pid, sig);
		break;
	default:
		break;
	}
}

/* Returns the exit status once the job is gone, -1 while it runs. */
static int handle_signals(struct launcher *l, int *fallback)
{
	struct signalfd_siginfo si;
	int st;

	while (read(l->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo != SIGCHLD)
			on_signal(l, si.ssi_signo, fallback);
	}
	if (waitpid(l->init_pid, &st, WNOHANG) == l->init_pid)
		return finish(l, st);
	return -1;
}

static int loop(struct launcher *l)
{
	for (;;) {
		struct stream *in = &l->streams[STREAM_STDIN];
		struct pollfd p[6] = {
			{ l->sfd, POLLIN, 0 }, { l->tfd, POLLIN, 0 }, { l->lfd, POLLIN, 0 },
			{ l->streams[STREAM_STDOUT].fd, POLLIN, 0 }, { l->streams[STREAM_STDERR].fd, POLLIN, 0 },
			{ in->fd < 0 ? -1 : in->buffered ? in->fd : STDIN_FILENO, in->buffered ? POLLOUT : POLLIN, 0 },
		};
		int timeout = -1, fallback = 0, ret;

		if (l->stop_deadline) {
			uint64_t now = now_ns(CLOCK_MONOTONIC);
			timeout = now >= l->stop_deadline ? 0 : (int)((l->stop_deadline - now) / 1000000) + 1;
		}
		ret = poll(p, ARRAY_SIZE(p), timeout);
		if (ret < 0 && errno != EINTR)
			return log_errno(-errno, "poll");
		if (p[3].revents)
			stream_pump(l, STREAM_STDOUT);
		if (p[4].revents)
			stream_pump(l, STREAM_STDERR);
		if (p[5].revents)
			stdin_feed(l);
		if (p[2].revents)
			control_accept(l);
		if (p[1].revents) {
			uint64_t ticks;
			if (read(l->tfd, &ticks, sizeof(ticks)) > 0)
				l->want_checkpoint = true;
		}
		if (l->stop_deadline && now_ns(CLOCK_MONOTONIC) >= l->stop_deadline) {
			pr_warn("the job did not stop within the grace time: SIGKILL\n");
			kill(l->init_pid, SIGKILL);
			l->stop_deadline = 0;
		}
		ret = handle_signals(l, &fallback);
		if (ret >= 0)
			return ret;
		if (l->want_checkpoint && !l->exiting)
			do_checkpoint(l, fallback);
		if (l->exiting) {
			int st;
			while (waitpid(l->init_pid, &st, 0) < 0 && errno == EINTR)
				;
			return finish(l, st);
		}
	}
}

int main(int argc, char **argv)
{
	struct launcher l = { .ckpt_dir = "crlaunch.ckpt", .keep = 2, .ns_flags = CRL_NS_DEFAULT,
			      .dirfd = -1, .sfd = -1, .tfd = -1, .lfd = -1 };
	int first, ret;

	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		l.on_signal[signals[i].sig] = SA_FORWARD;
	l.on_signal[SIGUSR1] = SA_CHECKPOINT;
	l.on_signal[SIGTERM] = SA_CHECKPOINT_EXIT;
	for (int i = 0; i < NR_STREAMS; i++)
		l.streams[i].fd = l.streams[i].job_fd = -1;
	first = parse_args(&l, argc, argv);
	if (first < 0)
		return CRL_EXIT_ERROR;
	l.start_ns = now_ns(CLOCK_MONOTONIC);
	ret = ident_from_cmd(&l.id, argc - first, argv + first);
	if (!ret)
		ret = open_ckpt_dir(&l);
	if (!ret)
		ret = job_file_check(l.dirfd, &l.id, l.ckpt_dir);
	if (!ret)
		ret = setup_signals(&l);
	if (!ret)
		ret = start_job(&l);
	if (!ret)
		ret = control_listen(&l);
	if (ret < 0) {
		if (l.init_pid > 0) {
			kill(l.init_pid, SIGKILL);
			waitpid(l.init_pid, NULL, 0);
		}
		ret = CRL_EXIT_ERROR;
	} else {
		ret = loop(&l);
		if (ret < 0)
			ret = CRL_EXIT_ERROR;
	}
	control_close(&l);
	control_answer_waiters(&l, false, "the job is gone");
	if (l.have_last)
		manifest_free(&l.last);
	for (int i = 0; i < NR_STREAMS; i++) {
		if (l.streams[i].fd >= 0)
			close(l.streams[i].fd);
		free(l.streams[i].ext_id);
	}
	ident_free(&l.id);
	return ret;
}
