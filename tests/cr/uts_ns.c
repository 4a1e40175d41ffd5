/*
 * The tree owns a UTS namespace (run under `unshare --uts`, see uts_ns.desc):
 * hostname and domain name set inside it must come back in the root and its
 * child, in a namespace that is still not the host's.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* The initial UTS namespace has a fixed inode number (PROC_UTS_INIT_INO). */
static const char host_ns[] = "uts:[4026531838]";
static char want_host[64], want_domain[64];

static void ns_link(const char *path, char *buf, size_t len)
{
	ssize_t n = readlink(path, buf, len - 1);

	if (n < 0) {
		cr_fail("readlink %s: %s", path, strerror(errno));
		n = 0;
	}
	buf[n] = '\0';
}

static void check(const char *who)
{
	struct utsname u;
	char mine[64];

	if (uname(&u) < 0) {
		cr_fail("%s: uname: %s", who, strerror(errno));
		return;
	}
	CR_CHECK(!strcmp(u.nodename, want_host), "%s: hostname '%s', expected '%s'", who, u.nodename,
		 want_host);
	CR_CHECK(!strcmp(u.domainname, want_domain), "%s: domain name '%s', expected '%s'", who,
		 u.domainname, want_domain);
	ns_link("/proc/self/ns/uts", mine, sizeof(mine));
	CR_CHECK(strcmp(mine, host_ns), "%s: in the host's UTS namespace %s", who, mine);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	snprintf(want_host, sizeof(want_host), "crtest-uts-%d", (int)getpid());
	snprintf(want_domain, sizeof(want_domain), "domain.crtest.%d", (int)getpid());
	if (sethostname(want_host, strlen(want_host)) < 0 ||
	    setdomainname(want_domain, strlen(want_domain)) < 0)
		cr_die("sethostname: %s", strerror(errno));
	kid = cr_spawn("child");
	if (kid == 0) {
		cr_child_ready();
		cr_wait_term();
		check("child");
		cr_child_exit();
	}
	check("setup");
	cr_ready();
	cr_wait_term();
	check("root");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
