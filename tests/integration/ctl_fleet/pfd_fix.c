/* SPDX-License-Identifier: MIT */
/*
 * pfd_fix.so: the live patch of test_ctl_patch_fd's pfd_compute() (x + 1
 * becomes x + 2), not bound to a build.
 */
#include <rewire/patch.h>

static int pfd_compute_fixed(int x)
{
	return x + 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "pfd_compute", 0, pfd_compute_fixed),
};
RW_PATCH(pfd_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
