/* SPDX-License-Identifier: MIT */
/*
 * librwbench_lp_target.so, plain part (no patchable entry): lpb_func's
 * body alone, for the per-call instructions a patched call adds.
 */
#include "lp_bench.h"

__attribute__((noipa)) long lpb_plain(long x)
{
	return (x >> 3) ^ x;
}
