/*
 * A minimal TAP producer for the unit tests, read by automake's tap-driver.sh.
 * The plan is printed last (done_testing()) because several tests run one
 * check per corruption or per kernel object, whose number is only known at
 * run time; TAP allows the plan as the final line.
 */
#ifndef CR_TAP_H
#define CR_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count;
static int tap_failed;

/* Line-buffered, so that forked children never repeat a half-flushed line. */
static inline void tap_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static inline bool tap_vok(bool cond, const char *fmt, va_list ap)
{
	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	return cond;
}

static inline bool __attribute__((format(printf, 2, 3))) ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vok(cond, fmt, ap);
	va_end(ap);
	return cond;
}

/* Integers of any width go through long long; the diagnostic shows both sides. */
#define is_int(got, want, ...)                                                     \
	({                                                                         \
		long long __g = (long long)(got), __w = (long long)(want);         \
		bool __r = ok(__g == __w, __VA_ARGS__);                            \
		if (!__r)                                                          \
			diag("    got: %lld (%#llx), expected: %lld (%#llx)", __g,  \
			     (unsigned long long)__g, __w, (unsigned long long)__w);   \
		__r;                                                               \
	})

#define is_str(got, want, ...)                                                     \
	({                                                                         \
		const char *__g = (got), *__w = (want);                            \
		bool __r = ok(__g && __w && !strcmp(__g, __w), __VA_ARGS__);       \
		if (!__r)                                                          \
			diag("    got: '%s', expected: '%s'", __g ? __g : "(null)",  \
			     __w ? __w : "(null)");                                    \
		__r;                                                               \
	})

static inline void __attribute__((format(printf, 1, 2))) skip(const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	printf("ok %d # SKIP ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

/* The setup itself failed: nothing later can be trusted. */
static inline void __attribute__((format(printf, 1, 2), noreturn)) bail_out(const char *fmt, ...)
{
	va_list ap;

	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	exit(1);
}

/*
 * Print the plan and return the exit status: 0 even with failures, since the
 * driver counts "not ok" lines and treats a non-zero exit as an extra ERROR.
 */
static inline int done_testing(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		diag("%d of %d checks failed", tap_failed, tap_count);
	fflush(stdout);
	return 0;
}

#endif
