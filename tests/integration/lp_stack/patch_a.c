/* SPDX-License-Identifier: MIT */
/* Patch "stack_a": lps_f() returns 2. */
#include <rewire/patch.h>

static int lps_f_a(void)
{
	return 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_f", 0, lps_f_a),
};
RW_PATCH(stack_a, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
