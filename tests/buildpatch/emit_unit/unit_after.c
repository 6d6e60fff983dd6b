/* SPDX-License-Identifier: MIT */
/*
 * unit.c after the fix: eu_work's words are upper case, its result 1000
 * more, and a negative k returns -2 with another message. The rest is
 * unit.c's.
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
		fprintf(stderr, "eu_work(new): negative %d\n", k);
		return -2;
	}
	switch (k) {
	case 0:
		snprintf(buf, len, "ZERO");
		break;
	case 1:
		snprintf(buf, len, "ONE %d", eu_scale(k));
		break;
	case 2:
		snprintf(buf, len, "TWO %d", eu_other(k));
		break;
	case 3:
		snprintf(buf, len, "THREE %ld", eu_count());
		break;
	case 4:
		snprintf(buf, len, "FOUR %d", k * k);
		break;
	case 5:
		snprintf(buf, len, "FIVE %c", "abcdef"[k]);
		break;
	default:
		snprintf(buf, len, "MANY %d", k);
		break;
	}
	return eu_scale(k) + eu_other(k) + 1000;
}
