/*
 * /proc/self/maps as a whole, after creating mappings of many kinds (anon
 * split by mprotect, a hole punched by munmap, a fixed address, private
 * and shared file mappings, shared anonymous memory, a PROT_NONE
 * reservation). After restore every mapping must have the same range,
 * permissions, offset and name, and file mappings the same device and
 * inode. Known-variable details are left out: the inode of shared
 * anonymous memory (a new shmem file) and how adjacent compatible
 * mappings are split (merged before comparing).
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_VMAS 512
#define FIXED_ADDR ((void *)0x300000000000UL)

struct vma {
	unsigned long start, end, offset;
	char perms[5];
	char dev_ino[32];	/* empty unless a regular file */
	char name[256];
};

static struct vma before[MAX_VMAS], after[MAX_VMAS];
static int nr_before;
static char maps_text[1 << 20];

static bool stable_file(const char *name)
{
	return name[0] == '/' && !strstr(name, " (deleted)") && strncmp(name, "/dev/zero", 9) &&
	       strncmp(name, "/SYSV", 5) && strncmp(name, "/memfd:", 7);
}

static bool mergeable(const struct vma *a, const struct vma *b)
{
	if (a->end != b->start || strcmp(a->perms, b->perms) || strcmp(a->name, b->name) ||
	    strcmp(a->dev_ino, b->dev_ino))
		return false;
	return !a->dev_ino[0] || a->offset + (a->end - a->start) == b->offset;
}

static int parse_maps(struct vma *out)
{
	int n = 0;

	cr_read_file("/proc/self/maps", maps_text, sizeof(maps_text));
	for (char *line = maps_text; *line && n < MAX_VMAS;) {
		size_t len = strcspn(line, "\n");
		struct vma v = { 0 };
		char dev[16];
		unsigned long ino;
		int name_at = 0;

		line[len] = '\0';
		if (sscanf(line, "%lx-%lx %4s %lx %15s %lu %n", &v.start, &v.end, v.perms, &v.offset,
			   dev, &ino, &name_at) < 6)
			cr_die("can't parse maps line '%s'", line);
		snprintf(v.name, sizeof(v.name), "%s", name_at ? line + name_at : "");
		if (stable_file(v.name))
			snprintf(v.dev_ino, sizeof(v.dev_ino), "%s:%lu", dev, ino);
		else if (v.name[0] != '/')
			v.offset = 0;
		if (n > 0 && mergeable(&out[n - 1], &v))
			out[n - 1].end = v.end;
		else
			out[n++] = v;
		line += len + 1;
	}
	return n;
}

static void describe(const struct vma *v, char *buf, size_t len)
{
	snprintf(buf, len, "%lx-%lx %s %lx %s %s", v->start, v->end, v->perms, v->offset,
		 v->dev_ino[0] ? v->dev_ino : "-", v->name);
}

static void compare(void)
{
	int n = parse_maps(after), shown = 0;
	char a[400], b[400];

	if (n != nr_before)
		cr_fail("%d mappings, were %d", n, nr_before);
	for (int i = 0; i < n || i < nr_before; i++) {
		a[0] = b[0] = '\0';
		if (i < n)
			describe(&after[i], a, sizeof(a));
		if (i < nr_before)
			describe(&before[i], b, sizeof(b));
		if (strcmp(a, b) && shown++ < 5)
			cr_fail("mapping %d is '%s', was '%s'", i, a, b);
	}
}

static void *map(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	if (p == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	return p;
}

static void make_mappings(void)
{
	static char page[4 * CR_PAGE];
	char path[PATH_MAX];
	char *anon, *holey;
	int fd;

	anon = map(NULL, 256 * CR_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_fill(anon, 256 * CR_PAGE, 1);
	if (mprotect(anon + 64 * CR_PAGE, 16 * CR_PAGE, PROT_READ) ||
	    mprotect(anon + 128 * CR_PAGE, 8 * CR_PAGE, PROT_READ | PROT_EXEC))
		cr_die("mprotect: %s", strerror(errno));
	holey = map(NULL, 64 * CR_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (munmap(holey + 16 * CR_PAGE, 16 * CR_PAGE))
		cr_die("munmap: %s", strerror(errno));
	map(FIXED_ADDR, 32 * CR_PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	map(NULL, 1024 * CR_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	memset(map(NULL, 8 * CR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
	       7, CR_PAGE);
	cr_path(path, sizeof(path), "mapped.dat");
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	cr_fill(page, sizeof(page), 2);
	if (fd < 0 || write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
		cr_die("write '%s': %s", path, strerror(errno));
	map(NULL, 2 * CR_PAGE, PROT_READ, MAP_PRIVATE, fd, CR_PAGE);
	memset(map(NULL, 4 * CR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), 3, 10);
	memset(map(NULL, 3 * CR_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), 4, 10);
	close(fd);
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	make_mappings();
	nr_before = parse_maps(before);
	cr_ready();
	cr_wait_term();
	compare();
	return cr_report();
}
