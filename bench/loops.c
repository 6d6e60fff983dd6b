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
