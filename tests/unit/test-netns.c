/*
 * netns_dump() and netns_restore() round trip: a network namespace with a
 * loopback and two veths whose other ends are in a second namespace (one a
 * bridge port there) (made by this test with `ip netns add`), addresses (IPv4
 * and IPv6), routes and sysctls, is saved, destroyed (which destroys the veth
 * pair too) and rebuilt in a fresh namespace; `ip` must then show the same
 * links, addresses, routes and sysctls on both sides as before.
 *
 * The only differences allowed: restored IPv6 addresses carry "nodad" (no
 * duplicate address detection, so that sockets can bind at once), interface
 * indexes (a new namespace numbers them anew) and operational states (they
 * follow carriers); these are dropped before the comparison, once no
 * address is tentative any more.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"
#include "tap.h"

static char peer_ns[64];

/* A child that sits in a network namespace of its own until killed. */
static pid_t ns_child(void)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		diag("command failed (%d): %s", st, cmd);
	return st;
}

/* Everything `ip` and sysctl say about pid's namespace and the peer's, canonical. */
static char *snapshot(pid_t pid)
{
	char cmd[2048], *buf = NULL;
	size_t cap = 0, len = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "{ nsenter -t %d -n sh -c 'ip -o link show; ip -o addr show; "
		 "ip route show table all; ip -6 route show table all; "
		 "for s in ipv4/ip_forward ipv4/ip_local_port_range ipv6/conf/all/disable_ipv6 "
		 "ipv4/conf/veth1/forwarding ipv6/conf/veth0/disable_ipv6 core/somaxconn; do "
		 "echo $s=$(cat /proc/sys/net/$s); done'; "
		 "echo PEER; ip -n %s -o link show; ip -n %s -o addr show; } 2>&1 | "
		 "sed -E 's/^[0-9]+: //; s/@if[0-9]+/@if/; s/link-netns(id)? [^ ]+//; "
		 "s/ nodad//g; s/ state [A-Z]+ / /; s/ +/ /g' | sort",
		 pid, peer_ns, peer_ns);
	f = popen(cmd, "r");
	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? 2 * cap : 16384;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	pclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* Operational states settle a moment after links come up: ask a few times. */
static char *settled_snapshot(pid_t pid, const char *want)
{
	char *s = NULL;

	for (int i = 0; i < 50; i++) {
		free(s);
		s = snapshot(pid);
		if (!s || (want && !strcmp(s, want)) ||
		    (!want && !strstr(s, "tentative")))
			break;
		usleep(100000);
	}
	return s;
}

static void show_diff(const char *a, const char *b)
{
	FILE *f = fopen("/tmp/netns-a", "w");

	if (f) {
		fputs(a, f);
		fclose(f);
	}
	f = fopen("/tmp/netns-b", "w");
	if (f) {
		fputs(b, f);
		fclose(f);
	}
	if (system("diff /tmp/netns-a /tmp/netns-b | sed 's/^/# /'") < 0)
		diag("diff failed");
	unlink("/tmp/netns-a");
	unlink("/tmp/netns-b");
}

int main(void)
{
	char dir[] = "/tmp/cr-test-netns.XXXXXX";
	pid_t a = -1, c = -1;
	char *before = NULL, *after = NULL;
	int dirfd = -1;

	tap_init();
	if (geteuid() != 0 || system("command -v ip nsenter >/dev/null") != 0) {
		printf("1..0 # SKIP needs root, ip and nsenter\n");
		return 0;
	}
	/*
	 * The C/R tests' lock (tests/cr/run.sh): the named namespace is a mount
	 * in the host's mount namespace, which a job container dumped meanwhile
	 * would copy and then miss at restore.
	 */
	char lock[256];
	snprintf(lock, sizeof(lock), "%s/crlaunch-cr-tests.lock",
		 getenv("CR_TMPDIR") ?: getenv("TMPDIR") ?: "/tmp");
	int lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) < 0)
		diag("can't take %s: %s (going on without it)", lock, strerror(errno));
	snprintf(peer_ns, sizeof(peer_ns), "crtest-peer-%d", getpid());
	if (!ok(mkdtemp(dir) != NULL, "scratch directory") ||
	    !ok(sh("ip netns add %s && ip -n %s link set lo up && "
		   "ip -n %s link add br0 type bridge && ip -n %s link set br0 up",
		   peer_ns, peer_ns, peer_ns, peer_ns) == 0, "peer namespace %s with a bridge", peer_ns))
		goto out;
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	a = ns_child();
	if (!ok(a > 0, "a child in a new network namespace"))
		goto out;
	ok(sh("nsenter -t %d -n sh -ec '"
	      "ip link set lo up; "
	      "ip link add veth1 type veth peer name vethq%d netns %s; "
	      "ip link set veth1 address 02:00:00:00:77:01 mtu 1400 up; "
	      "ip addr add 10.77.1.1/24 dev veth1; ip addr add fd00:77::1/64 dev veth1 nodad; "
	      "ip link add veth0 type veth peer name vethp%d netns %s; "
	      "ip link set veth0 address 02:00:00:00:77:02 up; ip addr add 10.77.2.1/24 dev veth0; "
	      "ip route add 10.77.9.0/24 via 10.77.2.2 metric 7; ip route add default via 10.77.2.2; "
	      "ip -6 route add fd00:99::/64 via fd00:77::2 dev veth1; "
	      "ip route add blackhole 10.77.66.0/24; "
	      "echo 1 > /proc/sys/net/ipv4/ip_forward; echo \"20000 30000\" > /proc/sys/net/ipv4/ip_local_port_range; "
	      "echo 0 > /proc/sys/net/ipv4/conf/veth1/forwarding; echo 1 > /proc/sys/net/ipv6/conf/veth0/disable_ipv6; "
	      "echo 1234 > /proc/sys/net/core/somaxconn'",
	      a, getpid() % 10000, peer_ns, getpid() % 10000, peer_ns) == 0 &&
	   sh("ip -n %s link set vethp%d master br0 mtu 1450 up && ip -n %s addr add 10.77.2.2/24 dev br0 && "
	      "ip -n %s link set vethq%d mtu 1400 up && ip -n %s addr add fd00:77::2/64 dev vethq%d nodad",
	      peer_ns, getpid() % 10000, peer_ns,
	      peer_ns, getpid() % 10000, peer_ns, getpid() % 10000) == 0,
	   "links, addresses, routes and sysctls set up");
	before = settled_snapshot(a, NULL);
	if (!ok(before && strstr(before, "veth1") && strstr(before, "10.77.9.0/24"),
		"the namespace shows what was set up"))
		goto out;
	if (!ok(netns_dump(a, dirfd, dir) == 0, "netns_dump"))
		goto out;
	reap(a);
	a = -1;
	/* The namespace is gone, and the veth pair with it. */
	char *gone = NULL;
	for (int i = 0; i < 50; i++) {
		free(gone);
		gone = NULL;
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "ip -n %s link show vethp%d >/dev/null 2>&1", peer_ns,
			 getpid() % 10000);
		if (system(cmd) != 0)
			break;
		gone = strdup("still there");
		usleep(100000);
	}
	ok(gone == NULL, "the veth pair went away with the namespace");
	free(gone);
	c = ns_child();
	if (!ok(c > 0, "a fresh network namespace"))
		goto out;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", c);
	int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	ok(nsfd >= 0 && netns_restore(dirfd, dir, nsfd) == 0, "netns_restore");
	if (nsfd >= 0)
		close(nsfd);
	after = settled_snapshot(c, before);
	if (!ok(after && !strcmp(before, after), "links, addresses, routes and sysctls are the same"))
		show_diff(before, after ? after : "");
	/* A TCP connection to a closed port there is refused: the peer answered. */
	ok(sh("nsenter -t %d -n timeout 5 bash -c 'exec 3<>/dev/tcp/10.77.2.2/1' 2>&1 | grep -q refused",
	      c) == 0, "the restored veth reaches its other end");
out:
	if (a > 0)
		reap(a);
	if (c > 0)
		reap(c);
	sh("ip netns del %s 2>/dev/null || true", peer_ns);
	free(before);
	free(after);
	if (dirfd >= 0) {
		unlinkat(dirfd, "netns.img", 0);
		close(dirfd);
	}
	rmdir(dir);
	done_testing();
	return tap_failed ? 1 : 0;
}
