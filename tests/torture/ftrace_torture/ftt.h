/* SPDX-License-Identifier: MIT */
/*
 * libftt.so: the functions torture_ftrace traces, built like a
 * distribution builds them (-O2, dpkg-buildflags, -fcf-protection) with
 * patchable entries (torture_ftrace.cmake). One call of ftt_outer(x, d)
 * makes these calls, in this order:
 *
 *	ftt_outer
 *	  ftt_mid
 *	    ftt_leaf_a
 *	    ftt_tail		a sibling call: jmp ftt_leaf_b
 *	      ftt_leaf_b	(__snprintf_chk: _FORTIFY_SOURCE)
 *	    ftt_rec(d)		d + 1 nested calls
 */
#ifndef FTT_H
#define FTT_H

int ftt_outer(int x, int d);
int ftt_mid(int x, int d);
int ftt_leaf_a(int x);
int ftt_leaf_b(int x);
int ftt_tail(int x);
int ftt_rec(int n);

#endif /* FTT_H */
