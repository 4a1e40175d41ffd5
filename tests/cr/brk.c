/*
 * Heap and brk: malloc'd blocks (some freed again, leaving the allocator's
 * free lists in the heap) and a region grown with sbrk. After restore the
 * break must be where it was, the [heap] mapping and start_brk the same,
 * the data intact, and brk must still move both ways.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NR_BLOCKS 200
#define SBRK_BYTES ((1 << 20) + 123)

static char *blocks[NR_BLOCKS];
static size_t sizes[NR_BLOCKS];
static char *grown;
static void *brk_end;
static char heap_line[512];
static unsigned long start_brk;

static unsigned long stat_start_brk(void)
{
	char text[1024], *p;
	unsigned long v = 0;

	cr_read_file("/proc/self/stat", text, sizeof(text));
	p = strrchr(text, ')');
	/* start_brk is field 47; field 3 follows the ')'. */
	for (int field = 2; p && field < 47; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%lu", &v) != 1)
		cr_die("can't parse start_brk from /proc/self/stat");
	return v;
}

static void setup_heap(void)
{
	for (int i = 0; i < NR_BLOCKS; i++) {
		sizes[i] = 16 + (size_t)(cr_mix((uint64_t)i) % 4000);
		blocks[i] = malloc(sizes[i]);
		if (!blocks[i])
			cr_die("malloc failed");
		cr_fill(blocks[i], sizes[i] & ~7UL, 0xb10c000 + (uint64_t)i);
	}
	for (int i = 0; i < NR_BLOCKS; i += 3) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
	grown = sbrk(SBRK_BYTES);
	if (grown == (void *)-1)
		cr_die("sbrk: %s", strerror(errno));
	cr_fill(grown, SBRK_BYTES & ~7UL, 0x5b4c);
	brk_end = sbrk(0);
	if (!cr_maps_line(grown, heap_line, sizeof(heap_line)) || !strstr(heap_line, "[heap]"))
		cr_die("sbrk memory is not in [heap]: %s", heap_line);
	start_brk = stat_start_brk();
}

static void check_heap(void)
{
	char line[512] = "";
	char *more;

	if (sbrk(0) != brk_end)
		cr_fail("break at %p, was %p", sbrk(0), brk_end);
	CR_EXPECT_EQ("start_brk", stat_start_brk(), start_brk);
	cr_maps_line(grown, line, sizeof(line));
	if (strcmp(line, heap_line))
		cr_fail("[heap] is '%s', was '%s'", line, heap_line);
	if (cr_check_fill(grown, SBRK_BYTES & ~7UL, 0x5b4c) >= 0)
		cr_fail("sbrk'd memory changed");
	for (int i = 0; i < NR_BLOCKS; i++)
		if (blocks[i] && cr_check_fill(blocks[i], sizes[i] & ~7UL, 0xb10c000 + (uint64_t)i) >= 0)
			cr_fail("malloc'd block %d changed", i);
	more = sbrk(64 << 10);
	if (more != brk_end) {
		cr_fail("sbrk(64 KiB) gave %p, expected %p", (void *)more, brk_end);
		return;
	}
	memset(more, 0x5a, 64 << 10);
	if (sbrk(-(64 << 10)) == (void *)-1 || sbrk(0) != brk_end)
		cr_fail("can't shrink the break back to %p", brk_end);
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	setup_heap();
	cr_ready();
	cr_wait_term();
	check_heap();
	/* The allocator must still work on the restored heap. */
	for (int i = 0; i < NR_BLOCKS; i++)
		free(blocks[i]);
	free(malloc(100000));
	return cr_report();
}
