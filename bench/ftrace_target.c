/* SPDX-License-Identifier: MIT */
/*
 * The functions rw-bench-ftrace calls (see ftrace_bench.h), in the program
 * itself like rw-bench-tp's tracepoints. Built with Debian's flags and
 * rewire_target_patchable() (bench/CMakeLists.txt): every entry is one
 * 5-byte NOP, but fb_plain's, which has none. noipa keeps GCC from merging
 * the identical bodies or knowing anything about them.
 */
/*
 * librwbench_ftrace_target.so: the functions rw-bench-ftrace calls (see
 * ftrace_bench.h), in the program. Built with Debian's flags and
 * rewire_target_patchable()
 * (bench/CMakeLists.txt): every entry is one 5-byte NOP, but fb_plain's,
 * which has none. noipa keeps GCC from merging the identical bodies or
 * knowing anything about them.
 */
#include "ftrace_bench.h"

RW_DEFINE_TRACEPOINT(fb_ev_off, (unsigned long, fn), (unsigned long, caller));
RW_DEFINE_TRACEPOINT(fb_ev_nop, (unsigned long, fn), (unsigned long, caller));
RW_DEFINE_TRACEPOINT(fb_ev_rec, (unsigned long, fn), (unsigned long, caller));
RW_DEFINE_TRACEPOINT(fb_ev_ring, (unsigned long, fn), (unsigned long, caller));

__attribute__((noipa, patchable_function_entry(0, 0))) long fb_plain(long x)
{
	return fb_body(x);
}

#define FB_FUNC(v)                                 \
	__attribute__((noipa)) long fb_##v(long x) \
	{                                          \
		return fb_body(x);                 \
	}
FB_FUNC(never)
FB_FUNC(detached)
FB_FUNC(entry_nop)
FB_FUNC(entry_rec)
FB_FUNC(entry_ring)
FB_FUNC(graph_nop)
FB_FUNC(graph_rec)
FB_FUNC(graph_ret)
FB_FUNC(graph_ring)

/* An annotated function: the event (the function, its caller) first. */
#define FB_TP_FUNC(v)                                                \
	__attribute__((noipa)) long fb_tp_##v(long x)                \
	{                                                            \
		rw_trace_fb_ev_##v(                                  \
			(unsigned long)fb_tp_##v,                    \
			(unsigned long)__builtin_return_address(0)); \
		return fb_body(x);                                   \
	}
FB_TP_FUNC(off)
FB_TP_FUNC(nop)
FB_TP_FUNC(rec)
FB_TP_FUNC(ring)
