/* SPDX-License-Identifier: MIT */
/*
 * calc.h - the functions of bpt that the corpus's diffs change (calc.c,
 * util.c). Each returns a version tag: a probe number, then one digit per
 * function on the call chain, 1 as built and 2 (or 3) as a diff makes it.
 */
#ifndef CALC_H
#define CALC_H

/* The unit of the "const" probe (cases/const.diff changes it). */
#define BP_UNIT 1

/* A record of bp_recs (cases/layout.diff adds a field). */
struct bp_rec {
	long key;
	long val;
};

extern struct bp_rec bp_recs[4];
extern long bp_limit;

void bp_setup(long scale);
__attribute__((cold)) void bp_warn(const char *what, long x);
long bp_body(long x);
long bp_helped(long x);
long bp_helped2(long x);
long bp_static(long x);
unsigned long bp_static_count(void);
long bp_weight(long x);
long bp_inl_a(long x);
long bp_inl_b(long x);
long bp_cold(long x);
long bp_const(long x);
long bp_const_inner(long x);
long bp_limited(long x);
long bp_rec_sum(long x);
long bp_uses_new(long x);
long bp_old_helper(long x);
long bp_deleter(long x);

#endif /* CALC_H */
