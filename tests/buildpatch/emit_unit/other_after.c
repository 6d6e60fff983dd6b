/* SPDX-License-Identifier: MIT */
/* other.c after the fix: eu_other adds 50. */
#include "eu.h"

__attribute__((noinline, noclone)) static int eu_scale(int x)
{
	return x + 100;
}

int eu_other(int k)
{
	return eu_scale(k) + 50;
}
