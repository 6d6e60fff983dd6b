/* SPDX-License-Identifier: MIT */
/*
 * test_lp_badinput: a small patchable object; the test loads a stripped
 * copy (lpb_dso_stripped.so) and a patch that names its function must be
 * refused with RW_ERR_STRIPPED.
 */
int lpb_dso_func(int x);

__attribute__((noinline)) int lpb_dso_func(int x)
{
	return x ^ 0x55;
}
