/* SPDX-License-Identifier: MIT */
/*
 * The LTTng-UST 2.13 tracepoint provider of rw-bench-tp: one event,
 * tpb_lttng:tick, with the same two arguments as the rewire tracepoints.
 * lttng_tp.c instantiates it (LTTNG_UST_TRACEPOINT_DEFINE and
 * LTTNG_UST_TRACEPOINT_CREATE_PROBES); tp_loops.c only fires it. No
 * session is ever created, so the event stays disabled: its site is a load
 * of the event's state and a test.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER tpb_lttng

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./lttng_tp.h"

#if !defined(REWIRE_BENCH_LTTNG_TP_H) || \
	defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define REWIRE_BENCH_LTTNG_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(
	tpb_lttng, tick, LTTNG_UST_TP_ARGS(long, a, long, b),
	LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(long, a, a)
				    lttng_ust_field_integer(long, b, b)))

#endif /* REWIRE_BENCH_LTTNG_TP_H */

#include <lttng/tracepoint-event.h>
