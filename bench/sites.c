/* SPDX-License-Identifier: MIT */
/*
 * Many sites of one key, for the update latency benchmark: 1, 100 and
 * 10,000 (100 functions of 100 sites). Busy threads call these functions
 * in a loop, so they run the very instructions being patched.
 */
#include "bench.h"

RW_DEFINE_STATIC_KEY_FALSE(bench_key_1);
RW_DEFINE_STATIC_KEY_FALSE(bench_key_100);
RW_DEFINE_STATIC_KEY_FALSE(bench_key_10k);

/* clang-format does not settle on a layout for these macros. */
/* clang-format off */
#define SITE(k) n += rw_static_branch_unlikely(k) ? 1 : 0;
#define SITE10(k) SITE(k) SITE(k) SITE(k) SITE(k) SITE(k) \
		  SITE(k) SITE(k) SITE(k) SITE(k) SITE(k)
#define SITE100(k) SITE10(k) SITE10(k) SITE10(k) SITE10(k) SITE10(k) \
		   SITE10(k) SITE10(k) SITE10(k) SITE10(k) SITE10(k)
/* clang-format on */

__attribute__((noinline)) long bench_sites_1(void)
{
	long n = 0;

	SITE(bench_key_1)
	return n;
}

__attribute__((noinline)) long bench_sites_100(void)
{
	long n = 0;

	SITE100(bench_key_100)
	return n;
}

#define FN(i)                                                     \
	__attribute__((noinline)) static long sites_10k_##i(void) \
	{                                                         \
		long n = 0;                                       \
		SITE100(bench_key_10k)                            \
		return n;                                         \
	}
/* clang-format off */
#define FN10(i) FN(i##0) FN(i##1) FN(i##2) FN(i##3) FN(i##4) \
		FN(i##5) FN(i##6) FN(i##7) FN(i##8) FN(i##9)
/* clang-format on */
FN10(0)
FN10(1)
FN10(2)
FN10(3)
FN10(4)
FN10(5)
FN10(6)
FN10(7)
FN10(8)
FN10(9)

/* clang-format off */
#define CALL(i) n += sites_10k_##i();
#define CALL10(i) CALL(i##0) CALL(i##1) CALL(i##2) CALL(i##3) CALL(i##4) \
		  CALL(i##5) CALL(i##6) CALL(i##7) CALL(i##8) CALL(i##9)
/* clang-format on */

__attribute__((noinline)) long bench_sites_10k(void)
{
	long n = 0;

	CALL10(0)
	CALL10(1)
	CALL10(2)
	CALL10(3)
	CALL10(4)
	CALL10(5)
	CALL10(6)
	CALL10(7)
	CALL10(8)
	CALL10(9)
	return n;
}
