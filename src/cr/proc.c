#define LOG_PREFIX "proc: "
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "proc.h"
#include "util.h"

int proc_parse_maps_line(const char *line, struct proc_vma *v)
{
	char perms[5];
	int path_off = 0;
	unsigned long long start, end, off, ino;
	unsigned maj, min;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min,
		   &ino, &path_off) < 7 || strlen(perms) != 4 || start >= end)
		return -EINVAL;
	v->start = start;
	v->end = end;
	v->pgoff = off;
	v->dev_major = maj;
	v->dev_minor = min;
	v->ino = ino;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	if (path_off > 0 && line[path_off] && line[path_off] != '\n') {
		const char *p = line + path_off;
		size_t l = strcspn(p, "\n");

		v->path = strndup(p, l);
		if (!v->path)
			abort();
	}
	return 0;
}

static void parse_vmflags(struct proc_vma *v, const char *flags)
{
	static const struct { const char name[3]; uint32_t bit; } madv[] = {
		{ "dc", VMA_MADV_DONTFORK }, { "wf", VMA_MADV_WIPEONFORK },
		{ "dd", VMA_MADV_DONTDUMP }, { "hg", VMA_MADV_HUGEPAGE },
		{ "nh", VMA_MADV_NOHUGEPAGE }, { "mg", VMA_MADV_MERGEABLE },
	};

	snprintf(v->vmflags, sizeof(v->vmflags), "%s", flags);
	for (const char *p = flags; *p; p++) {
		if (!isalpha((unsigned char)p[0]) || !isalpha((unsigned char)p[1]))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(madv); i++)
			if (!strncmp(p, madv[i].name, 2))
				v->madv |= madv[i].bit;
		if (!strncmp(p, "gd", 2))
			v->growsdown = true;
		if (!strncmp(p, "lo", 2))
			v->locked = true;
		if (!strncmp(p, "io", 2))
			v->io = true;
		if (!strncmp(p, "pf", 2))
			v->pfnmap = true;
		if (!strncmp(p, "mm", 2))
			v->mixedmap = true;
		if (!strncmp(p, "nr", 2))
			v->noreserve = true;
		if (!strncmp(p, "mw", 2))
			v->maywrite = true;
		p++;
	}
}

int proc_parse_smaps(pid_t pid, struct proc_vma **out, int *nr)
{
	char path[64];
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0, alloc = 0;
	struct proc_vma *v = NULL;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f) {
		pr_perror("can't open %s", path);
		return -errno;
	}
	while (getline(&line, &cap, f) > 0) {
		struct proc_vma tmp;

		if (!strncmp(line, "VmFlags:", 8)) {
			if (n)
				parse_vmflags(&v[n - 1], line + 8);
			continue;
		}
		if (!isxdigit((unsigned char)line[0]) || proc_parse_maps_line(line, &tmp) < 0)
			continue;
		if ((size_t)n == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			v = xrealloc(v, alloc * sizeof(*v));
		}
		v[n++] = tmp;
	}
	*out = v;
	*nr = n;
	return 0;
}

void proc_free_vmas(struct proc_vma *v, int nr)
{
	for (int i = 0; i < nr; i++)
		free(v[i].path);
	free(v);
}

/* A task that is gone (reaped) reads as ENOENT or ESRCH. */
static bool proc_gone(ssize_t err)
{
	return err == -ENOENT || err == -ESRCH;
}

int proc_parse_stat(pid_t pid, pid_t tid, struct proc_stat *st)
{
	int ret = proc_try_parse_stat(pid, tid, st);

	if (proc_gone(ret))
		return log_errno(ret, "can't read /proc/%d/stat", pid);
	return ret;
}

int proc_try_parse_stat(pid_t pid, pid_t tid, struct proc_stat *st)
{
	_cleanup_free_ char *buf = NULL;
	unsigned long long f[64];
	char *p, *e;
	int nf = 0;
	ssize_t n = read_proc_file(pid, tid, "stat", &buf);

	if (proc_gone(n))
		return -ENOENT;
	if (n < 0)
		return log_errno(n, "can't read /proc/%d/stat", pid);
	memset(st, 0, sizeof(*st));
	/* comm may hold spaces and parentheses: it ends at the last ')'. */
	p = strchr(buf, '(');
	e = strrchr(buf, ')');
	if (!p || !e || e < p || e[1] != ' ' || !e[2]) {
		pr_err("/proc/%d/stat: unexpected format\n", pid);
		return -EINVAL;
	}
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(e - p - 1), p + 1);
	st->state = e[2];
	p = e + 3;
	/* f[k] holds field number k+4 of proc(5). */
	while (nf < 64 && *p) {
		char *end;
		f[nf++] = strtoull(p, &end, 10);
		if (end == p)
			break;
		p = end;
		while (*p == ' ')
			p++;
	}
	if (nf < 49) {
		pr_err("/proc/%d/stat: only %d fields\n", pid, nf + 3);
		return -EINVAL;
	}
#define F(n) f[(n) - 4]
	st->ppid = F(4);
	st->pgrp = F(5);
	st->session = F(6);
	st->tty_nr = F(7);
	st->tpgid = (pid_t)F(8);
	st->flags = F(9);
	st->start_code = F(26);
	st->end_code = F(27);
	st->start_stack = F(28);
	st->start_data = F(45);
	st->end_data = F(46);
	st->start_brk = F(47);
	st->arg_start = F(48);
	st->arg_end = F(49);
	st->env_start = F(50);
	st->env_end = F(51);
	st->exit_code = F(52);
#undef F
	return 0;
}

static int parse_u32_list(const char *s, uint32_t *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);
		if (end == s)
			break;
		out[n++] = v;
		s = end;
	}
	return n;
}

static void parse_pid_list(const char *s, pid_t *out, int *n)
{
	uint32_t tmp[PROC_MAX_NS];

	*n = parse_u32_list(s, tmp, PROC_MAX_NS);
	for (int i = 0; i < *n; i++)
		out[i] = tmp[i];
}

int proc_parse_status(pid_t pid, pid_t tid, struct proc_status *st)
{
	int ret = proc_try_parse_status(pid, tid, st);

	if (proc_gone(ret))
		return log_errno(ret, "can't read /proc/%d/status", tid ? tid : pid);
	return ret;
}

int proc_try_parse_status(pid_t pid, pid_t tid, struct proc_status *st)
{
	_cleanup_free_ char *buf = NULL;
	ssize_t n = read_proc_file(pid, tid, "status", &buf);
	char *save = NULL;
	int l;

	if (proc_gone(n))
		return -ENOENT;
	if (n < 0)
		return log_errno(n, "can't read /proc/%d/status", tid ? tid : pid);
	memset(st, 0, sizeof(*st));
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ':');
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "Uid"))
			parse_u32_list(v, st->uids, 4);
		else if (!strcmp(line, "Gid"))
			parse_u32_list(v, st->gids, 4);
		else if (!strcmp(line, "Groups")) {
			uint32_t tmp[65536 / 64];
			st->nr_groups = parse_u32_list(v, tmp, ARRAY_SIZE(tmp));
			st->groups = xmalloc(sizeof(uint32_t) * (st->nr_groups + 1));
			memcpy(st->groups, tmp, sizeof(uint32_t) * st->nr_groups);
		} else if (!strcmp(line, "CapInh"))
			st->cap_inh = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapPrm"))
			st->cap_prm = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapEff"))
			st->cap_eff = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapBnd"))
			st->cap_bnd = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapAmb"))
			st->cap_amb = strtoull(v, NULL, 16);
		else if (!strcmp(line, "SigBlk"))
			st->sig_blk = strtoull(v, NULL, 16);
		else if (!strcmp(line, "ShdPnd"))
			st->shd_pnd = strtoull(v, NULL, 16);
		else if (!strcmp(line, "SigPnd"))
			st->sig_pnd = strtoull(v, NULL, 16);
		else if (!strcmp(line, "NSpid")) {
			parse_pid_list(v, st->nspid, &l);
			st->ns_levels = l;
		} else if (!strcmp(line, "NSpgid"))
			parse_pid_list(v, st->nspgid, &l);
		else if (!strcmp(line, "NSsid"))
			parse_pid_list(v, st->nssid, &l);
		else if (!strcmp(line, "Seccomp"))
			st->seccomp = atoi(v);
		else if (!strcmp(line, "NoNewPrivs"))
			st->no_new_privs = atoi(v);
		else if (!strcmp(line, "Umask"))
			st->umask = strtoul(v, NULL, 8);
		else if (!strcmp(line, "State"))
			st->state = v[strspn(v, " \t")];
	}
	return 0;
}

void proc_free_status(struct proc_status *st)
{
	free(st->groups);
	st->groups = NULL;
}

int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi)
{
	char name[32];
	_cleanup_free_ char *buf = NULL;
	char *save = NULL;
	ssize_t n;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	n = read_proc_file(pid, 0, name, &buf);
	if (n < 0)
		return log_errno(n, "can't read /proc/%d/fdinfo/%d", pid, fd);
	memset(fi, 0, sizeof(*fi));
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "pos:", 4))
			fi->pos = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "flags:", 6))
			fi->flags = strtoul(line + 6, NULL, 8);
		else if (!strncmp(line, "mnt_id:", 7))
			fi->mnt_id = atoi(line + 7);
		else if (strncmp(line, "ino:", 4))
			fi->has_other = true;
	}
	return 0;
}

static int timer_notify(const char *s, pid_t *tid)
{
	char kind[16] = "", target[8] = "";
	int t = 0, notify;

	*tid = 0;
	/* "signal/pid.123", "signal/tid.123" (SIGEV_THREAD_ID), "none/pid.123" */
	if (sscanf(s, " %15[a-z]/%7[a-z].%d", kind, target, &t) < 2)
		return -1;
	if (!strcmp(kind, "signal"))
		notify = SIGEV_SIGNAL;
	else if (!strcmp(kind, "none"))
		notify = SIGEV_NONE;
	else if (!strcmp(kind, "thread"))
		notify = SIGEV_THREAD;
	else
		return -1;
	if (!strcmp(target, "tid")) {
		*tid = t;
		notify |= SIGEV_THREAD_ID;
	}
	return notify;
}

int proc_parse_timers(pid_t pid, struct proc_posix_timer **out, int *nr)
{
	_cleanup_free_ char *buf = NULL;
	struct proc_posix_timer *t = NULL, *cur = NULL;
	char *save = NULL;
	int n = 0;
	ssize_t len = read_proc_file(pid, 0, "timers", &buf);

	if (len < 0)
		return log_errno(len, "can't read /proc/%d/timers", pid);
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "ID:", 3)) {
			t = xrealloc(t, (n + 1) * sizeof(*t));
			cur = &t[n++];
			memset(cur, 0, sizeof(*cur));
			cur->id = atoi(line + 3);
		} else if (!cur) {
			continue;
		} else if (!strncmp(line, "signal:", 7)) {
			unsigned long long ptr = 0;
			sscanf(line + 7, " %d/%llx", &cur->signo, &ptr);
			cur->sival = ptr;
		} else if (!strncmp(line, "notify:", 7)) {
			cur->notify = timer_notify(line + 7, &cur->notify_tid);
			if (cur->notify < 0) {
				pr_err("/proc/%d/timers: unknown notify '%s'\n", pid, line + 7);
				free(t);
				return -EINVAL;
			}
		} else if (!strncmp(line, "ClockID:", 8)) {
			cur->clockid = atoi(line + 8);
		}
	}
	*out = t;
	*nr = n;
	return 0;
}

static int append_pids(const char *s, pid_t **out, int *nr)
{
	while (*s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		*out = xrealloc(*out, (*nr + 1) * sizeof(pid_t));
		(*out)[(*nr)++] = v;
		s = end;
	}
	return 0;
}

int proc_children(pid_t pid, pid_t **out, int *nr)
{
	_cleanup_free_ pid_t *tids = NULL;
	int nt = 0, ret;

	ret = proc_threads(pid, &tids, &nt);
	if (ret < 0)
		return ret;
	for (int i = 0; i < nt; i++) {
		_cleanup_free_ char *buf = NULL;
		ssize_t n = read_proc_file(pid, tids[i], "children", &buf);
		if (n == -ENOENT || n == -ESRCH)
			continue;
		if (n < 0)
			return log_errno(n, "can't read /proc/%d/task/%d/children", pid, tids[i]);
		append_pids(buf, out, nr);
	}
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	return *(const pid_t *)a - *(const pid_t *)b;
}

int proc_threads(pid_t pid, pid_t **out, int *nr)
{
	char path[64];
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	pid_t *t = NULL;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d) {
		int e = -errno;
		if (e != -ENOENT)
			pr_perror("can't open %s", path);
		return e;
	}
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		t = xrealloc(t, (n + 1) * sizeof(pid_t));
		t[n++] = atoi(de->d_name);
	}
	qsort(t, n, sizeof(pid_t), cmp_pid);
	/* main thread first */
	for (int i = 0; i < n; i++) {
		if (t[i] == pid) {
			memmove(t + 1, t, i * sizeof(pid_t));
			t[0] = pid;
			break;
		}
	}
	*out = t;
	*nr = n;
	return 0;
}
