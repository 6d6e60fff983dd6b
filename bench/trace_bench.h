/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-trace: what recording an event costs the traced thread with
 * `rewire trace`'s built-in probe (src/ctl/trace.c, a real session with a
 * reader draining it), against LTTng-UST recording the same event in a
 * real session; and how many events per second a thread can send through
 * the default ring with no drops.
 *
 * The event of every comparison: four integers and a short string,
 *	(int op, long key, unsigned len, int status, const char *name)
 * fired as (i & 3, i, 120, 0, "GET").
 *
 * The loops are in trace_loops.c (one noinline function each, aligned to 64
 * bytes, as bench/tp_loops.c), so that the timer and callgrind's
 * --toggle-collect see exactly one loop; bench/trace_bench.c drives them.
 */
#ifndef REWIRE_BENCH_TRACE_BENCH_H
#define REWIRE_BENCH_TRACE_BENCH_H

#include <stdbool.h>

#include <rewire/rewire.h>

/* The same event four times, so that each has its own probe set-up. */
RW_DECLARE_TRACEPOINT(tb_ring, (int, op), (long, key), (unsigned, len),
		      (int, status), (const char *, name)); /* the session */
RW_DECLARE_TRACEPOINT(tb_off, (int, op), (long, key), (unsigned, len),
		      (int, status), (const char *, name)); /* no probe */
RW_DECLARE_TRACEPOINT(tb_typed, (int, op), (long, key), (unsigned, len),
		      (int, status), (const char *, name)); /* typed no-op */
RW_DECLARE_TRACEPOINT(tb_generic, (int, op), (long, key), (unsigned, len),
		      (int, status), (const char *, name)); /* generic no-op */
/* The 3-argument event of issue 15's target: (int, long, a short string),
 * fired as (i & 3, i, "GET"), in the session (tb_ring3: the session's
 * default writer) and in a session that takes the generic probe
 * (tb_ring3g), to compare the two record paths in one run. */
RW_DECLARE_TRACEPOINT(tb_ring3, (int, op), (long, key), (const char *, name));
RW_DECLARE_TRACEPOINT(tb_ring3g, (int, op), (long, key), (const char *, name));
/* The same, kept out by a filter (what a filtered-out event costs). */
RW_DECLARE_TRACEPOINT(tb_ring3f, (int, op), (long, key), (const char *, name));

/* Each returns an accumulator of n iterations. */
long tb_loop_plain(long n);
long tb_loop_off(long n);
long tb_loop_typed(long n);
long tb_loop_generic(long n);
long tb_loop_ring(long n);
long tb_loop_ring3(long n);
long tb_loop_ring3g(long n);
long tb_loop_ring3f(long n);
long tb_loop_lttng(long n);  /* only with TB_HAVE_LTTNG */
long tb_loop_lttng3(long n); /* only with TB_HAVE_LTTNG */

/* Whether the LTTng-UST events are enabled (a session records them). */
bool tb_lttng_enabled(void);

/* The no-op probes (trace_loops.c, so that they are real calls). */
void tb_probe_typed(void *data, int op, long key, unsigned len, int status,
		    const char *name);
struct rw_tracepoint;
union rw_tp_value;
void tb_probe_generic(void *data, const struct rw_tracepoint *tp,
		      const union rw_tp_value *args);

/* One event through tb_ring, for the paced producer. */
void tb_fire_ring(long i);

#endif /* REWIRE_BENCH_TRACE_BENCH_H */
