/* SPDX-License-Identifier: MIT */
/*
 * Torture (issue 13, point 4): function tracing and live patching of the
 * same function, interleaved in every order, cycle after cycle, while
 * threads call it.
 *
 * ftc_leaf() of libftc_lib.so (built as Debian builds a package, with
 * patchable entries: tests/integration/ftc/ftc.cmake) returns 3x + 1;
 * ftc_patch_leaf.so makes it 3x + 2. Each cycle loads the patch, runs the
 * four steps attach (a probe set, graph or entry-only in turn), enable +
 * wait, detach, disable + wait in one of the six orders that keep attach
 * before detach and enable before disable, and unloads the patch (trying
 * again while a thread is still in its code). Four workers call ftc_leaf
 * all along (ftc_test.h), each call checked against the thread's patch
 * state before and after it (the body it ran lies between them), and,
 * when nothing changed during the call, against the published moment:
 * the body (old before the enable completed and after the disable did,
 * new in between) and the exact probe entries and returns it caused.
 *
 * Oracle: no worker error; after every step the entry holds the bytes the
 * step's users make (the NOPs when nobody, the patch's jump when only the
 * patch, else a trampoline's jump), and the NOPs at the end of each cycle;
 * the probe sets saw no function but ftc_leaf and every graph entry had
 * its return, but for calls that were running when their set was
 * detached.
 *
 * Length: up to 24 cycles, and at least 12 (every order with either set):
 * the run stops after 12 once 5 s have passed (natively 24 take about
 * 2 s; emulated, a cycle takes seconds). REWIRE_TORTURE_LONG=1: all of
 * 240 cycles (their time: 60 s). The times are multiplied by
 * rw_test_time_scale(), and rw_test_enough() ends a run that is 20 times
 * over its time: one that did not reach its minimum of cycles fails.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing and live patching need a backend that "
	     "patches code (x86_64, aarch64)");
}
#else

#include "ftc.h"
#include "ftc_test.h"

#define NWORKERS 4
#define WAIT_MS 10000
#define SETTLE 20

#define PATCH FTC_DIR "/ftc_patch_leaf.so"

static struct ftc_worker workers[NWORKERS];
static const uintptr_t fn = (uintptr_t)ftc_leaf;
static const char *const pat[] = { "ftc_leaf" };

static int leaf_side(int x, int r)
{
	return r == 3 * x + 1 ? 0 : r == 3 * x + 2 ? 1 : -1;
}

/* The six orders of attach (A), enable (E), detach (D), disable (X); the
 * first cycle patches the function before it was ever traced. */
static const char *const orders[] = { "EADX", "EAXD", "EXAD",
				      "AEDX", "AEXD", "ADEX" };

static struct ftc_set sets[2]; /* entry-only, graph */
static struct ftc_set *set;
static struct rw_patch *p;
static bool traced, patched;

static void publish(void)
{
	ftc_publish(patched, traced, traced && set->graph);
}

static void check_entry(const char *what, int cycle)
{
	bool ok;

	if (!traced && !patched)
		ok = lp_entry_is_nops(fn);
	else if (!traced)
		ok = ftc_entry_jump(fn) &&
		     lp_entry_target(fn) == lp_new_func_of(PATCH, 0);
	else
		ok = ftc_entry_jump(fn) &&
		     !lp_in_object(lp_entry_target(fn), "ftc_patch_leaf");
	if (!ok) {
		ftc_entry_show(fn, "now");
		fprintf(stderr,
			"cycle %d, after %s: the entry is not what a%s%s "
			"entry holds\n",
			cycle, what, traced ? " traced" : "",
			patched ? " patched" : "n idle");
		exit(1);
	}
}

static void step(char op, int cycle)
{
	const char *what = "?";

	ftc_changing();
	switch (op) {
	case 'A':
		ftc_attach(set, pat, 1);
		traced = true;
		what = "attach";
		break;
	case 'D':
		ftc_detach(set);
		traced = false;
		what = "detach";
		break;
	case 'E':
		lp_enable_wait(p, WAIT_MS);
		patched = true;
		what = "enable";
		break;
	case 'X':
		lp_disable_wait(p, WAIT_MS);
		patched = false;
		what = "disable";
		break;
	}
	publish();
	check_entry(what, cycle);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
}

static void unload(void)
{
	uint64_t deadline = lp_deadline_ms(5000);
	int err;

	for (int i = 0; i < NWORKERS; i++)
		atomic_store(&workers[i].p, NULL);
	while ((err = rw_patch_unload(p)) == -EBUSY &&
	       rw_test_now_ns() < deadline)
		usleep(1000);
	if (err) {
		fprintf(stderr, "rw_patch_unload: %s: %s\n", rw_strerror(err),
			rw_patch_last_error());
		exit(1);
	}
	p = NULL;
}

int main(void)
{
	const int cycles = (int)rw_test_scale(24, 240);
	const int min_cycles = (int)rw_test_scale(12, 240);
	const uint64_t max_ns = (uint64_t)rw_test_scale(5, 60) *
				rw_test_time_scale() * 1000000000ull;
	const uint64_t t0 = rw_test_now_ns();
	int c;

	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(lp_entry_is_nops(fn));
	ftc_set_init(&sets[0], false, "ftc_leaf", NULL);
	ftc_set_init(&sets[1], true, "ftc_leaf", NULL);
	set = &sets[0];
	ftc_changing();
	publish();
	for (int i = 0; i < NWORKERS; i++)
		ftc_worker_start(&workers[i], ftc_leaf, 5, leaf_side, NULL);
	for (c = 0; c < cycles && !rw_test_enough(t0, max_ns, c, min_cycles);
	     c++) {
		const char *order = orders[c % 6];

		set = &sets[(c / 6) % 2];
		p = lp_load(PATCH, 0);
		for (int i = 0; i < NWORKERS; i++)
			atomic_store(&workers[i].p, p);
		for (const char *op = order; *op; op++)
			step(*op, c);
		unload();
		CHECK(lp_entry_is_nops(fn));
	}
	ftc_workers_stop(workers, NWORKERS);
	if (c < min_cycles) {
		fprintf(stderr,
			"torture_ftc_lp: %d cycles in %.1f s, fewer than "
			"%d\n",
			c, (double)(rw_test_now_ns() - t0) / 1e9, min_cycles);
		exit(1);
	}
	for (int i = 0; i < 2; i++)
		ftc_check_clean(&sets[i], i ? "graph set" : "entry set");
	ftc_check_returns(&sets[1], 0, NWORKERS);
	printf("torture_ftc_lp: %d cycles (every order, entry and graph "
	       "sets); the entry set saw %ld calls, the graph set %ld\n",
	       c, ftc_entries(&sets[0], 0), ftc_entries(&sets[1], 0));
	printf("torture_ftc_lp: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
