#define LOG_PREFIX "kerndat: "
/*
 * Kernel feature probes. Each probe exercises its feature for real on a
 * scratch object (a mapping, a socket, a child process) and answers 1
 * (present), 0 (missing, with the reason) or -errno (the probe could not
 * run). Probes that change process-wide state run in a forked child; every
 * child is killed and reaped before the probe returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <asm/prctl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "kerndat.h"
#include "sk-inet.h"
#include "linux/cr-compat.h"
#include "log.h"
#include "util.h"

#define WHY_LEN 200

/*
 * Shared with probe children (MAP_SHARED), so that a probe body reports its
 * result and reason the same way whether it runs in the prober or a child.
 */
struct probe_scratch {
	int result;
	char why[WHY_LEN];
};
static struct probe_scratch *scratch;

/* Record why the running probe found its feature missing; returns 0. */
__attribute__((format(printf, 1, 2))) static int missing(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(scratch->why, sizeof(scratch->why), fmt, ap);
	va_end(ap);
	return 0;
}

/* Record why the running probe could not run; returns -err. */
__attribute__((format(printf, 2, 3))) static int failed_err(int err, const char *fmt, ...)
{
	va_list ap;

	errno = err;
	va_start(ap, fmt);
	vsnprintf(scratch->why, sizeof(scratch->why), fmt, ap);
	va_end(ap);
	return err > 0 ? -err : -EIO;
}
#define failed(fmt, ...) failed_err(errno, fmt, ##__VA_ARGS__)

/* ---- child processes ---- */

static int wait_child(pid_t pid, int *status)
{
	while (waitpid(pid, status, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Kill and reap a probe child on every way out of a probe. */
static void reap_childp(pid_t *pid)
{
	int e = errno, status;

	if (*pid > 0) {
		kill(*pid, SIGKILL);
		wait_child(*pid, &status);
	}
	errno = e;
}
#define _cleanup_child_ _cleanup_(reap_childp)
#define TAKE_PID(p) TAKE_FD(p)

/*
 * A probe child must never outlive the prober, even one killed mid-probe.
 * parent 0: the child is in a new PID namespace, where getppid() is 0.
 */
static void die_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
}

static __attribute__((noreturn)) void idle_child(pid_t parent, void (*setup)(void), int ready_fd)
{
	die_with_parent(parent);
	if (setup)
		setup();
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/*
 * Fork a child that runs setup (if any), says it is ready and then waits to
 * be killed: the target of the ptrace and cross-process probes. Returns its
 * pid or -errno.
 */
static pid_t fork_idle_child(void (*setup)(void))
{
	_cleanup_close_ int rd = -1, wr = -1;
	_cleanup_child_ pid_t pid = -1;
	pid_t parent = getpid();
	int p[2];
	ssize_t n;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return failed("pipe2: %m");
	rd = p[0];
	wr = p[1];
	pid = fork();
	if (pid < 0)
		return failed("fork: %m");
	if (pid == 0)
		idle_child(parent, setup, wr);
	close(TAKE_FD(wr));
	while ((n = read(rd, &c, 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		return failed_err(ECHILD, "probe child %d died before it was ready", pid);
	return TAKE_PID(pid);
}

static __attribute__((noreturn)) void child_body(pid_t parent, int (*fn)(void))
{
	die_with_parent(parent);
	scratch->result = fn();
	_exit(0);
}

/* Wait for a child running child_body() and return what its probe body said. */
static int finish_child(pid_t pid)
{
	int status;

	if (wait_child(pid, &status) < 0)
		return failed("waitpid %d: %m", pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return failed_err(ECHILD, "probe child %d died (wait status %#x)", pid, status);
	return scratch->result;
}

/* Run a probe body in a forked child: for probes that change process state. */
static int run_in_child(int (*fn)(void))
{
	pid_t parent = getpid(), pid;

	scratch->result = -ECHILD;
	pid = fork();
	if (pid < 0)
		return failed("fork: %m");
	if (pid == 0)
		child_body(parent, fn);
	return finish_child(pid);
}

/* ---- scratch mappings ---- */

struct mapping {
	void *addr;
	size_t len;
};

static void unmapp(struct mapping *m)
{
	if (m->addr)
		munmap(m->addr, m->len);
}
#define _cleanup_unmap_ _cleanup_(unmapp)

static int map_anon(struct mapping *m, size_t pages)
{
	m->len = pages * PAGE_SIZE;
	m->addr = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->addr == MAP_FAILED) {
		m->addr = NULL;
		return failed("mmap of %zu anonymous bytes: %m", m->len);
	}
	return 0;
}

static void touch_page(struct mapping *m, size_t page, char val)
{
	((volatile char *)m->addr)[page * PAGE_SIZE] = val;
}

/* ---- ptrace ---- */

/* Seize pid and bring it into a ptrace event stop, as the dumper does. */
static int seize_and_stop(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) < 0)
		return missing("PTRACE_SEIZE pid %d: %m", pid);
	if (ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0)
		return missing("PTRACE_INTERRUPT pid %d: %m", pid);
	if (wait_child(pid, &status) < 0)
		return failed("waitpid %d: %m", pid);
	if (!WIFSTOPPED(status) || status >> 16 != PTRACE_EVENT_STOP)
		return missing("pid %d: PTRACE_INTERRUPT gave wait status %#x, not an event stop",
			       pid, status);
	return 1;
}

static int probe_ptrace_seize(void)
{
	_cleanup_child_ pid_t pid = fork_idle_child(NULL);
	int r;

	if (pid < 0)
		return pid;
	r = seize_and_stop(pid);
	if (r <= 0)
		return r;
	if (ptrace(PTRACE_DETACH, pid, NULL, NULL) < 0)
		return missing("PTRACE_DETACH pid %d: %m", pid);
	return 1;
}

static int probe_rseq(void)
{
	struct cr_ptrace_rseq_configuration conf = { 0 };
	_cleanup_child_ pid_t pid = fork_idle_child(NULL);
	long n;
	int r;

	if (pid < 0)
		return pid;
	r = seize_and_stop(pid);
	if (r < 0)
		return r;
	if (r == 0)
		return failed_err(EPERM, "can't stop a probe child: %s", scratch->why);
	n = ptrace(CR_PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(conf), &conf);
	if (n < 0)
		return missing("PTRACE_GET_RSEQ_CONFIGURATION pid %d: %m", pid);
	if (n == 0)
		return missing("PTRACE_GET_RSEQ_CONFIGURATION pid %d returned no data", pid);
	return 1;
}

/* ---- memory ---- */

static long pagemap_scan(int fd, struct mapping *m, uint64_t flags, uint64_t category,
			 struct cr_page_region *regs, size_t nr)
{
	struct cr_pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (uintptr_t)m->addr,
		.end = (uintptr_t)m->addr + m->len,
		.vec = (uintptr_t)regs,
		.vec_len = nr,
		.category_mask = category,
		.return_mask = category,
	};

	return ioctl(fd, CR_PAGEMAP_SCAN, &arg);
}

/* Whether a scan found exactly one region: page `page` of m. */
static bool scan_found_page(long n, const struct cr_page_region *reg, struct mapping *m, size_t page)
{
	uint64_t start = (uintptr_t)m->addr + page * PAGE_SIZE;

	return n == 1 && reg[0].start == start && reg[0].end == start + PAGE_SIZE;
}

static int probe_pagemap_scan(void)
{
	_cleanup_unmap_ struct mapping m = { 0 };
	_cleanup_close_ int fd = -1;
	struct cr_page_region reg[4];
	long n;
	int r;

	r = map_anon(&m, 4);
	if (r < 0)
		return r;
	touch_page(&m, 1, 1);
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failed("open /proc/self/pagemap: %m");
	n = pagemap_scan(fd, &m, 0, CR_PAGE_IS_PRESENT, reg, ARRAY_SIZE(reg));
	if (n < 0)
		return missing("ioctl PAGEMAP_SCAN on /proc/self/pagemap: %m");
	if (!scan_found_page(n, reg, &m, 1))
		return missing("PAGEMAP_SCAN listed %ld regions, not the one touched page", n);
	return 1;
}

static char vm_probe_buf[16] = "prober";

static void vm_probe_setup(void)
{
	strcpy(vm_probe_buf, "probe child");
}

static int probe_process_vm_readv(void)
{
	_cleanup_child_ pid_t pid = fork_idle_child(vm_probe_setup);
	char got[sizeof(vm_probe_buf)] = "";
	struct iovec local = { got, sizeof(got) };
	struct iovec remote = { vm_probe_buf, sizeof(vm_probe_buf) };
	ssize_t n;

	if (pid < 0)
		return pid;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return missing("process_vm_readv pid %d: %m", pid);
	if (n != sizeof(got) || strcmp(got, "probe child") != 0)
		return missing("process_vm_readv pid %d read the wrong bytes", pid);
	return 1;
}

/* Arm write tracking on m, write one page, and check the scan finds just it. */
static int check_wp_tracking(int uffd, struct mapping *m)
{
	struct uffdio_writeprotect wp = {
		.range = { (uintptr_t)m->addr, m->len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	const uint64_t rearm = CR_PM_SCAN_WP_MATCHING | CR_PM_SCAN_CHECK_WPASYNC;
	_cleanup_close_ int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct cr_page_region reg[4];
	long n;

	if (fd < 0)
		return failed("open /proc/self/pagemap: %m");
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
		return missing("UFFDIO_WRITEPROTECT: %m");
	touch_page(m, 2, 1);
	n = pagemap_scan(fd, m, rearm, CR_PAGE_IS_WRITTEN, reg, ARRAY_SIZE(reg));
	if (n < 0)
		return missing("PAGEMAP_SCAN for written pages: %m");
	if (!scan_found_page(n, reg, m, 2))
		return missing("PAGEMAP_SCAN listed %ld written regions, not the one written page", n);
	/* The scan re-armed the page: a second scan must find nothing. */
	n = pagemap_scan(fd, m, rearm, CR_PAGE_IS_WRITTEN, reg, ARRAY_SIZE(reg));
	if (n != 0)
		return missing("PAGEMAP_SCAN did not re-arm write protection (%ld regions)", n);
	return 1;
}

static int probe_userfaultfd_wp(void)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = CR_UFFD_FEATURE_WP_ASYNC | CR_UFFD_FEATURE_WP_UNPOPULATED,
	};
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	_cleanup_unmap_ struct mapping m = { 0 };
	_cleanup_close_ int uffd = -1;
	int r;

	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0)
		return missing("userfaultfd(UFFD_USER_MODE_ONLY): %m");
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return missing("UFFDIO_API with WP_ASYNC|WP_UNPOPULATED: %m");
	r = map_anon(&m, 4);
	if (r < 0)
		return r;
	reg.range.start = (uintptr_t)m.addr;
	reg.range.len = m.len;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return missing("UFFDIO_REGISTER_MODE_WP on %p: %m", m.addr);
	return check_wp_tracking(uffd, &m);
}

static int probe_madv_guard(void)
{
	_cleanup_unmap_ struct mapping m = { 0 };
	int r = map_anon(&m, 2);

	if (r < 0)
		return r;
	if (madvise(m.addr, PAGE_SIZE, CR_MADV_GUARD_INSTALL) < 0)
		return missing("madvise(MADV_GUARD_INSTALL): %m");
	return 1;
}

static ssize_t read_pagemap_entry(int fd, struct mapping *m, uint64_t *ent)
{
	return pread(fd, ent, sizeof(*ent), (uintptr_t)m->addr / PAGE_SIZE * sizeof(*ent));
}

/* In a child: clear_refs 4 clears every soft-dirty bit of the whole mm. */
static int try_soft_dirty(void)
{
	const uint64_t soft_dirty = 1ULL << 55;
	_cleanup_unmap_ struct mapping m = { 0 };
	_cleanup_close_ int pm = -1, cr = -1;
	uint64_t before, after;
	int r = map_anon(&m, 1);

	if (r < 0)
		return r;
	touch_page(&m, 0, 1);
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (pm < 0 || cr < 0)
		return failed("open /proc/self/%s: %m", pm < 0 ? "pagemap" : "clear_refs");
	if (write(cr, "4", 1) != 1)
		return missing("write 4 to /proc/self/clear_refs: %m");
	if (read_pagemap_entry(pm, &m, &before) != sizeof(before))
		return failed("read /proc/self/pagemap: %m");
	touch_page(&m, 0, 2);
	if (read_pagemap_entry(pm, &m, &after) != sizeof(after))
		return failed("read /proc/self/pagemap: %m");
	if ((before & soft_dirty) || !(after & soft_dirty))
		return missing("pagemap bit 55 is %d after clear_refs and %d after a write "
			       "(kernel without CONFIG_MEM_SOFT_DIRTY)",
			       !!(before & soft_dirty), !!(after & soft_dirty));
	return 1;
}

static int probe_soft_dirty(void)
{
	return run_in_child(try_soft_dirty);
}

/* ---- restore-side features ---- */

/* Runs as pid 1 of a new PID namespace: ask for pid 5 for its own child. */
static int clone_with_pid5(void)
{
	pid_t want = 5;
	struct cr_clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&want,
		.set_tid_size = 1,
	};
	long pid = syscall(SYS_clone3, &args, CR_CLONE_ARGS_SIZE_VER2);
	int status;

	if (pid < 0)
		return missing("clone3(set_tid={5}) inside a new PID namespace: %m");
	if (pid == 0)
		_exit(getpid() == want ? 0 : 1);
	if (wait_child(pid, &status) < 0)
		return failed("waitpid %ld: %m", pid);
	if (pid != want || status != 0)
		return missing("clone3(set_tid={5}) made pid %ld (wait status %#x)", pid, status);
	return 1;
}

/*
 * Both ways restore uses set_tid: pid 1 of a fresh PID namespace, then an
 * arbitrary pid inside it.
 */
static int probe_clone3_set_tid(void)
{
	pid_t want = 1;
	struct cr_clone_args args = {
		.flags = CLONE_NEWPID,
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&want,
		.set_tid_size = 1,
	};
	long pid;

	scratch->result = -ECHILD;
	pid = syscall(SYS_clone3, &args, CR_CLONE_ARGS_SIZE_VER2);
	if (pid < 0)
		return missing("clone3(CLONE_NEWPID, set_tid={1}): %m");
	if (pid == 0)
		child_body(0, clone_with_pid5);
	return finish_child(pid);
}

/* Fields 26-28 and 45-51 of /proc/self/stat: the mm layout to hand back. */
static int read_mm_layout(struct prctl_mm_map *map)
{
	_cleanup_free_ char *buf = NULL;
	unsigned long long v[52] = { 0 };
	ssize_t len = read_file_at(AT_FDCWD, "/proc/self/stat", &buf);
	char *p;
	int field;

	if (len < 0)
		return failed_err(-len, "read /proc/self/stat: %s", strerror(-len));
	/* comm may hold spaces and parentheses: count fields from the last ')'. */
	p = strrchr(buf, ')');
	for (field = 3; p && field < 52; field++) {
		p = strchr(p, ' ');
		if (!p)
			break;
		v[field] = strtoull(++p, NULL, 10);
	}
	if (field < 52)
		return failed_err(EINVAL, "/proc/self/stat has fewer than 51 fields");
	*map = (struct prctl_mm_map){
		.start_code = v[26], .end_code = v[27], .start_stack = v[28],
		.start_data = v[45], .end_data = v[46], .start_brk = v[47],
		.arg_start = v[48], .arg_end = v[49], .env_start = v[50], .env_end = v[51],
		.brk = syscall(SYS_brk, 0),
		.exe_fd = -1,
	};
	return 1;
}

/*
 * In a child: hand the kernel the child's own mm layout, with its own exe
 * as exe_fd so that the capability check runs too. The kernel refuses to
 * switch exe while the old one is mapped (EBUSY): that happens only after
 * every other check passed.
 */
static int try_pr_set_mm_map(void)
{
	struct prctl_mm_map map;
	int r = read_mm_layout(&map);
	_cleanup_close_ int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	if (r <= 0)
		return r;
	if (exe < 0)
		return failed("open /proc/self/exe: %m");
	map.exe_fd = exe;
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0) == 0 || errno == EBUSY)
		return 1;
	if (errno == EPERM)
		return missing("PR_SET_MM_MAP: %m (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)");
	return missing("PR_SET_MM_MAP: %m");
}

static int probe_pr_set_mm_map(void)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) < 0)
		return missing("prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): %m");
	if (size != sizeof(struct prctl_mm_map))
		return missing("PR_SET_MM_MAP_SIZE is %u, this build knows %zu", size,
			       sizeof(struct prctl_mm_map));
	return run_in_child(try_pr_set_mm_map);
}

static bool is_vdso_area_name(const char *name)
{
	return !strcmp(name, "[vdso]") || !strcmp(name, "[vvar]") || !strcmp(name, "[vvar_vclock]");
}

struct vdso_area {
	unsigned long lo, vdso;		/* lowest start; start of [vdso] */
	unsigned long start[4], end[4];	/* [vvar], [vvar_vclock], [vdso] */
	int nr;
};

static void add_vdso_part(struct vdso_area *a, unsigned long start, unsigned long end,
			  const char *name)
{
	if (a->nr == (int)ARRAY_SIZE(a->start))
		return;
	a->start[a->nr] = start;
	a->end[a->nr++] = end;
	a->lo = min_t(unsigned long, a->lo, start);
	if (!strcmp(name, "[vdso]"))
		a->vdso = start;
}

/* Find the mappings of the vDSO area of the calling process. */
static int find_vdso_area(struct vdso_area *a)
{
	_cleanup_free_ char *maps = NULL;
	ssize_t len = read_file_at(AT_FDCWD, "/proc/self/maps", &maps);
	char *line, *save = NULL;

	if (len < 0)
		return failed_err(-len, "read /proc/self/maps: %s", strerror(-len));
	*a = (struct vdso_area){ .lo = ULONG_MAX };
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;
		char name[32] = "";

		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %31s", &start, &end, name) == 3 &&
		    is_vdso_area_name(name))
			add_vdso_part(a, start, end, name);
	}
	return a->vdso ? 1 : missing("no [vdso] in /proc/self/maps");
}

/*
 * In a child: unmap the whole vDSO area and ask the kernel to map it back at
 * the same address, as the restorer does with the dumped address. From here
 * on the child must not call into the vDSO (only raw syscalls).
 */
static int try_arch_map_vdso(void)
{
	struct vdso_area old, now;
	int i, r = find_vdso_area(&old);

	if (r <= 0)
		return r;
	for (i = 0; i < old.nr; i++)
		if (munmap((void *)old.start[i], old.end[i] - old.start[i]) < 0)
			return failed("munmap of vDSO part %#lx-%#lx: %m", old.start[i], old.end[i]);
	/*
	 * EEXIST: a vDSO-area mapping under a name we do not know is still
	 * there (a newer layout); the call exists, which is what this probes.
	 */
	if (syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, old.lo) < 0)
		return errno == EEXIST ? 1 :
		       missing("arch_prctl(ARCH_MAP_VDSO_64, %#lx) after unmapping the vDSO: %m",
			       old.lo);
	r = find_vdso_area(&now);
	if (r <= 0)
		return r;
	if (now.vdso != old.vdso)
		return missing("ARCH_MAP_VDSO_64 at %#lx put [vdso] at %#lx, not %#lx", old.lo,
			       now.vdso, old.vdso);
	return 1;
}

/*
 * Called on a process that has a vDSO, ARCH_MAP_VDSO_64 only says EEXIST;
 * restore needs more: mapping it at a chosen address once the old one is
 * gone. The child does exactly that.
 */
static int probe_arch_map_vdso(void)
{
	return run_in_child(try_arch_map_vdso);
}

static int probe_vvar_vclock(void)
{
	_cleanup_free_ char *maps = NULL;
	ssize_t len = read_file_at(AT_FDCWD, "/proc/self/maps", &maps);

	if (len < 0)
		return failed_err(-len, "read /proc/self/maps: %s", strerror(-len));
	if (!strstr(maps, " [vvar_vclock]\n"))
		return missing("no [vvar_vclock] mapping in /proc/self/maps (older vDSO layout)");
	return 1;
}

/* In a child: the child's timers must not outlive the probe. */
static int try_timer_restore_ids(void)
{
	int id = 5; /* the kernel's timer_t is an int, read back in restore mode */

	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) < 0)
		return missing("prctl(PR_TIMER_CREATE_RESTORE_IDS, ON): %m");
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &id) < 0)
		return missing("timer_create with preset id 5: %m");
	if (id != 5)
		return missing("timer_create ignored the preset id 5 and gave %d", id);
	return 1;
}

static int probe_posix_timer_restore_ids(void)
{
	return run_in_child(try_timer_restore_ids);
}

/* ---- descriptors ---- */

/* Take a descriptor the way the dumper does: from another process. */
static int probe_pidfd(void)
{
	_cleanup_close_ int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	_cleanup_child_ pid_t pid = fork_idle_child(NULL); /* inherits null */
	_cleanup_close_ int pidfd = -1, fd = -1;
	struct stat a, b;

	if (null < 0)
		return failed("open /dev/null: %m");
	if (pid < 0)
		return pid;
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return missing("pidfd_open(%d): %m", pid);
	fd = syscall(SYS_pidfd_getfd, pidfd, null, 0);
	if (fd < 0)
		return missing("pidfd_getfd(pid %d, fd %d): %m", pid, null);
	if (fstat(fd, &a) < 0 || fstat(null, &b) < 0)
		return failed("fstat: %m");
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return missing("pidfd_getfd(pid %d, fd %d) returned another file", pid, null);
	return 1;
}

/* The calls restore makes on a socket before it is connected. */
static int probe_tcp_repair(void)
{
	_cleanup_close_ int sk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1, off = 0, queue = TCP_SEND_QUEUE;
	unsigned int seq = 12345;

	if (sk < 0)
		return failed("socket(AF_INET, SOCK_STREAM): %m");
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return missing("setsockopt(TCP_REPAIR, 1): %m");
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR_QUEUE, &queue, sizeof(queue)) < 0)
		return missing("setsockopt(TCP_REPAIR_QUEUE): %m");
	if (setsockopt(sk, SOL_TCP, TCP_QUEUE_SEQ, &seq, sizeof(seq)) < 0)
		return missing("setsockopt(TCP_QUEUE_SEQ): %m");
	if (setsockopt(sk, SOL_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
		return missing("setsockopt(TCP_REPAIR, 0): %m");
	return 1;
}

/* UNIX_DIAG lists a socketpair of ours with its peer, as the dumper needs. */
static int probe_unix_diag(void)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.r = { .sdiag_family = AF_UNIX, .udiag_states = ~0U, .udiag_show = UDIAG_SHOW_PEER },
	};
	_cleanup_close_ int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	_cleanup_close_ int a = -1, b = -1;
	static char buf[1 << 15];
	struct stat sa, sb;
	int sv[2];

	if (nl < 0)
		return missing("socket(NETLINK_SOCK_DIAG): %m");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return failed("socketpair: %m");
	a = sv[0];
	b = sv[1];
	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return failed("fstat: %m");
	if (send(nl, &req, sizeof(req), 0) != sizeof(req))
		return missing("UNIX_DIAG request: %m");
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n <= 0)
			return missing("UNIX_DIAG reply: %m");
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *at = (struct rtattr *)(m + 1);
			int alen = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

			if (h->nlmsg_type == NLMSG_DONE)
				return missing("UNIX_DIAG does not list a socketpair");
			if (h->nlmsg_type == NLMSG_ERROR)
				return missing("UNIX_DIAG: error %d", ((struct nlmsgerr *)m)->error);
			if (m->udiag_ino != sa.st_ino)
				continue;
			for (; RTA_OK(at, alen); at = RTA_NEXT(at, alen))
				if (at->rta_type == UNIX_DIAG_PEER && *(uint32_t *)RTA_DATA(at) == sb.st_ino)
					return 1;
			return missing("UNIX_DIAG does not show the peer of a socketpair");
		}
	}
}

/* Blocking TCP connections while they are dumped: a dry run of the nftables batch. */
static int probe_netlock(void)
{
	char err[WHY_LEN] = "";

	if (!netlock_probe(err, sizeof(err)))
		return missing("nftables: %s", err);
	return 1;
}

static int probe_memfd(void)
{
	_cleanup_close_ int fd = memfd_create("crtool-probe", MFD_CLOEXEC);

	if (fd < 0)
		return missing("memfd_create: %m");
	if (ftruncate(fd, PAGE_SIZE) < 0)
		return missing("ftruncate of a memfd: %m");
	return 1;
}

/* ---- the table ---- */

struct probe {
	const char *name;
	const char *what_breaks;
	bool required;
	int (*run)(void);
};

static const struct probe probes[] = {
	{ "ptrace_seize", "dump: tasks cannot be frozen", true, probe_ptrace_seize },
	{ "pagemap_scan", "dump: present pages cannot be listed", true, probe_pagemap_scan },
	{ "process_vm_readv", "dump: task memory cannot be copied", true,
	  probe_process_vm_readv },
	{ "clone3_set_tid", "restore: tasks cannot get their PIDs back", true,
	  probe_clone3_set_tid },
	{ "pr_set_mm_map", "restore: mm fields, auxv and exe link are lost", true,
	  probe_pr_set_mm_map },
	{ "arch_map_vdso", "restore: the vDSO cannot be placed at its old address", true,
	  probe_arch_map_vdso },
	{ "vvar_vclock", "nothing (tells the vDSO area layout)", false, probe_vvar_vclock },
	{ "rseq", "tasks with rseq registered (glibc does) restore without it", false,
	  probe_rseq },
	{ "pidfd", "descriptors cannot be taken with pidfd_getfd", false, probe_pidfd },
	{ "userfaultfd_wp", "incremental dumps (write tracking)", false, probe_userfaultfd_wp },
	{ "madv_guard", "guard regions (MADV_GUARD_INSTALL) are not restored", false,
	  probe_madv_guard },
	{ "posix_timer_restore_ids", "POSIX timers cannot keep their ids", false,
	  probe_posix_timer_restore_ids },
	{ "soft_dirty", "nothing (userfaultfd_wp tracks writes instead)", false,
	  probe_soft_dirty },
	{ "tcp_repair", "established TCP connections", false, probe_tcp_repair },
	{ "memfd", "memfd files", false, probe_memfd },
	{ "unix_diag", "unix sockets", false, probe_unix_diag },
	{ "netlock_nft", "TCP connections cannot be blocked while dumped (dump refuses them)", false,
	  probe_netlock },
};
#define NR_PROBES ARRAY_SIZE(probes)

static struct cr_feature features[NR_PROBES];
static bool probed[NR_PROBES];
static char why[NR_PROBES][WHY_LEN];

static int run_probe(const struct probe *p, char *reason)
{
	int r;

	scratch = mmap(NULL, sizeof(*scratch), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	if (scratch == MAP_FAILED) {
		r = -errno;
		snprintf(reason, WHY_LEN, "mmap of the probe scratch page: %s", strerror(errno));
		scratch = NULL;
		return r;
	}
	scratch->why[0] = '\0';
	r = p->run();
	memcpy(reason, scratch->why, WHY_LEN);
	munmap(scratch, sizeof(*scratch));
	scratch = NULL;
	return r;
}

/*
 * CR_FEATURES_DISABLE=a,b makes features a and b look missing without
 * probing them: how tests force the fallback paths.
 */
static bool disabled_by_env(const char *name)
{
	const char *list = getenv("CR_FEATURES_DISABLE");
	size_t len = strlen(name);

	while (list && *list) {
		size_t n = strcspn(list, ",");

		if (n == len && !strncmp(list, name, n))
			return true;
		list += n + (list[n] == ',');
	}
	return false;
}

static void probe_one(size_t i)
{
	const struct probe *p = &probes[i];
	int r = 0;

	if (disabled_by_env(p->name))
		snprintf(why[i], WHY_LEN, "disabled by CR_FEATURES_DISABLE");
	else
		r = run_probe(p, why[i]);

	features[i] = (struct cr_feature){ p->name, p->what_breaks, p->required, r > 0 ? 1 : r };
	probed[i] = true;
	if (r > 0)
		pr_debug("%s: present\n", p->name);
	else if (r == 0)
		pr_info("%s: missing: %s\n", p->name, why[i]);
	else
		pr_warn("%s: probe failed: %s\n", p->name, why[i]);
}

int kerndat_probe_all(void)
{
	size_t i;

	for (i = 0; i < NR_PROBES; i++)
		if (!probed[i])
			probe_one(i);
	return 0;
}

const struct cr_feature *kerndat_features(size_t *n)
{
	kerndat_probe_all();
	*n = NR_PROBES;
	return features;
}

bool kerndat_has(const char *name)
{
	size_t i;

	for (i = 0; i < NR_PROBES; i++) {
		if (strcmp(probes[i].name, name) != 0)
			continue;
		if (!probed[i])
			probe_one(i);
		return features[i].present == 1;
	}
	pr_err("unknown kernel feature '%s'\n", name);
	return false;
}

/* ---- crtool check ---- */

static const char *status_word(const struct cr_feature *f)
{
	return f->present == 1 ? "present" : f->present == 0 ? "missing" : "error";
}

static void print_table(const struct cr_feature *f, size_t n)
{
	bool any = false;
	size_t i;

	printf("%-24s %-8s %s\n", "FEATURE", "STATUS", "WITHOUT IT");
	for (i = 0; i < n; i++)
		printf("%-24s %-8s %s%s\n", f[i].name, status_word(&f[i]), f[i].what_breaks,
		       f[i].required ? "" : " [optional]");
	for (i = 0; i < n; i++) {
		if (f[i].present == 1)
			continue;
		if (!any)
			printf("\nwhy:\n");
		any = true;
		printf("  %s: %s%s\n", f[i].name, f[i].present < 0 ? "probe failed: " : "", why[i]);
	}
}

static void print_verdict(const struct cr_feature *f, size_t n)
{
	const char *sep = "";
	size_t i;

	printf("\ndump/restore: ");
	for (i = 0; i < n; i++) {
		if (!f[i].required || f[i].present == 1)
			continue;
		printf("%s%s", *sep ? sep : "NOT usable (missing: ", f[i].name);
		sep = ", ";
	}
	fputs(*sep ? ")\n" : "usable\n", stdout);
}

static void print_json(const struct cr_feature *f, size_t n, bool usable)
{
	size_t i;

	printf("{\n");
	for (i = 0; i < n; i++)
		printf("  \"%s\": %s,\n", f[i].name, f[i].present == 1 ? "true" : "false");
	printf("  \"usable\": %s\n}\n", usable ? "true" : "false");
}

int kerndat_check_cmd(bool json)
{
	size_t n, i;
	const struct cr_feature *f = kerndat_features(&n);
	bool usable = true;

	for (i = 0; i < n; i++)
		if (f[i].required && f[i].present != 1)
			usable = false;
	if (json) {
		print_json(f, n, usable);
	} else {
		print_table(f, n);
		print_verdict(f, n);
		printf("TCP connections are blocked with: %s\n",
		       kerndat_has("netlock_nft") ? netlock_probe(NULL, 0) : "nothing (netlock_nft missing)");
	}
	if (fflush(stdout) == EOF || ferror(stdout)) {
		pr_perror("can't write the feature table to stdout");
		return 1;
	}
	return usable ? 0 : 1;
}
