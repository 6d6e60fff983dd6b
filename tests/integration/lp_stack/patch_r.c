/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_r", an atomic replace: lps_f() returns 4. Every earlier
 * patch is replaced; lps_g(), which only patch C changed, goes back to its
 * original code in the same transition.
 */
#include <rewire/patch.h>

static int lps_f_r(void)
{
	return 4;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_f", 0, lps_f_r),
};
RW_PATCH(stack_r, .replace = 1, .funcs = funcs,
	 .nfuncs = RW_PATCH_COUNT(funcs));
