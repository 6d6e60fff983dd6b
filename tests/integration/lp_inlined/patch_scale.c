/* SPDX-License-Identifier: MIT */
/* test_lp_inlined: a patch of scale() alone (inlined into two callers). */
#include <rewire/patch.h>

__attribute__((noinline)) static int scale_fixed(int x)
{
	return x * 7 + 100;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "scale", 0, scale_fixed),
};
RW_PATCH(lpi_scale, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
