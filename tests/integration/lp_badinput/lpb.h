/* SPDX-License-Identifier: MIT */
/* test_lp_badinput: what the test's two source files share. */
#ifndef LPB_H
#define LPB_H

#include <stdint.h>

uintptr_t lpb_helper2_addr(void);
int lpb_helper2_call(int x);

#endif
