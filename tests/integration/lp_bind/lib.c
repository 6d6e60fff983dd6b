/* SPDX-License-Identifier: MIT */
/* test_lp_bind: a library that no program of the test loads. */
int lpbd_lib_func(int x);
int lpbd_lib_func(int x)
{
	return x + 1;
}
