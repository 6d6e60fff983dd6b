/* SPDX-License-Identifier: MIT */
/*
 * Integration: C++ exceptions and thread cancellation unwind through
 * patched functions, in every state of a patch (rewire/livepatch.h).
 *
 * libpulp gave up its consistency model because of this: a redirection
 * that leaves a frame the unwinder cannot read breaks both. rewire's
 * entries are jumps (a NOP run, a jmp to a dispatcher, a jmp to the new
 * function or to a far stub; on aarch64 two NOPs whose first becomes a B),
 * and the dispatcher only clobbers r11 (aarch64: x16 and x17) and the
 * flags, leaving the stack and the return address as the call left them,
 * so the unwinder never sees any of them: the frames are the patched
 * functions' own. This test proves it, with libgcc's unwinder (the C++
 * exceptions) and glibc's cancellation unwinding; on aarch64 the program,
 * its library and the patch are built with -mbranch-protection=standard,
 * as arm64 distributions build them, so every frame that saves its
 * return address signs it (pac-ret: PACIASP after the entry's NOPs), and
 * the unwinder reads such frames (DW_CFA_AARCH64_negate_ra_state) above
 * and below the patched entries and the dispatchers.
 *
 * Two patched functions (lp_unwind_cxx/lpu.h): lpu_work() in this program,
 * whose patched entry ends as a jump to a far stub (a PIE program and a
 * dlopen'ed patch are far apart), and lpu_dso_work() in liblpu_dso.so,
 * whose entry ends as a direct jmp to the new function when it is in reach
 * (x86-64: +-2 GiB, aarch64's B: +-128 MiB). Old versions are
 * side 1, new ones (lpu_patch.so, C++) side 2. For each function and in
 * each state, unpatched (NOPs), enabling (entry -> dispatcher; a thread
 * blocked in lpu_work() keeps the transition open), enabled, disabling
 * (held the same way) and disabled again, the test checks that:
 *   - an exception thrown by a callee of the patched function is caught by
 *     the caller, from the main thread and from a thread created in that
 *     state; the local object of the patched function is destroyed
 *     (lpu_dtors[side] + 1);
 *   - pthread_cancel() of a thread blocked in read() inside the patched
 *     function unwinds it: its cleanup handler and the destructor of a
 *     local object of the thread's start function run, the patched
 *     function's local object is destroyed, and pthread_join() returns
 *     PTHREAD_CANCELED;
 * and, during a transition, for a thread that is still in the old state
 * (it was inside the function when the transition started) and calls the
 * function again through the dispatcher from there:
 *   - an exception thrown inside that nested call unwinds through both the
 *     dispatcher-entered frame and the outer frame; both locals are
 *     destroyed, and the nested call ran the old side;
 *   - cancelling the thread while it is blocked inside the nested call
 *     unwinds both frames too.
 * The side that ran is checked exactly every time (a thread that switched
 * when it should not have, or not when it should, fails the test).
 */
#include <rewire/config.h>

#include "lp_test.h"
#include "lpu.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdexcept>
#include <stdint.h>
#include <unistd.h>

#define WAIT_MS 10000

/*
 * The entry after the landing pad (lp_test.h): x86-64's five NOP bytes,
 * aarch64's two NOP instructions. The jump written there reaches
 * [JUMP_MIN, JUMP_MAX] from JUMP_BASE bytes past its start: jmp rel32
 * from its end, aarch64's B (imm26 * 4) from itself.
 */
#if defined(__aarch64__)
#define ENTRY_LEN 8
#define JUMP_BASE 0
#define JUMP_MIN (-(INT64_C(1) << 27))
#define JUMP_MAX ((INT64_C(1) << 27) - 4)
#else
#define ENTRY_LEN 5
#define JUMP_BASE 5
#define JUMP_MIN INT32_MIN
#define JUMP_MAX INT32_MAX
#endif

/*
 * ASan builds: with its default fake-stack setting, GCC 12's ASan trips
 * over pthread_cancel() of a thread whose frames have C++ cleanups, with
 * or without rewire ("CHECK failed: asan_thread.cpp:371 ...
 * kCurrentStackFrameMagic" in __asan_handle_no_return's sigaltstack
 * check, google/sanitizers#1010). Fake stacks avoid it. Read by the ASan
 * runtime only; the environment's ASAN_OPTIONS still apply on top.
 */
extern "C" const char *__asan_default_options(void);
extern "C" __attribute__((used, visibility("default"))) const char *
__asan_default_options(void)
{
	return "detect_stack_use_after_return=1";
}

extern "C" int lpu_work(int mode, lpu_hook_t hook, void *arg);

/* The patched function of the program (patchable: its .cmake hook). */
extern "C" __attribute__((noipa)) int lpu_work(int mode, lpu_hook_t hook,
					       void *arg)
{
	LPU_BODY(1, mode, hook, arg);
}

struct target {
	const char *name;
	lpu_work_t work;
	uintptr_t new_fn; /* from the patch's descriptor */
	uint8_t orig[ENTRY_LEN];
};

static struct target targets[2];

static int cleanups;	 /* pthread_cleanup_push handlers that ran */
static int thread_dtors; /* locals of the threads' start functions */
static int seen_dtors[3], seen_cleanups, seen_thread_dtors;

static int load_int(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void add_int(int *p, int v)
{
	__atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

/* The counters moved by exactly these amounts since the last call. */
static void expect_counts(int old_dtors, int new_dtors, int cleanup_runs,
			  int thread_locals)
{
	int d1 = load_int(&lpu_dtors[1]) - seen_dtors[1];
	int d2 = load_int(&lpu_dtors[2]) - seen_dtors[2];
	int c = load_int(&cleanups) - seen_cleanups;
	int t = load_int(&thread_dtors) - seen_thread_dtors;

	CHECK_EQ(d1, old_dtors);
	CHECK_EQ(d2, new_dtors);
	CHECK_EQ(c, cleanup_runs);
	CHECK_EQ(t, thread_locals);
	seen_dtors[1] += d1;
	seen_dtors[2] += d2;
	seen_cleanups += c;
	seen_thread_dtors += t;
}

static void wait_for(const int *counter, int value)
{
	CHECK(LP_WAIT_UNTIL(load_int(counter) >= value,
			    lp_deadline_ms(WAIT_MS)));
}

/* ---- Entries -------------------------------------------------------------- */

static uintptr_t fn_addr(const struct target *t)
{
	return reinterpret_cast<uintptr_t>(t->work);
}

/* Where the entry's jmp rel32 goes, or 0 if it holds no jmp. */
static uintptr_t entry_target(const struct target *t)
{
	return lp_entry_jmp(fn_addr(t));
}

/* The whole entry (ENTRY_LEN bytes: lp_entry_read() copies five). */
static void entry_read(const struct target *t, uint8_t out[ENTRY_LEN])
{
	const volatile uint8_t *s = lp_entry_sled(fn_addr(t));

	for (int i = 0; i < ENTRY_LEN; i++)
		out[i] = s[i];
}

static void print_entry(const struct target *t)
{
	uint8_t s[ENTRY_LEN];
	uintptr_t to = entry_target(t);

	entry_read(t, s);
	printf("    entry of %s:", t->name);
	for (int i = 0; i < ENTRY_LEN; i++)
		printf(" %02x", s[i]);
	if (to && to == t->new_fn)
		printf(" (jmp to the new function)");
	else if (to && lp_stub_target(to) == t->new_fn)
		printf(" (jmp to a far stub to %#lx)",
		       static_cast<unsigned long>(t->new_fn));
	else if (to)
		printf(" (jmp to %#lx: a dispatcher)",
		       static_cast<unsigned long>(to));
	printf("\n");
}

/* ---- Exceptions ----------------------------------------------------------- */

/* Calls @w so that its callee throws; returns the side that threw. */
static int throw_through(lpu_work_t w)
{
	try {
		w(LPU_THROW, nullptr, nullptr);
	} catch (const std::runtime_error &e) {
		return e.what()[5] - '0';
	}
	return 0;
}

static void *throw_thread(void *arg)
{
	const struct target *t = static_cast<const struct target *>(arg);

	return reinterpret_cast<void *>(
		static_cast<intptr_t>(throw_through(t->work)));
}

/* From this thread, then from a new thread: both must catch @side's. */
static void check_throw(const struct target *t, int main_side, int thread_side)
{
	pthread_t th;
	void *ret;
	int side = throw_through(t->work);

	printf("    %s: exception caught in the main thread: side %d\n",
	       t->name, side);
	CHECK_EQ(side, main_side);
	expect_counts(main_side == 1, main_side == 2, 0, 0);
	CHECK_EQ(pthread_create(&th, nullptr, throw_thread,
				const_cast<struct target *>(t)),
		 0);
	CHECK_EQ(pthread_join(th, &ret), 0);
	side = static_cast<int>(reinterpret_cast<intptr_t>(ret));
	printf("    %s: exception caught in a new thread:  side %d\n", t->name,
	       side);
	CHECK_EQ(side, thread_side);
	expect_counts(thread_side == 1, thread_side == 2, 0, 0);
}

/* ---- Cancellation --------------------------------------------------------- */

struct thread_local_guard {
	thread_local_guard() = default;
	~thread_local_guard()
	{
		add_int(&thread_dtors, 1);
	}
	thread_local_guard(const thread_local_guard &) = delete;
	thread_local_guard &operator=(const thread_local_guard &) = delete;
};

static void cleanup(void *arg)
{
	(void)arg;
	add_int(&cleanups, 1);
}

static void *block_thread(void *arg)
{
	const struct target *t = static_cast<const struct target *>(arg);
	void *ret;

	pthread_cleanup_push(cleanup, nullptr);
	{
		thread_local_guard g;

		ret = reinterpret_cast<void *>(static_cast<intptr_t>(
			t->work(LPU_BLOCK, nullptr, nullptr)));
	}
	pthread_cleanup_pop(0);
	return ret;
}

static pthread_t start_blocked(const struct target *t)
{
	int before = load_int(&lpu_blocked);
	pthread_t th;

	CHECK_EQ(pthread_create(&th, nullptr, block_thread,
				const_cast<struct target *>(t)),
		 0);
	wait_for(&lpu_blocked, before + 1);
	return th;
}

static void cancel_join(pthread_t th)
{
	void *ret = nullptr;

	CHECK_EQ(pthread_cancel(th), 0);
	CHECK_EQ(pthread_join(th, &ret), 0);
	CHECK(ret == PTHREAD_CANCELED);
}

/* A new thread blocked in @t's function (@side runs) is cancelled. */
static void check_cancel(const struct target *t, int side)
{
	pthread_t th = start_blocked(t);

	cancel_join(th);
	printf("    %s: thread cancelled in side %d: joined PTHREAD_CANCELED, "
	       "cleanup and destructors ran\n",
	       t->name, side);
	expect_counts(side == 1, side == 2, 1, 1);
}

/* ---- Calls from inside the function, during a transition ------------------ */

struct nest {
	const struct target *t;
	int action; /* LPU_THROW or LPU_BLOCK */
	int inside, go;
	int result; /* LPU_THROW: the side that threw */
	pthread_t th;
};

static void nest_hook(void *arg)
{
	struct nest *n = static_cast<struct nest *>(arg);

	add_int(&n->inside, 1);
	while (!load_int(&n->go))
		usleep(1000);
	/* Through the entry again: the dispatcher during a transition. */
	n->t->work(n->action, nullptr, nullptr);
}

static void *nest_thread(void *arg)
{
	struct nest *n = static_cast<struct nest *>(arg);

	pthread_cleanup_push(cleanup, nullptr);
	{
		thread_local_guard g;

		try {
			n->t->work(LPU_HOOK, nest_hook, n);
		} catch (const std::runtime_error &e) {
			n->result = e.what()[5] - '0';
		}
	}
	pthread_cleanup_pop(0);
	return nullptr;
}

static void nest_start(struct nest *n, const struct target *t, int action)
{
	memset(static_cast<void *>(n), 0, sizeof(*n));
	n->t = t;
	n->action = action;
	CHECK_EQ(pthread_create(&n->th, nullptr, nest_thread, n), 0);
	wait_for(&n->inside, 1);
}

/* A thread in state @side (never switched) runs the nested call. */
static void nest_run(struct nest *n, int side)
{
	const char *name = n->t->name;

	if (n->action == LPU_THROW) {
		add_int(&n->go, 1);
		CHECK_EQ(pthread_join(n->th, nullptr), 0);
		printf("    %s: exception through a dispatcher-entered frame "
		       "and the frame below it, thread not switched: side "
		       "%d\n",
		       name, n->result);
		CHECK_EQ(n->result, side);
		/* Caught: the thread returns, its cleanup is popped. */
		expect_counts(side == 1 ? 2 : 0, side == 2 ? 2 : 0, 0, 1);
		return;
	}
	int before = load_int(&lpu_blocked);

	add_int(&n->go, 1);
	wait_for(&lpu_blocked, before + 1);
	cancel_join(n->th);
	printf("    %s: thread not switched, cancelled in a dispatcher-entered "
	       "frame above another (side %d): joined PTHREAD_CANCELED\n",
	       name, side);
	expect_counts(side == 1 ? 2 : 0, side == 2 ? 2 : 0, 1, 1);
}

/* ---- Phases ----------------------------------------------------------------- */

static void print_info(struct rw_patch *p, struct rw_patch_info *info)
{
	CHECK_OK(rw_patch_state(p, info));
	printf("    patch state %d, %zu/%zu threads switched, %zu pending:",
	       info->state, info->threads_switched, info->threads_total,
	       info->npending);
	for (size_t i = 0; i < info->npending && i < RW_PATCH_INFO_THREADS; i++)
		printf(" [%d why %d %s]", info->pending[i].tid,
		       info->pending[i].why, info->pending[i].func);
	printf("\n");
}

/* Every check in a steady state: @side runs for everyone. */
static void steady(const char *what, int side)
{
	printf("%s:\n", what);
	for (auto &t : targets) {
		print_entry(&t);
		check_throw(&t, side, side);
		check_cancel(&t, side);
	}
}

/*
 * A transition held open by a thread blocked in lpu_work(); @enabling:
 * towards the patched state. Threads that were inside the functions when
 * it started stay on the side they came from (@from); the main thread and
 * new threads run the target side.
 */
static void transition(struct rw_patch *p, bool enabling)
{
	int from = enabling ? 1 : 2, to = enabling ? 2 : 1;
	struct nest nt[2], nb[2];
	struct rw_patch_info info;
	pthread_t holder;

	printf("%s, held open by a thread blocked in lpu_work():\n",
	       enabling ? "enabling" : "disabling");
	holder = start_blocked(&targets[0]);
	for (int i = 0; i < 2; i++) {
		nest_start(&nt[i], &targets[i], LPU_THROW);
		nest_start(&nb[i], &targets[i], LPU_BLOCK);
	}
	if (enabling)
		CHECK_OK(rw_patch_enable(p));
	else
		CHECK_OK(rw_patch_disable(p));
	CHECK_EQ(rw_patch_wait(p, 20), -ETIMEDOUT);
	print_info(p, &info);
	CHECK_EQ(info.state, enabling ? RW_PATCH_ENABLING : RW_PATCH_DISABLING);
	/* The holder and the four nesting threads. */
	CHECK(info.npending >= 5);
	for (auto &t : targets) {
		uintptr_t to_addr = entry_target(&t);

		print_entry(&t);
		CHECK(to_addr != 0);
		CHECK(to_addr != t.new_fn);
		CHECK(lp_stub_target(to_addr) != t.new_fn);
	}
	for (int i = 0; i < 2; i++) {
		check_throw(&targets[i], to, to);
		check_cancel(&targets[i], to);
		nest_run(&nt[i], from);
		nest_run(&nb[i], from);
	}
	CHECK_OK(rw_patch_state(p, &info));
	CHECK_EQ(info.state, enabling ? RW_PATCH_ENABLING : RW_PATCH_DISABLING);
	cancel_join(holder);
	printf("    holder cancelled (side %d)\n", from);
	expect_counts(from == 1, from == 2, 1, 1);
	CHECK_OK(rw_patch_wait(p, WAIT_MS));
	print_info(p, &info);
	CHECK_EQ(info.state, enabling ? RW_PATCH_ENABLED : RW_PATCH_DISABLED);
}

int main()
{
	struct rw_patch *p = nullptr;

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
#endif
	setvbuf(stdout, nullptr, _IOLBF, 0);
	CHECK_EQ(lpu_init(), 0);
	targets[0].name = "lpu_work (program)";
	targets[0].work = lpu_work;
	targets[1].name = "lpu_dso_work (liblpu_dso.so)";
	targets[1].work = reinterpret_cast<lpu_work_t>(
		dlsym(RTLD_DEFAULT, "lpu_dso_work"));
	CHECK(targets[1].work);
	for (auto &t : targets) {
		entry_read(&t, t.orig);
		CHECK(lp_entry_is_nops(fn_addr(&t)));
	}

	steady("unpatched", 1);

	p = lp_load(LPU_PATCH, RW_PATCH_LOAD_ALLOW_ANY_OWNER);
	targets[0].new_fn = lp_new_func_of(LPU_PATCH, 0);
	targets[1].new_fn = lp_new_func_of(LPU_PATCH, 1);

	transition(p, true);
	steady("enabled", 2);
	{
		const struct target *d = &targets[1];
		intptr_t dist = static_cast<intptr_t>(
			d->new_fn - (reinterpret_cast<uintptr_t>(
					     lp_entry_sled(fn_addr(d))) +
				     JUMP_BASE));

		printf("    %s: new function %+ld bytes from its entry\n",
		       d->name, static_cast<long>(dist));
		if (dist >= JUMP_MIN && dist <= JUMP_MAX)
			CHECK_EQ(entry_target(d), d->new_fn);
		/* The program's entry: the new function, directly or
		 * through a far stub, never a dispatcher. */
		uintptr_t to = entry_target(&targets[0]);

		CHECK(to != 0);
		CHECK(to == targets[0].new_fn ||
		      lp_stub_target(to) == targets[0].new_fn);
	}
	transition(p, false);
	steady("disabled", 1);
	for (auto &t : targets) {
		uint8_t now[ENTRY_LEN];

		entry_read(&t, now);
		CHECK(!memcmp(now, t.orig, ENTRY_LEN));
	}
	CHECK_OK(rw_patch_unload(p));
	printf("ok\n");
	return 0;
}
