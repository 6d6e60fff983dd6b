/* SPDX-License-Identifier: MIT */
/* Patch "stack_c": lps_g() returns 20. */
#include <rewire/patch.h>

static int lps_g_c(void)
{
	return 20;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_g", 0, lps_g_c),
};
RW_PATCH(stack_c, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
