/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 4): function tracing attached and detached
 * during a live patch transition, which a thread blocked inside the old (or
 * new) function holds open. Tracing must never let a thread bypass the
 * consistency model (DESIGN.md 8b).
 *
 * ftc_patch_pair.so replaces ftc_outer and ftc_inner of libftc_lib.so
 * together (ftc/ftc.h): one call of ftc_outer(x) returns x + 11 when it ran
 * all old, x + 1021 all new, and x + 1011 or x + 21 when a thread ran old
 * and new bodies in one call. Three workers call ftc_outer(7) all along;
 * each call is checked (ftc_test.h) for its result (all old or all new),
 * for the body it ran against the thread's own patch state before and
 * after it (rw_patch_threads()), and, while nothing changes, against the
 * published moment: the body, and the probe entries and returns it made.
 *
 * Each part runs in a child process of its own, forked from a parent that
 * has neither traced nor patched anything (an argument, 1 or 2, runs one
 * part in the process itself).
 *
 *   1. The first trace during an open transition. A blocker thread calls
 *      ftc_outer(-1), which blocks in read() inside ftc_wait(). Enable:
 *      the transition stays open (rw_patch_wait is -ETIMEDOUT), the
 *      blocker pending ON_STACK in ftc_outer. Now, for the first time, a
 *      graph probe set T1 traces ftc_outer, ftc_inner and ftc_wait, whose
 *      entries jump to the transition's dispatchers. Released, the
 *      blocker's call returns the all-old 12 (its ftc_inner ran old while
 *      other threads ran new), with one probe entry and one return (its
 *      ftc_inner, the only call that began after the attach). The
 *      transition completes while traced.
 *   2. The blocker enters while traced. Enable: T1 is attached first; the
 *      blocker's ftc_wait, called by the old ftc_outer, has rewire's
 *      return trampoline as return address, so the stack check must see
 *      through it to the old ftc_outer (pending ON_STACK in ftc_outer).
 *      T1 is detached, an entry-only set T2 attached, all while the
 *      transition is open. Released, the blocker returns the all-old 12
 *      with exactly three probe entries (outer and wait from T1, inner
 *      from T2) and no return (T1 was detached before them, T2 has none).
 *      The transition completes. Disable, the same backwards: T2 replaced
 *      by a graph set T3, a blocker in the new ftc_outer, the disable held
 *      open, T3 replaced by an entry-only T4; released, the blocker
 *      returns the all-new 1022, and the transition completes.
 * At the end the three entries hold their original NOPs.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing and live patching need a backend that "
	     "patches code (x86_64, aarch64)");
}
#else

#include "ftc.h"
#include "ftc_test.h"

#include <sys/syscall.h>
#include <sys/wait.h>

#define NWORKERS 3
#define WAIT_MS 10000
#define SETTLE 100
#define ARG 7

#define PATCH FTC_DIR "/ftc_patch_pair.so"

static struct ftc_worker workers[NWORKERS];

static const char *const pats[] = { "ftc_outer", "ftc_inner", "ftc_wait" };

static int pair_side(int x, int r)
{
	return r == x + 11 ? 0 : r == x + 1021 ? 1 : -1;
}

/* ---- The blocker --------------------------------------------------------- */

struct blocker {
	pthread_t th;
	_Atomic pid_t tid;
	int ret;
	long entries, returns;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;
	long e0 = ftc_tls_entries, r0 = ftc_tls_returns;

	atomic_store(&b->tid, gettid());
	b->ret = ftc_outer(-1);
	b->entries = ftc_tls_entries - e0;
	b->returns = ftc_tls_returns - r0;
	return NULL;
}

static void blocker_start(struct blocker *b)
{
	memset(b, 0, sizeof(*b));
	CHECK_OK(pthread_create(&b->th, NULL, blocker_main, b));
	CHECK(LP_WAIT_UNTIL(atomic_load(&b->tid) != 0, lp_deadline_ms(5000)));
	if (!lp_wait_in_syscall(b->tid, SYS_read)) {
		fprintf(stderr, "the blocker is not blocked in read()\n");
		exit(1);
	}
}

/* ---- The transition ------------------------------------------------------ */

static const char *const why_name[] = { "SWITCHED", "NOT_CHECKED",
					"ON_STACK", "UNWIND_FAILED",
					"BUSY",	    "NO_ANSWER" };

/* @tid is pending in @p, on its stack in ftc_outer. */
static void expect_pending(struct rw_patch *p, pid_t tid, const char *what)
{
	struct rw_patch_info info;

	CHECK_EQ(rw_patch_wait(p, 200), -ETIMEDOUT);
	CHECK_OK(rw_patch_state(p, &info));
	for (size_t i = 0; i < info.npending && i < RW_PATCH_INFO_THREADS;
	     i++) {
		const struct rw_patch_thread *t = &info.pending[i];

		if (t->tid != tid)
			continue;
		printf("  %s: the blocker is pending: %s in %s (%zu/%zu "
		       "threads switched)\n",
		       what,
		       t->why >= 0 && t->why <= RW_PT_NO_ANSWER
			       ? why_name[t->why]
			       : "?",
		       t->func, info.threads_switched, info.threads_total);
		if (t->why != RW_PT_ON_STACK || !strstr(t->func, "ftc_outer")) {
			fprintf(stderr,
				"%s: the blocker should be pending ON_STACK "
				"in ftc_outer (its stack seen through the "
				"return trampoline)\n",
				what);
			exit(1);
		}
		return;
	}
	fprintf(stderr, "%s: the blocker (tid %d) is not pending\n", what,
		(int)tid);
	exit(1);
}

/* Release the blocker: its call returns @want, with @entries probe
 * entries and @returns returns in its thread. */
static void release(struct blocker *b, int fd, int want, long entries,
		    long returns, const char *what)
{
	CHECK_EQ(write(fd, "x", 1), 1);
	CHECK_OK(pthread_join(b->th, NULL));
	printf("  %s: the blocker returned %d with %ld probe entries and %ld "
	       "returns\n",
	       what, b->ret, b->entries, b->returns);
	CHECK_EQ(b->ret, want);
	CHECK_EQ(b->entries, entries);
	CHECK_EQ(b->returns, returns);
}

static void attach(struct ftc_set *s, int side)
{
	ftc_changing();
	ftc_attach(s, pats, 3);
	ftc_check_funcs(s);
	ftc_publish(side, 2, s->graph ? 2 : 0);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
}

static void detach(struct ftc_set *s, int side)
{
	ftc_changing();
	ftc_detach(s);
	ftc_publish(side, 0, 0);
	ftc_check_clean(s, "probe set");
	ftc_workers_settle(workers, NWORKERS, SETTLE);
}

static void complete(struct rw_patch *p, int state, int side, long entries,
		     long returns)
{
	int err;

	ftc_changing();
	err = rw_patch_wait(p, WAIT_MS * (int)rw_test_time_scale());
	if (err) {
		fprintf(stderr, "rw_patch_wait: %s: %s\n", rw_strerror(err),
			rw_patch_last_error());
		exit(1);
	}
	CHECK_EQ(lp_state(p), state);
	ftc_publish(side, entries, returns);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
}

static struct ftc_set t1, t2, t3, t4;
static struct rw_patch *p;
static const uintptr_t *fns;
static int fds[2];

static void setup(void)
{
	static uintptr_t addrs[3];

	addrs[0] = (uintptr_t)ftc_outer;
	addrs[1] = (uintptr_t)ftc_inner;
	addrs[2] = (uintptr_t)ftc_wait;
	fns = addrs;
	for (int i = 0; i < 3; i++)
		CHECK(lp_entry_is_nops(fns[i]));
	CHECK_OK(pipe(fds));
	ftc_fd = fds[0];
	ftc_set_init(&t1, true, "ftc_outer", "ftc_inner", "ftc_wait", NULL);
	ftc_set_init(&t2, false, "ftc_outer", "ftc_inner", "ftc_wait", NULL);
	ftc_set_init(&t3, true, "ftc_outer", "ftc_inner", "ftc_wait", NULL);
	ftc_set_init(&t4, false, "ftc_outer", "ftc_inner", "ftc_wait", NULL);
	p = lp_load(PATCH, 0);
	ftc_changing();
	ftc_publish(0, 0, 0);
	for (int i = 0; i < NWORKERS; i++)
		ftc_worker_start(&workers[i], ftc_outer, ARG, pair_side, p);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
}

static void teardown(void)
{
	ftc_workers_stop(workers, NWORKERS);
	for (int i = 0; i < 3; i++)
		CHECK(lp_entry_is_nops(fns[i]));
	CHECK_EQ(ftc_outer(ARG), ARG + 11);
	CHECK_OK(rw_patch_unload(p));
	close(fds[0]);
	close(fds[1]);
}

/* Start the enable (@enable) or the disable, which @b holds open. */
static void held_open(struct blocker *b, bool enable, long entries,
		      long returns, const char *what)
{
	ftc_changing();
	CHECK_EQ(lp_go(p, enable, 300), -ETIMEDOUT);
	ftc_publish(-1, entries, returns);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
	expect_pending(p, b->tid, what);
}

/* 1. The first trace of the functions, during an open enable. */
static void part1(void)
{
	struct blocker b;

	blocker_start(&b);
	held_open(&b, true, 0, 0, "1. enable, untraced");
	attach(&t1, -1);
	expect_pending(p, b.tid, "1. enable, T1");
	/* Only its ftc_inner began after the attach. */
	release(&b, fds[1], 12, 1, 1, "1. enable");
	complete(p, RW_PATCH_ENABLED, 1, 2, 2);
	printf("  1. enabled while traced\n");
	detach(&t1, 1);
	ftc_changing();
	lp_disable_wait(p, WAIT_MS);
	ftc_publish(0, 0, 0);
}

/*
 * 2. The blocker enters while traced. In both transitions its call makes
 * three probe entries: outer and wait from the set attached when it
 * entered them, inner from the one attached when it is released; and no
 * return: the set that saw the entries is detached before them, the other
 * has no return function.
 */
static void part2(void)
{
	struct blocker b;

	/* Enable, held open by a blocker in the old ftc_outer. */
	attach(&t1, 0);
	blocker_start(&b);
	held_open(&b, true, 2, 2, "2. enable, T1");
	detach(&t1, -1);
	expect_pending(p, b.tid, "2. enable, T1 detached");
	attach(&t2, -1);
	expect_pending(p, b.tid, "2. enable, T2");
	release(&b, fds[1], 12, 3, 0, "2. enable");
	complete(p, RW_PATCH_ENABLED, 1, 2, 0);
	printf("  2. enabled while traced\n");

	/* Disable, held open by a blocker in the new ftc_outer. */
	detach(&t2, 1);
	attach(&t3, 1);
	blocker_start(&b);
	held_open(&b, false, 2, 2, "2. disable, T3");
	detach(&t3, -1);
	attach(&t4, -1);
	expect_pending(p, b.tid, "2. disable, T4");
	release(&b, fds[1], 1022, 3, 0, "2. disable");
	complete(p, RW_PATCH_DISABLED, 0, 2, 0);
	printf("  2. disabled while traced\n");
	detach(&t4, 0);
}

static void (*const parts[])(void) = { part1, part2 };
static const char *const part_name[] = {
	"the first trace during an open transition",
	"a blocker that entered while traced",
};

static void run(int i)
{
	printf("test_ftc_transition: part %d, %s; %d workers call "
	       "ftc_outer(%d)\n",
	       i + 1, part_name[i], NWORKERS, ARG);
	setup();
	parts[i]();
	teardown();
	printf("test_ftc_transition: part %d: ok\n", i + 1);
}

int main(int argc, char **argv)
{
	int failed = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1) {
		int i = atoi(argv[1]) - 1;

		CHECK(i >= 0 && i < 2);
		run(i);
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0);
		if (pid == 0) {
			run(i);
			exit(0);
		}
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr,
				"test_ftc_transition: part %d (%s) failed\n",
				i + 1, part_name[i]);
			failed++;
		}
	}
	if (failed)
		return 1;
	printf("test_ftc_transition: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
