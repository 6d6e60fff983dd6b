/* SPDX-License-Identifier: MIT */
/*
 * Torture: live patch transitions under thread churn.
 *
 * The main thread runs cycles of rw_patch_enable / rw_patch_wait /
 * rw_patch_disable / rw_patch_wait of lp_churn_patch.so (churn_func():
 * 3x + 1 old, 3x + 2 new) while
 *   - two long-lived workers call churn_func() in a loop,
 *   - three spawners create short-lived threads without pause, joined or
 *     detached, each of which calls churn_func() two to five times,
 *   - a holder thread, on request, sits inside the old churn_func()
 *     (sleeping 2 ms at a time) so that an enable cannot complete;
 *     the main thread then reverses it with rw_patch_disable() (every
 *     third cycle), and every other time reverses it once more with
 *     rw_patch_enable() before it releases the holder.
 * Every fifth cycle the patch is unloaded and loaded again. Delay
 * injection: random pauses in the workers, the spawners and between the
 * main thread's steps.
 *
 * The main thread publishes what it is doing in one word, a sequence
 * number and a kind: STABLE_OLD / STABLE_NEW (no transition: published
 * after rw_patch_wait() returned 0), FLUX (a call that changes the
 * transition runs), TRANS_OLD / TRANS_NEW (a transition to that side runs:
 * published after the enable or disable returned). A call reads the word
 * before (b) and after (a) itself.
 *
 * Oracle (any violation fails the test):
 * - every call returns exactly 3x + 1 or 3x + 2;
 * - b == a == STABLE_OLD: old; b == a == STABLE_NEW: new;
 * - b == a == TRANS_X: once a thread got side X in that transition, each
 *   later call of it in the same transition returns X (a thread never
 *   switches back unless the transition is reversed);
 * - a short-lived thread whose spawner read TRANS_X just before it created
 *   the thread, with b == a == that word: X (new threads start in the
 *   target state);
 * - the holder's call, which entered the old function, returns old;
 * - every enable that the holder blocks stays in transition (ENABLING,
 *   the holder pending: ON_STACK, BUSY if it woke during the check from
 *   outside, UNWIND_FAILED in builds with frame pointers); every
 *   transition completes within 10 s, times rw_test_time_scale()
 *   (otherwise the pending threads are printed);
 * - the entry holds a jmp when STABLE_NEW and the original NOPs when
 *   STABLE_OLD;
 * - at least 20 cycles and 2,000 threads (8 and 500 where the waits are
 *   scaled: the emulated machine).
 *
 * Short run: about 12 s (and at least 20 cycles); REWIRE_TORTURE_LONG=1:
 * about 300 s.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include "lp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#define NWORKERS 2
#define NSPAWNERS 3
#define MAX_DETACHED 16
/* Natively; where the tests' waits are scaled (the emulated machine, where
 * 20 cycles took 440 s and 8 took 280 s) 6 cycles, which still hold a
 * reversed enable (cycle 2), a reload (4), a reversal reversed back, or
 * an enable right after a reversal that completed at once (5), and 500
 * threads. */
#define MIN_CYCLES 20
#define MIN_THREADS 2000
#define MIN_CYCLES_SCALED 6
#define MIN_THREADS_SCALED 500
#define WAIT_MS 10000

long churn_func(long x, int hold);

static _Atomic int holder_in, hold_release;

/* Every pause here is times rw_test_time_scale(): emulated, a check of a
 * blocked thread from outside takes longer than a 100 us pause, so a
 * thread that polls that fast always moved during the check (BUSY) and
 * held the transition; scaled, the pauses keep their native proportion to
 * the work. */
static void sleep_ns(long ns)
{
	struct timespec ts;

	ns *= (long)rw_test_time_scale();
	ts.tv_sec = ns / 1000000000L;
	ts.tv_nsec = ns % 1000000000L;

	nanosleep(&ts, NULL);
}

/* With @hold, stays inside, sleeping, until released. */
__attribute__((noinline, noipa)) long churn_func(long x, int hold)
{
	if (hold) {
		atomic_store(&holder_in, 1);
		while (!atomic_load(&hold_release))
			sleep_ns(2000000);
	}
	return 3 * x + 1;
}

static unsigned rnd(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

/* ---- The published word and the oracle ----------------------------------- */

enum { STABLE_OLD, STABLE_NEW, FLUX, TRANS_OLD, TRANS_NEW };
static const char *const kind_name[] = { "STABLE_OLD", "STABLE_NEW", "FLUX",
					 "TRANS_OLD", "TRANS_NEW" };

#define KIND(w) ((int)((w)&7))
#define SEQ(w) ((w) >> 3)

static _Atomic uint64_t pub;
static uint64_t pub_seq; /* main thread only */

static void publish(int kind)
{
	atomic_store(&pub, (++pub_seq << 3) | (uint64_t)kind);
}

/* The side a kind requires of a call that ran inside it, or -1. */
static int stable_side(int kind)
{
	return kind == STABLE_OLD ? 0 : kind == STABLE_NEW ? 1 : -1;
}

static int trans_side(int kind)
{
	return kind == TRANS_OLD ? 0 : kind == TRANS_NEW ? 1 : -1;
}

static _Atomic long calls, calls_old, calls_new, calls_spanning;
static _Atomic long bad, wrong_stable, wrong_back, wrong_newthread;
static _Atomic long newthread_checked;
static _Atomic int first_set;
static char first_msg[256];

static void violation(_Atomic long *counter, const char *what, long x, long r,
		      uint64_t b, uint64_t a)
{
	atomic_fetch_add(counter, 1);
	if (atomic_exchange(&first_set, 1) == 0)
		snprintf(first_msg, sizeof(first_msg),
			 "%s: churn_func(%ld) = %ld, word %s/%lu before, "
			 "%s/%lu after",
			 what, x, r, kind_name[KIND(b)], (unsigned long)SEQ(b),
			 kind_name[KIND(a)], (unsigned long)SEQ(a));
}

/* What a thread knows of the transition it saw last. */
struct tview {
	uint64_t trans; /* the TRANS_* word it got the target side in */
	uint64_t w0;	/* short-lived: the word at its creation, else 0 */
};

static void check_call(struct tview *v, long x, long r, uint64_t b, uint64_t a)
{
	int side;

	atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
	if (r == 3 * x + 1) {
		side = 0;
		atomic_fetch_add_explicit(&calls_old, 1, memory_order_relaxed);
	} else if (r == 3 * x + 2) {
		side = 1;
		atomic_fetch_add_explicit(&calls_new, 1, memory_order_relaxed);
	} else {
		violation(&bad, "neither result", x, r, b, a);
		return;
	}
	if (a != b) {
		atomic_fetch_add_explicit(&calls_spanning, 1,
					  memory_order_relaxed);
		return;
	}
	if (stable_side(KIND(b)) >= 0) {
		if (side != stable_side(KIND(b)))
			violation(&wrong_stable, "wrong side, no transition", x,
				  r, b, a);
		return;
	}
	if (trans_side(KIND(b)) < 0)
		return;
	if (v->w0 == b) {
		atomic_fetch_add_explicit(&newthread_checked, 1,
					  memory_order_relaxed);
		if (side != trans_side(KIND(b)))
			violation(&wrong_newthread,
				  "a thread created in a transition is not "
				  "in its target state",
				  x, r, b, a);
	}
	if (v->trans == b && side != trans_side(KIND(b)))
		violation(&wrong_back,
			  "a thread switched back in one transition", x, r, b,
			  a);
	if (side == trans_side(KIND(b)))
		v->trans = b;
}

static long one_call(struct tview *v, unsigned *seed)
{
	long x = (long)(rnd(seed) % 100000) - 50000, r;
	uint64_t b, a;

	b = atomic_load(&pub);
	r = churn_func(x, 0);
	a = atomic_load(&pub);
	check_call(v, x, r, b, a);
	return r;
}

/* ---- Threads ------------------------------------------------------------- */

static _Atomic int stop_spawn, stop_workers, stop_holder;
static _Atomic long created, create_fail, short_done;
static _Atomic int detached_live;

static void *worker_main(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p * 7919u + 1;
	struct tview v = { 0, 0 };

	while (!atomic_load(&stop_workers)) {
		unsigned r = rnd(&seed);

		one_call(&v, &seed);
		if (r % 16 == 0)
			sleep_ns((long)(r % 100) * 1000);
	}
	return NULL;
}

struct short_arg {
	uint64_t w0;
	unsigned seed;
	bool detached;
};

static void *short_main(void *p)
{
	struct short_arg sa = *(struct short_arg *)p;
	struct tview v = { 0, sa.w0 };
	int n = 2 + (int)(rnd(&sa.seed) % 4);

	free(p);
	for (int i = 0; i < n; i++)
		one_call(&v, &sa.seed);
	atomic_fetch_add(&short_done, 1);
	if (sa.detached)
		atomic_fetch_sub(&detached_live, 1);
	return NULL;
}

static void *spawner_main(void *p)
{
	unsigned seed = (unsigned)(uintptr_t)p * 31u + 7;
	pthread_attr_t det;
	pthread_t t;

	CHECK(pthread_attr_init(&det) == 0);
	CHECK(pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED) == 0);
	while (!atomic_load(&stop_spawn)) {
		unsigned r = rnd(&seed);
		struct short_arg *sa = malloc(sizeof(*sa));
		int err;

		CHECK(sa != NULL);
		sa->seed = r;
		sa->detached = r % 4 == 0 &&
			       atomic_load(&detached_live) < MAX_DETACHED;
		/* Read last: the thread is created in this state or a later
		 * one. */
		sa->w0 = atomic_load(&pub);
		if (sa->detached) {
			atomic_fetch_add(&detached_live, 1);
			err = pthread_create(&t, &det, short_main, sa);
			if (err)
				atomic_fetch_sub(&detached_live, 1);
		} else {
			err = pthread_create(&t, NULL, short_main, sa);
			if (!err)
				CHECK(pthread_join(t, NULL) == 0);
		}
		if (err) {
			/* Thread limits on a loaded machine: back off. */
			free(sa);
			atomic_fetch_add(&create_fail, 1);
			sleep_ns(1000000);
			continue;
		}
		atomic_fetch_add(&created, 1);
		if (r % 32 == 0)
			sleep_ns((long)(r % 200) * 1000);
	}
	pthread_attr_destroy(&det);
	return NULL;
}

/* The holder: on request, one call that sits in the old function. */
static _Atomic int hold_req, hold_done;
static _Atomic long holder_bad;
static _Atomic pid_t holder_tid;

static void *holder_main(void *p)
{
	(void)p;
	atomic_store(&holder_tid, gettid());
	for (;;) {
		long r;

		while (!atomic_load(&hold_req) && !atomic_load(&stop_holder))
			sleep_ns(100000);
		if (atomic_load(&stop_holder))
			break;
		atomic_store(&hold_req, 0);
		r = churn_func(5, 1);
		if (r != 3 * 5 + 1)
			atomic_fetch_add(&holder_bad, 1);
		atomic_store(&holder_in, 0);
		atomic_store(&hold_done, 1);
	}
	return NULL;
}

/* ---- Main ---------------------------------------------------------------- */

static void check_entry(bool patched)
{
	if (patched) {
		CHECK(lp_entry_jmp((uintptr_t)churn_func) != 0);
		return;
	}
	CHECK(lp_entry_is_nops((uintptr_t)churn_func));
}

static void fail_state(struct rw_patch *p, const char *what, int err)
{
	struct rw_patch_info info;

	fprintf(stderr, "%s: %s (%d): %s\n", what, rw_strerror(err), err,
		rw_patch_last_error());
	if (rw_patch_state(p, &info) == 0) {
		fprintf(stderr,
			"  state %d, %zu/%zu switched, %u rounds, %.3f ms, "
			"%zu pending:\n",
			info.state, info.threads_switched, info.threads_total,
			info.attempts, (double)info.transition_ns / 1e6,
			info.npending);
		for (size_t i = 0;
		     i < info.npending && i < RW_PATCH_INFO_THREADS; i++)
			fprintf(stderr, "    tid %d why %d ip %#lx '%s'\n",
				(int)info.pending[i].tid, info.pending[i].why,
				(unsigned long)info.pending[i].ip,
				info.pending[i].func);
	}
	exit(1);
}

static void must(struct rw_patch *p, int err, const char *what)
{
	if (err)
		fail_state(p, what, err);
}

static int state_of(struct rw_patch *p, struct rw_patch_info *info)
{
	CHECK_OK(rw_patch_state(p, info));
	return info->state;
}

static long holder_why[RW_PT_NO_ANSWER + 1];

/* The holder is pending: its frame was seen (ON_STACK), it woke up during
 * the check from outside (BUSY), or its stack could not be unwound from
 * outside (UNWIND_FAILED: code built with frame pointers above glibc's
 * nanosleep, which saves no register). */
static bool holder_pending(const struct rw_patch_info *info)
{
	for (size_t i = 0; i < info->npending && i < RW_PATCH_INFO_THREADS;
	     i++) {
		int why = info->pending[i].why;

		if (info->pending[i].tid != atomic_load(&holder_tid))
			continue;
		if (why >= 0 && why <= RW_PT_NO_ANSWER)
			holder_why[why]++;
		return why == RW_PT_ON_STACK || why == RW_PT_BUSY ||
		       why == RW_PT_UNWIND_FAILED;
	}
	return false;
}

/* Transition times, for the report. */
static uint64_t t_sum, t_max;
static long t_n;

static void wait_done(struct rw_patch *p, int state, const char *what)
{
	struct rw_patch_info info;

	must(p, rw_patch_wait(p, WAIT_MS * (int)rw_test_time_scale()), what);
	CHECK_EQ(state_of(p, &info), state);
	CHECK_EQ(info.npending, 0);
	t_sum += info.transition_ns;
	t_n++;
	if (info.transition_ns > t_max)
		t_max = info.transition_ns;
}

static void pause_random(unsigned *seed, long max_us)
{
	sleep_ns((long)(rnd(seed) % (unsigned)max_us) * 1000);
}

/* The end of a cycle: @p's enable is under way (TRANS_NEW); wait for it,
 * pause up to @max_us, disable and wait. */
static void finish_cycle(struct rw_patch *p, unsigned *seed, long max_us,
			 const char *what)
{
	wait_done(p, RW_PATCH_ENABLED, what);
	publish(STABLE_NEW);
	check_entry(true);
	pause_random(seed, max_us);
	publish(FLUX);
	must(p, rw_patch_disable(p), "disable");
	publish(TRANS_OLD);
	wait_done(p, RW_PATCH_DISABLED, "wait for disable");
	publish(STABLE_OLD);
	check_entry(false);
}

/* A plain cycle: enable, wait, disable, wait. */
static void cycle_plain(struct rw_patch *p, unsigned *seed)
{
	publish(FLUX);
	must(p, rw_patch_enable(p), "enable");
	publish(TRANS_NEW);
	finish_cycle(p, seed, 10000, "wait for enable");
}

static long reversals, double_reversals;

/* An enable the holder blocks, reversed; @twice: reversed back again. */
static void cycle_reverse(struct rw_patch *p, unsigned *seed, bool twice)
{
	struct rw_patch_info info;

	atomic_store(&hold_done, 0);
	atomic_store(&hold_release, 0);
	atomic_store(&hold_req, 1);
	CHECK(LP_WAIT_UNTIL(atomic_load(&holder_in), lp_deadline_ms(10000)));

	publish(FLUX);
	must(p, rw_patch_enable(p), "enable (held)");
	publish(TRANS_NEW);
	CHECK_EQ(state_of(p, &info), RW_PATCH_ENABLING);
	CHECK(holder_pending(&info));
	pause_random(seed, 20000);
	if (rnd(seed) % 2)
		CHECK_EQ(rw_patch_wait(p, 5), -ETIMEDOUT);

	/* Reverse: the target is the old side, which the holder is in. */
	publish(FLUX);
	must(p, rw_patch_disable(p), "disable (reversal)");
	publish(TRANS_OLD);
	reversals++;
	CHECK(state_of(p, &info) == RW_PATCH_DISABLING ||
	      info.state == RW_PATCH_DISABLED);
	if (!twice) {
		wait_done(p, RW_PATCH_DISABLED, "wait for reversed enable");
		publish(STABLE_OLD);
		check_entry(false);
		CHECK_EQ(atomic_load(&hold_done), 0);
		atomic_store(&hold_release, 1);
		return;
	}
	if (info.state == RW_PATCH_DISABLING) {
		pause_random(seed, 5000);
		/* And back: the holder blocks it again. */
		publish(FLUX);
		must(p, rw_patch_enable(p), "enable (second reversal)");
		double_reversals++;
	} else {
		/* The reversal completed at once: a fresh enable. */
		publish(FLUX);
		must(p, rw_patch_enable(p), "enable (after reversal)");
	}
	publish(TRANS_NEW);
	CHECK_EQ(state_of(p, &info), RW_PATCH_ENABLING);
	CHECK_EQ(rw_patch_wait(p, 20), -ETIMEDOUT);
	CHECK_EQ(state_of(p, &info), RW_PATCH_ENABLING);
	CHECK(holder_pending(&info));
	CHECK_EQ(atomic_load(&hold_done), 0);
	atomic_store(&hold_release, 1);
	finish_cycle(p, seed, 5000, "wait for re-reversed enable");
}

static void check_oracle(void)
{
	if (atomic_load(&bad) || atomic_load(&wrong_stable) ||
	    atomic_load(&wrong_back) || atomic_load(&wrong_newthread) ||
	    atomic_load(&holder_bad)) {
		fprintf(stderr,
			"oracle: %ld bad results, %ld wrong sides outside "
			"transitions, %ld switches back, %ld new threads not "
			"in the target state, %ld bad holder calls; first: "
			"%s\n",
			atomic_load(&bad), atomic_load(&wrong_stable),
			atomic_load(&wrong_back), atomic_load(&wrong_newthread),
			atomic_load(&holder_bad), first_msg);
		exit(1);
	}
}

int main(void)
{
	uint64_t max_ns = (uint64_t)rw_test_scale(12, 300) * 1000000000ull;
	bool scaled = rw_test_time_scale() > 1 && !rw_test_long();
	long min_cycles = scaled ? MIN_CYCLES_SCALED : MIN_CYCLES;
	long min_threads = scaled ? MIN_THREADS_SCALED : MIN_THREADS;
	pthread_t wt[NWORKERS], st[NSPAWNERS], ht;
	struct rw_patch *p;
	unsigned seed = 12345;
	uint64_t t0, elapsed;
	long cycle, reloads = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK_EQ(churn_func(2, 0), 7);
	check_entry(false);
	publish(STABLE_OLD);
	p = lp_load(LP_CHURN_PATCH, 0);

	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&wt[i], NULL, worker_main,
				     (void *)(uintptr_t)i) == 0);
	CHECK(pthread_create(&ht, NULL, holder_main, NULL) == 0);
	for (int i = 0; i < NSPAWNERS; i++)
		CHECK(pthread_create(&st[i], NULL, spawner_main,
				     (void *)(uintptr_t)i) == 0);
	while (!atomic_load(&holder_tid))
		sleep_ns(100000);

	t0 = rw_test_now_ns();
	for (cycle = 0;; cycle++) {
		if (cycle >= min_cycles && rw_test_now_ns() - t0 >= max_ns)
			break;
		if (cycle % 3 == 2)
			cycle_reverse(p, &seed, cycle % 6 == 5);
		else
			cycle_plain(p, &seed);
		check_oracle();
		if (cycle % 5 == 4) {
			CHECK_OK(rw_patch_unload(p));
			p = lp_load(LP_CHURN_PATCH, 0);
			reloads++;
		}
		pause_random(&seed, 5000);
	}
	elapsed = rw_test_now_ns() - t0;

	atomic_store(&stop_spawn, 1);
	for (int i = 0; i < NSPAWNERS; i++)
		CHECK(pthread_join(st[i], NULL) == 0);
	while (atomic_load(&detached_live) > 0)
		sleep_ns(1000000);
	atomic_store(&stop_workers, 1);
	atomic_store(&stop_holder, 1);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_join(wt[i], NULL) == 0);
	CHECK(pthread_join(ht, NULL) == 0);
	CHECK_OK(rw_patch_unload(p));
	check_oracle();

	printf("torture_lp_churn: %ld cycles (%ld reversed, %ld reversed "
	       "twice, %ld reloads) in %.2f s; transitions: %ld, mean %.3f "
	       "ms, max %.3f ms\n",
	       cycle, reversals, double_reversals, reloads,
	       (double)elapsed / 1e9, t_n,
	       t_n ? (double)t_sum / (double)t_n / 1e6 : 0.0,
	       (double)t_max / 1e6);
	printf("  %ld threads created (%ld create failures, %ld finished), "
	       "%ld calls: %ld old, %ld new, %ld across a change; %ld calls "
	       "of new threads in a transition checked\n",
	       atomic_load(&created), atomic_load(&create_fail),
	       atomic_load(&short_done), atomic_load(&calls),
	       atomic_load(&calls_old), atomic_load(&calls_new),
	       atomic_load(&calls_spanning), atomic_load(&newthread_checked));
	printf("  the holder was pending %ld times ON_STACK, %ld times BUSY, "
	       "%ld times UNWIND_FAILED\n",
	       holder_why[RW_PT_ON_STACK], holder_why[RW_PT_BUSY],
	       holder_why[RW_PT_UNWIND_FAILED]);
	CHECK(cycle >= min_cycles);
	CHECK(atomic_load(&created) >= min_threads);
	CHECK(atomic_load(&calls_new) > 0 && atomic_load(&calls_old) > 0);
	CHECK(reversals > 0);
	return 0;
}

#endif /* RW_BACKEND_PATCHING */
