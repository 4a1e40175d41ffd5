/*
 * XXH64 written from its published specification (Yann Collet's
 * xxhash_spec.md): four lanes of 8-byte rounds over 32-byte stripes, then a
 * merge, the tail, and an avalanche. About 10 GB/s here, far more than the
 * disk; the images of an epoch are hashed once, after they are written.
 */
#include <string.h>

#include "hash.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);	/* x86_64: little endian, as the spec reads */
	return v;
}

static inline uint32_t read32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t lane)
{
	acc += lane * P2;
	acc = rotl(acc, 31);
	return acc * P1;
}

static inline uint64_t merge(uint64_t acc, uint64_t v)
{
	acc ^= round64(0, v);
	return acc * P1 + P4;
}

void xxh64_init(struct xxh64 *h, uint64_t seed)
{
	memset(h, 0, sizeof(*h));
	h->seed = seed;
	h->v[0] = seed + P1 + P2;
	h->v[1] = seed + P2;
	h->v[2] = seed;
	h->v[3] = seed - P1;
}

static void stripe(struct xxh64 *h, const uint8_t *p)
{
	for (int i = 0; i < 4; i++)
		h->v[i] = round64(h->v[i], read64(p + 8 * i));
}

void xxh64_update(struct xxh64 *h, const void *data, size_t len)
{
	const uint8_t *p = data;

	h->total += len;
	if (h->buffered) {
		size_t take = 32 - h->buffered < len ? 32 - h->buffered : len;

		memcpy(h->buf + h->buffered, p, take);
		h->buffered += take;
		p += take;
		len -= take;
		if (h->buffered < 32)
			return;
		stripe(h, h->buf);
		h->buffered = 0;
	}
	for (; len >= 32; p += 32, len -= 32)
		stripe(h, p);
	memcpy(h->buf, p, len);
	h->buffered = len;
}

uint64_t xxh64_final(const struct xxh64 *h)
{
	const uint8_t *p = h->buf, *end = h->buf + h->buffered;
	uint64_t acc;

	if (h->total >= 32) {
		acc = rotl(h->v[0], 1) + rotl(h->v[1], 7) + rotl(h->v[2], 12) + rotl(h->v[3], 18);
		for (int i = 0; i < 4; i++)
			acc = merge(acc, h->v[i]);
	} else {
		acc = h->seed + P5;
	}
	acc += h->total;
	for (; end - p >= 8; p += 8)
		acc = rotl(acc ^ round64(0, read64(p)), 27) * P1 + P4;
	if (end - p >= 4) {
		acc = rotl(acc ^ (read32(p) * P1), 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++)
		acc = rotl(acc ^ (*p * P5), 11) * P1;
	acc ^= acc >> 33;
	acc *= P2;
	acc ^= acc >> 29;
	acc *= P3;
	acc ^= acc >> 32;
	return acc;
}

uint64_t xxh64(const void *data, size_t len, uint64_t seed)
{
	struct xxh64 h;

	xxh64_init(&h, seed);
	xxh64_update(&h, data, len);
	return xxh64_final(&h);
}
