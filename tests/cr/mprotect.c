/*
 * PROT_NONE and mprotect'ed regions: a written region split by mprotect
 * into read-only, no-access, read-exec and write-only parts, and a large
 * PROT_NONE reservation with a read-write window in the middle. After
 * restore /proc/self/maps must list the same pieces with the same
 * permissions, every access must fault or succeed as before, and the data
 * behind the no-access pages must still be there.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PAGES 16
#define RESERVE_PAGES 256
#define WINDOW_FIRST 100
#define WINDOW_PAGES 8

struct piece {
	size_t first, pages;
	int prot;
};

static const struct piece pieces[] = {
	{ 2, 2, PROT_READ },
	{ 5, 1, PROT_NONE },
	{ 7, 2, PROT_READ | PROT_EXEC },
	{ 10, 1, PROT_WRITE },
	{ 12, 4, PROT_NONE },
};

static char *region, *reserve;
static char maps_text[2][4096];
static int probes[2][PAGES][2];	/* si_code of read, write per page */

/* /proc/self/maps lines of [start, start+len). */
static void maps_of(const char *start, size_t len, char *out, size_t out_len)
{
	static char maps[1 << 20];
	size_t used = 0;

	out[0] = '\0';
	cr_read_file("/proc/self/maps", maps, sizeof(maps));
	for (char *line = maps; *line;) {
		size_t n = strcspn(line, "\n");
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < (uintptr_t)start + len &&
		    hi > (uintptr_t)start && used + n + 2 < out_len)
			used += (size_t)snprintf(out + used, out_len - used, "%.*s\n", (int)n, line);
		line += n + (line[n] != 0);
	}
}

static void probe_all(int (*out)[2])
{
	for (size_t p = 0; p < PAGES; p++) {
		out[p][0] = cr_probe(region + p * CR_PAGE, false, NULL);
		out[p][1] = cr_probe(region + p * CR_PAGE, true, NULL);
	}
}

static void setup(void)
{
	region = mmap(NULL, PAGES * CR_PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	reserve = mmap(NULL, RESERVE_PAGES * CR_PAGE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED || reserve == MAP_FAILED)
		cr_die("mmap: %s", strerror(errno));
	cr_fill(region, PAGES * CR_PAGE, 0x9e91);
	for (size_t i = 0; i < CR_ARRAY_SIZE(pieces); i++)
		if (mprotect(region + pieces[i].first * CR_PAGE, pieces[i].pages * CR_PAGE,
			     pieces[i].prot))
			cr_die("mprotect: %s", strerror(errno));
	if (mprotect(reserve + WINDOW_FIRST * CR_PAGE, WINDOW_PAGES * CR_PAGE,
		     PROT_READ | PROT_WRITE))
		cr_die("mprotect window: %s", strerror(errno));
	cr_fill(reserve + WINDOW_FIRST * CR_PAGE, WINDOW_PAGES * CR_PAGE, 0x1d0);
	maps_of(region, PAGES * CR_PAGE, maps_text[0], sizeof(maps_text[0]));
	maps_of(reserve, RESERVE_PAGES * CR_PAGE, maps_text[1], sizeof(maps_text[1]));
	probe_all(probes[0]);
	if (probes[0][5][0] != SEGV_ACCERR || probes[0][2][1] != SEGV_ACCERR || probes[0][0][1])
		cr_die("unexpected access pattern before the checkpoint");
}

static void verify(void)
{
	char now[4096];

	maps_of(region, PAGES * CR_PAGE, now, sizeof(now));
	if (strcmp(now, maps_text[0]))
		cr_fail("maps of the region:\n%swere:\n%s", now, maps_text[0]);
	maps_of(reserve, RESERVE_PAGES * CR_PAGE, now, sizeof(now));
	if (strcmp(now, maps_text[1]))
		cr_fail("maps of the reservation:\n%swere:\n%s", now, maps_text[1]);
	probe_all(probes[1]);
	for (size_t p = 0; p < PAGES; p++)
		if (probes[1][p][0] != probes[0][p][0] || probes[1][p][1] != probes[0][p][1])
			cr_fail("page %zu: read/write give si_code %d/%d, gave %d/%d", p,
				probes[1][p][0], probes[1][p][1], probes[0][p][0], probes[0][p][1]);
	if (cr_probe(reserve, false, NULL) != SEGV_ACCERR ||
	    cr_probe(reserve + (RESERVE_PAGES - 1) * CR_PAGE, false, NULL) != SEGV_ACCERR)
		cr_fail("the PROT_NONE reservation became accessible");
	if (cr_check_fill(reserve + WINDOW_FIRST * CR_PAGE, WINDOW_PAGES * CR_PAGE, 0x1d0) >= 0)
		cr_fail("the window in the reservation changed");
	/* Data behind every protection, no-access pages included. */
	if (mprotect(region, PAGES * CR_PAGE, PROT_READ))
		cr_fail("mprotect: %s", strerror(errno));
	else if (cr_check_fill(region, PAGES * CR_PAGE, 0x9e91) >= 0)
		cr_fail("region data changed at offset %ld", cr_check_fill(region, PAGES * CR_PAGE, 0x9e91));
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	setup();
	cr_ready();
	cr_wait_term();
	verify();
	return cr_report();
}
