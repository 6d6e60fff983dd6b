/* SPDX-License-Identifier: MIT */
/*
 * The static key loops, included by loops.c (loops aligned to 64 bytes)
 * and key_layout.c (default alignment) with KEY_LOOP(name) defined to the
 * function name. One add to an accumulator per iteration, kept in a
 * register and made opaque by an empty asm so that the loop is neither
 * vectorised nor folded; the variants add nothing, a disabled static key
 * site (a 5-byte NOP) or a test of a volatile int that is 0. The slow path
 * takes i, not acc: "acc = bench_slow(acc)" makes gcc 12 copy acc through
 * a second register around the site, two movs that are not the site's.
 */
#ifndef KEY_LOOP
#error "define KEY_LOOP(name) before including key_loops.h"
#endif

__attribute__((noinline)) long KEY_LOOP(plain)(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++) {
		acc += i;
		__asm__ volatile("" : "+r"(acc));
	}
	return acc;
}

__attribute__((noinline)) long KEY_LOOP(key)(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++) {
		acc += i;
		__asm__ volatile("" : "+r"(acc));
		if (rw_static_branch_unlikely(bench_key))
			acc = bench_slow(i);
	}
	return acc;
}

__attribute__((noinline)) long KEY_LOOP(flag)(long n)
{
	long acc = 0;

	for (long i = 0; i < n; i++) {
		acc += i;
		__asm__ volatile("" : "+r"(acc));
		if (__builtin_expect(bench_flag, 0))
			acc = bench_slow(i);
	}
	return acc;
}
