/* crtool: the checkpoint/restore engine's command line. */
#define LOG_PREFIX ""
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cr.h"
#include "kerndat.h"
#include "log.h"
#include "show.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage:\n"
		"  crtool dump -t PID -D DIR [--leave-running | --leave-stopped] [--stats]\n"
		"              [--ghost-limit SIZE] [--max-tmpfs-size SIZE] [--external ID | --external tty]...\n"
		"              [--tcp-established] [-v]\n"
		"  crtool restore -D DIR [--detach] [--pidfile FILE] [--inherit-fd N:ID]... [-v]\n"
		"  crtool check [--json]\n"
		"  crtool show DIR [--json]\n"
		"\n"
		"dump     save the process tree rooted at PID into DIR, then kill it\n"
		"restore  bring the tree saved in DIR back with the same PIDs\n"
		"check    probe the kernel features the engine needs\n"
		"show     decode the images in DIR\n"
		"See crtool(8).\n");
}

enum { OPT_LEAVE_RUNNING = 256, OPT_LEAVE_STOPPED, OPT_DETACH, OPT_PIDFILE, OPT_JSON, OPT_STATS,
       OPT_GHOST_LIMIT, OPT_EXTERNAL, OPT_INHERIT_FD, OPT_MAX_TMPFS, OPT_TCP_ESTABLISHED };

static const struct option long_opts[] = {
	{ "tree", required_argument, NULL, 't' },
	{ "images-dir", required_argument, NULL, 'D' },
	{ "leave-running", no_argument, NULL, OPT_LEAVE_RUNNING },
	{ "leave-stopped", no_argument, NULL, OPT_LEAVE_STOPPED },
	{ "detach", no_argument, NULL, OPT_DETACH },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "ghost-limit", required_argument, NULL, OPT_GHOST_LIMIT },
	{ "external", required_argument, NULL, OPT_EXTERNAL },
	{ "max-tmpfs-size", required_argument, NULL, OPT_MAX_TMPFS },
	{ "inherit-fd", required_argument, NULL, OPT_INHERIT_FD },
	{ "tcp-established", no_argument, NULL, OPT_TCP_ESTABLISHED },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct cli {
	struct dump_opts dump;
	struct restore_opts rst;
	bool json, have_pid;
};

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v <= 0 || v > 4194304) {
		pr_err("'%s' is not a valid pid\n", s);
		return -1;
	}
	*out = v;
	return 0;
}

/* "4096", "64K", "512M", "2G". */
static int parse_size(const char *opt, const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;

	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (end == s || *end || (v << shift) >> shift != v || !v) {
		pr_err("--%s: '%s' is not a size (bytes, or with a K, M or G suffix)\n", opt, s);
		return -1;
	}
	*out = v << shift;
	return 0;
}

/* "N:ID" or "fd[N]:ID", ID as the dumped descriptor's link read ("pipe:[1234]"). */
static int parse_inherit(const char *s, struct restore_opts *o)
{
	char *end;
	const char *p = s + (strncmp(s, "fd[", 3) ? 0 : 3);
	long fd = strtol(p, &end, 10);

	if (p != s && *end == ']')
		end++;
	if (end == p || *end != ':' || !end[1] || fd < 0 || fd > 1 << 20 ||
	    fcntl(fd, F_GETFD) < 0) {
		pr_err("--inherit-fd '%s': expected N:ID with N an open descriptor of crtool\n", s);
		return -1;
	}
	o->inherit = realloc(o->inherit, (o->nr_inherit + 1) * sizeof(*o->inherit));
	if (!o->inherit)
		abort();
	o->inherit[o->nr_inherit].fd = fd;
	o->inherit[o->nr_inherit++].id = end + 1;
	return 0;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	int opt;

	while ((opt = getopt_long(argc, argv, "t:D:vh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_pid(optarg, &c->dump.pid) < 0)
				return -1;
			c->have_pid = true;
			break;
		case 'D':
			c->dump.dir = c->rst.dir = optarg;
			break;
		case OPT_LEAVE_RUNNING:
			c->dump.after = DUMP_LEAVE_RUNNING;
			break;
		case OPT_LEAVE_STOPPED:
			c->dump.after = DUMP_LEAVE_STOPPED;
			break;
		case OPT_DETACH:
			c->rst.detach = true;
			break;
		case OPT_PIDFILE:
			c->rst.pidfile = optarg;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_STATS:
			c->dump.stats = true;
			break;
		case OPT_GHOST_LIMIT:
			if (parse_size("ghost-limit", optarg, &c->dump.ghost_limit) < 0)
				return -1;
			break;
		case OPT_MAX_TMPFS:
			if (parse_size("max-tmpfs-size", optarg, &c->dump.max_tmpfs) < 0)
				return -1;
			break;
		case OPT_EXTERNAL:
			c->dump.externals = realloc(c->dump.externals,
						   (c->dump.nr_externals + 1) * sizeof(char *));
			if (!c->dump.externals)
				abort();
			c->dump.externals[c->dump.nr_externals++] = optarg;
			break;
		case OPT_TCP_ESTABLISHED:
			c->dump.tcp_established = true;
			break;
		case OPT_INHERIT_FD:
			if (parse_inherit(optarg, &c->rst) < 0)
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
	return 0;
}

static int need(bool ok, const char *what)
{
	if (!ok)
		pr_err("%s\n", what);
	return ok ? 0 : -1;
}

static int run(const char *cmd, int argc, char **argv, struct cli *c)
{
	if (!strcmp(cmd, "dump")) {
		if (need(c->have_pid, "dump needs -t PID") || need(c->dump.dir, "dump needs -D DIR"))
			return 1;
		return cr_dump(&c->dump) < 0 ? 1 : 0;
	}
	if (!strcmp(cmd, "restore")) {
		int r;
		if (need(c->rst.dir, "restore needs -D DIR"))
			return 1;
		r = cr_restore(&c->rst);
		return r < 0 ? 1 : r;
	}
	if (!strcmp(cmd, "check"))
		return kerndat_check_cmd(c->json);
	if (!strcmp(cmd, "show")) {
		if (need(optind < argc || c->rst.dir, "show needs DIR"))
			return 1;
		return show_cmd(optind < argc ? argv[optind] : c->rst.dir, c->json) ? 1 : 0;
	}
	pr_err("unknown command '%s'\n", cmd);
	usage(stderr);
	return 1;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	const char *cmd;
	int ret;

	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	optind = 2;
	ret = parse_args(argc, argv, &c) < 0 ? 1 : run(cmd, argc, argv, &c);
	free(c.dump.externals);
	free(c.rst.inherit);
	return ret;
}
