/* SPDX-License-Identifier: MIT */
/* test_privdrop: what pd_compute() returns before and after the patch. */
#ifndef PD_H
#define PD_H

#define PD_OLD(x) ((x)*31 + 7)
#define PD_NEW(x) ((x)*37 + 11)

#endif
