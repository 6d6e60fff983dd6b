/* SPDX-License-Identifier: MIT */
/*
 * Private: the control server's patch directory (rewire/ctl.h,
 * rw_ctl_start_opts): the patches a process applies to itself when its
 * server starts, so that a restarted program is patched again before it
 * serves. Never installed.
 */
#ifndef REWIRE_CTL_PATCHDIR_H
#define REWIRE_CTL_PATCHDIR_H

#include <stdbool.h>
#include <stddef.h>

/* How long the application of one patch waits for its transition to
 * complete before it leaves it to the control thread (and says so). */
#define RW_PATCHDIR_WAIT_MS 2000

/*
 * @dir as an absolute path into @out: realpath() when it exists, else
 * joined to the working directory. 0, -ENAMETOOLONG, or -errno of
 * getcwd().
 */
int rw__patchdir_resolve(const char *dir, char *out, size_t size);

/*
 * Apply the patch directory @dir (absolute): see rewire/ctl.h for the
 * rules. @before_main: called from librewire's constructor (REWIRE_CTL=1),
 * where the calling thread has no function of the program on its stack. Every failure is written to standard error, one line each,
 * "rewire: [PID] patch dir DIR: ...", and none stops the others. Returns
 * how many patches were enabled. Takes the live patch lock (through
 * rw_patch_*); call it with no rewire lock held but the control lock.
 */
int rw__patchdir_apply(const char *dir, bool before_main);

#endif /* REWIRE_CTL_PATCHDIR_H */
