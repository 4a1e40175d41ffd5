/*
 * /proc parsers (src/include/proc.h) against sample lines and against the
 * live kernel: this process, a thread of it and children we set up so that
 * every field checked has a known value.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "util.h"

#include "tap.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static char tmpdir[64];

/* ---- helpers ------------------------------------------------------------- */

/* At exit, also after a bail out: the files the checks create, then the directory. */
static void remove_tmpdir(void)
{
	static const char *const files[] = { "a b (c) d", "fdinfo" };
	char path[128];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	if (rmdir(tmpdir) < 0)
		diag("can't remove %s: %s", tmpdir, strerror(errno));
}

static struct proc_vma *find_vma(struct proc_vma *v, int nr, uint64_t addr)
{
	for (int i = 0; i < nr; i++)
		if (v[i].start <= addr && addr < v[i].end)
			return &v[i];
	return NULL;
}

static struct proc_vma *find_named(struct proc_vma *v, int nr, const char *name)
{
	for (int i = 0; i < nr; i++)
		if (v[i].path && !strcmp(v[i].path, name))
			return &v[i];
	return NULL;
}

static bool has_pid(const pid_t *p, int nr, pid_t pid)
{
	for (int i = 0; i < nr; i++)
		if (p[i] == pid)
			return true;
	return false;
}

static void *map_anon(size_t pages, int extra_flags)
{
	void *p = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);

	if (p == MAP_FAILED)
		bail_out("mmap of %zu pages: %s", pages, strerror(errno));
	return p;
}

/* In a child: earlier children's control pipes must not be held open by later ones. */
static void keep_only(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a;

	close_range(3, lo - 1, 0);
	close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0u, 0);
}

/* A child that names itself, reports ready and waits; closing *ctl ends it with exit(3). */
static pid_t spawn_named(const char *name, int *ctl)
{
	int ready[2], go[2];
	pid_t pid;
	char c;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
		bail_out("pipe2: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		keep_only(ready[1], go[0]);
		if (name && prctl(PR_SET_NAME, name) < 0)
			_exit(100);
		if (write(ready[1], "r", 1) != 1)
			_exit(101);
		while (read(go[0], &c, 1) > 0)
			;
		_exit(3);
	}
	close(ready[1]);
	close(go[0]);
	if (read(ready[0], &c, 1) != 1)
		bail_out("child %d died before it was ready", pid);
	close(ready[0]);
	*ctl = go[1];
	return pid;
}

static void reap(pid_t pid, int ctl)
{
	if (ctl >= 0)
		close(ctl);
	if (waitpid(pid, NULL, 0) != pid)
		diag("waitpid %d: %s", pid, strerror(errno));
}

/* ---- maps lines ---------------------------------------------------------- */

struct maps_case {
	const char *line;
	uint64_t start, end, pgoff;
	uint32_t prot, maj, min;
	bool shared;
	uint64_t ino;
	const char *path;
};

static const struct maps_case maps_cases[] = {
	{ "00400000-00452000 r-xp 00001000 08:02 173521      /usr/lib/dir with spaces/prog name\n",
	  0x400000, 0x452000, 0x1000, PROT_READ | PROT_EXEC, 8, 2, false, 173521,
	  "/usr/lib/dir with spaces/prog name" },
	{ "7f2c3a000000-7f2c3a021000 rw-s 00000000 00:01 2050                       /memfd:shm (deleted)\n",
	  0x7f2c3a000000, 0x7f2c3a021000, 0, PROT_READ | PROT_WRITE, 0, 1, true, 2050,
	  "/memfd:shm (deleted)" },
	{ "7ffd5a1f7000-7ffd5a1f9000 r-xp 00000000 00:00 0                          [vdso]\n",
	  0x7ffd5a1f7000, 0x7ffd5a1f9000, 0, PROT_READ | PROT_EXEC, 0, 0, false, 0, "[vdso]" },
	{ "7f2c3b000000-7f2c3b100000 rw-p 00000000 00:00 0 \n",
	  0x7f2c3b000000, 0x7f2c3b100000, 0, PROT_READ | PROT_WRITE, 0, 0, false, 0, NULL },
	{ "7f2c3b000000-7f2c3b100000 ---p 00000000 00:00 0\n",
	  0x7f2c3b000000, 0x7f2c3b100000, 0, 0, 0, 0, false, 0, NULL },
	{ "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
	  0xffffffffff600000, 0xffffffffff601000, 0, PROT_EXEC, 0, 0, false, 0, "[vsyscall]" },
	{ "7f0000000000-7f0000002000 r--s 7ffff000 fe:1a 18446744073709551615 /a (b) c\n",
	  0x7f0000000000, 0x7f0000002000, 0x7ffff000, PROT_READ, 0xfe, 0x1a, true, UINT64_MAX,
	  "/a (b) c" },
};

static const char *const bad_maps_lines[] = {
	"",
	"garbage\n",
	"1000-1000 rw-p 00000000 00:00 0\n",	/* empty range */
	"2000-1000 rw-p 00000000 00:00 0\n",	/* inverted range */
	"1000-2000 rw 00000000 00:00 0\n",	/* short perms */
	"1000-2000 rw-p 00000000 08:01\n",	/* no inode */
};

static void test_maps_lines(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(maps_cases); i++) {
		const struct maps_case *c = &maps_cases[i];
		struct proc_vma v;
		int r = proc_parse_maps_line(c->line, &v);

		ok(r == 0 && v.start == c->start && v.end == c->end && v.pgoff == c->pgoff &&
			   v.prot == c->prot && v.shared == c->shared && v.dev_major == c->maj &&
			   v.dev_minor == c->min && v.ino == c->ino,
		   "maps line %zu: addresses, perms, offset, device, inode", i);
		if (c->path)
			is_str(v.path, c->path, "maps line %zu: path", i);
		else
			ok(!v.path, "maps line %zu: anonymous, no path (got '%s')", i, v.path ?: "");
		free(v.path);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_maps_lines); i++) {
		struct proc_vma v;

		is_int(proc_parse_maps_line(bad_maps_lines[i], &v), -EINVAL, "malformed maps line %zu refused", i);
	}
}

/* ---- smaps of this process ----------------------------------------------- */

static void check_file_vmas(void)
{
	char path[128], deleted[160];
	struct proc_vma *v = NULL;
	struct proc_vma *f;
	struct stat st;
	void *p;
	int nr = 0, fd;

	snprintf(path, sizeof(path), "%s/a b (c) d", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, 4 * PAGE_SIZE) < 0 || fstat(fd, &st) < 0)
		bail_out("can't create %s: %s", path, strerror(errno));
	p = mmap(NULL, 2 * PAGE_SIZE, PROT_READ, MAP_SHARED, fd, PAGE_SIZE);
	if (p == MAP_FAILED)
		bail_out("mmap %s: %s", path, strerror(errno));
	proc_parse_smaps(getpid(), &v, &nr);
	f = find_vma(v, nr, (uintptr_t)p);
	ok(f && f->start == (uintptr_t)p && f->end == (uintptr_t)p + 2 * PAGE_SIZE,
	   "smaps: the file mapping's bounds");
	is_str(f ? f->path : NULL, path, "smaps: a path with spaces and parentheses");
	ok(f && f->pgoff == PAGE_SIZE && f->prot == PROT_READ && f->shared && f->maywrite,
	   "smaps: offset, prot, shared, may-write (fd is O_RDWR)");
	ok(f && makedev(f->dev_major, f->dev_minor) == st.st_dev && f->ino == st.st_ino,
	   "smaps: device and inode match fstat");
	proc_free_vmas(v, nr);

	unlink(path);
	snprintf(deleted, sizeof(deleted), "%s (deleted)", path);
	proc_parse_smaps(getpid(), &v, &nr);
	f = find_vma(v, nr, (uintptr_t)p);
	is_str(f ? f->path : NULL, deleted, "smaps: an unlinked file keeps the kernel's ' (deleted)'");
	proc_free_vmas(v, nr);
	munmap(p, 2 * PAGE_SIZE);
	close(fd);
}

struct madv_case {
	int advice;
	uint32_t bit;
	const char *name;
};

static void check_madvise_flags(void)
{
	static const struct madv_case cases[] = {
		{ MADV_DONTFORK, VMA_MADV_DONTFORK, "MADV_DONTFORK" },
		{ MADV_WIPEONFORK, VMA_MADV_WIPEONFORK, "MADV_WIPEONFORK" },
		{ MADV_DONTDUMP, VMA_MADV_DONTDUMP, "MADV_DONTDUMP" },
		{ MADV_HUGEPAGE, VMA_MADV_HUGEPAGE, "MADV_HUGEPAGE" },
		{ MADV_NOHUGEPAGE, VMA_MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE" },
	};
	void *maps[ARRAY_SIZE(cases)];
	bool done[ARRAY_SIZE(cases)];
	struct proc_vma *v = NULL;
	int nr = 0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		maps[i] = map_anon(4, 0);
		done[i] = madvise(maps[i], 4 * PAGE_SIZE, cases[i].advice) == 0;
	}
	proc_parse_smaps(getpid(), &v, &nr);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proc_vma *f = find_vma(v, nr, (uintptr_t)maps[i]);

		if (!done[i])
			skip("%s not supported by this kernel", cases[i].name);
		else if (!ok(f && f->madv == cases[i].bit, "smaps VmFlags: %s gives exactly its VMA_MADV bit",
			     cases[i].name))
			diag("    madv %#x, VmFlags:%s", f ? f->madv : 0, f ? f->vmflags : "(no vma)");
		munmap(maps[i], 4 * PAGE_SIZE);
	}
	proc_free_vmas(v, nr);
}

static void check_other_vmflags(void)
{
	void *gd = map_anon(4, MAP_GROWSDOWN);
	void *locked = map_anon(2, 0);
	void *plain = map_anon(2, 0);
	/* The raw syscall: the sanitizers' mlock() interceptor does nothing. */
	bool mlocked = syscall(SYS_mlock, locked, 2 * PAGE_SIZE) == 0;
	struct proc_vma *v = NULL, *f;
	int stack_local, nr = 0;

	/* A read-only page keeps plain from merging with any neighbour. */
	mprotect(plain, PAGE_SIZE, PROT_READ);
	proc_parse_smaps(getpid(), &v, &nr);
	f = find_vma(v, nr, (uintptr_t)gd);
	ok(f && f->growsdown && !f->madv, "smaps VmFlags: a MAP_GROWSDOWN region grows down");
	f = find_vma(v, nr, (uintptr_t)&stack_local);
	ok(f && f->growsdown && f->path && !strcmp(f->path, "[stack]"), "smaps: [stack] grows down");
	f = find_vma(v, nr, (uintptr_t)locked);
	if (!mlocked)
		skip("mlock: %s", strerror(errno));
	else if (!ok(f && f->locked, "smaps VmFlags: an mlock()ed region is locked"))
		diag("    %#llx-%#llx VmFlags:%s", f ? (unsigned long long)f->start : 0ull,
		     f ? (unsigned long long)f->end : 0ull, f ? f->vmflags : "(no vma)");
	f = find_vma(v, nr, (uintptr_t)plain);
	ok(f && !f->path && !f->growsdown && !f->locked && !f->madv && f->prot == PROT_READ &&
		   f->end == (uintptr_t)plain + PAGE_SIZE,
	   "smaps: a plain anonymous region has no path and no flags");
	ok(find_named(v, nr, "[vdso]") != NULL, "smaps: [vdso] is listed by name");
	proc_free_vmas(v, nr);
	munmap(gd, 4 * PAGE_SIZE);
	munmap(locked, 2 * PAGE_SIZE);
	munmap(plain, 2 * PAGE_SIZE);
}

/* ---- stat ---------------------------------------------------------------- */

static void check_stat_self(char **argv)
{
	struct proc_stat st;
	char comm[16] = "";
	int local;

	prctl(PR_GET_NAME, comm);
	if (!is_int(proc_parse_stat(getpid(), 0, &st), 0, "stat of self parses"))
		return;
	is_str(st.comm, comm, "stat: comm");
	ok(st.state == 'R' && st.ppid == getppid() && st.pgrp == getpgrp() && st.session == getsid(0),
	   "stat: state R, ppid, pgrp, session");
	ok(st.start_code <= (uintptr_t)check_stat_self && (uintptr_t)check_stat_self < st.end_code,
	   "stat: this function is in the code range");
	ok((uintptr_t)&local < st.start_stack, "stat: start_stack is above our frame");
	is_int(st.arg_start, (uintptr_t)argv[0], "stat: arg_start is argv[0]");
	ok(st.arg_end > st.arg_start && st.env_end >= st.env_start && st.env_start >= st.arg_end,
	   "stat: argument and environment ranges are ordered");
	ok(st.start_brk && st.start_brk <= (uintptr_t)sbrk(0), "stat: start_brk is at or below the break");
	ok(st.start_data < st.end_data, "stat: data range");
}

static void check_stat_child(const char *name)
{
	struct proc_stat st;
	int ctl;
	pid_t pid = spawn_named(name, &ctl);

	/* It reported ready just before blocking in read(): give it a moment to get there. */
	for (int i = 0; i < 1000 && proc_parse_stat(pid, 0, &st) == 0 && st.state != 'S'; i++)
		usleep(1000);
	is_int(proc_parse_stat(pid, 0, &st), 0, "stat of child named '%s' parses", name);
	is_str(st.comm, name, "stat: comm '%s' survives its spaces and parentheses", name);
	ok(st.state == 'S' && st.ppid == getpid() && st.pgrp == getpgrp(),
	   "stat: after that comm, state S, ppid and pgrp still parse (got %c %d %d)", st.state, st.ppid,
	   st.pgrp);
	reap(pid, ctl);
}

static void check_stat_zombie(void)
{
	struct proc_stat st;
	siginfo_t si;
	int ctl;
	pid_t pid = spawn_named("zombie) Z 1", &ctl);

	close(ctl);
	/* Wait for the exit but leave the zombie in place. */
	if (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0)
		bail_out("waitid %d: %s", pid, strerror(errno));
	is_int(proc_parse_stat(pid, 0, &st), 0, "stat of a zombie parses");
	ok(st.state == 'Z' && st.ppid == getpid(), "stat: zombie state and ppid");
	is_int(st.exit_code, 3 << 8, "stat: a zombie's exit_code is its wait status");
	reap(pid, -1);
}

/* ---- a second thread ----------------------------------------------------- */

struct thread_ctl {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t tid;
	pid_t child;		/* forked by the thread: listed in task/TID/children */
	int child_ctl;
	bool ready, stop;
};

static void *thread_fn(void *arg)
{
	struct thread_ctl *t = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	pthread_setname_np(pthread_self(), "worker (t) 1");
	t->child = spawn_named(NULL, &t->child_ctl);
	pthread_mutex_lock(&t->lock);
	t->tid = gettid();
	t->ready = true;
	pthread_cond_broadcast(&t->cond);
	while (!t->stop)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static pthread_t start_thread(struct thread_ctl *t)
{
	pthread_t th;

	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if (pthread_create(&th, NULL, thread_fn, t))
		bail_out("pthread_create failed");
	pthread_mutex_lock(&t->lock);
	while (!t->ready)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return th;
}

static void stop_thread(pthread_t th, struct thread_ctl *t)
{
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(th, NULL);
	reap(t->child, t->child_ctl);
}

static void check_threads_children(const struct thread_ctl *t)
{
	char path[64];
	_cleanup_free_ pid_t *tids = NULL, *kids = NULL;
	int nt = 0, nk = 0, ctl;
	pid_t child = spawn_named(NULL, &ctl);
	bool sorted = true;

	is_int(proc_threads(getpid(), &tids, &nt), 0, "proc_threads of self");
	ok(nt >= 2 && tids[0] == getpid() && has_pid(tids, nt, t->tid), "proc_threads: main thread first, then %d",
	   t->tid);
	for (int i = 2; i < nt; i++)
		sorted &= tids[i - 1] < tids[i];
	ok(sorted, "proc_threads: the other threads are sorted");
	is_int(proc_threads(0x7ffffff0, &tids, &nt), -ENOENT, "proc_threads of a missing pid: -ENOENT");

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", getpid());
	if (access(path, R_OK) < 0) {
		skip("no %s (CONFIG_PROC_CHILDREN)", path);
	} else {
		is_int(proc_children(getpid(), &kids, &nk), 0, "proc_children of self");
		ok(has_pid(kids, nk, child) && has_pid(kids, nk, t->child),
		   "proc_children: the main thread's child %d and the second thread's %d", child, t->child);
	}
	reap(child, ctl);
}

static void check_thread_stat(const struct thread_ctl *t)
{
	struct proc_stat st;
	struct proc_status ps;

	is_int(proc_parse_stat(getpid(), t->tid, &st), 0, "stat of thread %d parses", t->tid);
	is_str(st.comm, "worker (t) 1", "stat: the thread's own comm");
	is_int(proc_parse_status(getpid(), t->tid, &ps), 0, "status of thread %d parses", t->tid);
	ok(ps.sig_blk & (1ull << (SIGUSR2 - 1)), "status: the thread's own SigBlk");
	ok(ps.no_new_privs, "status: the thread's NoNewPrivs");
	proc_free_status(&ps);
}

/* ---- status -------------------------------------------------------------- */

static uint64_t cap_effective(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		bail_out("capget: %s", strerror(errno));
	return d[0].effective | (uint64_t)d[1].effective << 32;
}

static void check_creds(const struct proc_status *st)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	gid_t groups[256];
	int ng = getgroups(ARRAY_SIZE(groups), groups);
	bool same = ng == st->nr_groups;

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	ok(st->uids[0] == ru && st->uids[1] == eu && st->uids[2] == su && st->uids[3] == (uid_t)setfsuid(-1),
	   "status: real, effective, saved and fs uids");
	ok(st->gids[0] == rg && st->gids[1] == eg && st->gids[2] == sg && st->gids[3] == (gid_t)setfsgid(-1),
	   "status: real, effective, saved and fs gids");
	for (int i = 0; same && i < ng; i++)
		same = st->groups[i] == groups[i];
	ok(same, "status: %d supplementary groups", ng);
	is_int(st->cap_eff, cap_effective(), "status: CapEff matches capget");
}

/*
 * Blocked in every thread (so before the second one starts): a
 * process-directed signal would otherwise go to a thread that takes it.
 */
static sigset_t pending_set(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 2);
	return set;
}

static void check_status_self(void)
{
	struct proc_status st;
	sigset_t set = pending_set();
	mode_t um = umask(027);
	int sig_thread = SIGUSR1, sig_shared = SIGRTMIN + 2;
	struct timespec zero = { 0, 0 };

	raise(sig_thread);			/* pending on this thread */
	kill(getpid(), sig_shared);		/* pending on the process */
	if (!is_int(proc_parse_status(getpid(), 0, &st), 0, "status of self parses"))
		goto out;
	ok((st.sig_blk & (1ull << (sig_thread - 1))) && (st.sig_blk & (1ull << (sig_shared - 1))),
	   "status: SigBlk has the blocked signals");
	ok(!(st.sig_blk & (1ull << (SIGUSR2 - 1))), "status: SigBlk of the main thread, not the other's");
	ok(st.sig_pnd == 1ull << (sig_thread - 1), "status: SigPnd has the raised signal only");
	ok(st.shd_pnd == 1ull << (sig_shared - 1), "status: ShdPnd has the process-directed one only");
	ok(st.ns_levels >= 1 && st.nspid[st.ns_levels - 1] == getpid(), "status: NSpid ends with our pid");
	ok(st.nspgid[st.ns_levels - 1] == getpgrp() && st.nssid[st.ns_levels - 1] == getsid(0),
	   "status: NSpgid and NSsid end with our pgrp and session");
	is_int(st.umask, 027, "status: Umask");
	ok(st.state == 'R' && st.no_new_privs == prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) &&
		   st.seccomp == prctl(PR_GET_SECCOMP, 0, 0, 0, 0),
	   "status: State, NoNewPrivs, Seccomp");
	check_creds(&st);
	proc_free_status(&st);
out:
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	umask(um);
}

/* ---- fdinfo -------------------------------------------------------------- */

static void check_fdinfo(void)
{
	char path[128];
	struct proc_fdinfo fi;
	struct statx stx;
	int fd, efd;

	snprintf(path, sizeof(path), "%s/fdinfo", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "0123456789", 10) != 10 || lseek(fd, 3, SEEK_SET) != 3)
		bail_out("can't set up %s: %s", path, strerror(errno));
	is_int(proc_parse_fdinfo(getpid(), fd, &fi), 0, "fdinfo of a file parses");
	is_int(fi.pos, 3, "fdinfo: pos after lseek");
	ok((fi.flags & O_ACCMODE) == O_RDWR && (fi.flags & O_APPEND) && (fi.flags & O_CLOEXEC),
	   "fdinfo: O_RDWR, O_APPEND and O_CLOEXEC (flags %#o)", fi.flags);
	ok(!fi.has_other, "fdinfo: a regular file has no extra lines");
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) == 0 && (stx.stx_mask & STATX_MNT_ID))
		is_int(fi.mnt_id, stx.stx_mnt_id, "fdinfo: mnt_id matches statx");
	else
		skip("statx has no STATX_MNT_ID");

	efd = eventfd(5, EFD_CLOEXEC | EFD_NONBLOCK);
	ok(efd >= 0 && proc_parse_fdinfo(getpid(), efd, &fi) == 0 && fi.has_other &&
		   (fi.flags & O_NONBLOCK),
	   "fdinfo: an eventfd has lines this parser leaves to others");
	close(efd);
	close(fd);
	unlink(path);
	cr_loglevel = 0;	/* an expected error */
	ok(proc_parse_fdinfo(getpid(), fd, &fi) < 0, "fdinfo of a closed fd fails");
	cr_loglevel = LOG_WARN;
}

/* ---- posix timers -------------------------------------------------------- */

static const struct proc_posix_timer *find_timer(const struct proc_posix_timer *t, int nr, timer_t id)
{
	for (int i = 0; i < nr; i++)
		if (t[i].id == (int)(intptr_t)id)
			return &t[i];
	return NULL;
}

static void check_timers(void)
{
	struct sigevent sev[3] = {
		{ .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 3,
		  .sigev_value.sival_ptr = (void *)0x1234 },
		{ .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2 },
		{ .sigev_notify = SIGEV_NONE },
	};
	const clockid_t clocks[3] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME };
	const int notify[3] = { SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE };
	struct proc_posix_timer *t = NULL;
	timer_t ids[3];
	int nr = 0, ret;

	if (access("/proc/self/timers", R_OK) < 0) {
		skip("no /proc/PID/timers (CONFIG_CHECKPOINT_RESTORE)");
		return;
	}
	sev[1].sigev_notify_thread_id = gettid();
	for (int i = 0; i < 3; i++)
		if (timer_create(clocks[i], &sev[i], &ids[i]) < 0)
			bail_out("timer_create: %s", strerror(errno));
	ret = proc_parse_timers(getpid(), &t, &nr);
	is_int(ret, 0, "timers parse");
	is_int(nr, 3, "timers: all three listed");
	for (int i = 0; i < 3; i++) {
		const struct proc_posix_timer *p = find_timer(t, nr, ids[i]);

		ok(p && p->clockid == clocks[i] && p->notify == notify[i], "timer %d: id, ClockID, notify", i);
		if (i == 0)
			ok(p && p->signo == SIGRTMIN + 3 && p->sival == 0x1234, "timer %d: signal and sival", i);
		if (i == 1)
			ok(p && p->signo == SIGUSR2 && p->notify_tid == gettid(), "timer %d: signal and target thread",
			   i);
		timer_delete(ids[i]);
	}
	free(t);
}

int main(int argc, char **argv)
{
	struct thread_ctl t = { .child_ctl = -1 };
	sigset_t set = pending_set();
	pthread_t th;

	tap_init();
	sigprocmask(SIG_BLOCK, &set, NULL);
	snprintf(tmpdir, sizeof(tmpdir), "%s/cr-test-proc.XXXXXX", getenv("TMPDIR") ?: "/tmp");
	if (!mkdtemp(tmpdir))
		bail_out("mkdtemp %s: %s", tmpdir, strerror(errno));
	atexit(remove_tmpdir);
	test_maps_lines();
	check_file_vmas();
	check_madvise_flags();
	check_other_vmflags();
	check_stat_self(argv);
	check_stat_child("a) (b c");
	check_stat_child("x) R 1 2 3 4 5");
	check_stat_zombie();
	th = start_thread(&t);
	check_status_self();
	check_thread_stat(&t);
	check_threads_children(&t);
	stop_thread(th, &t);
	check_fdinfo();
	check_timers();
	return done_testing();
}
