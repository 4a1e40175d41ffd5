#define LOG_PREFIX "crlaunch: "
/*
 * The job's identity (command line and working directory) and the escaping
 * used by every text file of the checkpoint directory: bytes that are not
 * printable ASCII, spaces and '%' are written %XX, so a value is one word.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "launch.h"
#include "log.h"
#include "util.h"

char *str_escape(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *o = out;

	for (; *s; s++) {
		unsigned char c = *s;

		if (c <= ' ' || c >= 0x7f || c == '%')
			o += sprintf(o, "%%%02X", c);
		else
			*o++ = c;
	}
	*o = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* NULL when s is not a well-formed escaped word (or decodes to a NUL). */
char *str_unescape(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;

	for (; *s; s++) {
		if (*s != '%') {
			if ((unsigned char)*s <= ' ')
				goto bad;
			*o++ = *s;
			continue;
		}
		int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

		if (hi < 0 || lo < 0 || (hi | lo) == 0)
			goto bad;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int ident_from_cmd(struct job_ident *id, int argc, char **argv)
{
	char *cwd = getcwd(NULL, 0);

	if (!cwd)
		return log_errno(-errno, "can't get the working directory");
	id->cwd = cwd;
	id->argc = argc;
	id->argv = xzalloc((argc + 1) * sizeof(char *));
	for (int i = 0; i < argc; i++)
		id->argv[i] = xstrdup(argv[i]);
	return 0;
}

bool ident_equal(const struct job_ident *a, const struct job_ident *b)
{
	if (!a->cwd || !b->cwd || strcmp(a->cwd, b->cwd) || a->argc != b->argc)
		return false;
	for (int i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return true;
}

char *ident_describe(const struct job_ident *id)
{
	size_t len = strlen(id->cwd ? id->cwd : "?") + 16;
	char *s, *p;

	for (int i = 0; i < id->argc; i++)
		len += strlen(id->argv[i]) + 1;
	s = p = xmalloc(len);
	p += sprintf(p, "'");
	for (int i = 0; i < id->argc; i++)
		p += sprintf(p, "%s%s", i ? " " : "", id->argv[i]);
	sprintf(p, "' in %s", id->cwd ? id->cwd : "?");
	return s;
}

void ident_free(struct job_ident *id)
{
	for (int i = 0; id->argv && i < id->argc; i++)
		free(id->argv[i]);
	free(id->argv);
	free(id->cwd);
	*id = (struct job_ident){ 0 };
}

/*
 * CKPT_DIR/job names the job the directory belongs to, so that another job
 * pointed at it is refused even before its first epoch. It is a manifest
 * without epoch data (same format, epoch 0).
 */
int job_file_check(int dirfd, const struct job_ident *id, const char *ckpt_dir)
{
	struct manifest m = { 0 };
	_cleanup_free_ char *text = NULL;
	char err[160];
	ssize_t n = read_file_at(dirfd, "job", &text);
	int ret = 0;

	if (n >= 0) {
		if (manifest_parse(text, n, &m, err, sizeof(err)) < 0) {
			pr_err("%s/job is damaged (%s); remove it to use this directory\n", ckpt_dir, err);
			return -EBADMSG;
		}
		if (!ident_equal(&m.id, id)) {
			_cleanup_free_ char *theirs = ident_describe(&m.id), *ours = ident_describe(id);

			pr_err("%s holds the checkpoints of another job (%s), not of %s; "
			       "use another --ckpt-dir or remove that one\n", ckpt_dir, theirs, ours);
			ret = -EEXIST;
		}
		manifest_free(&m);
		return ret;
	}
	if (n != -ENOENT)
		return log_errno(n, "can't read %s/job", ckpt_dir);

	m.id = *id;
	_cleanup_free_ char *out = manifest_format(&m, (size_t *)&n);
	_cleanup_close_ int fd = openat(dirfd, "job.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return log_errno(-errno, "can't create %s/job.tmp", ckpt_dir);
	if (write_full(fd, out, n) != n || fsync(fd) < 0 || renameat(dirfd, "job.tmp", dirfd, "job") < 0)
		return log_errno(-errno, "can't write %s/job", ckpt_dir);
	return 0;
}
