/* SPDX-License-Identifier: MIT */
/*
 * ftc_dl.so: dlopen'ed and dlclose'd by test_ftc_dlopen while functions
 * are traced (ftc.h). Built like libftc_lib.so.
 */
#include "ftc.h"

int ftc_dl_fn(int x)
{
	return 5 * x;
}

int ftc_dl_caller(int x)
{
	return ftc_dl_fn(x) + 1;
}
