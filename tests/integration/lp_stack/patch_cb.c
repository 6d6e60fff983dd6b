/* SPDX-License-Identifier: MIT */
/*
 * Patch "stack_cb": lps_h() returns 7; every callback counts its calls in
 * the program's lps_cb_calls[] (lps.h).
 */
#include <rewire/patch.h>

#include "lps.h"

static int *calls;

static int lps_h_cb(int hold)
{
	(void)hold;
	return 7;
}

LPS_COUNTING_CALLBACKS(calls, 0)

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lps_h", 0, lps_h_cb),
};
RW_PATCH_REFS(refs) = {
	RW_PATCH_REF(NULL, "lps_cb_calls", 0, &calls),
};
RW_PATCH(stack_cb, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs),
	 .refs = refs, .nrefs = RW_PATCH_COUNT(refs),
	 .callbacks = LPS_CALLBACKS);
