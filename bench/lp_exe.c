/* SPDX-License-Identifier: MIT */
/* rw-bench-lp's own patched function (patchable, bench/CMakeLists.txt). */
#include "lp_bench.h"

__attribute__((noipa)) long lpb_func_exe(long x)
{
	return (x >> 3) ^ x;
}
