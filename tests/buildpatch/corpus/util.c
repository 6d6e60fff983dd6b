/* SPDX-License-Identifier: MIT */
/*
 * util.c - the rest of what the corpus's diffs change: the inner half of
 * the "const" chain, and data (initialised globals, a struct layout).
 */
#include "calc.h"

#include <stdio.h>

long bp_limit = 64;

struct bp_rec bp_recs[4] = {
	{ 1, 10 },
	{ 2, 20 },
	{ 3, 30 },
	{ 4, 40 },
};

/* __FILE__: Debian's -ffile-prefix-map=<tree>=. makes it "./util.c". */
void bp_warn(const char *what, long x)
{
	fprintf(stderr, "%s: %s: %ld\n", __FILE__, what, x);
}

long bp_const_inner(long x)
{
	return x > 1000 ? 0 : 600 + BP_UNIT;
}

long bp_limited(long x)
{
	return 7000 + (x < bp_limit ? 1 : 0);
}

long bp_rec_sum(long x)
{
	long sum = 0;

	for (unsigned i = 0; i < sizeof(bp_recs) / sizeof(bp_recs[0]); i++)
		sum += bp_recs[i].val + (bp_recs[i].key == x);
	return 8000 + sum / 100;
}
