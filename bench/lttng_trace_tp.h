/* SPDX-License-Identifier: MIT */
/*
 * The LTTng-UST 2.13 provider of rw-bench-trace: two events, rwb_trace:req
 * and rwb_trace:req3, with the same arguments and fields as the rewire
 * tracepoints of trace_bench.h (four integers and a string; two integers
 * and a string). lttng_trace_tp.c instantiates it; trace_loops.c fires
 * them. Unlike rw-bench-tp's provider, this one is meant to be recorded:
 * bench/lttng_session.sh runs rw-bench-trace inside an LTTng session that
 * enables rwb_trace:*.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER rwb_trace

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./lttng_trace_tp.h"

#if !defined(REWIRE_BENCH_LTTNG_TRACE_TP_H) || \
	defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define REWIRE_BENCH_LTTNG_TRACE_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(
	rwb_trace, req,
	LTTNG_UST_TP_ARGS(int, op, long, key, unsigned, len, int, status,
			  const char *, name),
	LTTNG_UST_TP_FIELDS(
		lttng_ust_field_integer(int, op,
					op) lttng_ust_field_integer(long, key,
								    key)
			lttng_ust_field_integer(unsigned int, len, len)
				lttng_ust_field_integer(int, status, status)
					lttng_ust_field_string(name, name)))

/* The 3-argument event (int, long, a short string). */
LTTNG_UST_TRACEPOINT_EVENT(
	rwb_trace, req3,
	LTTNG_UST_TP_ARGS(int, op, long, key, const char *, name),
	LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(int, op, op)
				    lttng_ust_field_integer(long, key, key)
					    lttng_ust_field_string(name, name)))

#endif /* REWIRE_BENCH_LTTNG_TRACE_TP_H */

#include <lttng/tracepoint-event.h>
