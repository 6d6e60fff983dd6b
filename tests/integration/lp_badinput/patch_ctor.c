/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a patch of compute() whose constructor calls
 * rw_patch_load (of the good patch) while the loader maps it. The call must
 * fail with -EDEADLK at once, not wait for the loader that runs it. Its
 * pre_patch callback, run under the patch lock, loads it too: -EDEADLK
 * before the other patch is mapped. It reports through the test program's
 * lpb_nested_* (exported).
 */
#include <rewire/livepatch.h>

#include <stdio.h>

extern int lpb_nested_err[2];
extern char lpb_nested_msg[2][512];

__attribute__((noinline)) static int compute_ctor(int x)
{
	return x * 3 + 1;
}

__attribute__((constructor)) static void nested_load(void)
{
	struct rw_patch *p = NULL;

	lpb_nested_err[0] = rw_patch_load(LPB_DIR "/lpb_good.so", 0, &p);
	snprintf(lpb_nested_msg[0], sizeof(lpb_nested_msg[0]), "%s",
		 rw_patch_last_error());
	if (!lpb_nested_err[0])
		rw_patch_unload(p);
}

static int nested_pre_patch(void)
{
	struct rw_patch *p = NULL;

	lpb_nested_err[1] = rw_patch_load(LPB_DIR "/lpb_good.so", 0, &p);
	snprintf(lpb_nested_msg[1], sizeof(lpb_nested_msg[1]), "%s",
		 rw_patch_last_error());
	if (!lpb_nested_err[1])
		rw_patch_unload(p);
	return 0;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, compute_ctor),
};
RW_PATCH(lpb_ctor, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .callbacks = { .pre_patch = nested_pre_patch });
