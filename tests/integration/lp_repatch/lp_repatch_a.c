/* SPDX-License-Identifier: MIT */
/*
 * test_lp_repatch: patch A of pick(), which tags its result with 2000.
 * Built with rewire_add_patch() by test_lp_repatch.cmake.
 */
#include <rewire/patch.h>

__attribute__((noinline)) static long pick_a(long x)
{
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "pick", 0, pick_a),
};
RW_PATCH(lp_repatch_a, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
