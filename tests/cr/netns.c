/*
 * The tree owns its network namespace (run under `unshare --net`): the
 * loopback is up with a second address (10.99.0.1 on lo:1), two sysctls are
 * changed, a TCP listener on that address has a connection from a child with
 * bytes in flight both ways, and a UDP socket is bound there. After each
 * restore: the namespace holds lo only, its address and the sysctls are
 * back, the queued bytes arrive, new bytes go both ways, and the listener
 * accepts a new connection.
 */
#include "crtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define ADDR "10.99.0.1"
#define PORT 5123

static void write_sysctl(const char *name, const char *val)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		cr_die("can't write %s to %s: %s", val, path, strerror(errno));
	close(fd);
}

static void check_sysctl(const char *name, const char *want)
{
	char path[128], buf[64] = "";
	size_t n;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", name);
	n = cr_read_file(path, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	/* ip_local_port_range separates with a tab. */
	for (char *p = buf; *p; p++)
		if (*p == '\t')
			*p = ' ';
	if (strcmp(buf, want))
		cr_fail("sysctl %s is '%s', expected '%s'", name, buf, want);
}

static void set_ifaddr(int s)
{
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		cr_die("SIOCGIFFLAGS lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		cr_die("SIOCSIFFLAGS lo up: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo:1");
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ADDR, &sin->sin_addr);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		cr_die("SIOCSIFADDR lo:1 " ADDR ": %s", strerror(errno));
}

static void check_ifaddr(int s)
{
	struct ifreq ifr = { 0 };
	char buf[32];

	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP))
		cr_fail("lo is not up after restore");
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo:1");
	if (ioctl(s, SIOCGIFADDR, &ifr) < 0) {
		cr_fail("lo:1 has no address after restore: %s", strerror(errno));
		return;
	}
	inet_ntop(AF_INET, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, buf, sizeof(buf));
	if (strcmp(buf, ADDR))
		cr_fail("lo:1 is %s, expected " ADDR, buf);
}

static struct sockaddr_in addr_of(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ADDR, &a.sin_addr);
	return a;
}

/* Exactly len bytes of seed's pattern must arrive on fd. */
static void expect(int fd, size_t len, uint64_t seed, const char *what)
{
	static char buf[8192];
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cr_fail("%s: read after %zu of %zu bytes: %s", what, got, len,
				n ? strerror(errno) : "end of stream");
			return;
		}
		got += n;
	}
	if (cr_check_fill(buf, len, seed) >= 0)
		cr_fail("%s: the bytes differ", what);
}

/* No read may hang the verification: a lost byte is a failure, not a timeout. */
static void limit_wait(int fd)
{
	struct timeval tv = { 10, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void send_pattern(int fd, size_t len, uint64_t seed)
{
	static char buf[8192];

	cr_fill(buf, len, seed);
	if (write(fd, buf, len) != (ssize_t)len)
		cr_die("write %zu bytes: %s", len, strerror(errno));
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "client" };
	int ctl, lsn, conn, udp, one = 1;
	pid_t kid;
	struct sockaddr_in a = addr_of(PORT), u = addr_of(PORT + 1);

	cr_init(argc, argv);
	ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ctl < 0)
		cr_die("socket: %s", strerror(errno));
	set_ifaddr(ctl);
	write_sysctl("ipv4/ip_local_port_range", "30000 30100");
	write_sysctl("core/somaxconn", "777");
	lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lsn, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lsn, 8) < 0)
		cr_die("listen on " ADDR ":%d: %s", PORT, strerror(errno));
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (udp < 0 || bind(udp, (struct sockaddr *)&u, sizeof(u)) < 0)
		cr_die("UDP bind: %s", strerror(errno));

	kid = cr_spawn("client");
	if (kid == 0) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
			cr_die("connect: %s", strerror(errno));
		send_pattern(c, 3000, 1);	/* left unread by the server until after restore */
		cr_child_ready();
		cr_wait_term();
		limit_wait(c);
		expect(c, 2000, 2, "client: queued before the dump");
		send_pattern(c, 500, 3);
		close(c);
		cr_child_exit();
	}
	conn = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		cr_die("accept: %s", strerror(errno));
	send_pattern(conn, 2000, 2);	/* left unread by the client */
	cr_ready();
	cr_wait_term();

	/* A namespace of the tree's own: lo and nothing else, as made. */
	struct if_nameindex *ifs = if_nameindex();
	int nifs = 0;
	for (struct if_nameindex *i = ifs; i && i->if_index; i++, nifs++)
		if (strcmp(i->if_name, "lo"))
			cr_fail("after restore the namespace has a link %s", i->if_name);
	if (nifs != 1)
		cr_fail("after restore the namespace has %d links, expected lo only", nifs);
	if (ifs)
		if_freenameindex(ifs);
	limit_wait(conn);
	limit_wait(udp);
	check_ifaddr(ctl);
	check_sysctl("ipv4/ip_local_port_range", "30000 30100");
	check_sysctl("core/somaxconn", "777");
	expect(conn, 3000, 1, "server: queued before the dump");
	/* The listener takes new connections on its address. */
	int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s2;
	if (c2 < 0 || connect(c2, (struct sockaddr *)&a, sizeof(a)) < 0)
		cr_fail("a new connection to " ADDR ":%d after restore: %s", PORT, strerror(errno));
	else if ((s2 = accept4(lsn, NULL, NULL, SOCK_CLOEXEC)) < 0)
		cr_fail("accept after restore: %s", strerror(errno));
	else {
		send_pattern(c2, 100, 5);
		expect(s2, 100, 5, "new connection");
		close(s2);
	}
	if (c2 >= 0)
		close(c2);
	/* The UDP socket still receives on its address. */
	int us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char d[4] = "udp", r[4] = "";
	if (us < 0 || sendto(us, d, 4, 0, (struct sockaddr *)&u, sizeof(u)) != 4 ||
	    recv(udp, r, 4, 0) != 4 || memcmp(d, r, 4))
		cr_fail("UDP datagram to " ADDR ":%d after restore did not arrive", PORT + 1);
	if (us >= 0)
		close(us);
	/* The client checks its side and sends 500 more bytes when told to end. */
	cr_finish_children(&kid, roles, 1);
	expect(conn, 500, 3, "server: sent by the client after restore");
	return cr_report();
}
