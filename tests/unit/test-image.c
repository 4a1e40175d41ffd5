/*
 * Image layer (src/include/image.h): round trips of every image kind, then
 * every corruption we can enumerate, through both the file reader and
 * img_parse_buffer(). Messages are filled by walking their protobuf-c
 * descriptors, so a field added to a .proto is covered without touching
 * this file.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "util.h"

#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#include "tap.h"

#define TEST_PID 4242
#define NR_RECS 3
#define HDR_SIZE 8u	/* magic + kind */
#define REC_HDR_SIZE 8u /* length + crc32c */

static int dirfd_ = -1;
static char dirpath[64];
static int logfd = -1;

/* ---- helpers ------------------------------------------------------------- */

static void *xcalloc_(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		bail_out("out of memory");
	return p;
}

static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t type_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	default: return 4;	/* 32-bit ints, float, bool, enum */
	}
}

/* Optional fields other than strings and messages carry a has_ flag. */
static bool has_flag(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
	       f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static ProtobufCMessage *fill_msg(const ProtobufCMessageDescriptor *d, uint64_t *seed, int depth, bool all);

/* One value of field f at p: varied widths, negative ints, spaces in strings, NULs in bytes. */
static void fill_value(const ProtobufCFieldDescriptor *f, void *p, uint64_t *seed, int depth, bool all)
{
	uint64_t x = next_rand(seed);

	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		if (asprintf((char **)p, "%s %" PRIu64 " (deleted) \xc3\xa9", f->name, x % 100000) < 0)
			bail_out("out of memory");
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;

		b->len = x % 48 + 1;
		b->data = xcalloc_(b->len, 1);
		for (size_t i = 0; i < b->len; i++)
			b->data[i] = i % 3 ? (uint8_t)next_rand(seed) : 0;
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)p = fill_msg(f->descriptor, seed, depth + 1, all);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;
		*(int *)p = e->values[x % e->n_values].value;
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = x & 1;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)p = (float)(x % 1000) / 8;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = (double)(x % 100000) / 16;
		break;
	default:
		/* Small values too: the varint encoder has a path per length. */
		if (x & 1)
			x >>= (x >> 1) % 64;
		memcpy(p, &x, type_size(f->type));
		break;
	}
}

/* all: set every optional field and 1-3 elements of each repeated one; else none. */
static ProtobufCMessage *fill_msg(const ProtobufCMessageDescriptor *d, uint64_t *seed, int depth, bool all)
{
	ProtobufCMessage *m = xcalloc_(1, d->sizeof_message);

	if (depth > 8)
		bail_out("%s: message nesting too deep for the filler", d->name);
	d->message_init(m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *member = (char *)m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = all ? 1 + next_rand(seed) % 3 : 0;
			char *arr = n ? xcalloc_(n, type_size(f->type)) : NULL;

			for (size_t k = 0; k < n; k++)
				fill_value(f, arr + k * type_size(f->type), seed, depth, all);
			*(void **)member = arr;
			*(size_t *)((char *)m + f->quantifier_offset) = n;
		} else if (f->label == PROTOBUF_C_LABEL_REQUIRED || all) {
			fill_value(f, member, seed, depth, all);
			if (has_flag(f))
				*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
		}
	}
	return m;
}

static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *where, size_t wl);

static bool value_equal(const ProtobufCFieldDescriptor *f, const void *a, const void *b, char *where,
			size_t wl)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *x = *(char *const *)a, *y = *(char *const *)b;
		return (!x && !y) || (x && y && !strcmp(x, y));
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *x = a, *y = b;
		return x->len == y->len && (!x->len || !memcmp(x->data, y->data, x->len));
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *x = *(ProtobufCMessage *const *)a, *y = *(ProtobufCMessage *const *)b;
		return (!x && !y) || (x && y && msg_equal(x, y, where, wl));
	}
	default:
		return !memcmp(a, b, type_size(f->type));
	}
}

static bool field_equal(const ProtobufCFieldDescriptor *f, const char *ma, const char *mb, char *where,
			size_t wl)
{
	const char *a = ma + f->offset, *b = mb + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t na = *(const size_t *)(ma + f->quantifier_offset);
		size_t nb = *(const size_t *)(mb + f->quantifier_offset);
		const char *aa = *(char *const *)a, *ab = *(char *const *)b;

		if (na != nb)
			return false;
		for (size_t k = 0; k < na; k++) {
			size_t l = strlen(where);

			snprintf(where + l, wl - l, "[%zu]", k);
			if (!value_equal(f, aa + k * type_size(f->type), ab + k * type_size(f->type), where, wl))
				return false;
			where[l] = '\0';
		}
		return true;
	}
	if (has_flag(f)) {
		protobuf_c_boolean ha = *(const protobuf_c_boolean *)(ma + f->quantifier_offset);
		protobuf_c_boolean hb = *(const protobuf_c_boolean *)(mb + f->quantifier_offset);

		if (ha != hb)
			return false;
		if (!ha)
			return true;
	}
	return value_equal(f, a, b, where, wl);
}

/* Field by field; on a difference, where names it ("task_core_entry.threads[1].regs.ip"). */
static bool msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b, char *where, size_t wl)
{
	const ProtobufCMessageDescriptor *d = a->descriptor;
	size_t l0 = strlen(where);

	if (b->descriptor != d) {
		snprintf(where + l0, wl - l0, "%s(type)", l0 ? "." : "");
		return false;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (l0)
			snprintf(where + l0, wl - l0, ".%s", f->name);
		else
			snprintf(where, wl, "%s.%s", d->short_name, f->name);
		if (!field_equal(f, (const char *)a, (const char *)b, where, wl))
			return false;
		where[l0] = '\0';
	}
	return true;
}

static bool same_msg(const ProtobufCMessage *a, const ProtobufCMessage *b, char *where, size_t wl)
{
	where[0] = '\0';
	return msg_equal(a, b, where, wl);
}

/* ---- engine log capture -------------------------------------------------- */

static void log_reset(void)
{
	if (ftruncate(logfd, 0) < 0 || lseek(logfd, 0, SEEK_SET) < 0)
		bail_out("can't reset the log memfd: %s", strerror(errno));
}

/* What the engine logged since log_reset(), NUL-terminated (static buffer). */
static const char *log_text(void)
{
	static char buf[8192];
	ssize_t n = pread(logfd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Every logged line is an image-module error that names what it was reading. */
static bool log_names(const char *what)
{
	const char *t = log_text();

	if (!*t)
		return false;
	for (const char *l = t; *l; l = strchr(l, '\n') + 1) {
		const char *nl = strchr(l, '\n');

		if (!nl || strncmp(l, "Error: image: ", 14))
			return false;
		if (!memmem(l, nl - l, what, strlen(what)))
			return false;
	}
	return true;
}

/* ---- image files --------------------------------------------------------- */

static void img_filename(enum img_kind kind, char *name, size_t len)
{
	snprintf(name, len, img_kinds[kind].name, TEST_PID);
}

/* The file name, for test descriptions: "core-4242.img". */
static const char *kname(enum img_kind kind)
{
	static char names[IMG_KIND_MAX][64];

	img_filename(kind, names[kind], sizeof(names[kind]));
	return names[kind];
}

static const ProtobufCMessageDescriptor *rec_desc(enum img_kind kind, int idx)
{
	return idx == 0 && img_kinds[kind].head_desc ? img_kinds[kind].head_desc : img_kinds[kind].desc;
}

static void put_file(enum img_kind kind, const uint8_t *buf, size_t len)
{
	char name[64];
	int fd;

	img_filename(kind, name, sizeof(name));
	fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		bail_out("can't write %s/%s: %s", dirpath, name, strerror(errno));
}

static uint8_t *get_file(enum img_kind kind, size_t *len)
{
	char name[64];
	struct stat st;
	uint8_t *buf;
	int fd;

	img_filename(kind, name, sizeof(name));
	fd = openat(dirfd_, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		bail_out("can't open %s/%s: %s", dirpath, name, strerror(errno));
	buf = xcalloc_(st.st_size, 1);
	if (read(fd, buf, st.st_size) != st.st_size)
		bail_out("can't read %s/%s: %s", dirpath, name, strerror(errno));
	close(fd);
	*len = st.st_size;
	return buf;
}

struct outcome {
	bool opened;
	int good;		/* records read and equal to what was written */
	int ret;		/* the last img_read_msg() result */
	bool mismatch;		/* a record read back differently (a partial/garbled success) */
	char where[256];
};

/* Read the kind's file to its end or first error, comparing with recs[]. */
static struct outcome read_file_img(enum img_kind kind, ProtobufCMessage **recs, int nr)
{
	struct outcome o = { .ret = 0 };
	struct img *img = img_open_read(dirfd_, dirpath, kind, TEST_PID);

	if (!img)
		return o;
	o.opened = true;
	for (int i = 0;; i++) {
		ProtobufCMessage *m = NULL;

		o.ret = img_read_msg(img, rec_desc(kind, i), &m);
		if (o.ret <= 0)
			break;
		if (i >= nr || !same_msg(recs[i], m, o.where, sizeof(o.where)))
			o.mismatch = true;
		else
			o.good++;
		img_free_msg(m);
	}
	img_abort(img);
	return o;
}

struct parse_ctx {
	ProtobufCMessage **recs;
	int nr, good, fail_at;
	bool mismatch;
	char where[256];
};

static int parse_cb(enum img_kind kind, int idx, ProtobufCMessage *msg, void *arg)
{
	struct parse_ctx *c = arg;

	if (idx == c->fail_at)
		return -EINTR;
	if (idx >= c->nr || idx != c->good || !same_msg(c->recs[idx], msg, c->where, sizeof(c->where)))
		c->mismatch = true;
	else
		c->good++;
	return 0;
}

static int parse(const uint8_t *buf, size_t len, ProtobufCMessage **recs, int nr, struct parse_ctx *c,
		 enum img_kind *kind)
{
	*c = (struct parse_ctx){ .recs = recs, .nr = nr, .fail_at = -1 };
	return img_parse_buffer(buf, len, kind, parse_cb, c);
}

/* Offsets where each record ends: ends[i] is the file length holding records 0..i. */
static void record_ends(const uint8_t *buf, size_t len, size_t *ends, int nr)
{
	size_t off = HDR_SIZE;

	for (int i = 0; i < nr; i++) {
		uint32_t l;

		if (off + REC_HDR_SIZE > len)
			bail_out("record framing: record %d starts at %zu of %zu bytes", i, off, len);
		memcpy(&l, buf + off, 4);
		off += REC_HDR_SIZE + le32toh(l);
		ends[i] = off;
	}
	if (off != len)
		bail_out("record framing: %zu bytes expected, file has %zu", off, len);
}

/* ---- tests --------------------------------------------------------------- */

static void write_recs(enum img_kind kind, ProtobufCMessage **recs, int nr)
{
	struct img *img = img_open_write(dirfd_, dirpath, kind, TEST_PID);
	int ret = 0;

	if (!img)
		bail_out("img_open_write(%s) failed", kname(kind));
	for (int i = 0; i < nr && !ret; i++)
		ret = img_write_msg(img, recs[i]);
	is_int(ret, 0, "%s: img_write_msg of %d records", kname(kind), nr);
	is_int(img_close(img), 0, "%s: img_close", kname(kind));
}

static void test_roundtrip(enum img_kind kind, ProtobufCMessage **recs, const uint8_t *buf, size_t len)
{
	const char *name = kname(kind);
	struct outcome o = read_file_img(kind, recs, NR_RECS);
	enum img_kind k = 0;
	struct parse_ctx c;
	ProtobufCMessage *one = NULL;
	char where[256];

	ok(o.opened && o.good == NR_RECS && o.ret == 0 && !o.mismatch,
	   "%s: every field of %d records reads back, then a clean end", name, NR_RECS);
	if (o.mismatch)
		diag("    first difference: %s", o.where);
	is_int(parse(buf, len, recs, NR_RECS, &c, &k), NR_RECS, "%s: img_parse_buffer finds %d records",
	       name, NR_RECS);
	ok(c.good == NR_RECS && !c.mismatch && k == kind, "%s: img_parse_buffer hands over every field", name);
	c.fail_at = 1;
	c.good = 0;
	is_int(img_parse_buffer(buf, len, NULL, parse_cb, &c), -EINTR,
	       "%s: a callback error stops img_parse_buffer and is returned", name);
	is_int(img_read_one(dirfd_, dirpath, kind, TEST_PID, rec_desc(kind, 0), &one), 0, "%s: img_read_one",
	       name);
	ok(one && same_msg(recs[0], one, where, sizeof(where)), "%s: img_read_one returns the first record",
	   name);
	img_free_msg(one);
}

/* A cut at every offset: whole records before it are read, then EOF or an error. */
static void test_truncation(enum img_kind kind, ProtobufCMessage **recs, const uint8_t *buf, size_t len)
{
	size_t ends[NR_RECS];
	int bad_file = -1, bad_parse = -1, bad_log = -1;
	char name[64];

	img_filename(kind, name, sizeof(name));
	record_ends(buf, len, ends, NR_RECS);
	for (size_t l = 0; l < len; l++) {
		int complete = 0;
		bool boundary = l == HDR_SIZE;
		struct parse_ctx c;
		struct outcome o;
		int r;

		for (int i = 0; i < NR_RECS; i++) {
			complete += ends[i] <= l;
			boundary |= ends[i] == l;
		}
		put_file(kind, buf, l);
		log_reset();
		o = read_file_img(kind, recs, NR_RECS);
		/* A cut between records is invisible to the format: see the summary line. */
		if (l < HDR_SIZE ? o.opened
				 : (!o.opened || o.mismatch || o.good != complete || (boundary ? o.ret != 0 : o.ret >= 0)))
			bad_file = bad_file < 0 ? (int)l : bad_file;
		if ((l < HDR_SIZE || !boundary) && !log_names(name))
			bad_log = bad_log < 0 ? (int)l : bad_log;
		r = parse(buf, l, recs, NR_RECS, &c, NULL);
		if (c.mismatch || c.good != complete || (l >= HDR_SIZE && boundary ? r != complete : r >= 0))
			bad_parse = bad_parse < 0 ? (int)l : bad_parse;
	}
	ok(bad_file < 0, "%s: file cut at each of %zu offsets: whole records, then EOF or an error", name, len);
	if (bad_file >= 0)
		diag("    first wrong outcome at offset %d", bad_file);
	ok(bad_log < 0, "%s: each truncation error is logged, naming the file", name);
	if (bad_log >= 0)
		diag("    at offset %d the log was: %s", bad_log, log_text());
	ok(bad_parse < 0, "%s: img_parse_buffer on each cut buffer", name);
	if (bad_parse >= 0)
		diag("    first wrong outcome at offset %d", bad_parse);
}

static int record_of(const size_t *ends, size_t off)
{
	int r = 0;

	while (ends[r] <= off)
		r++;
	return r;
}

/*
 * Corrupt one byte at every offset (all bits), and one bit of every record
 * byte: the records before it still read, the corrupted one never does.
 */
static void test_flips(enum img_kind kind, ProtobufCMessage **recs, const uint8_t *buf, size_t len)
{
	_cleanup_free_ uint8_t *bad = xcalloc_(len, 1);
	size_t ends[NR_RECS];
	int bad_file = -1, bad_parse = -1, bad_bit = -1;
	char name[64];

	img_filename(kind, name, sizeof(name));
	record_ends(buf, len, ends, NR_RECS);
	for (size_t p = 0; p < len; p++) {
		int r = p < HDR_SIZE ? 0 : record_of(ends, p);
		struct parse_ctx c;
		struct outcome o;

		memcpy(bad, buf, len);
		bad[p] ^= 0xff;
		put_file(kind, bad, len);
		o = read_file_img(kind, recs, NR_RECS);
		if (p < HDR_SIZE ? o.opened : (!o.opened || o.mismatch || o.good != r || o.ret >= 0))
			bad_file = bad_file < 0 ? (int)p : bad_file;
		if (parse(bad, len, recs, NR_RECS, &c, NULL) >= 0 || c.mismatch || c.good != r)
			bad_parse = bad_parse < 0 ? (int)p : bad_parse;
		for (int bit = 0; p >= HDR_SIZE && bit < 8; bit++) {
			memcpy(bad, buf, len);
			bad[p] ^= 1u << bit;
			if (parse(bad, len, recs, NR_RECS, &c, NULL) >= 0 || c.mismatch || c.good != r)
				bad_bit = bad_bit < 0 ? (int)(p * 8 + bit) : bad_bit;
		}
	}
	ok(bad_file < 0, "%s: a corrupt byte at each of %zu offsets is caught by the file reader", name, len);
	if (bad_file >= 0)
		diag("    first miss at offset %d", bad_file);
	ok(bad_parse < 0, "%s: ... and by img_parse_buffer", name);
	if (bad_parse >= 0)
		diag("    first miss at offset %d", bad_parse);
	ok(bad_bit < 0, "%s: each single-bit flip in the records is caught (CRC32C)", name);
	if (bad_bit >= 0)
		diag("    first miss at byte %d bit %d", bad_bit / 8, bad_bit % 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

/* Both readers reject buf: the file one with a logged error naming the file. */
static void expect_rejected(enum img_kind kind, ProtobufCMessage **recs, const uint8_t *buf, size_t len,
			    const char *what)
{
	char name[64];
	struct parse_ctx c;
	struct outcome o;

	img_filename(kind, name, sizeof(name));
	put_file(kind, buf, len);
	log_reset();
	o = read_file_img(kind, recs, NR_RECS);
	ok(!o.opened || (o.ret < 0 && !o.mismatch), "%s: %s: the file reader fails", name, what);
	ok(log_names(name), "%s: %s: the error names the file", name, what);
	if (!log_names(name))
		diag("    log: %s", log_text());
	ok(parse(buf, len, recs, NR_RECS, &c, NULL) < 0 && !c.mismatch, "%s: %s: img_parse_buffer fails",
	   name, what);
}

static void test_bad_headers(enum img_kind kind, ProtobufCMessage **recs, const uint8_t *buf, size_t len)
{
	_cleanup_free_ uint8_t *bad = xcalloc_(len + 4, 1);
	const uint32_t lens[] = { 0xffffffffu, IMG_MAX_RECORD + 1, IMG_MAX_RECORD, len - HDR_SIZE - REC_HDR_SIZE + 1 };
	enum img_kind other = kind == IMG_INVENTORY ? IMG_PSTREE : IMG_INVENTORY;
	const uint32_t kinds[] = { 0, IMG_KIND_MAX, 0xffffffffu };
	char what[64];

	memcpy(bad, buf, len);
	put_le32(bad, IMG_MAGIC ^ 0x100);
	expect_rejected(kind, recs, bad, len, "bad magic");

	/* The header of another kind: the file reader must refuse it under this name. */
	memcpy(bad, buf, len);
	put_le32(bad + 4, other);
	put_file(kind, bad, len);
	ok(!img_open_read(dirfd_, dirpath, kind, TEST_PID), "%s: the header of a %s is refused", kname(kind),
	   kname(other));
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		memcpy(bad, buf, len);
		put_le32(bad + 4, kinds[i]);
		snprintf(what, sizeof(what), "kind %#x", kinds[i]);
		expect_rejected(kind, recs, bad, len, what);
	}
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		memcpy(bad, buf, len);
		put_le32(bad + HDR_SIZE, lens[i]);
		snprintf(what, sizeof(what), "record length %#x", lens[i]);
		expect_rejected(kind, recs, bad, len, what);
	}
	/* Trailing bytes too short for a record header. */
	memcpy(bad, buf, len);
	memset(bad + len, 0, 4);
	expect_rejected(kind, recs, bad, len + 4, "4 trailing bytes");
}

/* Every message of the kind, filled three ways: all fields, required only, all again. */
static void test_kind(enum img_kind kind)
{
	ProtobufCMessage *recs[NR_RECS];
	uint64_t seed = kind * 1000003u;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;

	for (int i = 0; i < NR_RECS; i++)
		recs[i] = fill_msg(rec_desc(kind, i), &seed, 0, i != 1);
	write_recs(kind, recs, NR_RECS);
	buf = get_file(kind, &len);
	test_roundtrip(kind, recs, buf, len);
	test_truncation(kind, recs, buf, len);
	test_flips(kind, recs, buf, len);
	test_bad_headers(kind, recs, buf, len);
	for (int i = 0; i < NR_RECS; i++)
		img_free_msg(recs[i]);
}

/* Hand-built records as the engine writes them, checked by name. */
static void test_pagemap_by_hand(void)
{
	PagemapHead head = PAGEMAP_HEAD__INIT;
	PagemapEntry pe[2] = { PAGEMAP_ENTRY__INIT, PAGEMAP_ENTRY__INIT };
	struct img *img = img_open_write(dirfd_, dirpath, IMG_PAGEMAP, TEST_PID);
	ProtobufCMessage *m = NULL;
	PagemapEntry *e;

	head.page_size = 4096;
	pe[0].vaddr = 0x7f0000000000ull;
	pe[0].nr_pages = 3;
	pe[0].flags = 1;
	pe[0].has_offset = 1;
	pe[0].offset = 0;
	pe[1].vaddr = 0xffffffffff600000ull;
	pe[1].nr_pages = 0xffffffffu;
	pe[1].flags = 6;
	if (!img)
		bail_out("img_open_write(pagemap) failed");
	img_write_msg(img, &head.base);
	img_write_msg(img, &pe[0].base);
	img_write_msg(img, &pe[1].base);
	is_int(img_close(img), 0, "pagemap by hand: written");
	img = img_open_read(dirfd_, dirpath, IMG_PAGEMAP, TEST_PID);
	if (!img)
		bail_out("img_open_read(pagemap) failed");
	is_int(img_read_msg(img, &pagemap_head__descriptor, &m), 1, "pagemap by hand: head read");
	is_int(m ? ((PagemapHead *)m)->page_size : 0, 4096, "pagemap by hand: page_size");
	ok(m && !((PagemapHead *)m)->has_pages_total && !((PagemapHead *)m)->has_pages_id,
	   "pagemap by hand: unset optionals stay unset");
	img_free_msg(m);
	for (int i = 0; i < 2; i++) {
		m = NULL;
		is_int(img_read_msg(img, &pagemap_entry__descriptor, &m), 1, "pagemap by hand: entry %d read", i);
		e = (PagemapEntry *)m;
		ok(e && e->vaddr == pe[i].vaddr && e->nr_pages == pe[i].nr_pages && e->flags == pe[i].flags &&
			   e->has_offset == pe[i].has_offset && e->offset == pe[i].offset,
		   "pagemap by hand: entry %d fields", i);
		img_free_msg(m);
	}
	is_int(img_read_msg(img, &pagemap_entry__descriptor, &m), 0, "pagemap by hand: then end of file");
	img_abort(img);
}

static void test_zero_length_record(void)
{
	uint8_t buf[HDR_SIZE + REC_HDR_SIZE];
	ProtobufCMessage *recs[1] = { NULL };

	/* crc32c of nothing is 0: a well-formed empty record that misses required fields. */
	put_le32(buf, IMG_MAGIC);
	put_le32(buf + 4, IMG_INVENTORY);
	put_le32(buf + 8, 0);
	put_le32(buf + 12, 0);
	expect_rejected(IMG_INVENTORY, recs, buf, sizeof(buf), "empty record without required fields");
}

/* At exit, also after a bail out. */
static void cleanup_dir(void)
{
	for (int k = 1; k < IMG_KIND_MAX; k++) {
		if (!img_kinds[k].name)
			continue;	/* a number kept for another area */
		char name[64];

		img_filename(k, name, sizeof(name));
		unlinkat(dirfd_, name, 0);
	}
	close(dirfd_);
	if (rmdir(dirpath) < 0)
		diag("can't remove %s: %s", dirpath, strerror(errno));
}

int main(void)
{
	tap_init();
	snprintf(dirpath, sizeof(dirpath), "%s/cr-test-image.XXXXXX", getenv("TMPDIR") ?: "/tmp");
	if (!mkdtemp(dirpath))
		bail_out("mkdtemp %s: %s", dirpath, strerror(errno));
	dirfd_ = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	logfd = memfd_create("cr-test-log", MFD_CLOEXEC);
	if (dirfd_ < 0 || logfd < 0)
		bail_out("can't open %s or a memfd: %s", dirpath, strerror(errno));
	cr_log_fd = logfd;
	atexit(cleanup_dir);
	for (int k = 1; k < IMG_KIND_MAX; k++)
		if (img_kinds[k].name)
			test_kind(k);
	test_pagemap_by_hand();
	test_zero_length_record();
	return done_testing();
}
