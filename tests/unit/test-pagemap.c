/*
 * PAGEMAP_SCAN through our UAPI copy (uapi/linux/cr-compat.h), with the
 * category settings scan_vma() in src/cr/mem.c uses: the pages it reports
 * are exactly the pages the dump stores, so a kernel (or header) that
 * reports more silently bloats images and one that reports fewer loses data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "linux/cr-compat.h"
#include "util.h"

#include "tap.h"

#define NR_PAGES 64

static int pagemap_fd = -1;
static char tmpdir[64];

struct scan {
	uint64_t anyof, inverted_mask;
	size_t vec_len;		/* regions per ioctl: small values exercise walk_end */
};

/*
 * The engine's loop: repeat from walk_end until the range is covered, and
 * mark every reported page in seen[]. Returns the number of regions or -errno.
 */
static int scan_range(void *base, size_t pages, const struct scan *s, bool *seen, uint64_t *cats)
{
	struct cr_page_region vec[16];
	struct cr_pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)base,
		.end = (uintptr_t)base + pages * PAGE_SIZE,
		.vec = (uintptr_t)vec,
		.vec_len = s->vec_len,
		.category_inverted = s->inverted_mask,
		.category_mask = s->inverted_mask,
		.category_anyof_mask = s->anyof,
		.return_mask = s->anyof,
	};
	int regions = 0;

	*cats = 0;
	while (arg.start < arg.end) {
		long n = ioctl(pagemap_fd, CR_PAGEMAP_SCAN, &arg);

		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			for (uint64_t a = vec[i].start; a < vec[i].end; a += PAGE_SIZE)
				seen[(a - (uintptr_t)base) / PAGE_SIZE] = true;
			*cats |= vec[i].categories;
			regions++;
		}
		if (arg.walk_end <= arg.start)
			break;
		arg.start = arg.walk_end;
	}
	return regions;
}

static int runs(const bool *want, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n; i++)
		r += want[i] && (i == 0 || !want[i - 1]);
	return r;
}

/* Compare seen[] with want[]; name the first page that differs. */
static bool same_pages(const bool *seen, const bool *want, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		if (seen[i] != want[i]) {
			diag("    %s: page %zu %s", what, i, seen[i] ? "reported, not expected" : "missing");
			return false;
		}
	}
	return true;
}

/* On a failure: every region's categories, to tell the kernel's view from ours. */
static void diag_categories(void *base, size_t pages)
{
	struct cr_page_region vec[NR_PAGES];
	struct cr_pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)base,
		.end = (uintptr_t)base + pages * PAGE_SIZE,
		.vec = (uintptr_t)vec,
		.vec_len = NR_PAGES,
		.category_anyof_mask = ~0ull >> (64 - 9),
		.return_mask = ~0ull >> (64 - 9),
	};
	long n = ioctl(pagemap_fd, CR_PAGEMAP_SCAN, &arg);

	for (long i = 0; i < n; i++)
		diag("    pages %zu-%zu: categories %#llx", (size_t)(vec[i].start - arg.start) / PAGE_SIZE,
		     (size_t)(vec[i].end - arg.start) / PAGE_SIZE - 1, (unsigned long long)vec[i].categories);
}

/* At exit, also after a bail out. */
static void remove_tmpdir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/file", tmpdir);
	unlink(path);
	if (rmdir(tmpdir) < 0)
		diag("can't remove %s: %s", tmpdir, strerror(errno));
}

static bool probe(void)
{
	struct cr_pm_scan_arg arg = { .size = sizeof(arg) };
	void *p = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct cr_page_region r;
	bool ok;

	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0 || p == MAP_FAILED)
		bail_out("can't open /proc/self/pagemap or map a page: %s", strerror(errno));
	arg.start = (uintptr_t)p;
	arg.end = arg.start + PAGE_SIZE;
	arg.vec = (uintptr_t)&r;
	arg.vec_len = 1;
	arg.category_anyof_mask = arg.return_mask = CR_PAGE_IS_PRESENT;
	ok = ioctl(pagemap_fd, CR_PAGEMAP_SCAN, &arg) >= 0;
	munmap(p, PAGE_SIZE);
	return ok;
}

/* How this kernel lets us put the shared zero page under an address. */
enum zero_how {
	ZERO_BY_READ,		/* a read fault maps it (the usual case) */
	ZERO_BY_UFFD,		/* only UFFDIO_ZEROPAGE does */
	ZERO_NONE,
};

static int uffd_zero_page(volatile char *page)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .range = { (uintptr_t)page, PAGE_SIZE },
				       .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffdio_zeropage z = { .range = { (uintptr_t)page, PAGE_SIZE } };
	/* User-mode-only descriptors need no privilege (Linux 5.11). */
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	int ret = -1;

	if (fd < 0)
		return -1;
	if (!ioctl(fd, UFFDIO_API, &api) && !ioctl(fd, UFFDIO_REGISTER, &reg) && !ioctl(fd, UFFDIO_ZEROPAGE, &z))
		ret = 0;
	close(fd);
	return ret;
}

static bool is_zero_page(volatile char *page)
{
	struct cr_page_region r;
	struct cr_pm_scan_arg arg = {
		.size = sizeof(arg), .start = (uintptr_t)page, .end = (uintptr_t)page + PAGE_SIZE,
		.vec = (uintptr_t)&r, .vec_len = 1,
		.category_anyof_mask = CR_PAGE_IS_PFNZERO, .return_mask = CR_PAGE_IS_PFNZERO,
	};

	return ioctl(pagemap_fd, CR_PAGEMAP_SCAN, &arg) == 1;
}

static enum zero_how probe_zero_page(void)
{
	volatile char *p = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	enum zero_how how = ZERO_NONE;

	if (p == MAP_FAILED)
		bail_out("mmap: %s", strerror(errno));
	if (p[0] == 0 && is_zero_page(p))
		how = ZERO_BY_READ;
	else if (uffd_zero_page(p + PAGE_SIZE) == 0 && is_zero_page(p + PAGE_SIZE))
		how = ZERO_BY_UFFD;
	munmap((void *)p, 2 * PAGE_SIZE);
	return how;
}

static void map_zero_page(volatile char *page, enum zero_how how)
{
	if (how == ZERO_BY_READ && page[0])
		bail_out("a fresh anonymous page is not zero");
	if (how == ZERO_BY_UFFD && uffd_zero_page(page) < 0)
		bail_out("UFFDIO_ZEROPAGE failed after the probe worked: %s", strerror(errno));
}

static void check_anon(enum zero_how how)
{
	/* Written pages, in runs of different lengths and at both ends. */
	static const int written[] = { 0, 1, 2, 5, 10, 11, 20, 31, 32, 33, 62, 63 };
	/* Read before any write: they map the shared zero page. */
	static const int read_only[] = { 3, 4, 40, 41, 61 };
	volatile char *p = mmap(NULL, NR_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool want[NR_PAGES] = { false }, zero[NR_PAGES] = { false };
	const size_t vec_lens[] = { 16, 2, 1 };

	if (p == MAP_FAILED)
		bail_out("mmap: %s", strerror(errno));
	/* Large folios would make a touch populate its neighbours too. */
	if (madvise((void *)p, NR_PAGES * PAGE_SIZE, MADV_NOHUGEPAGE) < 0)
		diag("MADV_NOHUGEPAGE: %s (THP not built in?)", strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(written); i++) {
		p[written[i] * PAGE_SIZE + 7] = 0x5a;
		want[written[i]] = true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(read_only); i++) {
		map_zero_page(p + read_only[i] * PAGE_SIZE, how);
		zero[read_only[i]] = true;
	}
	for (size_t k = 0; k < ARRAY_SIZE(vec_lens); k++) {
		const struct scan s = { CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED, CR_PAGE_IS_PFNZERO, vec_lens[k] };
		bool seen[NR_PAGES] = { false };
		uint64_t cats;
		int n = scan_range((void *)p, NR_PAGES, &s, seen, &cats);

		if (!ok(n >= 0 && same_pages(seen, want, NR_PAGES, "anon"),
			"anon, %zu regions per call: exactly the written pages, no zero pages", vec_lens[k]))
			diag_categories((void *)p, NR_PAGES);
		is_int(n, runs(want, NR_PAGES), "anon, %zu regions per call: one region per run of pages", vec_lens[k]);
		ok(cats == CR_PAGE_IS_PRESENT, "anon, %zu regions per call: categories are PRESENT only",
		   vec_lens[k]);
	}
	{
		/* Without the PFNZERO filter the read pages do show up: the filter is what hides them. */
		const struct scan s = { CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED, 0, 16 };
		bool seen[NR_PAGES] = { false }, both[NR_PAGES];
		uint64_t cats;

		for (int i = 0; i < NR_PAGES; i++)
			both[i] = want[i] || zero[i];
		ok(scan_range((void *)p, NR_PAGES, &s, seen, &cats) >= 0 && same_pages(seen, both, NR_PAGES, "all"),
		   "anon without the PFNZERO filter: written and zero-page pages");
	}
	munmap((void *)p, NR_PAGES * PAGE_SIZE);
}

static void check_file_private(void)
{
	enum { FILE_PAGES = 8, DIRTY = 3 };
	char path[128], page[PAGE_SIZE];
	const struct scan s = { CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED,
				CR_PAGE_IS_PFNZERO | CR_PAGE_IS_FILE, 4 };
	bool seen[FILE_PAGES] = { false }, want[FILE_PAGES] = { false };
	volatile char *p;
	char sink = 0;
	uint64_t cats;
	int fd, n;

	snprintf(path, sizeof(path), "%s/file", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	memset(page, 'f', sizeof(page));
	for (int i = 0; i < FILE_PAGES; i++)
		if (fd < 0 || write(fd, page, sizeof(page)) != sizeof(page))
			bail_out("can't write %s: %s", path, strerror(errno));
	p = mmap(NULL, FILE_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		bail_out("mmap %s: %s", path, strerror(errno));
	/* Every page mapped from the page cache, one then copied on write. */
	for (int i = 0; i < FILE_PAGES; i++)
		sink += p[i * PAGE_SIZE];
	p[DIRTY * PAGE_SIZE] = 'w';
	want[DIRTY] = true;
	n = scan_range((void *)p, FILE_PAGES, &s, seen, &cats);
	ok(n >= 0 && same_pages(seen, want, FILE_PAGES, "file"),
	   "private file mapping: only the written page is reported");
	ok(cats == CR_PAGE_IS_PRESENT, "private file mapping: its categories are PRESENT only");

	{
		const struct scan all = { CR_PAGE_IS_PRESENT | CR_PAGE_IS_SWAPPED, CR_PAGE_IS_PFNZERO, 4 };
		bool seen_all[FILE_PAGES] = { false }, every[FILE_PAGES];

		memset(every, true, sizeof(every));
		ok(scan_range((void *)p, FILE_PAGES, &all, seen_all, &cats) >= 0 &&
			   same_pages(seen_all, every, FILE_PAGES, "file, FILE not masked"),
		   "private file mapping without the FILE filter: every page cache page too");
	}
	(void)sink;
	munmap((void *)p, FILE_PAGES * PAGE_SIZE);
	close(fd);
	unlink(path);
}

int main(void)
{
	tap_init();
	if (!probe()) {
		skip("PAGEMAP_SCAN: %s (Linux < 6.7)", strerror(errno));
		return done_testing();
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/cr-test-pagemap.XXXXXX", getenv("TMPDIR") ?: "/tmp");
	if (!mkdtemp(tmpdir))
		bail_out("mkdtemp %s: %s", tmpdir, strerror(errno));
	atexit(remove_tmpdir);
	switch (probe_zero_page()) {
	case ZERO_BY_READ:
		check_anon(ZERO_BY_READ);
		break;
	case ZERO_BY_UFFD:
		/* Seen on patched guest kernels; the dump then stores read-only pages. */
		diag("read faults here map fresh pages, not the zero page: zero pages come from UFFDIO_ZEROPAGE");
		check_anon(ZERO_BY_UFFD);
		break;
	case ZERO_NONE:
		skip("neither read faults nor UFFDIO_ZEROPAGE map the zero page here");
		break;
	}
	check_file_private();
	close(pagemap_fd);
	return done_testing();
}
