/* SPDX-License-Identifier: MIT */
/*
 * calc.c - most of what the corpus's diffs change (see cases/).
 */
#include "calc.h"

#include <stddef.h>
#include <stdlib.h>

/* ---- body: cases/body.diff ------------------------------------------ */

long bp_body(long x)
{
	if (x > 1000)
		return 0;
	return 1001;
}

/* ---- a static helper GCC keeps out of line: cases/helper.diff ----------
 * noinline stands for a helper too big to inline (GCC inlines this one
 * into both callers otherwise); it may still clone it. */
static const unsigned char salt[] = "build-patch corpus: a salt for fold_bits";

__attribute__((noinline)) static long fold_bits(unsigned long x, size_t n,
						unsigned long *hash)
{
	unsigned long h = 1469598103934665603ul ^ x;

	for (size_t i = 0; i < n && i < sizeof(salt); i++) {
		h ^= salt[i];
		h *= 1099511628211ul;
		h ^= h >> 29;
	}
	*hash = h;
	return h == 0 ? 9 : 1; /* h is never 0 for the probes' x */
}

static unsigned long hash_sink;

long bp_helped(long x)
{
	unsigned long h;
	long tag = fold_bits((unsigned long)x, (size_t)x % 16 + 8, &h);

	return 2000 + tag * 10 + 1;
}

long bp_helped2(long x)
{
	unsigned long h;
	long tag = fold_bits((unsigned long)x * 3, (size_t)x % 8 + 16, &h);

	__atomic_store_n(&hash_sink, h, __ATOMIC_RELAXED);
	return 2100 + tag * 10 + 3;
}

/* ---- static variables the patch must share: cases/static.diff ------- */

static long scale;	      /* set at start-up: not its initial value */
static unsigned long nstatic; /* every call counts */

void bp_setup(long s)
{
	scale = s;
}

/* bp_static(-1) returns how many times it ran (its own counter). */
long bp_static(long x)
{
	static unsigned long seen;

	if (x == -1)
		return (long)__atomic_load_n(&seen, __ATOMIC_RELAXED);
	__atomic_fetch_add(&seen, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&nstatic, 1, __ATOMIC_RELAXED);
	return 3000 + scale / 10;
}

unsigned long bp_static_count(void)
{
	return __atomic_load_n(&nstatic, __ATOMIC_RELAXED);
}

/* ---- inlined into two callers: cases/inline.diff -------------------- */

long bp_weight(long x)
{
	return x >= 0 ? 1 : -1;
}

long bp_inl_a(long x)
{
	return 40000 + bp_weight(x) * 10 + 1;
}

long bp_inl_b(long x)
{
	return 41000 + bp_weight(x + 1) * 10 + 3;
}

/* ---- a .cold piece: cases/cold.diff ---------------------------------
 * GCC moves the slow path, which calls a cold function, into
 * bp_cold.cold. */
long bp_cold(long x)
{
	if (x < 0 || x > 1000) {
		bp_warn("bp_cold: out of range", x);
		if (x < -1000000)
			abort();
		return 5000 + (x < 0 ? -x : x) % 7;
	}
	return 5001;
}

/* ---- a constant of calc.h: cases/const.diff -------------------------- */

long bp_const(long x)
{
	return bp_const_inner(x) * 10 + BP_UNIT;
}

/* ---- a new function: cases/new.diff --------------------------------- */

long bp_uses_new(long x)
{
	return x > 1000 ? 0 : 9001;
}

/* ---- a deleted function: cases/delete.diff -------------------------- */

long bp_old_helper(long x)
{
	return x > 1000 ? 0 : 1;
}

long bp_deleter(long x)
{
	return 10000 + bp_old_helper(x) * 10 + 1;
}
