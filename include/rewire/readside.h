/* SPDX-License-Identifier: MIT */
/*
 * rewire/readside.h - private: the floor's own RCU read side, used by
 * tracepoint sites (rewire/tracepoint.h) and provider reads
 * (rewire/provider.h). Not an API: the names are rw__ and may change.
 *
 * Why not liburcu's read side here: urcu-bp's inline lock and unlock are
 * about 20 instructions (the TLS reader pointer reloaded four times, the
 * registration test, the grace-period word, the membarrier flag), which is
 * twice what a trivial probe costs. This one is a per-thread nesting
 * counter in static TLS:
 *
 *	lock:	if (!self.registered) rw__rs_register();   (once per thread)
 *		self.nest++;	one instruction, a compiler barrier
 *	unlock:	self.nest--;	one instruction, a compiler barrier
 *
 * Five or six instructions in all on x86-64 (on aarch64 a load, an add and
 * a store each way, the last a store-release), no fence and
 * no atomic read-modify-write:
 * grace periods (src/readside.c) pay instead, with
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which orders every running
 * thread's accesses as a full barrier would, and then wait until each
 * registered thread has been seen with nest == 0. The algorithm, its
 * proof obligations and its model are in src/readside.c and
 * src/readside.pml.
 *
 * Properties the callers rely on:
 * - Nests, and works in signal handlers: the increment and the decrement
 *   are done by the owning thread alone (one instruction on x86-64; a load
 *   and a store of the same thread elsewhere), and a handler that
 *   interrupts them leaves the count as it found it.
 * - A thread registers itself on its first lock (async-signal-safe: no
 *   allocation, signals blocked around the registry lock) and unregisters
 *   at thread exit.
 * - Objects freed after rw_rcu_synchronize(), rw_rcu_call() or a complete
 *   polled cookie (rewire/rcu.h) are not read by a section that began
 *   before: rewire/rcu.h's grace periods cover this read side as well as
 *   liburcu's.
 */
#ifndef REWIRE_READSIDE_H
#define REWIRE_READSIDE_H

#include <rewire/common.h>

RW_EXTERN_C_BEGIN

/*
 * One per thread, in static TLS. nest and registered are the fast path's;
 * the rest belongs to src/readside.c (the registry's links, the thread's
 * id, the grace period's marks) and is never touched by inline code.
 */
struct rw__rs_thread {
	unsigned long nest; /* depth of read-side sections; owner writes */
	unsigned char registered; /* owner only */
	unsigned char priv_flags[7];
	void *priv[4];
};

/* initial-exec: a TLS access is one %fs-relative instruction (aarch64: an
 * offset from TPIDR_EL0) from an executable or a library loaded with
 * librewire, never __tls_get_addr. */
RW_EXPORT extern __thread struct rw__rs_thread rw__rs_self
	__attribute__((tls_model("initial-exec")));

/* Slow path of the first lock of a thread: registers it. Async-signal-safe,
 * idempotent. */
RW_EXPORT void rw__rs_register(void);

#if defined(__x86_64__) && !defined(RW_TSAN)
#define RW__RS_ADD(insn) \
	__asm__ volatile(insn " %0" : "+m"(rw__rs_self.nest) : : "memory")
#define RW__RS_INC() RW__RS_ADD("incq")
#define RW__RS_DEC() RW__RS_ADD("decq")
#else
/* Elsewhere (aarch64 included), and under ThreadSanitizer: relaxed atomics
 * (a load and a store, still signal-safe: a handler restores the count),
 * the decrement a release so that TSan sees the section happen before the
 * grace period's acquire load of a zero count. On a weakly ordered machine
 * the release (STLR on aarch64) also keeps the section's loads before the
 * zero that a grace period may see; G5 of src/readside.c (membarrier after
 * the scan) gives that too, so either suffices. Entering needs no barrier
 * on any machine: G2's membarrier is a full barrier at one point of the
 * reader's program order, and the section's loads come after the
 * increment in that order; if the increment is before that point, G3 sees
 * it, else the loads see what the updater stored before G2. */
#define RW__RS_INC()                                                 \
	do {                                                         \
		__atomic_store_n(&rw__rs_self.nest,                  \
				 __atomic_load_n(&rw__rs_self.nest,  \
						 __ATOMIC_RELAXED) + \
					 1,                          \
				 __ATOMIC_RELAXED);                  \
		__atomic_signal_fence(__ATOMIC_SEQ_CST);             \
	} while (0)
#define RW__RS_DEC()                                                 \
	do {                                                         \
		__atomic_signal_fence(__ATOMIC_SEQ_CST);             \
		__atomic_store_n(&rw__rs_self.nest,                  \
				 __atomic_load_n(&rw__rs_self.nest,  \
						 __ATOMIC_RELAXED) - \
					 1,                          \
				 __ATOMIC_RELEASE);                  \
	} while (0)
#endif

/** rw__rs_lock - enter a read-side section of the floor's read side. */
static inline __attribute__((always_inline)) void rw__rs_lock(void)
{
	if (__builtin_expect(!rw__rs_self.registered, 0))
		rw__rs_register();
	RW__RS_INC();
}

/** rw__rs_unlock - leave it. */
static inline __attribute__((always_inline)) void rw__rs_unlock(void)
{
	RW__RS_DEC();
}

RW_EXTERN_C_END

#endif /* REWIRE_READSIDE_H */
