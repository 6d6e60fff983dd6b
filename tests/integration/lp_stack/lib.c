/* SPDX-License-Identifier: MIT */
/* liblps_lib.so: a shared library linked to test_lp_stack, patchable. */
#include "lps.h"

__attribute__((noipa)) int lps_lib_fn(int x)
{
	return x + 100;
}
