/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the benchmark programs (bench/stats.c). */
#ifndef REWIRE_BENCH_STATS_H
#define REWIRE_BENCH_STATS_H

#include <stdint.h>

/* CLOCK_MONOTONIC and the calling thread's CPU time, in nanoseconds. */
uint64_t bench_now_ns(void);
uint64_t bench_thread_cpu_ns(void);

/* Sorts @v in place; returns the value at quantile @q (nearest rank). */
double bench_quantile(double *v, int n, double q);

/* The machine is shared: print /proc/loadavg, labelled @when. */
void bench_print_loadavg(const char *when);

#endif /* REWIRE_BENCH_STATS_H */
