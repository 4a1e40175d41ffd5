/*
 * The network namespace a tree owns: its links (loopback, dummy devices and
 * veth ends whose other end is outside the tree), their addresses, the
 * routes that were added to it and the sysctls that change how its sockets
 * behave. Read and rebuilt with libnl3's route library.
 *
 * A netlink socket stays in the namespace it was created in, so crtool
 * enters a namespace only to create a socket (and to read /proc/sys/net,
 * which shows the namespace of the reader) and returns at once.
 */
#define LOG_PREFIX "netns: "
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "image.h"
#include "log.h"
#include "netns.h"
#include "util.h"
#include "netns.pb-c.h"

#define SETTABLE_IFF (IFF_UP | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST)

/* Global sysctls below /proc/sys/net that a job's sockets depend on. */
static const char *const global_sysctls[] = {
	"ipv4/ip_forward",
	"ipv4/ip_local_port_range",
	"ipv4/ip_local_reserved_ports",
	"ipv4/ip_unprivileged_port_start",
	"ipv4/ping_group_range",
	"ipv4/tcp_timestamps",
	"ipv4/tcp_sack",
	"ipv4/tcp_window_scaling",
	"ipv4/tcp_syncookies",
	"ipv4/conf/all/rp_filter",
	"ipv4/conf/default/rp_filter",
	"ipv6/conf/all/disable_ipv6",
	"ipv6/conf/default/disable_ipv6",
	"ipv6/conf/all/forwarding",
	"core/somaxconn",
};

/* Per link, "%s" is the link's name. */
static const char *const link_sysctls[] = {
	"ipv6/conf/%s/disable_ipv6",
	"ipv4/conf/%s/forwarding",
	"ipv4/conf/%s/rp_filter",
};

/* Tunnel devices every new namespace gets when their module is loaded. */
static const char *const fallback_devs[] = {
	"sit0", "tunl0", "ip6tnl0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0",
	"ip6gre0",
};

/* ---- namespaces and sockets ---------------------------------------------- */

static int enter_ns(int nsfd, const char *what)
{
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return log_errno(-errno, "setns into the network namespace of %s", what);
	return 0;
}

/* Back to our own namespace: failing that, nothing can go on safely. */
static void leave_ns(int self)
{
	if (setns(self, CLONE_NEWNET) < 0) {
		pr_perror("setns back into crtool's own network namespace");
		abort();
	}
}

/* A route netlink socket in the namespace nsfd (-1: ours). */
static struct nl_sock *nl_open_in(int nsfd, int self, const char *what)
{
	struct nl_sock *sk = nl_socket_alloc();
	int err;

	if (!sk) {
		pr_err("out of memory for a netlink socket\n");
		return NULL;
	}
	if (nsfd >= 0 && enter_ns(nsfd, what) < 0) {
		nl_socket_free(sk);
		return NULL;
	}
	err = nl_connect(sk, NETLINK_ROUTE);
	if (nsfd >= 0)
		leave_ns(self);
	if (err < 0) {
		pr_err("can't open a route netlink socket in the namespace of %s: %s\n", what,
		       nl_geterror(err));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

struct nlcaches {
	struct nl_sock *sk;
	struct nl_cache *links, *addrs, *routes;
};

static void caches_free(struct nlcaches *c)
{
	if (c->routes)
		nl_cache_free(c->routes);
	if (c->addrs)
		nl_cache_free(c->addrs);
	if (c->links)
		nl_cache_free(c->links);
	if (c->sk)
		nl_socket_free(c->sk);
	memset(c, 0, sizeof(*c));
}

static int caches_load(struct nlcaches *c, int nsfd, int self, const char *what)
{
	int err;

	c->sk = nl_open_in(nsfd, self, what);
	if (!c->sk)
		return -EIO;
	err = rtnl_link_alloc_cache(c->sk, AF_UNSPEC, &c->links);
	if (err >= 0)
		err = rtnl_addr_alloc_cache(c->sk, &c->addrs);
	if (err >= 0)
		err = rtnl_route_alloc_cache(c->sk, AF_UNSPEC, 0, &c->routes);
	if (err < 0) {
		pr_err("can't list the links, addresses and routes of %s: %s\n", what,
		       nl_geterror(err));
		caches_free(c);
		return -EIO;
	}
	return 0;
}

/* ---- dump ---------------------------------------------------------------- */

static bool bytes_of(struct nl_addr *a, ProtobufCBinaryData *out, protobuf_c_boolean *has)
{
	if (!a || nl_addr_get_len(a) == 0)
		return false;
	out->len = nl_addr_get_len(a);
	out->data = xmalloc(out->len);
	memcpy(out->data, nl_addr_get_binary_addr(a), out->len);
	if (has)
		*has = true;
	return true;
}

static int dump_addrs(struct nl_cache *addrs, int ifindex, NetnsAddr ***out, size_t *n)
{
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		int family = rtnl_addr_get_family(a);
		NetnsAddr *e;

		if (rtnl_addr_get_ifindex(a) != ifindex || (family != AF_INET && family != AF_INET6))
			continue;
		/* IPv6 link-local addresses come back by themselves when the link is up. */
		if (family == AF_INET6 && rtnl_addr_get_scope(a) == RT_SCOPE_LINK)
			continue;
		e = xzalloc(sizeof(*e));
		netns_addr__init(e);
		e->family = family;
		if (!bytes_of(rtnl_addr_get_local(a), &e->local, NULL) &&
		    !bytes_of(rtnl_addr_get_peer(a), &e->local, NULL)) {
			free(e);
			continue;
		}
		struct nl_addr *peer = rtnl_addr_get_peer(a);
		if (peer && rtnl_addr_get_local(a) && nl_addr_cmp(peer, rtnl_addr_get_local(a)))
			bytes_of(peer, &e->peer, &e->has_peer);
		bytes_of(rtnl_addr_get_broadcast(a), &e->broadcast, &e->has_broadcast);
		e->prefixlen = rtnl_addr_get_prefixlen(a);
		e->flags = rtnl_addr_get_flags(a) & ~(IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED);
		e->scope = rtnl_addr_get_scope(a);
		if (rtnl_addr_get_label(a))
			e->label = xstrdup(rtnl_addr_get_label(a));
		*out = xrealloc(*out, (*n + 1) * sizeof(**out));
		(*out)[(*n)++] = e;
	}
	return 0;
}

static bool is_fallback(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(fallback_devs); i++)
		if (!strcmp(name, fallback_devs[i]))
			return true;
	return false;
}

/*
 * The other end of veth `l` (ifindex `idx` in the tree's namespace): a veth in
 * crtool's namespace or in one of /run/netns whose peer is idx. Fills the
 * peer fields of e.
 */
static int find_veth_peer(struct rtnl_link *l, int idx, int self, NetnsLink *e)
{
	int peer_idx = rtnl_link_get_link(l);
	DIR *d;
	struct dirent *de;

	for (int pass = 0; pass < 2; pass++) {
		d = NULL;
		if (pass == 1) {
			d = opendir("/run/netns");
			if (!d)
				break;
		}
		for (;;) {
			char path[300] = "";
			int nsfd = -1;
			struct nlcaches c = { 0 };

			if (d) {
				de = readdir(d);
				if (!de)
					break;
				if (de->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
				nsfd = open(path, O_RDONLY | O_CLOEXEC);
				if (nsfd < 0)
					continue;
			}
			if (caches_load(&c, nsfd, self, path[0] ? path : "crtool") == 0) {
				struct rtnl_link *p = rtnl_link_get(c.links, peer_idx);
				char *type = p ? rtnl_link_get_type(p) : NULL;
				int32_t nsid;

				if (p && type && !strcmp(type, "veth") && rtnl_link_get_link(p) == idx &&
				    rtnl_link_get_link_netnsid(p, &nsid) == 0) {
					e->peer_name = xstrdup(rtnl_link_get_name(p));
					e->peer_netns = xstrdup(path);
					bytes_of(rtnl_link_get_addr(p), &e->peer_mac, &e->has_peer_mac);
					e->has_peer_mtu = true;
					e->peer_mtu = rtnl_link_get_mtu(p);
					e->has_peer_flags = true;
					e->peer_flags = rtnl_link_get_flags(p) & SETTABLE_IFF;
					if (rtnl_link_get_master(p) > 0) {
						struct rtnl_link *m = rtnl_link_get(c.links, rtnl_link_get_master(p));
						if (m) {
							e->peer_master = xstrdup(rtnl_link_get_name(m));
							rtnl_link_put(m);
						}
					}
					dump_addrs(c.addrs, peer_idx, &e->peer_addrs, &e->n_peer_addrs);
				}
				if (p)
					rtnl_link_put(p);
				caches_free(&c);
			}
			if (nsfd >= 0)
				close(nsfd);
			if (e->peer_name || !d)
				break;
		}
		if (d)
			closedir(d);
		if (e->peer_name)
			return 0;
	}
	pr_err("veth %s: its other end (ifindex %d) is neither in crtool's network namespace nor in one of /run/netns\n",
	       e->name, peer_idx);
	return -EOPNOTSUPP;
}

static int dump_links(struct nlcaches *c, int self, NetnsEntry *ne)
{
	for (struct nl_object *o = nl_cache_get_first(c->links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		const char *name = rtnl_link_get_name(l);
		const char *type = rtnl_link_get_type(l);
		unsigned flags = rtnl_link_get_flags(l);
		NetnsLink *e;

		if (!(flags & IFF_LOOPBACK) && type && is_fallback(name) && !(flags & IFF_UP))
			continue;
		e = xzalloc(sizeof(*e));
		netns_link__init(e);
		e->name = xstrdup(name);
		ne->links = xrealloc(ne->links, (ne->n_links + 1) * sizeof(*ne->links));
		ne->links[ne->n_links++] = e;
		if (flags & IFF_LOOPBACK)
			e->kind = xstrdup("loopback");
		else if (type && (!strcmp(type, "veth") || !strcmp(type, "dummy")))
			e->kind = xstrdup(type);
		else {
			pr_err("link %s: a %s device, which crtool cannot recreate (loopback, veth and dummy only)\n",
			       name, type ? type : "physical");
			return -EOPNOTSUPP;
		}
		e->flags = flags & SETTABLE_IFF;
		e->mtu = rtnl_link_get_mtu(l);
		e->has_txqlen = true;
		e->txqlen = rtnl_link_get_txqlen(l);
		if (!(flags & IFF_LOOPBACK))
			bytes_of(rtnl_link_get_addr(l), &e->mac, &e->has_mac);
		dump_addrs(c->addrs, rtnl_link_get_ifindex(l), &e->addrs, &e->n_addrs);
		if (!strcmp(e->kind, "veth")) {
			int ret = find_veth_peer(l, rtnl_link_get_ifindex(l), self, e);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int dump_routes(struct nlcaches *c, NetnsEntry *ne)
{
	for (struct nl_object *o = nl_cache_get_first(c->routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		int family = rtnl_route_get_family(r);
		unsigned proto = rtnl_route_get_protocol(r);
		NetnsRoute *e;

		if ((family != AF_INET && family != AF_INET6) ||
		    rtnl_route_get_table(r) == RT_TABLE_LOCAL ||
		    proto == RTPROT_KERNEL || proto == RTPROT_RA)
			continue;	/* the kernel makes these again */
		if (rtnl_route_get_nnexthops(r) > 1) {
			pr_err("a multipath route (family %d, table %u) in the tree's network namespace: not supported\n",
			       family, rtnl_route_get_table(r));
			return -EOPNOTSUPP;
		}
		e = xzalloc(sizeof(*e));
		netns_route__init(e);
		e->family = family;
		e->table = rtnl_route_get_table(r);
		e->protocol = proto;
		e->scope = rtnl_route_get_scope(r);
		e->type = rtnl_route_get_type(r);
		struct nl_addr *dst = rtnl_route_get_dst(r);
		e->dst_len = dst ? nl_addr_get_prefixlen(dst) : 0;
		if (e->dst_len)
			bytes_of(dst, &e->dst, &e->has_dst);
		if (rtnl_route_get_priority(r)) {
			e->has_priority = true;
			e->priority = rtnl_route_get_priority(r);
		}
		bytes_of(rtnl_route_get_pref_src(r), &e->prefsrc, &e->has_prefsrc);
		if (rtnl_route_get_nnexthops(r) == 1) {
			struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);
			struct rtnl_link *l = rtnl_link_get(c->links, rtnl_route_nh_get_ifindex(nh));

			bytes_of(rtnl_route_nh_get_gateway(nh), &e->gateway, &e->has_gateway);
			if (l) {
				e->oif = xstrdup(rtnl_link_get_name(l));
				rtnl_link_put(l);
			}
		}
		ne->routes = xrealloc(ne->routes, (ne->n_routes + 1) * sizeof(*ne->routes));
		ne->routes[ne->n_routes++] = e;
	}
	return 0;
}

static void add_sysctl(NetnsEntry *ne, const char *name)
{
	char path[256], *val = NULL;
	NetnsSysctl *s;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", name);
	if (read_file_at(AT_FDCWD, path, &val) < 0)
		return;		/* not in this kernel, or not for this link */
	val[strcspn(val, "\n")] = '\0';
	s = xzalloc(sizeof(*s));
	netns_sysctl__init(s);
	s->name = xstrdup(name);
	s->value = val;
	ne->sysctls = xrealloc(ne->sysctls, (ne->n_sysctls + 1) * sizeof(*ne->sysctls));
	ne->sysctls[ne->n_sysctls++] = s;
}

/* Read while inside the namespace: /proc/sys/net shows the reader's. */
static int dump_sysctls(int nsfd, int self, pid_t pid, NetnsEntry *ne)
{
	char what[32];

	snprintf(what, sizeof(what), "pid %d", pid);
	if (enter_ns(nsfd, what) < 0)
		return -EIO;
	for (size_t i = 0; i < ARRAY_SIZE(global_sysctls); i++)
		add_sysctl(ne, global_sysctls[i]);
	for (size_t l = 0; l < ne->n_links; l++) {
		for (size_t i = 0; i < ARRAY_SIZE(link_sysctls); i++) {
			char name[128];

			snprintf(name, sizeof(name), link_sysctls[i], ne->links[l]->name);
			add_sysctl(ne, name);
		}
	}
	leave_ns(self);
	return 0;
}

int netns_dump(pid_t pid, int dirfd, const char *dir)
{
	char path[64], what[32];
	int self, nsfd, ret;
	struct nlcaches c = { 0 };
	NetnsEntry ne = NETNS_ENTRY__INIT;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	snprintf(what, sizeof(what), "pid %d", pid);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return log_errno(-errno, "open /proc/self/ns/net");
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		ret = log_errno(-errno, "open %s", path);
		close(self);
		return ret;
	}
	ret = caches_load(&c, nsfd, self, what);
	if (ret == 0)
		ret = dump_links(&c, self, &ne);
	if (ret == 0)
		ret = dump_routes(&c, &ne);
	if (ret == 0)
		ret = dump_sysctls(nsfd, self, pid, &ne);
	if (ret == 0)
		ret = img_write_one(dirfd, dir, IMG_NETNS, 0, &ne.base);
	if (ret == 0)
		pr_info("pid %d: network namespace with %zu links, %zu routes\n", pid, ne.n_links,
			ne.n_routes);
	caches_free(&c);
	close(nsfd);
	close(self);
	/* Built with xmalloc: free it the same way protobuf-c would. */
	for (size_t i = 0; i < ne.n_links; i++)
		protobuf_c_message_free_unpacked(&ne.links[i]->base, NULL);
	for (size_t i = 0; i < ne.n_routes; i++)
		protobuf_c_message_free_unpacked(&ne.routes[i]->base, NULL);
	for (size_t i = 0; i < ne.n_sysctls; i++)
		protobuf_c_message_free_unpacked(&ne.sysctls[i]->base, NULL);
	free(ne.links);
	free(ne.routes);
	free(ne.sysctls);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

static struct nl_addr *addr_of(int family, const ProtobufCBinaryData *b, int prefixlen)
{
	struct nl_addr *a = nl_addr_build(family, b->data, b->len);

	if (a && prefixlen >= 0)
		nl_addr_set_prefixlen(a, prefixlen);
	return a;
}

static int write_sysctl(const NetnsSysctl *s)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", s->name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : log_errno(-errno, "open %s", path);
	if (write_full(fd, s->value, strlen(s->value)) < 0)
		ret = log_errno(-errno, "write '%s' to %s", s->value, path);
	close(fd);
	return ret;
}

/* Global sysctls first (pass 0), the per-link ones once the links exist. */
static int restore_sysctls(const NetnsEntry *ne, int nsfd, int self, bool per_link)
{
	int ret = 0;

	if (enter_ns(nsfd, "the restored tree") < 0)
		return -EIO;
	for (size_t i = 0; i < ne->n_sysctls && !ret; i++) {
		bool link = !strncmp(ne->sysctls[i]->name, "ipv6/conf/", 10) ||
			    !strncmp(ne->sysctls[i]->name, "ipv4/conf/", 10);
		const char *n = ne->sysctls[i]->name + 10;

		if (link && (!strncmp(n, "all/", 4) || !strncmp(n, "default/", 8)))
			link = false;
		if (link == per_link)
			ret = write_sysctl(ne->sysctls[i]);
	}
	leave_ns(self);
	return ret;
}

static int add_addrs(struct nl_sock *sk, int ifindex, const char *link, NetnsAddr **addrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const NetnsAddr *e = addrs[i];
		struct rtnl_addr *a = rtnl_addr_alloc();
		struct nl_addr *local = addr_of(e->family, &e->local, e->prefixlen);
		int err;

		if (!a || !local) {
			pr_err("out of memory for an address of %s\n", link);
			return -ENOMEM;
		}
		rtnl_addr_set_ifindex(a, ifindex);
		rtnl_addr_set_family(a, e->family);
		rtnl_addr_set_local(a, local);
		nl_addr_put(local);
		if (e->has_peer) {
			struct nl_addr *p = addr_of(e->family, &e->peer, e->prefixlen);
			rtnl_addr_set_peer(a, p);
			nl_addr_put(p);
		}
		if (e->has_broadcast) {
			struct nl_addr *b = addr_of(e->family, &e->broadcast, -1);
			rtnl_addr_set_broadcast(a, b);
			nl_addr_put(b);
		}
		rtnl_addr_set_prefixlen(a, e->prefixlen);
		/* No duplicate address detection: sockets bind to it at once. */
		rtnl_addr_set_flags(a, e->flags | (e->family == AF_INET6 ? IFA_F_NODAD : 0));
		rtnl_addr_set_scope(a, e->scope);
		if (e->label)
			rtnl_addr_set_label(a, e->label);
		err = rtnl_addr_add(sk, a, 0);
		rtnl_addr_put(a);
		if (err < 0 && err != -NLE_EXIST) {
			pr_err("can't add an address (family %u, /%u) to %s: %s\n", e->family,
			       e->prefixlen, link, nl_geterror(err));
			return -EIO;
		}
	}
	return 0;
}

/* Set flags, MTU, MAC and queue length of an existing link, found by name. */
static int set_link(struct nl_sock *sk, const char *name, unsigned flags, uint32_t mtu,
		    const ProtobufCBinaryData *mac, bool has_txq, uint32_t txq, int master,
		    int *ifindex)
{
	struct rtnl_link *cur = NULL, *chg = rtnl_link_alloc();
	int err;

	err = rtnl_link_get_kernel(sk, 0, name, &cur);
	if (err < 0 || !chg) {
		pr_err("link %s: not found after creating it: %s\n", name, nl_geterror(err));
		if (chg)
			rtnl_link_put(chg);
		return -EIO;
	}
	*ifindex = rtnl_link_get_ifindex(cur);
	if (mtu)
		rtnl_link_set_mtu(chg, mtu);
	if (mac && mac->len) {
		struct nl_addr *a = nl_addr_build(AF_LLC, mac->data, mac->len);
		rtnl_link_set_addr(chg, a);
		nl_addr_put(a);
	}
	if (has_txq)
		rtnl_link_set_txqlen(chg, txq);
	if (master > 0)
		rtnl_link_set_master(chg, master);
	rtnl_link_set_flags(chg, flags);
	rtnl_link_unset_flags(chg, SETTABLE_IFF & ~flags);
	err = rtnl_link_change(sk, cur, chg, 0);
	rtnl_link_put(chg);
	rtnl_link_put(cur);
	if (err < 0) {
		pr_err("link %s: can't set its MTU, address or flags: %s\n", name, nl_geterror(err));
		return -EIO;
	}
	return 0;
}

/* The veth pair, made from the peer's namespace with our end sent into nsfd. */
static int make_veth(const NetnsLink *e, int nsfd, int self)
{
	int peer_ns = -1, err, ret = 0, idx, master = 0;
	struct nl_sock *sk;
	struct rtnl_link *l, *in;
	const char *where = e->peer_netns && *e->peer_netns ? e->peer_netns : "crtool";

	if (e->peer_netns && *e->peer_netns) {
		peer_ns = open(e->peer_netns, O_RDONLY | O_CLOEXEC);
		if (peer_ns < 0)
			return log_errno(-errno, "veth %s: open the namespace of its other end %s",
					 e->name, e->peer_netns);
	}
	sk = nl_open_in(peer_ns, self, where);
	if (!sk) {
		ret = -EIO;
		goto out;
	}
	l = rtnl_link_veth_alloc();
	if (!l) {
		ret = -ENOMEM;
		goto out;
	}
	rtnl_link_set_name(l, e->peer_name);
	in = rtnl_link_veth_get_peer(l);
	rtnl_link_set_name(in, e->name);
	rtnl_link_set_ns_fd(in, nsfd);
	rtnl_link_put(in);
	err = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	if (err < 0) {
		pr_err("veth %s: can't create it with its other end %s in %s: %s\n", e->name,
		       e->peer_name, where, nl_geterror(err));
		ret = -EIO;
		goto out;
	}
	if (e->peer_master) {
		struct rtnl_link *m = NULL;

		if (rtnl_link_get_kernel(sk, 0, e->peer_master, &m) < 0) {
			pr_err("veth %s: the bridge %s its other end was a port of is gone from %s\n",
			       e->name, e->peer_master, where);
			ret = -ENOENT;
			goto out;
		}
		master = rtnl_link_get_ifindex(m);
		rtnl_link_put(m);
	}
	ret = set_link(sk, e->peer_name, e->peer_flags, e->peer_mtu,
		       e->has_peer_mac ? &e->peer_mac : NULL, false, 0, master, &idx);
	if (ret == 0)
		ret = add_addrs(sk, idx, e->peer_name, e->peer_addrs, e->n_peer_addrs);
out:
	if (sk)
		nl_socket_free(sk);
	if (peer_ns >= 0)
		close(peer_ns);
	return ret;
}

static int make_dummy(struct nl_sock *sk, const NetnsLink *e)
{
	struct rtnl_link *l = rtnl_link_alloc();
	int err;

	if (!l)
		return -ENOMEM;
	rtnl_link_set_name(l, e->name);
	rtnl_link_set_type(l, "dummy");
	err = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	if (err < 0) {
		pr_err("dummy %s: can't create it: %s\n", e->name, nl_geterror(err));
		return -EIO;
	}
	return 0;
}

static int add_route(struct nl_sock *sk, const NetnsRoute *e)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct nl_addr *dst;
	int err;

	if (!r)
		return -ENOMEM;
	rtnl_route_set_family(r, e->family);
	rtnl_route_set_table(r, e->table);
	rtnl_route_set_protocol(r, e->protocol);
	rtnl_route_set_scope(r, e->scope);
	rtnl_route_set_type(r, e->type);
	if (e->has_dst) {
		dst = addr_of(e->family, &e->dst, e->dst_len);
	} else {
		static const uint8_t zero[16];
		ProtobufCBinaryData z = { e->family == AF_INET ? 4 : 16, (uint8_t *)zero };
		dst = addr_of(e->family, &z, 0);
	}
	rtnl_route_set_dst(r, dst);
	nl_addr_put(dst);
	if (e->has_priority)
		rtnl_route_set_priority(r, e->priority);
	if (e->has_prefsrc) {
		struct nl_addr *s = addr_of(e->family, &e->prefsrc, -1);
		rtnl_route_set_pref_src(r, s);
		nl_addr_put(s);
	}
	if (e->oif || e->has_gateway) {
		struct rtnl_nexthop *nh = rtnl_route_nh_alloc();

		if (e->oif) {
			struct rtnl_link *l = NULL;

			if (rtnl_link_get_kernel(sk, 0, e->oif, &l) < 0) {
				pr_err("route via %s: no such link after restoring the links\n", e->oif);
				rtnl_route_nh_free(nh);
				rtnl_route_put(r);
				return -ENOENT;
			}
			rtnl_route_nh_set_ifindex(nh, rtnl_link_get_ifindex(l));
			rtnl_link_put(l);
		}
		if (e->has_gateway) {
			struct nl_addr *g = addr_of(e->family, &e->gateway, -1);
			rtnl_route_nh_set_gateway(nh, g);
			nl_addr_put(g);
		}
		rtnl_route_add_nexthop(r, nh);
	}
	err = rtnl_route_add(sk, r, NLM_F_CREATE);
	rtnl_route_put(r);
	if (err < 0 && err != -NLE_EXIST) {
		pr_err("can't add a route (family %u, /%u%s%s, table %u): %s\n", e->family,
		       e->dst_len, e->oif ? " dev " : "", e->oif ? e->oif : "", e->table,
		       nl_geterror(err));
		return -EIO;
	}
	return 0;
}

int netns_restore(int dirfd, const char *dir, int nsfd)
{
	NetnsEntry *ne = NULL;
	struct nl_sock *sk = NULL;
	int self, ret;

	ret = img_read_one(dirfd, dir, IMG_NETNS, 0, &netns_entry__descriptor,
			   (ProtobufCMessage **)&ne);
	if (ret < 0)
		return ret;
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		ret = log_errno(-errno, "open /proc/self/ns/net");
		goto out;
	}
	ret = restore_sysctls(ne, nsfd, self, false);
	if (ret < 0)
		goto out;
	sk = nl_open_in(nsfd, self, "the restored tree");
	if (!sk) {
		ret = -EIO;
		goto out;
	}
	for (size_t i = 0; i < ne->n_links && !ret; i++) {
		const NetnsLink *e = ne->links[i];
		int idx;

		if (!strcmp(e->kind, "veth"))
			ret = make_veth(e, nsfd, self);
		else if (!strcmp(e->kind, "dummy"))
			ret = make_dummy(sk, e);
		if (!ret)
			ret = set_link(sk, e->name, e->flags, e->mtu, e->has_mac ? &e->mac : NULL,
				       e->has_txqlen, e->txqlen, 0, &idx);
		if (!ret)
			ret = add_addrs(sk, idx, e->name, e->addrs, e->n_addrs);
	}
	if (!ret)
		ret = restore_sysctls(ne, nsfd, self, true);
	for (size_t i = 0; i < ne->n_routes && !ret; i++)
		ret = add_route(sk, ne->routes[i]);
	if (!ret)
		pr_info("network namespace: %zu links, %zu routes, %zu sysctls\n", ne->n_links,
			ne->n_routes, ne->n_sysctls);
out:
	if (sk)
		nl_socket_free(sk);
	if (self >= 0)
		close(self);
	img_free_msg(&ne->base);
	return ret;
}
