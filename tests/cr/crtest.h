/*
 * Shared protocol of the C/R test programs (tests/cr/README.md).
 *
 * A program is run as `prog OUTFILE [ARGS...]`. It builds its state, calls
 * cr_ready() (creates OUTFILE.ready holding its pid as the host sees it),
 * waits in cr_wait_term() until SIGTERM arrives, checks every detail again
 * with cr_fail() on each difference, and ends with `return cr_report();`,
 * which writes "PASS" or "FAIL: <first difference>" to OUTFILE.
 *
 * The checkpoint may stop the program anywhere after cr_ready(), so every
 * sleep and wait here survives EINTR and restarted system calls. Nothing in
 * this file allocates memory after cr_init(): several tests compare their
 * heap and mappings before and after the checkpoint.
 */
#ifndef CR_TEST_H
#define CR_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CR_PAGE 4096UL
#define CR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Set by the SIGTERM handler; spin loops may poll it directly. */
extern volatile sig_atomic_t cr_term_flag;

/* Parses OUTFILE, blocks SIGTERM and installs its handler, makes the
 * process a session leader if it is not one (a test run as init of a new
 * PID namespace starts inside its parent's session). */
void cr_init(int argc, char **argv);
/* Extra arguments after OUTFILE (argv[2]...). */
int cr_argc(void);
const char *cr_arg(int i);

/* NAME inside the directory of OUTFILE: the test's private scratch dir. */
void cr_path(char *buf, size_t len, const char *name);

void cr_ready(void);
/* Waits for SIGTERM, then checks the descriptor table is as at readiness. */
void cr_wait_term(void);
void cr_check_fds(void);

/* Name shown in log lines of this process ("main", "child1", ...). A
 * process with a role other than the root never writes OUTFILE. */
void cr_set_role(const char *role);
bool cr_is_root(void);

void cr_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A verified detail differs: logged, and the first one goes to OUTFILE. */
void cr_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Setup could not be done: FAIL at once (root) or _exit(1) (child). */
void cr_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int cr_failures(void);
/* Text added after "PASS " in the verdict (a computed answer). */
void cr_set_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Root: writes the verdict to OUTFILE and returns the exit status. */
int cr_report(void);
/* Child: exits 0 if nothing failed in it, else 1. */
void cr_child_exit(void) __attribute__((noreturn));

#define CR_CHECK(cond, ...) do { if (!(cond)) cr_fail(__VA_ARGS__); } while (0)
#define CR_EXPECT_EQ(what, got, want) do {					\
	long long __g = (long long)(got), __w = (long long)(want);		\
	if (__g != __w)								\
		cr_fail("%s: got %lld, expected %lld", (what), __g, __w);	\
} while (0)

/* Forks; the child gets ROLE and a zeroed failure count. Dies on error. */
pid_t cr_fork(const char *role);
/* Forks and returns in the parent only once the child called
 * cr_child_ready(): the readiness of a subtree travels up through a pipe
 * that is closed again before the root calls cr_ready(), so no pipe is
 * left open at checkpoint time. */
pid_t cr_spawn(const char *role);
void cr_child_ready(void);
/* Waits for PID to exit, at most TIMEOUT_MS; returns 0 and the status, or
 * -1 on timeout (the child is left alone). */
int cr_wait_pid(pid_t pid, int timeout_ms, int *status);
/* Sends SIGTERM to every child and requires each to exit with status 0. */
void cr_finish_children(const pid_t *pids, const char *const *roles, int n);

void cr_sleep_ms(long ms);
uint64_t cr_now_ns(void);	/* CLOCK_MONOTONIC through the syscall */

/* Deterministic patterns: word i of a buffer filled with SEED is
 * cr_mix(SEED + i). cr_check_fill returns the first bad byte offset or -1. */
uint64_t cr_mix(uint64_t x);
void cr_fill(void *buf, size_t len, uint64_t seed);
long cr_check_fill(const void *buf, size_t len, uint64_t seed);
uint64_t cr_hash(const void *buf, size_t len, uint64_t seed);

/* These /proc helpers share static buffers behind one lock. */
/* Reads a whole (small, /proc) file into BUF, NUL-terminated; dies on
 * error or if it does not fit. Returns the length. */
size_t cr_read_file(const char *path, char *buf, size_t len);
/* Value of "Key:" in /proc/self/status (or another status file) as text. */
bool cr_status_field(const char *path, const char *key, char *buf, size_t len);
/* The line of /proc/self/maps that contains ADDR, without the newline. */
bool cr_maps_line(const void *addr, char *buf, size_t len);
/* VmFlags of the mapping containing ADDR (from /proc/self/smaps), less
 * the userfaultfd flags an engine may leave armed for dirty tracking. */
bool cr_vmflags(const void *addr, char *buf, size_t len);
/* Permissions ("rw-p") of the mapping containing ADDR, or "" if unmapped. */
void cr_maps_perms(const void *addr, char perms[5]);

/* Tries a read (or write) of ADDR; returns 0, or the si_code of the
 * SIGSEGV/SIGBUS it raised, with the faulting address in *FAULT_ADDR. */
int cr_probe(const volatile void *addr, bool write, void **fault_addr);

/*
 * Process trees (crtree.c): a table of nodes, each forked by its parent
 * node, optionally moved into a new session or process group first. Every
 * process records its ids once the whole tree is built, and after SIGTERM
 * checks them again, together with its list of children, then passes
 * SIGTERM down and requires every child to pass.
 */
enum cr_node_act {
	CR_STAY,	/* keep the parent's process group and session */
	CR_SETSID,	/* setsid() */
	CR_NEWPGRP,	/* setpgid(0, 0) */
	CR_JOINPGRP,	/* setpgid(0, pid of node .arg) */
};

struct cr_node {
	const char *role;
	int parent;		/* index of the parent node; -1 for the root */
	enum cr_node_act act;
	int arg;		/* CR_JOINPGRP: the node whose group to join */
	bool vanish;		/* exits once its children are ready, so they
				 * are adopted by its parent (made a subreaper) */
};

#define CR_TREE_MAX 32

/* Pid of node I as this process knows it (its ancestors' and its own). */
pid_t cr_tree_pid(int node);
/* Called in every process of the tree: with AFTER false once the tree is
 * built (setup checks, record state), with AFTER true after SIGTERM. */
typedef void (*cr_tree_hook)(int node, bool after);
/* Builds the tree, signals readiness, waits and verifies. Returns the exit
 * status, in the root only. */
int cr_tree_run(const struct cr_node *nodes, int n, cr_tree_hook hook);

#endif
