/*
 * mm fields that restore sets with PR_SET_MM_MAP: code, data, brk, stack,
 * argument and environment boundaries (/proc/self/stat fields 26-28 and
 * 45-51), the auxiliary vector, the exe link, and the argument and
 * environment areas, one argument of which was rewritten in place (as
 * setproctitle does) so /proc/self/cmdline differs from what exec saw.
 */
#include "crtest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

static const int stat_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
static const char *const stat_names[] = { "start_code", "end_code", "start_stack",
					  "start_data", "end_data", "start_brk", "arg_start",
					  "arg_end", "env_start", "env_end" };

struct mm_state {
	unsigned long fields[CR_ARRAY_SIZE(stat_fields)];
	char auxv[1024];
	size_t auxv_len;
	char exe[PATH_MAX];
	dev_t exe_dev;
	ino_t exe_ino;
	char cmdline[4096], environ_[65536];
	size_t cmdline_len, environ_len;
	unsigned char at_random[16];
};

static struct mm_state was;

static void read_stat_fields(unsigned long *out)
{
	char text[1024], *p;
	int field = 2;

	cr_read_file("/proc/self/stat", text, sizeof(text));
	p = strrchr(text, ')');
	for (size_t i = 0; i < CR_ARRAY_SIZE(stat_fields); i++) {
		while (p && field < stat_fields[i]) {
			p = strchr(p + 1, ' ');
			field++;
		}
		if (!p || sscanf(p + 1, "%lu", &out[i]) != 1)
			cr_die("can't parse field %d of /proc/self/stat", stat_fields[i]);
	}
}

static void read_state(struct mm_state *s)
{
	struct stat st;
	ssize_t n;

	read_stat_fields(s->fields);
	s->auxv_len = cr_read_file("/proc/self/auxv", s->auxv, sizeof(s->auxv));
	n = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
	s->exe[n > 0 ? n : 0] = '\0';
	if (stat("/proc/self/exe", &st))
		cr_fail("stat /proc/self/exe: %s", strerror(errno));
	s->exe_dev = st.st_dev;
	s->exe_ino = st.st_ino;
	s->cmdline_len = cr_read_file("/proc/self/cmdline", s->cmdline, sizeof(s->cmdline));
	s->environ_len = cr_read_file("/proc/self/environ", s->environ_, sizeof(s->environ_));
	memcpy(s->at_random, (void *)getauxval(AT_RANDOM), 16);
}

static void compare(void)
{
	static struct mm_state now;

	read_state(&now);
	for (size_t i = 0; i < CR_ARRAY_SIZE(stat_fields); i++)
		if (now.fields[i] != was.fields[i])
			cr_fail("%s is %#lx, was %#lx", stat_names[i], now.fields[i], was.fields[i]);
	if (now.auxv_len != was.auxv_len || memcmp(now.auxv, was.auxv, was.auxv_len))
		cr_fail("/proc/self/auxv differs (%zu bytes, were %zu)", now.auxv_len, was.auxv_len);
	if (strcmp(now.exe, was.exe) || now.exe_dev != was.exe_dev || now.exe_ino != was.exe_ino)
		cr_fail("exe link '%s' (inode %lu), was '%s' (inode %lu)", now.exe,
			(unsigned long)now.exe_ino, was.exe, (unsigned long)was.exe_ino);
	if (now.cmdline_len != was.cmdline_len || memcmp(now.cmdline, was.cmdline, was.cmdline_len))
		cr_fail("/proc/self/cmdline differs");
	if (now.environ_len != was.environ_len || memcmp(now.environ_, was.environ_, was.environ_len))
		cr_fail("/proc/self/environ differs");
	if (memcmp(now.at_random, was.at_random, 16))
		cr_fail("the AT_RANDOM bytes changed");
}

/* Upper-cases the extra arguments in place; they are in the arg area. */
static void rewrite_args(int argc, char **argv)
{
	for (int i = 2; i < argc; i++)
		for (char *c = argv[i]; *c; c++)
			*c = (char)toupper((unsigned char)*c);
}

int main(int argc, char **argv)
{
	cr_init(argc, argv);
	rewrite_args(argc, argv);
	read_state(&was);
	if (argc > 2 && !memmem(was.cmdline, was.cmdline_len, argv[2], strlen(argv[2])))
		cr_die("/proc/self/cmdline does not show the rewritten argument");
	cr_ready();
	cr_wait_term();
	compare();
	return cr_report();
}
