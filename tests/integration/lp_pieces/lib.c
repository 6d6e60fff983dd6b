/* SPDX-License-Identifier: MIT */
/*
 * test_lp_pieces: liblpp_lib.so, the patched library. Built with Debian's
 * flags and -fpatchable-function-entry=5 only (not
 * -flive-patching=inline-only-static, which would keep GCC from making
 * the clone this test needs): see test_lp_pieces.cmake.
 */
#include "lpp.h"

#include <unistd.h>

int lpp_fd = -1, lpp_fd2 = -1, lpp_fd3 = -1;
int lpp_go;
volatile unsigned long lpp_notes;

__attribute__((cold, noinline)) void lpp_note(const char *what)
{
	lpp_notes += (unsigned long)what[0];
}

__attribute__((noinline)) int lpp_inner(int x)
{
	return x + 1;
}

/* The slow path: GCC moves it into lpp_outer.cold (it calls a cold
 * function), entered by a jump, with no frame of its own. */
int lpp_outer(int x)
{
	if (x < 0) {
		char c;

		lpp_note("outer: slow path\n");
		if (x == -1) {
			if (read(lpp_fd, &c, 1) != 1)
				lpp_note("outer: short read\n");
		} else {
			while (!__atomic_load_n(&lpp_go, __ATOMIC_ACQUIRE))
#if defined(__aarch64__)
				__asm__ volatile("yield");
#else
				__builtin_ia32_pause();
#endif
		}
		return lpp_inner(-x) + 10;
	}
	return lpp_inner(x) + 10;
}

/* Always called with k = 3: GCC makes lpp_scale.constprop.0(v). */
static __attribute__((noinline)) int lpp_scale(int v, int k)
{
	return v * k + 1;
}

int lpp_use_scale(int v)
{
	return lpp_scale(v, 3) + lpp_scale(v + 1, 3);
}

int lpp_f1(int x)
{
	return x + 1;
}

int lpp_f2(int x)
{
	return x + 2;
}

int lpp_f3(int x)
{
	return x + 3;
}

int lpp_refd(int x)
{
	return x;
}
