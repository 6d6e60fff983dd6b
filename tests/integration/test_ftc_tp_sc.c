/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 4): a tracepoint and a static call in the
 * functions being traced. ftc_tp_sc(x, seq) of libftc_lib.so (built as
 * Debian builds a package, with patchable entries: ftc/ftc.cmake) fires
 * the rewire tracepoint ftc_event(x, seq) and returns
 * rw_static_call(ftc_op)(x), whose targets ftc_op_double (2x) and
 * ftc_op_square (x * x) are patchable functions too.
 *
 * A probe set traces "ftc_tp_sc" and "ftc_op_*"; a tracepoint probe is
 * registered on ftc_event; the static call is switched. Three
 * workers call ftc_tp_sc(5, ...) all along and check each call made while
 * nothing changed (ftc_test.h): its result (the static call's current
 * target: 10 or 25) and the probe calls it made in the thread, the
 * tracepoint probe counting as one entry (so a call traced by both makes
 * 3 entries: ftc_tp_sc, the target, the tracepoint; and in graph mode 2
 * returns). Parts 1 and 2 run with an entry-only set, then with a graph
 * set: ftc_tp_sc tail-calls the static call's trampoline, which jumps to
 * the traced target, so in graph mode the target is entered with its
 * return address already replaced by ftc_tp_sc's return trampoline.
 *
 *   1. Step by step: tracepoint probe registered; function tracing
 *      attached over it; the static call switched to square while both
 *      run; the tracepoint probe unregistered and registered again while
 *      traced (the tracepoint's static key in the traced function's body
 *      changes); switched back to double; tracing detached (the tracepoint
 *      keeps firing); each step followed by exact counts of calls made by
 *      the main thread: set entries and returns per function, tracepoint
 *      hits with the right arguments.
 *   2. Churn: ROUNDS rounds that each change one of the three (attach or
 *      detach the set, register or unregister the tracepoint probe,
 *      switch the static call), with the workers' checks.
 * At the end the entries of the three functions hold their original NOPs
 * and the tracepoint is off.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("function tracing needs a backend that patches code (x86_64, "
	     "aarch64)");
}
#else

#include "ftc.h"
#include "ftc_test.h"

#define NWORKERS 3
#define CALLS 500
#define SETTLE 50
#define ARG 5

enum { FTP, FDOUBLE, FSQUARE };

static const char *const pats[] = { "ftc_tp_sc", "ftc_op_*" };

static struct ftc_set S;
static struct ftc_worker workers[NWORKERS];

/* The tracepoint probe: counts as an entry in the thread (ftc_test.h). */
static _Atomic long tp_hits, tp_bad;

static void on_event(void *data, int x, int seq)
{
	(void)data;
	ftc_tls_entries++;
	atomic_fetch_add(&tp_hits, 1);
	if (x != ARG || seq < 0)
		atomic_fetch_add(&tp_bad, 1);
}

static int call_tp_sc(int x)
{
	return ftc_tp_sc(x, 0);
}

static int sc_side(int x, int r)
{
	return r == 2 * x ? 0 : r == x * x ? 1 : -1;
}

/* What is on: the set, the tracepoint probe, the square target. */
static bool traced, tp_on, square;

static void publish(void)
{
	ftc_publish(square, (traced ? 2 : 0) + (tp_on ? 1 : 0),
		    traced && S.graph ? 2 : 0);
}

static void set_traced(bool on)
{
	ftc_changing();
	if (on)
		ftc_attach(&S, pats, 2);
	else
		ftc_detach(&S);
	traced = on;
	publish();
}

static void set_tp(bool on)
{
	ftc_changing();
	if (on) {
		CHECK_OK(rw_tracepoint_probe_register(
			ftc_event, on_event, NULL, RW_TRACEPOINT_PRIO_DEFAULT));
	} else {
		CHECK_OK(rw_tracepoint_probe_unregister(ftc_event, on_event,
							NULL));
		CHECK_OK(rw_tracepoint_synchronize_unregister());
	}
	tp_on = on;
	publish();
}

static void set_square(bool on)
{
	ftc_changing();
	if (on)
		CHECK_OK(rw_static_call_update(ftc_op, ftc_op_square));
	else
		CHECK_OK(rw_static_call_update(ftc_op, ftc_op_double));
	square = on;
	publish();
}

/* CALLS calls from this thread: each returns the current target's value,
 * the set counted them (ftc_tp_sc and the target) and the tracepoint
 * probe saw each one. */
static void calls(const char *what)
{
	long e[3], r[3], t = atomic_load(&tp_hits), e0 = ftc_tls_entries;
	long want = 0;

	for (int i = 0; i < 3; i++) {
		e[i] = ftc_entries(&S, i);
		r[i] = ftc_returns(&S, i);
	}
	for (int i = 0; i < CALLS; i++)
		CHECK_EQ(ftc_tp_sc(ARG, i), square ? ARG * ARG : 2 * ARG);
	/* The workers add to the shared counters: count this thread's own
	 * probe calls exactly, and check the shared ones grew at least as
	 * much. */
	want = CALLS * ((traced ? 2 : 0) + (tp_on ? 1 : 0));
	if (ftc_tls_entries - e0 != want) {
		fprintf(stderr,
			"%s: %d calls made %ld probe calls in this thread, "
			"expected %ld\n",
			what, CALLS, ftc_tls_entries - e0, want);
		exit(1);
	}
	if (traced) {
		int target = square ? FSQUARE : FDOUBLE;

		CHECK(ftc_entries(&S, FTP) - e[FTP] >= CALLS);
		CHECK(ftc_entries(&S, target) - e[target] >= CALLS);
		if (S.graph) {
			CHECK(ftc_returns(&S, FTP) - r[FTP] >= CALLS);
			CHECK(ftc_returns(&S, target) - r[target] >= CALLS);
		}
	}
	if (tp_on)
		CHECK(atomic_load(&tp_hits) - t >= CALLS);
	ftc_workers_settle(workers, NWORKERS, SETTLE);
	printf("  %s: ok\n", what);
}

static void expect_off(void)
{
	for (int i = 0; i < 3; i++)
		CHECK(lp_entry_is_nops(S.fn[i]));
	CHECK(!rw_tracepoint_enabled(ftc_event));
}

/* Parts 1 and 2 with the set in entry-only (@graph false) or graph mode. */
static void run(bool graph)
{
	const long rounds = rw_test_scale(150, 3000);
	const char *mode = graph ? "graph" : "entry";
	long n[3] = { 0 };
	char what[96];

	ftc_set_init(&S, graph, "ftc_tp_sc", "ftc_op_double", "ftc_op_square",
		     NULL);
	printf(" %s mode:\n", mode);

	/* 1. Step by step. */
	set_tp(true);
	calls("1. tracepoint");
	set_traced(true);
	ftc_check_funcs(&S);
	calls("1. tracepoint, traced");
	set_square(true);
	calls("1. tracepoint, traced, square");
	set_tp(false);
	calls("1. traced, square");
	set_tp(true);
	calls("1. tracepoint again, traced, square");
	set_square(false);
	calls("1. tracepoint, traced, double");
	set_traced(false);
	calls("1. tracepoint, detached");
	set_tp(false);
	calls("1. all off");
	expect_off();

	/* 2. Churn: change one of the three at random each round. */
	srand(13);
	for (long i = 0; i < rounds; i++) {
		int which = rand() % 3;

		n[which]++;
		if (which == 0)
			set_traced(!traced);
		else if (which == 1)
			set_tp(!tp_on);
		else
			set_square(!square);
		if (i % 10 == 0)
			ftc_workers_settle(workers, NWORKERS, 1);
	}
	printf("  2. %ld rounds: tracing %ld, tracepoint %ld, static call "
	       "%ld changes\n",
	       rounds, n[0], n[1], n[2]);
	if (traced)
		set_traced(false);
	if (tp_on)
		set_tp(false);
	if (square)
		set_square(false);
	calls("2. all off");
	expect_off();
	snprintf(what, sizeof(what), "the set (%s mode)", mode);
	ftc_check_clean(&S, what);
	printf("  set: %ld/%ld/%ld entries (tp_sc/double/square), %ld/%ld/%ld "
	       "returns\n",
	       ftc_entries(&S, FTP), ftc_entries(&S, FDOUBLE),
	       ftc_entries(&S, FSQUARE), ftc_returns(&S, FTP),
	       ftc_returns(&S, FDOUBLE), ftc_returns(&S, FSQUARE));
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	ftc_set_init(&S, false, "ftc_tp_sc", "ftc_op_double", "ftc_op_square",
		     NULL);
	expect_off();
	CHECK(rw_static_call_query(ftc_op) == ftc_op_double);
	ftc_changing();
	publish();
	for (int i = 0; i < NWORKERS; i++)
		ftc_worker_start(&workers[i], call_tp_sc, ARG, sc_side, NULL);
	printf("test_ftc_tp_sc:\n");
	calls("nothing on");
	run(false);
	run(true);
	ftc_workers_stop(workers, NWORKERS);
	CHECK_EQ(atomic_load(&tp_bad), 0);
	printf("  tracepoint probe: %ld hits\n", atomic_load(&tp_hits));
	printf("test_ftc_tp_sc: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
