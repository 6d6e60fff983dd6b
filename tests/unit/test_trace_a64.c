/* SPDX-License-Identifier: MIT */
/*
 * Function tracing on aarch64 (src/arch/aarch64/trace.c), with the
 * program built as a distribution hardens it: -mbranch-protection=standard
 * (BTI C before the two entry NOPs, PACIASP/AUTIASP around the bodies).
 *
 * Oracles:
 *   - layout: each function's entry is BTI C, NOP, NOP; tracing writes
 *     only the first NOP, into a B; detach restores the exact bytes;
 *   - arguments and results cross the trampoline while the probe dirties
 *     every caller-saved register it may: eight integer and eight FP
 *     arguments, a 40-byte result through X8, a homogeneous FP aggregate
 *     in Q0-Q3, a 128-bit integer in X0-X1, a GCC nested function (its
 *     static chain in X18);
 *   - the probe's caller is the call's return address (in this program);
 *   - the return path, through the internal interface (rw_ftrace's graph
 *     mode is tested by test_ftrace_graph_a64 and the others): an enter
 *     callback that redirects the slot to the return trampoline gets
 *     every return there with the stack pointer the function was entered
 *     with, the results intact, and a PAC-signed return address that
 *     authenticates (the function signs the redirected address).
 * Skipped (77) on other backends.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("aarch64 only (the other backends' trampolines are tested by "
	     "test_ftrace_basic)");
}
#else

#include "entry.h"

#include <rewire/ftrace.h>

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define A64_NOP 0xd503201fu
#define A64_BTI_C 0xd503245fu

struct big {
	long v[5];
};
struct hfa4 {
	double a, b, c, d;
};

long t_int8(long a, long b, long c, long d, long e, long f, long g, long h);
double t_fp8(double a, double b, double c, double d, double e, double f,
	     double g, double h);
struct big t_big(long a, double x);
struct hfa4 t_hfa(double a, int n);
__int128 t_i128(__int128 a, long b);
long t_nested(long n);

__attribute__((noinline)) long t_int8(long a, long b, long c, long d, long e,
				      long f, long g, long h)
{
	__asm__ volatile("" ::: "memory");
	return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}

__attribute__((noinline)) double t_fp8(double a, double b, double c, double d,
				       double e, double f, double g, double h)
{
	__asm__ volatile("" ::: "memory");
	return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}

__attribute__((noinline)) struct big t_big(long a, double x)
{
	struct big r;

	__asm__ volatile("" ::: "memory");
	for (int i = 0; i < 5; i++)
		r.v[i] = a * (i + 1) + (long)x;
	return r;
}

__attribute__((noinline)) struct hfa4 t_hfa(double a, int n)
{
	struct hfa4 r = { a, a * 2, a * 3, a * n };

	__asm__ volatile("" ::: "memory");
	return r;
}

__attribute__((noinline)) __int128 t_i128(__int128 a, long b)
{
	__asm__ volatile("" ::: "memory");
	return a * 3 + b;
}

__attribute__((noinline)) long t_nested(long n)
{
	long base = n * 10;
	/* A nested function that reads its parent's frame through the
	 * static chain; GCC passes it in X18 (called directly: a pointer to
	 * it would need an executable stack). */
	__attribute__((noinline)) long inner(long k)
	{
		__asm__ volatile("" ::: "memory");
		return base + k;
	}

	return inner(n) + inner(1);
}

static void *const fns[] = { (void *)t_int8, (void *)t_fp8,  (void *)t_big,
			     (void *)t_hfa,  (void *)t_i128, (void *)t_nested };
#define NFNS (sizeof(fns) / sizeof(fns[0]))
static uint32_t orig[NFNS][3];

static uint32_t word(const void *p, size_t i)
{
	uint32_t w;

	memcpy(&w, (const uint8_t *)p + 4 * i, 4);
	return w;
}

static _Atomic long hits, bad_caller;

/* Dirty the caller-saved registers a probe may use. */
__attribute__((noinline)) static void dirty(void)
{
	volatile double d[8];
	volatile long l[8];

	for (int i = 0; i < 8; i++) {
		d[i] = 1e300 * (i + 1);
		l[i] = -1L - i;
	}
	__asm__ volatile("mov x0, #-1\n mov x1, #-1\n mov x2, #-1\n"
			 "mov x3, #-1\n mov x4, #-1\n mov x5, #-1\n"
			 "mov x6, #-1\n mov x7, #-1\n mov x8, #-1\n"
			 "mov x9, #-1\n mov x16, #-1\n mov x17, #-1\n"
			 "movi v0.2d, #-1\n movi v1.2d, #-1\n"
			 "movi v2.2d, #-1\n movi v3.2d, #-1\n"
			 "movi v4.2d, #-1\n movi v5.2d, #-1\n"
			 "movi v6.2d, #-1\n movi v7.2d, #-1\n" ::
				 : "x0", "x1", "x2", "x3", "x4", "x5", "x6",
				   "x7", "x8", "x9", "x16", "x17", "v0", "v1",
				   "v2", "v3", "v4", "v5", "v6", "v7",
				   "memory");
	(void)d[0];
	(void)l[0];
}

static void on_entry(void *data, const struct rw_ftrace_func *f,
		     uintptr_t caller, unsigned depth)
{
	(void)data;
	(void)f;
	(void)depth;
	Dl_info self, at;

	/* Every call comes from this program's code. */
	if (!dladdr((void *)on_entry, &self) || !dladdr((void *)caller, &at) ||
	    at.dli_fbase != self.dli_fbase)
		atomic_fetch_add(&bad_caller, 1);
	dirty();
	atomic_fetch_add(&hits, 1);
}

static void check_results(void)
{
	struct big b = t_big(7, 2.0);
	struct hfa4 h = t_hfa(1.5, 4);
	__int128 x = ((__int128)0x123456789abcdefL << 64) | 0xfedcba987654321UL;

	CHECK_EQ(t_int8(1, 2, 3, 4, 5, 6, 7, 8), 204);
	CHECK(t_fp8(1, 2, 3, 4, 5, 6, 7, 8) == 204.0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(b.v[i], 7L * (i + 1) + 2);
	CHECK(h.a == 1.5 && h.b == 3.0 && h.c == 4.5 && h.d == 6.0);
	CHECK(t_i128(x, 5) == x * 3 + 5);
	CHECK_EQ(t_nested(4), 40 + 4 + 40 + 1);
}

/* ---- The return path, through the internal interface ---------------- */

#define DEPTH 64
static __thread struct {
	uintptr_t orig, sp;
} stack[DEPTH];
static __thread unsigned top;
static _Atomic long rets, bad_sp;

static void my_enter(void *tdata, uintptr_t *slot)
{
	(void)tdata;
	dirty();
	atomic_fetch_add(&hits, 1);
	if (top == DEPTH)
		return;
	stack[top].orig = *slot;
	/* The slot is in the trampoline's 240-byte frame, 8 above its
	 * base: the function's entry stack pointer is 232 above it. */
	stack[top].sp = (uintptr_t)slot + 232;
	top++;
	*slot = rw__entry_return_tramp();
}

static uintptr_t my_ret(uintptr_t sp)
{
	CHECK(top > 0);
	top--;
	if (stack[top].sp != sp)
		atomic_fetch_add(&bad_sp, 1);
	dirty();
	atomic_fetch_add(&rets, 1);
	return stack[top].orig;
}

static void return_path(void)
{
	struct rw__entry *e[NFNS];
	struct rw__entry_change ch[NFNS];

	rw__entry_set_tracer(my_enter, my_ret, NULL);
	CHECK_OK(rw__lock_acquire(&rw__entry_lock));
	for (size_t i = 0; i < NFNS; i++) {
		uintptr_t f = (uintptr_t)fns[i];

		CHECK_OK(rw__entry_get(f, f + 4, "t", &e[i]));
		ch[i] = (struct rw__entry_change){ e[i], true, 0 };
	}
	CHECK_OK(rw__entry_apply(ch, NFNS));
	rw__lock_release(&rw__entry_lock);

	atomic_store(&hits, 0);
	check_results();
	/* inner() is not in the set: six functions. */
	CHECK_EQ(atomic_load(&hits), 6);
	CHECK_EQ(atomic_load(&rets), 6);
	CHECK_EQ(atomic_load(&bad_sp), 0);
	CHECK_EQ(top, 0);

	CHECK_OK(rw__lock_acquire(&rw__entry_lock));
	for (size_t i = 0; i < NFNS; i++)
		ch[i].traced = false;
	CHECK_OK(rw__entry_apply(ch, NFNS));
	rw__lock_release(&rw__entry_lock);
	for (size_t i = 0; i < NFNS; i++)
		for (size_t k = 0; k < 3; k++)
			CHECK_EQ(word(fns[i], k), orig[i][k]);
}

int main(void)
{
	const char *pats[] = { "t_*@test_trace_a64", "inner*@test_trace_a64" };
	struct rw_ftrace_probe p = { on_entry, NULL, NULL };
	struct rw_ftrace *t;

	for (size_t i = 0; i < NFNS; i++) {
		for (size_t k = 0; k < 3; k++)
			orig[i][k] = word(fns[i], k);
		/* Built with -mbranch-protection=standard and
		 * -fpatchable-function-entry=2. */
		CHECK_EQ(orig[i][0], A64_BTI_C);
		CHECK_EQ(orig[i][1], A64_NOP);
		CHECK_EQ(orig[i][2], A64_NOP);
	}
	check_results();
	CHECK_OK(rw_ftrace_attach(pats, 2, &p, 0, &t));
	CHECK_EQ(rw_ftrace_nfuncs(t), NFNS + 1);
	for (size_t i = 0; i < NFNS; i++) {
		uint32_t b = word(fns[i], 1);

		CHECK_EQ(word(fns[i], 0), A64_BTI_C);
		CHECK_EQ(b & 0xfc000000u, 0x14000000u); /* B */
		CHECK_EQ(word(fns[i], 2), A64_NOP);
	}
	check_results();
	/* Six functions and inner() twice. */
	CHECK_EQ(atomic_load(&hits), 8);
	CHECK_EQ(atomic_load(&bad_caller), 0);
	CHECK_OK(rw_ftrace_detach(t));
	for (size_t i = 0; i < NFNS; i++)
		for (size_t k = 0; k < 3; k++)
			CHECK_EQ(word(fns[i], k), orig[i][k]);
	check_results();
	CHECK_EQ(atomic_load(&hits), 8);

	return_path();
	puts("aarch64 trampolines, BTI and PAC: ok");
	return 0;
}
#endif
