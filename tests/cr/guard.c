/*
 * Guard pages made with PROT_NONE: a no-access page between two written
 * read-write pages inside one allocation, and guard pages at both ends of
 * a thread-stack-like block. After restore the guards must still fault at
 * exactly their address, their neighbours must keep their data.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static char *triple, *block;
static char lines[4][512];

#define BLOCK_PAGES 34	/* guard, 32 data pages, guard */

static void record(void)
{
	cr_maps_line(triple, lines[0], sizeof(lines[0]));
	cr_maps_line(triple + CR_PAGE, lines[1], sizeof(lines[1]));
	cr_maps_line(triple + 2 * CR_PAGE, lines[2], sizeof(lines[2]));
	cr_maps_line(block, lines[3], sizeof(lines[3]));
}

static void expect_fault(const char *what, char *addr)
{
	void *at = NULL;
	int code = cr_probe(addr + 123, false, &at);

	if (code != SEGV_ACCERR || at != addr + 123)
		cr_fail("%s: read gave si_code %d at %p, expected SEGV_ACCERR at %p", what, code,
			at, (void *)(addr + 123));
	code = cr_probe(addr, true, &at);
	if (code != SEGV_ACCERR)
		cr_fail("%s: write gave si_code %d", what, code);
}

static void verify(const char *when)
{
	char now[512];

	for (int i = 0; i < 4; i++) {
		cr_maps_line(i < 3 ? triple + (size_t)i * CR_PAGE : block, now, sizeof(now));
		if (strcmp(now, lines[i]))
			cr_fail("%s: maps '%s', was '%s'", when, now, lines[i]);
	}
	expect_fault("guard between pages", triple + CR_PAGE);
	expect_fault("low guard of the block", block);
	expect_fault("high guard of the block", block + (BLOCK_PAGES - 1) * CR_PAGE);
	if (cr_check_fill(triple, CR_PAGE, 0x111) >= 0 ||
	    cr_check_fill(triple + 2 * CR_PAGE, CR_PAGE, 0x333) >= 0)
		cr_fail("%s: the pages around the guard changed", when);
	if (cr_check_fill(block + CR_PAGE, (BLOCK_PAGES - 2) * CR_PAGE, 0xb10c) >= 0)
		cr_fail("%s: the guarded block changed", when);
	if (cr_probe(triple, true, NULL) || cr_probe(triple + 2 * CR_PAGE, true, NULL) ||
	    cr_probe(block + CR_PAGE, true, NULL) ||
	    cr_probe(block + (BLOCK_PAGES - 2) * CR_PAGE, true, NULL))
		cr_fail("%s: a page next to a guard is not writable", when);
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	triple = mmap(NULL, 3 * CR_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	block = mmap(NULL, BLOCK_PAGES * CR_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (triple == MAP_FAILED || block == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	cr_fill(triple, CR_PAGE, 0x111);
	cr_fill(triple + CR_PAGE, CR_PAGE, 0x222);
	cr_fill(triple + 2 * CR_PAGE, CR_PAGE, 0x333);
	if (mprotect(triple + CR_PAGE, CR_PAGE, PROT_NONE) ||
	    mprotect(block + CR_PAGE, (BLOCK_PAGES - 2) * CR_PAGE, PROT_READ | PROT_WRITE))
		cr_die("mprotect: %s", strerror(errno));
	cr_fill(block + CR_PAGE, (BLOCK_PAGES - 2) * CR_PAGE, 0xb10c);
	record();
	verify("before checkpoint");
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	verify("after restore");
	/* The guard page kept its data too. */
	if (mprotect(triple + CR_PAGE, CR_PAGE, PROT_READ) ||
	    cr_check_fill(triple + CR_PAGE, CR_PAGE, 0x222) >= 0)
		cr_fail("the data behind the guard page changed");
	return cr_report();
}
