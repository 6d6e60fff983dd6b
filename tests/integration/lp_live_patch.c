/* SPDX-License-Identifier: MIT */
/*
 * test_lp_live: the fix of buggy_sum(), which forgets the last element.
 * Built with rewire_add_patch() by test_lp_live.cmake.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static long buggy_sum_fixed(const int *v, int n)
{
	long s = 0;

	for (int i = 0; i < n; i++)
		s += v[i];
	return s;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "buggy_sum", 0, buggy_sum_fixed),
};
RW_PATCH(lp_live_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
