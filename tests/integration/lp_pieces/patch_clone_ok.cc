// SPDX-License-Identifier: MIT
/*
 * test_lp_pieces: replaces the clone lpp_scale.constprop.0 (k = 3 folded
 * in: one argument) by a function with the clone's convention, declared
 * with RW_PATCH_FUNC_CLONE; written in C++ to check the macro there:
 * 3 * v + 2.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int scale_new(int v)
{
	return v * 3 + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC_CLONE("liblpp_lib.so", "lpp_scale.constprop.0", 0,
			    scale_new),
};
RW_PATCH(lpp_clone_ok, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
