#define LOG_PREFIX "netlock: "
/*
 * The network lock: while a TCP connection's state is read and until its
 * copy is rebuilt, no packet of it may pass, or a byte could be acknowledged
 * by the peer and then lost with the dumped socket. crtool keeps a table of
 * its own, "inet crtool", whose input and output chains drop every packet
 * whose 4-tuple is in one of two sets (IPv4, IPv6). Locking a connection
 * adds its tuple in both directions; unlocking removes them, and the table
 * goes when both sets are empty. Everything goes through libnftables, one
 * atomic batch per call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nftables/libnftables.h>

#include "log.h"
#include "sk-inet.h"
#include "util.h"

#define NL_TABLE "inet crtool"

static const char nl_setup[] =
	"add table " NL_TABLE "\n"
	"add set " NL_TABLE " conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n"
	"add set " NL_TABLE " conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n"
	"add chain " NL_TABLE " in { type filter hook input priority -300; }\n"
	"add chain " NL_TABLE " out { type filter hook output priority -300; }\n"
	"flush chain " NL_TABLE " in\n"
	"flush chain " NL_TABLE " out\n"
	"add rule " NL_TABLE " in ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n"
	"add rule " NL_TABLE " in ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n"
	"add rule " NL_TABLE " out ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n"
	"add rule " NL_TABLE " out ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n";

void netlock_fmt(char *buf, size_t len, int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

/* Runs cmd; on failure the error text nft gave is in err (if not NULL). */
static int nft_run(const char *cmd, bool dry, char *err, size_t errlen)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int r;

	if (!ctx) {
		if (err)
			snprintf(err, errlen, "nft_ctx_new failed");
		return -ENOMEM;
	}
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	nft_ctx_set_dry_run(ctx, dry);
	r = nft_run_cmd_from_buffer(ctx, cmd);
	if (r && err) {
		const char *e = nft_ctx_get_error_buffer(ctx);

		snprintf(err, errlen, "%.*s", (int)strcspn(e ? e : "", "\n"), e ? e : "");
	}
	nft_ctx_free(ctx);
	return r ? -EIO : 0;
}

/* "add element inet crtool conn4 { a . p . b . q, b . q . a . p }" */
static void elements(char *buf, size_t len, const char *verb, const struct netlock_conn *c)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->src, s, sizeof(s));
	inet_ntop(c->family, c->dst, d, sizeof(d));
	snprintf(buf, len, "%s element " NL_TABLE " %s { %s . %u . %s . %u, %s . %u . %s . %u }\n", verb,
		 c->family == AF_INET6 ? "conn6" : "conn4", s, c->sport, d, c->dport, d, c->dport, s,
		 c->sport);
}

int netlock_lock(const struct netlock_conn *c, int n)
{
	size_t cap = sizeof(nl_setup) + (size_t)n * 256, used;
	_cleanup_free_ char *cmd = xmalloc(cap);
	char err[512] = "";

	used = snprintf(cmd, cap, "%s", nl_setup);
	for (int i = 0; i < n; i++) {
		elements(cmd + used, cap - used, "add", &c[i]);
		used += strlen(cmd + used);
	}
	if (nft_run(cmd, false, err, sizeof(err)) < 0) {
		pr_err("can't add the nftables rules that block %d TCP connection(s) (table %s): %s\n", n,
		       NL_TABLE, err);
		return -EIO;
	}
	pr_info("%d TCP connection(s) blocked in nftables table %s\n", n, NL_TABLE);
	return 0;
}

/* Both sets empty: the table goes. */
static void drop_table_if_empty(void)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *out;
	bool empty;

	if (!ctx)
		return;
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, "list table " NL_TABLE "\n")) {
		nft_ctx_free(ctx);
		return;
	}
	out = nft_ctx_get_output_buffer(ctx);
	empty = out && !strstr(out, "elements");
	nft_ctx_free(ctx);
	if (empty && nft_run("delete table " NL_TABLE "\n", false, NULL, 0) == 0)
		pr_debug("table %s removed\n", NL_TABLE);
}

void netlock_unlock(const struct netlock_conn *c, int n)
{
	for (int i = 0; i < n; i++) {
		char cmd[512], err[512] = "", a[64], b[64];

		elements(cmd, sizeof(cmd), "delete", &c[i]);
		if (nft_run(cmd, false, err, sizeof(err)) < 0) {
			netlock_fmt(a, sizeof(a), c[i].family, c[i].src, c[i].sport);
			netlock_fmt(b, sizeof(b), c[i].family, c[i].dst, c[i].dport);
			pr_debug("connection %s - %s was not blocked: %s\n", a, b, err);
		}
	}
	if (n)
		drop_table_if_empty();
}

const char *netlock_probe(char *why, size_t len)
{
	if (nft_run(nl_setup, true, why, len) < 0)
		return NULL;
	return "nftables (libnftables), table " NL_TABLE;
}
