/* SPDX-License-Identifier: MIT */
/*
 * Instantiates the LTTng-UST provider of lttng_trace_tp.h (the tracepoint
 * structures, their registration and the probes). Built only when
 * pkg-config finds lttng-ust (bench/CMakeLists.txt).
 */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "lttng_trace_tp.h"
