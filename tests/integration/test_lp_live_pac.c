/* SPDX-License-Identifier: MIT */
/*
 * Integration: live patching of a program built with pointer
 * authentication (aarch64), the way arm64 distributions build programs:
 * the program and its patches are built with -mbranch-protection=standard
 * (test_lp_live_pac.cmake), so every function that calls signs the return
 * address it saves (PACIASP) and its CFI says so with
 * DW_CFA_AARCH64_negate_ra_state, which libunwind 1.6 cannot parse. The
 * stack checks step such frames with rw__lp_cfi_step().
 *
 * 1. Held: a thread blocked in read() under pac_hold(), the function the
 *    patch lp_live_pac_hold.so replaces, with a pac-ret frame between
 *    them (hold_read()), holds the enable back. Oracle: while it sleeps
 *    there, within WAIT_MS every other thread switches and the holder is
 *    the one pending thread, RW_PT_ON_STACK in pac_hold() (found past
 *    hold_read()'s frame, whose return address was signed), and it was
 *    checked from outside (its context switch count does not move, its
 *    read() is not interrupted); once the byte it waits for is written,
 *    its call returns the old function's result, it parks in read() in
 *    another pac-ret function, and the enable completes (its stack is
 *    then SAFE through pac-ret frames, from outside); the main thread's
 *    call then runs the new function; the disable completes with the
 *    holder parked, and the old function is back.
 * 2. test_lp_live.c as it is (its oracle), every function pac-ret: the
 *    workers are checked in rewire's signal handler through their
 *    pac-ret frames, the reader and the sleeper from outside.
 */
#include <rewire/config.h>

#include "check.h"

#if defined(__aarch64__) && defined(RW_BACKEND_AARCH64)

int lp_live_main(void);
#define main lp_live_main
#include "test_lp_live.c"
#undef main

/* ---- 1. A thread held inside a patched function --------------------- */

int pac_hold(int fd);

static int hold_pipe[2], park_pipe[2];
static _Atomic pid_t holder_tid;
static _Atomic int holder_ret = -2, holder_parked;

/* Between pac_hold() and read(): a pac-ret frame that the check must step
 * to find pac_hold(). */
static __attribute__((noinline, noipa)) int hold_read(int fd)
{
	char b;

	if (read(fd, &b, 1) != 1)
		return -1;
	return b;
}

/* The old function: the byte read (the patch's adds 1000). */
__attribute__((noinline, noipa)) int pac_hold(int fd)
{
	int r = hold_read(fd);

	__asm__ volatile("" ::: "memory");
	return r;
}

/* After pac_hold() returned: blocked in read() outside the patch. */
static __attribute__((noinline, noipa)) void holder_park(void)
{
	char b;

	atomic_store(&holder_parked, 1);
	CHECK(read(park_pipe[0], &b, 1) == 1);
}

static void *holder_main(void *arg)
{
	(void)arg;
	atomic_store(&holder_tid, gettid());
	atomic_store(&holder_ret, pac_hold(hold_pipe[0]));
	holder_park();
	return NULL;
}

/* Is the holder, ON_STACK in pac_hold, the one pending thread? Any other
 * verdict on it than ON_STACK or NOT_CHECKED fails. */
static bool only_holder_pending(const struct rw_patch_info *info, pid_t tid)
{
	bool held = false;

	for (size_t i = 0; i < info->npending && i < RW_PATCH_INFO_THREADS;
	     i++) {
		const struct rw_patch_thread *pt = &info->pending[i];

		if (pt->tid != tid)
			continue;
		if (pt->why != RW_PT_ON_STACK && pt->why != RW_PT_NOT_CHECKED) {
			fprintf(stderr,
				"the holder is pending as %s, not "
				"ON_STACK\n",
				pt->why >= 0 && pt->why <= RW_PT_NO_ANSWER
					? why_name[pt->why]
					: "?");
			exit(1);
		}
		if (pt->why == RW_PT_ON_STACK) {
			if (!strstr(pt->func, "pac_hold")) {
				fprintf(stderr,
					"the holder is ON_STACK in "
					"\"%s\", not pac_hold\n",
					pt->func);
				exit(1);
			}
			held = true;
		}
	}
	return held && info->npending == 1 &&
	       info->threads_switched + 1 == info->threads_total;
}

static void test_hold(void)
{
	struct rw_patch_info info;
	struct rw_patch *p;
	uint64_t deadline;
	pthread_t t;
	pid_t tid;
	long sw;
	int err;

	printf("test_lp_live_pac: a thread held in a patched pac-ret "
	       "function\n");
	CHECK(pipe(hold_pipe) == 0);
	CHECK(pipe(park_pipe) == 0);
	CHECK(pthread_create(&t, NULL, holder_main, NULL) == 0);
	while (!(tid = atomic_load(&holder_tid)))
		usleep(1000);
	wait_blocked(tid, SYS_read, "holder");
	sw = ctxt_switches(tid);

	p = lp_load(LP_PAC_HOLD_PATCH, 0);
	CHECK_OK(rw_patch_enable(p));
	deadline = lp_deadline_ms(WAIT_MS);
	for (;;) {
		err = rw_patch_wait(p, 250);
		CHECK_EQ(err, -ETIMEDOUT);
		CHECK_OK(rw_patch_state(p, &info));
		CHECK_EQ(info.state, RW_PATCH_ENABLING);
		if (only_holder_pending(&info, tid))
			break;
		if (rw_test_now_ns() > deadline) {
			fprintf(stderr,
				"not only the holder pending after "
				"%d ms:\n",
				WAIT_MS);
			show_pending(&info);
			exit(1);
		}
	}
	printf("  held: %zu/%zu threads switched after %u round(s):\n",
	       info.threads_switched, info.threads_total, info.attempts);
	show_pending(&info);
	/* It stays held while it sleeps there. */
	CHECK_EQ(rw_patch_wait(p, 1000), -ETIMEDOUT);
	CHECK_OK(rw_patch_state(p, &info));
	CHECK(only_holder_pending(&info, tid));
	/* Checked from outside: never woken. */
	CHECK_EQ(lp_syscall_of(tid), SYS_read);
	CHECK_EQ(ctxt_switches(tid), sw);

	/* Let it return: it parks outside the patch, and the enable
	 * completes. */
	CHECK(write(hold_pipe[1], "h", 1) == 1);
	wait_verbose(p, "enable (holder released)");
	CHECK_OK(rw_patch_state(p, &info));
	CHECK_EQ(info.state, RW_PATCH_ENABLED);
	CHECK_EQ(info.npending, 0);
	CHECK_EQ(atomic_load(&holder_ret), 'h'); /* the old function's */
	CHECK(atomic_load(&holder_parked));
	printf("  released: the holder's call returned %d (old), enable "
	       "complete after %u round(s)\n",
	       atomic_load(&holder_ret), info.attempts);

	CHECK(write(hold_pipe[1], "m", 1) == 1);
	CHECK_EQ(pac_hold(hold_pipe[0]), 1000 + 'm');

	CHECK_OK(rw_patch_disable(p));
	wait_verbose(p, "disable");
	CHECK_OK(rw_patch_state(p, &info));
	CHECK_EQ(info.state, RW_PATCH_DISABLED);
	CHECK(write(hold_pipe[1], "o", 1) == 1);
	CHECK_EQ(pac_hold(hold_pipe[0]), 'o');

	CHECK(write(park_pipe[1], "x", 1) == 1);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_OK(rw_patch_unload(p));
	printf("  new function %d, then old again after the disable: ok\n",
	       1000 + 'm');
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	test_hold();
	return lp_live_main();
}

#else
int main(void)
{
	SKIP("pointer authentication is aarch64's, and live patching needs "
	     "the aarch64 backend there (x86-64 runs test_lp_live)");
}
#endif
