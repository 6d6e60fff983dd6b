/* SPDX-License-Identifier: MIT */
/*
 * Function tracing, the basics: entry probes see every call with its caller,
 * graph probes see every return with a duration and the right depth, the
 * functions' results are unchanged (arguments and return values survive
 * the trampolines, floating point too), detach restores the exact bytes,
 * and a probe that calls a traced function is counted, not recursed.
 * The same on x86-64 and aarch64 (graph mode on both).
 */
#include "check.h"

#include <rewire/ftrace.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

long fb_leaf(long a, long b, long c, long d, long e, long f, long g);
double fb_float(double x, double y, int n);
long fb_mid(long n);
long fb_rec(long n);
int fb_probe_helper(int x);

__attribute__((noinline)) long fb_leaf(long a, long b, long c, long d, long e,
				       long f, long g)
{
	__asm__ volatile("" ::: "memory");
	return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g;
}

__attribute__((noinline)) double fb_float(double x, double y, int n)
{
	__asm__ volatile("" ::: "memory");
	return x * y + n;
}

__attribute__((noinline)) long fb_mid(long n)
{
	long s = 0;

	for (long i = 0; i < n; i++)
		s += fb_leaf(i, 1, 2, 3, 4, 5, 6);
	return s;
}

__attribute__((noinline)) long fb_rec(long n)
{
	long r;

	if (n <= 0)
		return 0;
	r = fb_rec(n - 1);
	/* Keep GCC from turning the recursion into a loop. */
	__asm__ volatile("" : "+r"(r));
	return n + r;
}

__attribute__((noinline)) int fb_probe_helper(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

/* A data object: naming it is "not a function". */
int fb_data_object[4] = { 1, 2, 3, 4 };

static _Atomic long entries, returns, max_depth;
static _Atomic long helper_calls;

static void on_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	CHECK(data == &entries);
	CHECK(caller != 0);
	(void)depth;
	if (strcmp(f->name, "fb_leaf") == 0)
		atomic_fetch_add(&helper_calls, fb_probe_helper(0));
	atomic_fetch_add(&entries, 1);
}

static void on_return(void *data, const struct rw_ftrace_func *f,
		      uintptr_t caller, uint64_t ns, unsigned depth)
{
	(void)data;
	(void)f;
	(void)caller;
	(void)ns;
	long d = depth;
	long m = atomic_load(&max_depth);

	while (d > m && !atomic_compare_exchange_weak(&max_depth, &m, d))
		;
	atomic_fetch_add(&returns, 1);
}

static uint8_t first[4][9];
static void *const fns[4] = { (void *)fb_leaf, (void *)fb_float, (void *)fb_mid,
			      (void *)fb_rec };

static void save_bytes(void)
{
	for (int i = 0; i < 4; i++)
		memcpy(first[i], fns[i], 9);
}

static void check_bytes(void)
{
	for (int i = 0; i < 4; i++)
		CHECK(memcmp(first[i], fns[i], 9) == 0);
}

int main(void)
{
	const char *pats[] = { "fb_*", "!fb_probe*" };
	const char *helper[] = { "fb_probe_helper" };
	struct rw_ftrace_probe p = { on_entry, NULL, &entries };
	struct rw_ftrace_probe ph = { on_entry, NULL, &entries };
	struct rw_ftrace *t, *th;
	struct rw_ftrace_stats st;

	save_bytes();
	CHECK_OK(rw_ftrace_attach(pats, 2, &p, 0, &t));
	CHECK_EQ(rw_ftrace_nfuncs(t), 4);
	CHECK_EQ(fb_mid(10), 10 * 112 + 45);
	CHECK_EQ(atomic_load(&entries), 11);
	CHECK(fb_float(1.5, 2.0, 3) == 6.0);
	CHECK_EQ(atomic_load(&entries), 12);
	CHECK_OK(rw_ftrace_detach(t));
	check_bytes();
	CHECK_EQ(fb_mid(3), 3 * 112 + 3);
	CHECK_EQ(atomic_load(&entries), 12);

	/* Recursion: the probe calls a traced function. */
	CHECK_OK(rw_ftrace_attach(helper, 1, &ph, 0, &th));
	CHECK_OK(rw_ftrace_attach(pats, 2, &p, 0, &t));
	atomic_store(&entries, 0);
	atomic_store(&helper_calls, 0);
	CHECK_EQ(fb_leaf(0, 0, 0, 0, 0, 0, 0), 0);
	CHECK_EQ(atomic_load(&entries), 1);
	CHECK_EQ(atomic_load(&helper_calls), 1);
	rw_ftrace_get_stats(th, &st);
	CHECK_EQ(st.recursion, 1);
	CHECK_EQ(fb_probe_helper(1), 2);
	CHECK_EQ(atomic_load(&entries), 2);
	CHECK_OK(rw_ftrace_detach(th));
	CHECK_OK(rw_ftrace_detach(t));

	/* Graph. */
	struct rw_ftrace_probe g = { on_entry, on_return, &entries };

	atomic_store(&entries, 0);
	CHECK_OK(rw_ftrace_attach(pats, 2, &g, 0, &t));
	CHECK_EQ(fb_rec(20), 210);
	CHECK_EQ(atomic_load(&entries), 21);
	CHECK_EQ(atomic_load(&returns), 21);
	CHECK_EQ(atomic_load(&max_depth), 20);
	CHECK(fb_float(2.5, 2.0, 1) == 6.0);
	CHECK_EQ(atomic_load(&returns), 22);
	CHECK_OK(rw_ftrace_detach(t));
	check_bytes();

	/* Errors. */
	const char *none[] = { "fb_no_such_function" };
	const char *near[] = { "fb_lea" };

	CHECK_EQ(rw_ftrace_attach(none, 1, &p, 0, &t), -ENOENT);
	fprintf(stderr, "message: %s\n", rw_ftrace_last_error());
	CHECK_EQ(rw_ftrace_attach(near, 1, &p, 0, &t), -ENOENT);
	fprintf(stderr, "message: %s\n", rw_ftrace_last_error());
	CHECK(strstr(rw_ftrace_last_error(), "fb_leaf"));
#if defined(__aarch64__)
	/* No copy relocation of stderr in an aarch64 PIE (it goes through
	 * the GOT): a data object of the program's own. */
	const char *data[] = { "fb_data_object" };
#else
	const char *data[] = { "stderr" };
#endif

	CHECK_EQ(rw_ftrace_attach(data, 1, &p, 0, &t), -ENOENT);
	fprintf(stderr, "message: %s\n", rw_ftrace_last_error());
	CHECK(strstr(rw_ftrace_last_error(), "not a function"));
	/* libc is not built with patchable entries. */
	const char *libc[] = { "getpid" };

	CHECK_EQ(rw_ftrace_attach(libc, 1, &p, 0, &t), -RW_ERR_NOT_PATCHABLE);
	fprintf(stderr, "message: %s\n", rw_ftrace_last_error());
	check_bytes();
	puts("ok");
	return 0;
}
