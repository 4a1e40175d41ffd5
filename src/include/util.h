/* Small helpers shared by every module: cleanup attributes, I/O loops. */
#ifndef CR_UTIL_H
#define CR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>
#include <dirent.h>

#define PATH_MAX_LEN 4096
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#undef PAGE_SIZE
#define PAGE_SIZE 4096UL
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))
/* Each argument is evaluated once. */
#define min_t(t, a, b) ({ t __a = (a), __b = (b); __a < __b ? __a : __b; })
#define max_t(t, a, b) ({ t __a = (a), __b = (b); __a > __b ? __a : __b; })

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int e = errno;
		close(*fd);
		errno = e;
	}
}
static inline void freep(void *p) { free(*(void **)p); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void closedirp(DIR **d) { if (*d) closedir(*d); }

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Hand ownership on: the cleanup of the old variable becomes a no-op. */
#define TAKE_FD(fd) ({ int __fd = (fd); (fd) = -1; __fd; })
#define TAKE_PTR(p) ({ __typeof__(p) __p = (p); (p) = NULL; __p; })

void *xmalloc(size_t size);
void *xzalloc(size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
#define xfree(p) free(p)

/* Full reads and writes: return bytes moved (short only at EOF) or -errno. */
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t write_full(int fd, const void *buf, size_t len);
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);

/* Read a whole small file (NUL-terminated) into *out; returns length or -errno. */
ssize_t read_file_at(int dirfd, const char *path, char **out);
/* Read a /proc/PID/... or /proc/PID/task/TID/... file; returns len or -errno. */
ssize_t read_proc_file(pid_t pid, pid_t tid, const char *name, char **out);
/* readlink into a malloc'ed string; returns 0 or -errno. */
int read_link(const char *path, char **out);

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint64_t now_ns(int clock);

/* mkdir -p for the image directory (mode 0700 for new components). */
int mkdir_p(const char *path, mode_t mode);
int fsync_dir(const char *path);

#endif
