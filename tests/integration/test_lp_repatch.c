/* SPDX-License-Identifier: MIT */
/*
 * Integration: a function patched, unpatched and unloaded, then patched
 * again, for several cycles, while threads call it.
 *
 * pick(x) returns x + 1000; patch A (lp_repatch_a.so) makes it x + 2000,
 * patch B (lp_repatch_b.so) x + 3000, so every result names the code that
 * ran. Four workers call pick() in a loop; two of them sleep briefly every
 * few calls, so that they are also found blocked in a system call (and
 * checked from outside). Each cycle loads A, enables it, disables it,
 * enables and disables it again, unloads it; loads A again (the same file:
 * usually mapped where the first load was), enables, disables, unloads;
 * then the same with B (other new code, at another offset in its object).
 * Each cycle begins where the last one left the function: unpatched, its
 * patch unloaded. The default run makes more transitions than rewire keeps
 * retired dispatchers for (core.c, RETIRE_SWEEP), so later ones reuse
 * freed dispatcher slots.
 *
 * Oracle (any violation fails):
 * - every call returns one of the three tags;
 * - a call that starts and ends inside one stable phase returns that
 *   phase's tag: the patch's once rw_patch_wait() returned after the
 *   enable, the old one once it returned after the disable (the main
 *   thread publishes the phase after the wait; it waits for every worker
 *   to make 5,000 calls in it, 1,000 in the emulated machine);
 * - the entry of pick() leads to the patch's function once the enable
 *   completed, and holds its original NOPs once the disable completed.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs the x86_64 or aarch64 backend");
}
#else

#include "lp_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define NWORKERS 4
#define SLEEP_EVERY 512 /* calls between two sleeps of a sleeping worker */
#define WAIT_MS 10000
#define TAG_OLD 1000
#define TAG_A 2000
#define TAG_B 3000

long pick(long x);

__attribute__((noinline, noipa)) long pick(long x)
{
	return x + TAG_OLD;
}

/*
 * The phase: a sequence number (bits 2 and up) and the tag a call made
 * inside it must return (bits 0-1: 0 any, 1 old, 2 A, 3 B).
 */
static _Atomic uint32_t phase;
static _Atomic bool stop;
static uint32_t seq;

static long want_tag(uint32_t ph)
{
	static const long tags[4] = { 0, TAG_OLD, TAG_A, TAG_B };

	return tags[ph & 3];
}

struct worker {
	pthread_t t;
	_Atomic pid_t tid;
	_Atomic long calls;
	_Atomic long bad;   /* not one of the three tags */
	_Atomic long wrong; /* another tag than the phase's */
	_Atomic long first_tag;
};

static struct worker workers[NWORKERS];

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	bool sleeper = w - workers >= NWORKERS / 2;

	atomic_store(&w->tid, (pid_t)syscall(SYS_gettid));

	for (long i = 0; !atomic_load(&stop); i++) {
		uint32_t b = atomic_load(&phase), a;
		long x = i & 0xff, tag = pick(x) - x;

		if (sleeper && i % SLEEP_EVERY == 0) {
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
		}

		a = atomic_load(&phase);
		if (tag != TAG_OLD && tag != TAG_A && tag != TAG_B) {
			atomic_fetch_add(&w->bad, 1);
		} else if (a == b && want_tag(b) && tag != want_tag(b)) {
			if (atomic_fetch_add(&w->wrong, 1) == 0)
				atomic_store(&w->first_tag, tag);
		}
		atomic_fetch_add(&w->calls, 1);
	}
	return NULL;
}

static void set_phase(long tag)
{
	uint32_t want = tag == TAG_OLD ? 1
			: tag == TAG_A ? 2
			: tag == TAG_B ? 3
				       : 0;

	atomic_store(&phase, (++seq << 2) | want);
}

/* Every worker makes @n whole calls in the phase published last. */
static void wait_calls(long n)
{
	uint64_t deadline = lp_deadline_ms(WAIT_MS);

	for (int i = 0; i < NWORKERS; i++) {
		/* The call in progress may have begun before. */
		long target = atomic_load(&workers[i].calls) + n + 1;

		if (!LP_WAIT_UNTIL(atomic_load(&workers[i].calls) >= target,
				   deadline)) {
			fprintf(stderr, "worker %d stalled: %ld calls\n", i,
				atomic_load(&workers[i].calls));
			lp_report_stall(atomic_load(&workers[i].tid));
			exit(1);
		}
	}
}

static void check_calls(const char *step)
{
	bool fail = false;

	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];
		long bad = atomic_exchange(&w->bad, 0),
		     wrong = atomic_exchange(&w->wrong, 0);

		if (bad)
			fprintf(stderr,
				"%s: worker %d: %ld call(s) returned "
				"no known tag\n",
				step, i, bad);
		if (wrong)
			fprintf(stderr,
				"%s: worker %d: %ld call(s) ran the wrong "
				"code (first: tag %ld)\n",
				step, i, wrong, atomic_load(&w->first_tag));
		fail |= bad || wrong;
	}
	if (fail)
		exit(1);
}

static void go(struct rw_patch *p, bool enable, long tag, uintptr_t newfn,
	       long calls, const char *step)
{
	uintptr_t fn = (uintptr_t)pick;

	set_phase(0);
	lp_go_checked(p, enable, WAIT_MS);
	set_phase(tag);
	wait_calls(calls);
	check_calls(step);
	if (enable)
		CHECK_EQ(lp_entry_target(fn), newfn);
	else
		CHECK(lp_entry_is_nops(fn));
}

/* Load @name, enable and disable it (@twice: two times), unload it. */
static void cycle(const char *name, long tag, bool twice, long calls, int c)
{
	char path[PATH_MAX], step[128];
	struct rw_patch *p;
	uintptr_t newfn;
	int err;

	lp_patch_path(path, sizeof(path), LP_REPATCH_DIR, name);
	p = lp_load(path, 0);
	newfn = lp_new_func_of(path, 0);
	if (c == 0)
		printf("  %s: new function at %#lx\n", name,
		       (unsigned long)newfn);
	for (int k = 0; k < (twice ? 2 : 1); k++) {
		snprintf(step, sizeof(step), "cycle %d, %s enabled (%d)", c,
			 name, k + 1);
		go(p, true, tag, newfn, calls, step);
		snprintf(step, sizeof(step), "cycle %d, %s disabled (%d)", c,
			 name, k + 1);
		go(p, false, TAG_OLD, newfn, calls, step);
	}
	err = rw_patch_unload(p);
	if (err) {
		fprintf(stderr, "rw_patch_unload(%s): %s: %s\n", name,
			rw_strerror(err), rw_patch_last_error());
		exit(1);
	}
	snprintf(step, sizeof(step), "cycle %d, %s unloaded", c, name);
	set_phase(TAG_OLD);
	wait_calls(calls);
	check_calls(step);
}

int main(void)
{
	/* 10 cycles are 80 transitions, more than RETIRE_SWEEP (64): keep
	 * them in the emulated machine too, with fewer calls per phase. */
	int cycles = rw_test_scale(10, 100);
	long calls = rw_test_time_scale() > 1 ? 1000
					      : rw_test_scale(5000, 50000);

	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK_EQ(pick(1), 1 + TAG_OLD);
	set_phase(TAG_OLD);
	for (int i = 0; i < NWORKERS; i++)
		CHECK_EQ(pthread_create(&workers[i].t, NULL, worker_main,
					&workers[i]),
			 0);
	wait_calls(calls);
	check_calls("before");
	for (int c = 0; c < cycles; c++) {
		cycle("lp_repatch_a", TAG_A, true, calls, c);
		cycle("lp_repatch_a", TAG_A, false, calls, c);
		cycle("lp_repatch_b", TAG_B, false, calls, c);
		printf("cycle %d: ok\n", c);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(workers[i].t, NULL);
	printf("PASS: %d cycles, %ld calls per worker and phase\n", cycles,
	       calls);
	return 0;
}
#endif
