/*
 * Guard regions installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13):
 * guard markers inside a written anonymous mapping and inside a private
 * file mapping, which split no VMA and show only in pagemap. After restore
 * the same pages must fault, the same pagemap entries carry the guard bit,
 * the other pages keep their data, and removing a guard must give back a
 * zero page (anonymous) or the file's page.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MADV_GUARD_INSTALL_ 102
#define MADV_GUARD_REMOVE_ 103
#define PM_GUARD_REGION (1ULL << 58)
#define PAGES 16

struct area {
	const char *name;
	char *addr;
	const int *guards;	/* page indexes, -1 terminated */
	char maps_line[512];
	int codes[PAGES];
	bool guard_bit[PAGES];
};

static const int anon_guards[] = { 4, 5, 10, -1 };
static const int file_guards[] = { 2, 15, -1 };
static struct area areas[2] = {
	{ "anonymous", NULL, anon_guards, "", { 0 }, { 0 } },
	{ "file", NULL, file_guards, "", { 0 }, { 0 } },
};

static bool is_guard(const struct area *a, int page)
{
	for (const int *g = a->guards; *g >= 0; g++)
		if (*g == page)
			return true;
	return false;
}

static uint64_t file_seed(int page)
{
	return 0xf11e00ULL + (uint64_t)page * 1000;
}

static uint64_t data_seed(const struct area *a, int page)
{
	return a == &areas[0] ? 0xa0a000ULL + (uint64_t)page * 1000 : file_seed(page);
}

static void observe(struct area *a, int *codes, bool *bits)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	for (int p = 0; p < PAGES; p++) {
		uint64_t entry = 0;

		codes[p] = cr_probe(a->addr + p * CR_PAGE, false, NULL);
		if (fd < 0 || pread(fd, &entry, 8, (off_t)((uintptr_t)(a->addr + p * CR_PAGE) / CR_PAGE * 8)) != 8)
			cr_fail("%s: can't read pagemap: %s", a->name, strerror(errno));
		bits[p] = entry & PM_GUARD_REGION;
	}
	if (fd >= 0)
		close(fd);
}

static char *map_file(void)
{
	static char page[CR_PAGE];
	char path[PATH_MAX];
	char *addr;
	int fd;

	cr_path(path, sizeof(path), "guarded.dat");
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0)
		cr_die("create '%s': %s", path, strerror(errno));
	for (int p = 0; p < PAGES; p++) {
		cr_fill(page, CR_PAGE, file_seed(p));
		if (pwrite(fd, page, CR_PAGE, (off_t)p * (off_t)CR_PAGE) != (ssize_t)CR_PAGE)
			cr_die("write '%s': %s", path, strerror(errno));
	}
	addr = mmap(NULL, PAGES * CR_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (addr == MAP_FAILED)
		cr_die("mmap '%s': %s", path, strerror(errno));
	return addr;
}

static void setup(void)
{
	areas[0].addr = mmap(NULL, PAGES * CR_PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (areas[0].addr == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	for (int p = 0; p < PAGES; p++)
		cr_fill(areas[0].addr + p * CR_PAGE, CR_PAGE, data_seed(&areas[0], p));
	areas[1].addr = map_file();
	for (int i = 0; i < 2; i++) {
		struct area *a = &areas[i];

		for (const int *g = a->guards; *g >= 0; g++)
			if (madvise(a->addr + *g * CR_PAGE, CR_PAGE, MADV_GUARD_INSTALL_))
				cr_die("MADV_GUARD_INSTALL: %s", strerror(errno));
		cr_maps_line(a->addr, a->maps_line, sizeof(a->maps_line));
		observe(a, a->codes, a->guard_bit);
		for (int p = 0; p < PAGES; p++)
			if (!a->codes[p] != !is_guard(a, p) || a->guard_bit[p] != is_guard(a, p))
				cr_die("%s page %d: si_code %d, guard bit %d before the checkpoint",
				       a->name, p, a->codes[p], a->guard_bit[p]);
	}
}

static void verify(struct area *a)
{
	int codes[PAGES];
	bool bits[PAGES];
	char line[512] = "";

	cr_maps_line(a->addr, line, sizeof(line));
	if (strcmp(line, a->maps_line))
		cr_fail("%s: maps '%s', was '%s'", a->name, line, a->maps_line);
	observe(a, codes, bits);
	for (int p = 0; p < PAGES; p++) {
		if (codes[p] != a->codes[p] || bits[p] != a->guard_bit[p])
			cr_fail("%s page %d: si_code %d guard bit %d, were %d %d", a->name, p,
				codes[p], bits[p], a->codes[p], a->guard_bit[p]);
		else if (!is_guard(a, p) && cr_check_fill(a->addr + p * CR_PAGE, CR_PAGE, data_seed(a, p)) >= 0)
			cr_fail("%s page %d: data changed", a->name, p);
	}
}

/* Without its guard a page is what it would have been without one. */
static void remove_guards(struct area *a)
{
	for (const int *g = a->guards; *g >= 0; g++) {
		char *page = a->addr + *g * CR_PAGE;
		bool ok = true;

		if (madvise(page, CR_PAGE, MADV_GUARD_REMOVE_)) {
			cr_fail("MADV_GUARD_REMOVE: %s", strerror(errno));
			continue;
		}
		if (a == &areas[1])
			ok = cr_check_fill(page, CR_PAGE, file_seed(*g)) < 0;
		else
			for (size_t i = 0; i < CR_PAGE; i++)
				ok &= page[i] == 0;
		if (!ok)
			cr_fail("%s page %d after MADV_GUARD_REMOVE is not %s", a->name, *g,
				a == &areas[1] ? "the file's page" : "zero");
	}
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	setup();
	cr_ready();
	cr_wait_term();
	for (int i = 0; i < 2; i++)
		verify(&areas[i]);
	for (int i = 0; i < 2; i++)
		remove_guards(&areas[i]);
	return cr_report();
}
