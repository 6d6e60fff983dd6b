/* SPDX-License-Identifier: MIT */
/*
 * pdt_fix.so: the patch of test_ctl_patch_dir_threads (bound to it):
 * pdt_value() returns 2, pdt_hold() is replaced by the same loop, so a
 * thread inside pdt_hold holds the transition open.
 */
#include <rewire/patch.h>

#include <stdatomic.h>
#include <unistd.h>

extern atomic_int pdt_release, pdt_inside;

static int pdt_value_fixed(void)
{
	return 2;
}

static void pdt_hold_fixed(void)
{
	while (!atomic_load(&pdt_release))
		usleep(1000);
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "pdt_value", 0, pdt_value_fixed),
	RW_PATCH_FUNC(NULL, "pdt_hold", 0, pdt_hold_fixed),
};
RW_PATCH(pdt_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
