#define LOG_PREFIX "crctl: "
/*
 * crctl [--ckpt-dir DIR] COMMAND: talks to the crlaunch running with DIR
 * over DIR/control (doc/crctl.1). `epochs` also works with no crlaunch
 * running: it then reads DIR itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "launch.h"
#include "log.h"
#include "util.h"

#define CRCTL_EXIT_NOT_RUNNING 3

static void usage(FILE *f)
{
	fprintf(f,
"Usage: crctl [--ckpt-dir DIR] COMMAND\n"
"Control the crlaunch whose checkpoint directory is DIR (default ./crlaunch.ckpt).\n"
"\n"
"  checkpoint [--exit] [--wait]  take a checkpoint; --exit: then end the job (crlaunch\n"
"                                exits with 75); --wait: return when it is committed\n"
"                                and print its line (exit status 1 if it failed)\n"
"  status [--json]               the job, its state and its last checkpoint\n"
"  epochs                        the epochs in DIR and whether they are consistent\n"
"  stop                          end the job without a checkpoint (SIGTERM, then\n"
"                                SIGKILL after crlaunch's --grace)\n"
"\n"
"Exit status: 0 done, 1 refused or failed, 2 usage, 3 no crlaunch is running with DIR.\n");
}

static int connect_ctl(int dirfd, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return log_errno(-errno, "socket");
	if (control_path(dirfd, sa.sun_path, sizeof(sa.sun_path)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return -ESRCH;
		return log_errno(-e, "can't connect to %s/" CONTROL_SOCK, dir);
	}
	return fd;
}

/* Send the request, print the answer's body; 0 when it began with "ok". */
static int request(int fd, const char *req)
{
	char buf[65536];
	size_t len = 0;
	ssize_t n;
	char *nl;
	bool ok;

	/* A refusal may come before the request is sent: read it anyway. */
	if (write_full(fd, req, strlen(req)) < 0 && errno != EPIPE && errno != ECONNRESET)
		return log_errno(-errno, "can't send the request");
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	if (n < 0)
		return log_errno(-errno, "can't read the answer");
	buf[len] = '\0';
	if (!len) {
		pr_err("crlaunch closed the connection without an answer\n");
		return 1;
	}
	ok = !strncmp(buf, "ok", 2) && (buf[2] == ' ' || buf[2] == '\n');
	nl = strchr(buf, '\n');
	if (!ok) {
		fprintf(stderr, "crctl: %s", buf + (strncmp(buf, "error ", 6) ? 0 : 6));
		return 1;
	}
	/* "ok TEXT": TEXT is the message; then the body. */
	if (buf[2] == ' ' && nl)
		printf("%.*s\n", (int)(nl - buf - 3), buf + 3);
	if (nl)
		fputs(nl + 1, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ckpt-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = "crlaunch.ckpt", *cmd;
	char req[64] = "";
	_cleanup_close_ int dirfd = -1, fd = -1;
	int opt;

	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (opt == 'd') {
			dir = optarg;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(cmd, "checkpoint")) {
		strcpy(req, "checkpoint");
		for (; optind < argc; optind++) {
			if (!strcmp(argv[optind], "--exit"))
				strcat(req, " exit");
			else if (!strcmp(argv[optind], "--wait"))
				strcat(req, " wait");
			else
				break;
		}
	} else if (!strcmp(cmd, "status")) {
		strcpy(req, "status");
		if (optind < argc && !strcmp(argv[optind], "--json")) {
			strcat(req, " json");
			optind++;
		}
	} else if (!strcmp(cmd, "epochs") || !strcmp(cmd, "stop")) {
		strcpy(req, cmd);
	}
	if (!req[0] || optind < argc) {
		pr_err("%s '%s'\n", req[0] ? "unexpected argument" : "unknown command",
		       req[0] ? argv[optind] : cmd);
		usage(stderr);
		return 2;
	}
	strcat(req, "\n");
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 && errno == EACCES)	/* enough to reach the socket */
		dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("can't open the checkpoint directory '%s'", dir);
		return CRCTL_EXIT_NOT_RUNNING;
	}
	fd = connect_ctl(dirfd, dir);
	if (fd == -ESRCH && !strcmp(cmd, "epochs"))
		return epochs_print(dirfd, stdout) < 0 ? 1 : 0;
	if (fd == -ESRCH) {
		pr_err("no crlaunch is running with --ckpt-dir %s\n", dir);
		return CRCTL_EXIT_NOT_RUNNING;
	}
	if (fd < 0)
		return 1;
	return request(fd, req) ? 1 : 0;
}
