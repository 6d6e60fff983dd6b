/* SPDX-License-Identifier: MIT */
/*
 * fleet_fix.so: the fleet's patch. fleet_target's fleet_answer() returns
 * 2 (the new behaviour) instead of 1. Bound to the build of fleet_target
 * (rewire_add_patch(... BIND)): fleet_target_b, another build, refuses
 * it.
 */
#include <rewire/patch.h>

static int fleet_answer_fixed(int seq)
{
	(void)seq;
	return 2;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "fleet_answer", 0, fleet_answer_fixed),
};
RW_PATCH(fleet_fix, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
