/* SPDX-License-Identifier: MIT */
/*
 * aarch64 trace clock: not ported yet (no counter, as on the generic
 * backend).
 */
#include "a64.h"

bool rw__arch_tsc_present(void)
{
	return false;
}

bool rw__arch_tsc_invariant(void)
{
	return false;
}

uint64_t rw__arch_tsc_hz(void)
{
	return 0;
}
