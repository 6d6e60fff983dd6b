/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the torture tests: four static call targets whose
 * results tell which one ran (t_k(x) == x + k), and a two-site probe of a
 * static key, one site of each branch form.
 */
#ifndef REWIRE_TEST_TARGETS_H
#define REWIRE_TEST_TARGETS_H

#include <stddef.h>

#define NTARGETS 4

static int t1(int x)
{
	return x + 1;
}

static int t2(int x)
{
	return x + 2;
}

static int t3(int x)
{
	return x + 3;
}

static int t4(int x)
{
	return x + 4;
}

/* targets[k] is t_k; targets[0] is NULL. */
static int (*const targets[NTARGETS + 1])(int) = { NULL, t1, t2, t3, t4 };

/* Two sites, one of each branch form: how many said "enabled" (0..2). */
#define S2(b)                                     \
	((rw_static_branch_unlikely(b) ? 1 : 0) + \
	 (rw_static_branch_likely(b) ? 1 : 0))

#endif /* REWIRE_TEST_TARGETS_H */
