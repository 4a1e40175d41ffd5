/*
 * Shared file mappings (MAP_SHARED): written through by the parent and by
 * a child, a read-only shared view of part of the file, descriptors closed.
 * After restore the file must hold every write made through the mappings,
 * the mappings must show the file, and new writes must go both ways: a
 * store through the mapping reaches the file and the other process, a
 * pwrite to the file shows in the mapping.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_PAGES 16
#define INIT_SEED(p) (0x1a170000ULL + (uint64_t)(p) * 1000)
#define PARENT_SEED(p) (0x9a7e0000ULL + (uint64_t)(p) * 1000)
#define CHILD_SEED(p) (0xc41d0000ULL + (uint64_t)(p) * 1000)
#define CTRL_PAGE 15

static char path[PATH_MAX];
static char *rw, *ro;
static char rw_line[512], ro_line[512];

static uint64_t expected_seed(size_t p)
{
	if (p < 4)
		return PARENT_SEED(p);
	if (p == 8 || p == 9)
		return CHILD_SEED(p);
	return INIT_SEED(p);
}

static void create_and_map(void)
{
	static char page[CR_PAGE];
	int fd;

	cr_path(path, sizeof(path), "shared.dat");
	fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0)
		cr_die("create '%s': %s", path, strerror(errno));
	for (size_t p = 0; p < FILE_PAGES; p++) {
		cr_fill(page, CR_PAGE, p == CTRL_PAGE ? 0 : INIT_SEED(p));
		if (p == CTRL_PAGE)
			memset(page, 0, CR_PAGE);
		if (pwrite(fd, page, CR_PAGE, (off_t)(p * CR_PAGE)) != (ssize_t)CR_PAGE)
			cr_die("write '%s': %s", path, strerror(errno));
	}
	rw = mmap(NULL, FILE_PAGES * CR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ro = mmap(NULL, 4 * CR_PAGE, PROT_READ, MAP_SHARED, fd, 12 * CR_PAGE);
	if (rw == MAP_FAILED || ro == MAP_FAILED)
		cr_die("mmap '%s': %s", path, strerror(errno));
	close(fd);
}

static void check_pages(const char *who)
{
	static char page[CR_PAGE];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char line[512] = "";

	cr_maps_line(rw, line, sizeof(line));
	if (strcmp(line, rw_line))
		cr_fail("%s: maps line '%s', was '%s'", who, line, rw_line);
	cr_maps_line(ro, line, sizeof(line));
	if (strcmp(line, ro_line))
		cr_fail("%s: maps line '%s', was '%s'", who, line, ro_line);
	if (fd < 0) {
		cr_fail("%s: open '%s': %s", who, path, strerror(errno));
		return;
	}
	for (size_t p = 0; p < CTRL_PAGE; p++) {
		if (pread(fd, page, CR_PAGE, (off_t)(p * CR_PAGE)) != (ssize_t)CR_PAGE ||
		    cr_check_fill(page, CR_PAGE, expected_seed(p)) >= 0)
			cr_fail("%s: file page %zu does not hold what was written", who, p);
		if (cr_check_fill(rw + p * CR_PAGE, CR_PAGE, expected_seed(p)) >= 0)
			cr_fail("%s: mapped page %zu differs", who, p);
		if (p >= 12 && cr_check_fill(ro + (p - 12) * CR_PAGE, CR_PAGE, expected_seed(p)) >= 0)
			cr_fail("%s: read-only view of page %zu differs", who, p);
	}
	close(fd);
}

/* Store through the mapping, read with pread; pwrite, read the mapping. */
static void check_coherent(const char *who, size_t page, uint64_t seed)
{
	static char buf[CR_PAGE];
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		cr_fail("%s: open '%s': %s", who, path, strerror(errno));
		return;
	}
	cr_fill(rw + page * CR_PAGE, CR_PAGE, seed);
	if (pread(fd, buf, CR_PAGE, (off_t)(page * CR_PAGE)) != (ssize_t)CR_PAGE ||
	    cr_check_fill(buf, CR_PAGE, seed) >= 0)
		cr_fail("%s: a store through the mapping did not reach the file", who);
	cr_fill(buf, CR_PAGE, seed + 1);
	if (pwrite(fd, buf, CR_PAGE, (off_t)((page + 1) * CR_PAGE)) != (ssize_t)CR_PAGE ||
	    cr_check_fill(rw + (page + 1) * CR_PAGE, CR_PAGE, seed + 1) >= 0)
		cr_fail("%s: a pwrite to the file does not show in the mapping", who);
	close(fd);
}

static _Atomic uint64_t *ctrl_word(int i)
{
	return (_Atomic uint64_t *)(rw + CTRL_PAGE * CR_PAGE) + i;
}

static bool wait_for(int i, uint64_t value)
{
	for (int n = 0; n < 1000; n++) {
		if (atomic_load(ctrl_word(i)) == value)
			return true;
		cr_sleep_ms(10);
	}
	return false;
}

static void __attribute__((noreturn)) child(void)
{
	for (size_t p = 8; p < 10; p++)
		cr_fill(rw + p * CR_PAGE, CR_PAGE, CHILD_SEED(p));
	cr_child_ready();
	cr_wait_term();
	check_pages("child");
	atomic_store(ctrl_word(2), 0x3333);
	check_coherent("child", 10, 0xc0c0);
	if (!wait_for(0, 0x1111))
		cr_fail("child: the parent's store through its mapping never arrived");
	atomic_store(ctrl_word(1), 0x2222);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	create_and_map();
	cr_maps_line(rw, rw_line, sizeof(rw_line));
	cr_maps_line(ro, ro_line, sizeof(ro_line));
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	for (size_t p = 0; p < 4; p++)
		cr_fill(rw + p * CR_PAGE, CR_PAGE, PARENT_SEED(p));
	check_pages("parent before checkpoint");
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	check_pages("parent");
	/* The child checks the same pages before anyone writes again. */
	kill(kid, SIGTERM);
	if (!wait_for(2, 0x3333))
		cr_fail("parent: the child never reported its checks through its mapping");
	check_coherent("parent", 5, 0x9090);
	atomic_store(ctrl_word(0), 0x1111);
	if (!wait_for(1, 0x2222))
		cr_fail("parent: the child's store through its mapping never arrived");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
