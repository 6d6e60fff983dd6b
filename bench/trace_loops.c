/* SPDX-License-Identifier: MIT */
/*
 * The measured loops of rw-bench-trace, the definitions of its rewire
 * tracepoints and its no-op probes. Compiled with -falign-loops=64
 * (bench/CMakeLists.txt), like bench/tp_loops.c.
 *
 * Every loop fires the event (i & 3, i, 120, 0, "GET") once per
 * iteration:
 *	plain	nothing (the loop alone)
 *	off	rw_trace_tb_off(): no probe, the 5-byte NOP
 *	typed	rw_trace_tb_typed(): a typed probe that returns at once
 *	generic	rw_trace_tb_generic(): a generic probe that returns at once
 *		(the typed site, plus the adapter that packs the five
 *		arguments into union rw_tp_value and calls through the
 *		binding)
 *	ring	rw_trace_tb_ring(): the `rewire trace` probe of a session
 *	lttng	lttng_ust_tracepoint(rwb_trace, req, ...): recorded by an
 *		LTTng session if one is enabled (bench/lttng_session.sh)
 *
 * and the 3-argument event (i & 3, i, "GET"):
 *	ring3	rw_trace_tb_ring3(): the session's own record path
 *	ring3g	rw_trace_tb_ring3g(): the generic probe of a session
 *	ring3f	rw_trace_tb_ring3f(): a session whose filter keeps it out
 *	lttng3	lttng_ust_tracepoint(rwb_trace, req3, ...)
 */
#include "trace_bench.h"

#ifdef TB_HAVE_LTTNG
#include "lttng_trace_tp.h"
#endif

RW_DEFINE_TRACEPOINT(tb_ring, (int, op), (long, key), (unsigned, len),
		     (int, status), (const char *, name));
RW_DEFINE_TRACEPOINT(tb_off, (int, op), (long, key), (unsigned, len),
		     (int, status), (const char *, name));
RW_DEFINE_TRACEPOINT(tb_typed, (int, op), (long, key), (unsigned, len),
		     (int, status), (const char *, name));
RW_DEFINE_TRACEPOINT(tb_generic, (int, op), (long, key), (unsigned, len),
		     (int, status), (const char *, name));
RW_DEFINE_TRACEPOINT(tb_ring3, (int, op), (long, key), (const char *, name));
RW_DEFINE_TRACEPOINT(tb_ring3g, (int, op), (long, key), (const char *, name));
RW_DEFINE_TRACEPOINT(tb_ring3f, (int, op), (long, key), (const char *, name));

#define TB_LOOP(name, SITE)                                   \
	__attribute__((noinline)) long tb_loop_##name(long n) \
	{                                                     \
		long acc = 0;                                 \
                                                              \
		for (long i = 0; i < n; i++) {                \
			acc += i;                             \
			__asm__ volatile("" : "+r"(acc));     \
			SITE;                                 \
		}                                             \
		return acc;                                   \
	}

TB_LOOP(plain, (void)0)
TB_LOOP(off, rw_trace_tb_off((int)(i & 3), i, 120, 0, "GET"))
TB_LOOP(typed, rw_trace_tb_typed((int)(i & 3), i, 120, 0, "GET"))
TB_LOOP(generic, rw_trace_tb_generic((int)(i & 3), i, 120, 0, "GET"))
TB_LOOP(ring, rw_trace_tb_ring((int)(i & 3), i, 120, 0, "GET"))
TB_LOOP(ring3, rw_trace_tb_ring3((int)(i & 3), i, "GET"))
TB_LOOP(ring3g, rw_trace_tb_ring3g((int)(i & 3), i, "GET"))
TB_LOOP(ring3f, rw_trace_tb_ring3f((int)(i & 3), i, "GET"))

#ifdef TB_HAVE_LTTNG
TB_LOOP(lttng,
	lttng_ust_tracepoint(rwb_trace, req, (int)(i & 3), i, 120, 0, "GET"))
TB_LOOP(lttng3, lttng_ust_tracepoint(rwb_trace, req3, (int)(i & 3), i, "GET"))

bool tb_lttng_enabled(void)
{
	return lttng_ust_tracepoint_enabled(rwb_trace, req);
}
#else
bool tb_lttng_enabled(void)
{
	return false;
}
#endif

__attribute__((noinline)) void tb_fire_ring(long i)
{
	rw_trace_tb_ring((int)(i & 3), i, 120, 0, "GET");
}

__attribute__((noinline)) void tb_probe_typed(void *data, int op, long key,
					      unsigned len, int status,
					      const char *name)
{
	(void)data;
	(void)op;
	(void)key;
	(void)len;
	(void)status;
	(void)name;
}

__attribute__((noinline)) void tb_probe_generic(void *data,
						const struct rw_tracepoint *tp,
						const union rw_tp_value *args)
{
	(void)data;
	(void)tp;
	(void)args;
}
