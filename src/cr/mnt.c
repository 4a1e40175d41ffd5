#define LOG_PREFIX "mnt: "
#include <errno.h>
#include "cr.h"
#include "log.h"
#include "ns.h"
int mnt_dump_check(pid_t root, uint64_t m) { (void)m; pr_err("pid %d: mount namespaces not yet\n", root); return -EOPNOTSUPP; }
int mnt_dump(pid_t root, int dirfd, const char *dir, uint64_t m) { (void)root; (void)dirfd; (void)dir; (void)m; return -EOPNOTSUPP; }
int mnt_restore_load(struct rst_ctx *rc) { (void)rc; return -EOPNOTSUPP; }
int mnt_restore_build(struct rst_ctx *rc) { (void)rc; return -EOPNOTSUPP; }
int mnt_restore_proc(struct rst_ctx *rc) { (void)rc; return 0; }
void mnt_restore_release(struct rst_ctx *rc) { (void)rc; }
bool mnt_dev_recreated(struct rst_ctx *rc, uint64_t dev) { (void)rc; (void)dev; return false; }
