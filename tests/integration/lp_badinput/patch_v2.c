/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a patch built for descriptor version 2, written by
 * hand (RW_PATCH writes version 1). Its constructor aborts: the loader must
 * refuse it from the file's note, before anything of it runs.
 */
#include <rewire/patch.h>

#include <stdlib.h>

__asm__(".pushsection .note.rewire,\"a\",@note\n"
	".balign 4\n"
	".long 7\n"
	".long 4\n"
	".long 1\n"
	".asciz \"rewire\"\n"
	".balign 4\n"
	".long 2\n" /* version 2 */
	".balign 4\n"
	".popsection\n");

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
	.version = 2,
	.size = sizeof(struct rw_patch_desc),
	.name = "lpb_v2",
	.funcs = funcs,
	.nfuncs = RW_PATCH_COUNT(funcs),
};
