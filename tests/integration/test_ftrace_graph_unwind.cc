/* SPDX-License-Identifier: MIT */
/*
 * Integration: everything that leaves a function without its return, or
 * comes back to it from elsewhere, through functions traced in graph mode
 * (rewire/ftrace.h, issue 13 point 2).
 *
 * Graph mode replaces a traced call's return address with rewire's return
 * trampoline and keeps the real one on the thread's shadow stack. A frame
 * that the program leaves without returning (an exception, longjmp,
 * cancellation, pthread_exit) leaves a stale shadow entry behind, and an
 * unwinder that reads the replaced return address finds no unwind
 * information for it (std::terminate, or a cancelled thread whose cleanup
 * handlers never run). A coroutine switch leaves frames of one stack
 * pending while another stack's frames return.
 *
 * The traced functions are libftu.so's (ftrace_unwind/ftu.h), built -O2
 * with Debian's flags and patchable entries; all of them ("ftu_*") are
 * traced with a probe that logs, per thread, every entry and return with
 * its depth. Each case runs in a child process of its own (a crash fails
 * that case only), and checks
 *   - the program: results, caught exceptions, destructors and cleanup
 *     handlers that ran, pthread_join()'s value;
 *   - the trace, exactly: the entries of every call in order, the returns
 *     of the calls that returned and of no others (a frame left by an
 *     exception, a jump, cancellation or pthread_exit has no return), the
 *     depth of each (the traced calls active around it, 0 outermost: a
 *     frame that was left is not counted any more), and the destructors
 *     that the landing pads call while an exception or a cancellation
 *     unwinds (traced calls too, at the depth of the frame they clean);
 *   - traced calls afterwards, at the same and a greater depth than the
 *     frames that were left, have their returns.
 *
 *	sibling		sibling calls (a jmp to a traced function from a
 *			traced function, as -O2 compiles "return f(x);"):
 *			the callee's return goes through the trampoline
 *			twice, and both returns are traced, nested
 *	attach_race	a set attached while another set's entry probe runs
 *			for a call (held there; torture_ftrace hits the same
 *			window when a thread is preempted between the probes
 *			and the replacement of the return address): the new
 *			set sees neither the entry nor the return of that
 *			call
 *	backtrace	backtrace() 5 traced frames down walks through them
 *			(no frame of rewire's), and they are traced whole
 *	cxx_catch	an exception thrown 4 traced frames down and caught by
 *			a traced frame, then by the untraced caller
 *	cxx_rethrow	caught and rethrown by two traced frames
 *	cxx_threads	4 threads throwing and catching at once
 *	longjmp		longjmp to a traced frame and to the untraced caller
 *	siglongjmp	siglongjmp out of a traced signal handler, on the
 *			thread's stack and on an alternate signal stack
 *	cancel_cxx	pthread_cancel of a thread blocked in read() 4 traced
 *			C++ frames down (their destructors run, traced on
 *			entry only: see run_blocked())
 *	cancel_read	the same in C frames with pthread_cleanup_push
 *	cancel_cond	the same, blocked in pthread_cond_wait
 *	cancel_sigblock	the same, the thread blocking every signal:
 *			pthread_cancel() still returns at once
 *	cancel_disabled	pthread_cancel of a thread that has cancellation
 *			disabled: until it enables it and reaches read(),
 *			its traced calls are traced whole; then it unwinds
 *			through them (cleanup handlers, its start
 *			function's too)
 *	cancel_disabled2  the same, the thread having made traced calls
 *			before it was cancelled
 *	exit_c		pthread_exit 4 traced C frames down: cleanup handlers
 *			run, pthread_join gets the value
 *	exit_cxx	the same through C++ frames (destructors)
 *	coro		3 makecontext coroutines whose stacks hold traced
 *			frames, switching back and forth with swapcontext;
 *			each coroutine's start function is traced and returns
 *			to uc_link through the trampoline
 *	coro_migrate	a coroutine suspended in traced frames on one thread
 *			and resumed on another (as work-stealing schedulers
 *			do): its returns still go to the right place
 *	deep		recursion past RW_FTRACE_GRAPH_DEPTH: the result is
 *			right, shadow_full counts the untraced returns, the
 *			calls past the full stack cost under 100 us each,
 *			and later calls are traced whole
 *	churn		4,000 short threads (2,000 emulated) with traced
 *			calls (some leave by pthread_exit or cancellation
 *			inside traced frames): no shadow stack leaks
 *			(malloc'ed bytes, mappings and RSS do not grow with
 *			the number of threads)
 *
 * Usage: test_ftrace_graph_unwind [CASE...] (all cases without arguments).
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

#include "ft_test.h"
#include "ftu.h"

#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

/* See test_lp_unwind_cxx.cc: GCC 12's ASan and pthread_cancel() through
 * C++ frames need fake stacks. */
extern "C" const char *__asan_default_options(void);
extern "C" __attribute__((used, visibility("default"))) const char *
__asan_default_options(void)
{
	return "detect_stack_use_after_return=1";
}

static struct ft_table tab;
static struct ft_ctx ctx;
static struct rw_ftrace *tracer;

/* What ftu_rec(n) returns. */
static int rec_value(int n)
{
	int r = 1;

	for (int i = 1; i <= n; i++)
		r = (r ^ (r >> 3)) + i;
	return r;
}

/*
 * Traces that differ from the calls. A case goes on after one (the
 * program's behaviour is still checked to the end, and later traces may
 * show more), prints the first few, and fails in finish().
 */
static int mismatches;

static int load_int(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void setup(void)
{
	static const char *const names[][2] = {
		{ "ftu_rec", "rec" },
		{ "ftu_throw_rec", "throw_rec" },
		{ "ftu_catch_mid", "catch_mid" },
		{ "ftu_rethrow", "rethrow" },
		{ "ftu_rethrow2", "rethrow2" },
		{ "ftu_cxx_block", "cxx_block" },
		{ "ftu_cxx_exit", "cxx_exit" },
		{ "_ZN9ftu_guardD2Ev", "dtor" },
		{ "ftu_jmp_rec", "jmp_rec" },
		{ "ftu_setjmp_mid", "setjmp_mid" },
		{ "ftu_sig_rec", "sig_rec" },
		{ "ftu_sig_handler", "sig_handler" },
		{ "ftu_c_block_read", "c_block_read" },
		{ "ftu_c_block_cond", "c_block_cond" },
		{ "ftu_c_exit", "c_exit" },
		{ "ftu_yield", "yield" },
		{ "ftu_coro_rec", "coro_rec" },
		{ "ftu_coro_main", "coro_main" },
		{ "ftu_init", "init" },
		{ "ftu_leaf", "leaf" },
		{ "ftu_sib", "sib" },
		{ "ftu_sib2", "sib2" },
		{ "ftu_sib_outer", "sib_outer" },
		{ "ftu_bt_rec", "bt_rec" },
	};
	static const char *const pats[] = { "ftu_*" };

	for (const auto &n : names)
		ft_table_add(&tab, RTLD_DEFAULT, n[0], n[1]);
	CHECK_OK(ftu_init());
	ctx.tab = &tab;
	tracer = ft_attach(pats, 1, &ctx, 1);
	/* Every function of libftu.so is traced, the destructor too. */
	for (unsigned i = 0; i < tab.n; i++) {
		bool found = false;

		for (size_t j = 0; j < rw_ftrace_nfuncs(tracer); j++)
			if (rw_ftrace_func_at(tracer, j)->addr ==
			    tab.fn[i].addr)
				found = true;
		if (!found) {
			fprintf(stderr, "%s is not traced\n", tab.fn[i].name);
			exit(1);
		}
	}
}

static void finish(void)
{
	struct rw_ftrace_stats st;

	if (mismatches) {
		fprintf(stderr, "%d trace(s) differ from the calls\n",
			mismatches);
		exit(1);
	}
	rw_ftrace_get_stats(tracer, &st);
	CHECK_EQ(st.recursion, 0);
	CHECK_EQ(__atomic_load_n(&ctx.foreign, __ATOMIC_SEQ_CST), 0);
	ft_detach(tracer);
	tracer = NULL;
}

/* Expected events of ftu_rec(n) called at @depth. */
static void exp_rec(struct ft_log *l, int n, unsigned depth)
{
	for (int i = 0; i <= n; i++)
		ft_expect(l, &tab, "rec", 0, depth + i);
	for (int i = n; i >= 0; i--)
		ft_expect(l, &tab, "rec", 1, depth + i);
}

/* A destructor called (and returning) at @depth. */
static void exp_dtor(struct ft_log *l, unsigned depth)
{
	ft_expect(l, &tab, "dtor", 0, depth);
	ft_expect(l, &tab, "dtor", 1, depth);
}

/*
 * ftu_throw_rec(n) at @depth throws from its innermost frame: entries of
 * n + 1 frames, then the landing pads' destructors innermost first, each
 * at the depth of the frame whose pad calls it (that frame's depth + 1),
 * and no return of ftu_throw_rec.
 */
static void exp_throw(struct ft_log *l, int n, unsigned depth)
{
	for (int i = 0; i <= n; i++)
		ft_expect(l, &tab, "throw_rec", 0, depth + i);
	for (int i = n; i >= 0; i--)
		exp_dtor(l, depth + i + 1);
}

static bool check_log(struct ft_log *got, struct ft_log *exp, const char *what)
{
	if (ft_log_same(got, exp, &tab, mismatches < 3 ? what : NULL))
		return true;
	__atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
	return false;
}

/* --- Sibling calls ---------------------------------------------------------
 */

static void case_sibling(void)
{
	struct ft_log log, exp;

	ft_log_init(&log, 64);
	ft_log_init(&exp, 64);
	ft_cur = &log;
	CHECK_EQ(ftu_sib_outer(3), 38);
	/* Called directly: the jumps' callees return straight here. */
	CHECK_EQ(ftu_sib2(4), 47);
	CHECK_EQ(ftu_rec(2), rec_value(2));
	ft_cur = NULL;
	ft_expect(&exp, &tab, "sib_outer", 0, 0);
	ft_expect(&exp, &tab, "sib2", 0, 1);
	ft_expect(&exp, &tab, "sib", 0, 2);
	ft_expect(&exp, &tab, "leaf", 0, 3);
	ft_expect(&exp, &tab, "leaf", 1, 3);
	ft_expect(&exp, &tab, "sib", 1, 2);
	ft_expect(&exp, &tab, "sib2", 1, 1);
	ft_expect(&exp, &tab, "sib_outer", 1, 0);
	ft_expect(&exp, &tab, "sib2", 0, 0);
	ft_expect(&exp, &tab, "sib", 0, 1);
	ft_expect(&exp, &tab, "leaf", 0, 2);
	ft_expect(&exp, &tab, "leaf", 1, 2);
	ft_expect(&exp, &tab, "sib", 1, 1);
	ft_expect(&exp, &tab, "sib2", 1, 0);
	exp_rec(&exp, 2, 0);
	check_log(&log, &exp, "sibling");
	ft_log_free(&log);
	ft_log_free(&exp);
}

/* --- A set attached while a call's entry is being traced ----------------- */

static int race_armed, race_in_probe, race_attached;

/* Set A's entry probe: holds the first call in the probe until set B is
 * attached (at most 2 s: an attach that waited for the probe would
 * otherwise deadlock; then the race is not reproduced and said so). */
static void race_entry(void *data, const struct rw_ftrace_func *f,
		       uintptr_t caller, unsigned depth)
{
	ft_on_entry(data, f, caller, depth);
	if (!__atomic_exchange_n(&race_armed, 0, __ATOMIC_SEQ_CST))
		return;
	__atomic_store_n(&race_in_probe, 1, __ATOMIC_SEQ_CST);
	uint64_t until = rw_test_now_ns() + 2000000000ull;
	while (!load_int(&race_attached) && rw_test_now_ns() < until)
		usleep(1000);
}

static void *race_thread(void *arg)
{
	(void)arg;
	CHECK_EQ(ftu_leaf(1), 7);
	return NULL;
}

static void case_attach_race(void)
{
	static const char *const leaf[] = { "ftu_leaf" };
	static struct ft_ctx ca, cb;
	struct rw_ftrace_probe pa = { race_entry, ft_on_return, &ca };
	struct rw_ftrace *ta, *tb;
	unsigned i = ft_table_named(&tab, "leaf");
	pthread_t th;

	ca.tab = cb.tab = &tab;
	CHECK_OK(rw_ftrace_attach(leaf, 1, &pa, 0, &ta));
	__atomic_store_n(&race_armed, 1, __ATOMIC_SEQ_CST);
	CHECK_OK(pthread_create(&th, NULL, race_thread, NULL));
	while (!load_int(&race_in_probe))
		usleep(1000);
	tb = ft_attach(leaf, 1, &cb, 1);
	__atomic_store_n(&race_attached, 1, __ATOMIC_SEQ_CST);
	CHECK_OK(pthread_join(th, NULL));
	if (!load_int(&race_attached))
		fprintf(stderr, "attach_race: not reproduced\n");
	/* A saw the call whole; B, attached after its entry, nothing of it:
	 * no return without its entry. */
	CHECK_EQ(ca.entries[i], 1);
	CHECK_EQ(ca.returns[i], 1);
	if (cb.entries[i] || cb.returns[i]) {
		fprintf(stderr,
			"attach_race: the set attached during the call's entry "
			"saw %lu entries and %lu returns of it (0 and 0)\n",
			cb.entries[i], cb.returns[i]);
		__atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
	}
	/* Both see the next call whole. */
	CHECK_EQ(ftu_leaf(2), 12);
	CHECK_EQ(ca.entries[i], 2);
	CHECK_EQ(ca.returns[i], 2);
	CHECK_EQ(cb.entries[i], ca.entries[i] - 1);
	ft_detach(tb);
	ft_detach(ta);
}

/* --- Stack walks -----------------------------------------------------------
 */

static void case_backtrace(void)
{
	struct ft_log log, exp;
	void *buf[64];
	int n, in_bt = 0;

	ft_log_init(&log, 64);
	ft_log_init(&exp, 64);
	ft_cur = &log;
	n = ftu_bt_rec(4, buf, 64);
	ft_cur = NULL;
	/* The walk went through the 5 traced frames to here and beyond:
	 * no frame of rewire's (its return trampoline) in it. */
	for (int i = 0; i < n; i++) {
		Dl_info di;

		CHECK(dladdr(buf[i], &di) && di.dli_fname);
		if (strstr(di.dli_fname, "librewire")) {
			fprintf(stderr,
				"backtrace: frame %d is rewire's (%s)\n", i,
				di.dli_sname ? di.dli_sname : "?");
			exit(1);
		}
		if (di.dli_sname && !strcmp(di.dli_sname, "ftu_bt_rec"))
			in_bt++;
	}
	/* The calls from ftu_bt_rec to itself (its call of backtrace() is
	 * a sibling call). */
	CHECK_EQ(in_bt, 4);
	CHECK(n >= 7);
	/* And the calls it walked through are traced whole. */
	for (int i = 0; i <= 4; i++)
		ft_expect(&exp, &tab, "bt_rec", 0, i);
	for (int i = 4; i >= 0; i--)
		ft_expect(&exp, &tab, "bt_rec", 1, i);
	check_log(&log, &exp, "backtrace");
	ft_log_free(&log);
	ft_log_free(&exp);
}

/* --- C++ exceptions ------------------------------------------------------ */

static void case_cxx_catch(void)
{
	struct ft_log log, exp;
	int d0 = load_int(&ftu_dtors);

	ft_log_init(&log, 256);
	ft_log_init(&exp, 256);
	ft_cur = &log;

	/* Caught by a traced frame, which returns. */
	CHECK_EQ(ftu_catch_mid(3, 5), 1005);
	CHECK_EQ(load_int(&ftu_dtors) - d0, 4);
	ft_expect(&exp, &tab, "catch_mid", 0, 0);
	exp_throw(&exp, 3, 1);
	ft_expect(&exp, &tab, "catch_mid", 1, 0);

	/* Caught here, outside any traced frame. */
	bool caught = false;
	try {
		ftu_throw_rec(3, 6);
	} catch (const ftu_error &e) {
		CHECK_EQ(e.tag, 6);
		caught = true;
	}
	CHECK(caught);
	CHECK_EQ(load_int(&ftu_dtors) - d0, 8);
	exp_throw(&exp, 3, 0);

	/* Deeper than the frames the exceptions left, then shallower. */
	CHECK_EQ(ftu_rec(6), rec_value(6));
	exp_rec(&exp, 6, 0);
	CHECK_EQ(ftu_rec(1), rec_value(1));
	exp_rec(&exp, 1, 0);
	ft_cur = NULL;
	check_log(&log, &exp, "cxx_catch");
	ft_log_free(&log);
	ft_log_free(&exp);
}

static void case_cxx_rethrow(void)
{
	struct ft_log log, exp;
	int d0 = load_int(&ftu_dtors), r0 = load_int(&ftu_rethrows);
	bool caught = false;

	ft_log_init(&log, 256);
	ft_log_init(&exp, 256);
	ft_cur = &log;
	try {
		ftu_rethrow2(2, 7);
	} catch (const ftu_error &e) {
		CHECK_EQ(e.tag, 7);
		caught = true;
	}
	CHECK(caught);
	CHECK_EQ(load_int(&ftu_rethrows) - r0, 2);
	CHECK_EQ(load_int(&ftu_dtors) - d0, 4);
	CHECK_EQ(ftu_rec(4), rec_value(4));
	ft_cur = NULL;

	/* rethrow2 (0) -> rethrow (1) -> throw_rec x3 (2..4); the first
	 * catch is rethrow's, whose own guard is destroyed when its rethrow
	 * passes through it; rethrow2 rethrows again to here. */
	ft_expect(&exp, &tab, "rethrow2", 0, 0);
	ft_expect(&exp, &tab, "rethrow", 0, 1);
	exp_throw(&exp, 2, 2);
	exp_dtor(&exp, 2);
	exp_rec(&exp, 4, 0);
	check_log(&log, &exp, "cxx_rethrow");
	ft_log_free(&log);
	ft_log_free(&exp);
}

#define CXX_THREADS 4
#define CXX_ITERS 300

static void *cxx_thread(void *arg)
{
	long me = (long)arg;
	struct ft_log log, exp;

	ft_log_init(&log, 256);
	ft_log_init(&exp, 256);
	ft_cur = &log;
	for (int i = 0; i < CXX_ITERS; i++) {
		int n = (int)((i + me) % 5), tag = (int)(me * 1000 + i);
		bool caught = false;

		ft_log_reset(&log);
		ft_log_reset(&exp);
		if (i % 2) {
			CHECK_EQ(ftu_catch_mid(n, tag), 1000 + tag);
			ft_expect(&exp, &tab, "catch_mid", 0, 0);
			exp_throw(&exp, n, 1);
			ft_expect(&exp, &tab, "catch_mid", 1, 0);
		} else {
			try {
				ftu_throw_rec(n, tag);
			} catch (const ftu_error &e) {
				CHECK_EQ(e.tag, tag);
				caught = true;
			}
			CHECK(caught);
			exp_throw(&exp, n, 0);
		}
		CHECK_EQ(ftu_rec(n + 1), rec_value(n + 1));
		exp_rec(&exp, n + 1, 0);
		if (!check_log(&log, &exp, "cxx_threads") && mismatches <= 3)
			fprintf(stderr, "(thread %ld, iteration %d)\n", me, i);
	}
	ft_cur = NULL;
	ft_log_free(&log);
	ft_log_free(&exp);
	return NULL;
}

static void case_cxx_threads(void)
{
	pthread_t th[CXX_THREADS];
	int d0 = load_int(&ftu_dtors);
	int expect = 0;

	for (long i = 0; i < CXX_THREADS; i++)
		CHECK_OK(pthread_create(&th[i], NULL, cxx_thread, (void *)i));
	for (int i = 0; i < CXX_THREADS; i++)
		CHECK_OK(pthread_join(th[i], NULL));
	for (long t = 0; t < CXX_THREADS; t++)
		for (int i = 0; i < CXX_ITERS; i++)
			expect += (int)((i + t) % 5) + 1;
	CHECK_EQ(load_int(&ftu_dtors) - d0, expect);
}

/* --- longjmp ---------------------------------------------------------------
 */

static void jump_once(int n)
{
	jmp_buf jb;

	if (setjmp(jb) == 0)
		ftu_jmp_rec(n, &jb);
}

static void case_longjmp(void)
{
	struct ft_log log, exp;
	jmp_buf jb;
	volatile int jumped = 0;

	ft_log_init(&log, 256);
	ft_log_init(&exp, 256);
	ft_cur = &log;

	/* To a traced frame (ftu_setjmp_mid), which then calls deeper than
	 * the frames it jumped out of, and returns. */
	CHECK_EQ(ftu_setjmp_mid(3, 5), 7000 + rec_value(5));
	ft_expect(&exp, &tab, "setjmp_mid", 0, 0);
	for (int i = 0; i <= 3; i++)
		ft_expect(&exp, &tab, "jmp_rec", 0, 1 + i);
	exp_rec(&exp, 5, 1);
	ft_expect(&exp, &tab, "setjmp_mid", 1, 0);

	/* To here, out of 5 traced frames. */
	if (setjmp(jb) == 0) {
		ftu_jmp_rec(4, &jb);
		CHECK(!"ftu_jmp_rec returned");
	} else {
		jumped = 1;
	}
	CHECK(jumped);
	for (int i = 0; i <= 4; i++)
		ft_expect(&exp, &tab, "jmp_rec", 0, i);

	/* Same depth, deeper, shallower. */
	CHECK_EQ(ftu_rec(4), rec_value(4));
	exp_rec(&exp, 4, 0);
	CHECK_EQ(ftu_rec(9), rec_value(9));
	exp_rec(&exp, 9, 0);
	CHECK_EQ(ftu_rec(0), rec_value(0));
	exp_rec(&exp, 0, 0);

	ft_cur = NULL;
	check_log(&log, &exp, "longjmp");

	/* Again, many times: stale entries must not pile up. */
	for (int k = 0; k < 1000; k++)
		jump_once(k % 7);
	ft_log_reset(&log);
	ft_log_reset(&exp);
	ft_cur = &log;
	CHECK_EQ(ftu_rec(3), rec_value(3));
	ft_cur = NULL;
	exp_rec(&exp, 3, 0);
	check_log(&log, &exp, "longjmp (after 1,000 jumps)");
	ft_log_free(&log);
	ft_log_free(&exp);
}

static void siglongjmp_once(bool altstack, struct ft_log *exp)
{
	struct sigaction sa;
	volatile int jumped = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ftu_sig_handler;
	sa.sa_flags = altstack ? SA_ONSTACK : 0;
	sigemptyset(&sa.sa_mask);
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
	if (sigsetjmp(ftu_sigjb, 1) == 0) {
		ftu_sig_rec(3);
		CHECK(!"ftu_sig_rec returned");
	} else {
		jumped = 1;
	}
	CHECK(jumped);
	for (int i = 0; i <= 3; i++)
		ft_expect(exp, &tab, "sig_rec", 0, i);
	ft_expect(exp, &tab, "sig_handler", 0, 4);
	/* siglongjmp restored the mask: SIGUSR1 is deliverable again. */
	sigset_t cur;
	CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &cur));
	CHECK(!sigismember(&cur, SIGUSR1));
	CHECK_EQ(ftu_rec(6), rec_value(6));
	exp_rec(exp, 6, 0);
}

static void case_siglongjmp(void)
{
	struct ft_log log, exp;
	stack_t ss;

	ft_log_init(&log, 256);
	ft_log_init(&exp, 256);
	ft_cur = &log;
	siglongjmp_once(false, &exp);
	ss.ss_sp = malloc(SIGSTKSZ * 4);
	ss.ss_size = SIGSTKSZ * 4;
	ss.ss_flags = 0;
	CHECK(ss.ss_sp);
	CHECK_OK(sigaltstack(&ss, NULL));
	siglongjmp_once(true, &exp);
	siglongjmp_once(false, &exp);
	ft_cur = NULL;
	check_log(&log, &exp, "siglongjmp");
	ss.ss_flags = SS_DISABLE;
	CHECK_OK(sigaltstack(&ss, NULL));
	free(ss.ss_sp);
	ft_log_free(&log);
	ft_log_free(&exp);
}

/* --- Cancellation and pthread_exit ------------------------------------- */

static int start_cleanups;

static void start_cleanup(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&start_cleanups, 1, __ATOMIC_SEQ_CST);
}

enum blocker {
	B_CXX,
	B_READ,
	B_COND,
	B_EXIT_C,
	B_EXIT_CXX,
	B_READ_SIGBLOCK,
	B_DISABLED
};

static int disabled_ready, disabled_cancelled;

struct blocked {
	enum blocker how;
	bool precall; /* B_DISABLED: a traced call before it is cancelled */
	struct ft_log log;
};

#define EXIT_VALUE ((void *)0x5eed)

static void *blocked_thread(void *arg)
{
	struct blocked *b = (struct blocked *)arg;

	ft_cur = &b->log;
	pthread_cleanup_push(start_cleanup, NULL);
	switch (b->how) {
	case B_CXX:
		ftu_cxx_block(3);
		break;
	case B_READ:
		ftu_c_block_read(3);
		break;
	case B_COND:
		ftu_c_block_cond(3);
		break;
	case B_EXIT_C:
		ftu_c_exit(3, EXIT_VALUE);
		break;
	case B_EXIT_CXX:
		ftu_cxx_exit(3, EXIT_VALUE);
		break;
	case B_READ_SIGBLOCK: {
		/* As many servers' worker threads do. */
		sigset_t all;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, NULL);
		ftu_c_block_read(3);
		break;
	}
	case B_DISABLED:
		/* Cancelled while cancellation is disabled: it acts only at
		 * the read() after it is enabled again, and until then the
		 * thread's traced calls are traced whole. */
		if (b->precall)
			CHECK_EQ(ftu_rec(1), rec_value(1));
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		__atomic_store_n(&disabled_ready, 1, __ATOMIC_SEQ_CST);
		while (!load_int(&disabled_cancelled))
			usleep(1000);
		CHECK_EQ(ftu_rec(3), rec_value(3));
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		ftu_c_block_read(3);
		break;
	}
	pthread_cleanup_pop(0);
	return NULL; /* not reached */
}

static void run_blocked(enum blocker how, const char *fn, bool cxx,
			const char *what, bool precall = false)
{
	struct blocked b;
	struct ft_log exp;
	pthread_t th;
	void *ret = NULL;
	int d0 = load_int(&ftu_dtors), c0 = load_int(&ftu_cleanups);
	int s0 = load_int(&start_cleanups), k0 = load_int(&ftu_blocked);
	bool cancel = how != B_EXIT_C && how != B_EXIT_CXX;
	uint64_t until = rw_test_now_ns() + 10000000000ull;

	b.how = how;
	b.precall = precall;
	ft_log_init(&b.log, 256);
	ft_log_init(&exp, 256);
	CHECK_OK(pthread_create(&th, NULL, blocked_thread, &b));
	if (how == B_DISABLED) {
		while (!load_int(&disabled_ready))
			CHECK(rw_test_now_ns() < until);
		CHECK_OK(pthread_cancel(th));
		__atomic_store_n(&disabled_cancelled, 1, __ATOMIC_SEQ_CST);
	} else if (cancel) {
		while (load_int(&ftu_blocked) == k0)
			CHECK(rw_test_now_ns() < until);
		/* Let it enter read() or pthread_cond_wait(). */
		usleep(20000);
		uint64_t t0 = rw_test_now_ns();
		CHECK_OK(pthread_cancel(th));
		uint64_t dt = rw_test_now_ns() - t0;
		/* pthread_cancel() returns at once: it waits for the thread
		 * to unhook its frames in rewire's signal handler, never for
		 * its read() (which only the cancel ends). A bound of 2 s
		 * (times the machine's scale): the thread answers in
		 * microseconds natively, in up to a second emulated. */
		if (dt > 2000000000ull * rw_test_time_scale()) {
			fprintf(stderr, "%s: pthread_cancel() took %.3f s\n",
				what, (double)dt / 1e9);
			__atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
		}
	}
	CHECK_OK(pthread_join(th, &ret));
	CHECK(ret == (cancel ? PTHREAD_CANCELED : EXIT_VALUE));
	CHECK_EQ(load_int(&start_cleanups) - s0, 1);
	CHECK_EQ(load_int(&ftu_dtors) - d0, cxx ? 4 : 0);
	CHECK_EQ(load_int(&ftu_cleanups) - c0, cxx ? 0 : 4);
	if (how == B_COND) {
		/* The cleanup handler gave the mutex back. */
		CHECK_OK(pthread_mutex_trylock(&ftu_mutex));
		pthread_mutex_unlock(&ftu_mutex);
	}
	if (how == B_DISABLED && precall)
		exp_rec(&exp, 1, 0);
	if (how == B_DISABLED)
		exp_rec(&exp, 3, 0);
	for (int i = 0; i <= 3; i++)
		ft_expect(&exp, &tab, fn, 0, i);
	/* A thread that can act on a cancel hooks no new return (its
	 * frames must be whole when the cancel's unwinder walks them, and
	 * that unwinder runs inside glibc, out of rewire's reach): the
	 * destructors of a cancellation are traced on entry only, at their
	 * depth. pthread_exit() unwinds from rewire's wrapper: they are
	 * traced whole there. */
	if (cxx)
		for (int i = 3; i >= 0; i--) {
			if (cancel)
				ft_expect(&exp, &tab, "dtor", 0, i + 1);
			else
				exp_dtor(&exp, i + 1);
		}
	check_log(&b.log, &exp, what);
	ft_log_free(&b.log);
	ft_log_free(&exp);
}

static void case_cancel_cxx(void)
{
	run_blocked(B_CXX, "cxx_block", true, "cancel_cxx");
}

static void case_cancel_read(void)
{
	run_blocked(B_READ, "c_block_read", false, "cancel_read");
}

static void case_cancel_sigblock(void)
{
	run_blocked(B_READ_SIGBLOCK, "c_block_read", false, "cancel_sigblock");
}

static void case_cancel_disabled(void)
{
	run_blocked(B_DISABLED, "c_block_read", false, "cancel_disabled");
}

static void case_cancel_disabled2(void)
{
	run_blocked(B_DISABLED, "c_block_read", false, "cancel_disabled2",
		    true);
}

static void case_cancel_cond(void)
{
	run_blocked(B_COND, "c_block_cond", false, "cancel_cond");
}

static void case_exit_c(void)
{
	run_blocked(B_EXIT_C, "c_exit", false, "exit_c");
}

static void case_exit_cxx(void)
{
	run_blocked(B_EXIT_CXX, "cxx_exit", true, "exit_cxx");
}

/* --- Coroutines ------------------------------------------------------------
 */

#define NCORO 3
#define CORO_STACK (256 * 1024)

static ucontext_t sched_ctx, coro_ctx[NCORO];
static int coro_yielded;
static struct ft_log *coro_log;

static void coro_yield(int id)
{
	coro_yielded = 1;
	coro_log->tag = 0;
	CHECK_OK(swapcontext(&coro_ctx[id], &sched_ctx));
}

static void coro_make(int id, int n)
{
	CHECK_OK(getcontext(&coro_ctx[id]));
	coro_ctx[id].uc_stack.ss_sp = malloc(CORO_STACK);
	coro_ctx[id].uc_stack.ss_size = CORO_STACK;
	coro_ctx[id].uc_link = &sched_ctx;
	CHECK(coro_ctx[id].uc_stack.ss_sp);
	makecontext(&coro_ctx[id], (void (*)())ftu_coro_main, 2, id, n);
}

/* Resume coroutine @id; false when it has finished. */
static bool coro_resume(int id)
{
	coro_yielded = 0;
	coro_log->tag = (uint16_t)(id + 1);
	CHECK_OK(swapcontext(&sched_ctx, &coro_ctx[id]));
	coro_log->tag = 0;
	return coro_yielded;
}

/* What coroutine @id does (ftu_coro_main(id, n)), with the depth each call
 * has among the coroutine's own traced frames. */
static void exp_coro(struct ft_log *l, int id, int n)
{
	l->tag = (uint16_t)(id + 1);
	ft_expect(l, &tab, "coro_main", 0, 0);
	for (int i = 0; i <= n; i++)
		ft_expect(l, &tab, "coro_rec", 0, 1 + i);
	for (int i = n; i >= 0; i--) {
		for (int k = 0; k < (i == n ? 2 : 1); k++) {
			ft_expect(l, &tab, "yield", 0, 2 + i);
			ft_expect(l, &tab, "yield", 1, 2 + i);
		}
		ft_expect(l, &tab, "coro_rec", 1, 1 + i);
	}
	ft_expect(l, &tab, "coro_main", 1, 0);
	l->tag = 0;
}

/*
 * The events of coroutine tag @tag in @got, in order, without their
 * depths. The depth the probe reports counts the traced calls of the
 * thread, and those of the other coroutines' suspended frames may count
 * too, so it depends on the schedule: only the function and kind of each
 * event are compared, and separately that each return has its entry's
 * depth (a picture of the trace closes each call at the level it opened
 * it). Returns the number of returns whose depth is not their entry's.
 */
static int coro_events(const struct ft_log *got, uint16_t tag,
		       struct ft_log *out)
{
	uint32_t open[64];
	int nopen = 0, bad = 0;

	ft_log_reset(out);
	for (size_t i = 0; i < got->n; i++) {
		const struct ft_ev *e = &got->ev[i];

		if (e->tag != tag)
			continue;
		if (!e->ret) {
			CHECK(nopen < 64);
			open[nopen++] = e->depth;
		} else if (nopen && open[--nopen] != e->depth) {
			if (bad++ == 0)
				fprintf(stderr,
					"coroutine %u: event %zu, a return at "
					"depth %u, its entry at depth %u\n",
					tag - 1, i, e->depth, open[nopen]);
		}
		CHECK(out->n < out->cap);
		out->ev[out->n] = *e;
		out->ev[out->n].depth = 0;
		out->n++;
	}
	return bad;
}

static void run_coros(const int *depth, struct ft_log *log)
{
	bool live[NCORO];
	int nlive = NCORO;

	coro_log = log;
	for (int i = 0; i < NCORO; i++) {
		coro_make(i, depth[i]);
		live[i] = true;
	}
	/* Round robin, then backwards, so that each coroutine is resumed
	 * both after its own and after the others' frames. */
	for (int round = 0; nlive; round++) {
		for (int k = 0; k < NCORO; k++) {
			int i = round % 2 ? NCORO - 1 - k : k;

			if (live[i] && !coro_resume(i)) {
				live[i] = false;
				nlive--;
			}
		}
	}
	for (int i = 0; i < NCORO; i++)
		free(coro_ctx[i].uc_stack.ss_sp);
}

static void check_coros(const int *depth, struct ft_log *log)
{
	struct ft_log exp, mine;

	ft_log_init(&exp, 512);
	ft_log_init(&mine, 512);
	for (int i = 0; i < NCORO; i++) {
		char what[64];

		ft_log_reset(&exp);
		exp_coro(&exp, i, depth[i]);
		for (size_t k = 0; k < exp.n; k++)
			exp.ev[k].depth = 0;
		if (coro_events(log, (uint16_t)(i + 1), &mine))
			__atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
		snprintf(what, sizeof(what), "coroutine %d", i);
		check_log(&mine, &exp, what);
	}
	/* Nothing traced outside the coroutines. */
	for (size_t i = 0; i < log->n; i++)
		CHECK(log->ev[i].tag != 0);
	ft_log_free(&exp);
	ft_log_free(&mine);
}

static void case_coro(void)
{
	static const int depth[NCORO] = { 2, 4, 3 };
	struct ft_log log, exp;

	ftu_yield_hook = coro_yield;
	ft_log_init(&log, 1024);
	ft_log_init(&exp, 64);
	ft_cur = &log;
	run_coros(depth, &log);
	ft_cur = NULL;
	check_coros(depth, &log);

	/* The scheduler's own traced calls start at depth 0 again. */
	ft_log_reset(&log);
	ft_cur = &log;
	CHECK_EQ(ftu_rec(3), rec_value(3));
	ft_cur = NULL;
	exp_rec(&exp, 3, 0);
	check_log(&log, &exp, "after the coroutines");
	ft_log_free(&log);
	ft_log_free(&exp);
}

/* coro_migrate: the coroutine runs its first half on one thread, the
 * rest on another. */
static ucontext_t mig_sched[2], mig_ctx;
static int mig_thread;
static int mig_yields;

static void mig_yield(int id)
{
	(void)id;
	mig_yields++;
	CHECK_OK(swapcontext(&mig_ctx, &mig_sched[mig_thread]));
}

static struct ft_log mig_log; /* the threads run one at a time */

static void *mig_run(void *arg)
{
	long t = (long)arg;

	mig_thread = (int)t;
	ft_cur = &mig_log;
	CHECK_OK(swapcontext(&mig_sched[t], &mig_ctx));
	ft_cur = NULL;
	return NULL;
}

static void case_coro_migrate(void)
{
	pthread_t th;

	ftu_yield_hook = mig_yield;
	ft_log_init(&mig_log, 256);
	mig_log.tag = 1;
	CHECK_OK(getcontext(&mig_ctx));
	mig_ctx.uc_stack.ss_sp = malloc(CORO_STACK);
	mig_ctx.uc_stack.ss_size = CORO_STACK;
	/* Where it ends: the scheduler of the thread that resumes it last
	 * (makecontext keeps this pointer; the context it points to is
	 * saved again by each resume). */
	mig_ctx.uc_link = &mig_sched[1];
	CHECK(mig_ctx.uc_stack.ss_sp);
	makecontext(&mig_ctx, (void (*)())ftu_coro_main, 2, 0, 3);
	/* The main thread runs it to its first yield (6 traced frames
	 * deep: ftu_coro_main, ftu_coro_rec x4, ftu_yield). */
	mig_run((void *)0);
	CHECK_EQ(mig_yields, 1);
	/* Other threads resume it: its yields now go back to the thread
	 * that resumed it, and so does its end. Each resume runs
	 * to the next yield: 2 at the bottom, one per level on the way up
	 * (3), then the last resume returns from every frame. */
	for (int i = 0; i < 5; i++) {
		CHECK_OK(pthread_create(&th, NULL, mig_run, (void *)1));
		CHECK_OK(pthread_join(th, NULL));
		if (mig_yields != (i < 4 ? i + 2 : 5)) {
			fprintf(stderr,
				"coro_migrate: %d yields after %d resumes, not "
				"%d\n",
				mig_yields, i + 2, i < 4 ? i + 2 : 5);
			__atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
			break;
		}
	}
	/* The coroutine's calls, traced in order with their returns (the
	 * depths are the threads' own: not compared, but each return has
	 * its entry's). */
	struct ft_log exp, mine;

	ft_log_init(&exp, 256);
	ft_log_init(&mine, 256);
	exp_coro(&exp, 0, 3);
	for (size_t k = 0; k < exp.n; k++)
		exp.ev[k].depth = 0;
	if (coro_events(&mig_log, 1, &mine))
		__atomic_add_fetch(&mismatches, 1, __ATOMIC_SEQ_CST);
	check_log(&mine, &exp, "coro_migrate");
	ft_log_free(&exp);
	ft_log_free(&mine);
	ft_log_free(&mig_log);

	/* And the main thread's traced calls are still whole. */
	CHECK_EQ(ftu_rec(3), rec_value(3));
	free(mig_ctx.uc_stack.ss_sp);
}

/* --- The shadow stack's limits ------------------------------------------ */

static void case_deep(void)
{
	const int n = 2000;
	struct rw_ftrace_stats st;
	struct ft_log log, exp;
	unsigned rec = ft_table_named(&tab, "rec");
	unsigned long e0 = ctx.entries[rec], r0 = ctx.returns[rec];
	unsigned expect_returns = RW_FTRACE_GRAPH_DEPTH;

	ft_log_init(&log, 8192);
	ft_log_init(&exp, 8192);
	rw_ftrace_get_stats(tracer, &st);
	CHECK_EQ(st.shadow_full, 0);

	ft_cur = &log;
	uint64_t t0 = rw_test_now_ns();
	CHECK_EQ(ftu_rec(n), rec_value(n));
	uint64_t dt = rw_test_now_ns() - t0;
	ft_cur = NULL;
	fprintf(stderr, "deep: %d calls past a full shadow stack: %.3f s\n",
		n + 1 - RW_FTRACE_GRAPH_DEPTH, (double)dt / 1e9);
	/* A call past a full shadow stack may cost more than a traced call
	 * (a sweep for stale elements), but not a thousand times more: under
	 * 100 us each, 0.17 s for all (a traced call costs about a
	 * microsecond with the probe's logging, sanitizers included), times
	 * the machine's scale (emulated: 0.2 s). */
	CHECK(dt < 100000ull * (uint64_t)(n + 1 - RW_FTRACE_GRAPH_DEPTH) *
			   rw_test_time_scale());
	rw_ftrace_get_stats(tracer, &st);
	CHECK_EQ(st.shadow_full, n + 1 - RW_FTRACE_GRAPH_DEPTH);
	CHECK_EQ(ctx.entries[rec] - e0, n + 1);
	CHECK_EQ(ctx.returns[rec] - r0, expect_returns);
	/* Every entry, the returns of the outermost 256 calls. */
	for (int i = 0; i <= n; i++)
		ft_expect(&exp, &tab, "rec", 0, i);
	for (int i = RW_FTRACE_GRAPH_DEPTH - 1; i >= 0; i--)
		ft_expect(&exp, &tab, "rec", 1, i);
	/* The depth past the shadow stack is the call's real depth: the
	 * test accepts that only the traced ones are exact. */
	for (size_t i = RW_FTRACE_GRAPH_DEPTH; i <= (size_t)n; i++)
		log.ev[i].depth = exp.ev[i].depth;
	check_log(&log, &exp, "deep");

	/* Exactly full: no shadow_full. Then whole again. */
	ft_log_reset(&log);
	ft_log_reset(&exp);
	ft_cur = &log;
	CHECK_EQ(ftu_rec(RW_FTRACE_GRAPH_DEPTH - 1),
		 rec_value(RW_FTRACE_GRAPH_DEPTH - 1));
	CHECK_EQ(ftu_rec(5), rec_value(5));
	ft_cur = NULL;
	rw_ftrace_get_stats(tracer, &st);
	CHECK_EQ(st.shadow_full, n + 1 - RW_FTRACE_GRAPH_DEPTH);
	exp_rec(&exp, RW_FTRACE_GRAPH_DEPTH - 1, 0);
	exp_rec(&exp, 5, 0);
	check_log(&log, &exp, "deep (after)");
	ft_log_free(&log);
	ft_log_free(&exp);
}

/* Thread churn: each thread makes traced calls; one in four leaves by
 * pthread_exit inside traced frames, one in four is cancelled in them. */
static void *churn_thread(void *arg)
{
	long i = (long)arg;

	CHECK_EQ(ftu_rec((int)(i % 9)), rec_value((int)(i % 9)));
	switch (i % 4) {
	case 1:
		ftu_c_exit(2, EXIT_VALUE);
		break;
	case 2:
		ftu_c_block_read(2);
		break;
	default:
		break;
	}
	return (void *)i;
}

static void churn(long from, long to)
{
	enum { BATCH = 8 };
	pthread_t th[BATCH];

	for (long i = from; i < to; i += BATCH) {
		for (int k = 0; k < BATCH; k++)
			CHECK_OK(pthread_create(&th[k], NULL, churn_thread,
						(void *)(i + k)));
		for (int k = 0; k < BATCH; k++) {
			void *ret;

			if ((i + k) % 4 == 2) {
				/* ftu_c_block_read: wait until it blocks. */
				while (load_int(&ftu_blocked) <
				       (int)((i + k) / 4 + 1))
					usleep(100);
				CHECK_OK(pthread_cancel(th[k]));
			}
			CHECK_OK(pthread_join(th[k], &ret));
			if ((i + k) % 4 == 1)
				CHECK(ret == EXIT_VALUE);
			else if ((i + k) % 4 == 2)
				CHECK(ret == PTHREAD_CANCELED);
			else
				CHECK(ret == (void *)(i + k));
		}
	}
}

static void case_churn(void)
{
	/* Emulated, 2,000: a shadow stack leaked per thread would still be
	 * 2.4 MB after the warm-up. */
	const long warm = 800, total = rw_test_time_scale() > 1
					       ? 2000
					       : rw_test_scale(4000, 40000);
	struct mallinfo2 m0, m1;
	long rss0, rss1, maps0, maps1;

	/* The blocked threads are counted from 0 (see churn()). */
	__atomic_store_n(&ftu_blocked, 0, __ATOMIC_SEQ_CST);
	churn(0, warm);
	m0 = mallinfo2();
	rss0 = ft_rss_kb();
	maps0 = ft_maps_lines();
	churn(warm, total);
	m1 = mallinfo2();
	rss1 = ft_rss_kb();
	maps1 = ft_maps_lines();
	fprintf(stderr,
		"churn: %ld threads; after %ld: malloc %zu bytes, %ld mappings, "
		"RSS %ld kB; after %ld: %zu, %ld, %ld kB\n",
		total, warm, m0.uordblks + m0.hblkhd, maps0, rss0, total,
		m1.uordblks + m1.hblkhd, maps1, rss1);
	/* A shadow stack is at least RW_FTRACE_GRAPH_DEPTH return addresses
	 * (2 kB); one leaked per thread would be 6 MB and more here, in
	 * malloc'ed bytes or in mappings (and RSS). ASan's allocator has no
	 * mallinfo and its RSS grows with threads on its own (quarantine,
	 * fake stacks): there, only the mappings are compared. */
	CHECK(maps1 - maps0 < 16);
#ifndef __SANITIZE_ADDRESS__
	CHECK((long)(m1.uordblks + m1.hblkhd) -
		      (long)(m0.uordblks + m0.hblkhd) <
	      512 * 1024);
	CHECK(rss1 - rss0 < 4096);
#endif
}

/* --- Driver ----------------------------------------------------------------
 */

struct test_case {
	const char *name;
	void (*run)(void);
};

static const struct test_case cases[] = {
	{ "sibling", case_sibling },
	{ "attach_race", case_attach_race },
	{ "backtrace", case_backtrace },
	{ "cxx_catch", case_cxx_catch },
	{ "cxx_rethrow", case_cxx_rethrow },
	{ "cxx_threads", case_cxx_threads },
	{ "longjmp", case_longjmp },
	{ "siglongjmp", case_siglongjmp },
	{ "cancel_cxx", case_cancel_cxx },
	{ "cancel_read", case_cancel_read },
	{ "cancel_cond", case_cancel_cond },
	{ "cancel_sigblock", case_cancel_sigblock },
	{ "cancel_disabled", case_cancel_disabled },
	{ "cancel_disabled2", case_cancel_disabled2 },
	{ "exit_c", case_exit_c },
	{ "exit_cxx", case_exit_cxx },
	{ "coro", case_coro },
	{ "coro_migrate", case_coro_migrate },
	{ "deep", case_deep },
	{ "churn", case_churn },
};

/* exit(0) in a case's child before the case finished (a context that
 * ends with no uc_link does that): a failure, not a pass. */
static void early_exit(int status, void *arg)
{
	(void)arg;
	if (status == 0) {
		fprintf(stderr, "exit(0) before the case finished\n");
		_exit(3);
	}
}

/* Run one case in a child: 0 passed, 77 skipped, else failed. */
static int run_case(const struct test_case *c)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* 120 s a case, times the machine's scale: emulated and
		 * loaded, churn's 4,000 threads took longer. */
		alarm(120 * rw_test_time_scale());
		on_exit(early_exit, NULL);
		setup();
		c->run();
		finish();
		fflush(NULL);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		fprintf(stderr, "%-16s ok\n", c->name);
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		fprintf(stderr, "%-16s skipped\n", c->name);
		return 77;
	}
	if (WIFSIGNALED(status))
		fprintf(stderr, "%-16s FAILED: killed by signal %d (%s)\n",
			c->name, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		fprintf(stderr, "%-16s FAILED: exit %d\n", c->name,
			WEXITSTATUS(status));
	return 1;
}

int main(int argc, char **argv)
{
	int failed = 0, passed = 0, r;

	for (const auto &c : cases) {
		bool want = argc < 2;

		for (int i = 1; i < argc; i++)
			if (!strcmp(argv[i], c.name))
				want = true;
		if (!want)
			continue;
		r = run_case(&c);
		if (r == 0)
			passed++;
		else if (r != 77)
			failed++;
	}
	if (failed) {
		fprintf(stderr, "%d case(s) failed\n", failed);
		return 1;
	}
	if (!passed)
		SKIP("no case ran");
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
