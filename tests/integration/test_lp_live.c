/* SPDX-License-Identifier: MIT */
/*
 * Integration: a live patch applied and reverted while the program runs.
 *
 * buggy_sum() forgets the last element; lp_live_patch.so fixes it. Eight
 * workers call it in a loop on the same data; one thread is blocked in
 * read() on an empty pipe and one in a 5 s clock_nanosleep(), both in
 * functions the patch does not touch. The test loads the patch, enables
 * it, waits for the transition, disables it and waits again.
 *
 * Oracle (any violation fails):
 * - every call returns exactly the old (buggy) or the new (fixed) sum;
 * - a call that starts and ends inside one stable phase returns that
 *   phase's side: old before the enable and after the disable completed,
 *   new between the completion of the enable and the disable (the main
 *   thread publishes the phase after rw_patch_wait() returned);
 * - the workers keep calling across each transition (their call counts
 *   grow between the sample before the enable and the one after the
 *   wait; each worker's, when the transition lasted 1 s or more): no
 *   worker was stopped for the transition;
 * - rw_patch_state(): ENABLED / DISABLED, every thread switched;
 * - the entry of buggy_sum holds a jmp into the patch object once the
 *   enable completed, and its original NOPs once the disable completed;
 * - the blocked threads were never woken (their context switch counts do
 *   not move while both transitions run: not woken once), and read()
 *   returns the byte the test writes at the end; the test does not wait
 *   for the sleep's end.
 *
 * Frame pointers (LP_FRAME_POINTERS, set by test_lp_live.cmake for the
 * sanitizer builds): a thread blocked in a system call is unwound from
 * outside from its stack and instruction pointers alone, and glibc's
 * read() and clock_nanosleep() save no register, so code above them that
 * keeps its frame in %rbp cannot be unwound that way. rewire then signals
 * the reader (read() is restarted after a handler) and leaves the sleeper
 * pending (UNWIND_FAILED) until its sleep ends, rather than make it return
 * EINTR. In such a build the test expects exactly that: the enable
 * completes once the sleeper woke, on time and with 0, and the reader's
 * read() still returns the byte written at the end.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs the x86_64 or aarch64 backend");
}
#else

#include <rewire/threads.h>

#include "lp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NWORKERS 8
#define NDATA 16
/* The aarch64 suite runs in an emulated machine (TCG, tens of times
 * slower): the sleeper must outlast both transitions there too. */
#if defined(__aarch64__)
#define SLEEP_S 90
#define WAIT_MS 80000
#else
#define SLEEP_S 5
#define WAIT_MS 10000
#endif
#define STABLE_CALLS 1000

#ifdef LP_EXPECT_BTI
#include <sys/auxv.h>

/*
 * test_lp_live_bti (aarch64): the program and the patch are built with
 * -mbranch-protection=bti, and the patch is marked BTI, so the loader
 * maps its code guarded where the CPU has BTI: an indirect branch (BR X16
 * from a dispatcher or a far stub) that lands anywhere but on a BTI c or
 * PACIASP there kills the process (SIGILL). Is @addr's mapping guarded
 * ("bt" in its VmFlags)?
 */
static bool mapping_guarded(uintptr_t addr)
{
	char line[512];
	FILE *f = fopen("/proc/self/smaps", "r");
	bool in = false, bt = false;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = addr >= lo && addr < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			bt = strstr(line, " bt") != NULL;
			break;
		}
	}
	fclose(f);
	return bt;
}

static void check_bti(uintptr_t fn, uintptr_t newfn)
{
	CHECK_EQ(lp_insn_at(fn), 0xd503245fu); /* bti c, then the entry */
	CHECK((uintptr_t)lp_entry_sled(fn) == fn + 4);
	CHECK(lp_insn_at(newfn) == 0xd503245fu ||
	      lp_insn_at(newfn) == 0xd503233fu);     /* bti c, paciasp */
	if (!(getauxval(AT_HWCAP2) & (1ul << 17))) { /* HWCAP2_BTI */
		printf("  no BTI on this CPU: landing pads not enforced\n");
		return;
	}
	CHECK(mapping_guarded(newfn));
	printf("  BTI: the patch is mapped guarded (the program %s)\n",
	       mapping_guarded(fn) ? "too" : "is not");
}
#endif

static const bool fp_build = LP_FRAME_POINTERS_BUILD;

long buggy_sum(const int *v, int n);

/* The bug: the last element is left out. */
__attribute__((noinline, noipa)) long buggy_sum(const int *v, int n)
{
	long s = 0;

	for (int i = 0; i < n - 1; i++)
		s += v[i];
	return s;
}

static const char *const phase_name[LP_NPHASES] = { "before",	"enabling",
						    "enabled",	"disabling",
						    "disabled", "stop" };

/* The side a call must return in a stable phase: 0 old, 1 new, -1 any. */
static int phase_side(int ph)
{
	switch (ph) {
	case LP_BEFORE:
	case LP_DISABLED:
		return 0;
	case LP_ENABLED:
		return 1;
	default:
		return -1;
	}
}

static int data[NDATA];
static long old_sum, new_sum;
static _Atomic int phase;

struct worker {
	pthread_t t;
	_Atomic pid_t tid;
	_Atomic long calls;
	/* Calls that started and ended in one phase, by result side. */
	_Atomic long in_phase[LP_NPHASES][2];
	/* Calls during which the phase changed, by result side. */
	_Atomic long spanning[2];
	_Atomic long bad;   /* neither the old nor the new sum */
	_Atomic long wrong; /* the other side in a stable phase */
	long first_bad, first_wrong;
	int first_wrong_phase;
};

static struct worker workers[NWORKERS];

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	atomic_store(&w->tid, gettid());
	for (;;) {
		int b = atomic_load(&phase), a, side;
		long r;

		if (b == LP_STOP)
			break;
		r = buggy_sum(data, NDATA);
		a = atomic_load(&phase);
		if (r == old_sum) {
			side = 0;
		} else if (r == new_sum) {
			side = 1;
		} else {
			if (atomic_fetch_add(&w->bad, 1) == 0)
				w->first_bad = r;
			atomic_fetch_add(&w->calls, 1);
			continue;
		}
		if (a == b) {
			atomic_fetch_add(&w->in_phase[b][side], 1);
			if (phase_side(b) >= 0 && phase_side(b) != side &&
			    atomic_fetch_add(&w->wrong, 1) == 0) {
				w->first_wrong = r;
				w->first_wrong_phase = b;
			}
		} else {
			atomic_fetch_add(&w->spanning[side], 1);
		}
		atomic_fetch_add(&w->calls, 1);
	}
	return NULL;
}

/* ---- The blocked threads ------------------------------------------------- */

static int pipefd[2];
static _Atomic pid_t reader_tid, sleeper_tid;
static ssize_t reader_ret;
static int reader_errno;
static char reader_byte;
static int sleeper_ret;
static uint64_t sleeper_ns;
static _Atomic int sleeper_done;

static void *reader_main(void *arg)
{
	(void)arg;
	atomic_store(&reader_tid, gettid());
	reader_ret = read(pipefd[0], &reader_byte, 1);
	reader_errno = errno;
	return NULL;
}

static void *sleeper_main(void *arg)
{
	struct timespec ts = { SLEEP_S, 0 };
	uint64_t t0;

	(void)arg;
	atomic_store(&sleeper_tid, gettid());
	t0 = rw_test_now_ns();
	/* Returns the error number; EINTR if a signal handler ran. */
	sleeper_ret = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	sleeper_ns = rw_test_now_ns() - t0;
	atomic_store(&sleeper_done, 1);
	return NULL;
}

/* lp_ctxt_switches(), which must be able to read them. */
static long ctxt_switches(pid_t tid)
{
	long n = lp_ctxt_switches(tid);

	CHECK(n >= 0);
	return n;
}

static void wait_blocked(pid_t tid, long nr, const char *what)
{
	if (!lp_wait_in_syscall(tid, nr)) {
		fprintf(stderr,
			"%s (tid %d) not blocked in system call %ld after "
			"5 s\n",
			what, (int)tid, nr);
		exit(1);
	}
}

/* ---- Main ---------------------------------------------------------------- */

static void sample_calls(long out[NWORKERS])
{
	for (int i = 0; i < NWORKERS; i++)
		out[i] = atomic_load(&workers[i].calls);
}

/* Wait until every worker made @n calls inside phase @ph. */
static void wait_stable_calls(int ph, long n)
{
	uint64_t deadline = lp_deadline_ms(10000);

	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];

		if (!LP_WAIT_UNTIL(
			    atomic_load(&w->in_phase[ph][0]) +
					    atomic_load(&w->in_phase[ph][1]) >=
				    n,
			    deadline)) {
			fprintf(stderr,
				"worker %d made only %ld calls in phase %s in "
				"10 s\n",
				i,
				atomic_load(&w->in_phase[ph][0]) +
					atomic_load(&w->in_phase[ph][1]),
				phase_name[ph]);
			exit(1);
		}
	}
}

/*
 * The workers ran while the transition did: their call counts grew
 * between the sample taken before rw_patch_enable/disable and the one
 * taken when rw_patch_wait returned, @window_ns later. With eight workers
 * on few CPUs, next to other tests, a worker may simply not be scheduled
 * for a window of 100 ms or more (seen in CI), so
 * every worker must have moved only in a window of PROGRESS_ALL_NS or
 * more; in any window the workers together must have.
 */
#define PROGRESS_ALL_NS 1000000000ull

static void check_progress(const long before[NWORKERS], const char *what,
			   uint64_t window_ns)
{
	long after[NWORKERS], total = 0;
	int idle = 0;

	sample_calls(after);
	printf("  calls per worker across the %s transition (%.3f ms):", what,
	       (double)window_ns / 1e6);
	for (int i = 0; i < NWORKERS; i++) {
		printf(" %ld", after[i] - before[i]);
		total += after[i] - before[i];
		idle += after[i] <= before[i];
	}
	printf("\n");
	if (total <= 0 || (idle && window_ns >= PROGRESS_ALL_NS)) {
		fprintf(stderr,
			"%d worker(s) made no call across the %s transition "
			"(%.3f ms)\n",
			idle, what, (double)window_ns / 1e6);
		exit(1);
	}
}

static size_t count_tasks(void)
{
	struct rw_tid_list l;
	size_t n;

	CHECK_OK(rw_threads_list(&l));
	n = l.count;
	rw_tid_list_free(&l);
	return n;
}

static const char *who(pid_t tid)
{
	static char buf[32];

	if (tid == atomic_load(&reader_tid))
		return "the reader";
	if (tid == atomic_load(&sleeper_tid))
		return "the sleeper";
	if (tid == getpid())
		return "the main thread";
	for (int i = 0; i < NWORKERS; i++)
		if (tid == atomic_load(&workers[i].tid)) {
			snprintf(buf, sizeof(buf), "worker %d", i);
			return buf;
		}
	return "?";
}

static const char *const why_name[] = { "SWITCHED", "NOT_CHECKED",
					"ON_STACK", "UNWIND_FAILED",
					"BUSY",	    "NO_ANSWER" };

static void show_pending(const struct rw_patch_info *info)
{
	for (size_t i = 0; i < info->npending && i < RW_PATCH_INFO_THREADS;
	     i++) {
		int w = info->pending[i].why;

		printf("    tid %d (%s): %s ip %#lx %s\n",
		       (int)info->pending[i].tid, who(info->pending[i].tid),
		       w >= 0 && w <= RW_PT_NO_ANSWER ? why_name[w] : "?",
		       (unsigned long)info->pending[i].ip,
		       info->pending[i].func);
	}
}

/*
 * rw_patch_wait() in steps of 250 ms, showing the pending threads after
 * each step that times out; fails after WAIT_MS.
 */
static void wait_verbose(struct rw_patch *p, const char *what)
{
	struct rw_patch_info info;
	uint64_t t0 = rw_test_now_ns();
	int err;

	while ((err = rw_patch_wait(p, 250)) == -ETIMEDOUT) {
		CHECK_OK(rw_patch_state(p, &info));
		printf("  %s: still in transition after %.0f ms, %zu/%zu "
		       "switched, %zu pending:\n",
		       what, (double)(rw_test_now_ns() - t0) / 1e6,
		       info.threads_switched, info.threads_total,
		       info.npending);
		show_pending(&info);
		if (rw_test_now_ns() - t0 > WAIT_MS * 1000000ull)
			break;
	}
	if (err) {
		fprintf(stderr, "rw_patch_wait (%s): %s\n", what,
			rw_strerror(err));
		exit(1);
	}
}

static void check_done(struct rw_patch *p, int state, const char *what)
{
	struct rw_patch_info info;
	size_t tasks = count_tasks();

	CHECK_OK(rw_patch_state(p, &info));
	printf("  %s: state %d, %zu/%zu threads switched, %u round(s), "
	       "transition %.3f ms (%zu threads in the process)\n",
	       what, info.state, info.threads_switched, info.threads_total,
	       info.attempts, (double)info.transition_ns / 1e6, tasks);
	CHECK_EQ(info.state, state);
	CHECK_EQ(info.forced, 0);
	CHECK_EQ(info.npending, 0);
	CHECK_EQ(info.threads_switched, info.threads_total);
	/* The workers, the two blocked threads and this one (the sleeper may
	 * be gone if it had to be waited for). */
	CHECK(info.threads_total >= NWORKERS + 3 - (fp_build ? 1 : 0));
	/* The last round counted the sleeper, which may have exited since. */
	CHECK(info.threads_total <=
	      tasks + (atomic_load(&sleeper_done) ? 1 : 0));
	CHECK(info.attempts >= 1);
	CHECK(info.transition_ns > 0);
}

/* Enable or disable, wait for it, and check the transition. */
static void transition(struct rw_patch *p, bool enable)
{
	const char *what = enable ? "enable" : "disable";
	long c0[NWORKERS];
	uint64_t t0;
	int err;

	sample_calls(c0);
	atomic_store(&phase, enable ? LP_ENABLING : LP_DISABLING);
	t0 = rw_test_now_ns();
	err = enable ? rw_patch_enable(p) : rw_patch_disable(p);
	if (err) {
		fprintf(stderr, "rw_patch_%s: %s: %s\n", what, rw_strerror(err),
			rw_patch_last_error());
		exit(1);
	}
	wait_verbose(p, what);
	atomic_store(&phase, enable ? LP_ENABLED : LP_DISABLED);
	t0 = rw_test_now_ns() - t0;
	printf("  %s + wait: %.3f ms\n", what, (double)t0 / 1e6);
	check_progress(c0, what, t0);
	check_done(p, enable ? RW_PATCH_ENABLED : RW_PATCH_DISABLED,
		   enable ? "enabled" : "disabled");
}

int main(void)
{
	const uintptr_t fn = (uintptr_t)buggy_sum;
	uint8_t orig[5], now[5];
	pthread_t rt, st;
	struct rw_patch *p = NULL;
	struct rw_patch_info info;
	long rsw, ssw;

	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 0; i < NDATA; i++) {
		data[i] = 3 * i + 1;
		new_sum += data[i];
	}
	old_sum = new_sum - data[NDATA - 1];
	CHECK_EQ(buggy_sum(data, NDATA), old_sum);

	lp_entry_read(fn, orig);
	CHECK(lp_entry_is_nops(fn));

	CHECK(pipe(pipefd) == 0);
	CHECK(pthread_create(&rt, NULL, reader_main, NULL) == 0);
	CHECK(pthread_create(&st, NULL, sleeper_main, NULL) == 0);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_create(&workers[i].t, NULL, worker_main,
				     &workers[i]) == 0);
	wait_stable_calls(LP_BEFORE, STABLE_CALLS);
	while (!atomic_load(&reader_tid) || !atomic_load(&sleeper_tid))
		usleep(1000);
	wait_blocked(atomic_load(&reader_tid), SYS_read, "reader");
	wait_blocked(atomic_load(&sleeper_tid), SYS_clock_nanosleep, "sleeper");
	rsw = ctxt_switches(atomic_load(&reader_tid));
	ssw = ctxt_switches(atomic_load(&sleeper_tid));

	p = lp_load(LP_LIVE_PATCH, 0);
	CHECK_OK(rw_patch_state(p, &info));
	CHECK_EQ(info.state, RW_PATCH_LOADED);
	CHECK_EQ(info.nfuncs, 1);
	CHECK(strcmp(info.name, "lp_live_fix") == 0);
	CHECK(lp_entry_is(fn, orig));
	printf("test_lp_live: old sum %ld, new sum %ld, %d workers\n", old_sum,
	       new_sum, NWORKERS);

	transition(p, true);

	/* The entry jumps into the patch's function (through a jump stub
	 * when the patch is out of rel32 reach). */
	lp_entry_read(fn, now);
	CHECK(lp_entry_jmp(fn) != 0);
	{
		uintptr_t target = lp_entry_target(fn);
		char path[512];
		long (*fixed)(const int *, int);

		lp_mapping_path(target, path, sizeof(path));
		printf("  entry: jmp %#lx, the new function at %#lx (%s)\n",
		       (unsigned long)lp_entry_jmp(fn), (unsigned long)target,
		       path);
		CHECK(strstr(path, "lp_live_patch.so") != NULL);
		fixed = (long (*)(const int *, int))target;
		CHECK_EQ(fixed(data, NDATA), new_sum);
#ifdef LP_EXPECT_BTI
		check_bti(fn, target);
#endif
	}
	CHECK_EQ(buggy_sum(data, NDATA), new_sum);
	wait_stable_calls(LP_ENABLED, STABLE_CALLS);
	CHECK_EQ(rw_patch_enable(p), -EALREADY);
	CHECK_EQ(rw_patch_unload(p), -EBUSY);

	transition(p, false);
	CHECK(lp_entry_is(fn, orig));
	CHECK_EQ(buggy_sum(data, NDATA), old_sum);
	wait_stable_calls(LP_DISABLED, STABLE_CALLS);

	/* The blocked threads slept through both transitions, never woken. */
	if (fp_build) {
		/* A reader that was signalled may still be on its way back
		 * into read(). */
		wait_blocked(reader_tid, SYS_read, "reader");
		printf("  frame pointers: reader woken %ld times, sleeper %s\n",
		       ctxt_switches(reader_tid) - rsw,
		       atomic_load(&sleeper_done) ? "done" : "still asleep");
	} else {
		if (atomic_load(&sleeper_done)) {
			fprintf(stderr, "the sleeper woke before both "
					"transitions were done: the test "
					"proves nothing\n");
			return 1;
		}
		CHECK_EQ(lp_syscall_of(reader_tid), SYS_read);
		CHECK_EQ(lp_syscall_of(sleeper_tid), SYS_clock_nanosleep);
		CHECK_EQ(ctxt_switches(reader_tid), rsw);
		CHECK_EQ(ctxt_switches(sleeper_tid), ssw);
	}

	atomic_store(&phase, LP_STOP);
	for (int i = 0; i < NWORKERS; i++)
		CHECK(pthread_join(workers[i].t, NULL) == 0);
	CHECK(write(pipefd[1], "x", 1) == 1);
	CHECK(pthread_join(rt, NULL) == 0);
	printf("  reader: read() = %zd ('%c', errno %d)\n", reader_ret,
	       reader_byte, reader_ret < 0 ? reader_errno : 0);
	CHECK_EQ(reader_ret, 1);
	CHECK_EQ(reader_byte, 'x');
	if (fp_build) {
		/* The enable waited for the sleeper's end: on time, with 0. */
		CHECK(pthread_join(st, NULL) == 0);
		printf("  sleeper: clock_nanosleep() = %d after %.3f s\n",
		       sleeper_ret, (double)sleeper_ns / 1e9);
		CHECK_EQ(sleeper_ret, 0);
		CHECK(sleeper_ns >= (uint64_t)SLEEP_S * 1000000000ull);
	} else {
		/* Not woken once through both transitions (its context
		 * switches, checked above): no handler ran in its sleep,
		 * which goes on until the process exits (its end, up to
		 * 90 s later emulated, would prove nothing more). */
		printf("  sleeper: still in clock_nanosleep(), never woken\n");
	}

	/* The workers' results. */
	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];
		long sum = atomic_load(&w->spanning[0]) +
			   atomic_load(&w->spanning[1]);

		for (int ph = 0; ph < LP_NPHASES; ph++)
			sum += atomic_load(&w->in_phase[ph][0]) +
			       atomic_load(&w->in_phase[ph][1]);
		printf("  worker %d: %ld calls; old/new before %ld/%ld, "
		       "enabling %ld/%ld, enabled %ld/%ld, disabling %ld/%ld, "
		       "disabled %ld/%ld, across a change %ld/%ld\n",
		       i, atomic_load(&w->calls),
		       atomic_load(&w->in_phase[LP_BEFORE][0]),
		       atomic_load(&w->in_phase[LP_BEFORE][1]),
		       atomic_load(&w->in_phase[LP_ENABLING][0]),
		       atomic_load(&w->in_phase[LP_ENABLING][1]),
		       atomic_load(&w->in_phase[LP_ENABLED][0]),
		       atomic_load(&w->in_phase[LP_ENABLED][1]),
		       atomic_load(&w->in_phase[LP_DISABLING][0]),
		       atomic_load(&w->in_phase[LP_DISABLING][1]),
		       atomic_load(&w->in_phase[LP_DISABLED][0]),
		       atomic_load(&w->in_phase[LP_DISABLED][1]),
		       atomic_load(&w->spanning[0]),
		       atomic_load(&w->spanning[1]));
		if (atomic_load(&w->bad)) {
			fprintf(stderr,
				"worker %d: %ld calls returned neither sum "
				"(first: %ld)\n",
				i, atomic_load(&w->bad), w->first_bad);
			return 1;
		}
		if (atomic_load(&w->wrong)) {
			fprintf(stderr,
				"worker %d: %ld calls returned the wrong side "
				"(first: %ld in phase %s)\n",
				i, atomic_load(&w->wrong), w->first_wrong,
				phase_name[w->first_wrong_phase]);
			return 1;
		}
		CHECK_EQ(sum, atomic_load(&w->calls));
		CHECK(atomic_load(&w->in_phase[LP_BEFORE][0]) >= STABLE_CALLS);
		CHECK(atomic_load(&w->in_phase[LP_ENABLED][1]) >= STABLE_CALLS);
		CHECK(atomic_load(&w->in_phase[LP_DISABLED][0]) >=
		      STABLE_CALLS);
	}

	CHECK_OK(rw_patch_unload(p));
	CHECK(close(pipefd[0]) == 0 && close(pipefd[1]) == 0);
	printf("test_lp_live: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 */
