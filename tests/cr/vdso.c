/*
 * The vDSO area, laid out by this kernel as [vvar], [vvar_vclock] and
 * [vdso] (never assumed: whatever special mappings exist are compared).
 * After restore the lines must be identical, the vDSO code the same bytes
 * at the same address (AT_SYSINFO_EHDR), and time through the vDSO (called
 * directly and through glibc's cached pointers) must work, agree with the
 * system call and have advanced.
 */
#include "crtest.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int clock_gettime_fn(clockid_t, struct timespec *);

static char special[1024];	/* the [v...] lines of /proc/self/maps */
static uintptr_t vdso_base;
static size_t vdso_size;
static uint64_t vdso_hash;
static clock_gettime_fn *vdso_clock_gettime;
static struct timespec before_mono, before_real;

static void read_special(char *out, size_t len)
{
	static char maps[1 << 20];
	size_t used = 0;

	out[0] = '\0';
	cr_read_file("/proc/self/maps", maps, sizeof(maps));
	for (char *line = maps; *line;) {
		size_t n = strcspn(line, "\n");
		char *name = memchr(line, '[', n);

		if (name && name[1] == 'v' && used + n + 2 < len)
			used += (size_t)snprintf(out + used, len - used, "%.*s\n", (int)n, line);
		line += n + (line[n] != 0);
	}
}

static size_t mapping_size(uintptr_t addr)
{
	char line[512];
	unsigned long lo = 0, hi = 0;

	if (!cr_maps_line((void *)addr, line, sizeof(line)) || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
		return 0;
	return hi - lo;
}

/* __vdso_clock_gettime from the vDSO's dynamic symbol table. */
static void *vdso_symbol(const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)vdso_base;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(vdso_base + eh->e_shoff);
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(vdso_base + eh->e_phoff);
	uintptr_t load = vdso_base;

	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD) {
			load = vdso_base - ph[i].p_vaddr;
			break;
		}
	for (int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Sym *sym;
		const char *strtab;

		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		sym = (const Elf64_Sym *)(vdso_base + sh[i].sh_offset);
		strtab = (const char *)(vdso_base + sh[sh[i].sh_link].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof(*sym); k++)
			if (!strcmp(strtab + sym[k].st_name, name) && sym[k].st_value)
				return (void *)(load + sym[k].st_value);
	}
	return NULL;
}

static long ts_diff_ms(struct timespec a, struct timespec b)
{
	return (a.tv_sec - b.tv_sec) * 1000L + (a.tv_nsec - b.tv_nsec) / 1000000L;
}

/* vDSO time must sit between two system calls, within a second. */
static void check_clock(clockid_t clock, const char *name, struct timespec *out)
{
	struct timespec s1, v, g, s2;

	syscall(SYS_clock_gettime, clock, &s1);
	if (vdso_clock_gettime(clock, &v))
		cr_fail("%s: vDSO clock_gettime failed", name);
	clock_gettime(clock, &g);
	syscall(SYS_clock_gettime, clock, &s2);
	if (ts_diff_ms(v, s1) < 0 || ts_diff_ms(s2, v) < 0 || ts_diff_ms(s2, s1) > 1000)
		cr_fail("%s: vDSO %ld.%09ld outside syscalls %ld.%09ld .. %ld.%09ld", name,
			(long)v.tv_sec, v.tv_nsec, (long)s1.tv_sec, s1.tv_nsec, (long)s2.tv_sec,
			s2.tv_nsec);
	if (ts_diff_ms(g, v) < 0 || ts_diff_ms(s2, g) < 0)
		cr_fail("%s: glibc clock_gettime %ld.%09ld out of order", name, (long)g.tv_sec,
			g.tv_nsec);
	if (out)
		*out = v;
}

static void setup(void)
{
	vdso_base = getauxval(AT_SYSINFO_EHDR);
	if (!vdso_base)
		cr_die("no AT_SYSINFO_EHDR");
	vdso_size = mapping_size(vdso_base);
	vdso_clock_gettime = (clock_gettime_fn *)vdso_symbol("__vdso_clock_gettime");
	if (!vdso_size || !vdso_clock_gettime)
		cr_die("vDSO at %#lx: size %zu, no __vdso_clock_gettime", (unsigned long)vdso_base,
		       vdso_size);
	vdso_hash = cr_hash((void *)vdso_base, vdso_size, 0);
	read_special(special, sizeof(special));
	if (!strstr(special, "[vdso]"))
		cr_die("no [vdso] in /proc/self/maps");
	check_clock(CLOCK_MONOTONIC, "CLOCK_MONOTONIC", &before_mono);
	check_clock(CLOCK_REALTIME, "CLOCK_REALTIME", &before_real);
}

static void verify(void)
{
	char now[1024];
	struct timespec mono, real;
	struct timeval tv;

	read_special(now, sizeof(now));
	if (strcmp(now, special))
		cr_fail("vDSO area:\n%swas:\n%s", now, special);
	if (getauxval(AT_SYSINFO_EHDR) != vdso_base)
		cr_fail("AT_SYSINFO_EHDR %#lx, was %#lx", getauxval(AT_SYSINFO_EHDR),
			(unsigned long)vdso_base);
	if (mapping_size(vdso_base) != vdso_size ||
	    cr_hash((void *)vdso_base, vdso_size, 0) != vdso_hash)
		cr_fail("the vDSO code at %#lx changed", (unsigned long)vdso_base);
	check_clock(CLOCK_MONOTONIC, "CLOCK_MONOTONIC", &mono);
	check_clock(CLOCK_REALTIME, "CLOCK_REALTIME", &real);
	check_clock(CLOCK_BOOTTIME, "CLOCK_BOOTTIME", NULL);
	check_clock(CLOCK_MONOTONIC_COARSE, "CLOCK_MONOTONIC_COARSE", NULL);
	if (ts_diff_ms(mono, before_mono) <= 0 || ts_diff_ms(real, before_real) <= 0)
		cr_fail("vDSO time did not advance across the checkpoint");
	gettimeofday(&tv, NULL);
	if (labs(tv.tv_sec - real.tv_sec) > 1 || labs(time(NULL) - real.tv_sec) > 1)
		cr_fail("gettimeofday/time disagree with clock_gettime");
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
