/* SPDX-License-Identifier: MIT */
/*
 * test_lp_inlined: a library whose dscale() GCC inlines into
 * lpi_dcaller() at -O2, while lpi_dscale_call() calls it out of line
 * through a pointer. Built as lpi_dbg.so (-g, its DWARF moved to a
 * separate file named by .gnu_debuglink) and lpi_nodbg.so (-g0).
 */
#include "lpi.h"

static volatile unsigned dscale_calls;

static int dscale(int x)
{
	dscale_calls = dscale_calls + 1;
	return x * 11 + 2;
}

int (*volatile lpi_dscale_ptr)(int) = dscale;

__attribute__((noinline)) int lpi_dcaller(int x)
{
	return dscale(x) + 1;
}

int lpi_dscale_call(int x)
{
	return lpi_dscale_ptr(x);
}
