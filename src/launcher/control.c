#define LOG_PREFIX "crlaunch: "
/*
 * The control socket, CKPT_DIR/control, for crctl. A request is one line:
 *   checkpoint [exit] [wait] | status [json] | epochs | stop
 * the answer "ok ..." or "error ...", then lines of text, then EOF.
 * Only the uid crlaunch runs as may talk to it (SO_PEERCRED), and the
 * directory is 0700 anyway: images hold the job's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "crlaunch.h"
#include "log.h"
#include "util.h"

int control_listen(struct launcher *l)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (control_path(l->dirfd, sa.sun_path, sizeof(sa.sun_path)) < 0)
		return -ENAMETOOLONG;
	/* We hold the directory's lock: a socket left there is a dead crlaunch's. */
	if (unlinkat(l->dirfd, CONTROL_SOCK, 0) < 0 && errno != ENOENT)
		return log_errno(-errno, "can't remove the old %s/" CONTROL_SOCK, l->ckpt_dir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_errno(-errno, "can't create the control socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fchmodat(l->dirfd, CONTROL_SOCK, 0600, 0) < 0 || listen(fd, 16) < 0) {
		int e = -errno;
		close(fd);
		return log_errno(e, "can't listen on %s/" CONTROL_SOCK, l->ckpt_dir);
	}
	l->lfd = fd;
	return 0;
}

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (n > 0 && write_full(fd, buf, n) < 0)
		pr_debug("control: a client went away: %s\n", strerror(errno));
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void status(struct launcher *l, int fd, bool json)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	const char *state = l->exiting ? "exiting" : "running";
	double up = (now_ns(CLOCK_MONOTONIC) - l->start_ns) / 1e9;

	if (!f)
		abort();
	if (json) {
		fprintf(f, "{\"state\": \"%s\", \"pid\": %d, \"crlaunch_pid\": %d, \"uptime_s\": %.1f, "
			"\"ckpt_dir\": ", state, l->init_pid, getpid(), up);
		json_str(f, l->ckpt_dir);
		fprintf(f, ", \"cwd\": ");
		json_str(f, l->id.cwd);
		fprintf(f, ", \"argv\": [");
		for (int i = 0; i < l->id.argc; i++) {
			fprintf(f, i ? ", " : "");
			json_str(f, l->id.argv[i]);
		}
		fprintf(f, "], \"restored_from\": %u, \"checkpoints\": %d", l->restored_from,
			l->nr_checkpoints);
		if (l->have_last)
			fprintf(f, ", \"last\": {\"epoch\": %u, \"processes\": %d, \"bytes\": %" PRIu64
				", \"frozen_ns\": %" PRIu64 ", \"total_ns\": %" PRIu64 "}", l->last.epoch,
				l->last.processes, l->last.bytes, l->last.frozen_ns, l->last.total_ns);
		fprintf(f, "}\n");
	} else {
		_cleanup_free_ char *what = ident_describe(&l->id);

		fprintf(f, "job:        %s\nstate:      %s\npid:        %d (container init; crlaunch %d)\n"
			"uptime:     %.1f s\nckpt-dir:   %s\n", what, state, l->init_pid, getpid(), up,
			l->ckpt_dir);
		if (l->restored_from)
			fprintf(f, "restored:   from epoch %u\n", l->restored_from);
		fprintf(f, "checkpoints: %d by this crlaunch\n", l->nr_checkpoints);
		if (l->have_last) {
			char b[32];
			fprintf(f, "last:       epoch %u, %d processes, %s, frozen %.1f ms, total %.1f ms\n",
				l->last.epoch, l->last.processes, fmt_bytes(l->last.bytes, b, sizeof(b)),
				l->last.frozen_ns / 1e6, l->last.total_ns / 1e6);
		}
	}
	fclose(f);
	reply(fd, "ok\n");
	if (write_full(fd, text, len) < 0)
		pr_debug("control: a client went away\n");
	free(text);
}

static void epochs(struct launcher *l, int fd)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	epochs_print(l->dirfd, f);
	fclose(f);
	reply(fd, "ok\n");
	if (write_full(fd, text, len) < 0)
		pr_debug("control: a client went away\n");
	free(text);
}

/* Returns true when the connection is kept (a waiter). */
static bool serve(struct launcher *l, int fd, char *req)
{
	char *words[4] = { 0 }, *save = NULL;
	int n = 0;

	for (char *w = strtok_r(req, " \t\r\n", &save); w && n < 4; w = strtok_r(NULL, " \t\r\n", &save))
		words[n++] = w;
	if (n == 0) {
		reply(fd, "error empty request\n");
		return false;
	}
	if (!strcmp(words[0], "checkpoint")) {
		bool wait = false, ex = false;

		for (int i = 1; i < n; i++) {
			if (!strcmp(words[i], "wait"))
				wait = true;
			else if (!strcmp(words[i], "exit"))
				ex = true;
			else {
				reply(fd, "error unknown checkpoint option '%s'\n", words[i]);
				return false;
			}
		}
		if (l->exiting) {
			reply(fd, "error the job is exiting\n");
			return false;
		}
		l->want_checkpoint = true;
		l->want_exit |= ex;
		if (wait) {
			struct waiter *w = xzalloc(sizeof(*w));
			w->fd = fd;
			w->next = l->waiters;
			l->waiters = w;
			return true;
		}
		reply(fd, "ok checkpoint%s requested\n", ex ? " and exit" : "");
	} else if (!strcmp(words[0], "status")) {
		status(l, fd, n > 1 && !strcmp(words[1], "json"));
	} else if (!strcmp(words[0], "epochs")) {
		epochs(l, fd);
	} else if (!strcmp(words[0], "stop")) {
		if (!l->stop_deadline)
			l->stop_deadline = now_ns(CLOCK_MONOTONIC) + (l->grace_ns ? l->grace_ns : 10000000000ull);
		kill(l->init_pid, SIGTERM);
		reply(fd, "ok stopping the job (SIGTERM, SIGKILL after --grace)\n");
	} else {
		reply(fd, "error unknown request '%s'\n", words[0]);
	}
	return false;
}

void control_accept(struct launcher *l)
{
	for (;;) {
		int fd = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
		struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
		socklen_t clen = sizeof(cred);
		struct pollfd p;
		char req[256];
		ssize_t n = 0;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pr_perror("control socket: accept");
			return;
		}
		/* One short line, sent right after connecting: wait a little for it. */
		p = (struct pollfd){ fd, POLLIN, 0 };
		if (poll(&p, 1, 2000) == 1)
			n = read(fd, req, sizeof(req) - 1);
		/* Checked after the read: closing on an unread request would reset the answer. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != getuid()) {
			pr_warn("control socket: refused a client of uid %d (pid %d): only uid %d may\n",
				(int)cred.uid, (int)cred.pid, (int)getuid());
			reply(fd, "error permission denied: this job belongs to uid %d\n", (int)getuid());
			close(fd);
			continue;
		}
		if (n <= 0) {
			close(fd);
			continue;
		}
		req[n] = '\0';
		if (!serve(l, fd, req))
			close(fd);
	}
}

void control_answer_waiters(struct launcher *l, bool ok, const char *msg)
{
	while (l->waiters) {
		struct waiter *w = l->waiters;

		reply(w->fd, "%s %s\n", ok ? "ok" : "error", msg);
		close(w->fd);
		l->waiters = w->next;
		free(w);
	}
}

void control_close(struct launcher *l)
{
	if (l->lfd >= 0) {
		close(l->lfd);
		unlinkat(l->dirfd, CONTROL_SOCK, 0);
		l->lfd = -1;
	}
}
