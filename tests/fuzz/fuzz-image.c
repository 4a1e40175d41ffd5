/*
 * libFuzzer target for everything that reads image files: the framing
 * (img_parse_buffer, img_open_read + img_read_msg), protobuf decoding of
 * every kind, and `crtool show` (text and JSON) on top.
 *
 * Random bytes almost never carry a valid CRC32C, which would keep the
 * decoder out of reach, so each input is tried twice: as is, and with every
 * record's CRC recomputed.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "show.h"
#include "util.h"

#include "fuzz.h"

#define FUZZ_PID 1

static char dirpath[64];
static int dirfd_ = -1;

static void remove_dir(void)
{
	for (int k = 1; k < IMG_KIND_MAX; k++) {
		if (!img_kinds[k].name)
			continue;	/* a number kept for another area */
		char name[64];

		if (!img_kind_valid(k))
			continue;
		snprintf(name, sizeof(name), img_kinds[k].name, FUZZ_PID);
		unlinkat(dirfd_, name, 0);
	}
	unlinkat(dirfd_, "input", 0);
	close(dirfd_);
	rmdir(dirpath);
}

/*
 * One scratch directory per process: "input" holds the bytes, and one hard
 * link per image kind makes every reader see them under its own name.
 */
static void setup(void)
{
	int fd;

	cr_loglevel = 0;
	/* show_cmd() prints to stdout; libFuzzer reports on stderr. */
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
		abort();
	close(fd);
	snprintf(dirpath, sizeof(dirpath), "%s/cr-fuzz-image.XXXXXX", getenv("TMPDIR") ?: "/tmp");
	if (!mkdtemp(dirpath))
		abort();
	dirfd_ = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fd = openat(dirfd_, "input", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (dirfd_ < 0 || fd < 0)
		abort();
	close(fd);
	for (int k = 1; k < IMG_KIND_MAX; k++) {
		if (!img_kinds[k].name)
			continue;	/* a number kept for another area */
		char name[64];

		if (!img_kind_valid(k))
			continue;
		snprintf(name, sizeof(name), img_kinds[k].name, FUZZ_PID);
		if (linkat(dirfd_, "input", dirfd_, name, 0) < 0)
			abort();
	}
	atexit(remove_dir);
}

/* Use what was decoded: packing walks every field the decoder filled in. */
static int use_msg(enum img_kind kind, int idx, ProtobufCMessage *msg, void *arg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		abort();
	if (protobuf_c_message_pack(msg, buf) != len)
		abort();
	free(buf);
	return 0;
}

static void read_as(enum img_kind kind)
{
	struct img *img = img_open_read(dirfd_, dirpath, kind, FUZZ_PID);

	if (!img)
		return;
	for (int idx = 0;; idx++) {
		const ProtobufCMessageDescriptor *d = idx == 0 && img_kinds[kind].head_desc ?
							      img_kinds[kind].head_desc : img_kinds[kind].desc;
		ProtobufCMessage *msg = NULL;

		if (img_read_msg(img, d, &msg) <= 0)
			break;
		use_msg(kind, idx, msg, NULL);
		img_free_msg(msg);
	}
	img_abort(img);
}

static void put_input(const uint8_t *data, size_t size)
{
	int fd = openat(dirfd_, "input", O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0 || write_full(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
}

static void try_input(const uint8_t *data, size_t size)
{
	img_parse_buffer(data, size, NULL, use_msg, NULL);
	put_input(data, size);
	for (int k = 1; k < IMG_KIND_MAX; k++)
		if (img_kind_valid(k))
			read_as(k);
	show_cmd(dirpath, false);
	show_cmd(dirpath, true);
}

/* Recompute each record's CRC where the framing allows; false if nothing changed. */
static bool fix_crcs(uint8_t *buf, size_t size)
{
	size_t off = 8;
	bool changed = false;

	while (size - off >= 8) {
		uint32_t len, crc;

		memcpy(&len, buf + off, 4);
		len = le32toh(len);
		if (len > size - off - 8)
			break;
		crc = htole32(crc32c(0, buf + off + 8, len));
		changed |= memcmp(buf + off + 4, &crc, 4) != 0;
		memcpy(buf + off + 4, &crc, 4);
		off += 8 + len;
	}
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	if (dirfd_ < 0)
		setup();
	try_input(data, size);
	if (size < 16)
		return 0;
	fixed = malloc(size);
	if (!fixed)
		abort();
	memcpy(fixed, data, size);
	if (fix_crcs(fixed, size))
		try_input(fixed, size);
	free(fixed);
	return 0;
}
