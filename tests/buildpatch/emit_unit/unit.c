/* SPDX-License-Identifier: MIT */
/*
 * The patched translation unit of test_bp_emit, as the program was built
 * (unit_after.c is the fix: only eu_work changes). eu_work has what the
 * emitter must carry: a static variable the patch shares with the
 * program, a static helper, a global of another file, string literals, a
 * switch GCC compiles to a jump table, a cold path (eu_work.cold: it
 * calls a cold function), libc calls and fprintf(stderr).
 */
#include "eu.h"

#include <stdio.h>

static long eu_counter;

__attribute__((cold, noinline)) static void eu_note(int k)
{
	fprintf(stderr, "eu_note %d\n", k);
}

__attribute__((noinline)) static int eu_scale(int x)
{
	return x * 3;
}

long eu_count(void)
{
	return __atomic_load_n(&eu_counter, __ATOMIC_RELAXED);
}

int eu_work(int k, char *buf, size_t len)
{
	__atomic_add_fetch(&eu_counter, 1, __ATOMIC_RELAXED);
	if (k < 0) {
		eu_note(k);
		fprintf(stderr, "eu_work: negative %d\n", k);
		return -1;
	}
	switch (k) {
	case 0:
		snprintf(buf, len, "zero");
		break;
	case 1:
		snprintf(buf, len, "one %d", eu_scale(k));
		break;
	case 2:
		snprintf(buf, len, "two %d", eu_other(k));
		break;
	case 3:
		snprintf(buf, len, "three %ld", eu_count());
		break;
	case 4:
		snprintf(buf, len, "four %d", k * k);
		break;
	case 5:
		snprintf(buf, len, "five %c", "abcdef"[k]);
		break;
	default:
		snprintf(buf, len, "many %d", k);
		break;
	}
	return eu_scale(k) + eu_other(k);
}
