/* XXH64, the 64-bit xxHash: image checksums in epoch manifests. */
#ifndef CRL_HASH_H
#define CRL_HASH_H

#include <stddef.h>
#include <stdint.h>

struct xxh64 {
	uint64_t v[4];
	uint64_t total;
	uint8_t buf[32];
	size_t buffered;
	uint64_t seed;
};

void xxh64_init(struct xxh64 *h, uint64_t seed);
void xxh64_update(struct xxh64 *h, const void *data, size_t len);
uint64_t xxh64_final(const struct xxh64 *h);
uint64_t xxh64(const void *data, size_t len, uint64_t seed);

#endif
