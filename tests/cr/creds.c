/*
 * Credentials (uid stays 0): real, effective, saved and filesystem gids,
 * supplementary groups, the effective, permitted, inheritable, ambient and
 * bounding capability sets, and securebits; a child with different ones.
 */
#include "crtest.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_CAP 64

struct creds {
	uid_t ruid, euid, suid, fsuid;
	gid_t rgid, egid, sgid, fsgid;
	int nr_groups;
	gid_t groups[32];
	struct __user_cap_data_struct caps[2];
	bool bounding[MAX_CAP], ambient[MAX_CAP];
	int securebits;
};

static const char *const status_keys[] = { "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff",
					   "CapBnd", "CapAmb" };
static char status_was[8][256];
static struct creds was;
static int last_cap;

static int capget_all(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capget, &hdr, data);
}

static void capset_all(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	if (syscall(SYS_capset, &hdr, data))
		cr_die("capset: %s", strerror(errno));
}

static void cap_clear(struct __user_cap_data_struct d[2], int cap, bool eff, bool inh)
{
	if (eff)
		d[cap / 32].effective &= ~(1u << (cap % 32));
	if (inh)
		d[cap / 32].inheritable &= ~(1u << (cap % 32));
}

static void cap_set_inh(struct __user_cap_data_struct d[2], int cap)
{
	d[cap / 32].inheritable |= 1u << (cap % 32);
}

static void read_creds(struct creds *c)
{
	memset(c, 0, sizeof(*c));
	getresuid(&c->ruid, &c->euid, &c->suid);
	getresgid(&c->rgid, &c->egid, &c->sgid);
	c->fsuid = (uid_t)setfsuid((uid_t)-1);
	c->fsgid = (gid_t)setfsgid((gid_t)-1);
	c->nr_groups = getgroups(32, c->groups);
	capget_all(c->caps);
	for (int cap = 0; cap <= last_cap && cap < MAX_CAP; cap++) {
		c->bounding[cap] = prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1;
		c->ambient[cap] = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1;
	}
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
}

static void read_status(char out[8][256])
{
	for (int i = 0; i < 8; i++)
		if (!cr_status_field("/proc/self/status", status_keys[i], out[i], 256))
			cr_die("no %s in /proc/self/status", status_keys[i]);
}

static void compare_creds(const char *who)
{
	struct creds now;
	char status[8][256];

	read_creds(&now);
	if (now.ruid || now.euid || now.suid || now.fsuid)
		cr_fail("%s: uids %d %d %d %d", who, now.ruid, now.euid, now.suid, now.fsuid);
	if (now.rgid != was.rgid || now.egid != was.egid || now.sgid != was.sgid ||
	    now.fsgid != was.fsgid)
		cr_fail("%s: gids %d %d %d %d, were %d %d %d %d", who, now.rgid, now.egid, now.sgid,
			now.fsgid, was.rgid, was.egid, was.sgid, was.fsgid);
	if (now.nr_groups != was.nr_groups ||
	    memcmp(now.groups, was.groups, sizeof(gid_t) * (size_t)(now.nr_groups > 0 ? now.nr_groups : 0)))
		cr_fail("%s: supplementary groups differ (%d, were %d)", who, now.nr_groups,
			was.nr_groups);
	for (int i = 0; i < 2; i++)
		if (now.caps[i].effective != was.caps[i].effective ||
		    now.caps[i].permitted != was.caps[i].permitted ||
		    now.caps[i].inheritable != was.caps[i].inheritable)
			cr_fail("%s: capabilities word %d: eff %#x prm %#x inh %#x, were %#x %#x %#x",
				who, i, now.caps[i].effective, now.caps[i].permitted,
				now.caps[i].inheritable, was.caps[i].effective,
				was.caps[i].permitted, was.caps[i].inheritable);
	for (int cap = 0; cap <= last_cap && cap < MAX_CAP; cap++) {
		if (now.bounding[cap] != was.bounding[cap])
			cr_fail("%s: capability %d %s the bounding set", who, cap,
				now.bounding[cap] ? "back in" : "missing from");
		if (now.ambient[cap] != was.ambient[cap])
			cr_fail("%s: capability %d %s the ambient set", who, cap,
				now.ambient[cap] ? "added to" : "missing from");
	}
	CR_EXPECT_EQ("securebits", now.securebits, was.securebits);
	read_status(status);
	for (int i = 0; i < 8; i++)
		if (strcmp(status[i], status_was[i]))
			cr_fail("%s: %s: %s, was %s", who, status_keys[i], status[i], status_was[i]);
}

static void setup_parent(void)
{
	static const gid_t groups[] = { 4, 24, 27, 1000 };
	struct __user_cap_data_struct caps[2];

	if (setgroups(CR_ARRAY_SIZE(groups), groups) || setresgid(1001, 1002, 1003))
		cr_die("setgroups/setresgid: %s", strerror(errno));
	setfsgid(1004);
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_WAKE_ALARM, 0, 0, 0))
		cr_die("PR_CAPBSET_DROP: %s", strerror(errno));
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP, 0, 0, 0))
		cr_die("PR_SET_SECUREBITS: %s", strerror(errno));
	capget_all(caps);
	cap_clear(caps, CAP_NET_RAW, true, false);
	cap_clear(caps, CAP_SYS_BOOT, true, false);
	cap_set_inh(caps, CAP_KILL);
	cap_set_inh(caps, CAP_CHOWN);
	capset_all(caps);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0))
		cr_die("PR_CAP_AMBIENT_RAISE: %s", strerror(errno));
}

static void setup_child(void)
{
	struct __user_cap_data_struct caps[2];

	if (setgroups(0, NULL) || setresgid(2001, 2001, 2002))
		cr_die("child: setgroups/setresgid: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) ||
	    prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0))
		cr_die("child: ambient/bounding: %s", strerror(errno));
	capget_all(caps);
	cap_clear(caps, CAP_KILL, true, true);
	cap_clear(caps, CAP_SYS_NICE, true, false);
	cap_clear(caps, CAP_NET_ADMIN, true, false);
	capset_all(caps);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	char text[16];
	pid_t kid;

	cr_init(argc, argv);
	cr_read_file("/proc/sys/kernel/cap_last_cap", text, sizeof(text));
	last_cap = atoi(text);
	setup_parent();
	kid = cr_spawn("child");
	if (kid == 0) {
		setup_child();
		read_creds(&was);
		read_status(status_was);
		cr_child_ready();
		cr_wait_term();
		compare_creds("child");
		cr_child_exit();
	}
	read_creds(&was);
	read_status(status_was);
	cr_ready();
	cr_wait_term();
	compare_creds("parent");
	cr_finish_children(&kid, roles, 1);
	return cr_report();
}
