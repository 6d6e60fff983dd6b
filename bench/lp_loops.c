/* SPDX-License-Identifier: MIT */
/*
 * The loops of rw-bench-lp, one per variant, all identical: n indirect
 * calls of fn(i), summed. Compiled with -falign-loops=64 and without a
 * patchable entry (bench/CMakeLists.txt); fn is laundered through an empty
 * asm so that nothing is known about it.
 */
#include "lp_bench.h"

#define LPB_DEFINE_LOOP(v)                                              \
	__attribute__((noinline)) long lpb_loop_##v(lpb_fn *fn, long n) \
	{                                                               \
		long acc = 0;                                           \
                                                                        \
		__asm__("" : "+r"(fn));                                 \
		for (long i = 0; i < n; i++)                            \
			acc += fn(i);                                   \
		return acc;                                             \
	}
LPB_VARIANTS(LPB_DEFINE_LOOP)
