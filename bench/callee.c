/* SPDX-License-Identifier: MIT */
/*
 * Callees, in their own translation unit so that the loops of loops.c and
 * retpoline.c cannot inline them or know what they do.
 */
#include "bench.h"

volatile int bench_flag;

__attribute__((noinline)) long bench_target(long x)
{
	return x ^ (x >> 3);
}

__attribute__((noinline)) long bench_slow(long x)
{
	return x ^ 0x5a5a;
}
