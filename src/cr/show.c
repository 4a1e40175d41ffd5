#define LOG_PREFIX "show: "
/*
 * Image decoder. Messages are printed by walking their protobuf-c
 * descriptors, never by knowing the message types, so images written by a
 * newer crtool (more kinds, more fields) still show. Input is untrusted:
 * image.c checks the framing and protobuf-c the payload; here every
 * pointer is checked before use and strings are escaped byte by byte.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "log.h"
#include "show.h"
#include "util.h"

/* Deeper than any image message; stops a hostile recursive schema. */
#define MAX_DEPTH 32
#define BYTES_SHOWN 32

struct printer {
	FILE *f;
	bool json;
	bool first_file;	/* JSON: no comma before the first key */
};

/* ---- scalars ---- */

/* Fields that hold addresses or bit masks: text mode adds their hex value. */
static bool is_hex_field(const char *name)
{
	static const char *const exact[] = { "start", "end", "vaddr", "ip", "sp", "handler",
					     "restorer", "ptr", "brk", "robust_list", "flags",
					     "mask", "sigmask" };
	static const char *const prefix[] = { "start_", "end_", "arg_", "env_", "cap_" };
	static const char *const suffix[] = { "_base", "_addr" };
	size_t i, len = strlen(name);

	for (i = 0; i < ARRAY_SIZE(exact); i++)
		if (!strcmp(name, exact[i]))
			return true;
	for (i = 0; i < ARRAY_SIZE(prefix); i++)
		if (!strncmp(name, prefix[i], strlen(prefix[i])))
			return true;
	for (i = 0; i < ARRAY_SIZE(suffix); i++)
		if (len > strlen(suffix[i]) && !strcmp(name + len - strlen(suffix[i]), suffix[i]))
			return true;
	return false;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return len;
}

static void put_escape(struct printer *p, unsigned char c)
{
	static const char from[] = "\"\\\n\r\t", to[] = "\"\\nrt";
	const char *e = c ? strchr(from, c) : NULL;

	if (e)
		fprintf(p->f, "\\%c", to[e - from]);
	else if (p->json)
		fprintf(p->f, "\\u%04x", c);
	else
		fprintf(p->f, "\\x%02x", c);
}

/*
 * A quoted string: valid UTF-8 as is, control characters escaped, invalid
 * bytes as \xHH (text) or U+FFFD (JSON has no way to carry a raw byte).
 */
static void print_string(struct printer *p, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('"', p->f);
	while (n) {
		size_t len = utf8_len(s, n);

		if (len > 1 || (len == 1 && *s >= 0x20 && *s != 0x7f && *s != '"' && *s != '\\'))
			fwrite(s, 1, len, p->f);
		else if (len == 1)
			put_escape(p, *s);
		else if (p->json)
			fputs("\\ufffd", p->f);
		else
			put_escape(p, *s);
		len = len ? len : 1;
		s += len;
		n -= len;
	}
	fputc('"', p->f);
}

static void print_bytes(struct printer *p, const ProtobufCBinaryData *b)
{
	size_t i, shown = min_t(size_t, b->len, BYTES_SHOWN);

	if (p->json)
		fprintf(p->f, "{\"len\": %zu, \"head\": \"", b->len);
	else
		fprintf(p->f, "%zu bytes%s", b->len, shown ? ": " : "");
	for (i = 0; i < shown && b->data; i++)
		fprintf(p->f, "%02x", b->data[i]);
	fputs(p->json ? "\"}" : shown < b->len ? "..." : "", p->f);
}

static void print_enum(struct printer *p, const ProtobufCFieldDescriptor *fd, int value)
{
	const ProtobufCEnumValue *ev = NULL;

	if (fd->descriptor)
		ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, value);
	if (ev && ev->name)
		p->json ? fprintf(p->f, "\"%s\"", ev->name) : fprintf(p->f, "%s", ev->name);
	else
		fprintf(p->f, p->json ? "%d" : "%d (unknown)", value);
}

static void print_double(struct printer *p, double v)
{
	if (p->json && !isfinite(v))
		fputs("null", p->f);
	else
		fprintf(p->f, "%.17g", v);
}

static void print_integer(struct printer *p, const ProtobufCFieldDescriptor *fd, bool is_signed,
			  uint64_t v)
{
	if (is_signed)
		fprintf(p->f, "%" PRId64, (int64_t)v);
	else
		fprintf(p->f, "%" PRIu64, v);
	if (!p->json && v && is_hex_field(fd->name))
		fprintf(p->f, " (%#" PRIx64 ")", v);
}

static void print_message(struct printer *p, const ProtobufCMessage *m, int depth);

static void print_integer_at(struct printer *p, const ProtobufCFieldDescriptor *fd, const void *v)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		print_integer(p, fd, true, (int64_t)*(const int32_t *)v);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		print_integer(p, fd, false, *(const uint32_t *)v);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		print_integer(p, fd, true, *(const int64_t *)v);
		break;
	default:
		print_integer(p, fd, false, *(const uint64_t *)v);
		break;
	}
}

/* One value of field fd stored at v (an element, for repeated fields). */
static void print_value(struct printer *p, const ProtobufCFieldDescriptor *fd, const void *v,
			int depth)
{
	char *const *str = v;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_FLOAT:
		print_double(p, *(const float *)v);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		print_double(p, *(const double *)v);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)v ? "true" : "false", p->f);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		print_enum(p, fd, *(const int *)v);
		break;
	case PROTOBUF_C_TYPE_STRING:
		print_string(p, *str ? *str : "");
		break;
	case PROTOBUF_C_TYPE_BYTES:
		print_bytes(p, v);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		print_message(p, *(ProtobufCMessage *const *)v, depth);
		break;
	default:
		print_integer_at(p, fd, v);
		break;
	}
}

/* ---- fields ---- */

static size_t elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

/* Whether a non-repeated field holds a value (proto2 optional may not). */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
	const char *base = (const char *)m;

	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
	if (fd->type == PROTOBUF_C_TYPE_MESSAGE || fd->type == PROTOBUF_C_TYPE_STRING)
		return *(void *const *)(base + fd->offset) != NULL;
	if (fd->label == PROTOBUF_C_LABEL_OPTIONAL)
		return *(const protobuf_c_boolean *)(base + fd->quantifier_offset);
	return true;
}

static void indent(struct printer *p, int depth)
{
	fprintf(p->f, "%*s", 2 * depth, "");
}

static void text_repeated(struct printer *p, const ProtobufCFieldDescriptor *fd, const char *arr,
			  size_t n, int depth)
{
	size_t i, size = elem_size(fd->type);

	if (fd->type != PROTOBUF_C_TYPE_MESSAGE || !n) {
		indent(p, depth);
		fprintf(p->f, "%s: [", fd->name);
		for (i = 0; i < n; i++) {
			fputs(i ? ", " : "", p->f);
			print_value(p, fd, arr + i * size, depth);
		}
		fputs("]\n", p->f);
		return;
	}
	for (i = 0; i < n; i++) {
		indent(p, depth);
		fprintf(p->f, "%s[%zu] ", fd->name, i);
		print_value(p, fd, arr + i * size, depth);
		fputc('\n', p->f);
	}
}

static void json_repeated(struct printer *p, const ProtobufCFieldDescriptor *fd, const char *arr,
			  size_t n, int depth)
{
	size_t i, size = elem_size(fd->type);

	fputc('[', p->f);
	for (i = 0; i < n; i++) {
		fputs(i ? ", " : "", p->f);
		print_value(p, fd, arr + i * size, depth);
	}
	fputc(']', p->f);
}

/* Print field fd of m; returns whether anything was printed (for JSON commas). */
static bool print_field(struct printer *p, const ProtobufCMessage *m,
			const ProtobufCFieldDescriptor *fd, bool first, int depth)
{
	const char *base = (const char *)m;
	const void *v = base + fd->offset;

	if (fd->label != PROTOBUF_C_LABEL_REPEATED && !field_present(m, fd))
		return false;
	if (p->json)
		fprintf(p->f, "%s\"%s\": ", first ? "" : ", ", fd->name);
	if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)(base + fd->quantifier_offset);
		const char *arr = *(const char *const *)v;

		if (!arr)
			n = 0;
		if (p->json)
			json_repeated(p, fd, arr, n, depth);
		else
			text_repeated(p, fd, arr, n, depth);
		return true;
	}
	if (!p->json) {
		indent(p, depth);
		fprintf(p->f, fd->type == PROTOBUF_C_TYPE_MESSAGE ? "%s " : "%s: ", fd->name);
	}
	print_value(p, fd, v, depth);
	if (!p->json)
		fputc('\n', p->f);
	return true;
}

/*
 * A message: JSON {"field": value, ...} on one line; text "{", one field
 * per line indented one level deeper than depth, then "}".
 */
static void print_message(struct printer *p, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m ? m->descriptor : NULL;
	bool first = true;
	unsigned i;

	if (!d || depth > MAX_DEPTH) {
		fputs(p->json ? "null" : "{ ? }", p->f);
		return;
	}
	fputs(p->json ? "{" : "{\n", p->f);
	for (i = 0; i < d->n_fields; i++)
		if (print_field(p, m, &d->fields[i], first, depth + 1))
			first = false;
	if (!p->json && m->n_unknown_fields) {
		indent(p, depth + 1);
		fprintf(p->f, "(%u fields unknown to this crtool)\n", m->n_unknown_fields);
	}
	if (!p->json)
		indent(p, depth);
	fputc('}', p->f);
}

/* ---- files ---- */

static void begin_file(struct printer *p, const char *name)
{
	if (p->json) {
		fputs(p->first_file ? "\n" : ",\n", p->f);
		print_string(p, name);
		fputs(": ", p->f);
	} else {
		fprintf(p->f, "%s:\n", name);
	}
	p->first_file = false;
}

static void print_record(struct printer *p, int idx, const ProtobufCMessage *m)
{
	if (p->json) {
		fputs(idx ? ",\n  " : "\n  ", p->f);
		print_message(p, m, 0);
		return;
	}
	fprintf(p->f, "  #%d %s ", idx, m->descriptor->name);
	print_message(p, m, 1);
	fputc('\n', p->f);
}

/* Whether name is what pattern ("core-%d.img") makes of some pid; sets *pid. */
static bool name_matches(const char *pattern, const char *name, int *pid)
{
	const char *pct = strstr(pattern, "%d");
	char again[NAME_MAX + 1];
	long v;

	*pid = 0;
	if (!pct)
		return !strcmp(pattern, name);
	if (strncmp(name, pattern, pct - pattern) || !isdigit((unsigned char)name[pct - pattern]))
		return false;
	errno = 0;
	v = strtol(name + (pct - pattern), NULL, 10);
	if (errno || v > INT_MAX)
		return false;
	*pid = v;
	/* Round trip: rejects "core-007.img" and trailing junk alike. */
	snprintf(again, sizeof(again), pattern, *pid);
	return !strcmp(again, name);
}

static bool find_kind(const char *name, enum img_kind *kind, int *pid)
{
	int k;

	for (k = 1; k < IMG_KIND_MAX; k++) {
		if (img_kind_valid(k) && name_matches(img_kinds[k].name, name, pid)) {
			*kind = k;
			return true;
		}
	}
	return false;
}

static int show_raw(struct printer *p, const char *name, const struct stat *st, const char *what)
{
	begin_file(p, name);
	if (p->json)
		fprintf(p->f, "{\"bytes\": %llu}", (unsigned long long)st->st_size);
	else
		fprintf(p->f, "  raw %s: %llu bytes\n", what, (unsigned long long)st->st_size);
	return 0;
}

static int show_pages(struct printer *p, const char *name, const struct stat *st)
{
	unsigned long long size = st->st_size, pages = size / PAGE_SIZE;

	begin_file(p, name);
	if (p->json)
		fprintf(p->f, "{\"bytes\": %llu, \"pages\": %llu}", size, pages);
	else if (size % PAGE_SIZE)
		fprintf(p->f, "  raw page data: %llu bytes (%llu pages and %llu bytes)\n", size,
			pages, size % PAGE_SIZE);
	else
		fprintf(p->f, "  raw page data: %llu bytes (%llu pages)\n", size, pages);
	return 0;
}

/* Print every record of an open image; returns 0 or -errno (logged by image.c). */
static int show_records(struct printer *p, struct img *img)
{
	const struct img_kind_desc *k = &img_kinds[img->kind];
	ProtobufCMessage *msg;
	int idx, r;

	for (idx = 0;; idx++) {
		const ProtobufCMessageDescriptor *desc = idx == 0 && k->head_desc ? k->head_desc : k->desc;

		r = img_read_msg(img, desc, &msg);
		if (r <= 0)
			break;
		print_record(p, idx, msg);
		img_free_msg(msg);
	}
	if (p->json)
		fputs(idx ? "\n]" : "]", p->f);
	else if (r < 0)
		fprintf(p->f, "  decoding stopped after %d records: %s\n", idx, strerror(-r));
	return r;
}

static int show_image(struct printer *p, int dfd, const char *dir, const char *name)
{
	enum img_kind kind;
	struct stat st;
	struct img *img;
	int pid, r;

	if (fstatat(dfd, name, &st, 0) < 0)
		return log_errno(-errno, "can't stat %s/%s", dir, name);
	if (!S_ISREG(st.st_mode)) {
		pr_err("%s/%s is not a regular file\n", dir, name);
		return -EINVAL;
	}
	if (!strncmp(name, "pages-", 6))
		return show_pages(p, name, &st);
	if (!strncmp(name, "ghost-", 6) || !strncmp(name, "mnt-", 4))
		return show_raw(p, name, &st, "file data");
	if (!strncmp(name, "ipc-shm-", 8))
		return show_raw(p, name, &st, "SysV shared memory");
	if (!find_kind(name, &kind, &pid)) {
		pr_warn("%s/%s: not an image kind this crtool knows, skipped\n", dir, name);
		return 0;
	}
	img = img_open_read(dfd, dir, kind, pid);
	if (!img)
		return -EBADMSG;
	begin_file(p, name);
	if (p->json)
		fputc('[', p->f);
	r = show_records(p, img);
	img_abort(img);
	return r;
}

static int is_img_name(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return len > 4 && !strcmp(d->d_name + len - 4, ".img");
}

/* Byte order, not the locale's: the same listing everywhere. */
static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int show_cmd(const char *dir, bool json)
{
	struct printer p = { .f = stdout, .json = json, .first_file = true };
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent **names;
	int i, n, failed = 0;

	if (dfd < 0) {
		pr_perror("can't open image directory %s", dir);
		return 1;
	}
	n = scandirat(dfd, ".", &names, is_img_name, cmp_names);
	if (n < 0) {
		pr_perror("can't list image directory %s", dir);
		return 1;
	}
	if (json)
		fputc('{', p.f);
	for (i = 0; i < n; i++) {
		if (show_image(&p, dfd, dir, names[i]->d_name) < 0)
			failed++;
		free(names[i]);
		/* Keep stdout in step with the errors image.c writes to stderr. */
		fflush(p.f);
	}
	free(names);
	if (json)
		fputs(n ? "\n}\n" : "}\n", p.f);
	if (fflush(p.f) == EOF || ferror(p.f)) {
		pr_perror("can't write to stdout");
		return 1;
	}
	return failed ? 1 : 0;
}
