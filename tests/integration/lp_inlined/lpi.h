/* SPDX-License-Identifier: MIT */
/* test_lp_inlined: what the test and its objects share. */
#ifndef LPI_H
#define LPI_H

/* In lpi_dso.c (built as lpi_dbg.so and lpi_nodbg.so). */
int lpi_dcaller(int x);
int lpi_dscale_call(int x);

#endif
