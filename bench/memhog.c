/*
 * memhog: the subject of the dump/restore benchmark (bench/run.sh).
 *
 *   memhog SIZE_MIB OUTFILE   fill SIZE_MIB of private anonymous memory,
 *                             announce OUTFILE.ready, wait for SIGTERM,
 *                             verify the memory, write PASS/FAIL to OUTFILE
 *   memhog --emit SIZE_MIB    write the same bytes to stdout (the source of
 *                             the dd floor, so the floor moves these bytes)
 *
 * Every 64-bit word is a pure function of its index, so the bytes are
 * incompressible and any page lost, duplicated or misplaced by a dump and
 * restore shows up as a mismatch at a known offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEMHOG_SEED 0x6d656d686f67ULL /* "memhog" */
#define MIB (1024UL * 1024UL)
#define EMIT_CHUNK (8 * MIB)

static volatile sig_atomic_t got_sigterm;

/* splitmix64: cheap, stateless, and passes statistical tests, so the
 * pattern is as incompressible as /dev/urandom for any page-level codec. */
static inline uint64_t pattern_word(uint64_t index)
{
	uint64_t z = MEMHOG_SEED + (index + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_words(uint64_t *words, size_t n, uint64_t first_index)
{
	for (size_t i = 0; i < n; i++)
		words[i] = pattern_word(first_index + i);
}

/* Position-weighted sum: order-sensitive, and one add per word on the
 * dependency chain, so it costs little next to the fill. */
static uint64_t checksum_words(const uint64_t *words, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += words[i] * (2 * (uint64_t)i + 1);
	return sum;
}

static int parse_size_mib(const char *arg, size_t *bytes)
{
	char *end;
	unsigned long long mib;

	errno = 0;
	mib = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || mib == 0 || mib > SIZE_MAX / MIB) {
		fprintf(stderr, "memhog: bad size '%s' (MiB, > 0)\n", arg);
		return -EINVAL;
	}
	*bytes = (size_t)mib * MIB;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len, const char *what)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			fprintf(stderr, "memhog: write to %s: %s\n", what, strerror(err));
			return -err;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write tmp + rename, so a reader polling for PATH never sees half a line. */
static int publish_file(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		fprintf(stderr, "memhog: path too long: '%s'\n", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "memhog: open '%s': %s\n", tmp, strerror(-ret));
		return ret;
	}
	ret = write_all(fd, text, strlen(text), tmp);
	if (close(fd) && !ret) {
		ret = -errno;
		fprintf(stderr, "memhog: close '%s': %s\n", tmp, strerror(-ret));
	}
	if (!ret && rename(tmp, path)) {
		ret = -errno;
		fprintf(stderr, "memhog: rename '%s' to '%s': %s\n", tmp, path, strerror(-ret));
	}
	return ret;
}

static int emit_pattern(size_t bytes)
{
	uint64_t *chunk = malloc(EMIT_CHUNK);
	uint64_t index = 0;
	int ret = 0;

	if (!chunk) {
		fprintf(stderr, "memhog: malloc %lu bytes: %s\n", EMIT_CHUNK, strerror(errno));
		return -ENOMEM;
	}
	while (bytes && !ret) {
		size_t len = bytes < EMIT_CHUNK ? bytes : EMIT_CHUNK;

		fill_words(chunk, len / sizeof(*chunk), index);
		ret = write_all(STDOUT_FILENO, chunk, len, "stdout");
		index += len / sizeof(*chunk);
		bytes -= len;
	}
	free(chunk);
	return ret;
}

static void on_sigterm(int sig)
{
	(void)sig;
	got_sigterm = 1;
}

/* SIGTERM stays blocked except inside sigsuspend, so it cannot arrive
 * between the check of the flag and going to sleep. */
static int block_sigterm(sigset_t *old)
{
	struct sigaction sa = { .sa_handler = on_sigterm };
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, old)) {
		int err = errno;

		fprintf(stderr, "memhog: block SIGTERM: %s\n", strerror(err));
		return -err;
	}
	if (sigaction(SIGTERM, &sa, NULL)) {
		int err = errno;

		fprintf(stderr, "memhog: sigaction(SIGTERM): %s\n", strerror(err));
		return -err;
	}
	sigdelset(old, SIGTERM);
	return 0;
}

static void wait_for_sigterm(const sigset_t *wait_mask)
{
	while (!got_sigterm)
		sigsuspend(wait_mask);
}

/* Reports the first bad word and how many 4 KiB pages hold a bad word,
 * which tells a lost page from a shifted mapping. */
static void verify(const uint64_t *words, size_t n, char *report, size_t len)
{
	const size_t words_per_page = 4096 / sizeof(*words);
	size_t bad_pages = 0, first_bad = SIZE_MAX;

	for (size_t page = 0; page < n; page += words_per_page) {
		size_t end = page + words_per_page < n ? page + words_per_page : n;

		for (size_t i = page; i < end; i++) {
			if (words[i] == pattern_word(i))
				continue;
			if (first_bad == SIZE_MAX)
				first_bad = i;
			bad_pages++;
			break;
		}
	}
	if (first_bad == SIZE_MAX)
		return;
	snprintf(report, len,
		 "FAIL bad_pages=%zu first_bad_offset=%zu expected=%016" PRIx64 " got=%016" PRIx64 "\n",
		 bad_pages, first_bad * sizeof(*words), pattern_word(first_bad), words[first_bad]);
}

static uint64_t *fill_memory(size_t bytes, uint64_t *sum)
{
	uint64_t *words;

	words = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (words == MAP_FAILED) {
		fprintf(stderr, "memhog: mmap %zu bytes: %s\n", bytes, strerror(errno));
		return NULL;
	}
	/* On this VM class a first-touch fault costs ~12 us per 4 KiB page
	 * (4 s per GiB); prefaulting in one call takes 0.15 s. The pages end
	 * up the same (4 KiB, anonymous, written); kernels without
	 * MADV_POPULATE_WRITE (< 5.14) just fault them one by one. */
	if (madvise(words, bytes, MADV_POPULATE_WRITE) && errno != EINVAL)
		fprintf(stderr, "memhog: madvise(MADV_POPULATE_WRITE) %zu bytes: %s\n", bytes,
			strerror(errno));
	fill_words(words, bytes / sizeof(*words), 0);
	*sum = checksum_words(words, bytes / sizeof(*words));
	return words;
}

/* The line for OUTFILE: PASS with the checksum of what is in memory now,
 * or FAIL naming the first thing found wrong. */
static void check_after_sigterm(const uint64_t *words, size_t n, pid_t pid, char *line,
				size_t len)
{
	/* A restore that does not keep the PID is a failure too. */
	if (getpid() != pid)
		snprintf(line, len, "FAIL pid changed from %d to %d\n", (int)pid, (int)getpid());
	else
		snprintf(line, len, "PASS %016" PRIx64 "\n", checksum_words(words, n));
	verify(words, n, line, len);
}

static int hog(size_t bytes, const char *outfile)
{
	char line[256], ready[PATH_MAX];
	pid_t pid = getpid();
	sigset_t wait_mask;
	uint64_t *words, sum;
	int ret;

	if (snprintf(ready, sizeof(ready), "%s.ready", outfile) >= (int)sizeof(ready)) {
		fprintf(stderr, "memhog: path too long: '%s'\n", outfile);
		return -ENAMETOOLONG;
	}
	ret = block_sigterm(&wait_mask);
	if (ret)
		return ret;
	words = fill_memory(bytes, &sum);
	if (!words)
		return -ENOMEM;
	snprintf(line, sizeof(line), "%d %016" PRIx64 "\n", (int)pid, sum);
	ret = publish_file(ready, line);
	if (ret)
		return ret;

	wait_for_sigterm(&wait_mask);
	check_after_sigterm(words, bytes / sizeof(*words), pid, line, sizeof(line));
	fputs(line, stdout);
	fflush(stdout);
	ret = publish_file(outfile, line);
	return ret ? ret : (strncmp(line, "PASS", 4) == 0 ? 0 : -EIO);
}

static void usage(void)
{
	fprintf(stderr, "usage: memhog SIZE_MIB OUTFILE\n"
			"       memhog --emit SIZE_MIB\n");
}

int main(int argc, char **argv)
{
	size_t bytes;

	if (argc != 3) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "--emit") == 0) {
		if (parse_size_mib(argv[2], &bytes))
			return 2;
		return emit_pattern(bytes) ? 1 : 0;
	}
	if (parse_size_mib(argv[1], &bytes))
		return 2;
	/* Descriptors inherited from whoever started the benchmark (a make
	 * jobserver pipe, a harness's fd) would become part of the dump. */
	if (close_range(3, ~0U, 0))
		fprintf(stderr, "memhog: close_range(3, ~0): %s\n", strerror(errno));
	return hog(bytes, argv[2]) ? 1 : 0;
}
