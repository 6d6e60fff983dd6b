/* SPDX-License-Identifier: MIT */
/* A shared object that defines a tracepoint and fires it: dlopen()ed by
 * test_tracepoint, which finds the tracepoint by name and attaches a probe
 * (its bound stub must be placed within reach of this object's trampoline,
 * wherever the loader put it). */
#include <rewire/tracepoint.h>

#define EXPORT __attribute__((visibility("default")))

RW_DECLARE_TRACEPOINT(dso_event, (int, value), (const char *, where));
RW_DEFINE_TRACEPOINT(dso_event, (int, value), (const char *, where));

EXPORT void dso_tp_fire(int value);

void dso_tp_fire(int value)
{
	rw_trace_dso_event(value, "dso");
}
