/*
 * Four processes passing data round a ring through shared memory, dumped
 * while they do it:
 *
 *   main (node 0, its "ring" thread) ── child ring1 (node 1) ── ring2 (node 2)
 *                                    └─ child ring3 (node 3)
 *
 * Every round each node takes its predecessor's slot, checks it, computes
 * its own value from it and publishes it. A slot is a header (round,
 * value, hashes) in an anonymous MAP_SHARED region made before the forks,
 * a 4 KiB block in that region and a 16 KiB block in a /dev/shm file
 * mapped MAP_SHARED by everyone and deleted (ring3 maps it a second time
 * through a descriptor it keeps). Each link wakes its reader differently:
 * 0->1 and 3->0 a futex on the header, 1->2 a token byte in a pipe, 2->3 a
 * process-shared semaphore inside the deleted file. A receiver checks the
 * round, the value (every node follows the whole chain on its own), both
 * blocks word by word and both hashes; a node's running hash of all it
 * received goes into the answer.
 *
 *   real_shm4 [-u] OUTFILE [ROUNDS [GATE_ROUND]]
 *
 * Node 2 stops before it takes round GATE_ROUND until the root has had
 * SIGTERM, so every dump finds the ring turning, or held with a block and
 * a token in flight; -u runs it uninterrupted (compare=answer).
 */
#include "crtest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NR_NODES 4
#define SHM_BLOCK (16UL << 10)
#define ANON_BLOCK (4UL << 10)
#define SHM_SIZE (CR_PAGE + NR_NODES * SHM_BLOCK)
#define CHAIN_SEED 0x5e4d4a11ULL

struct slot {
	_Atomic uint32_t seq;		/* rounds published; futex word */
	uint32_t pad;
	uint64_t value, shm_hash, anon_hash;
};

struct ctl {
	struct slot slot[NR_NODES];
	_Atomic uint32_t gate;		/* futex word: node 2 may pass GATE_ROUND */
	_Atomic uint32_t done[NR_NODES];
	uint64_t acc[NR_NODES];		/* each node's hash of what it received */
	char anon[NR_NODES][ANON_BLOCK] __attribute__((aligned(4096)));
};

static struct ctl *ctl;			/* anonymous MAP_SHARED */
static char *shm;			/* the deleted /dev/shm file, inherited mapping */
static char *shm2;			/* ring3's own second mapping of it */
static int shm_fd = -1;			/* ring3's descriptor of it */
static sem_t *sem23;			/* in the file: link 2->3 */
static int token[2] = { -1, -1 };	/* pipe: link 1->2 */
static unsigned rounds, gate_round;

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* Blocks until *WORD >= WANT; survives EINTR and checkpoints. */
static void futex_wait_for(_Atomic uint32_t *word, uint32_t want)
{
	uint32_t cur;

	while ((cur = atomic_load(word)) < want)
		if (futex(word, FUTEX_WAIT, cur) && errno != EAGAIN && errno != EINTR)
			cr_die("futex wait: %s", strerror(errno));
}

static void futex_wake(_Atomic uint32_t *word)
{
	if (futex(word, FUTEX_WAKE, INT32_MAX) < 0)
		cr_die("futex wake: %s", strerror(errno));
}

static char *shm_block(int node)
{
	return shm + CR_PAGE + node * SHM_BLOCK;
}

/* The value node I publishes in round R, given node 3's of round R - 1. */
static uint64_t chain(uint64_t prev3, unsigned r, int i)
{
	uint64_t v = cr_mix(prev3 ^ CHAIN_SEED ^ r);

	for (int k = 1; k <= i; k++)
		v = cr_mix(v + (uint64_t)k);
	return v;
}

struct node {
	int id;
	uint64_t prev3;			/* node 3's value of the last round */
	uint64_t acc;
	uint64_t got;			/* the value received this round */
};

/* Waits for the predecessor's round R (as its link dictates). */
static void wait_link(int from, unsigned r)
{
	char c;
	ssize_t n;

	switch (from) {
	case 1:
		do
			n = read(token[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			cr_die("token pipe read: %zd: %s", n, strerror(errno));
		break;
	case 2:
		while (sem_wait(sem23))
			if (errno != EINTR)
				cr_die("sem_wait: %s", strerror(errno));
		break;
	default:
		futex_wait_for(&ctl->slot[from].seq, r + 1);
	}
}

static void signal_link(int from)
{
	switch (from) {
	case 1:
		while (write(token[1], "t", 1) != 1)
			if (errno != EINTR)
				cr_die("token pipe write: %s", strerror(errno));
		break;
	case 2:
		if (sem_post(sem23))
			cr_die("sem_post: %s", strerror(errno));
		break;
	default:
		futex_wake(&ctl->slot[from].seq);
	}
}

/* Checks the slot of FROM for round R against the chain we follow. */
/* A broken ring goes on failing every round: the log keeps the first few. */
#define MAX_REPORTS 8
static unsigned nr_unreported;
#define RING_FAIL(...) do {						\
	if (cr_failures() < MAX_REPORTS)					\
		cr_fail(__VA_ARGS__);						\
	else								\
		nr_unreported++;					\
} while (0)

static void receive(struct node *me, int from, unsigned r)
{
	struct slot *s = &ctl->slot[from];
	uint64_t want = chain(me->prev3, r, from);
	long bad;

	wait_link(from, r);
	if (atomic_load(&s->seq) != r + 1)
		RING_FAIL("round %u: node %d's slot says round %u", r, from,
			  atomic_load(&s->seq) - 1);
	if (s->value != want)
		RING_FAIL("round %u: node %d sent %016llx, the chain says %016llx", r, from,
			  (unsigned long long)s->value, (unsigned long long)want);
	if ((bad = cr_check_fill(shm_block(from), SHM_BLOCK, want)) >= 0)
		RING_FAIL("round %u: node %d's /dev/shm block is wrong at byte %ld", r, from, bad);
	if ((bad = cr_check_fill(ctl->anon[from], ANON_BLOCK, ~want)) >= 0)
		RING_FAIL("round %u: node %d's anonymous block is wrong at byte %ld", r, from, bad);
	if (s->shm_hash != cr_hash(shm_block(from), SHM_BLOCK, r) ||
	    s->anon_hash != cr_hash(ctl->anon[from], ANON_BLOCK, r))
		RING_FAIL("round %u: node %d's block hashes differ", r, from);
	me->got = s->value;
	me->acc = cr_mix(me->acc ^ s->shm_hash) + s->anon_hash;
	if (from == 3)
		me->prev3 = s->value;
}

/* Our value for round R, computed from what we received. */
static void publish(struct node *me, unsigned r)
{
	struct slot *s = &ctl->slot[me->id];
	uint64_t v = me->id ? cr_mix(me->got + (uint64_t)me->id) :
			      cr_mix((r ? me->got : 0) ^ CHAIN_SEED ^ r);

	cr_fill(shm_block(me->id), SHM_BLOCK, v);
	cr_fill(ctl->anon[me->id], ANON_BLOCK, ~v);
	s->value = v;
	s->shm_hash = cr_hash(shm_block(me->id), SHM_BLOCK, r);
	s->anon_hash = cr_hash(ctl->anon[me->id], ANON_BLOCK, r);
	atomic_store(&s->seq, r + 1);
	signal_link(me->id);
}

static void run_ring(int id)
{
	struct node me = { .id = id };

	for (unsigned r = 0; r < rounds; r++) {
		/* Node 2 holds the ring before GATE_ROUND with node 1's block
		 * unread and its token in the pipe: a dump then has data in
		 * flight. */
		if (id == 2 && r == gate_round)
			futex_wait_for(&ctl->gate, 1);
		if (id == 0) {
			if (r > 0)
				receive(&me, 3, r - 1);
			cr_sleep_ms(1);
		} else {
			receive(&me, id - 1, r);
		}
		publish(&me, r);
		/* Node 3's value of this round, for the next one (node 0
		 * receives it). */
		if (id != 0)
			me.prev3 = chain(me.prev3, r, 3);
	}
	if (id == 0)
		receive(&me, 3, rounds - 1);
	if (nr_unreported)
		cr_fail("%u more differences in the ring, not logged", nr_unreported);
	ctl->acc[id] = me.acc;
	atomic_store(&ctl->done[id], 1);
}

/* After the last round every block holds its node's last value. */
static void check_final_blocks(void)
{
	uint64_t prev3 = 0;

	for (unsigned r = 0; r + 1 < rounds; r++)
		prev3 = chain(prev3, r, 3);
	for (int i = 0; i < NR_NODES; i++) {
		uint64_t v = chain(prev3, rounds - 1, i);

		CR_CHECK(cr_check_fill(shm_block(i), SHM_BLOCK, v) < 0,
			 "final /dev/shm block of node %d is wrong", i);
		CR_CHECK(cr_check_fill(ctl->anon[i], ANON_BLOCK, ~v) < 0,
			 "final anonymous block of node %d is wrong", i);
	}
}

/* ---- the processes ---- */

static void make_shared(void)
{
	char path[64];
	int fd;

	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		cr_die("mmap %zu shared anonymous bytes: %s", sizeof(*ctl), strerror(errno));
	snprintf(path, sizeof(path), "/dev/shm/crtest-shm4-%d", (int)getpid());
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		cr_die("create %s: %s", path, strerror(errno));
	if (ftruncate(fd, SHM_SIZE))
		cr_die("ftruncate %s: %s", path, strerror(errno));
	shm = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED)
		cr_die("mmap %s: %s", path, strerror(errno));
	close(fd);
	sem23 = (sem_t *)shm;
	if (sem_init(sem23, 1, 0))
		cr_die("sem_init in %s: %s", path, strerror(errno));
}

/* ring3: a descriptor and a second mapping of the file, then unlinks it. */
static void ring3_own_mapping(pid_t root)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/shm/crtest-shm4-%d", (int)root);
	shm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (shm_fd < 0)
		cr_die("open %s: %s", path, strerror(errno));
	shm2 = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
	if (shm2 == MAP_FAILED)
		cr_die("mmap %s again: %s", path, strerror(errno));
	if (unlink(path))
		cr_die("unlink %s: %s", path, strerror(errno));
}

static void ring3_checks(void)
{
	static char buf[SHM_SIZE];
	struct stat st;

	CR_CHECK(fstat(shm_fd, &st) == 0 && st.st_nlink == 0 && st.st_size == (off_t)SHM_SIZE,
		 "the /dev/shm file: nlink %lu size %lld", (unsigned long)st.st_nlink,
		 (long long)st.st_size);
	CR_CHECK(pread(shm_fd, buf, SHM_SIZE, 0) == (ssize_t)SHM_SIZE &&
		 !memcmp(buf + CR_PAGE, shm + CR_PAGE, SHM_SIZE - CR_PAGE),
		 "the file read through fd %d differs from the mapping", shm_fd);
	CR_CHECK(!memcmp(shm2 + CR_PAGE, shm + CR_PAGE, SHM_SIZE - CR_PAGE),
		 "the two mappings of the file differ");
	/* A write through one mapping shows in the other and in the file
	 * (in the semaphore's page, past the semaphore: no block changes). */
	shm2[CR_PAGE - 1] ^= 0x5a;
	CR_CHECK(shm[CR_PAGE - 1] == shm2[CR_PAGE - 1] &&
		 pread(shm_fd, buf, 1, CR_PAGE - 1) == 1 && buf[0] == shm2[CR_PAGE - 1],
		 "a write through the second mapping is not shared");
	shm2[CR_PAGE - 1] ^= 0x5a;
}

static void token_checks(int fd)
{
	int queued = -1;

	CR_CHECK(ioctl(fd, FIONREAD, &queued) == 0 && queued == 0,
		 "%d token bytes left in the pipe", queued);
}

static void __attribute__((noreturn)) ring2(void)
{
	close(token[1]);
	token[1] = -1;
	cr_child_ready();
	run_ring(2);
	cr_wait_term();
	token_checks(token[0]);
	check_final_blocks();
	cr_child_exit();
}

static void __attribute__((noreturn)) ring1(void)
{
	static const char *const roles[] = { "ring2" };
	pid_t kid;

	if (pipe2(token, O_CLOEXEC))
		cr_die("pipe: %s", strerror(errno));
	kid = cr_spawn("ring2");
	if (kid == 0)
		ring2();
	close(token[0]);
	token[0] = -1;
	cr_child_ready();
	run_ring(1);
	cr_wait_term();
	check_final_blocks();
	cr_finish_children(&kid, roles, 1);
	cr_child_exit();
}

static void __attribute__((noreturn)) ring3(pid_t root)
{
	ring3_own_mapping(root);
	cr_child_ready();
	run_ring(3);
	cr_wait_term();
	ring3_checks();
	check_final_blocks();
	cr_child_exit();
}

static void *ring0(void *arg)
{
	(void)arg;
	run_ring(0);
	return NULL;
}

static uint64_t answer(void)
{
	uint64_t h = cr_hash(shm + CR_PAGE, NR_NODES * SHM_BLOCK, rounds);

	h = cr_hash(ctl->anon, sizeof(ctl->anon), h);
	for (int i = 0; i < NR_NODES; i++)
		h = cr_mix(h ^ ctl->acc[i]) ^ ctl->slot[i].value;
	return h;
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "ring1", "ring3" };
	bool uninterrupted = argc > 1 && !strcmp(argv[1], "-u");
	pid_t kids[2], root;
	pthread_t thread;

	if (uninterrupted) {
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	cr_init(argc, argv);
	rounds = cr_arg(0) ? (unsigned)strtoul(cr_arg(0), NULL, 10) : 1000;
	gate_round = cr_arg(1) ? (unsigned)strtoul(cr_arg(1), NULL, 10) : rounds * 2 / 3;
	if (rounds < 2 || rounds > 10000000 || gate_round < 1 || gate_round >= rounds)
		cr_die("bad arguments: ROUNDS 2..10000000, GATE_ROUND 1..ROUNDS-1");
	make_shared();
	root = getpid();
	if ((kids[0] = cr_spawn("ring1")) == 0)
		ring1();
	if ((kids[1] = cr_spawn("ring3")) == 0)
		ring3(root);
	if (uninterrupted)
		atomic_store(&ctl->gate, 1);
	if (pthread_create(&thread, NULL, ring0, NULL))
		cr_die("pthread_create failed");
	if (!uninterrupted) {
		/* The ring is turning before anything is dumped. */
		while (atomic_load(&ctl->slot[3].seq) < 2)
			cr_sleep_ms(1);
		cr_ready();
		cr_wait_term();
		cr_log("ring at round %u of %u at SIGTERM", atomic_load(&ctl->slot[0].seq), rounds);
		atomic_store(&ctl->gate, 1);
		futex_wake(&ctl->gate);
	}
	pthread_join(thread, NULL);
	for (int i = 0; i < 3000; i++) {
		bool all = true;

		for (int k = 0; k < NR_NODES; k++)
			all = all && atomic_load(&ctl->done[k]);
		if (all)
			break;
		cr_sleep_ms(10);
	}
	for (int k = 0; k < NR_NODES; k++)
		CR_CHECK(atomic_load(&ctl->done[k]), "node %d did not finish its rounds", k);
	check_final_blocks();
	cr_finish_children(kids, roles, 2);
	cr_set_note("answer=%016llx", (unsigned long long)answer());
	return cr_report();
}
