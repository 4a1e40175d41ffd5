/*
 * Shared anonymous memory (MAP_SHARED | MAP_ANONYMOUS) shared by a parent
 * and a child across fork, with pages written by each side and pages never
 * touched, a second mapping of the same pages in the parent (mremap with
 * old size 0), a view the child made read-only, and a shared region only
 * the child has. After restore both must see the same pages: contents
 * checked, then a write by one side must reach the other.
 */
#include "crtest.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SHARED_PAGES 1024
#define PARENT_PAGES 512	/* pages 0..511 written by the parent */
#define CHILD_PAGE 600		/* written by the child */
#define CTRL_PAGE 1023		/* handshake words */
#define SMALL_PAGES 16

static char *shared, *alias, *small, *own;
static char shared_perms[5], alias_perms[5], small_perms[5];

struct ctrl {
	_Atomic uint64_t ping, pong;
};

static struct ctrl *ctrl(void)
{
	return (struct ctrl *)(shared + CTRL_PAGE * CR_PAGE);
}

static void *map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		cr_die("mmap shared: %s", strerror(errno));
	return p;
}

static bool zero_page(const char *p)
{
	for (size_t i = 0; i < CR_PAGE; i++)
		if (p[i])
			return false;
	return true;
}

static void check_shared(const char *who, const char *base)
{
	for (size_t p = 0; p < SHARED_PAGES; p++) {
		const char *page = base + p * CR_PAGE;
		bool ok;

		if (p < PARENT_PAGES)
			ok = cr_check_fill(page, CR_PAGE, 0x5000 + p * 1000) < 0;
		else if (p == CHILD_PAGE)
			ok = cr_check_fill(page, CR_PAGE, 0xc000) < 0;
		else if (p == CTRL_PAGE)
			ok = true;
		else
			ok = zero_page(page);
		if (!ok) {
			cr_fail("%s: shared page %zu differs", who, p);
			return;
		}
	}
}

static void check_perms(const char *who, const void *addr, const char *want)
{
	char perms[5];

	cr_maps_perms(addr, perms);
	if (strcmp(perms, want))
		cr_fail("%s: mapping at %p is '%s', was '%s'", who, addr, perms, want);
}

static bool wait_for(_Atomic uint64_t *word, uint64_t value)
{
	for (int i = 0; i < 1000; i++) {
		if (atomic_load(word) == value)
			return true;
		cr_sleep_ms(10);
	}
	return false;
}

static void __attribute__((noreturn)) child(void)
{
	own = map_shared(SMALL_PAGES * CR_PAGE);
	cr_fill(own, SMALL_PAGES * CR_PAGE, 0x0e0e);
	cr_fill(shared + CHILD_PAGE * CR_PAGE, CR_PAGE, 0xc000);
	if (mprotect(small, SMALL_PAGES * CR_PAGE, PROT_READ))
		cr_die("mprotect: %s", strerror(errno));
	cr_maps_perms(small, small_perms);
	cr_child_ready();
	cr_wait_term();
	check_perms("child", shared, shared_perms);
	check_perms("child", small, small_perms);
	check_shared("child", shared);
	if (cr_check_fill(small, SMALL_PAGES * CR_PAGE, 0x5a5a) >= 0)
		cr_fail("child: read-only view of the small region differs");
	if (cr_check_fill(own, SMALL_PAGES * CR_PAGE, 0x0e0e) >= 0)
		cr_fail("child: its own shared region differs");
	/* The parent pings once it has checked everything. */
	if (!wait_for(&ctrl()->ping, 0x1111))
		cr_fail("child: no ping from the parent through shared memory");
	atomic_store(&ctrl()->pong, 0x2222);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	shared = map_shared(SHARED_PAGES * CR_PAGE);
	small = map_shared(SMALL_PAGES * CR_PAGE);
	for (size_t p = 0; p < PARENT_PAGES; p++)
		cr_fill(shared + p * CR_PAGE, CR_PAGE, 0x5000 + p * 1000);
	cr_fill(small, SMALL_PAGES * CR_PAGE, 0x5a5a);
	cr_maps_perms(shared, shared_perms);
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	alias = mremap(shared, 0, SHARED_PAGES * CR_PAGE, MREMAP_MAYMOVE);
	if (alias == MAP_FAILED)
		cr_die("mremap alias: %s", strerror(errno));
	cr_maps_perms(alias, alias_perms);
	cr_maps_perms(small, small_perms);
	check_shared("parent before checkpoint", alias);
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	check_perms("parent", shared, shared_perms);
	check_perms("parent", alias, alias_perms);
	check_perms("parent", small, small_perms);
	check_shared("parent", shared);
	check_shared("parent alias", alias);
	if (cr_check_fill(small, SMALL_PAGES * CR_PAGE, 0x5a5a) >= 0)
		cr_fail("parent: small region differs");
	/* A write through one mapping shows in the other at once. */
	alias[CTRL_PAGE * CR_PAGE + 100] = 0x42;
	if (shared[CTRL_PAGE * CR_PAGE + 100] != 0x42)
		cr_fail("parent: the two mappings of the region are no longer the same pages");
	atomic_store(&ctrl()->ping, 0x1111);
	kill(kid, SIGTERM);
	if (!wait_for(&((struct ctrl *)(alias + CTRL_PAGE * CR_PAGE))->pong, 0x2222))
		cr_fail("parent: no pong from the child through shared memory");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
