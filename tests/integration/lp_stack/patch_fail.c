/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_fail": its pre_patch callback refuses, so it can never be
 * enabled. Every callback counts its calls in the program's
 * lps_fail_calls[] (lps.h), so the test sees that only pre_patch ran.
 */
#include <rewire/patch.h>

#include "lps.h"

static int *calls;

static int lps_u_fail(void)
{
	return 5;
}

LPS_COUNTING_CALLBACKS(calls, -1)

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_u", 0, lps_u_fail),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "lps_fail_calls", 0, &calls),
};
RW_PATCH(stack_fail, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs),
	 .callbacks = LPS_CALLBACKS);
