/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-tp: what a rewire tracepoint costs, off and on, against other
 * ways of instrumenting a loop, and how long attaching a probe takes.
 *
 * The loops live in tp_loops.c (one noinline function each, aligned to 64
 * bytes, so that the timer of tracepoint.c and callgrind's
 * --toggle-collect see exactly one loop); the probes live in
 * tracepoint_probes.c, a separate translation unit (no LTO), so that the
 * "direct" loops make a real call to the very function the tracepoint
 * calls. Every loop has the shape of bench/key_loops.h: one add to an
 * accumulator made opaque by an empty asm, then the site, with (i, n) as
 * the event's arguments.
 */
#ifndef REWIRE_BENCH_TP_H
#define REWIRE_BENCH_TP_H

#include <stdint.h>

#include <rewire/rewire.h>

/* Every tracepoint of the benchmark has the same two arguments. */
RW_DECLARE_TRACEPOINT(tpb_off, (long, a), (long, b));	/* never a probe */
RW_DECLARE_TRACEPOINT(tpb_one, (long, a), (long, b));	/* 1 counting */
RW_DECLARE_TRACEPOINT(tpb_three, (long, a), (long, b)); /* 3 counting */
RW_DECLARE_TRACEPOINT(tpb_ring1, (long, a), (long, b)); /* 1 ring buffer */
RW_DECLARE_TRACEPOINT(tpb_ring3, (long, a), (long, b)); /* 3 ring buffer */
RW_DECLARE_TRACEPOINT(tpb_reg, (long, a), (long, b));	/* register latency */

/* tracepoint_probes.c ---------------------------------------------------- */

/* A counter per probe, each on its own cache line. */
struct tpb_counter {
	long n;
} __attribute__((aligned(64)));
extern struct tpb_counter tpb_ctr[3];

/* The trivial probe: ++((struct tpb_counter *)data)->n. */
void tpb_probe_count(void *data, long a, long b);

/*
 * The realistic probe: appends (timestamp from rdtsc, a, b, data) to the
 * calling thread's ring buffer of TPB_RING_SIZE entries, overwriting the
 * oldest. tpb_ring_head() is how many events this thread has written.
 */
#define TPB_RING_SIZE 4096
struct tpb_event {
	uint64_t tsc;
	long a, b;
	const void *data;
};
void tpb_probe_ring(void *data, long a, long b);
unsigned long tpb_ring_head(void);
extern struct tpb_counter tpb_ring_id[3]; /* data of the ring probes */

/* For the register latency: a relaxed atomic increment, since several
 * threads fire tpb_reg at once. */
void tpb_probe_hits(void *data, long a, long b);

/* tp_loops.c --------------------------------------------------------------
 * Each returns the accumulator of n iterations.
 */

/* Off: nothing; a disabled rewire tracepoint; a disabled LTTng-UST
 * tracepoint; a USDT probe behind its semaphore. */
long tpb_loop_plain(long n);
long tpb_loop_rw_off(long n);
long tpb_loop_lttng(long n); /* only if TPB_HAVE_LTTNG */
long tpb_loop_usdt(long n);  /* only if TPB_HAVE_SDT */

/* On: the probes called directly against the tracepoint with them. */
long tpb_loop_direct1(long n);
long tpb_loop_tp1(long n);
/* tpb_one's site without its read-side section (unsafe against a
 * concurrent unregister; the benchmark has none): what the static key,
 * the trampoline and the bound stub cost by themselves. */
long tpb_loop_tp1_nors(long n);
long tpb_loop_direct3(long n);
long tpb_loop_tp3(long n);
long tpb_loop_direct1_ring(long n);
long tpb_loop_tp1_ring(long n);
long tpb_loop_direct3_ring(long n);
long tpb_loop_tp3_ring(long n);

/* n firings of tpb_reg, for the threads that keep it busy. */
long tpb_fire_reg(long n);

#endif /* REWIRE_BENCH_TP_H */
