/*
 * FPU, SSE, AVX and AVX-512 registers. The main thread and two others load
 * every vector register (xmm/ymm/zmm 0-15 or 0-31 and the opmask
 * registers, as far as the CPU and kernel enable them), the x87 stack and
 * control word, MXCSR, a few general registers and EFLAGS.DF with a
 * pattern of their own, then spin in assembly until told to stop, and
 * store everything back: all of it must have come through the checkpoint.
 */
#include "crtest.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define NR_SPINNERS 2

struct fpu_regs {
	uint8_t vec[32][64];	/* xmm/ymm/zmm i at vec[i] */
	uint64_t gpr[9];	/* r8 r9 r10 r11 rbx r12 r13 r14 r15 */
	uint16_t kmask[8];
	uint32_t mxcsr;
	uint16_t fcw;
	uint16_t pad;
	uint64_t rflags;
	uint8_t x87[8][16];	/* st(i) as 80-bit values */
} __attribute__((aligned(64)));

/* The offsets the assembly below uses. */
_Static_assert(offsetof(struct fpu_regs, gpr) == 2048, "gpr");
_Static_assert(offsetof(struct fpu_regs, kmask) == 2120, "kmask");
_Static_assert(offsetof(struct fpu_regs, mxcsr) == 2136, "mxcsr");
_Static_assert(offsetof(struct fpu_regs, fcw) == 2140, "fcw");
_Static_assert(offsetof(struct fpu_regs, rflags) == 2144, "rflags");
_Static_assert(offsetof(struct fpu_regs, x87) == 2152, "x87");

/*
 * void fpu_spin_*(const struct fpu_regs *in, struct fpu_regs *out,
 *                 volatile sig_atomic_t *stop, atomic_int *loaded);
 * Loads IN, sets *LOADED, spins until *STOP, stores OUT. Written as whole
 * functions so the compiler has nothing live in the registers we own; the
 * callee-saved ones and the control words are put back before returning.
 */
__asm__(
	".macro FPU_SPIN name, load, reg, nvec, kmask\n"
	"\t.text\n"
	"\t.globl \\name\n"
	"\t.type \\name, @function\n"
	"\\name:\n"
	"\tpush %rbx; push %r12; push %r13; push %r14; push %r15; push %rbp\n"
	"\tsub $8, %rsp\n"
	"\tstmxcsr 0(%rsp)\n"
	"\tfnstcw 4(%rsp)\n"
	"\tldmxcsr 2136(%rdi)\n"
	"\tfldcw 2140(%rdi)\n"
	"\t.irp i,7,6,5,4,3,2,1,0\n"
	"\tfldt 2152+16*\\i(%rdi)\n"
	"\t.endr\n"
	"\t.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"\t.if \\i < \\nvec\n"
	"\t\\load 64*\\i(%rdi), %\\reg\\i\n"
	"\t.endif\n"
	"\t.endr\n"
	"\t.if \\kmask\n"
	"\t.irp i,0,1,2,3,4,5,6,7\n"
	"\tkmovw 2120+2*\\i(%rdi), %k\\i\n"
	"\t.endr\n"
	"\t.endif\n"
	"\tmov 2048(%rdi), %r8; mov 2056(%rdi), %r9; mov 2064(%rdi), %r10\n"
	"\tmov 2072(%rdi), %r11; mov 2080(%rdi), %rbx; mov 2088(%rdi), %r12\n"
	"\tmov 2096(%rdi), %r13; mov 2104(%rdi), %r14; mov 2112(%rdi), %r15\n"
	"\tmovl $1, (%rcx)\n"
	"\tstd\n"
	"1:\tcmpl $0, (%rdx)\n"
	"\tjne 2f\n"
	"\tpause\n"
	"\tjmp 1b\n"
	"2:\tpushfq\n"
	"\tpop %rax\n"
	"\tcld\n"
	"\tmov %rax, 2144(%rsi)\n"
	"\tmov %r8, 2048(%rsi); mov %r9, 2056(%rsi); mov %r10, 2064(%rsi)\n"
	"\tmov %r11, 2072(%rsi); mov %rbx, 2080(%rsi); mov %r12, 2088(%rsi)\n"
	"\tmov %r13, 2096(%rsi); mov %r14, 2104(%rsi); mov %r15, 2112(%rsi)\n"
	"\t.if \\kmask\n"
	"\t.irp i,0,1,2,3,4,5,6,7\n"
	"\tkmovw %k\\i, 2120+2*\\i(%rsi)\n"
	"\t.endr\n"
	"\t.endif\n"
	"\t.irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"\t.if \\i < \\nvec\n"
	"\t\\load %\\reg\\i, 64*\\i(%rsi)\n"
	"\t.endif\n"
	"\t.endr\n"
	"\t.irp i,0,1,2,3,4,5,6,7\n"
	"\tfstpt 2152+16*\\i(%rsi)\n"
	"\t.endr\n"
	"\tfnstcw 2140(%rsi)\n"
	"\tstmxcsr 2136(%rsi)\n"
	"\tldmxcsr 0(%rsp)\n"
	"\tfldcw 4(%rsp)\n"
	"\tadd $8, %rsp\n"
	"\tpop %rbp; pop %r15; pop %r14; pop %r13; pop %r12; pop %rbx\n"
	"\tret\n"
	"\t.size \\name, .-\\name\n"
	".endm\n"
	"FPU_SPIN fpu_spin_sse, movdqu, xmm, 16, 0\n"
	"FPU_SPIN fpu_spin_avx, vmovdqu, ymm, 16, 0\n"
	"FPU_SPIN fpu_spin_avx512, vmovdqu64, zmm, 32, 1\n"
	".purgem FPU_SPIN\n");

typedef void spin_fn(const struct fpu_regs *in, struct fpu_regs *out,
		     volatile sig_atomic_t *stop, atomic_int *loaded);
spin_fn fpu_spin_sse, fpu_spin_avx, fpu_spin_avx512;

struct level {
	const char *name;
	spin_fn *spin;
	int nvec, vec_bytes;
	bool kmask;
};

static const struct level levels[] = {
	{ "sse", fpu_spin_sse, 16, 16, false },
	{ "avx", fpu_spin_avx, 16, 32, false },
	{ "avx512", fpu_spin_avx512, 32, 64, true },
};
static const struct level *level;

struct spinner {
	const char *name;
	uint64_t seed;
	pthread_t thread;
	struct fpu_regs in, out;
	atomic_int loaded;
	volatile sig_atomic_t *stop;
};

static volatile sig_atomic_t stop_threads;

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* The widest register set both the CPU and the kernel (XCR0) enable. */
static const struct level *pick_level(void)
{
	unsigned a, b, c, d;
	uint64_t xcr0;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
		return &levels[0];
	xcr0 = xgetbv0();
	if ((xcr0 & 0x6) != 0x6)
		return &levels[0];
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) &&
	    (xcr0 & 0xe6) == 0xe6)
		return &levels[2];
	return &levels[1];
}

static void make_pattern(struct spinner *s)
{
	struct fpu_regs *r = &s->in;

	memset(r, 0, sizeof(*r));
	cr_fill(r->vec, sizeof(r->vec), s->seed);
	for (int i = 0; i < 9; i++)
		r->gpr[i] = cr_mix(s->seed ^ (0x100 + i));
	for (int i = 0; i < 8; i++)
		r->kmask[i] = (uint16_t)cr_mix(s->seed ^ (0x200 + i));
	/* Round toward zero, flush to zero, denormals are zero, all masked. */
	r->mxcsr = 0x1f80 | 0x6000 | 0x8000 | 0x0040;
	/* Round toward zero, 53-bit precision, all exceptions masked. */
	r->fcw = 0x0e7f;
	for (int i = 0; i < 8; i++) {
		long double v = (long double)(int64_t)cr_mix(s->seed ^ (0x300 + i)) / 7.0L;

		memcpy(r->x87[i], &v, 10);
	}
}

static void compare(const struct spinner *s)
{
	const struct fpu_regs *in = &s->in, *out = &s->out;
	const char *gpr_names[9] = { "r8", "r9", "r10", "r11", "rbx", "r12", "r13", "r14", "r15" };

	for (int i = 0; i < level->nvec; i++)
		if (memcmp(in->vec[i], out->vec[i], (size_t)level->vec_bytes))
			cr_fail("%s: vector register %d (%d bytes) differs", s->name, i,
				level->vec_bytes);
	for (int i = 0; i < 9; i++)
		if (in->gpr[i] != out->gpr[i])
			cr_fail("%s: %s is %#llx, was %#llx", s->name, gpr_names[i],
				(unsigned long long)out->gpr[i], (unsigned long long)in->gpr[i]);
	for (int i = 0; level->kmask && i < 8; i++)
		if (in->kmask[i] != out->kmask[i])
			cr_fail("%s: k%d is %#x, was %#x", s->name, i, out->kmask[i], in->kmask[i]);
	if (in->mxcsr != out->mxcsr)
		cr_fail("%s: MXCSR %#x, was %#x", s->name, out->mxcsr, in->mxcsr);
	if (in->fcw != out->fcw)
		cr_fail("%s: x87 control word %#x, was %#x", s->name, out->fcw, in->fcw);
	if (!(out->rflags & 0x400))
		cr_fail("%s: EFLAGS.DF lost (rflags %#llx)", s->name,
			(unsigned long long)out->rflags);
	for (int i = 0; i < 8; i++)
		if (memcmp(in->x87[i], out->x87[i], 10))
			cr_fail("%s: x87 st(%d) differs", s->name, i);
}

static void *spinner_main(void *arg)
{
	struct spinner *s = arg;

	level->spin(&s->in, &s->out, s->stop, &s->loaded);
	return NULL;
}

static struct spinner main_spinner = { .name = "main", .seed = 0xf00d };
static struct spinner spinners[NR_SPINNERS] = {
	{ .name = "thread1", .seed = 0x1111 },
	{ .name = "thread2", .seed = 0x2222 },
};

int main(int argc, char **argv)
{
	sigset_t term;

	cr_init(argc, argv);
	level = pick_level();
	cr_log("register set: %s", level->name);
	for (int i = 0; i < NR_SPINNERS; i++) {
		int err;

		make_pattern(&spinners[i]);
		spinners[i].stop = &stop_threads;
		err = pthread_create(&spinners[i].thread, NULL, spinner_main, &spinners[i]);
		if (err)
			cr_die("pthread_create: %s", strerror(err));
	}
	for (int i = 0; i < NR_SPINNERS; i++)
		while (!atomic_load(&spinners[i].loaded))
			cr_sleep_ms(1);
	make_pattern(&main_spinner);
	main_spinner.stop = &cr_term_flag;
	/* Only this thread takes SIGTERM, whose handler ends its spin. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	cr_ready();
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	level->spin(&main_spinner.in, &main_spinner.out, main_spinner.stop, &main_spinner.loaded);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	cr_log("got SIGTERM, verifying");
	cr_check_fds();
	stop_threads = 1;
	for (int i = 0; i < NR_SPINNERS; i++) {
		pthread_join(spinners[i].thread, NULL);
		compare(&spinners[i]);
	}
	compare(&main_spinner);
	return cr_report();
}
