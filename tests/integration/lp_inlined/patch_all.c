/* SPDX-License-Identifier: MIT */
/* test_lp_inlined: scale() with both callers that carry a copy of it. */
#include <rewire/patch.h>

__attribute__((noinline)) static int scale_fixed(int x)
{
	return x * 7 + 100;
}

__attribute__((noinline)) static int caller_a_fixed(int x)
{
	return scale_fixed(x) + 1;
}

__attribute__((noinline)) static int caller_b_fixed(int x)
{
	return scale_fixed(x + 1) * 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "scale", 0, scale_fixed),
	RW_PATCH_FUNC(NULL, "caller_a", 0, caller_a_fixed),
	RW_PATCH_FUNC(NULL, "caller_b", 0, caller_b_fixed),
};
RW_PATCH(lpi_all, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
