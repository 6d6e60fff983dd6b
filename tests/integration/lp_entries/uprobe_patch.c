/* SPDX-License-Identifier: MIT */
/* test_lp_entries_uprobe: lpe_up_fn(x) returns x + 2000. */
#include <rewire/patch.h>

__attribute__((noinline)) static int new_fn(int x)
{
	return x + 2000;
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lpe_up_fn", 0, new_fn),
};
RW_PATCH(lpe_up_patch, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
