/* SPDX-License-Identifier: MIT */
/* test_trace_writer: the tracepoint of trace_writer_abi0.c (abi 0). */
#ifndef REWIRE_TEST_TRACE_WRITER_H
#define REWIRE_TEST_TRACE_WRITER_H

#include <rewire/tracepoint.h>

RW_DECLARE_TRACEPOINT(tw_abi0, (int, a), (const char *, s));
RW_DECLARE_TRACEPOINT(tw_abi1, (int, a), (const char *, s));

extern int tw_abi0_recorder_calls;
void tw_abi0_setup(void);
unsigned tw_abi0_abi(void);
void tw_abi0_fire(int a, const char *s);
void tw_abi1_fire(int a, const char *s);

#endif /* REWIRE_TEST_TRACE_WRITER_H */
