/* SPDX-License-Identifier: MIT */
/*
 * sel_fix.so: the live patch of sel_target's sel_compute() (x + 1 becomes
 * x + 2), bound to sel_target_a's build (select.cmake): sel_target_b's
 * processes refuse it (RW_ERR_BUILD_ID).
 */
#include <rewire/patch.h>

static int sel_compute_fixed(int x)
{
	return x + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "sel_compute", 0, sel_compute_fixed),
};
RW_PATCH(sel_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
