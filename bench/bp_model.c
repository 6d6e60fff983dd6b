// SPDX-License-Identifier: MIT
/*
 * bp_model.c - what the code model of a patch made by `rewire build-patch`
 * costs (bench/build_patch.sh). The same function, compiled once with the
 * program's model (small, PIE) and once as build-patch compiles a patch
 * (-mcmodel=large -fno-pic): every reference to a symbol is then a 64-bit
 * immediate (movabs) and every call an indirect call. Run under callgrind:
 * instructions per call of bp_work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long counter;
long table[16] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3 };

__attribute__((noinline)) static long helper(long x)
{
	return x * 3 + table[x & 15];
}

__attribute__((noinline)) long bp_work(long x, const char *s)
{
	long r = helper(x) + (long)strlen(s);

	counter += r;
	switch (x & 3) {
	case 0:
		return r + counter;
	case 1:
		return r - table[(x >> 4) & 15];
	case 2:
		return helper(r);
	default:
		return r ^ 0x5a;
	}
}

__attribute__((noinline)) void bp_loop(long n)
{
	volatile long sink = 0;

	for (long i = 0; i < n; i++)
		sink += bp_work(i, "rewire");
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;

	bp_loop(n);
	printf("%ld\n", counter);
	return 0;
}
