/*
 * A sparse mapping: 16 GiB of MAP_NORESERVE anonymous memory with a few
 * hundred scattered written pages (the first and the last among them).
 * After restore the written pages must hold their data, no other page may
 * have been populated (mincore), the holes must read as zero, and the
 * mapping must be the same (VmFlags included: MAP_NORESERVE).
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SPAN (16ULL << 30)
#define NR_PAGES (SPAN / CR_PAGE)
#define NR_WRITTEN 300

static char *base;
static size_t written[NR_WRITTEN];
static unsigned char vec[NR_PAGES];
static char maps_line[512], vmflags[128];

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static bool chosen(size_t p, int n)
{
	for (int j = 0; j < n; j++)
		if (written[j] == p)
			return true;
	return false;
}

/* Distinct page numbers, spread over the span, first and last included. */
static void choose_pages(void)
{
	uint64_t seed = 13;

	written[0] = 0;
	written[1] = NR_PAGES - 1;
	for (int i = 2; i < NR_WRITTEN; i++) {
		size_t p;

		do
			p = cr_mix(seed++) % NR_PAGES;
		while (chosen(p, i));
		written[i] = p;
	}
	qsort(written, NR_WRITTEN, sizeof(written[0]), cmp_size);
}

static size_t resident_pages(void)
{
	size_t n = 0;

	if (mincore(base, SPAN, vec)) {
		cr_fail("mincore: %s", strerror(errno));
		return 0;
	}
	for (size_t p = 0; p < NR_PAGES; p++)
		n += vec[p] & 1;
	return n;
}

static void verify(void)
{
	char line[512] = "", flags[128] = "";
	size_t resident = resident_pages();

	cr_maps_line(base, line, sizeof(line));
	cr_vmflags(base, flags, sizeof(flags));
	if (strcmp(line, maps_line))
		cr_fail("maps '%s', was '%s'", line, maps_line);
	if (strcmp(flags, vmflags))
		cr_fail("VmFlags '%s', were '%s'", flags, vmflags);
	if (resident != NR_WRITTEN)
		cr_fail("%zu pages resident, %d written", resident, NR_WRITTEN);
	for (int i = 0; i < NR_WRITTEN; i++)
		if (cr_check_fill(base + written[i] * CR_PAGE, CR_PAGE, written[i]) >= 0) {
			cr_fail("written page %zu differs", written[i]);
			break;
		}
	/* Holes, sampled; reading maps the zero page, so after mincore. */
	for (int i = 0; i < 2000; i++) {
		size_t p = cr_mix((uint64_t)i + 0xabc) % NR_PAGES;
		const uint64_t *w = (const uint64_t *)(base + p * CR_PAGE);

		if (bsearch(&p, written, NR_WRITTEN, sizeof(written[0]), cmp_size))
			continue;
		for (size_t k = 0; k < CR_PAGE / 8; k++)
			if (w[k]) {
				cr_fail("hole page %zu is not zero", p);
				return;
			}
	}
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	base = mmap(NULL, SPAN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		cr_die("mmap 16 GiB: %s", strerror(errno));
	/* Huge pages would populate 512 pages per write. */
	if (madvise(base, SPAN, MADV_NOHUGEPAGE))
		cr_die("MADV_NOHUGEPAGE: %s", strerror(errno));
	choose_pages();
	for (int i = 0; i < NR_WRITTEN; i++)
		cr_fill(base + written[i] * CR_PAGE, CR_PAGE, written[i]);
	cr_maps_line(base, maps_line, sizeof(maps_line));
	cr_vmflags(base, vmflags, sizeof(vmflags));
	if (resident_pages() != NR_WRITTEN)
		cr_die("%zu pages resident before the checkpoint", resident_pages());
	cr_ready();
	cr_wait_term();
	verify();
	return cr_report();
}
