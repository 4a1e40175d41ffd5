#define LOG_PREFIX "image: "
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "log.h"
#include "util.h"

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "netns.pb-c.h"
#include "sk-unix.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"
#include "ns.pb-c.h"
#include "ipc.pb-c.h"
#include "mnt.pb-c.h"
#include "sk-inet.pb-c.h"

const struct img_kind_desc img_kinds[IMG_KIND_MAX] = {
	[IMG_INVENTORY] = { "inventory.img", false, &inventory_entry__descriptor, NULL },
	[IMG_PSTREE] = { "pstree.img", false, &pstree_entry__descriptor, NULL },
	[IMG_CORE] = { "core-%d.img", true, &task_core_entry__descriptor, NULL },
	[IMG_MM] = { "mm-%d.img", true, &mm_entry__descriptor, NULL },
	[IMG_PAGEMAP] = { "pagemap-%d.img", true, &pagemap_entry__descriptor, &pagemap_head__descriptor },
	[IMG_FDS] = { "fds-%d.img", true, &fds_entry__descriptor, NULL },
	[IMG_PIPES] = { "pipes.img", false, &pipe_data_entry__descriptor, NULL },
	[IMG_GHOSTS] = { "ghosts.img", false, &ghost_entry__descriptor, NULL },
	[IMG_NS] = { "ns.img", false, &ns_entry__descriptor, NULL },
	[IMG_IPC] = { "ipc.img", false, &ipc_entry__descriptor, NULL },
	[IMG_MNT] = { "mnt.img", false, &mnt_img_entry__descriptor, NULL },
	[IMG_NETNS] = { "netns.img", false, &netns_entry__descriptor, NULL },
	[IMG_UNIXSK] = { "unixsk.img", false, &unix_sk_entry__descriptor, NULL },
	[IMG_INETSK] = { "inetsk.img", false, &inet_sk_entry__descriptor, NULL },
	[IMG_NETLINKSK] = { "netlinksk.img", false, &netlink_sk_entry__descriptor, NULL },
	[IMG_TCPSTREAM] = { "tcp-stream-%d.img", true, &tcp_stream_entry__descriptor, NULL },
};

struct img_header {
	uint32_t magic;
	uint32_t kind;
};

struct rec_header {
	uint32_t len;
	uint32_t crc;
};

static void img_name(char *name, size_t len, enum img_kind kind, int pid)
{
	snprintf(name, len, img_kinds[kind].name, pid);
}

static char *img_path(const char *dirpath, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", dirpath, name) < 0)
		abort();
	return path;
}

static struct img *img_new(int fd, enum img_kind kind, char *path, bool writing)
{
	struct img *img = xzalloc(sizeof(*img));

	img->fd = fd;
	img->kind = kind;
	img->path = path;
	img->writing = writing;
	return img;
}

static void img_append(struct img *img, const void *data, size_t len)
{
	if (img->len + len > img->cap) {
		img->cap = max_t(size_t, img->cap * 2, img->len + len + 4096);
		img->buf = xrealloc(img->buf, img->cap);
	}
	memcpy(img->buf + img->len, data, len);
	img->len += len;
}

struct img *img_open_write(int dirfd, const char *dirpath, enum img_kind kind, int pid)
{
	char name[64];
	char *path;
	int fd;

	img_name(name, sizeof(name), kind, pid);
	path = img_path(dirpath, name);
	struct img_header h = { htole32(IMG_MAGIC), htole32(kind) };
	struct img *img;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		pr_perror("can't create image %s", path);
		free(path);
		return NULL;
	}
	img = img_new(fd, kind, path, true);
	img_append(img, &h, sizeof(h));
	return img;
}

struct img *img_open_read(int dirfd, const char *dirpath, enum img_kind kind, int pid)
{
	char name[64];
	char *path;
	struct img_header h;
	ssize_t n;
	int fd;

	img_name(name, sizeof(name), kind, pid);
	path = img_path(dirpath, name);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		pr_perror("can't open image %s", path);
		free(path);
		return NULL;
	}
	n = read_full(fd, &h, sizeof(h));
	if (n != sizeof(h) || le32toh(h.magic) != IMG_MAGIC || le32toh(h.kind) != (uint32_t)kind) {
		if (n < 0)
			pr_err("can't read image %s: %s\n", path, strerror(-n));
		else if (n != sizeof(h))
			pr_err("image %s is truncated: no header\n", path);
		else
			pr_err("image %s has a bad header (magic %#x kind %u, expected %#x kind %u)\n",
			       path, le32toh(h.magic), le32toh(h.kind), IMG_MAGIC, kind);
		close(fd);
		free(path);
		return NULL;
	}
	return img_new(fd, kind, path, false);
}

int img_write_msg(struct img *img, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	struct rec_header rh = { 0, 0 };
	size_t off;

	if (len > IMG_MAX_RECORD) {
		pr_err("image %s: record of %zu bytes exceeds the %u byte limit\n", img->path, len,
		       IMG_MAX_RECORD);
		return -EFBIG;
	}
	off = img->len;
	img_append(img, &rh, sizeof(rh));
	if (img->len + len > img->cap) {
		img->cap = img->len + len + 4096;
		img->buf = xrealloc(img->buf, img->cap);
	}
	protobuf_c_message_pack(msg, img->buf + img->len);
	rh.len = htole32(len);
	rh.crc = htole32(crc32c(0, img->buf + img->len, len));
	memcpy(img->buf + off, &rh, sizeof(rh));
	img->len += len;
	return 0;
}

static void img_free(struct img *img)
{
	if (img->fd >= 0)
		close(img->fd);
	free(img->buf);
	free(img->path);
	free(img);
}

int img_close(struct img *img)
{
	ssize_t n;
	int ret = 0;

	if (!img)
		return -EINVAL;
	if (img->writing) {
		n = write_full(img->fd, img->buf, img->len);
		if (n < 0)
			ret = log_errno(n, "can't write image %s", img->path);
		else if (fsync(img->fd) < 0)
			ret = log_errno(-errno, "can't fsync image %s", img->path);
	}
	img_free(img);
	return ret;
}

void img_abort(struct img *img)
{
	if (img)
		img_free(img);
}

/* Check a record header against what remains; returns payload length or -errno. */
static long check_record(const char *path, uint64_t off, const struct rec_header *rh, uint64_t avail)
{
	uint32_t len = le32toh(rh->len);

	if (len > IMG_MAX_RECORD) {
		pr_err("image %s: record at offset %" PRIu64 " claims %u bytes (corrupt)\n", path, off, len);
		return -EBADMSG;
	}
	if (len > avail) {
		pr_err("image %s is truncated: record at offset %" PRIu64 " needs %u bytes, %" PRIu64
		       " left\n", path, off, len, avail);
		return -EBADMSG;
	}
	return len;
}

static int unpack_record(const char *path, uint64_t off, const ProtobufCMessageDescriptor *desc,
			 const uint8_t *data, size_t len, uint32_t crc, ProtobufCMessage **out)
{
	if (crc32c(0, data, len) != crc) {
		pr_err("image %s: checksum mismatch in record at offset %" PRIu64 " (corrupt)\n", path, off);
		return -EBADMSG;
	}
	*out = protobuf_c_message_unpack(desc, NULL, len, data);
	if (!*out) {
		pr_err("image %s: record at offset %" PRIu64 " does not decode as %s\n", path, off,
		       desc->name);
		return -EBADMSG;
	}
	return 1;
}

int img_read_msg(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	struct rec_header rh;
	off_t off = lseek(img->fd, 0, SEEK_CUR);
	struct stat st;
	_cleanup_free_ uint8_t *data = NULL;
	ssize_t n;
	long len;

	if (fstat(img->fd, &st) < 0)
		return log_errno(-errno, "can't stat image %s", img->path);
	n = read_full(img->fd, &rh, sizeof(rh));
	if (n == 0)
		return 0;
	if (n < 0)
		return log_errno(n, "can't read image %s", img->path);
	if (n != sizeof(rh)) {
		pr_err("image %s is truncated: partial record header at offset %lld\n", img->path,
		       (long long)off);
		return -EBADMSG;
	}
	len = check_record(img->path, off, &rh, st.st_size - off - sizeof(rh));
	if (len < 0)
		return len;
	data = xmalloc(len);
	n = read_full(img->fd, data, len);
	if (n != len)
		return log_errno(n < 0 ? n : -EIO, "can't read image %s", img->path);
	return unpack_record(img->path, off, desc, data, len, le32toh(rh.crc), out);
}

int img_read_one(int dirfd, const char *dirpath, enum img_kind kind, int pid,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
	struct img *img = img_open_read(dirfd, dirpath, kind, pid);
	int ret;

	if (!img)
		return -ENOENT;
	ret = img_read_msg(img, desc, out);
	if (ret == 0) {
		pr_err("image %s is empty (truncated)\n", img->path);
		ret = -EBADMSG;
	}
	img_abort(img);
	return ret < 0 ? ret : 0;
}

int img_write_one(int dirfd, const char *dirpath, enum img_kind kind, int pid,
		  const ProtobufCMessage *msg)
{
	struct img *img = img_open_write(dirfd, dirpath, kind, pid);
	int ret;

	if (!img)
		return -EIO;
	ret = img_write_msg(img, msg);
	if (ret < 0) {
		img_abort(img);
		return ret;
	}
	return img_close(img);
}

int img_parse_buffer(const uint8_t *buf, size_t len, enum img_kind *kind_out,
		     int (*cb)(enum img_kind kind, int idx, ProtobufCMessage *msg, void *arg),
		     void *arg)
{
	struct img_header h;
	size_t off = sizeof(h);
	enum img_kind kind;
	int idx = 0;

	if (len < sizeof(h)) {
		pr_err("image buffer is truncated: no header\n");
		return -EBADMSG;
	}
	memcpy(&h, buf, sizeof(h));
	kind = le32toh(h.kind);
	if (le32toh(h.magic) != IMG_MAGIC || !img_kind_valid(kind)) {
		pr_err("image buffer has a bad header\n");
		return -EBADMSG;
	}
	if (kind_out)
		*kind_out = kind;
	while (off < len) {
		const ProtobufCMessageDescriptor *desc = img_kinds[kind].desc;
		ProtobufCMessage *msg;
		struct rec_header rh;
		long rl;
		int ret;

		if (len - off < sizeof(rh)) {
			pr_err("image buffer is truncated: partial record header at offset %zu\n", off);
			return -EBADMSG;
		}
		memcpy(&rh, buf + off, sizeof(rh));
		rl = check_record("buffer", off, &rh, len - off - sizeof(rh));
		if (rl < 0)
			return rl;
		if (idx == 0 && img_kinds[kind].head_desc)
			desc = img_kinds[kind].head_desc;
		ret = unpack_record("buffer", off, desc, buf + off + sizeof(rh), rl, le32toh(rh.crc), &msg);
		if (ret < 0)
			return ret;
		off += sizeof(rh) + rl;
		ret = cb ? cb(kind, idx, msg, arg) : 0;
		img_free_msg(msg);
		if (ret < 0)
			return ret;
		idx++;
	}
	return idx;
}
