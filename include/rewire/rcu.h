/* SPDX-License-Identifier: MIT */
/*
 * rewire/rcu.h - read-copy-update for rewire and its users.
 *
 * Overview
 *
 * rewire frees old tracepoint arrays, old bound stubs and unregistered
 * providers only after every reader that could still see them has left its
 * read-side critical section. The RCU behind that is liburcu's "bulletproof"
 * flavour (urcu-bp): a thread registers itself on its first read-side
 * critical section and is unregistered when it exits, so readers in any
 * application thread, including threads that rewire never saw created, need
 * no set-up. Its read side is a thread-local load, a load of the global grace
 * period counter and a store (about 1 ns here); its grace periods use
 * membarrier() to order readers, so a grace period costs the writer tens of
 * microseconds and the readers nothing.
 *
 * Two read sides, one set of grace periods. Tracepoint sites and provider
 * reads use rewire's own read side instead (rewire/readside.h: a per-thread
 * counter, 5 or 6 instructions, grace periods driven by membarrier(); not an
 * API). Every grace period of this header covers both: rw_rcu_synchronize()
 * returns, an rw_rcu_call() callback runs, and a polled cookie completes
 * only after every read-side critical section of either kind that began
 * before has ended. rw_rcu_read_lock() remains liburcu's.
 *
 * On top of synchronize and call, this header gives the polled grace-period
 * API of the kernel (get_state_synchronize_rcu(), poll_state_synchronize_rcu(),
 * cond_synchronize_rcu()): take a cookie, do other work, and wait only if a
 * full grace period has not already passed since. liburcu 0.14 and later
 * provide it (urcu_bp_start_poll_synchronize_rcu()) and rewire uses theirs;
 * on older liburcu (Debian 12 ships 0.13) rewire builds the same semantics
 * from a counter advanced by call_rcu() callbacks (src/rcu.c, step by step).
 *
 * Usage
 *
 *	// reader, in any thread, async-signal-safe
 *	rw_rcu_read_lock();
 *	struct cfg *c = rw_rcu_dereference(current_cfg);
 *	use(c);
 *	rw_rcu_read_unlock();
 *
 *	// writer
 *	struct cfg *old = current_cfg;
 *	rw_rcu_assign_pointer(current_cfg, new_cfg);
 *	rw_rcu_cookie cookie = rw_rcu_get_state();
 *	do_other_work();
 *	rw_rcu_cond_synchronize(cookie);	// often returns at once
 *	free(old);
 *
 * Caveats
 *
 * - Read-side critical sections nest and may be entered from signal
 *   handlers; they must not call rw_rcu_synchronize() or anything else that
 *   waits for a grace period (that would wait for itself).
 * - The read-side fast path is liburcu's own inline code (its static header,
 *   a handful of lines, used as the LGPL allows); programs that include this
 *   header link liburcu-bp, which pkg-config and the CMake package add.
 *   Define RW_RCU_NO_INLINE before including to call liburcu's exported
 *   functions instead; do so under UBSan (-fsanitize=alignment): liburcu
 *   0.13 allocates its reader records less aligned than their type says,
 *   and the inline code would trip the check.
 * - On architectures without a cycle counter of liburcu's own (aarch64),
 *   liburcu's headers call clock_gettime(CLOCK_MONOTONIC): a program built
 *   with a strict standard (-std=c11, not gnu11) defines _POSIX_C_SOURCE
 *   (200809L) before including this header there.
 * - Callbacks queued with rw_rcu_call() run on liburcu's call_rcu thread.
 *   rewire installs the atfork handlers liburcu asks for, so a child of fork()
 *   can go on using RCU.
 */
#ifndef REWIRE_RCU_H
#define REWIRE_RCU_H

#include <stdbool.h>

#include <rewire/common.h>

#include <urcu/urcu-bp.h>
#ifndef RW_RCU_NO_INLINE
#include <urcu/static/urcu-bp.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ThreadSanitizer cannot see liburcu's ordering (liburcu is not built with
 * it): every read-side exit is a release on one address and the end of every
 * grace period an acquire on it, which is the happens-before RCU gives.
 */
#ifdef RW_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char rw__rcu_tsan_sync;
#define RW__RCU_RELEASE() __tsan_release(&rw__rcu_tsan_sync)
#else
#define RW__RCU_RELEASE() ((void)0)
#endif

/**
 * rw_rcu_read_lock - enter a read-side critical section.
 *
 * Registers the calling thread with liburcu on its first use. Nests.
 * Async-signal-safe once the thread is registered (its first call may
 * allocate; call rw_rcu_register_thread() early in a thread that will first
 * read from a signal handler). Gives no ordering by itself; pointers read
 * with rw_rcu_dereference() inside it stay valid until rw_rcu_read_unlock().
 */
static inline void rw_rcu_read_lock(void)
{
#ifdef RW_RCU_NO_INLINE
	urcu_bp_read_lock();
#else
	_urcu_bp_read_lock();
#endif
}

/**
 * rw_rcu_read_unlock - leave a read-side critical section.
 *
 * Everything read inside the section happens before the end of any grace
 * period that the section overlapped.
 */
static inline void rw_rcu_read_unlock(void)
{
	RW__RCU_RELEASE();
#ifdef RW_RCU_NO_INLINE
	urcu_bp_read_unlock();
#else
	_urcu_bp_read_unlock();
#endif
}

/** rw_rcu_dereference - load an RCU-protected pointer (acquire). */
#define rw_rcu_dereference(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)

/**
 * rw_rcu_assign_pointer - publish an RCU-protected pointer (release):
 * a reader that sees @v sees everything written to *@v before.
 */
#define rw_rcu_assign_pointer(p, v) \
	__atomic_store_n(&(p), (v), __ATOMIC_RELEASE)

/**
 * rw_rcu_register_thread - register the calling thread now rather than on
 * its first read-side critical section. Never needed for correctness.
 */
RW_EXPORT void rw_rcu_register_thread(void);

/**
 * rw_rcu_synchronize - wait for a full grace period: every read-side
 * critical section that began before the call has ended when it returns.
 *
 * Covers liburcu's read side and rewire's own (rewire/readside.h): a
 * grace period of each, the second shared with concurrent callers.
 *
 * Must not be called inside a read-side critical section of either kind
 * (-EDEADLK would be the only honest answer, and liburcu cannot tell; rewire
 * checks the calling thread's nesting and returns that error). Sleeps; not
 * async-signal-safe.
 *
 * Return: 0, or -EDEADLK when called inside a read-side critical section.
 */
RW_EXPORT int rw_rcu_synchronize(void);

/**
 * struct rw_rcu_head - embed in an object to free it with rw_rcu_call().
 */
struct rw_rcu_head {
	struct rcu_head urcu;
	void (*fn)(struct rw_rcu_head *head);
	unsigned long rs; /* cookie of rewire's own read side (private) */
};

/**
 * rw_rcu_call - run @fn(@head) after a grace period, on liburcu's call_rcu
 * thread. Never blocks; callable inside read-side critical sections.
 * @fn must not block for long: other callbacks wait behind it.
 */
RW_EXPORT void rw_rcu_call(struct rw_rcu_head *head,
			   void (*fn)(struct rw_rcu_head *head));

/**
 * rw_rcu_barrier - wait until every callback queued with rw_rcu_call()
 * before this call has run. Same restrictions as rw_rcu_synchronize().
 *
 * Return: 0 or -EDEADLK.
 */
RW_EXPORT int rw_rcu_barrier(void);

/*
 * Polled grace periods.
 *
 * A cookie names a grace period that begins no earlier than the
 * rw_rcu_get_state() call that returned it. Cookies from one process are
 * ordered; a zero-initialized cookie is always complete.
 */
typedef struct {
	unsigned long seq; /* liburcu's grace periods */
	unsigned long rs;  /* rewire's own read side's (rewire/readside.h) */
} rw_rcu_cookie;

/**
 * rw_rcu_get_state - take a cookie for a grace period that begins now or
 * later, and make sure that grace period is started (the kernel's
 * start_poll_synchronize_rcu(); its get_state_synchronize_rcu() relies on
 * someone else starting one, which user space cannot assume).
 *
 * Never blocks; allocates nothing; not async-signal-safe (takes a mutex).
 */
RW_EXPORT rw_rcu_cookie rw_rcu_get_state(void);

/**
 * rw_rcu_poll_state - has a full grace period passed since @cookie was
 * taken? When it returns true, every read-side critical section that began
 * before the rw_rcu_get_state() call has ended, with the ordering of a
 * rw_rcu_synchronize() spanning the two calls. A false answer may be stale.
 * Never blocks; async-signal-safe (two atomic loads).
 */
RW_EXPORT bool rw_rcu_poll_state(rw_rcu_cookie cookie);

/**
 * rw_rcu_cond_synchronize - wait for a grace period only if one has not
 * already passed since @cookie was taken.
 *
 * Return: 0, or -EDEADLK when it would have to wait from inside a read-side
 * critical section.
 */
RW_EXPORT int rw_rcu_cond_synchronize(rw_rcu_cookie cookie);

/**
 * rw_rcu_poll_impl - which polled grace-period implementation runs:
 * "liburcu" (liburcu 0.14 or later) or "counter" (rewire's, built on
 * call_rcu()). REWIRE_RCU_POLL=counter in the environment selects rewire's
 * even where liburcu has its own, so that both can be tested.
 */
RW_EXPORT const char *rw_rcu_poll_impl(void);

#ifdef __cplusplus
}
#endif

#endif /* REWIRE_RCU_H */
