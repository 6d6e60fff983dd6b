/* SPDX-License-Identifier: MIT */
/* libftt.so: see ftt.h. */
#include "ftt.h"

#include <stdio.h>
#include <string.h>

static void sink(int v)
{
	asm volatile("" : : "r"(v) : "memory");
}

int ftt_leaf_a(int x)
{
	return x * 3 + 1;
}

int ftt_leaf_b(int x)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%d", x);
	return (int)strlen(buf) + x;
}

int ftt_tail(int x)
{
	return ftt_leaf_b(x + 1);
}

int ftt_rec(int n)
{
	if (n == 0)
		return 1;
	int r = ftt_rec(n - 1);
	sink(r);
	return (r ^ (r >> 3)) + n;
}

int ftt_mid(int x, int d)
{
	int a = ftt_leaf_a(x);
	int b = ftt_tail(a);
	int c = ftt_rec(d);

	return a ^ b ^ c;
}

int ftt_outer(int x, int d)
{
	int r = ftt_mid(x, d);

	sink(r);
	return r + 1;
}
