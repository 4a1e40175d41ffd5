/*
 * A job container's mount namespace (unshare=mount-proc with flags=pidns:
 * `unshare --pid --fork --mount-proc --propagation private`): the program
 * mounts a private tmpfs on /dev/shm and another inside it, fills them
 * (directories, data with a hole, a symlink, a hard link, a fifo, modes,
 * owners, times), keeps a descriptor on one file, maps another MAP_SHARED
 * in two processes, and maps a deleted file there MAP_SHARED in both.
 * It also mounts a devpts instance of its own on /dev/pts with its ptmx
 * bound on /dev/ptmx, holds a terminal there (master in the root, slave in
 * the child), and unmounts one of the host's mounts from its copy. After restore
 * the list of mounts is the same (types, sources, options), the tmpfs
 * mounts have exactly that content, the mappings still share, and /proc is
 * the namespace's own.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994
#define DATA_LEN (3 * CR_PAGE + 123)
#define HOLE_AT (1UL << 20)
#define MAP_LEN (2 * CR_PAGE)

static const struct timespec old_times[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
static unsigned char *ghost_map, *file_map;
static uint64_t file_hash, ghost_hash;	/* of each mapping but its first word */
static int small_fd, ptm = -1, pts = -1;

static void die_errno(const char *what)
{
	cr_die("%s: %s", what, strerror(errno));
}

static void write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		die_errno(path);
	close(fd);
}

static unsigned char *map_file(const char *path, bool unlink_it)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	unsigned char *p;

	if (fd < 0 || ftruncate(fd, MAP_LEN) < 0)
		die_errno(path);
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die_errno("mmap");
	close(fd);
	if (unlink_it && unlink(path) < 0)
		die_errno("unlink");
	return p;
}

static void setup(void)
{
	static unsigned char data[DATA_LEN];
	int fd;

	if (mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=65536k,mode=1777") < 0)
		die_errno("mount tmpfs on /dev/shm");
	if (mkdir("/dev/shm/d1", 0750) < 0 || chown("/dev/shm/d1", 1000, 1000) < 0)
		die_errno("mkdir d1");
	cr_fill(data, sizeof(data), 77);
	write_file("/dev/shm/d1/data", data, sizeof(data), 0644);
	fd = open("/dev/shm/d1/data", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, "tail", 4, HOLE_AT) != 4)
		die_errno("d1/data tail");
	close(fd);
	write_file("/dev/shm/small", "small file\n", 11, 0604);
	if (chown("/dev/shm/small", 1001, 1002) < 0 || chmod("/dev/shm/small", 0604) < 0)
		die_errno("chown small");
	if (link("/dev/shm/small", "/dev/shm/d1/hard") < 0 || symlink("d1/data", "/dev/shm/link") < 0 ||
	    mkfifo("/dev/shm/fifo", 0620) < 0 || chmod("/dev/shm/fifo", 0620) < 0)
		die_errno("link/symlink/fifo");
	if (mkdir("/dev/shm/sub", 0711) < 0 ||
	    mount("subfs", "/dev/shm/sub", "tmpfs", MS_NOEXEC, "size=1024k,mode=0711") < 0)
		die_errno("mount tmpfs on /dev/shm/sub");
	write_file("/dev/shm/sub/inner", "inner\n", 6, 0600);
	/* A job container's own terminals: an empty devpts instance and its ptmx. */
	if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") < 0 ||
	    mount("/dev/pts/ptmx", "/dev/ptmx", NULL, MS_BIND, NULL) < 0)
		die_errno("mount devpts on /dev/pts");
	/* A terminal of that instance: the root holds the master, the child the slave. */
	ptm = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ptm < 0 || unlockpt(ptm) < 0)
		die_errno("open /dev/ptmx");
	file_map = map_file("/dev/shm/mapped", false);
	ghost_map = map_file("/dev/shm/ghost", true);
	cr_fill(file_map, MAP_LEN, 5);
	cr_fill(ghost_map, MAP_LEN, 6);
	file_hash = cr_hash(file_map + 8, MAP_LEN - 8, 0);
	ghost_hash = cr_hash(ghost_map + 8, MAP_LEN - 8, 0);
	small_fd = open("/dev/shm/small", O_RDONLY | O_CLOEXEC);
	if (small_fd < 0 || lseek(small_fd, 5, SEEK_SET) != 5)
		die_errno("open small");
	/* Last: creating entries changes their directory's times. */
	if (utimensat(AT_FDCWD, "/dev/shm/d1/data", old_times, 0) < 0 ||
	    utimensat(AT_FDCWD, "/dev/shm/d1", old_times, 0) < 0 ||
	    utimensat(AT_FDCWD, "/dev/shm/link", old_times, AT_SYMLINK_NOFOLLOW) < 0)
		die_errno("utimensat");
}

static void check_stat(const char *path, mode_t mode, uid_t uid, gid_t gid, off_t size)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		cr_fail("%s: %s", path, strerror(errno));
		return;
	}
	CR_CHECK(st.st_mode == mode, "%s: mode %o, expected %o", path, st.st_mode, mode);
	CR_CHECK(st.st_uid == uid && st.st_gid == gid, "%s: owner %u:%u, expected %u:%u", path,
		 st.st_uid, st.st_gid, uid, gid);
	CR_CHECK(size < 0 || st.st_size == size, "%s: size %jd, expected %jd", path,
		 (intmax_t)st.st_size, (intmax_t)size);
}

static void check_times(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	CR_CHECK(st.st_atim.tv_sec == old_times[0].tv_sec && st.st_atim.tv_nsec == old_times[0].tv_nsec &&
		 st.st_mtim.tv_sec == old_times[1].tv_sec && st.st_mtim.tv_nsec == old_times[1].tv_nsec,
		 "%s: times %ld.%09ld %ld.%09ld, expected %ld.%09ld %ld.%09ld", path,
		 st.st_atim.tv_sec, st.st_atim.tv_nsec, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		 old_times[0].tv_sec, old_times[0].tv_nsec, old_times[1].tv_sec, old_times[1].tv_nsec);
}

static void check_content(void)
{
	static unsigned char buf[HOLE_AT + 4];
	struct stat a, b;
	char text[64];
	ssize_t n;
	long bad;
	int fd;

	check_stat("/dev/shm", S_IFDIR | 01777, 0, 0, -1);
	check_stat("/dev/shm/d1", S_IFDIR | 0750, 1000, 1000, -1);
	check_stat("/dev/shm/d1/data", S_IFREG | 0644, 0, 0, HOLE_AT + 4);
	check_stat("/dev/shm/small", S_IFREG | 0604, 1001, 1002, 11);
	check_stat("/dev/shm/fifo", S_IFIFO | 0620, 0, 0, 0);
	check_stat("/dev/shm/sub", S_IFDIR | 0711, 0, 0, -1);
	check_stat("/dev/shm/sub/inner", S_IFREG | 0600, 0, 0, 6);
	check_times("/dev/shm/d1/data");
	check_times("/dev/shm/d1");
	check_times("/dev/shm/link");
	n = readlink("/dev/shm/link", text, sizeof(text) - 1);
	CR_CHECK(n == 7 && !memcmp(text, "d1/data", 7), "symlink reads '%.*s'", (int)(n > 0 ? n : 0), text);
	CR_CHECK(stat("/dev/shm/small", &a) == 0 && stat("/dev/shm/d1/hard", &b) == 0 &&
		 a.st_ino == b.st_ino && a.st_nlink == 2, "d1/hard is not a hard link of small");
	fd = open("/dev/shm/d1/data", O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
	CR_CHECK(n == (ssize_t)sizeof(buf), "d1/data: read %zd bytes", n);
	bad = cr_check_fill(buf, DATA_LEN, 77);
	CR_CHECK(bad < 0, "d1/data differs at byte %ld", bad);
	for (size_t i = DATA_LEN; i < HOLE_AT; i++)
		if (buf[i]) {
			cr_fail("d1/data: byte %zu of the hole is %#x", i, buf[i]);
			break;
		}
	CR_CHECK(!memcmp(buf + HOLE_AT, "tail", 4), "d1/data: tail differs");
	CR_CHECK(fstat(fd, &a) == 0 && (unsigned long)a.st_blocks * 512 < HOLE_AT / 2,
		 "d1/data: the hole was filled (%jd blocks)", (intmax_t)a.st_blocks);
	if (fd >= 0)
		close(fd);
	/* The descriptor kept its offset, in the restored file. */
	n = read(small_fd, text, sizeof(text));
	CR_CHECK(n == 6 && !memcmp(text, " file\n", 6), "small fd read '%.*s'", (int)(n > 0 ? n : 0), text);
	CR_CHECK(stat("/dev/shm/small", &a) == 0 && fstat(small_fd, &b) == 0 && a.st_ino == b.st_ino &&
		 a.st_dev == b.st_dev, "small fd is not /dev/shm/small");
}

static void check_mounts(void)
{
	struct statfs sf;
	char self[32];
	ssize_t n;

	CR_CHECK(statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC && sf.f_blocks * sf.f_bsize == 65536 * 1024L,
		 "/dev/shm is not the 64 MiB tmpfs (type %#lx, %ld blocks)", (long)sf.f_type, (long)sf.f_blocks);
	CR_CHECK(statfs("/dev/shm/sub", &sf) == 0 && sf.f_type == TMPFS_MAGIC && sf.f_blocks * sf.f_bsize == 1024 * 1024L &&
		 (sf.f_flags & ST_NOEXEC), "/dev/shm/sub is not the 1 MiB noexec tmpfs");
	/* Our own devpts: ours is pts 0, the next one opened is number 1, and appears there. */
	{
		int m2 = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		char name[64] = "";
		struct stat st;

		CR_CHECK(ptsname_r(ptm, name, sizeof(name)) == 0 && !strcmp(name, "/dev/pts/0"),
			 "the kept master is '%s', not /dev/pts/0", name);
		CR_CHECK(m2 >= 0 && ptsname_r(m2, name, sizeof(name)) == 0 && !strcmp(name, "/dev/pts/1") &&
			 stat(name, &st) == 0 && S_ISCHR(st.st_mode),
			 "/dev/ptmx did not give /dev/pts/1 of a devpts of our own ('%s': %s)", name,
			 strerror(errno));
		if (m2 >= 0)
			close(m2);
	}
	/* Our own proc: pid 1 is us. */
	n = readlink("/proc/self", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	CR_CHECK(atoi(self) == getpid(), "/proc/self is '%s', we are %d: /proc is not the namespace's",
		 self, (int)getpid());
}

/*
 * Our mounts as a sorted list of "root mountpoint options - type source
 * super-options" (ids and device numbers change with a restore).
 */
static char mounts_at_ready[32768];

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void mount_list(char *out, size_t len)
{
	static char text[32768], norm[32768];
	static char *lines[512];
	char *save = NULL, *line;
	size_t used = 0, n = 0;

	cr_read_file("/proc/self/mountinfo", text, sizeof(text));
	for (line = strtok_r(text, "\n", &save); line && n < CR_ARRAY_SIZE(lines);
	     line = strtok_r(NULL, "\n", &save)) {
		char root[1024], mp[1024], opts[256], *dash = strstr(line, " - ");
		int k;

		if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s %255s", root, mp, opts) != 3)
			cr_die("bad mountinfo line '%s'", line);
		k = snprintf(norm + used, sizeof(norm) - used, "%s %s %s%s", root, mp, opts, dash);
		if (k < 0 || (size_t)k >= sizeof(norm) - used)
			cr_die("too many mounts");
		lines[n++] = norm + used;
		used += k + 1;
	}
	qsort(lines, n, sizeof(*lines), cmp_lines);
	out[0] = '\0';
	for (size_t i = 0, o = 0; i < n; i++) {
		int k = snprintf(out + o, len - o, "%s\n", lines[i]);

		if (k < 0 || (size_t)k >= len - o)
			cr_die("mount list too long");
		o += k;
	}
}

/* Drop one mount of the host's copy: restore must unmount it from its copy too. */
static void drop_a_host_mount(void)
{
	static char text[32768];
	char mp[1024] = "", *save = NULL;

	cr_read_file("/proc/self/mountinfo", text, sizeof(text));
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char m[1024];

		if (sscanf(line, "%*s %*s %*s %*s %1023s", m) == 1 && strcmp(m, "/") &&
		    strncmp(m, "/proc", 5) && strncmp(m, "/dev", 4) && strncmp(m, "/tmp", 4))
			snprintf(mp, sizeof(mp), "%s", m);
	}
	if (mp[0] && umount2(mp, MNT_DETACH) < 0)
		cr_die("umount %s: %s", mp, strerror(errno));
	cr_log("unmounted %s", mp[0] ? mp : "(nothing)");
}

static void check_maps(const char *who)
{
	/* The first word is where the root writes after its checks. */
	CR_CHECK(cr_hash(file_map + 8, MAP_LEN - 8, 0) == file_hash, "%s: /dev/shm/mapped mapping differs", who);
	CR_CHECK(cr_hash(ghost_map + 8, MAP_LEN - 8, 0) == ghost_hash, "%s: deleted file mapping differs", who);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	if (getpid() != 1)
		cr_die("not the init of a PID namespace (run with flags=pidns unshare=mount-proc)");
	drop_a_host_mount();
	setup();
	kid = cr_spawn("child");
	if (kid == 0) {
		pts = open("/dev/pts/0", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (pts < 0)
			die_errno("open /dev/pts/0");
		cr_child_ready();
		cr_wait_term();
		check_maps("child");
		/* The root wrote these after its restore, before our SIGTERM. */
		CR_CHECK(file_map[1] == 0xa1 && ghost_map[1] == 0xa2,
			 "child: the root's writes are not shared (%#x %#x)", file_map[1], ghost_map[1]);
		CR_CHECK(write(pts, "ping", 4) == 4, "child: write on /dev/pts/0: %s", strerror(errno));
		cr_child_exit();
	}
	mount_list(mounts_at_ready, sizeof(mounts_at_ready));
	cr_ready();
	cr_wait_term();
	{
		static char now[sizeof(mounts_at_ready)];

		mount_list(now, sizeof(now));
		if (strcmp(now, mounts_at_ready)) {
			cr_log("mounts at readiness:\n%s", mounts_at_ready);
			cr_log("mounts now:\n%s", now);
			cr_fail("the mounts differ from those at readiness (see the log)");
		}
	}
	check_content();
	check_mounts();
	check_maps("root");
	file_map[1] = 0xa1;
	ghost_map[1] = 0xa2;
	cr_finish_children(&kid, roles, 1);
	{
		char buf[16] = "";
		ssize_t n = read(ptm, buf, sizeof(buf) - 1);

		CR_CHECK(n >= 4 && !memcmp(buf, "ping", 4), "master read '%.*s' (%zd), expected the child's ping",
			 (int)(n > 0 ? n : 0), buf, n);
	}
	return cr_report();
}
