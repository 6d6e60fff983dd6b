/* SPDX-License-Identifier: MIT */
/*
 * bench_loop_indirect() again, in a translation unit compiled with
 * -mindirect-branch=thunk -mfunction-return=keep (bench/CMakeLists.txt):
 * the indirect call becomes "call __x86_indirect_thunk_<reg>", the
 * retpoline that kernels and hardened programs pay on every indirect call.
 */
#include "bench.h"

__attribute__((noinline)) long bench_loop_retpoline(long n, bench_fn *fp)
{
	long acc = 0;

	__asm__("" : "+r"(fp));
	for (long i = 0; i < n; i++)
		acc += fp(i);
	return acc;
}
