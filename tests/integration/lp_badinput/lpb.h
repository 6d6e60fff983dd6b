/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: what the test's two source files share. */
#ifndef LPB_H
#define LPB_H

#include <stdint.h>

uintptr_t lpb_helper2_addr(void);
int lpb_helper2_call(int x);

/*
 * In a patch (with rewire/patch.h and stdlib.h): a patch of compute()
 * whose descriptor, named @pname and of version @pversion, is written by
 * hand rather than by RW_PATCH (so without its note). Its constructor
 * aborts: the loader must refuse it from the file, before anything of it
 * runs.
 */
#define LPB_HANDMADE_PATCH(pname, pversion)                       \
	__attribute__((noinline)) static int new_func(int x)      \
	{                                                         \
		return x + 1000;                                  \
	}                                                         \
                                                                  \
	__attribute__((constructor)) static void never_runs(void) \
	{                                                         \
		abort();                                          \
	}                                                         \
                                                                  \
	RW_PATCH_FUNCS(funcs) = {                                 \
		RW_PATCH_FUNC(NULL, "compute", 0, new_func),      \
	};                                                        \
                                                                  \
	__attribute__((visibility("default"), used))              \
	const struct rw_patch_desc rw_patch_descriptor = {        \
		.magic = RW_PATCH_MAGIC,                          \
		.version = (pversion),                            \
		.size = sizeof(struct rw_patch_desc),             \
		.name = (pname),                                  \
		.funcs = funcs,                                   \
		.nfuncs = RW_PATCH_COUNT(funcs),                  \
	}

#endif
