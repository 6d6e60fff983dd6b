/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: names lpp_scale, of which liblpp_lib.so has only the
 * clone lpp_scale.constprop.0: refused, the message names the clone.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static int scale_new(int v, int k)
{
	return v * k + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC("liblpp_lib.so", "lpp_scale", 0, scale_new),
};
RW_PATCH(lpp_clone_base, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
