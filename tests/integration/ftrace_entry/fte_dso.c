/* SPDX-License-Identifier: MIT */
/*
 * fte_dso.so: the dlopen'ed half of test_ftrace_entry, patchable, its
 * entries rewritten to one 5-byte NOP (the program keeps GCC's five 1-byte
 * NOPs: both layouts are restored exactly).
 */
#include <stdio.h>
#include <string.h>

int fte_dso_f(int x);
int fte_dso_g(int x);
int fte_dso_cb(int (*fn)(int), int x);

static void sink(int v)
{
	asm volatile("" : : "r"(v) : "memory");
}

int fte_dso_f(int x)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%d", x);
	return (int)strlen(buf) * 100 + x;
}

int fte_dso_g(int x)
{
	int r = fte_dso_f(x + 1);

	sink(r);
	return r * 2;
}

/* Calls back into the program. */
int fte_dso_cb(int (*fn)(int), int x)
{
	int r = fn(x);

	sink(r);
	return r + 1;
}
