/* SPDX-License-Identifier: MIT */
/*
 * probes_cxx.c - bptxx's probes (bpt.h): its C++ code, through the
 * extern "C" functions of meter.cc.
 */
#include "bpt.h"

long cxx_method(long x);
long cxx_tpl_long(long x);
long cxx_tpl_int(long x);

const struct bpt_probe bpt_probes[] = {
	{ "method", cxx_method, 11001 },
	{ "tpl_long", cxx_tpl_long, 12001 },
	{ "tpl_int", cxx_tpl_int, 13001 },
};
const size_t bpt_nprobes = sizeof(bpt_probes) / sizeof(bpt_probes[0]);

void bpt_init(void)
{
}

int bpt_final_check(const unsigned long *calls, char *msg, size_t len)
{
	(void)calls;
	(void)msg;
	(void)len;
	return 0;
}
