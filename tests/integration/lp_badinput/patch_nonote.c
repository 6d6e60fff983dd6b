/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a descriptor without the ELF note (not built with
 * RW_PATCH). Its constructor aborts: the loader must refuse it from the
 * file, before anything of it runs.
 */
#include <rewire/patch.h>

#include <stdlib.h>

__attribute__((noinline)) static int new_func(int x)
{
	return x + 1000;
}

__attribute__((constructor)) static void never_runs(void)
{
	abort();
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "compute", 0, new_func),
};

__attribute__((visibility("default"), used))
const struct rw_patch_desc rw_patch_descriptor = {
	.magic = RW_PATCH_MAGIC,
	.version = RW_PATCH_ABI_VERSION,
	.size = sizeof(struct rw_patch_desc),
	.name = "lpb_nonote",
	.funcs = funcs,
	.nfuncs = RW_PATCH_COUNT(funcs),
};
