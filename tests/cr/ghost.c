/*
 * Files held after they were unlinked, and memfds:
 *  - a /dev/shm file mapped MAP_SHARED by the root and a child, then
 *    unlinked: writes made before the dump by both are kept, and a write
 *    by the child after restore is seen by the root (one file again);
 *  - a sparse unlinked file in the scratch dir, open read-write at an
 *    offset and through a second O_APPEND description, mode 0640;
 *  - a sealed memfd (SHRINK|GROW) held by fd 20 and mapped MAP_PRIVATE with
 *    a privately modified page, the other pages following the file;
 *  - a memfd created without sealing (F_SEAL_SEAL only).
 * Names ("... (deleted)", "/memfd:NAME (deleted)"), sizes, holes, modes,
 * seals, offsets and contents must all come back.
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHM_PAGES 8
#define SPARSE_FAR (1 << 20)
#define MFD_PAGES 4
#define RW_FD 10
#define APPEND_FD 11
#define MFD_FD 20
#define PLAIN_FD 21
#define SEED(n) (0x6057000ULL + (n))

static char shm_path[PATH_MAX], tmp_path[PATH_MAX];
static volatile char *shm;
static char *priv;
static char page[CR_PAGE];

static void fill_page(int fd, off_t off, uint64_t seed)
{
	cr_fill(page, CR_PAGE, seed);
	if (pwrite(fd, page, CR_PAGE, off) != (ssize_t)CR_PAGE)
		cr_die("pwrite at %lld: %s", (long long)off, strerror(errno));
}

static void check_page(const char *what, int fd, off_t off, uint64_t seed)
{
	if (pread(fd, page, CR_PAGE, off) != (ssize_t)CR_PAGE) {
		cr_fail("%s: can't read at %lld: %s", what, (long long)off, strerror(errno));
		return;
	}
	CR_CHECK(cr_check_fill(page, CR_PAGE, seed) < 0, "%s: wrong data at %lld", what, (long long)off);
}

static void move_fd(int fd, int to)
{
	if (dup2(fd, to) != to)
		cr_die("dup2 to %d: %s", to, strerror(errno));
	close(fd);
}

static void make_shm(void)
{
	int fd;

	snprintf(shm_path, sizeof(shm_path), "/dev/shm/crtest-ghost-%d", (int)getpid());
	fd = open(shm_path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		cr_die("create %s: %s", shm_path, strerror(errno));
	for (int p = 0; p < SHM_PAGES; p++)
		fill_page(fd, p * CR_PAGE, SEED(p));
	shm = mmap(NULL, SHM_PAGES * CR_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED)
		cr_die("mmap %s: %s", shm_path, strerror(errno));
	close(fd);
	unlink(shm_path);
}

static void make_sparse(void)
{
	int fd, fa;

	cr_path(tmp_path, sizeof(tmp_path), "sparse.tmp");
	fd = open(tmp_path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
	fa = open(tmp_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || fa < 0)
		cr_die("create %s: %s", tmp_path, strerror(errno));
	for (int p = 0; p < 3; p++)
		fill_page(fd, p * CR_PAGE, SEED(100 + p));
	fill_page(fd, SPARSE_FAR, SEED(200));
	fchmod(fd, 0640);
	lseek(fd, 5000, SEEK_SET);
	unlink(tmp_path);
	move_fd(fd, RW_FD);
	move_fd(fa, APPEND_FD);
	/* keep FD_CLOEXEC off on one, on the other */
	fcntl(APPEND_FD, F_SETFD, FD_CLOEXEC);
}

static void make_memfds(void)
{
	int fd = memfd_create("crtest-mfd", MFD_ALLOW_SEALING), plain = memfd_create("plain", 0);

	if (fd < 0 || plain < 0)
		cr_die("memfd_create: %s", strerror(errno));
	for (int p = 0; p < MFD_PAGES; p++)
		fill_page(fd, p * CR_PAGE, SEED(300 + p));
	fill_page(plain, 0, SEED(400));
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		cr_die("F_ADD_SEALS: %s", strerror(errno));
	priv = mmap(NULL, MFD_PAGES * CR_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (priv == MAP_FAILED)
		cr_die("mmap memfd: %s", strerror(errno));
	cr_fill(priv + CR_PAGE, CR_PAGE, SEED(500));	/* private copy of page 1 */
	move_fd(fd, MFD_FD);
	move_fd(plain, PLAIN_FD);
}

static void check_sparse(void)
{
	struct stat st;
	off_t data;

	if (fstat(RW_FD, &st) < 0) {
		cr_fail("fstat fd %d: %s", RW_FD, strerror(errno));
		return;
	}
	CR_EXPECT_EQ("sparse: size", st.st_size, SPARSE_FAR + CR_PAGE);
	CR_EXPECT_EQ("sparse: mode", st.st_mode & 07777, 0640);
	CR_EXPECT_EQ("sparse: links", st.st_nlink, 0);
	CR_EXPECT_EQ("sparse: offset", lseek(RW_FD, 0, SEEK_CUR), 5000);
	data = lseek(RW_FD, 3 * CR_PAGE, SEEK_DATA);
	CR_EXPECT_EQ("sparse: first data after the hole", data, SPARSE_FAR);
	for (int p = 0; p < 3; p++)
		check_page("sparse", RW_FD, p * CR_PAGE, SEED(100 + p));
	check_page("sparse far", RW_FD, SPARSE_FAR, SEED(200));
	/* Both descriptions reach the same file. */
	CR_EXPECT_EQ("append write", write(APPEND_FD, "tail", 4), 4);
	if (fstat(RW_FD, &st) == 0)
		CR_EXPECT_EQ("sparse: size after append", st.st_size, SPARSE_FAR + CR_PAGE + 4);
	CR_EXPECT_EQ("append fd: FD_CLOEXEC", fcntl(APPEND_FD, F_GETFD), FD_CLOEXEC);
	CR_EXPECT_EQ("rw fd: FD_CLOEXEC", fcntl(RW_FD, F_GETFD), 0);
	CR_EXPECT_EQ("append fd: flags", fcntl(APPEND_FD, F_GETFL) & (O_ACCMODE | O_APPEND),
		     O_WRONLY | O_APPEND);
}

static void check_memfds(void)
{
	struct stat st;

	CR_EXPECT_EQ("memfd: seals", fcntl(MFD_FD, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW);
	CR_EXPECT_EQ("plain memfd: seals", fcntl(PLAIN_FD, F_GET_SEALS), F_SEAL_SEAL);
	if (fstat(MFD_FD, &st) == 0)
		CR_EXPECT_EQ("memfd: size", st.st_size, MFD_PAGES * CR_PAGE);
	for (int p = 0; p < MFD_PAGES; p++)
		check_page("memfd", MFD_FD, p * CR_PAGE, SEED(300 + p));
	check_page("plain memfd", PLAIN_FD, 0, SEED(400));
	CR_CHECK(cr_check_fill(priv + CR_PAGE, CR_PAGE, SEED(500)) < 0, "memfd: private page lost");
	CR_CHECK(cr_check_fill(priv, CR_PAGE, SEED(300)) < 0, "memfd: mapped page 0 differs");
	/* An untouched private page still follows the file. */
	fill_page(MFD_FD, 2 * CR_PAGE, SEED(600));
	CR_CHECK(cr_check_fill(priv + 2 * CR_PAGE, CR_PAGE, SEED(600)) < 0,
		 "memfd: private mapping no longer follows the file");
	CR_EXPECT_EQ("memfd: sealed against growth", ftruncate(MFD_FD, 8 * CR_PAGE), -1);
}

static void child(void)
{
	cr_fill((char *)shm + CR_PAGE, CR_PAGE, SEED(1001));
	cr_child_ready();
	cr_wait_term();
	CR_CHECK(cr_check_fill((char *)shm, CR_PAGE, SEED(1000)) < 0, "child: root's page not seen");
	/* After restore: the root must see this. */
	cr_fill((char *)shm + 2 * CR_PAGE, CR_PAGE, SEED(1002));
	cr_child_exit();
}

int main(int argc, char **argv)
{
	const char *roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	make_shm();
	make_sparse();
	make_memfds();
	cr_fill((char *)shm, CR_PAGE, SEED(1000));
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	cr_ready();
	cr_wait_term();
	check_sparse();
	check_memfds();
	CR_CHECK(cr_check_fill((char *)shm + CR_PAGE, CR_PAGE, SEED(1001)) < 0,
		 "shm: child's page before the dump lost");
	cr_finish_children(&kid, roles, 1);
	CR_CHECK(cr_check_fill((char *)shm + 2 * CR_PAGE, CR_PAGE, SEED(1002)) < 0,
		 "shm: child's write after restore not seen: not one file any more");
	for (int p = 3; p < SHM_PAGES; p++)
		CR_CHECK(cr_check_fill((char *)shm + p * CR_PAGE, CR_PAGE, SEED(p)) < 0, "shm: page %d", p);
	return cr_report();
}
