/* SPDX-License-Identifier: MIT */
/* test_lp_relocs: calls the program's static helper_fn() by name, as if it
 * were exported: dlopen fails with "undefined symbol: helper_fn", and the
 * loader says how a patch reaches it. */
#include <rewire/patch.h>

int helper_fn(int x);

__attribute__((noinline)) static int compute_undef(int x)
{
	return helper_fn(x) + 1;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_undef),
};
RW_PATCH(lpr_undef, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
