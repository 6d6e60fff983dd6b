/* SPDX-License-Identifier: MIT */
/*
 * Shared by test_lp_fork_dlclose.c, its libraries and its patches
 * (test_lp_fork_dlclose.cmake builds every function below with a
 * patchable entry).
 *
 * In liblpf_lib.so, linked to the test:
 *   lpf_f(fd)  1   patch "fork_f": 2. With fd >= 0 the old function sets
 *                  lpf_f_inside and stays in a read() of one byte from fd
 *                  before it returns, so a thread can be held inside it.
 *   lpf_h()    10  patch "fork_h": 20 (the patch a thread keeps enabling
 *                  and disabling while the test forks)
 * In lpf_g.so, dlopen'ed by the test:
 *   lpf_g()    100 patch "fork_g" (names the object by base name): 200
 */
#ifndef LPF_H
#define LPF_H

#define LPF_F_OLD 1
#define LPF_F_NEW 2
#define LPF_H_OLD 10
#define LPF_H_NEW 20
#define LPF_G_OLD 100
#define LPF_G_NEW 200

/* Threads that entered the old lpf_f() with fd >= 0. */
extern _Atomic int lpf_f_inside;

int lpf_f(int fd);
int lpf_h(void);

#endif /* LPF_H */
