/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_dso": lps_lib_fn(x) of liblps_lib.so, named by the
 * object's base name, returns x + 200.
 */
#include <rewire/patch.h>

static int lps_lib_fn_dso(int x)
{
	return x + 200;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblps_lib.so", "lps_lib_fn", 0, lps_lib_fn_dso),
};
RW_PATCH(stack_dso, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
