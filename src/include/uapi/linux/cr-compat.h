/*
 * Kernel UAPI definitions the engine relies on, copied as constants so the
 * build does not depend on the build host's (older) headers. Values are the
 * kernel's ABI and never change.
 */
#ifndef CR_UAPI_COMPAT_H
#define CR_UAPI_COMPAT_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* fs.h: PAGEMAP_SCAN (Linux 6.7) */
#define CR_PAGE_IS_WPALLOWED (1ULL << 0)
#define CR_PAGE_IS_WRITTEN   (1ULL << 1)
#define CR_PAGE_IS_FILE      (1ULL << 2)
#define CR_PAGE_IS_PRESENT   (1ULL << 3)
#define CR_PAGE_IS_SWAPPED   (1ULL << 4)
#define CR_PAGE_IS_PFNZERO   (1ULL << 5)
#define CR_PAGE_IS_HUGE      (1ULL << 6)
#define CR_PAGE_IS_SOFT_DIRTY (1ULL << 7)
#define CR_PAGE_IS_GUARD     (1ULL << 8)

struct cr_page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define CR_PM_SCAN_WP_MATCHING (1ULL << 0)
#define CR_PM_SCAN_CHECK_WPASYNC (1ULL << 1)

struct cr_pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define CR_PAGEMAP_SCAN _IOWR('f', 16, struct cr_pm_scan_arg)

/* userfaultfd.h: write-protect async mode (Linux 6.7) */
#define CR_UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#define CR_UFFD_FEATURE_WP_ASYNC (1 << 15)

/* ptrace.h */
#define CR_PTRACE_GET_RSEQ_CONFIGURATION 0x420f
struct cr_ptrace_rseq_configuration {
	__u64 rseq_abi_pointer;
	__u32 rseq_abi_size;
	__u32 signature;
	__u32 flags;
	__u32 pad;
};

/* prctl.h */
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif

/* mman.h: guard regions (Linux 6.13) */
#define CR_MADV_GUARD_INSTALL 102
#define CR_MADV_GUARD_REMOVE 103

/* sched.h: clone3 */
struct cr_clone_args {
	__u64 flags;
	__u64 pidfd;
	__u64 child_tid;
	__u64 parent_tid;
	__u64 exit_signal;
	__u64 stack;
	__u64 stack_size;
	__u64 tls;
	__u64 set_tid;
	__u64 set_tid_size;
	__u64 cgroup;
};
#define CR_CLONE_ARGS_SIZE_VER2 88

#endif
