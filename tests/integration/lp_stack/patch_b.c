/* SPDX-License-Identifier: MIT */
/* Patch "stack_b": lps_f() returns 3. */
#include <rewire/patch.h>

static int lps_f_b(void)
{
	return 3;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_f", 0, lps_f_b),
};
RW_PATCH(stack_b, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
