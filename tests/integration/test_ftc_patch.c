/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 4): function tracing and a live patch on the
 * same function, in either order (DESIGN.md 8b: one owner per entry).
 *
 * ftc_leaf() of libftc_lib.so (built as Debian builds a package, with
 * patchable entries: ftc/ftc.cmake) returns 3x + 1; ftc_patch_leaf.so
 * makes it 3x + 2. Two workers call ftc_leaf() all along (ftc_test.h: each
 * call is checked against the moment the main thread published, for the
 * body it ran and the probe calls it made, and against the thread's own
 * patch state), and the main thread calls it too, counting exactly. Each
 * part runs in a child process of its own, forked from a parent that has
 * neither traced nor patched anything: the order of the first uses of the
 * entry is the part's.
 *
 *   1. Patch, then trace. Enable + wait: the entry jumps to the new
 *      function (the "patched bytes"), no probe runs. Attach a graph probe
 *      set: every call runs the new body and is traced (an entry and a
 *      return per call, the caller in the calling object). Detach: the
 *      entry holds the patched bytes again. Attach again, then disable +
 *      wait while traced: the old body runs, still traced. Detach: the
 *      original NOPs.
 *   2. Trace, then patch. Attach; enable + wait while traced: the new body
 *      runs and is what is traced. Disable + wait: old, traced. Enable +
 *      wait again, then detach while patched: the entry holds exactly the
 *      bytes the patch alone gave it (recorded by an enable and a disable
 *      before the attach: the patch's jump restored, not the NOPs and not
 *      a trampoline). Disable + wait: the original NOPs.
 *   3. The same with two probe sets at once (an entry-only and a graph
 *      one) around an enable and a disable.
 * After each step every call of the main thread is checked exactly, and
 * at the end the entry holds its original NOPs (five bytes on x86-64; two
 * instructions on aarch64, where tracing and the patch write the first
 * into a B and the entry's bytes compared are both: ftc_test.h). An
 * argument (1, 2 or 3) runs that part alone, in the process itself.
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

#include <sys/wait.h>

#define NWORKERS 2
#define WAIT_MS 10000
#define CALLS 1000
#define SETTLE 200

#define PATCH FTC_DIR "/ftc_patch_leaf.so"

static struct ftc_worker workers[NWORKERS];
static const uintptr_t fn = (uintptr_t)ftc_leaf;
static uint8_t nops[FTC_ENTRY_LEN], patched[FTC_ENTRY_LEN];

static int leaf_side(int x, int r)
{
	return r == 3 * x + 1 ? 0 : r == 3 * x + 2 ? 1 : -1;
}

/*
 * The main thread calls ftc_leaf CALLS times: each returns @side's value,
 * and the probes ran @entries and @returns times per call in this thread.
 * Then the workers make SETTLE checked calls each in this moment.
 */
static void calls(int side, long entries, long returns, const char *what)
{
	long e0 = ftc_tls_entries, r0 = ftc_tls_returns;

	for (int i = 0; i < CALLS; i++) {
		int r = ftc_leaf(i);

		if (leaf_side(i, r) != side) {
			fprintf(stderr,
				"%s: ftc_leaf(%d) = %d, expected the %s "
				"body's %d\n",
				what, i, r, side ? "new" : "old",
				3 * i + 1 + side);
			exit(1);
		}
	}
	if (ftc_tls_entries - e0 != entries * CALLS ||
	    ftc_tls_returns - r0 != returns * CALLS) {
		fprintf(stderr,
			"%s: %d calls made %ld probe entries and %ld "
			"returns, expected %ld and %ld\n",
			what, CALLS, ftc_tls_entries - e0, ftc_tls_returns - r0,
			entries * CALLS, returns * CALLS);
		exit(1);
	}
	ftc_workers_settle(workers, NWORKERS, SETTLE);
	printf("  %s: %d calls, the %s body, %ld probe entries and %ld "
	       "returns per call\n",
	       what, CALLS, side ? "new" : "old", entries, returns);
}

static void show_entry(const char *what)
{
	ftc_entry_show(fn, what);
}

static void expect_entry(const uint8_t want[FTC_ENTRY_LEN], const char *what)
{
	if (!ftc_entry_is(fn, want)) {
		show_entry("now");
		fprintf(stderr, "%s: the entry is not what it should be\n",
			what);
		exit(1);
	}
}

/* The entry is a trampoline's jump: neither the NOPs nor the patch's. */
static void expect_traced_entry(const char *what)
{
	if (ftc_entry_is(fn, nops) || ftc_entry_is(fn, patched) ||
	    !ftc_entry_jump(fn)) {
		show_entry("now");
		fprintf(stderr, "%s: the entry is not a jump to a trampoline\n",
			what);
		exit(1);
	}
}

static void enable(struct rw_patch *p, int entries, int returns)
{
	ftc_changing();
	lp_enable_wait(p, WAIT_MS);
	ftc_publish(1, entries, returns);
}

static void disable(struct rw_patch *p, int entries, int returns)
{
	ftc_changing();
	lp_disable_wait(p, WAIT_MS);
	ftc_publish(0, entries, returns);
}

static const char *const pat[] = { "ftc_leaf" };

static void attach(struct ftc_set *s, int side, int entries, int returns)
{
	ftc_changing();
	ftc_attach(s, pat, 1);
	ftc_publish(side, entries, returns);
	ftc_check_funcs(s);
}

static void detach(struct ftc_set *s, int side, int entries, int returns)
{
	ftc_changing();
	ftc_detach(s);
	ftc_publish(side, entries, returns);
	ftc_check_clean(s, "probe set");
}

static struct ftc_set g, e;
static struct rw_patch *p;
static uintptr_t newfn;

/* Load the patch and start the workers. */
static void setup(void)
{
	CHECK(lp_in_object(fn, "libftc_lib.so"));
	ftc_entry_read(fn, nops);
	CHECK(lp_entry_is_nops(fn));
	ftc_set_init(&g, true, "ftc_leaf", NULL);
	ftc_set_init(&e, false, "ftc_leaf", NULL);
	/* Every call comes from this program (the main thread or the
	 * workers of ftc_test.h). */
	ftc_set_callers(&g, "test_ftc_patch");
	ftc_set_callers(&e, "test_ftc_patch");
	p = lp_load(PATCH, 0);
	newfn = lp_new_func_of(PATCH, 0);
	ftc_changing();
	ftc_publish(0, 0, 0);
	for (int i = 0; i < NWORKERS; i++)
		ftc_worker_start(&workers[i], ftc_leaf, 5, leaf_side, p);
	calls(0, 0, 0, "start");
}

static void teardown(void)
{
	ftc_workers_stop(workers, NWORKERS);
	ftc_check_clean(&g, "graph set");
	ftc_check_clean(&e, "entry set");
	printf("  graph set: %ld entries, %ld returns; entry set: %ld "
	       "entries\n",
	       ftc_entries(&g, 0), ftc_returns(&g, 0), ftc_entries(&e, 0));
	ftc_check_returns(&g, 0, NWORKERS);
	CHECK_OK(rw_patch_unload(p));
	expect_entry(nops, "end");
}

/* The bytes the patch alone gives the entry. */
static void record_patched(void)
{
	enable(p, 0, 0);
	CHECK_EQ(lp_entry_target(fn), newfn);
	ftc_entry_read(fn, patched);
	show_entry("patched");
	calls(1, 0, 0, "patched");
}

static int list_cb(void *arg, const struct rw_ftrace_func *f)
{
	if (f->addr == fn)
		*(int *)arg = f->status;
	return 0;
}

/* 1. Patch, then trace. */
static void part1(void)
{
	int status = 1;

	record_patched();
	/* A patched function is traceable (its entry belongs to rewire). */
	CHECK_OK(rw_ftrace_list(pat, 1, list_cb, &status));
	if (status) {
		fprintf(stderr,
			"1. rw_ftrace_list: the patched ftc_leaf has status "
			"%d (%s), not 0 (traceable)\n",
			status,
			status == 1 ? "not listed" : rw_strerror(status));
		exit(1);
	}
	attach(&g, 1, 1, 1);
	expect_traced_entry("1. patched and traced");
	show_entry("patched and traced");
	calls(1, 1, 1, "1. patched and traced");
	detach(&g, 1, 0, 0);
	expect_entry(patched, "1. detached while patched");
	calls(1, 0, 0, "1. detached while patched");
	attach(&g, 1, 1, 1);
	calls(1, 1, 1, "1. traced again");
	disable(p, 1, 1);
	expect_traced_entry("1. disabled while traced");
	calls(0, 1, 1, "1. disabled while traced");
	detach(&g, 0, 0, 0);
	expect_entry(nops, "1. detached");
	calls(0, 0, 0, "1. detached");
}

/* 2. Trace, then patch. */
static void part2(void)
{
	record_patched();
	disable(p, 0, 0);
	expect_entry(nops, "2. disabled");
	attach(&g, 0, 1, 1);
	expect_traced_entry("2. traced");
	calls(0, 1, 1, "2. traced");
	enable(p, 1, 1);
	expect_traced_entry("2. enabled while traced");
	calls(1, 1, 1, "2. enabled while traced");
	disable(p, 1, 1);
	calls(0, 1, 1, "2. disabled while traced");
	enable(p, 1, 1);
	calls(1, 1, 1, "2. enabled again while traced");
	detach(&g, 1, 0, 0);
	expect_entry(patched, "2. detached while patched");
	CHECK_EQ(lp_entry_target(fn), newfn);
	calls(1, 0, 0, "2. detached while patched");
	disable(p, 0, 0);
	expect_entry(nops, "2. disabled");
	calls(0, 0, 0, "2. disabled");
}

/* 3. Two probe sets, one with returns. */
static void part3(void)
{
	attach(&e, 0, 1, 0);
	attach(&g, 0, 2, 1);
	calls(0, 2, 1, "3. two sets");
	enable(p, 2, 1);
	calls(1, 2, 1, "3. two sets, enabled");
	detach(&e, 1, 1, 1);
	calls(1, 1, 1, "3. the graph set, enabled");
	attach(&e, 1, 2, 1);
	disable(p, 2, 1);
	calls(0, 2, 1, "3. two sets, disabled");
	detach(&g, 0, 1, 0);
	calls(0, 1, 0, "3. the entry set");
	detach(&e, 0, 0, 0);
	expect_entry(nops, "3. both detached");
	calls(0, 0, 0, "3. both detached");
}

static void (*const parts[])(void) = { part1, part2, part3 };
static const char *const part_name[] = { "patch, then trace",
					 "trace, then patch", "two sets" };

static void run(int i)
{
	printf("test_ftc_patch: part %d, %s (ftc_leaf at %#lx)\n", i + 1,
	       part_name[i], (unsigned long)fn);
	setup();
	parts[i]();
	teardown();
	printf("test_ftc_patch: part %d: ok\n", i + 1);
}

int main(int argc, char **argv)
{
	int failed = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1) {
		int i = atoi(argv[1]) - 1;

		CHECK(i >= 0 && i < 3);
		run(i);
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0);
		if (pid == 0) {
			run(i);
			exit(0);
		}
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "test_ftc_patch: part %d (%s) failed\n",
				i + 1, part_name[i]);
			failed++;
		}
	}
	if (failed)
		return 1;
	printf("test_ftc_patch: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
