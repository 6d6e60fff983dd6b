/* SPDX-License-Identifier: MIT */
/*
 * probes.c - bpt's probes (bpt.h) and their state check.
 */
#include "bpt.h"
#include "calc.h"

#include <stdio.h>

/* clang-format off */
const struct bpt_probe bpt_probes[] = {
	{ "body", bp_body, 1001 },
	{ "helped", bp_helped, 2011 },
	{ "helped2", bp_helped2, 2113 },
	{ "static", bp_static, 3001 },
	{ "weight", bp_weight, 1 },
	{ "inl_a", bp_inl_a, 40011 },
	{ "inl_b", bp_inl_b, 41013 },
	{ "cold", bp_cold, 5001 },
	{ "const", bp_const, 6011 },
	{ "limited", bp_limited, 7001 },
	{ "recs", bp_rec_sum, 8001 },
	{ "uses_new", bp_uses_new, 9001 },
	{ "deleter", bp_deleter, 10011 },
};
/* clang-format on */
const size_t bpt_nprobes = sizeof(bpt_probes) / sizeof(bpt_probes[0]);

void bpt_init(void)
{
	bp_setup(10);
}

/* The patch of bp_static must count in the program's counters. */
int bpt_final_check(const unsigned long *calls, char *msg, size_t len)
{
	unsigned long n = calls[3];

	if (bp_static_count() != n || (unsigned long)bp_static(-1) != n) {
		snprintf(msg, len,
			 "probe static ran %lu times, but its counters say "
			 "%lu (file scope) and %ld (function scope)",
			 n, bp_static_count(), bp_static(-1));
		return -1;
	}
	return 0;
}
