#define LOG_PREFIX "crlaunch: "
/*
 * The job container: a child in new namespaces (CRL_NS_*), running crinit as
 * its PID 1, with pipes for stdin, stdout and stderr whose other ends we
 * hold. The job's ends are declared external at every dump and replaced by
 * new pipes at restore, so the job writes to the same place after a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <limits.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crlaunch.h"
#include "linux/cr-compat.h"
#include "log.h"
#include "util.h"

#ifndef CRINIT_PATH
#define CRINIT_PATH "/usr/local/libexec/crlaunch/crinit"
#endif

/* $CRLAUNCH_INIT, crinit beside our own binary (a build tree), or the installed one. */
const char *init_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("CRLAUNCH_INIT");
	ssize_t n;
	char *slash;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	if (n > 0) {
		path[n] = '\0';
		slash = strrchr(path, '/');
		if (slash) {
			strcpy(slash + 1, "crinit");
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	return CRINIT_PATH;
}

static char *pipe_id(int fd)
{
	struct stat st;
	char *id;

	if (fstat(fd, &st) < 0)
		return NULL;
	if (asprintf(&id, "pipe:[%llu]", (unsigned long long)st.st_ino) < 0)
		abort();
	return id;
}

/*
 * New pipes for the three streams: the job reads stdin, writes the others.
 * A stdin we do not feed (EOF seen, or a terminal we are in the background
 * of, which would stop us with SIGTTIN) is a pipe without a writer: EOF.
 */
int streams_open(struct launcher *l)
{
	struct stream *in = &l->streams[STREAM_STDIN];

	for (int i = 0; i < NR_STREAMS; i++) {
		struct stream *s = &l->streams[i];
		int p[2];

		if (pipe2(p, O_CLOEXEC) < 0)
			return log_errno(-errno, "can't create the %s pipe", stream_names[i]);
		s->fd = i == STREAM_STDIN ? p[1] : p[0];
		s->job_fd = i == STREAM_STDIN ? p[0] : p[1];
		if (fcntl(s->fd, F_SETFL, O_NONBLOCK) < 0)
			return log_errno(-errno, "can't make the %s pipe non-blocking", stream_names[i]);
		free(s->ext_id);
		s->ext_id = pipe_id(s->job_fd);
		if (!s->ext_id)
			return log_errno(-errno, "can't stat the %s pipe", stream_names[i]);
	}
	if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) != getpgrp())
		l->stdin_eof = true;
	if (l->stdin_eof) {
		close(in->fd);
		in->fd = -1;
	}
	return 0;
}

void streams_close_job_ends(struct launcher *l)
{
	for (int i = 0; i < NR_STREAMS; i++) {
		if (l->streams[i].job_fd >= 0)
			close(l->streams[i].job_fd);
		l->streams[i].job_fd = -1;
	}
}

/* A container with its own mount namespace: the host's mounts, a private /dev/shm, its /proc. */
static int setup_mounts(void)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return log_errno(-errno, "can't make the container's mounts slaves of the host's");
	if (mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		return log_errno(-errno, "can't mount a private tmpfs on /dev/shm");
	/* We are the new PID namespace's first process: its own /proc shows the job alone. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return log_errno(-errno, "can't mount the container's /proc");
	return 0;
}

/* A new network namespace has a loopback interface, down: bring it up. */
static int setup_loopback(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return log_errno(-errno, "can't read the flags of the container's loopback");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return log_errno(-errno, "can't bring the container's loopback up");
	return 0;
}

/* The container could not be set up: say so to crlaunch, which waits for the exec. */
static void child_abort(int sync_fd) __attribute__((noreturn));
static void child_abort(int sync_fd)
{
	if (write(sync_fd, "!", 1) < 0)
		_exit(CRL_EXIT_ERROR);
	_exit(CRL_EXIT_ERROR);
}

static void container_child(struct launcher *l, int sync_fd) __attribute__((noreturn));
static void container_child(struct launcher *l, int sync_fd)
{
	const char *init = init_path();
	char **argv = xzalloc((l->id.argc + 2) * sizeof(char *));
	sigset_t all;

	/* The job dies with us: a crlaunch killed mid-checkpoint leaves no frozen job. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if ((l->ns_flags & CRL_NS_MNT) && setup_mounts() < 0)
		child_abort(sync_fd);
	if ((l->ns_flags & CRL_NS_NET) && setup_loopback() < 0)
		child_abort(sync_fd);
	/* Our messages go to crlaunch's stderr, not to the job's (nobody reads it yet). */
	cr_log_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	for (int i = 0; i < NR_STREAMS; i++) {
		if (dup2(l->streams[i].job_fd, i) < 0) {
			pr_perror("can't give the job its %s", stream_names[i]);
			child_abort(sync_fd);
		}
	}
	/* Nothing of ours leaks into the job (descriptors we inherited without CLOEXEC): all go at exec. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		pr_perror("close_range");
		child_abort(sync_fd);
	}
	/* crinit blocks every signal itself; the job starts with none blocked. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	argv[0] = (char *)"crinit";
	for (int i = 0; i < l->id.argc; i++)
		argv[i + 1] = l->id.argv[i];
	execv(init, argv);
	pr_perror("can't run the container init '%s' (set CRLAUNCH_INIT?)", init);
	child_abort(sync_fd);
}

/*
 * Returns once crinit runs: until the exec the child is a copy of us, with
 * our descriptors, and must not be checkpointed.
 */
int container_start(struct launcher *l)
{
	struct cr_clone_args args = { 0 };
	int sync[2], st;
	ssize_t n;
	char b;
	pid_t pid;

	if (pipe2(sync, O_CLOEXEC) < 0)
		return log_errno(-errno, "can't create a pipe");
	args.flags = ((l->ns_flags & CRL_NS_PID) ? CLONE_NEWPID : 0) |
		     ((l->ns_flags & CRL_NS_IPC) ? CLONE_NEWIPC : 0) |
		     ((l->ns_flags & CRL_NS_MNT) ? CLONE_NEWNS : 0) |
		     ((l->ns_flags & CRL_NS_NET) ? CLONE_NEWNET : 0);
	args.exit_signal = SIGCHLD;
	pid = syscall(SYS_clone3, &args, 64);	/* CLONE_ARGS_SIZE_VER0 */
	if (pid == 0) {
		close(sync[0]);
		container_child(l, sync[1]);
	}
	close(sync[1]);
	if (pid < 0) {
		close(sync[0]);
		return log_errno(-errno, "can't create the job container (clone3 flags %#llx)",
				 (unsigned long long)args.flags);
	}
	while ((n = read(sync[0], &b, 1)) < 0 && errno == EINTR)
		;
	close(sync[0]);
	streams_close_job_ends(l);
	if (n != 0) {
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		pr_err("the job container could not be set up\n");
		return -ECHILD;
	}
	l->init_pid = pid;
	return 0;
}

/* Job output to ours: as much as is there now. */
void stream_pump(struct launcher *l, int i)
{
	struct stream *s = &l->streams[i];
	char buf[65536];

	while (s->fd >= 0) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(s->fd);	/* EOF: every writer is gone */
			s->fd = -1;
			return;
		}
		s->bytes += n;
		/* Our own output may be gone (a closed terminal): the job must not stall. */
		if (write_full(i, buf, n) != n && errno != EPIPE)
			pr_warn("can't write the job's %s: %s\n", stream_names[i], strerror(errno));
	}
}

/* Everything the job wrote so far, with the job frozen: the output of an epoch ends here. */
void streams_drain(struct launcher *l)
{
	stream_pump(l, STREAM_STDOUT);
	stream_pump(l, STREAM_STDERR);
}

/* Our stdin to the job's, without ever blocking on either. */
void stdin_feed(struct launcher *l)
{
	struct stream *s = &l->streams[STREAM_STDIN];

	if (s->fd < 0)
		return;
	if (!s->buffered && !l->stdin_eof) {
		ssize_t n = read(STDIN_FILENO, s->buf, sizeof(s->buf));

		if (n > 0)
			s->buffered = n;
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			l->stdin_eof = true;
	}
	if (s->buffered) {
		ssize_t n = write(s->fd, s->buf, s->buffered);

		if (n > 0) {
			memmove(s->buf, s->buf + n, s->buffered - n);
			s->buffered -= n;
			s->bytes += n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			s->buffered = 0;	/* the job closed its stdin */
			l->stdin_eof = true;
		}
	}
	if (l->stdin_eof && !s->buffered) {
		close(s->fd);
		s->fd = -1;
	}
}
