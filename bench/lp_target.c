/* SPDX-License-Identifier: MIT */
/*
 * librwbench_lp_target.so, patchable part (-fpatchable-function-entry=5,
 * bench/CMakeLists.txt): the patched functions of rw-bench-lp and their
 * never patched twin. See lp_bench.h.
 */
#include "lp_bench.h"

__attribute__((noipa)) long lpb_func(long x)
{
	return (x >> 3) ^ x;
}

__attribute__((noipa)) long lpb_ref(long x)
{
	return (x >> 3) ^ x;
}

__attribute__((noipa)) void lpb_run(void (*fn)(void *), void *arg)
{
	fn(arg);
	/* Not a tail call: this frame stays on the stack while fn runs. */
	__asm__ volatile("" ::: "memory");
}
