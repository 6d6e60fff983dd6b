/* SPDX-License-Identifier: MIT */
/*
 * A global function of another file (unit.c calls it). Its static helper
 * has the name of one in unit.c: the program holds two local eu_scale,
 * which a patch tells apart by position (sympos).
 */
#include "eu.h"

__attribute__((noinline, noclone)) static int eu_scale(int x)
{
	return x + 100;
}

int eu_other(int k)
{
	return eu_scale(k);
}
