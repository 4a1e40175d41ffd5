/*
 * Personality: ADDR_NO_RANDOMIZE, UNAME26 and READ_IMPLIES_EXEC in the
 * parent, different flags in a child. After restore the value must be the
 * same, and it must still act: uname() reports a 2.6 release and a
 * PROT_READ mapping comes out executable.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/utsname.h>
#include <unistd.h>

static unsigned long was;
static char proc_was[32];

static void read_proc(char *buf, size_t len)
{
	cr_read_file("/proc/self/personality", buf, len);
}

static void set_persona(unsigned long p)
{
	personality(p);
	was = (unsigned long)personality(0xffffffff);
	if (was != p)
		cr_die("personality %#lx did not stick (%#lx)", p, was);
	read_proc(proc_was, sizeof(proc_was));
}

static void check_persona(const char *who)
{
	unsigned long now = (unsigned long)personality(0xffffffff);
	char text[32];

	if (now != was)
		cr_fail("%s: personality %#lx, was %#lx", who, now, was);
	read_proc(text, sizeof(text));
	if (strcmp(text, proc_was))
		cr_fail("%s: /proc/self/personality %s, was %s", who, text, proc_was);
}

static void check_effects(void)
{
	struct utsname u;
	char perms[5];
	void *p;

	uname(&u);
	if (strncmp(u.release, "2.6.", 4))
		cr_fail("UNAME26 lost: release '%s'", u.release);
	p = mmap(NULL, CR_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		cr_fail("mmap: %s", strerror(errno));
		return;
	}
	cr_maps_perms(p, perms);
	if (strcmp(perms, "r-xp"))
		cr_fail("READ_IMPLIES_EXEC lost: PROT_READ mapping is '%s'", perms);
	munmap(p, CR_PAGE);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	kid = cr_spawn("child");
	if (kid == 0) {
		set_persona(PER_LINUX | SHORT_INODE | WHOLE_SECONDS | ADDR_COMPAT_LAYOUT);
		cr_child_ready();
		cr_wait_term();
		check_persona("child");
		cr_child_exit();
	}
	set_persona(PER_LINUX | ADDR_NO_RANDOMIZE | UNAME26 | READ_IMPLIES_EXEC);
	cr_ready();
	cr_wait_term();
	check_persona("parent");
	check_effects();
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
