/*
 * Sockets of the inet families (sk-inet.c), netlink sockets (sk-netlink.c)
 * and the network lock that keeps TCP connections silent while their state
 * is read and rebuilt (netlock.c).
 */
#ifndef CR_SK_INET_H
#define CR_SK_INET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "files.h"
#include "sk-inet.pb-c.h"

struct file_seen;
struct rst_ctx;

extern const struct fd_ops inet_ops, netlink_ops;

/* What a socket descriptor is, once inet_dump_prepare() saw it; NULL: not ours. */
const struct fd_ops *sk_classify(const struct fd_dump *d);

/*
 * After the tree is frozen, before any descriptor is dumped: find every
 * socket of the tree, refuse what cannot be restored, lock TCP connections
 * and read their state in repair mode.
 */
int sk_dump_prepare(struct file_seen *fs);
/* Write inetsk.img, netlinksk.img and the tcp-stream images. */
int sk_dump_finish(struct file_seen *fs, int dirfd, const char *dir);
/* Before the tree runs again (failed dump, --leave-running): undo repair and locks. */
void sk_dump_resume(struct file_seen *fs);
/* After a successful dump killed the tree: drop the locks that only held in-tree pairs. */
void sk_dump_killed(struct file_seen *fs);
void sk_dump_free(struct file_seen *fs);

int sk_restore_load(struct rst_ctx *rc);
/* After every description is open: leave repair mode, unlock, reconnect. */
int sk_restore_finish(struct rst_ctx *rc);
void sk_restore_release(struct rst_ctx *rc);

/* sk-netlink.c */
int netlink_dump_one(int sk, uint64_t ino, NetlinkSkEntry **out, const char *who);
int netlink_open(const NetlinkSkEntry *n, const char *who);

/* Socket options shared by the families: values that differ from a fresh socket's. */
int sk_opts_dump(int sk, int family, int type, int proto, SkOpt ***opts, size_t *n,
		 const char *who);
enum sk_opts_when { SK_OPTS_ALL, SK_OPTS_EARLY, SK_OPTS_LATE };	/* early: before bind() */
int sk_opts_restore(int sk, SkOpt *const *opts, size_t n, enum sk_opts_when when, const char *who);

/* netlock.c: TCP connections (4-tuples, both directions) whose packets are dropped. */
struct netlock_conn {
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;		/* host order */
};
/* Blocks them for the time of a dump (they unblock by themselves after a while). */
int netlock_lock(const struct netlock_conn *c, int n);
/* Blocks them until netlock_unlock() (a restore), however long it takes. */
int netlock_keep(const struct netlock_conn *c, int n);
/* Unlock each; a connection that was not locked is not an error. */
void netlock_unlock(const struct netlock_conn *c, int n);
/* What crtool check reports; NULL when nftables cannot be used. */
const char *netlock_probe(char *why, size_t len);
/* "1.2.3.4:80" or "[::1]:80" */
void netlock_fmt(char *buf, size_t len, int family, const uint8_t *addr, uint16_t port);

#endif
