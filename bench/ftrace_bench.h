/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-ftrace (bench/ftrace_bench.c): what function tracing
 * (rewire/ftrace.h) costs a call of a traced function, off, on and in
 * graph mode, side by side with rewire's tracepoints; and how long
 * attaching and detaching thousands of functions takes.
 *
 * Every measured function has the same body, (x >> 3) ^ x, and lives in
 * ftrace_target.c, in the program, built the way Debian builds a package
 * (dpkg-buildflags: -O2, -fstack-protector-strong, -D_FORTIFY_SOURCE=2)
 * with rewire_target_patchable(), so that every entry is one 5-byte NOP. Each variant has a function of its own, so that the
 * probes of one never run in another's loop:
 *   fb_plain        no patchable entry: the body alone
 *   fb_never        never traced: the body and its NOP
 *   fb_detached     traced, then detached before the loop runs
 *   fb_tp_*         an annotated function: a tracepoint at its start,
 *                   fired as (the function, its caller), then the body
 *   fb_entry_*      traced by rw_ftrace_attach() with an entry probe
 *   fb_graph_*      traced with an entry and a return probe
 * The probes (ftrace_probes.c) are no-ops ("nop") or write a 32-byte
 * record into the calling thread's buffer ("rec"): the tracepoint's and
 * the function entry's do the same work, so the ratio of their loops is
 * the ratio of the two mechanisms. "ring" is a real `rewire trace`
 * session on the process (the rewire command, connected to the control
 * server): its probe writes a record per event (tracepoint: a 16-byte
 * header and the two arguments; function: what src/ctl/ring.h says) into
 * a ring shared with the command, which formats it to /dev/null.
 */
#ifndef REWIRE_BENCH_FTRACE_H
#define REWIRE_BENCH_FTRACE_H

#include <stddef.h>
#include <stdint.h>

#include <rewire/ftrace.h>
#include <rewire/rewire.h>

typedef long fb_fn(long x);

/* The body of every measured function, for the checks. */
static inline long fb_body(long x)
{
	return (x >> 3) ^ x;
}

/* Tracepoints of the fb_tp_* functions: (the function, its caller). */
RW_DECLARE_TRACEPOINT(fb_ev_off, (unsigned long, fn), (unsigned long, caller));
RW_DECLARE_TRACEPOINT(fb_ev_nop, (unsigned long, fn), (unsigned long, caller));
RW_DECLARE_TRACEPOINT(fb_ev_rec, (unsigned long, fn), (unsigned long, caller));
RW_DECLARE_TRACEPOINT(fb_ev_ring, (unsigned long, fn), (unsigned long, caller));

/*
 * The variants: X(name, label). Each has a function fb_<name> in
 * ftrace_target.c and a loop fb_loop_<name> in ftrace_loops.c (identical
 * loops: n indirect calls of fn(i), summed), so that callgrind's
 * --toggle-collect=fb_loop_<name> counts exactly one of them.
 */
#define FB_VARIANTS(X)                                      \
	X(plain, "no patchable entry")                      \
	X(never, "patchable, never traced")                 \
	X(detached, "patchable, attached then detached")    \
	X(tp_off, "tracepoint, no probe")                   \
	X(tp_nop, "tracepoint, no-op probe")                \
	X(tp_rec, "tracepoint, record probe")               \
	X(tp_ring, "tracepoint, rewire trace session")      \
	X(entry_ring, "ftrace entry, rewire trace session") \
	X(entry_nop, "ftrace entry, no-op probe")           \
	X(entry_rec, "ftrace entry, record probe")          \
	X(graph_nop, "ftrace graph, no-op entry+return")    \
	X(graph_rec, "ftrace graph, record entry+return")   \
	X(graph_ret, "ftrace graph, record on return only") \
	X(graph_ring, "ftrace graph, rewire trace session")

#define FB_DECLARE(v, label) \
	long fb_##v(long x); \
	long fb_loop_##v(fb_fn *fn, long n);
FB_VARIANTS(FB_DECLARE)
#undef FB_DECLARE

/* ftrace_probes.c ---------------------------------------------------------- */

/* A record of the "rec" probes: 32 bytes, like the session's. */
struct fb_rec {
	uint64_t tsc;
	uint64_t fn;
	uint64_t caller;
	uint64_t extra; /* the probe's data, the depth or the duration */
};
#define FB_RING_RECS 4096 /* per thread, overwritten in turn */

/* How many records the calling thread has written. */
unsigned long fb_rec_count(void);

void fb_entry_nop_probe(void *data, const struct rw_ftrace_func *f,
			uintptr_t caller, unsigned depth);
void fb_entry_rec_probe(void *data, const struct rw_ftrace_func *f,
			uintptr_t caller, unsigned depth);
void fb_ret_nop_probe(void *data, const struct rw_ftrace_func *f,
		      uintptr_t caller, uint64_t ns, unsigned depth);
void fb_ret_rec_probe(void *data, const struct rw_ftrace_func *f,
		      uintptr_t caller, uint64_t ns, unsigned depth);
void fb_tp_nop_probe(void *data, unsigned long fn, unsigned long caller);
void fb_tp_rec_probe(void *data, unsigned long fn, unsigned long caller);

/* ftrace_many.c (generated: librwbench_ftrace_many.so) --------------------- */

/* FB_MANY functions fbm_00000 .. fbm_<FB_MANY - 1>, distinct, patchable. */
#define FB_MANY 10000
extern fb_fn *const fbm_table[FB_MANY];

#endif /* REWIRE_BENCH_FTRACE_H */
