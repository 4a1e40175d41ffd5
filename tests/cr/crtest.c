/* Shared protocol of the C/R test programs: see crtest.h. */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cr_term_flag;

static const char *outfile;
static char test_name[64];
static char role[32] = "main";
static bool is_root = true;
static int argc_saved;
static char **argv_saved;

static char note[256];
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int nr_failures;
static char first_failure[512];

static void on_term(int sig)
{
	(void)sig;
	cr_term_flag = 1;
}

/* write(2) the whole buffer; log output must survive a checkpoint between
 * two partial writes. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void vlog(const char *kind, const char *fmt, va_list ap)
{
	char line[768];
	int n = snprintf(line, sizeof(line), "[%s %d %s] %s", test_name,
			 (int)getpid(), role, kind);

	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	write_all(STDERR_FILENO, line, (size_t)n);
}

void cr_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void cr_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("FAIL: ", fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&fail_lock);
	if (nr_failures++ == 0) {
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
		/* The verdict is one line; the log keeps the details. */
		for (char *p = first_failure; *p; p++)
			if (*p == '\n')
				*p = ' ';
	}
	pthread_mutex_unlock(&fail_lock);
}

int cr_failures(void)
{
	return nr_failures;
}

/* Creates PATH with CONTENT atomically: the runner polls for it. */
static int publish(const char *path, const char *content)
{
	char tmp[PATH_MAX];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		cr_log("can't create '%s': %s", tmp, strerror(errno));
		return -1;
	}
	if (write_all(fd, content, strlen(content)) || close(fd)) {
		cr_log("can't write '%s': %s", tmp, strerror(errno));
		return -1;
	}
	if (rename(tmp, path)) {
		cr_log("can't rename '%s' to '%s': %s", tmp, path, strerror(errno));
		return -1;
	}
	return 0;
}

void cr_set_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
}

int cr_report(void)
{
	char verdict[640];

	if (!is_root)
		cr_child_exit();
	if (nr_failures == 0)
		snprintf(verdict, sizeof(verdict), "PASS%s%s\n", note[0] ? " " : "", note);
	else if (nr_failures == 1)
		snprintf(verdict, sizeof(verdict), "FAIL: %s\n", first_failure);
	else
		snprintf(verdict, sizeof(verdict), "FAIL: %s (and %d more, see log)\n",
			 first_failure, nr_failures - 1);
	cr_log("%.*s", (int)strcspn(verdict, "\n"), verdict);
	if (publish(outfile, verdict))
		return 1;
	return nr_failures ? 1 : 0;
}

void cr_child_exit(void)
{
	_exit(nr_failures ? 1 : 0);
}

void cr_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("FAIL: setup: ", fmt, ap);
	va_end(ap);
	if (!is_root)
		_exit(1);
	if (nr_failures++ == 0) {
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	cr_report();
	exit(1);
}

void cr_init(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	const char *slash = strrchr(argv[0], '/');
	sigset_t term;

	snprintf(test_name, sizeof(test_name), "%s", slash ? slash + 1 : argv[0]);
	if (argc < 2) {
		fprintf(stderr, "usage: %s OUTFILE [ARGS...]\n", argv[0]);
		exit(2);
	}
	/* Only stdio is ours; anything inherited would be checkpointed too. */
	close_range(3, ~0U, 0);
	outfile = argv[1];
	/* Tests change their cwd and root: keep OUTFILE reachable. */
	if (outfile[0] != '/') {
		static char abs_out[2 * PATH_MAX];
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			cr_die("getcwd: %s", strerror(errno));
		snprintf(abs_out, sizeof(abs_out), "%s/%s", cwd, outfile);
		outfile = abs_out;
	}
	argc_saved = argc;
	argv_saved = argv;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &term, NULL))
		cr_die("can't block SIGTERM: %s", strerror(errno));
	if (sigaction(SIGTERM, &sa, NULL))
		cr_die("can't install the SIGTERM handler: %s", strerror(errno));
	if (getsid(0) != getpid() && setsid() < 0)
		cr_die("setsid: %s", strerror(errno));
}

int cr_argc(void)
{
	return argc_saved - 2;
}

const char *cr_arg(int i)
{
	return i < argc_saved - 2 ? argv_saved[i + 2] : NULL;
}

void cr_path(char *buf, size_t len, const char *name)
{
	const char *slash = strrchr(outfile, '/');
	int dirlen = slash ? (int)(slash - outfile) : 1;

	snprintf(buf, len, "%.*s/%s", dirlen, slash ? outfile : ".", name);
}

/* The descriptor table at readiness, as "fd target\n" lines: restore must
 * not add, drop or swap any. Read with getdents64, not opendir(), which
 * would allocate and move the heap that some tests compare.
 *
 * A restored pipe or socket is a new inode, so "pipe:[INO]" becomes
 * "pipe:[@FD]", FD being the lowest descriptor on the same object; and a
 * descriptor that shares its open file description with a lower one (dup,
 * inherited with another) ends with " =FD" (kcmp), whatever its kind: the
 * sharing is checked, not the inode numbers. */
static char fds_at_ready[4096];

struct dirent64_raw {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

#define CR_FDS_MAX 256
#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

struct fd_seen {
	int fd;
	char kind[24];			/* "pipe", "socket"; "" when the link names no inode */
	unsigned long long ino;
};

/* "KIND:[INO]" with a number inside the brackets. */
static bool inode_link(const char *target, char kind[24], unsigned long long *ino)
{
	int n = 0;

	if (sscanf(target, "%23[a-z_]:[%llu]%n", kind, ino, &n) < 2 || target[n] != '\0')
		return false;
	return true;
}

/* Insertion sort by fd: glibc's qsort() may call malloc(). */
static void sort_seen(struct fd_seen *seen, int nr)
{
	for (int i = 1; i < nr; i++) {
		struct fd_seen x = seen[i];
		int k = i;

		for (; k > 0 && seen[k - 1].fd > x.fd; k--)
			seen[k] = seen[k - 1];
		seen[k] = x;
	}
}

/* Canonical text of fd i of SEEN (sorted by fd), whose link is TARGET. */
static int describe_fd(char *out, size_t len, const struct fd_seen *seen, int i, const char *target)
{
	pid_t self = getpid();
	int n, same = -1;

	if (seen[i].kind[0]) {
		int first = seen[i].fd;

		for (int k = 0; k < i; k++)
			if (!strcmp(seen[k].kind, seen[i].kind) && seen[k].ino == seen[i].ino) {
				first = seen[k].fd;
				break;
			}
		n = snprintf(out, len, "%d %s:[@%d]", seen[i].fd, seen[i].kind, first);
	} else {
		n = snprintf(out, len, "%d %s", seen[i].fd, target);
	}
	for (int k = 0; k < i && same < 0; k++)
		if (syscall(SYS_kcmp, self, self, KCMP_FILE, seen[k].fd, seen[i].fd) == 0)
			same = seen[k].fd;
	if (same >= 0)
		n += snprintf(out + n, len > (size_t)n ? len - n : 0, " =%d", same);
	n += snprintf(out + n, len > (size_t)n ? len - n : 0, "\n");
	return n;
}

static void fd_target(int fd, char *target, size_t len)
{
	char path[64];
	ssize_t tlen;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	tlen = readlink(path, target, len - 1);
	target[tlen > 0 ? tlen : 0] = '\0';
}

static void list_fds(char *out, size_t len)
{
	static struct fd_seen seen[CR_FDS_MAX];
	char dents[4096], target[256];
	size_t used = 0;
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), nr = 0;
	long n;

	out[0] = '\0';
	if (dir < 0)
		return;
	while ((n = syscall(SYS_getdents64, dir, dents, sizeof(dents))) > 0) {
		for (long off = 0; off < n && nr < CR_FDS_MAX;) {
			struct dirent64_raw *d = (struct dirent64_raw *)(dents + off);

			off += d->reclen;
			if (d->name[0] == '.' || atoi(d->name) == dir)
				continue;
			seen[nr].fd = atoi(d->name);
			fd_target(seen[nr].fd, target, sizeof(target));
			if (!inode_link(target, seen[nr].kind, &seen[nr].ino))
				seen[nr].kind[0] = '\0';
			nr++;
		}
	}
	close(dir);
	sort_seen(seen, nr);
	for (int i = 0; i < nr && used < len; i++) {
		fd_target(seen[i].fd, target, sizeof(target));
		used += (size_t)describe_fd(out + used, len - used, seen, i, target);
	}
}

void cr_check_fds(void)
{
	char now[sizeof(fds_at_ready)];

	list_fds(now, sizeof(now));
	if (strcmp(now, fds_at_ready))
		cr_fail("descriptor table changed: now '%s', was '%s'", now, fds_at_ready);
}

void cr_ready(void)
{
	char path[PATH_MAX], self[32], content[48];
	ssize_t n;

	/* /proc is the host's even inside a new PID namespace, so this is the
	 * pid the runner must dump. */
	n = readlink("/proc/self", self, sizeof(self) - 1);
	if (n <= 0)
		n = snprintf(self, sizeof(self), "%d", (int)getpid());
	self[n] = '\0';
	snprintf(content, sizeof(content), "%s\n", self);
	list_fds(fds_at_ready, sizeof(fds_at_ready));
	snprintf(path, sizeof(path), "%s.ready", outfile);
	if (publish(path, content))
		cr_die("can't signal readiness");
	cr_log("ready (pid %d, host pid %s)", (int)getpid(), self);
}

void cr_wait_term(void)
{
	sigset_t mask;

	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	while (!cr_term_flag)
		sigsuspend(&mask);
	cr_log("got SIGTERM, verifying");
	cr_check_fds();
}

void cr_set_role(const char *name)
{
	snprintf(role, sizeof(role), "%s", name);
	is_root = false;
}

bool cr_is_root(void)
{
	return is_root;
}

/* Write end of the readiness pipe to our parent, until cr_child_ready(). */
static int ready_fd = -1;

pid_t cr_fork(const char *name)
{
	pid_t pid = fork();

	if (pid < 0)
		cr_die("fork for %s: %s", name, strerror(errno));
	if (pid == 0) {
		cr_set_role(name);
		nr_failures = 0;
		/* The parent's own channel to its parent is not ours. */
		if (ready_fd >= 0)
			close(ready_fd);
		ready_fd = -1;
	}
	return pid;
}

pid_t cr_spawn(const char *name)
{
	int fds[2];
	pid_t pid;
	char c;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC))
		cr_die("pipe for %s: %s", name, strerror(errno));
	pid = cr_fork(name);
	if (pid == 0) {
		close(fds[0]);
		ready_fd = fds[1];
		return 0;
	}
	close(fds[1]);
	do
		n = read(fds[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (n != 1)
		cr_die("%s (pid %d) died before it was ready", name, (int)pid);
	return pid;
}

void cr_child_ready(void)
{
	if (ready_fd < 0)
		cr_die("cr_child_ready without cr_spawn");
	if (write_all(ready_fd, "r", 1))
		cr_die("can't tell the parent we are ready: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
	list_fds(fds_at_ready, sizeof(fds_at_ready));
}

int cr_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, status, WNOHANG | __WALL);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR) {
			cr_fail("waitpid %d: %s", (int)pid, strerror(errno));
			return -1;
		}
		cr_sleep_ms(10);
	}
	return -1;
}

void cr_finish_children(const pid_t *pids, const char *const *roles, int n)
{
	int status;

	for (int i = 0; i < n; i++)
		if (kill(pids[i], SIGTERM))
			cr_fail("can't send SIGTERM to %s (pid %d): %s", roles[i],
				(int)pids[i], strerror(errno));
	for (int i = 0; i < n; i++) {
		if (cr_wait_pid(pids[i], 30000, &status)) {
			cr_fail("%s (pid %d) did not exit within 30 s", roles[i], (int)pids[i]);
			kill(pids[i], SIGKILL);
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			cr_fail("%s (pid %d) failed: status 0x%x (its log lines say why)",
				roles[i], (int)pids[i], status);
	}
}

void cr_sleep_ms(long ms)
{
	struct timespec end;

	/* An absolute deadline: restarting after EINTR or a checkpoint never
	 * stretches the sleep. */
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR)
		;
}

uint64_t cr_now_ns(void)
{
	struct timespec ts;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t cr_mix(uint64_t x)
{
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

void cr_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		w[i] = cr_mix(seed + i);
}

long cr_check_fill(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *w = buf;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i] != cr_mix(seed + i))
			return (long)(i * 8);
	return -1;
}

uint64_t cr_hash(const void *buf, size_t len, uint64_t seed)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

size_t cr_read_file(const char *path, char *buf, size_t len)
{
	size_t total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		cr_die("can't open '%s': %s", path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf + total, len - 1 - total);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			cr_die("can't read '%s': %s", path, strerror(errno));
		if (n == 0)
			break;
		total += (size_t)n;
		if (total == len - 1)
			cr_die("'%s' does not fit in %zu bytes", path, len);
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;

bool cr_status_field(const char *path, const char *key, char *buf, size_t len)
{
	static char text[16384];
	size_t klen = strlen(key);
	bool found = false;

	pthread_mutex_lock(&proc_lock);
	cr_read_file(path, text, sizeof(text));
	for (char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		line += klen + 1;
		line += strspn(line, " \t");
		snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
		found = true;
		break;
	}
	pthread_mutex_unlock(&proc_lock);
	return found;
}

bool cr_maps_line(const void *addr, char *buf, size_t len)
{
	static char maps[1 << 20];
	uintptr_t a = (uintptr_t)addr;
	bool found = false;

	pthread_mutex_lock(&proc_lock);
	cr_read_file("/proc/self/maps", maps, sizeof(maps));
	for (char *line = maps; *line;) {
		char *nl = strchr(line, '\n');
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && a >= start && a < end) {
			snprintf(buf, len, "%.*s", nl ? (int)(nl - line) : (int)strlen(line), line);
			found = true;
			break;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	pthread_mutex_unlock(&proc_lock);
	return found;
}

/* Copies the VmFlags of LINE into BUF, dropping uffd flags (um uw ui). */
static void filter_vmflags(const char *line, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	while (*line && *line != '\n') {
		size_t n;

		line += strspn(line, " ");
		n = strcspn(line, " \n");
		if (n && !(n == 2 && line[0] == 'u' && strchr("mwi", line[1])) && used + n + 2 < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%.*s", used ? " " : "",
						 (int)n, line);
		line += n;
	}
}

bool cr_vmflags(const void *addr, char *buf, size_t len)
{
	static char smaps[4 << 20];
	uintptr_t a = (uintptr_t)addr;
	bool inside = false, found = false;

	pthread_mutex_lock(&proc_lock);
	cr_read_file("/proc/self/smaps", smaps, sizeof(smaps));
	for (char *line = smaps; *line && !found; line += strcspn(line, "\n") + 1) {
		unsigned long start, end;
		char dash;

		if (sscanf(line, "%lx%c%lx ", &start, &dash, &end) == 3 && dash == '-')
			inside = a >= start && a < end;
		else if (inside && !strncmp(line, "VmFlags:", 8)) {
			filter_vmflags(line + 8, buf, len);
			found = true;
		}
		if (!line[strcspn(line, "\n")])
			break;
	}
	pthread_mutex_unlock(&proc_lock);
	return found;
}

void cr_maps_perms(const void *addr, char perms[5])
{
	char line[512];

	perms[0] = '\0';
	if (cr_maps_line(addr, line, sizeof(line)))
		sscanf(line, "%*x-%*x %4s", perms);
}

static __thread sigjmp_buf *volatile probe_env;
static __thread volatile int probe_code;
static __thread void *volatile probe_addr;

static void on_probe_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!probe_env) {
		/* A real crash: restore the default action and re-raise. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	probe_code = si->si_code;
	probe_addr = si->si_addr;
	siglongjmp(*probe_env, 1);
}

int cr_probe(const volatile void *addr, bool write, void **fault_addr)
{
	static bool installed;
	struct sigaction sa = { .sa_sigaction = on_probe_fault,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	sigjmp_buf env;

	if (!installed) {
		if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
			cr_die("can't install the fault handler: %s", strerror(errno));
		installed = true;
	}
	probe_code = 0;
	probe_addr = NULL;
	if (sigsetjmp(env, 1) == 0) {
		probe_env = &env;
		__asm__ volatile("" ::: "memory");
		if (write)
			*(volatile char *)addr = *(const volatile char *)addr;
		else
			(void)*(const volatile char *)addr;
	}
	__asm__ volatile("" ::: "memory");
	probe_env = NULL;
	if (fault_addr)
		*fault_addr = probe_addr;
	/* si_code of a fault is never 0 (SEGV_MAPERR is 1). */
	return probe_code;
}
