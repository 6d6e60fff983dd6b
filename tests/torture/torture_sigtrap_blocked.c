/* SPDX-License-Identifier: MIT */
/*
 * Torture: threads that try to block SIGTRAP run patched code while it is
 * patched.
 *
 * A thread that executes int3 with SIGTRAP blocked is killed by the
 * kernel (it forces the default action). rewire interposes the libc
 * functions that set signal masks and removes SIGTRAP from the masks they
 * install. Worker threads here try every such way and then run the sites
 * of the key `k` and call the static call `op` in a loop while the main
 * thread flips and retargets them:
 *   A  pthread_sigmask(SIG_BLOCK, {SIGTRAP})
 *   B  sigprocmask(SIG_SETMASK, <every signal>)
 *   C  a SIGUSR1 handler installed with SIGTRAP (and everything) in its
 *      sa_mask, which runs the sites; a sender thread keeps signalling C
 *   D  waits in sigsuspend() or ppoll() with a mask holding SIGTRAP while
 *      a SIGUSR2 handler (sa_mask full) that runs the sites is delivered
 *
 * Oracle (any violation fails the test):
 * - the process survives every flip (without the interposition the first
 *   int3 hit by a worker would kill it);
 * - the results are valid: the call returns one of its targets and, when
 *   the flip sequence count shows no flip overlapped a run (even and
 *   unchanged), the sites agree with the key and the call with the
 *   current target;
 * - each worker, after the storm, sees SIGTRAP unblocked in its real
 *   (kernel) mask;
 * - pthread_sigmask(SIG_BLOCK, {SIGTRAP}) then a query of the mask shows
 *   SIGTRAP NOT blocked: rewire's pthread_sigmask() removed it from the
 *   set before the kernel saw it, so a later int3 at a site being patched
 *   is handled instead of killing the thread;
 * - a SIGTRAP handler the program installs after rewire's (which is
 *   installed by the first patch) is what sigaction(SIGTRAP, NULL, &old)
 *   reports, it receives raise(SIGTRAP) (SI_TKILL) and kill(getpid(),
 *   SIGTRAP) (SI_USER) exactly once each, and it receives none of the
 *   int3 traps of a second storm of flips (rewire keeps those).
 *
 * Needs code patching: label x86only, skipped on the generic backend.
 *
 * Short run: 2 x 5,000 flips or 2 x 3 s; REWIRE_TORTURE_LONG=1:
 * 2 x 100,000 flips.
 */
#include <rewire/rewire.h>

#include "check.h"
#include "targets.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEY_SITES 8

static RW_DEFINE_STATIC_KEY_FALSE(k);

RW_DEFINE_STATIC_CALL(op, t1);

__attribute__((noinline)) static int k_sites(void)
{
	return S2(k) + S2(k) + S2(k) + S2(k);
}

/*
 * Flip sequence: 2i - 1 while flip i runs, 2i after it. Flip i turns the
 * key on (odd i) or off (even i) and points op at target_of(i).
 */
static _Atomic long seq;
static _Atomic int stop_workers, stop_sender;
static _Atomic int ready;
static _Atomic long runs_total, runs_checked, runs_in_handlers;
static _Atomic int bad_code;
static _Atomic long bad_a, bad_b;

enum { W_A, W_B, W_C, W_D, NWORKERS };
static pthread_t workers[NWORKERS];
static _Atomic long worker_runs[NWORKERS];
static _Atomic int worker_trap_blocked[NWORKERS];

/* The target after flip i: a fixed rotation, so readers can compute it. */
static int target_of(long i)
{
	return (int)(i % NTARGETS) + 1;
}

static void bad(int code, long a, long b)
{
	int zero = 0;

	if (atomic_compare_exchange_strong(&bad_code, &zero, code)) {
		atomic_store(&bad_a, a);
		atomic_store(&bad_b, b);
	}
}

/* One checked run of the sites; async-signal-safe. */
static void run_sites(int w)
{
	long s0, s1;
	int n, r;

	s0 = atomic_load_explicit(&seq, memory_order_acquire);
	n = k_sites();
	r = rw_static_call(op)(0);
	s1 = atomic_load_explicit(&seq, memory_order_acquire);
	if (n < 0 || n > KEY_SITES)
		bad(1, n, s0);
	if (r < 1 || r > NTARGETS)
		bad(2, r, s0);
	if (s0 == s1 && !(s0 & 1)) {
		long i = s0 / 2;

		if (n != ((i & 1) ? KEY_SITES : 0))
			bad(3, n, i);
		if (r != target_of(i))
			bad(4, r, i);
		atomic_fetch_add_explicit(&runs_checked, 1,
					  memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&runs_total, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&worker_runs[w], 1, memory_order_relaxed);
}

static void on_usr(int sig)
{
	int saved = errno;

	run_sites(sig == SIGUSR1 ? W_C : W_D);
	atomic_fetch_add_explicit(&runs_in_handlers, 1, memory_order_relaxed);
	errno = saved;
}

/* Whether SIGTRAP is blocked in the kernel's mask of this thread. */
static bool trap_blocked_raw(void)
{
	uint64_t cur = 0;

	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &cur, 8) == 0);
	return cur & (1ull << (SIGTRAP - 1));
}

static void worker_done(int w)
{
	atomic_store(&worker_trap_blocked[w], trap_blocked_raw());
}

static void *worker_a(void *arg)
{
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed))
		run_sites(W_A);
	worker_done(W_A);
	return NULL;
}

static void *worker_b(void *arg)
{
	sigset_t set;

	(void)arg;
	sigfillset(&set);
	CHECK(sigprocmask(SIG_SETMASK, &set, NULL) == 0);
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed))
		run_sites(W_B);
	worker_done(W_B);
	return NULL;
}

static void *worker_c(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
		run_sites(W_C);
		sched_yield();
	}
	worker_done(W_C);
	return NULL;
}

static void *worker_d(void *arg)
{
	sigset_t block, wait;
	unsigned long round = 0;

	(void)arg;
	/* The classic pattern: SIGUSR2 blocked except while waiting. */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTRAP);
	CHECK(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0);
	sigfillset(&wait);
	sigdelset(&wait, SIGUSR2);
	atomic_fetch_add(&ready, 1);
	while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
		if (round++ & 1) {
			CHECK(sigsuspend(&wait) == -1 && errno == EINTR);
		} else {
			struct timespec ts = { 0, 10000000 };
			int r = ppoll(NULL, 0, &ts, &wait);

			CHECK(r == 0 || (r == -1 && errno == EINTR));
		}
		run_sites(W_D);
	}
	worker_done(W_D);
	return NULL;
}

static void *sender(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop_sender, memory_order_relaxed)) {
		CHECK(pthread_kill(workers[W_C], SIGUSR1) == 0);
		CHECK(pthread_kill(workers[W_D], SIGUSR2) == 0);
		nanosleep(&(struct timespec){ 0, 20000 }, NULL);
	}
	return NULL;
}

static long seq_base; /* flips done by earlier storms */

/* Flip k and retarget op until max flips or max_ns; returns the flips. */
static long storm(long max_flips, uint64_t max_ns)
{
	uint64_t t0 = rw_test_now_ns();
	long n;

	for (n = 1; n <= max_flips; n++) {
		long i = seq_base + n;

		atomic_store_explicit(&seq, 2 * i - 1, memory_order_seq_cst);
		if (i & 1)
			CHECK_OK(rw_static_key_enable(&k));
		else
			CHECK_OK(rw_static_key_disable(&k));
		CHECK_OK(rw_static_call_update(op, targets[target_of(i)]));
		atomic_store_explicit(&seq, 2 * i, memory_order_release);
		if (atomic_load(&bad_code))
			break;
		if ((n & 63) == 0 && rw_test_now_ns() - t0 >= max_ns)
			break;
	}
	if (n > max_flips)
		n = max_flips;
	seq_base += n;
	return n;
}

static _Atomic int trap_handled, trap_code, trap_signo;

static void program_trap(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	atomic_store(&trap_signo, sig);
	atomic_store(&trap_code, si->si_code);
	atomic_fetch_add(&trap_handled, 1);
}

static void check_program_trap_handler(void)
{
	struct sigaction sa, old;
	sigset_t set, cur;

	/* Blocking SIGTRAP is silently refused (see the header comment). */
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	CHECK(pthread_sigmask(SIG_SETMASK, NULL, &cur) == 0);
	CHECK(!sigismember(&cur, SIGTRAP));
	CHECK(!trap_blocked_raw());

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = program_trap;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGTRAP, &sa, NULL) == 0);
	memset(&old, 0, sizeof(old));
	CHECK(sigaction(SIGTRAP, NULL, &old) == 0);
	CHECK(old.sa_flags & SA_SIGINFO);
	CHECK(old.sa_sigaction == program_trap);

	CHECK(raise(SIGTRAP) == 0);
	CHECK_EQ(atomic_load(&trap_handled), 1);
	CHECK_EQ(atomic_load(&trap_signo), SIGTRAP);
	CHECK_EQ(atomic_load(&trap_code), SI_TKILL);

	/* Process-directed: any thread may take it, wait for one. */
	CHECK(kill(getpid(), SIGTRAP) == 0);
	for (int i = 0; i < 10000 && atomic_load(&trap_handled) < 2; i++)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	CHECK_EQ(atomic_load(&trap_handled), 2);
	CHECK_EQ(atomic_load(&trap_code), SI_USER);
}

int main(void)
{
	long max_flips = rw_test_scale(5000, 100000);
	uint64_t max_ns = rw_test_long() ? UINT64_MAX : 3000000000ull;
	void *(*fns[NWORKERS])(void *) = { worker_a, worker_b, worker_c,
					   worker_d };
	struct rw_text_stats s0, s1, s2;
	struct sigaction sa;
	pthread_t snd;
	long f1, f2;
	uint64_t t0;

#ifndef RW_BACKEND_PATCHING
	SKIP("no code patching on the generic backend");
#endif
	t0 = rw_test_now_ns();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr;
	sigfillset(&sa.sa_mask); /* includes SIGTRAP */
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);

	for (int w = 0; w < NWORKERS; w++)
		CHECK(pthread_create(&workers[w], NULL, fns[w], NULL) == 0);
	while (atomic_load(&ready) < NWORKERS)
		sched_yield();
	CHECK(pthread_create(&snd, NULL, sender, NULL) == 0);

	/* Storm 1: rewire's SIGTRAP handler is installed by the first
	 * patch, the program's is still the default. */
	rw_text_get_stats(&s0);
	f1 = storm(max_flips, max_ns);
	rw_text_get_stats(&s1);

	/* The program installs its own SIGTRAP handler now. */
	check_program_trap_handler();

	/* Storm 2: rewire keeps its int3 traps from the program's
	 * handler. */
	f2 = storm(max_flips, max_ns);
	rw_text_get_stats(&s2);
	CHECK_EQ(atomic_load(&trap_handled), 2);

	/* Let every worker run at least once more, then stop. */
	for (int w = 0; w < NWORKERS; w++) {
		long r = atomic_load(&worker_runs[w]);

		while (atomic_load(&worker_runs[w]) == r &&
		       !atomic_load(&bad_code))
			sched_yield();
	}
	atomic_store(&stop_workers, 1);
	for (int w = 0; w < NWORKERS; w++)
		CHECK(pthread_join(workers[w], NULL) == 0);
	atomic_store(&stop_sender, 1);
	CHECK(pthread_join(snd, NULL) == 0);

	if (atomic_load(&bad_code)) {
		fprintf(stderr,
			"check %d failed (%ld, %ld): 1/2 invalid site or call "
			"value, 3/4 sites or call wrong with no flip "
			"running\n",
			atomic_load(&bad_code), atomic_load(&bad_a),
			atomic_load(&bad_b));
		return 1;
	}
	for (int w = 0; w < NWORKERS; w++) {
		CHECK(atomic_load(&worker_runs[w]) > 0);
		CHECK(!atomic_load(&worker_trap_blocked[w]));
	}
	CHECK(atomic_load(&runs_in_handlers) > 0);
	CHECK(f1 >= 10 && f2 >= 10);

	printf("torture_sigtrap_blocked: %ld + %ld flips, %ld site runs "
	       "(%ld in handlers, %ld checked with no flip running), "
	       "worker runs A %ld B %ld C %ld D %ld, %.2f s\n",
	       f1, f2, atomic_load(&runs_total), atomic_load(&runs_in_handlers),
	       atomic_load(&runs_checked), atomic_load(&worker_runs[W_A]),
	       atomic_load(&worker_runs[W_B]), atomic_load(&worker_runs[W_C]),
	       atomic_load(&worker_runs[W_D]),
	       (double)(rw_test_now_ns() - t0) / 1e9);
	printf("torture_sigtrap_blocked: traps emulated %" PRIu64
	       " before the program's SIGTRAP handler, %" PRIu64
	       " after; program handler calls 2 (raise, kill)\n",
	       s1.traps_emulated - s0.traps_emulated,
	       s2.traps_emulated - s1.traps_emulated);
	printf("torture_sigtrap_blocked: ok\n");
	return 0;
}
