/* SPDX-License-Identifier: MIT */
/*
 * cli_fix.so: the live patch of cli_target's cli_compute() (x + 1 becomes
 * x + 2). Its transition completes quickly: the workers and the main
 * thread call rw_patch_quiescent(), the holder never has cli_compute on
 * its stack.
 */
#include <rewire/patch.h>

static int cli_compute_fixed(int x)
{
	return x + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "cli_compute", 0, cli_compute_fixed),
};
RW_PATCH(cli_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
