/*
 * Run the fuzz target over saved inputs without libFuzzer, so that every
 * `make check` (and the sanitizer build in CI) replays the seed corpus and
 * the reproducers of fixed crashes.
 *
 *   fuzz-replay [FILE|DIR]...
 *
 * Without arguments it replays FUZZ_CORPUS_DIRS (set by the build). Exit
 * status 0 if every input ran, 1 if one could not be read; a crash is the
 * sanitizers' to report.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef FUZZ_CORPUS_DIRS
#define FUZZ_CORPUS_DIRS ""
#endif

static int nr_inputs;

static int replay_file(int dfd, const char *name, const char *shown)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	ssize_t n;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "Error: fuzz-replay: can't open %s: %s\n", shown, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* An exact-size buffer: ASan then catches a read one byte past the input. */
	buf = malloc(st.st_size ? st.st_size : 1);
	n = buf ? read(fd, buf, st.st_size) : -1;
	close(fd);
	if (n != st.st_size) {
		fprintf(stderr, "Error: fuzz-replay: can't read %s: %s\n", shown, n < 0 ? strerror(errno) : "short read");
		free(buf);
		return -1;
	}
	fprintf(stderr, "fuzz-replay: %s (%zd bytes)\n", shown, n);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	nr_inputs++;
	return 0;
}

static int skip_dots(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Every regular file of dir, in name order so that logs compare across runs. */
static int replay_dir(const char *dir)
{
	struct dirent **names;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int n, ret = 0;

	if (dfd < 0) {
		fprintf(stderr, "Error: fuzz-replay: can't open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	n = scandirat(dfd, ".", &names, skip_dots, alphasort);
	if (n < 0) {
		fprintf(stderr, "Error: fuzz-replay: can't list %s: %s\n", dir, strerror(errno));
		close(dfd);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char shown[4096];
		struct stat st;

		snprintf(shown, sizeof(shown), "%s/%s", dir, names[i]->d_name);
		if (fstatat(dfd, names[i]->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(dfd, names[i]->d_name, shown) < 0)
			ret = -1;
		free(names[i]);
	}
	free(names);
	close(dfd);
	return ret;
}

static int replay(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "Error: fuzz-replay: can't stat %s: %s\n", path, strerror(errno));
		return -1;
	}
	return S_ISDIR(st.st_mode) ? replay_dir(path) : replay_file(AT_FDCWD, path, path);
}

/* The built-in list: space-separated directories, missing ones skipped. */
static int replay_default(void)
{
	char *list = strdup(FUZZ_CORPUS_DIRS), *save = NULL;
	int ret = 0;

	for (char *d = strtok_r(list, " ", &save); d; d = strtok_r(NULL, " ", &save))
		if (access(d, F_OK) == 0 && replay(d) < 0)
			ret = -1;
	free(list);
	return ret;
}

int main(int argc, char **argv)
{
	int ret = argc > 1 ? 0 : replay_default();

	for (int i = 1; i < argc; i++)
		if (replay(argv[i]) < 0)
			ret = -1;
	fprintf(stderr, "fuzz-replay: %d inputs replayed\n", nr_inputs);
	if (!nr_inputs) {
		fprintf(stderr, "Error: fuzz-replay: no inputs found\n");
		return 1;
	}
	return ret < 0 ? 1 : 0;
}
