/* SPDX-License-Identifier: MIT */
/*
 * RCU: liburcu's bulletproof flavour, plus the polled grace-period API.
 *
 * The polled API on liburcu 0.13 ("counter"): a grace-period number advanced
 * by call_rcu() callbacks, with at most one callback in flight.
 *
 *   1. rw_rcu_get_state() hands out the number of the next callback to be
 *      queued, `next`. If none is in flight it queues that callback now;
 *      otherwise it records the number in `wanted`, and the callback in
 *      flight queues the next one when it runs. Either way the callback
 *      numbered by the cookie is queued at or after the get_state call.
 *   2. liburcu runs a callback only after a grace period that began after it
 *      was queued, so by the time callback n runs, a full grace period has
 *      passed since every cookie n was handed out.
 *   3. Callback n raises `done` to n with release semantics (so does
 *      rw_rcu_synchronize(), to the highest cookie handed out before its
 *      grace period began);
 *      rw_rcu_poll_state(c) is `done >= c`, read with acquire semantics,
 *      followed by a full fence (the ordering of synchronize_rcu()).
 *
 * Cookies are 1, 2, ...; a zero cookie is always complete. With liburcu's
 * own API (0.14 and later) a cookie is its grace-period id plus one.
 *
 * The floor's own read side (src/readside.c: tracepoint sites, provider
 * reads) has its own grace periods, and everything here waits for both:
 *   - rw_rcu_synchronize() runs liburcu's grace period, then one of the
 *     floor's (rw__rs_synchronize(), shared with concurrent callers);
 *   - rw_rcu_call() records a cookie of the floor's read side in the head;
 *     the trampoline, on the call_rcu thread, runs rw__rs_synchronize()
 *     only if that cookie is not complete yet, so one grace period covers
 *     every callback of a batch queued before it began;
 *   - a polled cookie has both halves (seq: liburcu's, rs: the floor's);
 *     rw_rcu_get_state() makes sure a grace period of the floor's read
 *     side will run (a callback on the call_rcu thread, at most one in
 *     flight, runs them until the highest cookie handed out is complete),
 *     and rw_rcu_poll_state() is true when both halves are.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* After rewire/rcu.h: urcu-bp's name map turns call-rcu.h's declarations
 * into the urcu_bp_* symbols. */
#include <rewire/rcu.h>

#include <urcu/call-rcu.h>

#if defined(RW_HAVE_URCU_POLL)
#include <urcu/urcu-poll.h>
#endif

/* Exported because user code's inline read side releases on it. */
RW_EXPORT char rw__rcu_tsan_sync;

/* TSan cannot see liburcu's queues: hand-off of a callback is annotated,
 * and so is the end of a grace period (rewire/rcu.h). */
#if defined(RW_TSAN)
#define TSAN_ACQUIRE() __tsan_acquire(&rw__rcu_tsan_sync)
#define TSAN_HANDOFF(p) __tsan_release(p)
#define TSAN_TAKEOVER(p) __tsan_acquire(p)
#else
#define TSAN_ACQUIRE() ((void)0)
#define TSAN_HANDOFF(p) ((void)(p))
#define TSAN_TAKEOVER(p) ((void)(p))
#endif

bool rw__rcu_in_read_side(void)
{
	return urcu_bp_read_ongoing() != 0 || rw__rs_in_read_side();
}

static struct {
	struct rw__lock lock;
	unsigned long next;   /* number of the next callback; lock */
	unsigned long wanted; /* highest cookie handed out; lock */
	unsigned long flying; /* number of the callback in flight, 0: none;
			       * lock */
	unsigned long
		done; /* under lock, read atomically: cookies <= done are complete */
	struct rcu_head head; /* the callback in flight; lock */
	/* The floor's read side: highest cookie handed out, and whether
	 * rs_head (rs_driver()) is queued; lock. */
	unsigned long rs_wanted;
	bool rs_flying;
	struct rcu_head rs_head;
} poll = {
	.lock = RW__LOCK_INIT,
	.next = 1,
};

/*
 * Fork: liburcu asks programs that fork without exec to call its handlers;
 * they run at RCU's level of rewire's fork handlers (src/internal.h). Here:
 * call_rcu's first (it pauses the call_rcu thread, which may be inside a
 * callback that wants poll.lock or the text lock), then urcu-bp's, then
 * poll.lock.
 */
static bool fork_locked;

static void rcu_atfork_prepare(void)
{
	urcu_bp_call_rcu_before_fork();
	/* Before urcu-bp's registry lock: a reader of the floor's read side
	 * that a grace period waits for may be registering with urcu-bp. */
	rw__rs_atfork_prepare();
	urcu_bp_before_fork();
	fork_locked = rw__lock_acquire(&poll.lock) == 0;
}

static void rcu_atfork_parent(void)
{
	if (fork_locked)
		rw__lock_release(&poll.lock);
	urcu_bp_after_fork_parent();
	rw__rs_atfork_parent();
	urcu_bp_call_rcu_after_fork_parent();
}

static void rcu_atfork_child(void)
{
	if (fork_locked)
		rw__lock_reset(&poll.lock);
	urcu_bp_after_fork_child();
	rw__rs_atfork_child();
	urcu_bp_call_rcu_after_fork_child();
}

static const struct rw__fork_handlers rcu_fork = {
	rcu_atfork_prepare,
	rcu_atfork_parent,
	rcu_atfork_child,
};

__attribute__((constructor)) static void rcu_fork_init(void)
{
	rw__fork_handlers_register(RW__FORK_RCU, &rcu_fork);
}

void rw__rcu_callback_thread(void)
{
	(void)urcu_bp_get_default_call_rcu_data();
}

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static bool use_counter;

static void setup(void)
{
	const char *env = getenv("REWIRE_RCU_POLL");

#if defined(RW_HAVE_URCU_POLL)
	use_counter = env && strcmp(env, "counter") == 0;
#else
	(void)env;
	use_counter = true;
#endif
}

static void ensure_setup(void)
{
	pthread_once(&setup_once, setup);
}

void rw_rcu_register_thread(void)
{
	ensure_setup();
	urcu_bp_register_thread();
}

static void counter_synchronized(unsigned long upto);

int rw_rcu_synchronize(void)
{
	unsigned long upto;

	if (rw__rcu_in_read_side())
		return -EDEADLK;
	ensure_setup();
	/* Every cookie handed out so far is complete after this grace
	 * period: say so, as the kernel's synchronize_rcu() does. */
	(void)rw__lock_acquire(&poll.lock);
	upto = poll.wanted;
	/* Cookie @upto may also be the number the next get_state would hand
	 * out (it names the callback to be queued next). Cookies handed out
	 * from now on begin after this grace period does: move past it. */
	if (poll.next <= upto)
		poll.next = upto + 1;
	rw__lock_release(&poll.lock);
	urcu_bp_synchronize_rcu();
	TSAN_ACQUIRE();
	counter_synchronized(upto);
	return rw__rs_synchronize();
}

static void call_trampoline(struct rcu_head *urcu)
{
	struct rw_rcu_head *head =
		caa_container_of(urcu, struct rw_rcu_head, urcu);

	TSAN_TAKEOVER(head);
	TSAN_ACQUIRE();
	/* The call_rcu thread is never inside a section: no -EDEADLK. */
	if (!rw__rs_poll_state(head->rs))
		(void)rw__rs_synchronize();
	head->fn(head);
}

void rw_rcu_call(struct rw_rcu_head *head, void (*fn)(struct rw_rcu_head *))
{
	ensure_setup();
	head->fn = fn;
	head->rs = rw__rs_get_state();
	TSAN_HANDOFF(head);
	urcu_bp_call_rcu(&head->urcu, call_trampoline);
}

int rw_rcu_barrier(void)
{
	if (rw__rcu_in_read_side())
		return -EDEADLK;
	ensure_setup();
	urcu_bp_barrier();
	TSAN_ACQUIRE();
	return 0;
}

/* --- Polled grace periods: the counter ------------------------------------ */

static void poll_cb(struct rcu_head *head);

/* Step 1 (second half) and the re-queue of step 2. Caller holds poll.lock. */
static void poll_queue_locked(void)
{
	poll.flying = poll.next++;
	urcu_bp_call_rcu(&poll.head, poll_cb);
}

/* Step 3. Runs on the call_rcu thread after a grace period. */
static void poll_cb(struct rcu_head *head)
{
	(void)head;
	TSAN_ACQUIRE();
	(void)rw__lock_acquire(&poll.lock);
	if (poll.flying > poll.done)
		__atomic_store_n(&poll.done, poll.flying, __ATOMIC_RELEASE);
	poll.flying = 0;
	if (poll.wanted >= poll.next)
		poll_queue_locked();
	rw__lock_release(&poll.lock);
}

/* A grace period that began after cookie @upto was handed out has ended. */
static void counter_synchronized(unsigned long upto)
{
	(void)rw__lock_acquire(&poll.lock);
	if (upto > poll.done)
		__atomic_store_n(&poll.done, upto, __ATOMIC_RELEASE);
	rw__lock_release(&poll.lock);
}

static unsigned long counter_get_state(void)
{
	unsigned long c;

	(void)rw__lock_acquire(&poll.lock);
	c = poll.next;
	if (poll.wanted < c)
		poll.wanted = c;
	if (!poll.flying)
		poll_queue_locked();
	rw__lock_release(&poll.lock);
	return c;
}

/* On the call_rcu thread: grace periods of the floor's read side until the
 * highest cookie handed out is complete. */
static void rs_driver(struct rcu_head *head)
{
	unsigned long want;

	(void)head;
	for (;;) {
		(void)rw__lock_acquire(&poll.lock);
		want = poll.rs_wanted;
		if (rw__rs_poll_state(want)) {
			poll.rs_flying = false;
			rw__lock_release(&poll.lock);
			return;
		}
		rw__lock_release(&poll.lock);
		(void)rw__rs_synchronize();
	}
}

static unsigned long rs_get_state(void)
{
	unsigned long c = rw__rs_get_state();

	(void)rw__lock_acquire(&poll.lock);
	if ((long)(c - poll.rs_wanted) > 0 || !poll.rs_wanted)
		poll.rs_wanted = c;
	if (!poll.rs_flying) {
		poll.rs_flying = true;
		urcu_bp_call_rcu(&poll.rs_head, rs_driver);
	}
	rw__lock_release(&poll.lock);
	return c;
}

static bool counter_poll(unsigned long c)
{
	return __atomic_load_n(&poll.done, __ATOMIC_ACQUIRE) >= c;
}

rw_rcu_cookie rw_rcu_get_state(void)
{
	rw_rcu_cookie cookie;

	ensure_setup();
	/* Order the caller's earlier updates before the grace period. */
	rw__full_barrier();
	cookie.rs = rs_get_state();
#if defined(RW_HAVE_URCU_POLL)
	if (!use_counter) {
		struct urcu_gp_poll_state s =
			urcu_bp_start_poll_synchronize_rcu();

		cookie.seq = s.grace_period_id + 1;
		return cookie;
	}
#endif
	cookie.seq = counter_get_state();
	return cookie;
}

bool rw_rcu_poll_state(rw_rcu_cookie cookie)
{
	bool done;

	if (!rw__rs_poll_state(cookie.rs))
		return false;
	if (cookie.seq == 0)
		return true;
	ensure_setup();
#if defined(RW_HAVE_URCU_POLL)
	if (!use_counter) {
		struct urcu_gp_poll_state s = {
			.grace_period_id = cookie.seq - 1,
		};

		done = urcu_bp_poll_state_synchronize_rcu(s);
	} else
#endif
		done = counter_poll(cookie.seq);
	if (done) {
		rw__full_barrier();
		TSAN_ACQUIRE();
	}
	return done;
}

int rw_rcu_cond_synchronize(rw_rcu_cookie cookie)
{
	if (rw_rcu_poll_state(cookie))
		return 0;
	return rw_rcu_synchronize();
}

const char *rw_rcu_poll_impl(void)
{
	ensure_setup();
	return use_counter ? "counter" : "liburcu";
}
