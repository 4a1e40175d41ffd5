/*
 * Private file mappings (MAP_PRIVATE) with privately modified pages: the
 * file must stay unchanged on disk, the mappings must keep the modified
 * bytes, unmodified pages must still be the file's (a later write to the
 * file shows through them), and /proc/self/maps must describe the same
 * file, offsets and permissions. The descriptor is closed before the
 * checkpoint. A child modifies its own copy of another page.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_PAGES 32
#define FILE_SEED(p) (0xf11e0000ULL + (uint64_t)(p) * 1000)
#define MOD_SEED(p) (0x30d00000ULL + (uint64_t)(p) * 1000)
#define CHILD_SEED(p) (0xc41d0000ULL + (uint64_t)(p) * 1000)

struct mapping {
	const char *name;
	size_t first, pages;	/* in the file */
	int prot;
	char *addr;
	char maps_line[512];
};

enum { WHOLE, RDONLY, PROTECTED, NR_MAPPINGS };
static struct mapping maps[NR_MAPPINGS] = {
	[WHOLE] = { "whole file rw", 0, FILE_PAGES, PROT_READ | PROT_WRITE },
	[RDONLY] = { "pages 16-23 ro", 16, 8, PROT_READ },
	[PROTECTED] = { "pages 4-7 written then ro", 4, 4, PROT_READ | PROT_WRITE },
};
/* Modified pages of WHOLE, and page 1 of PROTECTED (file page 5). */
static const size_t modified[] = { 3, 7, 8, 20 };
static char path[PATH_MAX];

static bool is_modified(size_t page)
{
	for (size_t i = 0; i < CR_ARRAY_SIZE(modified); i++)
		if (modified[i] == page)
			return true;
	return false;
}

static void create_file(void)
{
	static char page[CR_PAGE];
	int fd;

	cr_path(path, sizeof(path), "private.dat");
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0)
		cr_die("create '%s': %s", path, strerror(errno));
	for (size_t p = 0; p < FILE_PAGES; p++) {
		cr_fill(page, CR_PAGE, FILE_SEED(p));
		if (pwrite(fd, page, CR_PAGE, (off_t)(p * CR_PAGE)) != (ssize_t)CR_PAGE)
			cr_die("write '%s': %s", path, strerror(errno));
	}
	for (int i = 0; i < NR_MAPPINGS; i++) {
		struct mapping *m = &maps[i];

		m->addr = mmap(NULL, m->pages * CR_PAGE, m->prot, MAP_PRIVATE, fd,
			       (off_t)(m->first * CR_PAGE));
		if (m->addr == MAP_FAILED)
			cr_die("mmap %s: %s", m->name, strerror(errno));
	}
	close(fd);
}

static void modify(void)
{
	volatile char sink = 0;

	for (size_t p = 0; p < FILE_PAGES; p++)
		if (is_modified(p))
			cr_fill(maps[WHOLE].addr + p * CR_PAGE, CR_PAGE, MOD_SEED(p));
		else
			sink += maps[WHOLE].addr[p * CR_PAGE];	/* map the file page */
	(void)sink;
	cr_fill(maps[PROTECTED].addr + CR_PAGE, CR_PAGE, MOD_SEED(100));
	if (mprotect(maps[PROTECTED].addr, maps[PROTECTED].pages * CR_PAGE, PROT_READ))
		cr_die("mprotect: %s", strerror(errno));
}

static void record_maps(void)
{
	for (int i = 0; i < NR_MAPPINGS; i++)
		if (!cr_maps_line(maps[i].addr, maps[i].maps_line, sizeof(maps[i].maps_line)))
			cr_die("%s not in /proc/self/maps", maps[i].name);
}

static void check_file_on_disk(const char *who)
{
	static char page[CR_PAGE];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		cr_fail("%s: open '%s': %s", who, path, strerror(errno));
		return;
	}
	for (size_t p = 0; p < FILE_PAGES; p++)
		if (pread(fd, page, CR_PAGE, (off_t)(p * CR_PAGE)) != (ssize_t)CR_PAGE ||
		    cr_check_fill(page, CR_PAGE, FILE_SEED(p)) >= 0) {
			cr_fail("%s: the file changed on disk at page %zu", who, p);
			break;
		}
	close(fd);
}

static void check_page(const char *who, const struct mapping *m, size_t i, uint64_t seed)
{
	if (cr_check_fill(m->addr + i * CR_PAGE, CR_PAGE, seed) >= 0)
		cr_fail("%s: %s: page %zu differs", who, m->name, i);
}

static void check_mappings(const char *who, size_t child_page)
{
	for (int i = 0; i < NR_MAPPINGS; i++) {
		char line[512] = "";

		cr_maps_line(maps[i].addr, line, sizeof(line));
		if (strcmp(line, maps[i].maps_line))
			cr_fail("%s: maps line '%s', was '%s'", who, line, maps[i].maps_line);
	}
	for (size_t p = 0; p < FILE_PAGES; p++)
		check_page(who, &maps[WHOLE], p,
			   p == child_page ? CHILD_SEED(p) : is_modified(p) ? MOD_SEED(p) : FILE_SEED(p));
	for (size_t p = 0; p < maps[RDONLY].pages; p++)
		check_page(who, &maps[RDONLY], p, FILE_SEED(maps[RDONLY].first + p));
	for (size_t p = 0; p < maps[PROTECTED].pages; p++)
		check_page(who, &maps[PROTECTED], p,
			   p == 1 ? MOD_SEED(100) : FILE_SEED(maps[PROTECTED].first + p));
	check_file_on_disk(who);
}

/* An unmodified page of a private mapping is still the file's page. */
static void check_tracks_file(void)
{
	static char page[CR_PAGE];
	const size_t p = 30;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	cr_fill(page, CR_PAGE, 0x7777);
	if (fd < 0 || pwrite(fd, page, CR_PAGE, (off_t)(p * CR_PAGE)) != (ssize_t)CR_PAGE) {
		cr_fail("rewrite '%s': %s", path, strerror(errno));
	} else if (cr_check_fill(maps[WHOLE].addr + p * CR_PAGE, CR_PAGE, 0x7777) >= 0) {
		cr_fail("unmodified private page %zu no longer follows the file (restored as a copy?)", p);
	}
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	create_file();
	modify();
	kid = cr_spawn("child");
	if (kid == 0) {
		cr_fill(maps[WHOLE].addr + 9 * CR_PAGE, CR_PAGE, CHILD_SEED(9));
		record_maps();
		cr_child_ready();
		cr_wait_term();
		check_mappings("child", 9);
		cr_child_exit();
	}
	record_maps();
	check_mappings("parent before checkpoint", FILE_PAGES);
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	check_mappings("parent", FILE_PAGES);
	cr_finish_children(&kid, roles, 1);
	check_tracks_file();
	return cr_report();
}
