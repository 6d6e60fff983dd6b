/* SPDX-License-Identifier: MIT */
/*
 * lpu_patch.so: new versions of lpu_work (in the program) and
 * lpu_dso_work (in liblpu_dso.so), written in C++: g++ gives them unwind
 * information and landing pads for their local object, so exceptions and
 * cancellation unwind through them as through the old ones.
 */
#include <rewire/patch.h>

#include "lpu.h"

extern "C" {

__attribute__((noipa)) int lpu_work_v2(int mode, lpu_hook_t hook, void *arg)
{
	LPU_BODY(2, mode, hook, arg);
}

__attribute__((noipa)) int lpu_dso_work_v2(int mode, lpu_hook_t hook, void *arg)
{
	LPU_BODY(2, mode, hook, arg);
}
}

RW_PATCH_FUNCS(funcs) = {
	RW_PATCH_FUNC(NULL, "lpu_work", 0, lpu_work_v2),
	RW_PATCH_FUNC("liblpu_dso.so", "lpu_dso_work", 0, lpu_dso_work_v2),
};
/* C++: the same macro; fields in declaration order. */
RW_PATCH(unwind_cxx, .funcs = funcs, .nfuncs = RW_PATCH_COUNT(funcs));
