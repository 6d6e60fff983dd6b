/* SPDX-License-Identifier: MIT */
/*
 * test_lp_repatch: patch B of pick(), which tags its result with 3000.
 * Built with rewire_add_patch() by test_lp_repatch.cmake. The helper
 * before it puts pick_b at another offset than patch A's pick_a: loaded
 * where A was, B's function is at another address.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static long pick_b_tag(long x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 1000;
}

__attribute__((noinline, aligned(64))) static long pick_b(long x)
{
	return pick_b_tag(x) + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "pick", 0, pick_b),
};
RW_PATCH(lp_repatch_b, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
