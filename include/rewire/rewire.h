/* SPDX-License-Identifier: MIT */
/*
 * rewire/rewire.h - everything rewire offers, in one include.
 *
 *	rewire/common.h		errors, version, backend selection
 *	rewire/text_poke.h	batched, int3-protected code patching
 *	rewire/threads.h	thread walker and cross-thread calls
 *	rewire/static_key.h	NOP/jmp branches flipped at run time
 *	rewire/static_call.h	direct calls retargeted at run time
 *	rewire/rcu.h		RCU, the read side inline
 *	rewire/tracepoint.h	tracepoints and their probes
 *	rewire/provider.h	RCU-published providers
 *	rewire/livepatch.h	live patches, per-thread consistency
 *	rewire/ctl.h		the control socket for the rewire command
 */
#ifndef REWIRE_REWIRE_H
#define REWIRE_REWIRE_H

#include <rewire/common.h>
#include <rewire/text_poke.h>
#include <rewire/threads.h>
#include <rewire/static_key.h>
#include <rewire/static_call.h>
#include <rewire/rcu.h>
#include <rewire/tracepoint.h>
#include <rewire/provider.h>
#include <rewire/livepatch.h>
#include <rewire/ftrace.h>
#include <rewire/ctl.h>

#endif /* REWIRE_REWIRE_H */
