/* SPDX-License-Identifier: MIT */
/* libftb_plain.so: a library as most are built, without patchable entries. */
#include "ftb_plain.h"

int ftb_plain_fn(int x)
{
	return x * 4 + 1;
}
