/* SPDX-License-Identifier: MIT */
/*
 * Part of test_trace_writer: a tracepoint defined as a program built with
 * the header before generated writers defines it (struct rw_tracepoint's
 * abi byte 0, which was padding after bool naive). Its recorder member is
 * set anyway, to a writer that records nothing and counts its calls: the
 * library must not read it, so a session records the tracepoint through
 * the generic probe and the count stays 0. tw_abi1 is a tracepoint of a
 * program built with the abi 1 header, whose writer used an older
 * interface of rw__trace_reserve(): recorded through the generic probe
 * too (its abi byte is set to 1 at setup).
 */
#define RW__TP_TEST_ABI0 1
#include <rewire/tracepoint.h>

#include <stddef.h>

#include "trace_writer.h"

RW_DEFINE_TRACEPOINT(tw_abi0, (int, a), (const char *, s));
RW_DEFINE_TRACEPOINT(tw_abi1, (int, a), (const char *, s));

int tw_abi0_recorder_calls;

static void abi0_recorder(void *data, int a, const char *s)
{
	(void)data;
	(void)a;
	(void)s;
	tw_abi0_recorder_calls++;
}

_Static_assert(offsetof(struct rw_tracepoint, recorder) >=
		       offsetof(struct rw_tracepoint, stub) + sizeof(void *),
	       "recorder follows the old layout's last member");

void tw_abi0_setup(void)
{
	rw__tp_tw_abi0.recorder = (void *)abi0_recorder;
	rw__tp_tw_abi1.abi = 1;
	rw__tp_tw_abi1.recorder = (void *)abi0_recorder;
}

unsigned tw_abi0_abi(void)
{
	return rw__tp_tw_abi0.abi;
}

void tw_abi0_fire(int a, const char *s)
{
	rw_trace_tw_abi0(a, s);
}

void tw_abi1_fire(int a, const char *s)
{
	rw_trace_tw_abi1(a, s);
}
