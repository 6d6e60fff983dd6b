/* SPDX-License-Identifier: MIT */
/*
 * bpl.c - libbpl.so, a library of the corpus that bpt does not load:
 * test_bp_refuse.sh makes a patch for it (refuse_lib.diff) and loads that
 * into bpt, which must refuse it.
 */
long bpl_value(long x);

long bpl_value(long x)
{
	return x > 1000 ? 0 : 1;
}
