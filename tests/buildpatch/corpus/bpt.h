/* SPDX-License-Identifier: MIT */
/*
 * bpt.h - the probes the build-patch corpus programs expose to their
 * oracle (main.c). Each program (bpt: probes.c, bptxx: probes_cxx.c)
 * defines the table; no diff of the corpus touches main.c, the probe
 * tables or this file.
 *
 * A probe returns a number that says, digit by digit, which version of
 * each function on its call chain ran (1: as built, 2: as the case's diff
 * makes it; see calc.h). A thread that mixes an old and a new function
 * of one patch gets a number that is neither the old nor the new value.
 */
#ifndef BPT_H
#define BPT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bpt_probe {
	const char *name;
	long (*fn)(long x);
	long old; /* what it returns as built */
};

extern const struct bpt_probe bpt_probes[];
extern const size_t bpt_nprobes;

/* Once, before the threads start. */
void bpt_init(void);

/* At the end, with the number of calls of each probe: 0, or -1 with a
 * sentence in @msg (state the probes keep that does not add up). */
int bpt_final_check(const unsigned long *calls, char *msg, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* BPT_H */
