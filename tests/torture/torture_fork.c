/* SPDX-License-Identifier: MIT */
/*
 * Torture: fork() while other threads patch code.
 *
 * A flipper thread enables and disables a static key with 200 sites; a
 * retargeter thread points a static call at one of two functions; a reader
 * runs both. The main thread forks again and again. Each child, with one
 * thread and before anything else, scans every site of the key (the
 * executable's own __rw_jump_table) and the static call's trampoline:
 * no byte is int3, each site is a NOP5 or the jmp rel32 to its own target,
 * and all of them agree with the key's state (no batch can be half done in
 * the child: rewire's atfork handler takes the text lock). The child then
 * runs the sites and the call, and flips the key and the call itself
 * (rewire must reopen /proc/self/mem and register membarrier again) and
 * checks the result.
 *
 * Fork from a signal handler in the middle of a batch: a prodder thread
 * watches the key's first site and, when it holds int3 (the flipper is
 * inside a batch), sends SIGUSR1 to the flipper, whose handler forks if the
 * site still holds int3. That child returns from the handler into the
 * flipper's batch, which the child's rewire finishes; when the flip
 * returns, the child runs the same checks and flips once more.
 *
 * The prodder and the main thread never fork at the same time (fork_mutex):
 * a plain fork() that runs while the flipper's handler forks deadlocks in
 * rewire's atfork handlers (the plain fork holds the cross-thread call lock
 * and waits for the text lock; the handler's thread holds the text lock and
 * waits for the call lock), a library bug this test does not try to hit.
 *
 * Oracle (any violation fails the test): every child exits 0 (the exit
 * code names the failed check; death by a signal, e.g. SIGTRAP from a stray
 * int3, is reported); in the parent every update returns 0, the reader
 * sees a sum of taken branches in [0, 200] and a call result of 1 or 2,
 * and the final state matches the last update.
 *
 * Short run: 200 forks or about 8 s; REWIRE_TORTURE_LONG=1: 5,000 forks
 * or 120 s. Forks from the handler happen when timing allows (a note is
 * printed if none did).
 */
#include <rewire/rewire.h>

#include "check.h"
#include "insn.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSITES 200

RW_DEFINE_STATIC_KEY_FALSE(fk_key);

static int ret1(int x)
{
	return x + 1;
}

static int ret2(int x)
{
	return x + 2;
}

RW_DEFINE_STATIC_CALL(fk_call, ret1);

__attribute__((noinline)) static int call_it(int x)
{
	return rw_static_call(fk_call)(x);
}

/* 200 sites of fk_key: returns how many branches were taken. */
#define B1 s += rw_static_branch_unlikely(fk_key) ? 1 : 0;
#define B10 B1 B1 B1 B1 B1 B1 B1 B1 B1 B1
#define B100 B10 B10 B10 B10 B10 B10 B10 B10 B10 B10
__attribute__((noinline)) static int sites_sum(void)
{
	int s = 0;

	B100 B100 return s;
}

static bool is_fk_entry(const struct rw__jump_entry *e)
{
	return (e->key & ~(uintptr_t)1) == (uintptr_t)&fk_key.key;
}

/* The first site of fk_key in the table (the prodder watches it). */
static const uint8_t *first_site(void)
{
	for (struct rw__jump_entry *e = __start___rw_jump_table;
	     e < __stop___rw_jump_table; e++)
		if (is_fk_entry(e))
			return (const uint8_t *)e->code;
	return NULL;
}

/*
 * Exit codes of a child (0: all good).
 *  10 wrong number of sites    11 int3 at a site    12 bad site bytes
 *  13 site disagrees with key  14 trampoline int3   15 bad trampoline
 *  16 sites_sum wrong          17 call result wrong 18 key flip failed
 *  19 sum after flip wrong     20 call update failed 21 call after update
 *  22 site scan after flips
 */
static int check_sites(bool enabled)
{
	int n = 0;

	for (struct rw__jump_entry *e = __start___rw_jump_table;
	     e < __stop___rw_jump_table; e++) {
		const uint8_t *c = (const uint8_t *)e->code;
		bool branch = e->key & 1;
		bool jump = enabled ^ branch;

		if (!is_fk_entry(e))
			continue;
		n++;
		if (rw_test_is_trap(c))
			return 11;
		if (rw_test_is_jmp(c)) {
			if (rw_test_target(c) != e->target)
				return 12;
			if (!jump)
				return 13;
		} else if (!__builtin_memcmp(c, rw_test_nop, RW_TEST_INSN)) {
			if (jump)
				return 13;
		} else {
			return 12;
		}
	}
	return RW_TEST_SITES_OK(n, NSITES) ? 0 : 10;
}

static int check_call(void)
{
	const uint8_t *t = rw_static_call_ptr(fk_call)->tramp;
	void *want = (void *)rw_static_call_query(fk_call);

#if defined(__aarch64__)
	t += 4; /* the slot, after the BTI landing pad */
#endif
	if (rw_test_is_trap(t))
		return 14;
	if (!rw_test_is_jmp(t))
		return 15;
	if (rw_test_target(t) != (uintptr_t)want)
		return 15;
	if (call_it(10) != (want == (void *)ret1 ? 11 : 12))
		return 17;
	return 0;
}

/* Everything a child checks; returns an exit code. */
static int child_checks(void)
{
	bool on = rw_static_key_enabled(&fk_key);
	int r;

	r = check_sites(on);
	if (r)
		return r;
	r = check_call();
	if (r)
		return r;
	if (sites_sum() != (on ? NSITES : 0))
		return 16;
	/* rewire works in the child. */
	if ((on ? rw_static_key_disable(&fk_key)
		: rw_static_key_enable(&fk_key)) != 0)
		return 18;
	if (sites_sum() != (on ? 0 : NSITES))
		return 19;
	r = check_sites(!on);
	if (r)
		return r == 10 ? 10 : 22;
	if (rw_static_call_update(fk_call, rw_static_call_query(fk_call) == ret1
						   ? ret2
						   : ret1) != 0)
		return 20;
	return check_call() ? 21 : 0;
}

static _Atomic int stop;
static _Atomic long flips, retargets, reads, bad_reads;
static pthread_t flipper_thread;
/* Held around every fork, so that the two kinds never overlap. */
static pthread_mutex_t fork_mutex = PTHREAD_MUTEX_INITIALIZER;

/*
 * GCC 12's AddressSanitizer does not lock its allocator around fork(): a
 * child forked while another thread refills an allocator cache waits for
 * that lock forever at its first malloc (the child checks allocate). In
 * ASan builds only, the updating threads hold a gate around each update
 * (the allocations happen there), and a fork holds the gates of the
 * threads it does not interrupt itself. glibc's malloc is fork-safe, so
 * other builds keep the unrestricted overlap.
 */
#if defined(__SANITIZE_ADDRESS__)
static pthread_mutex_t gate_flip = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t gate_ret = PTHREAD_MUTEX_INITIALIZER;
#define GATE_LOCK(g) pthread_mutex_lock(&(g))
#define GATE_UNLOCK(g) pthread_mutex_unlock(&(g))
#else
#define GATE_LOCK(g) ((void)0)
#define GATE_UNLOCK(g) ((void)0)
#endif

/* Set in the child made by the handler; the flipper checks it. */
static volatile sig_atomic_t in_handler_child;
static _Atomic long h_forks, h_misses;
static _Atomic pid_t h_pid; /* 0 none, -1 fork failed */

static void usr1(int sig)
{
	const uint8_t *site = first_site();
	int saved = errno;
	pid_t pid;

	(void)sig;
	/* Fork only from inside a batch (the site holds int3): there the
	 * flipper holds no allocator lock and calls nothing that is not
	 * async-signal-safe. */
	if (!site || !rw_test_is_trap(site)) {
		atomic_fetch_add(&h_misses, 1);
		atomic_store(&h_pid, -2);
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		in_handler_child = 1;
		goto out; /* back into the batch, in the child */
	}
	atomic_fetch_add(&h_forks, 1);
	atomic_store(&h_pid, pid < 0 ? -1 : pid);
out:
	errno = saved;
}

static void child_from_handler(void)
{
	/* The batch the handler interrupted is finished: one thread, and
	 * the flip just returned. */
	_exit(child_checks());
}

static void *flipper(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int r;

		GATE_LOCK(gate_flip);
		r = rw_static_key_enable(&fk_key);
		if (in_handler_child)
			child_from_handler();
		GATE_UNLOCK(gate_flip);
		CHECK_OK(r);
		GATE_LOCK(gate_flip);
		r = rw_static_key_disable(&fk_key);
		if (in_handler_child)
			child_from_handler();
		GATE_UNLOCK(gate_flip);
		CHECK_OK(r);
		atomic_fetch_add(&flips, 2);
	}
	return NULL;
}

static void *retargeter(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int r;

		GATE_LOCK(gate_ret);
		r = rw_static_call_update(fk_call, ret2);
		if (!r)
			r = rw_static_call_update(fk_call, ret1);
		GATE_UNLOCK(gate_ret);
		CHECK_OK(r);
		atomic_fetch_add(&retargets, 2);
	}
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int s = sites_sum(), c = call_it(10);

		if (s < 0 || s > NSITES || (c != 11 && c != 12))
			atomic_fetch_add(&bad_reads, 1);
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static void report_child(const char *what, pid_t pid, int st)
{
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	if (WIFSIGNALED(st))
		fprintf(stderr, "%s child %d killed by signal %d (%s)\n", what,
			(int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		fprintf(stderr, "%s child %d exited with %d (see codes)\n",
			what, (int)pid, WEXITSTATUS(st));
	exit(1);
}

/* Watches the key's first site; prods the flipper when it holds int3. */
static void *prodder(void *arg)
{
	const uint8_t *site = first_site();
	uint64_t last = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t t0;
		pid_t pid;
		int st;

		if (!rw_test_is_trap(site))
			continue;
		/* Some spacing, so that the flipper makes progress. */
		if (rw_test_now_ns() - last < 20000000ull)
			continue;
		last = rw_test_now_ns();
		pthread_mutex_lock(&fork_mutex);
		GATE_LOCK(gate_ret);
		atomic_store(&h_pid, 0);
		pthread_kill(flipper_thread, SIGUSR1);
		t0 = rw_test_now_ns();
		while (!(pid = atomic_load(&h_pid)) &&
		       rw_test_now_ns() - t0 < 2000000000ull)
			sched_yield();
		GATE_UNLOCK(gate_ret);
		pthread_mutex_unlock(&fork_mutex);
		if (pid == -1) {
			fprintf(stderr, "fork in handler failed\n");
			exit(1);
		}
		if (pid <= 0)
			continue;
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		report_child("handler", pid, st);
	}
	return NULL;
}

int main(void)
{
	pthread_t tr, tc, tp;
	struct sigaction sa;
	long max_forks = rw_test_scale(200, 5000);
	uint64_t limit = (uint64_t)rw_test_scale(8, 120) * 1000000000ull;
	uint64_t t0 = rw_test_now_ns();
	long forks = 0;

#ifndef RW_BACKEND_PATCHING
	SKIP("no code patching on this backend");
#endif
	CHECK(RW_TEST_SITES_OK(rw_static_key_sites(&fk_key), NSITES));
	CHECK(first_site() != NULL);
	CHECK_EQ(check_sites(false), 0);
	CHECK_EQ(sites_sum(), 0);
	CHECK_EQ(call_it(10), 11);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);

	CHECK_EQ(pthread_create(&flipper_thread, NULL, flipper, NULL), 0);
	CHECK_EQ(pthread_create(&tc, NULL, retargeter, NULL), 0);
	CHECK_EQ(pthread_create(&tr, NULL, reader, NULL), 0);
	CHECK_EQ(pthread_create(&tp, NULL, prodder, NULL), 0);

#if defined(__SANITIZE_ADDRESS__)
	/* Threads that are still starting allocate too (see the gates). */
	while (atomic_load(&flips) < 2 || atomic_load(&retargets) < 2 ||
	       atomic_load(&reads) < 1)
		sched_yield();
#endif
	while (forks < max_forks && rw_test_now_ns() - t0 < limit) {
		pid_t pid;
		int st;

		pthread_mutex_lock(&fork_mutex);
		GATE_LOCK(gate_ret);
		GATE_LOCK(gate_flip);
		pid = fork();
		if (pid != 0) {
			GATE_UNLOCK(gate_flip);
			GATE_UNLOCK(gate_ret);
			pthread_mutex_unlock(&fork_mutex);
		}
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(child_checks());
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		report_child("plain", pid, st);
		forks++;
	}
	atomic_store(&stop, 1);
	pthread_join(flipper_thread, NULL);
	pthread_join(tc, NULL);
	pthread_join(tr, NULL);
	pthread_join(tp, NULL);

	CHECK_EQ(atomic_load(&bad_reads), 0);
	/* Quiescent: the last updates were disable and ret1. */
	CHECK(!rw_static_key_enabled(&fk_key));
	CHECK_EQ(check_sites(false), 0);
	CHECK_EQ(sites_sum(), 0);
	CHECK_EQ(check_call(), 0);
	CHECK_EQ(call_it(10), 11);

	printf("torture_fork: %ld forks, %ld forks from a handler inside a "
	       "batch (%ld prods missed), %ld flips, %ld retargets, %ld "
	       "reads, %.1f s: ok\n",
	       forks, atomic_load(&h_forks), atomic_load(&h_misses),
	       atomic_load(&flips), atomic_load(&retargets),
	       atomic_load(&reads), (double)(rw_test_now_ns() - t0) / 1e9);
	if (!atomic_load(&h_forks))
		printf("note: no SIGUSR1 landed inside a batch; fork from a "
		       "handler not exercised\n");
	return 0;
}
