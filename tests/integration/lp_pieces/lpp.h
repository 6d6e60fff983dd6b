/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: the functions of liblpp_lib.so, built with Debian's
 * flags (-O2 and dpkg-buildflags' hardening) so that GCC makes its real
 * pieces and clones: lpp_outer.cold, lpp_scale.constprop.0.
 */
#ifndef LPP_H
#define LPP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Pipes the slow paths read one byte from, and the flag the spinning
 * slow paths wait for. */
extern int lpp_fd, lpp_fd2, lpp_fd3;
extern int lpp_go;
/* Counts lpp_note() calls: a slow path has started. */
extern volatile unsigned long lpp_notes;

/* Never inlined, and cold: the block that calls it is cold too. */
__attribute__((cold)) void lpp_note(const char *what);

/* Old: x + 1. */
int lpp_inner(int x);
/* Old: lpp_inner(|x|) + 10. x < 0 takes the slow path (in lpp_outer.cold):
 * -1 reads a byte from lpp_fd, any other negative x spins until lpp_go. */
int lpp_outer(int x);
/* Calls the clone lpp_scale.constprop.0 (lpp_scale(v, 3) = 3 * v + 1). */
int lpp_use_scale(int v);
/* Replaced by patch_unload; old: x + 1, x + 2, x + 3. */
int lpp_f1(int x);
int lpp_f2(int x);
int lpp_f3(int x);
/* Replaced by patch_ref; old: x. */
int lpp_refd(int x);

#ifdef __cplusplus
}
#endif

#endif
