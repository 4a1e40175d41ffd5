/*
 * System V IPC of an IPC namespace the tree owns (unshare=ipc): shared
 * memory attached in two processes (and twice in one, once read-only), a
 * detached sparse segment, a segment removed while attached, semaphore sets
 * with their values, message queues with messages of several types. After
 * restore every object has the same id, key, owner and mode, the segments
 * the same bytes at the same addresses (and writes still cross), the
 * semaphores their values and the queues their messages, in order.
 */
#include "crtest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#define A_SIZE (3 * CR_PAGE + 100)
#define B_SIZE (1UL << 20)
#define C_SIZE (2 * CR_PAGE)
#define NSEMS 5

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int shm_a, shm_b, shm_c, sem_a, sem_b, msq_a, msq_b;
static unsigned char *a_root, *a_again, *c_addr;	/* a_again: the child's second attach */
static const unsigned short sem_vals[NSEMS] = { 0, 1, 7, 300, 32767 };

static const struct { long type; const char *text; } msgs[] = {
	{ 1, "first, type 1" }, { 2, "second, type 2" }, { 3, "" },
	{ 1, "fourth, type 1 again, a bit longer than the others to vary sizes" }, { 7, "x" },
};

static void check_perm(const char *what, const struct ipc_perm *p, key_t key, unsigned mode,
		       uid_t uid, gid_t gid)
{
	CR_CHECK(p->__key == key, "%s: key %#x, expected %#x", what, p->__key, key);
	CR_CHECK((p->mode & 0777) == mode, "%s: mode %o, expected %o", what, p->mode & 0777, mode);
	CR_CHECK(p->uid == uid && p->gid == gid, "%s: owner %u:%u, expected %u:%u", what, p->uid,
		 p->gid, uid, gid);
}

static void check_shm(void)
{
	struct shmid_ds ds;
	unsigned char *b;
	long bad;

	if (shmctl(shm_a, IPC_STAT, &ds) < 0) {
		cr_fail("segment A (id %d): IPC_STAT: %s", shm_a, strerror(errno));
	} else {
		check_perm("segment A", &ds.shm_perm, 0x1234, 0640, 1000, 1001);
		CR_EXPECT_EQ("segment A size", ds.shm_segsz, A_SIZE);
		CR_EXPECT_EQ("segment A attaches", ds.shm_nattch, 3);
	}
	bad = cr_check_fill(a_root, A_SIZE - 8, 11);
	CR_CHECK(bad < 0, "segment A differs at byte %ld", bad);
	if (shmctl(shm_b, IPC_STAT, &ds) < 0) {
		cr_fail("segment B (id %d): IPC_STAT: %s", shm_b, strerror(errno));
	} else {
		check_perm("segment B", &ds.shm_perm, IPC_PRIVATE, 0600, 0, 0);
		CR_EXPECT_EQ("segment B size", ds.shm_segsz, B_SIZE);
		CR_EXPECT_EQ("segment B attaches", ds.shm_nattch, 0);
	}
	b = shmat(shm_b, NULL, SHM_RDONLY);
	if (b == (void *)-1) {
		cr_fail("segment B: shmat: %s", strerror(errno));
	} else {
		for (unsigned long off = 0; off < B_SIZE; off += CR_PAGE) {
			bool written = (off / CR_PAGE) % 37 == 5;

			if (written && (bad = cr_check_fill(b + off, CR_PAGE, 500 + off / CR_PAGE)) >= 0)
				cr_fail("segment B page %lu differs at byte %ld", off / CR_PAGE, bad);
			if (!written && b[off + 17] != 0)
				cr_fail("segment B page %lu is not zero", off / CR_PAGE);
		}
		shmdt(b);
	}
	/* C was removed while attached: gone from the ids, still mapped. */
	CR_CHECK(shmctl(shm_c, IPC_STAT, &ds) < 0 || (ds.shm_perm.mode & SHM_DEST),
		 "segment C (id %d) is no longer marked removed", shm_c);
	bad = cr_check_fill(c_addr, C_SIZE, 33);
	CR_CHECK(bad < 0, "segment C differs at byte %ld", bad);
}

static void check_sems(void)
{
	unsigned short got[NSEMS];
	struct semid_ds ds;

	if (semctl(sem_a, 0, IPC_STAT, (union semun){ .buf = &ds }) < 0) {
		cr_fail("semaphore set A (id %d): IPC_STAT: %s", sem_a, strerror(errno));
		return;
	}
	check_perm("semaphore set A", &ds.sem_perm, 0x5678, 0660, 0, 0);
	CR_EXPECT_EQ("semaphores in set A", ds.sem_nsems, NSEMS);
	if (semctl(sem_a, 0, GETALL, (union semun){ .array = got }) < 0)
		cr_fail("semaphore set A: GETALL: %s", strerror(errno));
	for (int i = 0; i < NSEMS; i++)
		CR_CHECK(got[i] == sem_vals[i], "semaphore A[%d] = %u, expected %u", i, got[i], sem_vals[i]);
	CR_EXPECT_EQ("semaphore B[0]", semctl(sem_b, 0, GETVAL), 42);
	/* Still a working semaphore: take one and give it back. */
	CR_CHECK(semop(sem_a, &(struct sembuf){ 2, -1, IPC_NOWAIT }, 1) == 0, "semop on A[2]: %s",
		 strerror(errno));
	CR_EXPECT_EQ("semaphore A[2] after semop", semctl(sem_a, 2, GETVAL), 6);
}

static void check_msgs(void)
{
	struct { long type; char text[256]; } m;
	struct msqid_ds ds;

	if (msgctl(msq_a, IPC_STAT, &ds) < 0) {
		cr_fail("message queue A (id %d): IPC_STAT: %s", msq_a, strerror(errno));
		return;
	}
	check_perm("message queue A", &ds.msg_perm, 0x9abc, 0620, 0, 0);
	CR_EXPECT_EQ("messages in queue A", ds.msg_qnum, CR_ARRAY_SIZE(msgs));
	for (size_t i = 0; i < CR_ARRAY_SIZE(msgs); i++) {
		ssize_t n = msgrcv(msq_a, &m, sizeof(m.text), 0, IPC_NOWAIT);

		if (n < 0) {
			cr_fail("queue A message %zu: %s", i, strerror(errno));
			break;
		}
		CR_CHECK(m.type == msgs[i].type && (size_t)n == strlen(msgs[i].text) &&
			 !memcmp(m.text, msgs[i].text, n),
			 "queue A message %zu: type %ld '%.*s', expected %ld '%s'", i, m.type, (int)n,
			 m.text, msgs[i].type, msgs[i].text);
	}
	CR_CHECK(msgctl(msq_b, IPC_STAT, &ds) == 0 && ds.msg_qnum == 0 && ds.msg_perm.__key == IPC_PRIVATE,
		 "message queue B (id %d) is not an empty private queue", msq_b);
}

static void setup(void)
{
	struct shmid_ds ds;
	unsigned char *b;

	shm_a = shmget(0x1234, A_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	shm_b = shmget(IPC_PRIVATE, B_SIZE, IPC_CREAT | 0600);
	/* Leave gaps in the ids: they must come back as they are. */
	shmctl(shmget(IPC_PRIVATE, CR_PAGE, 0600), IPC_RMID, NULL);
	shm_c = shmget(IPC_PRIVATE, C_SIZE, IPC_CREAT | 0600);
	if (shm_a < 0 || shm_b < 0 || shm_c < 0)
		cr_die("shmget: %s", strerror(errno));
	a_root = shmat(shm_a, NULL, 0);
	c_addr = shmat(shm_c, NULL, 0);
	b = shmat(shm_b, NULL, 0);
	if (a_root == (void *)-1 || c_addr == (void *)-1 || b == (void *)-1)
		cr_die("shmat: %s", strerror(errno));
	cr_fill(a_root, A_SIZE - 8, 11);
	cr_fill(c_addr, C_SIZE, 33);
	for (unsigned long off = 0; off < B_SIZE; off += CR_PAGE)
		if ((off / CR_PAGE) % 37 == 5)
			cr_fill(b + off, CR_PAGE, 500 + off / CR_PAGE);
	shmdt(b);
	shmctl(shm_c, IPC_RMID, NULL);
	if (shmctl(shm_a, IPC_STAT, &ds) < 0)
		cr_die("IPC_STAT: %s", strerror(errno));
	ds.shm_perm.uid = 1000;
	ds.shm_perm.gid = 1001;
	ds.shm_perm.mode = 0640;
	if (shmctl(shm_a, IPC_SET, &ds) < 0)
		cr_die("IPC_SET: %s", strerror(errno));

	sem_a = semget(0x5678, NSEMS, IPC_CREAT | IPC_EXCL | 0660);
	sem_b = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	if (sem_a < 0 || sem_b < 0 ||
	    semctl(sem_a, 0, SETALL, (union semun){ .array = (unsigned short *)sem_vals }) < 0 ||
	    semctl(sem_b, 0, SETVAL, (union semun){ .val = 42 }) < 0)
		cr_die("semaphores: %s", strerror(errno));

	msq_b = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	msq_a = msgget(0x9abc, IPC_CREAT | IPC_EXCL | 0620);
	if (msq_a < 0 || msq_b < 0)
		cr_die("msgget: %s", strerror(errno));
	for (size_t i = 0; i < CR_ARRAY_SIZE(msgs); i++) {
		struct { long type; char text[256]; } m = { msgs[i].type, { 0 } };

		memcpy(m.text, msgs[i].text, strlen(msgs[i].text));
		if (msgsnd(msq_a, &m, strlen(msgs[i].text), IPC_NOWAIT) < 0)
			cr_die("msgsnd: %s", strerror(errno));
	}
}

static void __attribute__((noreturn)) child(void)
{
	long bad;

	a_again = shmat(shm_a, NULL, SHM_RDONLY);
	if (a_again == (void *)-1)
		cr_die("child shmat: %s", strerror(errno));
	cr_child_ready();
	cr_wait_term();
	bad = cr_check_fill(a_root, A_SIZE - 8, 11);
	CR_CHECK(bad < 0, "child: segment A differs at byte %ld", bad);
	/* The root wrote this before sending us SIGTERM. */
	CR_CHECK(a_root[A_SIZE - 1] == 0x5a, "child: root's write after restore not seen (%#x)",
		 a_root[A_SIZE - 1]);
	CR_CHECK(a_again[A_SIZE - 1] == 0x5a, "child: second attach does not see the write (%#x)",
		 a_again[A_SIZE - 1]);
	CR_CHECK(a_again != a_root, "child: both attaches at one address");
	bad = cr_check_fill(c_addr, C_SIZE, 33);
	CR_CHECK(bad < 0, "child: segment C differs at byte %ld", bad);
	cr_child_exit();
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "child" };
	pid_t kid;

	cr_init(argc, argv);
	setup();
	kid = cr_spawn("child");
	if (kid == 0)
		child();
	cr_ready();
	cr_wait_term();
	check_shm();
	check_sems();
	check_msgs();
	a_root[A_SIZE - 1] = 0x5a;
	cr_finish_children(&kid, roles, 1);
	shmctl(shm_a, IPC_RMID, NULL);
	shmctl(shm_b, IPC_RMID, NULL);
	return cr_report();
}
