#define LOG_PREFIX "crlaunch: "
/*
 * The MANIFEST of an epoch (doc/epochs.md): "key value" lines, values
 * escaped, closed by "end HASH", the XXH64 of every byte before that line.
 * A manifest that does not end so, or whose hash differs, is not one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "launch.h"
#include "log.h"
#include "util.h"

#define MANIFEST_MAGIC "crlaunch-manifest 1"

const char *const stream_names[NR_STREAMS] = { "stdin", "stdout", "stderr" };

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = (b->cap + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	b->len += n;
}

static void sb_word(struct sbuf *b, const char *key, const char *value)
{
	_cleanup_free_ char *e = str_escape(value);

	sb_printf(b, "%s %s\n", key, e);
}

char *manifest_format(const struct manifest *m, size_t *len)
{
	struct sbuf b = { xmalloc(256), 0, 256 };

	sb_printf(&b, MANIFEST_MAGIC "\n");
	sb_printf(&b, "epoch %u\ntime %" PRIu64 "\n", m->epoch, m->time_ns);
	sb_word(&b, "cwd", m->id.cwd);
	sb_printf(&b, "argc %d\n", m->id.argc);
	for (int i = 0; i < m->id.argc; i++)
		sb_word(&b, "arg", m->id.argv[i]);
	sb_printf(&b, "nodes %d\ninit-pid %d\n", m->nr_nodes, (int)m->init_pid);
	for (int i = 0; i < NR_STREAMS; i++) {
		if (m->external[i]) {
			_cleanup_free_ char *e = str_escape(m->external[i]);
			sb_printf(&b, "external %s %s\n", stream_names[i], e);
		}
		if (i != STREAM_STDIN)
			sb_printf(&b, "stream %s %" PRIu64 "\n", stream_names[i], m->stream_bytes[i]);
	}
	sb_printf(&b, "processes %d\nbytes %" PRIu64 "\nfrozen-ns %" PRIu64 "\ntotal-ns %" PRIu64 "\n",
		  m->processes, m->bytes, m->frozen_ns, m->total_ns);
	for (int i = 0; i < m->nr_files; i++) {
		_cleanup_free_ char *e = str_escape(m->files[i].name);
		sb_printf(&b, "file %s %" PRIu64 " %016" PRIx64 "\n", e, m->files[i].size, m->files[i].hash);
	}
	sb_printf(&b, "end %016" PRIx64 "\n", xxh64(b.p, b.len, 0));
	*len = b.len;
	return b.p;
}

static int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-' || *s == ' ')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, base);
	return errno || *end ? -1 : 0;
}

static int parse_int(const char *s, int max, int *out)
{
	uint64_t v;

	if (parse_u64(s, 10, &v) < 0 || v > (uint64_t)max)
		return -1;
	*out = (int)v;
	return 0;
}

static int stream_index(const char *name)
{
	for (int i = 0; i < NR_STREAMS; i++)
		if (!strcmp(name, stream_names[i]))
			return i;
	return -1;
}

/* One "key value" line; returns 0, or -1 with err filled. */
static int parse_line(struct manifest *m, char *key, char *val, int *nargs)
{
	char *sp;
	int i;

	if (!strcmp(key, "epoch")) {
		uint64_t v;
		if (parse_u64(val, 10, &v) < 0 || v > 999999)
			return -1;
		m->epoch = v;
	} else if (!strcmp(key, "time")) {
		return parse_u64(val, 10, &m->time_ns);
	} else if (!strcmp(key, "cwd")) {
		free(m->id.cwd);
		return (m->id.cwd = str_unescape(val)) ? 0 : -1;
	} else if (!strcmp(key, "argc")) {
		if (m->id.argv || parse_int(val, 1 << 16, &m->id.argc) < 0)
			return -1;
		m->id.argv = xzalloc((m->id.argc + 1) * sizeof(char *));
	} else if (!strcmp(key, "arg")) {
		if (!m->id.argv || *nargs >= m->id.argc)
			return -1;
		return (m->id.argv[(*nargs)++] = str_unescape(val)) ? 0 : -1;
	} else if (!strcmp(key, "nodes")) {
		return parse_int(val, 1 << 20, &m->nr_nodes);
	} else if (!strcmp(key, "init-pid")) {
		return parse_int(val, 1 << 22, &i) < 0 ? -1 : (m->init_pid = i, 0);
	} else if (!strcmp(key, "external") || !strcmp(key, "stream")) {
		if (!(sp = strchr(val, ' ')))
			return -1;
		*sp++ = '\0';
		if ((i = stream_index(val)) < 0)
			return -1;
		if (key[0] == 's')
			return parse_u64(sp, 10, &m->stream_bytes[i]);
		free(m->external[i]);
		return (m->external[i] = str_unescape(sp)) ? 0 : -1;
	} else if (!strcmp(key, "processes")) {
		return parse_int(val, 1 << 22, &m->processes);
	} else if (!strcmp(key, "bytes")) {
		return parse_u64(val, 10, &m->bytes);
	} else if (!strcmp(key, "frozen-ns")) {
		return parse_u64(val, 10, &m->frozen_ns);
	} else if (!strcmp(key, "total-ns")) {
		return parse_u64(val, 10, &m->total_ns);
	} else if (!strcmp(key, "file")) {
		char *sz = strchr(val, ' '), *h = sz ? strchr(sz + 1, ' ') : NULL;
		struct file_sum f;

		if (!h)
			return -1;
		*sz++ = '\0';
		*h++ = '\0';
		if (parse_u64(sz, 10, &f.size) < 0 || strlen(h) != 16 || parse_u64(h, 16, &f.hash) < 0)
			return -1;
		if (!(f.name = str_unescape(val)))
			return -1;
		/* Relative, inside the epoch: a manifest must not name other files. */
		if (f.name[0] == '/' || strstr(f.name, "..")) {
			free(f.name);
			return -1;
		}
		m->files = xrealloc(m->files, (m->nr_files + 1) * sizeof(*m->files));
		m->files[m->nr_files++] = f;
	}
	/* Unknown keys are for newer readers. */
	return 0;
}

int manifest_parse(const char *text, size_t len, struct manifest *m, char *err, size_t errlen)
{
	const char *endl;
	_cleanup_free_ char *copy = NULL;
	char *line, *save = NULL;
	uint64_t want;
	size_t body;
	int nargs = 0, lineno = 0;

	*m = (struct manifest){ 0 };
	/* The last line: "end HASH\n", over everything before it. */
	if (len < 21 || text[len - 1] != '\n' || memchr(text, '\0', len)) {
		snprintf(err, errlen, "truncated");
		return -EBADMSG;
	}
	endl = text + len - 21;	/* "end " + 16 hex digits + "\n" */
	if (strncmp(endl, "end ", 4) || (endl != text && endl[-1] != '\n')) {
		snprintf(err, errlen, "no end line (truncated?)");
		return -EBADMSG;
	}
	body = endl - text;
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len - 1] = '\0';
	if (parse_u64(copy + body + 4, 16, &want) < 0 || want != xxh64(text, body, 0)) {
		snprintf(err, errlen, "checksum of the manifest does not match");
		return -EBADMSG;
	}
	copy[body] = '\0';
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');

		lineno++;
		if (lineno == 1) {
			if (strcmp(line, MANIFEST_MAGIC))
				goto bad;
			continue;
		}
		if (!sp)
			goto bad;
		*sp = '\0';
		if (parse_line(m, line, sp + 1, &nargs) < 0)
			goto bad;
	}
	if (lineno == 0 || !m->id.cwd || !m->id.argv || nargs != m->id.argc) {
		snprintf(err, errlen, "incomplete (no job identity)");
		manifest_free(m);
		return -EBADMSG;
	}
	return 0;
bad:
	snprintf(err, errlen, "line %d is not valid", lineno);
	manifest_free(m);
	return -EBADMSG;
}

void manifest_free(struct manifest *m)
{
	ident_free(&m->id);
	for (int i = 0; i < NR_STREAMS; i++)
		free(m->external[i]);
	for (int i = 0; i < m->nr_files; i++)
		free(m->files[i].name);
	free(m->files);
	*m = (struct manifest){ 0 };
}
