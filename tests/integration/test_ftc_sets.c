/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 4): two probe sets tracing overlapping sets
 * of functions. ftc_set_a/b/c of libftc_lib.so (built as Debian builds a
 * package, with patchable entries: ftc/ftc.cmake). Set A, entry only,
 * traces "ftc_set_[ab]"; set B, graph, traces "ftc_set_*" except
 * "!ftc_set_a": b is traced by both.
 *
 *   1. Exact counts from one thread. Both attached: A sees a and b, B sees
 *      b and c (entries and returns), each exactly as many times as they
 *      were called, and no function it does not trace. Detach A: a's
 *      entry holds its NOPs again, b and c stay traced and B keeps
 *      counting exactly while A counts nothing more. Attach A again and
 *      detach B (the other order): c's NOPs are back, A counts exactly.
 *      Detach A: all three entries hold their original NOPs.
 *   2. Churn. B stays attached while three workers call a, b and c in a
 *      loop and the main thread attaches and detaches A ROUNDS times:
 *      every worker call made while nothing changed caused exactly the
 *      probe calls of the sets attached (ftc_test.h), and at the end B
 *      counted exactly every call of b and c the workers made (its count
 *      never lost or gained a hit because of A), a return for each.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing needs a backend that patches code (x86_64, "
	     "aarch64)");
}
#else

#include "ftc.h"
#include "ftc_test.h"

#define NWORKERS 3
#define CALLS 500
#define SETTLE 50

static const char *const pat_a[] = { "ftc_set_[ab]" };
static const char *const pat_b[] = { "ftc_set_*", "!ftc_set_a" };

static struct ftc_set A, B;
static struct ftc_worker workers[NWORKERS];

/* The index of each function in both sets' tables. */
enum { FA, FB, FC };

static int call_abc(int x)
{
	return ftc_set_a(x) + ftc_set_b(x) + ftc_set_c(x);
}

static int abc_side(int x, int r)
{
	return r == 3 * x + 600 ? 0 : -1;
}

static uintptr_t addr(int i)
{
	return A.fn[i];
}

/* The three entries: traced (1) or holding their NOPs (0). */
static void expect_traced(int a, int b, int c, const char *what)
{
	int want[3] = { a, b, c };

	for (int i = 0; i < 3; i++)
		if (ftc_entry_is_nops(addr(i)) == want[i]) {
			fprintf(stderr, "%s: ftc_set_%c should %s\n", what,
				'a' + i,
				want[i] ? "be traced" : "hold its NOPs");
			exit(1);
		}
}

/* Call each function CALLS times from this thread. */
static void call_each(void)
{
	for (int i = 0; i < CALLS; i++) {
		CHECK_EQ(ftc_set_a(i), i + 100);
		CHECK_EQ(ftc_set_b(i), i + 200);
		CHECK_EQ(ftc_set_c(i), i + 300);
	}
}

/* @s counted @a, @b and @c calls of each function (entries, and returns
 * in graph mode). */
static void expect_counts(struct ftc_set *s, const char *name, long a, long b,
			  long c, const char *what)
{
	long want[3] = { a, b, c };

	for (int i = 0; i < 3; i++) {
		long e = ftc_entries(s, i), r = ftc_returns(s, i);

		if (e != want[i] || r != (s->graph ? want[i] : 0)) {
			fprintf(stderr,
				"%s: set %s counted %ld entries and %ld "
				"returns of ftc_set_%c, expected %ld and "
				"%ld\n",
				what, name, e, r, 'a' + i, want[i],
				s->graph ? want[i] : 0);
			exit(1);
		}
	}
	ftc_check_clean(s, name);
}

static void part1(void)
{
	const long n = CALLS;

	ftc_attach(&A, pat_a, 1);
	ftc_attach(&B, pat_b, 2);
	/* Each traces its two functions, and only them. */
	CHECK_EQ(rw_ftrace_nfuncs(A.t), 2);
	CHECK_EQ(rw_ftrace_func_at(A.t, 0)->addr, addr(FA));
	CHECK_EQ(rw_ftrace_func_at(A.t, 1)->addr, addr(FB));
	CHECK_EQ(rw_ftrace_nfuncs(B.t), 2);
	CHECK_EQ(rw_ftrace_func_at(B.t, 0)->addr, addr(FB));
	CHECK_EQ(rw_ftrace_func_at(B.t, 1)->addr, addr(FC));
	CHECK(!strcmp(rw_ftrace_func_at(B.t, 1)->name, "ftc_set_c"));
	expect_traced(1, 1, 1, "1. both attached");

	call_each();
	expect_counts(&A, "A", n, n, 0, "1. both attached");
	expect_counts(&B, "B", 0, n, n, "1. both attached");

	ftc_detach(&A);
	expect_traced(0, 1, 1, "1. A detached");
	call_each();
	expect_counts(&A, "A", n, n, 0, "1. A detached");
	expect_counts(&B, "B", 0, 2 * n, 2 * n, "1. A detached");

	ftc_attach(&A, pat_a, 1);
	expect_traced(1, 1, 1, "1. A attached again");
	ftc_detach(&B);
	expect_traced(1, 1, 0, "1. B detached");
	call_each();
	expect_counts(&A, "A", 2 * n, 2 * n, 0, "1. B detached");
	expect_counts(&B, "B", 0, 2 * n, 2 * n, "1. B detached");

	ftc_detach(&A);
	expect_traced(0, 0, 0, "1. both detached");
	call_each();
	expect_counts(&A, "A", 2 * n, 2 * n, 0, "1. both detached");
	expect_counts(&B, "B", 0, 2 * n, 2 * n, "1. both detached");
	printf("  1. exact counts from one thread: ok\n");
}

static void part2(void)
{
	const long rounds = rw_test_scale(200, 5000);
	long calls = 0, e0[3], r0[3];

	for (int i = 0; i < 3; i++) {
		e0[i] = ftc_entries(&B, i);
		r0[i] = ftc_returns(&B, i);
	}
	ftc_attach(&B, pat_b, 2);
	ftc_changing();
	ftc_publish(0, 2, FTC_RET(2));
	for (int i = 0; i < NWORKERS; i++)
		ftc_worker_start(&workers[i], call_abc, 3, abc_side, NULL);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
	for (long i = 0; i < rounds; i++) {
		ftc_changing();
		ftc_attach(&A, pat_a, 1);
		ftc_publish(0, 4, FTC_RET(2));
		if (i % 20 == 0)
			ftc_workers_settle(workers, NWORKERS, 1);
		ftc_changing();
		ftc_detach(&A);
		ftc_publish(0, 2, FTC_RET(2));
	}
	ftc_workers_settle(workers, NWORKERS, SETTLE);
	ftc_workers_stop(workers, NWORKERS);
	ftc_detach(&B);
	expect_traced(0, 0, 0, "2. both detached");
	for (int i = 0; i < NWORKERS; i++)
		calls += atomic_load(&workers[i].calls);
	printf("  2. %ld rounds of A, %ld calls of each function by the "
	       "workers; B counted %ld/%ld/%ld entries\n",
	       rounds, calls, ftc_entries(&B, FA) - e0[FA],
	       ftc_entries(&B, FB) - e0[FB], ftc_entries(&B, FC) - e0[FC]);
	CHECK_EQ(ftc_entries(&B, FA) - e0[FA], 0);
	CHECK_EQ(ftc_entries(&B, FB) - e0[FB], calls);
	CHECK_EQ(ftc_entries(&B, FC) - e0[FC], calls);
	CHECK_EQ(ftc_returns(&B, FB) - r0[FB], FTC_RET(calls));
	CHECK_EQ(ftc_returns(&B, FC) - r0[FC], FTC_RET(calls));
	CHECK(ftc_entries(&A, FA) <= 2 * CALLS + calls);
	CHECK_EQ(ftc_entries(&A, FC), 0);
	ftc_check_clean(&A, "A");
	ftc_check_clean(&B, "B");
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	ftc_set_init(&A, false, "ftc_set_a", "ftc_set_b", "ftc_set_c", NULL);
	ftc_set_init(&B, true, "ftc_set_a", "ftc_set_b", "ftc_set_c", NULL);
	ftc_set_callers(&A, "test_ftc_sets");
	ftc_set_callers(&B, "test_ftc_sets");
	for (int i = 0; i < 3; i++) {
		CHECK(lp_in_object(addr(i), "libftc_lib.so"));
		CHECK(ftc_entry_is_nops(addr(i)));
	}
	printf("test_ftc_sets:\n");
	part1();
	part2();
	printf("test_ftc_sets: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 */
