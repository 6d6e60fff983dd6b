/* SPDX-License-Identifier: MIT */
/*
 * Private: the aggregates of `rewire funccount` and `rewire funclatency`
 * (src/ctl/agg.c), computed in the traced process: a probe of
 * rw_ftrace_attach() counts the calls of each function, or puts each
 * call's duration in a log2 histogram, with relaxed atomic adds on
 * counters of the session. The control server starts one per AGG_START
 * request and reads the counters (a snapshot, not atomic as a whole: each
 * counter is read once) on AGG_READ; the command prints the differences
 * between snapshots. Nothing is streamed, so nothing is ever dropped.
 *
 * Buckets: 0 holds durations of 0 ns, bucket b (1..64) those in
 * [2^(b-1), 2^b) ns.
 */
#ifndef REWIRE_CTL_AGG_H
#define REWIRE_CTL_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rw__agg;
struct rw_ftrace;
struct rw_ftrace_stats;

enum rw__agg_mode {
	RW__AGG_COUNT = 1,   /* calls per function (entry probe) */
	RW__AGG_LATENCY = 2, /* durations (graph probe) */
};

#define RW__AGG_BUCKETS 65

struct rw__agg_hist {
	uint64_t hits;
	uint64_t total_ns;		  /* RW__AGG_LATENCY */
	uint64_t bucket[RW__AGG_BUCKETS]; /* RW__AGG_LATENCY */
};

/*
 * rw__agg_start - attach the counting probe to the functions @patterns
 * select (rw_ftrace_attach()). @per_func: a histogram per function (else
 * one for all of them; calls and total time are kept per function
 * either way).
 *
 * Return: 0 and the session in @out; or rw_ftrace_attach()'s error with
 * rw_ftrace_last_error() in @err, -EINVAL (a bad mode), -ENOMEM.
 */
int rw__agg_start(const char *const *patterns, size_t npatterns,
		  enum rw__agg_mode mode, bool per_func, struct rw__agg **out,
		  char *err, size_t errlen);

const struct rw_ftrace *rw__agg_ftrace(const struct rw__agg *a);
size_t rw__agg_nfuncs(const struct rw__agg *a);
bool rw__agg_per_func(const struct rw__agg *a);

/* The totals of function @id, or of all functions together (hits and
 * total_ns summed; the shared histogram unless per_func) for @id SIZE_MAX. */
void rw__agg_read(const struct rw__agg *a, size_t id, struct rw__agg_hist *h);

/* rw_ftrace_get_stats() of the probe set; zeros once detached. */
void rw__agg_stats(const struct rw__agg *a, struct rw_ftrace_stats *s);

/* Detach the probe (the counters stay readable): 0 or rw_ftrace_detach()'s
 * error (the probe stays attached). */
int rw__agg_detach(struct rw__agg *a);

/* Detach if still attached and free. A probe set that cannot be detached
 * is kept with its counters (a probe may still run); NULL is a no-op. */
void rw__agg_stop(struct rw__agg *a);

#endif /* REWIRE_CTL_AGG_H */
