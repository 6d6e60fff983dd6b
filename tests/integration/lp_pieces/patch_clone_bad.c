/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: replaces the clone lpp_scale.constprop.0 by a function
 * with lpp_scale's signature, without declaring it a clone: refused (the
 * clone takes one argument; this function would read a second one that
 * no caller passes).
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int scale_new(int v, int k)
{
	return v * k + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_scale.constprop.0", 0, scale_new),
};
RW_PATCH(lpp_clone_bad, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
