/*
 * ring: an MPI job to checkpoint. Every rank holds STATE_MIB MiB of state and
 * passes a halo message to its right neighbour on every iteration; every
 * value received is checked against the function that made it, and mixed
 * into the state. Every CHECK iterations the ranks agree on a checksum with
 * MPI_Allreduce and rank 0 prints it. At the end rank 0 prints
 * "result=<hex>", the checksum of all the ranks' whole state: an
 * uninterrupted run and a run checkpointed and restored any number of times
 * print exactly the same lines.
 *
 *   ring STATE_MIB ITERATIONS [PACE_US]
 *
 * PACE_US sleeps that long on every iteration (default 0), so that a test can
 * stretch a run without changing its result.
 */
#include <mpi.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HALO_WORDS 2048		/* 16 KiB per message */
#define CHECK 100		/* iterations between two printed checksums */
#define CHUNK_WORDS (1u << 17)	/* 1 MiB of state updated per iteration */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t halo_value(uint64_t it, int sender, unsigned j)
{
	return mix((it << 24) ^ ((uint64_t)sender << 16) ^ j);
}

static void fail(int rank, const char *what)
{
	fprintf(stderr, "ring: rank %d: %s\n", rank, what);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
	int rank, size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc < 3)
		fail(rank, "usage: ring STATE_MIB ITERATIONS [PACE_US]");
	size_t words = (size_t)strtoull(argv[1], NULL, 0) << 17;
	uint64_t iters = strtoull(argv[2], NULL, 0);
	long pace = argc > 3 ? atol(argv[3]) : 0;
	if (words < CHUNK_WORDS || iters == 0)
		fail(rank, "STATE_MIB and ITERATIONS must be at least 1");

	uint64_t *state = malloc(words * sizeof(*state));
	uint64_t *out = malloc(HALO_WORDS * sizeof(*out));
	uint64_t *in = malloc(HALO_WORDS * sizeof(*in));
	if (!state || !out || !in)
		fail(rank, "out of memory");
	for (size_t i = 0; i < words; i++)
		state[i] = mix(((uint64_t)rank << 40) ^ i);

	int right = (rank + 1) % size, left = (rank + size - 1) % size;
	size_t nchunks = words / CHUNK_WORDS;
	for (uint64_t it = 0; it < iters; it++) {
		for (unsigned j = 0; j < HALO_WORDS; j++)
			out[j] = halo_value(it, rank, j);
		MPI_Sendrecv(out, HALO_WORDS, MPI_UINT64_T, right, (int)(it & 0x7fff),
			     in, HALO_WORDS, MPI_UINT64_T, left, (int)(it & 0x7fff),
			     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		for (unsigned j = 0; j < HALO_WORDS; j++) {
			if (in[j] != halo_value(it, left, j)) {
				char msg[160];
				snprintf(msg, sizeof(msg),
					 "iteration %" PRIu64 ": word %u from rank %d is %016" PRIx64
					 ", expected %016" PRIx64, it, j, left, in[j],
					 halo_value(it, left, j));
				fail(rank, msg);
			}
		}
		uint64_t *chunk = state + (it % nchunks) * CHUNK_WORDS;
		for (size_t i = 0; i < CHUNK_WORDS; i++)
			chunk[i] = mix(chunk[i] ^ in[i % HALO_WORDS] ^ it);
		if ((it + 1) % CHECK == 0) {
			uint64_t local = 0, global = 0;
			for (size_t i = 0; i < CHUNK_WORDS; i++)
				local ^= mix(chunk[i] + i);
			MPI_Allreduce(&local, &global, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
			if (rank == 0) {
				printf("iteration %" PRIu64 " checksum %016" PRIx64 "\n", it + 1, global);
				fflush(stdout);
			}
		}
		if (pace > 0) {
			struct timespec ts = { pace / 1000000, (pace % 1000000) * 1000 };
			while (nanosleep(&ts, &ts) != 0)
				;
		}
	}

	uint64_t local = 0, global = 0;
	for (size_t i = 0; i < words; i++)
		local += mix(state[i] ^ i);
	MPI_Reduce(&local, &global, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		printf("result=%016" PRIx64 "\n", global);
		fflush(stdout);
	}
	free(state);
	free(out);
	free(in);
	MPI_Finalize();
	return 0;
}
