/* SPDX-License-Identifier: MIT */
/*
 * Shared by test_lp_stack.c, its library (lib.c: liblps_lib.so) and its
 * patches (patch_*.c). Every function below is built with a patchable
 * entry (test_lp_stack.cmake).
 *
 * In the test program:
 *   lps_f()  1   patch A: 2, patch B (on top of A): 3, patch R
 *                (replace = 1): 4
 *   lps_g()  10  patch C: 20
 *   lps_u()  1   patch "fail" (pre_patch refuses): 5
 *   lps_h()  1   patch "cb" (counting callbacks): 7; lps_h(1) waits in
 *                the function while lps_hold is set
 *   lps_k(x) x   patch "ref": adds x to the program's static "secret"
 *                and returns secret_fn(secret), secret_fn being a static
 *                function of the program
 * In liblps_lib.so:
 *   lps_lib_fn(x)  x + 100   patch "dso": x + 200
 */
#ifndef LPS_H
#define LPS_H

/* Callback calls of patch "cb" ([0] pre_patch, [1] post_patch,
 * [2] pre_unpatch, [3] post_unpatch) and of patch "fail". In the test
 * program; the patches reach them through RW_PATCH_REF. */
enum { LPS_PRE_PATCH, LPS_POST_PATCH, LPS_PRE_UNPATCH, LPS_POST_UNPATCH };

#define LPS_COUNT(calls, i) __atomic_add_fetch(&(calls)[i], 1, __ATOMIC_SEQ_CST)

/*
 * In a patch: pre_patch, post_patch, pre_unpatch and post_unpatch, each
 * counting its calls in @calls (an int * the patch points at the program's
 * array); pre_patch returns @pre_ret. For .callbacks = LPS_CALLBACKS.
 */
#define LPS_COUNTING_CALLBACKS(calls, pre_ret)      \
	static int pre_patch(void)                  \
	{                                           \
		LPS_COUNT(calls, LPS_PRE_PATCH);    \
		return pre_ret;                     \
	}                                           \
	static void post_patch(void)                \
	{                                           \
		LPS_COUNT(calls, LPS_POST_PATCH);   \
	}                                           \
	static void pre_unpatch(void)               \
	{                                           \
		LPS_COUNT(calls, LPS_PRE_UNPATCH);  \
	}                                           \
	static void post_unpatch(void)              \
	{                                           \
		LPS_COUNT(calls, LPS_POST_UNPATCH); \
	}

#define LPS_CALLBACKS                                            \
	{                                                        \
		pre_patch, post_patch, pre_unpatch, post_unpatch \
	}

int lps_lib_fn(int x);

#endif /* LPS_H */
