/* SPDX-License-Identifier: MIT */
/*
 * Instantiates the LTTng-UST provider of lttng_tp.h: the tracepoint
 * structures and their registration (LTTNG_UST_TRACEPOINT_DEFINE) and the
 * probes (LTTNG_UST_TRACEPOINT_CREATE_PROBES). Built only when pkg-config
 * finds lttng-ust (bench/CMakeLists.txt).
 */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "lttng_tp.h"
