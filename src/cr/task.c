#define LOG_PREFIX "task: "
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/securebits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "cr.h"
#include "image.h"
#include "linux/cr-compat.h"
#include "log.h"
#include "util.h"

#ifndef PTRACE_PEEKSIGINFO_SHARED
#define PTRACE_PEEKSIGINFO_SHARED 1
#endif

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

struct kitimerspec {
	int64_t int_sec, int_nsec, val_sec, val_nsec;
};

/* ---- dump ---------------------------------------------------------------- */

static UserRegsEntry *regs_to_pb(const arch_regs_t *r)
{
	UserRegsEntry *e = xmalloc(sizeof(*e));

	user_regs_entry__init(e);
	e->r15 = r->r15; e->r14 = r->r14; e->r13 = r->r13; e->r12 = r->r12;
	e->bp = r->rbp; e->bx = r->rbx; e->r11 = r->r11; e->r10 = r->r10;
	e->r9 = r->r9; e->r8 = r->r8; e->ax = r->rax; e->cx = r->rcx;
	e->dx = r->rdx; e->si = r->rsi; e->di = r->rdi; e->orig_ax = r->orig_rax;
	e->ip = r->rip; e->cs = r->cs; e->flags = r->eflags; e->sp = r->rsp;
	e->ss = r->ss; e->fs_base = r->fs_base; e->gs_base = r->gs_base;
	e->ds = r->ds; e->es = r->es; e->fs = r->fs; e->gs = r->gs;
	return e;
}

static void regs_from_pb(arch_regs_t *r, const UserRegsEntry *e)
{
	r->r15 = e->r15; r->r14 = e->r14; r->r13 = e->r13; r->r12 = e->r12;
	r->rbp = e->bp; r->rbx = e->bx; r->r11 = e->r11; r->r10 = e->r10;
	r->r9 = e->r9; r->r8 = e->r8; r->rax = e->ax; r->rcx = e->cx;
	r->rdx = e->dx; r->rsi = e->si; r->rdi = e->di; r->orig_rax = e->orig_ax;
	r->rip = e->ip; r->cs = e->cs; r->eflags = e->flags; r->rsp = e->sp;
	r->ss = e->ss; r->fs_base = e->fs_base; r->gs_base = e->gs_base;
	r->ds = e->ds; r->es = e->es; r->fs = e->fs; r->gs = e->gs;
}

static int read_scratch(struct rsys *r, void *buf, size_t len)
{
	return rsys_read_mem(r->tid, r->scratch, buf, len);
}

static int dump_pending(pid_t tid, bool shared, SiginfoEntry ***out, size_t *n)
{
	siginfo_t si[32];
	struct { uint64_t off; uint32_t flags; int32_t nr; } arg = { 0, shared ? PTRACE_PEEKSIGINFO_SHARED : 0, 32 };

	*n = 0;
	*out = NULL;
	for (;;) {
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &arg, si);

		if (got < 0) {
			pr_perror("tid %d: can't read pending signals", tid);
			return -errno;
		}
		if (got == 0)
			return 0;
		*out = xrealloc(*out, (*n + got) * sizeof(**out));
		for (long i = 0; i < got; i++) {
			SiginfoEntry *e = xmalloc(sizeof(*e));
			siginfo_entry__init(e);
			e->siginfo.len = sizeof(siginfo_t);
			e->siginfo.data = xmalloc(sizeof(siginfo_t));
			memcpy(e->siginfo.data, &si[i], sizeof(siginfo_t));
			(*out)[(*n)++] = e;
		}
		arg.off += got;
	}
}

static int dump_creds(pid_t pid, pid_t tid, struct rsys *r, CredsEntry *c)
{
	struct proc_status st;
	int ret = proc_parse_status(pid, tid, &st);
	long sb;

	if (ret < 0)
		return ret;
	if (st.seccomp) {
		pr_err("pid %d: tid %d uses seccomp (mode %d), which crtool cannot restore yet\n", pid,
		       tid, st.seccomp);
		proc_free_status(&st);
		return -EOPNOTSUPP;
	}
	creds_entry__init(c);
	c->n_uids = c->n_gids = 4;
	c->uids = xmalloc(4 * sizeof(uint32_t));
	c->gids = xmalloc(4 * sizeof(uint32_t));
	memcpy(c->uids, st.uids, sizeof(st.uids));
	memcpy(c->gids, st.gids, sizeof(st.gids));
	c->n_groups = st.nr_groups;
	c->groups = TAKE_PTR(st.groups);
	c->cap_inh = st.cap_inh;
	c->cap_prm = st.cap_prm;
	c->cap_eff = st.cap_eff;
	c->cap_bnd = st.cap_bnd;
	c->cap_amb = st.cap_amb;
	sb = RCALL(r, "prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS);
	if (sb < 0)
		return sb;
	c->securebits = sb;
	return 0;
}

static int dump_thread_remote(struct rsys *r, ThreadCoreEntry *t)
{
	stack_t ss;
	uint64_t addr;
	int sig;

	if (RCALL(r, "sigaltstack", SYS_sigaltstack, 0, r->scratch) < 0 ||
	    read_scratch(r, &ss, sizeof(ss)) < 0)
		return -EIO;
	t->sas = xmalloc(sizeof(*t->sas));
	sigaltstack_entry__init(t->sas);
	t->sas->sp = (uint64_t)ss.ss_sp;
	t->sas->flags = ss.ss_flags;
	t->sas->size = ss.ss_size;
	if (RCALL(r, "prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, r->scratch) < 0 ||
	    read_scratch(r, &addr, sizeof(addr)) < 0)
		return -EIO;
	t->clear_tid_addr = addr;
	if (RCALL(r, "prctl(PR_GET_PDEATHSIG)", SYS_prctl, PR_GET_PDEATHSIG, r->scratch) < 0 ||
	    read_scratch(r, &sig, sizeof(sig)) < 0)
		return -EIO;
	t->pdeathsig = sig;
	return 0;
}

static int dump_thread_local(pid_t pid, pid_t tid, ThreadCoreEntry *t)
{
	struct cr_ptrace_rseq_configuration rc = { 0 };
	_cleanup_free_ char *comm = NULL;
	uint64_t head = 0;
	size_t len = 0;

	if (syscall(SYS_get_robust_list, tid, &head, &len) < 0) {
		pr_perror("tid %d: can't get the robust futex list", tid);
		return -errno;
	}
	t->robust_list = head;
	t->robust_list_len = len;
	if (ptrace(CR_PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(rc), &rc) < 0 && errno != EIO) {
		pr_perror("tid %d: can't get the rseq configuration", tid);
		return -errno;
	}
	if (rc.rseq_abi_pointer) {
		t->rseq = xmalloc(sizeof(*t->rseq));
		rseq_entry__init(t->rseq);
		t->rseq->ptr = rc.rseq_abi_pointer;
		t->rseq->len = rc.rseq_abi_size;
		t->rseq->sig = rc.signature;
	}
	if (read_proc_file(pid, tid, "comm", &comm) < 0) {
		pr_perror("tid %d: can't read comm", tid);
		return -errno;
	}
	comm[strcspn(comm, "\n")] = '\0';
	t->comm = TAKE_PTR(comm);
	return 0;
}

static int dump_one_thread(struct dump_ctx *c, int i, ThreadCoreEntry *t)
{
	pid_t tid = c->it->threads[i];
	struct rsys local, *r = i == 0 ? &c->rs : &local;
	arch_regs_t regs;
	uint8_t *xs;
	ssize_t xlen;
	int ret;

	thread_core_entry__init(t);
	t->tid = tid;
	if (i) {
		ret = rsys_attach(&local, tid, c->code_addr);
		if (ret < 0)
			return ret;
		local.scratch = c->rs.scratch;
		local.scratch_len = c->rs.scratch_len;
	}
	xs = xmalloc(ARCH_XSAVE_MAX);
	regs = r->regs;
	t->has_in_restarted_syscall = true;
	t->in_restarted_syscall = arch_normalize_restart(&regs, tid);
	t->regs = regs_to_pb(&regs);
	t->sigmask = r->sigmask;
	t->xsave.data = xs;
	xlen = arch_get_xsave(tid, xs);
	if (xlen < 0)
		return xlen;
	t->xsave.len = xlen;
	t->creds = xmalloc(sizeof(*t->creds));
	creds_entry__init(t->creds);
	ret = dump_thread_local(c->it->pid, tid, t);
	if (!ret)
		ret = dump_thread_remote(r, t);
	if (!ret)
		ret = dump_creds(c->it->pid, tid, r, t->creds);
	if (!ret)
		ret = dump_pending(tid, false, &t->pending, &t->n_pending);
	if (i && rsys_detach(&local) < 0 && !ret)
		ret = -EIO;
	return ret;
}

static int dump_sigactions(struct dump_ctx *c, TaskCoreEntry *core)
{
	core->sigactions = xmalloc(64 * sizeof(*core->sigactions));
	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction ka;
		SigactionEntry *e;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (RCALL(&c->rs, "rt_sigaction", SYS_rt_sigaction, sig, 0, c->rs.scratch, 8) < 0 ||
		    read_scratch(&c->rs, &ka, sizeof(ka)) < 0)
			return -EIO;
		e = xmalloc(sizeof(*e));
		sigaction_entry__init(e);
		e->sig = sig;
		e->handler = ka.handler;
		e->flags = ka.flags;
		e->restorer = ka.restorer;
		e->mask = ka.mask;
		core->sigactions[core->n_sigactions++] = e;
	}
	return 0;
}

static int dump_timers(struct dump_ctx *c, TaskCoreEntry *core)
{
	_cleanup_free_ struct proc_posix_timer *pt = NULL;
	int n = 0, ret;

	core->itimers = xmalloc(3 * sizeof(*core->itimers));
	for (int w = 0; w < 3; w++) {
		struct itimerval iv;
		ItimerEntry *e = xmalloc(sizeof(*e));

		itimer_entry__init(e);
		core->itimers[core->n_itimers++] = e;
		if (RCALL(&c->rs, "getitimer", SYS_getitimer, w, c->rs.scratch) < 0 ||
		    read_scratch(&c->rs, &iv, sizeof(iv)) < 0)
			return -EIO;
		e->which = w;
		e->interval_us = iv.it_interval.tv_sec * 1000000ull + iv.it_interval.tv_usec;
		e->value_us = iv.it_value.tv_sec * 1000000ull + iv.it_value.tv_usec;
	}
	ret = proc_parse_timers(c->it->pid, &pt, &n);
	if (ret < 0)
		return ret;
	core->posix_timers = xmalloc((n + 1) * sizeof(*core->posix_timers));
	for (int i = 0; i < n; i++) {
		struct kitimerspec its;
		PosixTimerEntry *e = xmalloc(sizeof(*e));
		long ov;

		posix_timer_entry__init(e);
		core->posix_timers[core->n_posix_timers++] = e;
		if (RCALL(&c->rs, "timer_gettime", SYS_timer_gettime, pt[i].id, c->rs.scratch) < 0 ||
		    read_scratch(&c->rs, &its, sizeof(its)) < 0)
			return -EIO;
		ov = RCALL(&c->rs, "timer_getoverrun", SYS_timer_getoverrun, pt[i].id);
		if (ov < 0)
			return ov;
		e->id = pt[i].id;
		e->clockid = pt[i].clockid;
		e->signo = pt[i].signo;
		e->notify = pt[i].notify;
		e->notify_tid = pt[i].notify_tid;
		e->sival = pt[i].sival;
		e->interval_ns = its.int_sec * 1000000000ull + its.int_nsec;
		e->value_ns = its.val_sec * 1000000000ull + its.val_nsec;
		e->overrun = ov;
	}
	return 0;
}

/* In the task itself: prlimit() on another uid needs CAP_SYS_RESOURCE. */
static int dump_rlimits(struct dump_ctx *c, TaskCoreEntry *core)
{
	core->rlimits = xmalloc(RLIM_NLIMITS * sizeof(*core->rlimits));
	for (int res = 0; res < RLIM_NLIMITS; res++) {
		struct rlimit rl;
		RlimitEntry *e;

		if (RCALL(&c->rs, "prlimit64", SYS_prlimit64, 0, res, 0, c->rs.scratch) < 0 ||
		    read_scratch(&c->rs, &rl, sizeof(rl)) < 0)
			return -EIO;
		e = xmalloc(sizeof(*e));
		rlimit_entry__init(e);
		e->resource = res;
		e->cur = rl.rlim_cur;
		e->max = rl.rlim_max;
		core->rlimits[core->n_rlimits++] = e;
	}
	return 0;
}

static int dump_mm_fields(struct dump_ctx *c, TaskCoreEntry *core)
{
	pid_t pid = c->it->pid;
	struct proc_stat st;
	char path[64];
	char *auxv = NULL;
	ssize_t n;
	long brk;
	int ret = proc_parse_stat(pid, 0, &st);
	MmFieldsEntry *m = xmalloc(sizeof(*m));

	mm_fields_entry__init(m);
	core->mm = m;
	if (ret < 0)
		return ret;
	brk = RCALL(&c->rs, "brk", SYS_brk, 0);
	if (brk < 0)
		return brk;
	m->start_code = st.start_code; m->end_code = st.end_code;
	m->start_data = st.start_data; m->end_data = st.end_data;
	m->start_brk = st.start_brk; m->brk = brk;
	m->start_stack = st.start_stack;
	m->arg_start = st.arg_start; m->arg_end = st.arg_end;
	m->env_start = st.env_start; m->env_end = st.env_end;
	n = read_proc_file(pid, 0, "auxv", &auxv);
	if (n < 0)
		return log_errno(n, "pid %d: can't read auxv", pid);
	m->auxv.data = (uint8_t *)auxv;
	m->auxv.len = n;
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	ret = read_link(path, &m->exe);
	if (ret < 0)
		return log_errno(ret, "pid %d: can't read %s", pid, path);
	return 0;
}

static int dump_misc(struct dump_ctx *c, TaskCoreEntry *core)
{
	pid_t pid = c->it->pid;
	struct proc_status st;
	_cleanup_free_ char *pers = NULL;
	char path[64];
	long v;
	int sub;
	int ret = proc_parse_status(pid, 0, &st);

	if (ret < 0)
		return ret;
	core->umask = st.umask;
	core->no_new_privs = st.no_new_privs;
	proc_free_status(&st);
	if (read_proc_file(pid, 0, "personality", &pers) < 0)
		return log_errno(-errno, "pid %d: can't read personality", pid);
	core->personality = strtoul(pers, NULL, 16);
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	if ((ret = read_link(path, &core->cwd)) < 0)
		return log_errno(ret, "pid %d: can't read %s", pid, path);
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	if ((ret = read_link(path, &core->root)) < 0)
		return log_errno(ret, "pid %d: can't read %s", pid, path);
	v = RCALL(&c->rs, "prctl(PR_GET_DUMPABLE)", SYS_prctl, PR_GET_DUMPABLE);
	if (v < 0)
		return v;
	core->dumpable = v;
	v = RCALL(&c->rs, "prctl(PR_GET_THP_DISABLE)", SYS_prctl, PR_GET_THP_DISABLE);
	if (v < 0)
		return v;
	core->thp_disable = v;
	if (RCALL(&c->rs, "prctl(PR_GET_CHILD_SUBREAPER)", SYS_prctl, PR_GET_CHILD_SUBREAPER,
		  c->rs.scratch) < 0 || read_scratch(&c->rs, &sub, sizeof(sub)) < 0)
		return -EIO;
	core->child_subreaper = sub;
	return 0;
}

int dump_task_core(struct dump_ctx *c)
{
	TaskCoreEntry *core = xmalloc(sizeof(*core));
	int ret = 0;

	task_core_entry__init(core);
	core->pid = c->it->pid;
	core->threads = xzalloc(c->it->nr_threads * sizeof(*core->threads));
	for (int i = 0; i < c->it->nr_threads && !ret; i++) {
		core->threads[i] = xmalloc(sizeof(ThreadCoreEntry));
		core->n_threads++;
		ret = dump_one_thread(c, i, core->threads[i]);
	}
	if (!ret)
		ret = dump_sigactions(c, core);
	if (!ret)
		ret = dump_timers(c, core);
	if (!ret)
		ret = dump_rlimits(c, core);
	if (!ret)
		ret = dump_mm_fields(c, core);
	if (!ret)
		ret = dump_misc(c, core);
	if (!ret)
		ret = dump_pending(c->it->pid, true, &core->shared_pending, &core->n_shared_pending);
	if (!ret)
		ret = img_write_one(c->dirfd, c->dir, IMG_CORE, c->it->pid, &core->base);
	/* Everything hanging off core was malloc'ed the way protobuf-c frees it. */
	protobuf_c_message_free_unpacked(&core->base, NULL);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

#define SCR_A 0		/* scratch offsets for syscall arguments */
#define SCR_B 8192
#define SCR_C 16384

static uint64_t scratch_str_at(struct rsys *r, const char *s)
{
	size_t len = strlen(s) + 1;

	if (len > SCR_C - SCR_B) {
		pr_err("tid %d: path too long: %s\n", r->tid, s);
		return 0;
	}
	return rsys_scratch_put(r, SCR_B, s, len);
}

static long rput(struct rsys *r, size_t off, const void *buf, size_t len)
{
	uint64_t a = rsys_scratch_put(r, off, buf, len);
	return a ? (long)a : -EIO;
}

static int create_thread(struct rst_task *t, int i, struct rsys *out)
{
	struct pstree_item *it = t->it;
	struct cr_clone_args args = { 0 };
	pid_t set_tid[PROC_MAX_NS];	/* clone3 takes a pid_t array */
	pid_t outer = it->thread_nspid[i * it->ns_levels];
	long a, b, tid;
	int st;

	for (int l = 0; l < it->ns_levels; l++)
		set_tid[l] = it->thread_nspid[i * it->ns_levels + it->ns_levels - 1 - l];
	if ((b = rput(&t->rs, SCR_B, set_tid, it->ns_levels * sizeof(pid_t))) < 0)
		return -EIO;
	args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
	args.set_tid = b;
	args.set_tid_size = it->ns_levels;
	if ((a = rput(&t->rs, SCR_A, &args, sizeof(args))) < 0)
		return -EIO;
	tid = RCALL(&t->rs, "clone3 (thread)", SYS_clone3, a, CR_CLONE_ARGS_SIZE_VER2);
	if (tid < 0) {
		pr_err("pid %d: can't create thread %d\n", it->pid, outer);
		return tid;
	}
	it->seized[i] = true;
	/* Auto-attached by PTRACE_O_TRACECLONE: it starts in a ptrace stop. */
	st = ptrace_wait_stop(outer);
	if (st < 0)
		return st;
	if ((st >> 16) != PTRACE_EVENT_STOP && WSTOPSIG(st) != SIGSTOP) {
		pr_err("tid %d: unexpected first stop %#x\n", outer, st);
		return -EINVAL;
	}
	if (rsys_attach(out, outer, t->rs.gadget) < 0)
		return -EIO;
	out->scratch = t->rs.scratch;
	out->scratch_len = t->rs.scratch_len;
	return 0;
}

static int restore_creds(struct rsys *r, const CredsEntry *c)
{
	struct { uint32_t version; int pid; } hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct { uint32_t eff, prm, inh; } data[2] = {
		{ c->cap_eff, c->cap_prm, c->cap_inh },
		{ c->cap_eff >> 32, c->cap_prm >> 32, c->cap_inh >> 32 },
	};
	long g, h, d;

	if (c->n_uids != 4 || c->n_gids != 4) {
		pr_err("tid %d: bad credentials in the image\n", r->tid);
		return -EBADMSG;
	}
	for (int cap = 0; cap < 64; cap++) {
		long have;

		if (c->cap_bnd & (1ULL << cap))
			continue;
		/* EINVAL past the kernel's last capability: nothing to drop there. */
		if (rsys_call(r, SYS_prctl, &have, PR_CAPBSET_READ, cap, 0, 0, 0, 0) < 0)
			return -EIO;
		if (have == 1 && RCALL(r, "prctl(PR_CAPBSET_DROP)", SYS_prctl, PR_CAPBSET_DROP, cap) < 0)
			return -EIO;
	}
	if (c->n_groups > 256) {
		pr_err("tid %d: %zu supplementary groups: more than the scratch area holds\n", r->tid,
		       c->n_groups);
		return -E2BIG;
	}
	g = c->n_groups ? rput(r, SCR_A, c->groups, c->n_groups * sizeof(uint32_t)) : 0;
	if (g < 0 || RCALL(r, "setgroups", SYS_setgroups, c->n_groups, g) < 0 ||
	    RCALL(r, "setresgid", SYS_setresgid, c->gids[0], c->gids[1], c->gids[2]) < 0 ||
	    RCALL(r, "setfsgid", SYS_setfsgid, c->gids[3]) < 0)
		return -EIO;
	/* Keep the capabilities across the uid change; they are set right after. */
	if (RCALL(r, "prctl(PR_SET_SECUREBITS)", SYS_prctl, PR_SET_SECUREBITS,
		  c->securebits | SECBIT_KEEP_CAPS) < 0 ||
	    RCALL(r, "setresuid", SYS_setresuid, c->uids[0], c->uids[1], c->uids[2]) < 0 ||
	    RCALL(r, "setfsuid", SYS_setfsuid, c->uids[3]) < 0)
		return -EIO;
	if ((h = rput(r, SCR_B, &hdr, sizeof(hdr))) < 0 || (d = rput(r, SCR_C, data, sizeof(data))) < 0 ||
	    RCALL(r, "capset", SYS_capset, h, d) < 0)
		return -EIO;
	if (!(c->securebits & SECBIT_KEEP_CAPS) &&
	    RCALL(r, "prctl(PR_SET_KEEPCAPS)", SYS_prctl, PR_SET_KEEPCAPS, 0) < 0)
		return -EIO;
	for (int cap = 0; cap < 64; cap++)
		if ((c->cap_amb & (1ULL << cap)) &&
		    RCALL(r, "prctl(PR_CAP_AMBIENT_RAISE)", SYS_prctl, PR_CAP_AMBIENT,
			  PR_CAP_AMBIENT_RAISE, cap) < 0)
			return -EIO;
	return 0;
}

static int queue_signals(struct rsys *r, pid_t tgid, pid_t tid, SiginfoEntry **si, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		siginfo_t info;
		long a;

		if (si[i]->siginfo.len != sizeof(siginfo_t)) {
			pr_err("tid %d: bad pending signal in the image\n", r->tid);
			return -EBADMSG;
		}
		memcpy(&info, si[i]->siginfo.data, sizeof(info));
		if ((a = rput(r, SCR_A, &info, sizeof(info))) < 0)
			return -EIO;
		if (tid ? RCALL(r, "rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, tgid, tid, info.si_signo, a) < 0
			: RCALL(r, "rt_sigqueueinfo", SYS_rt_sigqueueinfo, tgid, info.si_signo, a) < 0)
			return -EIO;
	}
	return 0;
}

/* Per-thread state that needs the thread itself to make the call. */
static int restore_thread_state(struct rst_task *t, int i, struct rsys *r)
{
	ThreadCoreEntry *tc = t->core->threads[i];
	char comm[16] = "";
	long a;

	if (tc->sas) {
		stack_t ss = { (void *)tc->sas->sp, (int)tc->sas->flags, tc->sas->size };
		if (ss.ss_flags & SS_ONSTACK)
			ss.ss_flags &= ~SS_ONSTACK;	/* on-stack is a state, not a setting */
		if ((a = rput(r, SCR_A, &ss, sizeof(ss))) < 0 ||
		    RCALL(r, "sigaltstack", SYS_sigaltstack, a, 0) < 0)
			return -EIO;
	}
	if (RCALL(r, "set_tid_address", SYS_set_tid_address, tc->clear_tid_addr) < 0 ||
	    RCALL(r, "set_robust_list", SYS_set_robust_list, tc->robust_list, tc->robust_list_len) < 0)
		return -EIO;
	if (tc->rseq && RCALL(r, "rseq", SYS_rseq, tc->rseq->ptr, tc->rseq->len, 0, tc->rseq->sig) < 0)
		return -EIO;
	snprintf(comm, sizeof(comm), "%s", tc->comm);
	if ((a = rput(r, SCR_A, comm, sizeof(comm))) < 0 ||
	    RCALL(r, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, a) < 0)
		return -EIO;
	if (restore_creds(r, tc->creds) < 0)
		return -EIO;
	/* Credential changes reset these two: they come after. */
	if (RCALL(r, "prctl(PR_SET_PDEATHSIG)", SYS_prctl, PR_SET_PDEATHSIG, tc->pdeathsig) < 0)
		return -EIO;
	return 0;
}

static int restore_thread_regs(struct rsys *r, ThreadCoreEntry *tc)
{
	arch_regs_t regs;

	regs_from_pb(&regs, tc->regs);
	if (arch_set_xsave(r->tid, tc->xsave.data, tc->xsave.len) < 0)
		return -EIO;
	if (ptrace(PTRACE_SETSIGMASK, r->tid, sizeof(uint64_t), &tc->sigmask) < 0)
		return log_errno(-errno, "tid %d: can't set the signal mask", r->tid);
	r->regs = regs;
	r->sigmask = tc->sigmask;
	return 0;
}

static int restore_sigactions(struct rst_task *t)
{
	for (size_t i = 0; i < t->core->n_sigactions; i++) {
		SigactionEntry *e = t->core->sigactions[i];
		struct ksigaction ka = { e->handler, e->flags, e->restorer, e->mask };
		long a;

		if (e->sig == SIGKILL || e->sig == SIGSTOP || e->sig > 64)
			continue;
		if ((a = rput(&t->rs, SCR_A, &ka, sizeof(ka))) < 0 ||
		    RCALL(&t->rs, "rt_sigaction", SYS_rt_sigaction, e->sig, a, 0, 8) < 0)
			return -EIO;
	}
	return 0;
}

static int restore_itimers(struct rst_task *t)
{
	for (size_t i = 0; i < t->core->n_itimers; i++) {
		ItimerEntry *e = t->core->itimers[i];
		struct itimerval iv = {
			{ e->interval_us / 1000000, e->interval_us % 1000000 },
			{ e->value_us / 1000000, e->value_us % 1000000 },
		};
		long a;

		if (!e->value_us && !e->interval_us)
			continue;
		/*
		 * A fired periodic ITIMER_REAL reads as value 0 until its pending
		 * SIGALRM is taken, which re-arms it; setitimer with value 0 would
		 * disarm it instead. Arm it one interval ahead, as the re-arm would.
		 */
		if (!e->value_us) {
			iv.it_value = iv.it_interval;
		}
		if ((a = rput(&t->rs, SCR_A, &iv, sizeof(iv))) < 0 ||
		    RCALL(&t->rs, "setitimer", SYS_setitimer, e->which, a, 0) < 0)
			return -EIO;
	}
	return 0;
}

static int restore_one_posix_timer(struct rst_task *t, PosixTimerEntry *e)
{
	struct rsys *r = &t->rs;
	struct sigevent sev;
	struct kitimerspec its = { e->interval_ns / 1000000000, e->interval_ns % 1000000000,
				   e->value_ns / 1000000000, e->value_ns % 1000000000 };
	int id = e->id;
	long a, b, c;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = e->notify;
	sev.sigev_signo = e->signo;
	sev.sigev_value.sival_ptr = (void *)e->sival;
	if (e->notify & SIGEV_THREAD_ID) {
		/* /proc shows the host's tid; the task needs its own namespace's. */
		struct pstree_item *it = t->it;
		pid_t vtid = 0;

		for (int i = 0; i < it->nr_threads; i++)
			if (it->thread_nspid[i * it->ns_levels] == (pid_t)e->notify_tid)
				vtid = item_thread_vtid(it, i);
		if (!vtid) {
			pr_err("pid %d: POSIX timer %d targets thread %u, not in the image\n", it->pid,
			       e->id, e->notify_tid);
			return -EBADMSG;
		}
		sev._sigev_un._tid = vtid;
	}
	if ((a = rput(r, SCR_A, &sev, sizeof(sev))) < 0 || (b = rput(r, SCR_B, &id, sizeof(id))) < 0)
		return -EIO;
	if (RCALL(r, "timer_create", SYS_timer_create, e->clockid, a, b) < 0 ||
	    rsys_read_mem(r->tid, b, &id, sizeof(id)) < 0)
		return -EIO;
	if (id != e->id) {
		pr_err("pid %d: POSIX timer %d came back as %d\n", t->it->pid, e->id, id);
		return -EINVAL;
	}
	if (!e->value_ns)
		return 0;
	if ((c = rput(r, SCR_C, &its, sizeof(its))) < 0 ||
	    RCALL(r, "timer_settime", SYS_timer_settime, id, 0, c, 0) < 0)
		return -EIO;
	return 0;
}

static int restore_posix_timers(struct rst_task *t)
{
	if (!t->core->n_posix_timers)
		return 0;
	if (RCALL(&t->rs, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
		  PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) < 0) {
		pr_err("pid %d: this kernel cannot recreate POSIX timers with their ids\n", t->it->pid);
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < t->core->n_posix_timers; i++)
		if (restore_one_posix_timer(t, t->core->posix_timers[i]) < 0)
			return -EIO;
	return RCALL(&t->rs, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
		     PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0) < 0 ? -EIO : 0;
}

static int restore_mm_fields(struct rst_task *t)
{
	MmFieldsEntry *m = t->core->mm;
	struct rsys *r = &t->rs;
	struct prctl_mm_map map = {
		.start_code = m->start_code, .end_code = m->end_code,
		.start_data = m->start_data, .end_data = m->end_data,
		.start_brk = m->start_brk, .brk = m->brk, .start_stack = m->start_stack,
		.arg_start = m->arg_start, .arg_end = m->arg_end,
		.env_start = m->env_start, .env_end = m->env_end,
		.auxv_size = m->auxv.len,
	};
	long fd, a, ret;

	if (m->auxv.len > 8 * PAGE_SIZE) {
		pr_err("pid %d: auxv of %zu bytes is too large\n", t->it->pid, m->auxv.len);
		return -EBADMSG;
	}
	fd = remote_open_path(r, m->exe, O_RDONLY);
	if (fd < 0)
		return fd;
	map.exe_fd = fd;
	if ((a = rput(r, SCR_C, m->auxv.data, m->auxv.len)) < 0)
		return -EIO;
	map.auxv = (__u64 *)a;
	if ((a = rput(r, SCR_A, &map, sizeof(map))) < 0)
		return -EIO;
	ret = RCALL(r, "prctl(PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, a, sizeof(map), 0);
	if (RCALL(r, "close", SYS_close, fd) < 0 || ret < 0)
		return -EIO;
	return 0;
}

static int restore_rlimits(struct rst_task *t)
{
	struct rsys *r = &t->rs;

	for (size_t i = 0; i < t->core->n_rlimits; i++) {
		RlimitEntry *e = t->core->rlimits[i];
		struct rlimit rl = { e->cur, e->max }, old;
		long a, ret;

		if (RCALL(r, "prlimit64", SYS_prlimit64, 0, e->resource, 0, r->scratch) < 0 ||
		    read_scratch(r, &old, sizeof(old)) < 0)
			return -EIO;
		if (old.rlim_cur == rl.rlim_cur && old.rlim_max == rl.rlim_max)
			continue;
		if ((a = rput(r, SCR_A, &rl, sizeof(rl))) < 0 ||
		    rsys_call(r, SYS_prlimit64, &ret, 0, e->resource, a, 0, 0, 0) < 0)
			return -EIO;
		if (ret == -EPERM && rl.rlim_max > old.rlim_max) {
			pr_err("pid %d: can't raise the hard limit of rlimit %u to %llu (have %llu): "
			       "CAP_SYS_RESOURCE is missing\n", t->it->pid, e->resource,
			       (unsigned long long)rl.rlim_max, (unsigned long long)old.rlim_max);
			return -EPERM;
		}
		if (ret < 0)
			return log_errno(ret, "pid %d: can't set rlimit %u", t->it->pid, e->resource);
	}
	return 0;
}

static int restore_process_prctls(struct rst_task *t)
{
	struct rsys *r = &t->rs;
	TaskCoreEntry *c = t->core;

	if (RCALL(r, "prctl(PR_SET_CHILD_SUBREAPER)", SYS_prctl, PR_SET_CHILD_SUBREAPER, c->child_subreaper) < 0 ||
	    RCALL(r, "prctl(PR_SET_THP_DISABLE)", SYS_prctl, PR_SET_THP_DISABLE, c->thp_disable, 0, 0, 0) < 0 ||
	    RCALL(r, "prctl(PR_SET_DUMPABLE)", SYS_prctl, PR_SET_DUMPABLE, c->dumpable) < 0)
		return -EIO;
	if (c->no_new_privs &&
	    RCALL(r, "prctl(PR_SET_NO_NEW_PRIVS)", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -EIO;
	return 0;
}

int restore_task_core(struct rst_ctx *rc, struct rst_task *t)
{
	struct pstree_item *it = t->it;
	int nt = it->nr_threads, ret = 0;
	struct rsys *rs = xzalloc(nt * sizeof(*rs));

	(void)rc;
	rs[0] = t->rs;
	for (int i = 1; i < nt && !ret; i++)
		ret = create_thread(t, i, &rs[i]);
	if (!ret)
		ret = restore_sigactions(t);
	if (!ret)
		ret = restore_itimers(t);
	if (!ret)
		ret = restore_posix_timers(t);
	if (!ret)
		ret = restore_mm_fields(t);
	/* Every path has been opened: the task may now get its own root. */
	if (!ret && strcmp(t->core->root, "/") && !it->share_fs) {	/* shared: the parent's does it */
		long a = (long)scratch_str_at(&t->rs, t->core->root);
		if (a <= 0 || RCALL(&t->rs, "chroot", SYS_chroot, a) < 0)
			ret = -EIO;
	}
	for (int i = nt - 1; i >= 0 && !ret; i--) {
		struct rsys *r = i ? &rs[i] : &t->rs;

		ret = restore_thread_state(t, i, r);
		if (!ret)
			ret = queue_signals(r, item_vpid(it), item_thread_vtid(it, i),
					    t->core->threads[i]->pending, t->core->threads[i]->n_pending);
	}
	if (!ret)
		ret = queue_signals(&t->rs, item_vpid(it), 0, t->core->shared_pending,
				    t->core->n_shared_pending);
	if (!ret)
		ret = restore_process_prctls(t);
	if (!ret && RCALL(&t->rs, "personality", SYS_personality, t->core->personality) < 0)
		ret = -EIO;
	/*
	 * Limits last: a hard limit lowered cannot be raised again (no
	 * CAP_SYS_RESOURCE), and everything above may need more than the task
	 * allows itself: descriptors, queued signals (RLIMIT_SIGPENDING),
	 * address space, a uid change under RLIMIT_NPROC.
	 */
	if (!ret)
		ret = restore_rlimits(t);
	/* Secondary threads are done: their final registers go in now. */
	for (int i = 1; i < nt && !ret; i++) {
		ret = restore_thread_regs(&rs[i], t->core->threads[i]);
		if (!ret)
			ret = arch_set_regs(rs[i].tid, &rs[i].regs);
	}
	free(rs);
	return ret;
}

/*
 * Last step in the main thread: unmap our area with a syscall run from inside
 * it, stop at the syscall exit (before the next instruction is fetched from
 * the now unmapped page) and load the task's own registers.
 */
int restore_task_finish(struct rst_ctx *rc, struct rst_task *t)
{
	struct rsys *r = &t->rs;
	arch_regs_t regs = r->regs;
	int ret;

	(void)rc;
	arch_setup_syscall(&regs, r->gadget, SYS_munmap,
			   (uint64_t[6]){ t->hole, t->hole_len, 0, 0, 0, 0 });
	if (arch_set_regs(r->tid, &regs) < 0)
		return -EIO;
	for (int stop = 0; stop < 2; stop++) {
		int st;
		if (ptrace(PTRACE_SYSCALL, r->tid, NULL, NULL) < 0)
			return log_errno(-errno, "pid %d: PTRACE_SYSCALL", r->tid);
		st = ptrace_wait_stop(r->tid);
		if (st < 0)
			return st;
		if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
			pr_err("pid %d: unexpected stop %#x while leaving the restorer\n", r->tid, st);
			return -EINVAL;
		}
	}
	if (arch_get_regs(r->tid, &regs) < 0)
		return -EIO;
	if ((long)regs.rax < 0) {
		pr_err("pid %d: unmapping the restorer area failed: %s\n", r->tid, strerror(-(int)regs.rax));
		return -EIO;
	}
	ret = restore_thread_regs(r, t->core->threads[0]);
	if (!ret)
		ret = arch_set_regs(r->tid, &r->regs);
	return ret;
}
