/* SPDX-License-Identifier: MIT */
/*
 * The measured loops, built like any code of the program (no retpolines).
 *
 * Calls: one call per iteration to bench_target() (callee.c), directly,
 * through the static call bench_sc, or through a function pointer that the
 * compiler cannot see through (an argument laundered by an empty asm).
 *
 * Keys: key_loops.h. This file is compiled with -falign-loops=64
 * (bench/CMakeLists.txt) so that every loop starts a fetch block and none
 * pays for straddling one; key_layout.c has the key loops again at the
 * compiler's default alignment.
 */
#include "bench.h"

RW_DEFINE_STATIC_CALL(bench_sc, bench_target);
RW_DEFINE_STATIC_KEY_FALSE(bench_key);

__attribute__((noinline)) long bench_loop_direct(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++)
		acc += bench_target(i);
	return acc;
}

__attribute__((noinline)) long bench_loop_static_call(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++)
		acc += rw_static_call(bench_sc)(i);
	return acc;
}

__attribute__((noinline)) long bench_loop_indirect(long n, bench_fn *fp)
{
	long acc = 0;

	__asm__("" : "+r"(fp));
	for (long i = 0; i < n; i++)
		acc += fp(i);
	return acc;
}

#define KEY_LOOP(name) bench_loop_##name
#include "key_loops.h"

/*
 * The natural form of a static key test, "if (key) acc += slow(i)": the
 * slow path adds to the accumulator. The empty asm only reads acc here,
 * which keeps gcc from folding the sum as a real program's use of acc
 * would: 4 instructions bare, 5 with the site (doc/BENCHMARKS.md).
 */
__attribute__((noinline)) long bench_loop_plain_natural(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++) {
		acc += i;
		__asm__ volatile("" : : "r"(acc));
	}
	return acc;
}

__attribute__((noinline)) long bench_loop_key_natural(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++) {
		acc += i;
		__asm__ volatile("" : : "r"(acc));
		if (rw_static_branch_unlikely(bench_key))
			acc += bench_slow(i);
	}
	return acc;
}

/*
 * The same with an asm that rewrites acc ("+r") just before the site:
 * gcc 12 then copies acc into a callee-saved register before the asm goto
 * and back (two movs on the hot path, 7 instructions) because it cannot
 * place the copy on the asm goto's taken edge. Every form of the branch
 * macro tried gives the same code (doc/BENCHMARKS.md); kept to show it.
 */
__attribute__((noinline)) long bench_loop_key_natural_rw(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++) {
		acc += i;
		__asm__ volatile("" : "+r"(acc));
		if (rw_static_branch_unlikely(bench_key))
			acc += bench_slow(i);
	}
	return acc;
}
