/*
 * Image files: a header (magic, kind) followed by records. Each record is
 * a little-endian u32 payload length, a u32 CRC32C of the payload, then a
 * protobuf-c message. Raw page data lives in separate pages-*.img files
 * that have no framing (see doc/images.md).
 */
#ifndef CR_IMAGE_H
#define CR_IMAGE_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#define IMG_MAGIC 0x52434c43u /* "CLCR" little-endian */
#define IMG_MAX_RECORD (64u << 20)

enum img_kind {
	IMG_INVENTORY = 1,
	IMG_PSTREE,
	IMG_CORE,
	IMG_MM,
	IMG_PAGEMAP,
	IMG_FDS,
	IMG_PIPES,
	IMG_GHOSTS,
	IMG_NS = 9,
	IMG_IPC = 10,
	IMG_MNT = 11,
	IMG_UNIXSK = 12,
	IMG_INETSK = 14,
	IMG_NETLINKSK = 15,
	IMG_TCPSTREAM = 16,
	IMG_NETNS = 17,
	IMG_KIND_MAX,
};

struct img_kind_desc {
	const char *name;	/* file name pattern: "core-%d.img" or "pstree.img" */
	bool per_task;
	const ProtobufCMessageDescriptor *desc; /* message type of its records */
	const ProtobufCMessageDescriptor *head_desc; /* first record, if different */
};
extern const struct img_kind_desc img_kinds[IMG_KIND_MAX];

/* Kinds are numbered with gaps (reserved numbers): only these exist. */
static inline bool img_kind_valid(int kind)
{
	return kind > 0 && kind < IMG_KIND_MAX && img_kinds[kind].name;
}

struct img {
	int fd;
	enum img_kind kind;
	char *path;		/* for error messages: the file acted on */
	uint8_t *buf;		/* write buffer */
	size_t len, cap;
	bool writing;
};

/* Open DIR/<name for kind and pid> for writing (creates/truncates) or reading. */
struct img *img_open_write(int dirfd, const char *dirpath, enum img_kind kind, int pid);
struct img *img_open_read(int dirfd, const char *dirpath, enum img_kind kind, int pid);
/* Flush, fsync and close a written image; returns 0 or -errno (logged). */
int img_close(struct img *img);
/* Close without flushing (for reads, or to abandon). */
void img_abort(struct img *img);

int img_write_msg(struct img *img, const ProtobufCMessage *msg);
/*
 * Read the next record and unpack it with desc. Returns 1 and sets *out on a
 * record, 0 at a clean end of file, -errno (logged with the file name and
 * offset) on truncation, bad CRC or undecodable payload.
 */
int img_read_msg(struct img *img, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
/* Read exactly one record (it must exist). */
int img_read_one(int dirfd, const char *dirpath, enum img_kind kind, int pid,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);
/* Write one message into its own image file. */
int img_write_one(int dirfd, const char *dirpath, enum img_kind kind, int pid,
		  const ProtobufCMessage *msg);

/* Same framing on a caller-provided buffer (for fuzzing and unit tests). */
int img_parse_buffer(const uint8_t *buf, size_t len, enum img_kind *kind_out,
		     int (*cb)(enum img_kind kind, int idx, ProtobufCMessage *msg, void *arg),
		     void *arg);

static inline void img_free_msg(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

#endif
