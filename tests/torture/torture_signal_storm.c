/* SPDX-License-Identifier: MIT */
/*
 * Torture: the patching thread is hit by a storm of signals whose handler
 * runs the code being patched and tries updates of its own.
 *
 * The main thread flips the key `k` (8 sites) and retargets the static
 * call `op` (4 targets) in a loop. A sender thread sends SIGUSR1 to the
 * main thread as fast as it can (pthread_kill and tgkill in turn). The
 * SIGUSR1 handler (SA_RESTART) runs the sites of `k` and calls `op`, then
 * attempts a nested update of its own: it toggles the key `nk` or
 * retargets the static call `nop`, which the main loop never touches.
 *
 * Oracle (any violation fails the test):
 * - no deadlock: the test finishes (a watchdog fails it, with a message,
 *   if the main loop makes no progress for 120 s);
 * - the main loop keeps a step count, odd while an update runs: when the
 *   handler interrupted no update, every site of `k` agrees with the key
 *   and `op` runs the current target; when it interrupted one, `op` runs
 *   the old or the new target and the sites may be a mix (the batch is
 *   half done), but each site still says 0 or 1;
 * - every nested update returns 0 or -EDEADLK, and -EDEADLK only when the
 *   handler interrupted an update of the main loop (the text lock is then
 *   held by this very thread); after a nested update that returned 0, its
 *   key or call behaves as updated, from inside the handler;
 * - every update of the main loop returns 0 and leaves its sites right.
 * How many nested updates met -EDEADLK depends on timing: printed, not
 * required.
 *
 * Short run: at least 20,000 updates and 2,000 handled signals, or about
 * 5 s; REWIRE_TORTURE_LONG=1: 200,000 updates and 50,000 signals, or
 * 300 s.
 */
#include <rewire/rewire.h>

#include "check.h"
#include "targets.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEY_SITES 8
#define WATCHDOG_S 120

static RW_DEFINE_STATIC_KEY_FALSE(k);
static RW_DEFINE_STATIC_KEY_FALSE(nk);

RW_DEFINE_STATIC_CALL(op, t1);
RW_DEFINE_STATIC_CALL(nop, t1);

__attribute__((noinline)) static int k_sites(void)
{
	return S2(k) + S2(k) + S2(k) + S2(k);
}

__attribute__((noinline)) static int nk_sites(void)
{
	return S2(nk);
}

/*
 * Main loop state, written by the main thread and read by its own signal
 * handler (same thread: atomics for the compiler, not for other CPUs).
 * step: 2i - 1 while update i runs, 2i after it. key_on: the key state
 * after the last finished key flip; cur/prev: the current and previous
 * target of op.
 */
static _Atomic long step;
static _Atomic int key_on, cur, prev;

/* Handler results. */
static _Atomic long h_runs, h_interrupted, h_mixed, h_nested_ok,
	h_nested_deadlk;
static _Atomic int h_bad; /* first failure code, 0 if none */
static _Atomic long h_bad_a, h_bad_b;

/* Handler-private: what the nested updates last set. */
static int nested_key_on, nested_target = 1;

static _Atomic int stop_sender;
static _Atomic long progress;
static pid_t main_tid;
static pthread_t main_thread;

static void bad(int code, long a, long b)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&h_bad, &zero, code)) {
		atomic_store(&h_bad_a, a);
		atomic_store(&h_bad_b, b);
	}
}

static void on_usr1(int sig)
{
	int saved = errno;
	long s = atomic_load(&step);
	/* Update i runs while step == 2i - 1; odd i flip k, even i
	 * retarget op. */
	bool key_busy = (s & 1) && (((s + 1) / 2) & 1);
	bool call_busy = (s & 1) && !key_busy;
	int n, r, want_key, c, p, err;

	(void)sig;
	atomic_fetch_add_explicit(&h_runs, 1, memory_order_relaxed);
	if (s & 1)
		atomic_fetch_add_explicit(&h_interrupted, 1,
					  memory_order_relaxed);

	/* The code being patched, run from the interrupted thread. */
	n = k_sites();
	r = rw_static_call(op)(100) - 100;
	c = atomic_load(&cur);
	p = atomic_load(&prev);
	want_key = atomic_load(&key_on) ? KEY_SITES : 0;
	if (!key_busy && n != want_key)
		bad(1, n, want_key);
	if (!call_busy && r != c)
		bad(2, r, c);
	if (n < 0 || n > KEY_SITES)
		bad(3, n, KEY_SITES);
	if (key_busy && n != 0 && n != KEY_SITES)
		atomic_fetch_add_explicit(&h_mixed, 1, memory_order_relaxed);
	if (call_busy && r != c && r != p)
		bad(4, r, c * 10 + p);

	/* A nested update of a key or call that the main loop never uses. */
	if (atomic_load_explicit(&h_runs, memory_order_relaxed) & 1) {
		err = nested_key_on ? rw_static_key_disable(&nk)
				    : rw_static_key_enable(&nk);
		if (err == 0) {
			nested_key_on = !nested_key_on;
			if (nk_sites() != (nested_key_on ? 2 : 0))
				bad(5, nk_sites(), nested_key_on);
		}
	} else {
		int t = nested_target % NTARGETS + 1;

		err = rw_static_call_update(nop, targets[t]);
		if (err == 0) {
			nested_target = t;
			if (rw_static_call(nop)(0) != t)
				bad(6, rw_static_call(nop)(0), t);
		}
	}
	if (err == 0) {
		atomic_fetch_add_explicit(&h_nested_ok, 1,
					  memory_order_relaxed);
	} else if (err == -EDEADLK) {
		atomic_fetch_add_explicit(&h_nested_deadlk, 1,
					  memory_order_relaxed);
		/* Only this thread updates outside handlers: the text lock
		 * is ours only inside an update of the main loop. */
		if (!(s & 1))
			bad(7, s, 0);
	} else {
		bad(8, err, 0);
	}
	errno = saved;
}

static void *sender(void *arg)
{
	pid_t pid = getpid();
	long sent = 0;

	(void)arg;
	while (!atomic_load_explicit(&stop_sender, memory_order_relaxed)) {
		if (sent & 1)
			CHECK(pthread_kill(main_thread, SIGUSR1) == 0);
		else
			CHECK(syscall(SYS_tgkill, pid, main_tid, SIGUSR1) == 0);
		sent++;
		if ((sent & 255) == 0)
			sched_yield();
	}
	return (void *)(intptr_t)sent;
}

static void *watchdog(void *arg)
{
	long last = -1;
	int idle = 0;

	(void)arg;
	for (;;) {
		long p = atomic_load(&progress);

		if (p < 0)
			return NULL;
		if (p != last) {
			last = p;
			idle = 0;
		} else if (++idle >= WATCHDOG_S * 10) {
			fprintf(stderr,
				"watchdog: no progress for %d s at step "
				"%ld: deadlock\n",
				WATCHDOG_S, atomic_load(&step));
			_exit(1);
		}
		nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
	}
}

static int next_target(int c, unsigned *seed)
{
	int t;

	do {
		*seed = *seed * 1103515245u + 12345u;
		t = 1 + (int)((*seed >> 16) % NTARGETS);
	} while (t == c);
	return t;
}

int main(void)
{
	long max_steps = rw_test_scale(20000, 200000);
	long min_handled = rw_test_scale(2000, 50000);
	uint64_t max_ns = rw_test_long() ? 300000000000ull : 5000000000ull;
	struct sigaction sa;
	pthread_t snd, wd;
	unsigned seed = 99;
	void *sent;
	uint64_t t0, ns;
	long i, nkeys = 0, ncalls = 0;

	main_tid = (pid_t)syscall(SYS_gettid);
	main_thread = pthread_self();
	atomic_store(&cur, 1);
	atomic_store(&prev, 1);
	CHECK_EQ(k_sites(), 0);
	CHECK_EQ(rw_static_call(op)(0), 1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

	CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0);
	CHECK(pthread_create(&snd, NULL, sender, NULL) == 0);
	/* Start once the storm has reached us. */
	while (atomic_load(&h_runs) == 0)
		sched_yield();

	t0 = rw_test_now_ns();
	for (i = 1;; i++) {
		int err, n;

		if (i & 1) {
			int on = !atomic_load(&key_on);

			atomic_store(&step, 2 * i - 1);
			err = on ? rw_static_key_enable(&k)
				 : rw_static_key_disable(&k);
			atomic_store(&key_on, on);
			atomic_store(&step, 2 * i);
			CHECK_OK(err);
			n = k_sites();
			if (n != (on ? KEY_SITES : 0)) {
				fprintf(stderr, "step %ld: %d sites on\n", i,
					n);
				return 1;
			}
			nkeys++;
		} else {
			int c = atomic_load(&cur);
			int t = next_target(c, &seed);

			/* While step is odd the handler accepts prev or
			 * cur; both are c before the update starts. */
			atomic_store(&step, 2 * i - 1);
			atomic_store(&prev, c);
			atomic_store(&cur, t);
			err = rw_static_call_update(op, targets[t]);
			atomic_store(&step, 2 * i);
			atomic_store(&prev, t);
			CHECK_OK(err);
			CHECK_EQ(rw_static_call(op)(0), t);
			ncalls++;
		}
		atomic_store_explicit(&progress, i, memory_order_relaxed);
		if (atomic_load(&h_bad))
			break;
		if (i >= max_steps && atomic_load(&h_runs) >= min_handled)
			break;
		if ((i & 63) == 0 && rw_test_now_ns() - t0 >= max_ns)
			break;
	}
	ns = rw_test_now_ns() - t0;
	atomic_store(&stop_sender, 1);
	CHECK(pthread_join(snd, &sent) == 0);
	atomic_store(&progress, -1);
	CHECK(pthread_join(wd, NULL) == 0);

	if (atomic_load(&h_bad)) {
		fprintf(stderr,
			"handler check %d failed (%ld, %ld) at step %ld; "
			"codes: 1/2 sites/call wrong with no update running, "
			"3/4 invalid value during an update, 5/6 nested "
			"update not in effect, 7 -EDEADLK with no update "
			"running, 8 nested update error\n",
			atomic_load(&h_bad), atomic_load(&h_bad_a),
			atomic_load(&h_bad_b), i);
		return 1;
	}
	CHECK(atomic_load(&h_runs) > 0);
	CHECK_EQ(atomic_load(&h_nested_ok) + atomic_load(&h_nested_deadlk),
		 atomic_load(&h_runs));
	CHECK(nkeys + ncalls >= 10);

	printf("torture_signal_storm: %ld key flips + %ld call updates in "
	       "%.2f s; %ld signals sent, %ld handled (%ld during an "
	       "update, %ld saw mixed sites); nested updates: %ld ok, "
	       "%ld -EDEADLK\n",
	       nkeys, ncalls, (double)ns / 1e9, (long)(intptr_t)sent,
	       atomic_load(&h_runs), atomic_load(&h_interrupted),
	       atomic_load(&h_mixed), atomic_load(&h_nested_ok),
	       atomic_load(&h_nested_deadlk));
	printf("torture_signal_storm: ok\n");
	return 0;
}
