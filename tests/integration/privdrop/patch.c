/* SPDX-License-Identifier: MIT */
/*
 * test_privdrop: the fix of pd_compute(), which gets the mixing constant
 * wrong. Built with rewire_add_patch() by test_privdrop.cmake.
 */
#include <rewire/patch.h>

#include "pd.h"

__attribute__((noinline)) static long pd_compute_fixed(long x)
{
	return PD_NEW(x);
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "pd_compute", 0, pd_compute_fixed),
};
RW_PATCH(privdrop_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
