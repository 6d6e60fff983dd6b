/* SPDX-License-Identifier: MIT */
#include "eu.h"

int eu_other(int k)
{
	return 100 + k;
}
