/* SPDX-License-Identifier: MIT */
/*
 * The loops of rw-bench-ftrace, one per variant, all identical: n indirect
 * calls of fn(i), summed. Compiled with -falign-loops=64 and without a
 * patchable entry (bench/CMakeLists.txt); fn is laundered through an empty
 * asm so that nothing is known about it (as bench/lp_loops.c).
 */
#include "ftrace_bench.h"

#define FB_DEFINE_LOOP(v, label)                                      \
	__attribute__((noinline)) long fb_loop_##v(fb_fn *fn, long n) \
	{                                                             \
		long acc = 0;                                         \
                                                                      \
		__asm__("" : "+r"(fn));                               \
		for (long i = 0; i < n; i++)                          \
			acc += fn(i);                                 \
		return acc;                                           \
	}
FB_VARIANTS(FB_DEFINE_LOOP)
