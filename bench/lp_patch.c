/* SPDX-License-Identifier: MIT */
/*
 * rwbench_lp_patch.so: the patch of rw-bench-lp. New versions with the
 * same instructions as the old ones (another shift count, so that the
 * benchmark checks which side ran), and lpb_run unchanged.
 */
#include <rewire/patch.h>

static long lpb_func_v2(long x)
{
	return (x >> 2) ^ x;
}

static long lpb_func_exe_v2(long x)
{
	return (x >> 2) ^ x;
}

static void lpb_run_v2(void (*fn)(void *), void *arg)
{
	fn(arg);
	__asm__ volatile("" ::: "memory");
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("librwbench_lp_target.so", "lpb_func", 0, lpb_func_v2),
	RW_PATCH_FUNC("librwbench_lp_target.so", "lpb_run", 0, lpb_run_v2),
	RW_PATCH_FUNC(NULL, "lpb_func_exe", 0, lpb_func_exe_v2),
};
RW_PATCH(bench_lp, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
