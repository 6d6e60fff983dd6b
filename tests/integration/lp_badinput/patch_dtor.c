/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a patch of compute() whose destructor, run by the
 * dlclose of its unload, calls rw_patch_load (of the good patch) and
 * rw_patch_unload (of the loaded good patch). Both must fail with -EDEADLK
 * at once, not wait for the unload that runs them. It reports through the
 * test program's lpb_nested_* (exported).
 */
#include <rewire/livepatch.h>

#include <errno.h>
#include <stdio.h>

extern int lpb_nested_err[2];
extern char lpb_nested_msg[2][512];

__attribute__((noinline)) static int compute_dtor(int x)
{
	return x * 3 + 1;
}

__attribute__((destructor)) static void nested_calls(void)
{
	struct rw_patch *p = NULL, *good = rw_patch_find("lpb_good");

	lpb_nested_err[0] = rw_patch_load(LPB_DIR "/lpb_good.so", 0, &p);
	snprintf(lpb_nested_msg[0], sizeof(lpb_nested_msg[0]), "%s",
		 rw_patch_last_error());
	if (!lpb_nested_err[0])
		rw_patch_unload(p);
	lpb_nested_err[1] = good ? rw_patch_unload(good) : -ENOENT;
	snprintf(lpb_nested_msg[1], sizeof(lpb_nested_msg[1]), "%s",
		 rw_patch_last_error());
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_dtor),
};
RW_PATCH(lpb_dtor, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
