/*
 * Private anonymous memory: a fully written region, a sparsely written one
 * whose holes must stay holes, a read-only one, zero pages mapped by reads,
 * a transparent-huge-page region, an mlocked one, and copy-on-write pages
 * shared with a child after fork that each side then partly rewrote. Also
 * regions with MADV_DONTFORK (absent in the child) and MADV_WIPEONFORK
 * (zero in the child). Contents, permissions and VmFlags must survive.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1024UL * 1024)

struct region {
	const char *name;
	size_t size;
	int prot;		/* final protection */
	int advice;		/* madvise before filling, or -1 */
	char *addr;
	char vmflags[128];
	char perms[5];
};

enum { FULL, SPARSE, RDONLY, ZERO, HUGE, LOCKED, COW, DONTFORK, WIPE, NR_REGIONS };

static struct region regions[NR_REGIONS] = {
	[FULL] = { "full", 32 * MIB, PROT_READ | PROT_WRITE, -1 },
	[SPARSE] = { "sparse", 64 * MIB, PROT_READ | PROT_WRITE, MADV_NOHUGEPAGE },
	[RDONLY] = { "read-only", 1 * MIB, PROT_READ, -1 },
	[ZERO] = { "zero-pages", 2 * MIB, PROT_READ | PROT_WRITE, -1 },
	[HUGE] = { "thp", 8 * MIB, PROT_READ | PROT_WRITE, MADV_HUGEPAGE },
	[LOCKED] = { "mlocked", 64 * 1024, PROT_READ | PROT_WRITE, -1 },
	[COW] = { "cow", 16 * CR_PAGE, PROT_READ | PROT_WRITE, -1 },
	[DONTFORK] = { "dontfork", 8 * CR_PAGE, PROT_READ | PROT_WRITE, MADV_DONTFORK },
	[WIPE] = { "wipeonfork", 8 * CR_PAGE, PROT_READ | PROT_WRITE, MADV_WIPEONFORK },
};

#define SPARSE_STEP 7
#define SEED(r) (0x1000000ULL * (uint64_t)((r) + 1))
#define COW_CHILD_SEED 0xc41dULL
#define COW_PARENT_SEED 0x9a7eULL

static void map_region(struct region *r)
{
	r->addr = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->addr == MAP_FAILED)
		cr_die("mmap %s: %s", r->name, strerror(errno));
	if (r->advice >= 0 && madvise(r->addr, r->size, r->advice))
		cr_die("madvise %s: %s", r->name, strerror(errno));
}

static void fill_regions(void)
{
	volatile char sink = 0;

	for (int i = 0; i < NR_REGIONS; i++) {
		struct region *r = &regions[i];

		if (i == SPARSE) {
			for (size_t p = 0; p < r->size / CR_PAGE; p += SPARSE_STEP)
				cr_fill(r->addr + p * CR_PAGE, CR_PAGE, SEED(i) + p);
		} else if (i == ZERO) {
			for (size_t off = 0; off < r->size; off += CR_PAGE)
				sink += r->addr[off];
		} else {
			cr_fill(r->addr, r->size, SEED(i));
		}
	}
	(void)sink;
	if (mprotect(regions[RDONLY].addr, regions[RDONLY].size, PROT_READ))
		cr_die("mprotect: %s", strerror(errno));
	if (mlock(regions[LOCKED].addr, regions[LOCKED].size))
		cr_die("mlock: %s", strerror(errno));
}

static void record_vmas(void)
{
	for (int i = 0; i < NR_REGIONS; i++) {
		cr_vmflags(regions[i].addr, regions[i].vmflags, sizeof(regions[i].vmflags));
		cr_maps_perms(regions[i].addr, regions[i].perms);
	}
}

static void check_vmas(const char *who, int skip)
{
	for (int i = 0; i < NR_REGIONS; i++) {
		char flags[128] = "", perms[5];

		if (i == skip)
			continue;
		cr_vmflags(regions[i].addr, flags, sizeof(flags));
		cr_maps_perms(regions[i].addr, perms);
		if (strcmp(flags, regions[i].vmflags))
			cr_fail("%s: %s: VmFlags '%s', were '%s'", who, regions[i].name, flags,
				regions[i].vmflags);
		if (strcmp(perms, regions[i].perms))
			cr_fail("%s: %s: permissions '%s', were '%s'", who, regions[i].name, perms,
				regions[i].perms);
	}
}

static bool is_zero(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Holes of the sparse region must not have been filled in. Reading a hole
 * maps the zero page, which mincore counts: look at them last. */
static void check_sparse(const char *who, bool read_holes)
{
	struct region *r = &regions[SPARSE];
	size_t pages = r->size / CR_PAGE, resident = 0, written = 0;
	static unsigned char vec[64 * MIB / CR_PAGE];

	if (mincore(r->addr, r->size, vec))
		cr_fail("mincore: %s", strerror(errno));
	for (size_t p = 0; p < pages; p++)
		resident += vec[p] & 1;
	for (size_t p = 0; p < pages; p++) {
		char *page = r->addr + p * CR_PAGE;

		if (p % SPARSE_STEP == 0) {
			written++;
			if (cr_check_fill(page, CR_PAGE, SEED(SPARSE) + p) >= 0) {
				cr_fail("%s: sparse page %zu differs", who, p);
				return;
			}
		} else if (read_holes && !is_zero(page, CR_PAGE)) {
			cr_fail("%s: sparse hole page %zu is not zero", who, p);
			return;
		}
	}
	if (resident > written + 16)
		cr_fail("%s: %zu pages of the sparse region resident, %zu written", who, resident,
			written);
}

static void check_plain(const char *who, int i)
{
	struct region *r = &regions[i];
	long bad = cr_check_fill(r->addr, r->size, SEED(i));

	if (bad >= 0)
		cr_fail("%s: %s differs at offset %ld", who, r->name, bad);
}

/* Pages 0-3 rewritten by the child, 4-7 by the parent, the rest shared. */
static void check_cow(const char *who, bool child)
{
	char *base = regions[COW].addr;

	for (size_t p = 0; p < 16; p++) {
		uint64_t seed = SEED(COW) + p * CR_PAGE / 8;

		if (p < 4 && child)
			seed = COW_CHILD_SEED + p;
		else if (p >= 4 && p < 8 && !child)
			seed = COW_PARENT_SEED + p;
		if (cr_check_fill(base + p * CR_PAGE, CR_PAGE, seed) >= 0)
			cr_fail("%s: copy-on-write page %zu differs", who, p);
	}
}

static void rewrite_cow(bool child)
{
	for (size_t p = child ? 0 : 4; p < (child ? 4u : 8u); p++)
		cr_fill(regions[COW].addr + p * CR_PAGE, CR_PAGE,
			(child ? COW_CHILD_SEED : COW_PARENT_SEED) + p);
}

static void check_all(const char *who, bool child, bool final)
{
	check_vmas(who, child ? DONTFORK : -1);
	check_sparse(who, final);
	check_plain(who, FULL);
	check_plain(who, RDONLY);
	check_plain(who, HUGE);
	check_plain(who, LOCKED);
	if (!is_zero(regions[ZERO].addr, regions[ZERO].size))
		cr_fail("%s: zero-page region is not zero", who);
	check_cow(who, child);
	if (child) {
		char line[256];

		if (cr_maps_line(regions[DONTFORK].addr, line, sizeof(line)))
			cr_fail("child: MADV_DONTFORK region is mapped: %s", line);
		if (!is_zero(regions[WIPE].addr, regions[WIPE].size))
			cr_fail("child: MADV_WIPEONFORK region is not zero");
	} else {
		check_plain(who, DONTFORK);
		check_plain(who, WIPE);
	}
}

static void __attribute__((noreturn)) child(void)
{
	rewrite_cow(true);
	record_vmas();
	cr_child_ready();
	cr_wait_term();
	check_all("child", true, true);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	for (int i = 0; i < NR_REGIONS; i++)
		map_region(&regions[i]);
	fill_regions();
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	rewrite_cow(false);
	record_vmas();
	check_all("parent before checkpoint", false, false);
	if (cr_failures())
		cr_die("setup checks failed");
	cr_ready();
	cr_wait_term();
	check_all("parent", false, true);
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
