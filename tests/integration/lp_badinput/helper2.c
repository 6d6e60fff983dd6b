/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: the second "static int helper(int)" of the program, in
 * its own file, so that the name has two symbols in the main program's
 * .symtab (this one second, in link order).
 */
#include "lpb.h"

__attribute__((noinline, used)) static int helper(int x)
{
	return x * 5 - 2;
}

uintptr_t lpb_helper2_addr(void)
{
	return (uintptr_t)&helper;
}

int lpb_helper2_call(int x)
{
	return helper(x);
}
