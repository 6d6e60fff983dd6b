/* SPDX-License-Identifier: MIT */
/*
 * Stack checks of live patching (src/livepatch/unwind.c):
 *
 *  1. rw__lp_check_self(NULL): a function and its caller are found, an
 *     unrelated range is not (the unwind reaches the end of the main
 *     thread's and of a pthread's stack), busy ranges win.
 *  2. rw__lp_check_self(uc) in a signal handler: the interrupted function
 *     at its exact address, its caller at return address - 1, SAFE for
 *     unrelated ranges in the main thread and in a pthread.
 *  3. rw__lp_check_blocked(): threads sleeping in read() and nanosleep()
 *     are checked without being disturbed; a spinning thread is RUNNING.
 *  4. A frame without CFI is UNWIND_FAILED, never SAFE; a thread that does
 *     not exist is -ESRCH; 1000 checks of a thread that alternates between
 *     sleeping and spinning give only the allowed answers.
 *  5. Rough costs of both checks (printed).
 *
 * The functions whose ranges we look for live in sections of their own,
 * so that the linker's __start_/__stop_ symbols give exact bounds.
 *
 *  6. aarch64: functions built with pac-ret (PACIASP signs the return
 *     address they save, and their CFI says so with
 *     DW_CFA_AARCH64_negate_ra_state, which libunwind 1.6 refuses): their
 *     frames are stepped by rw__lp_cfi_step(), and the signed return
 *     addresses are found once stripped, by check_self(NULL), by
 *     check_self(uc) in a handler wherever the signal lands, and by
 *     check_blocked on a thread blocked in read() under them; past them
 *     the walk reaches the end of the stack (SAFE).
 *
 * x86-64 and aarch64.
 */
#include "check.h"

#include "arch/arch.h"
#include "livepatch/unwind_remote.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noclone, used))

/*
 * Under ASan, libasan's read() and nanosleep() interceptors sit between
 * the caller and libc and keep the caller's %rbp in a register only; the
 * remote unwinder has rip and rsp alone, so it could not get past them.
 * Call the system calls directly there; the normal build uses libc's.
 */
#if defined(__SANITIZE_ADDRESS__) && defined(__x86_64__)
#define sys_read(fd, b, n) syscall(SYS_read, fd, b, n)
#define sys_nanosleep(ts, rem) syscall(SYS_nanosleep, ts, rem)
/* Frame pointers everywhere: keep %rbp saved on the stack by a frame
 * without one, so that the frame-pointer frames above can be unwound. */
#define SAVES_RBP __attribute__((optimize("omit-frame-pointer")))
#define CLOBBER_RBP() __asm__ volatile("" ::: "rbp", "memory")
#else
#define sys_read(fd, b, n) read(fd, b, n)
#define sys_nanosleep(ts, rem) nanosleep(ts, rem)
#define SAVES_RBP
#define CLOBBER_RBP() __asm__ volatile("" ::: "memory")
#endif

#if defined(__aarch64__)
#define UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.pc)
#else
#define UC_PC(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RIP])
#endif

static void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Sorts up to 4 ranges by start (the checks want them sorted). */
static void sort_ranges(struct rw__lp_range *r, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && r[j].start < r[j - 1].start; j--) {
			struct rw__lp_range t = r[j];
			r[j] = r[j - 1];
			r[j - 1] = t;
		}
}

static struct rw__lp_check mk(const struct rw__lp_range *funcs, size_t nf,
			      const struct rw__lp_range *busy, size_t nb)
{
	struct rw__lp_check c = {
		.funcs = funcs, .nfuncs = nf, .busy = busy, .nbusy = nb
	};
	return c;
}

/* A function that is never on any stack. */
static NOINLINE __attribute__((section("rwt_unrelated"))) int unrelated(int x)
{
	return x * 3 + 1;
}

/* ---- 1. check_self(NULL) ------------------------------------------------ */

static NOINLINE __attribute__((section("rwt_f"))) int
f_check(struct rw__lp_check *c)
{
	int r = rw__lp_check_self(NULL, c);

	barrier();
	return r;
}

static NOINLINE __attribute__((section("rwt_g"))) int
g_check(struct rw__lp_check *c)
{
	int r = f_check(c);

	barrier();
	return r;
}

static void test_self_null(const char *who)
{
	struct rw__lp_range F = SECTION_RANGE(rwt_f), G = SECTION_RANGE(rwt_g),
			    U = SECTION_RANGE(rwt_unrelated);
	struct rw__lp_range r[3];
	struct rw__lp_check c;

	c = mk(&F, 1, NULL, 0);
	CHECK_EQ(g_check(&c), RW__LP_ON_STACK);
	CHECK_EQ(c.hit_index, 0);
	CHECK(c.hit_ip >= F.start && c.hit_ip < F.end);

	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(g_check(&c), RW__LP_SAFE);

	c = mk(NULL, 0, NULL, 0);
	CHECK_EQ(g_check(&c), RW__LP_SAFE);

	c = mk(&U, 1, &F, 1);
	CHECK_EQ(g_check(&c), RW__LP_BUSY);
	CHECK(c.hit_ip >= F.start && c.hit_ip < F.end);

	/* G only, among others: found at the right index. */
	r[0] = U;
	r[1] = G;
	r[2] = (struct rw__lp_range){ 16, 32 };
	sort_ranges(r, 3);
	c = mk(r, 3, NULL, 0);
	CHECK_EQ(g_check(&c), RW__LP_ON_STACK);
	CHECK_EQ(r[c.hit_index].start, G.start);
	CHECK(c.hit_ip >= G.start && c.hit_ip < G.end);

	/* Busy elsewhere, F found. */
	c = mk(&F, 1, &U, 1);
	CHECK_EQ(g_check(&c), RW__LP_ON_STACK);
	printf("check_self(NULL) in %s: ok\n", who);
}

static void *self_null_thread(void *arg)
{
	test_self_null("a pthread");
	return arg;
}

/* ---- 2. check_self(uc) in a signal handler ------------------------------ */

/* H_NULL_*: check_self(NULL) inside the handler, through the signal frame. */
enum {
	H_RANGES,
	H_EXACT,
	H_EXACT_MINUS1,
	H_RA_MINUS1,
	H_RA,
	H_NULL_EXACT,
	H_NULL_EXACT_MINUS1
};
static struct {
	int mode;
	struct rw__lp_range funcs[4];
	size_t nfuncs;
	int result;
	uintptr_t hit_ip, rip;
	size_t hit_index;
	_Atomic int done;
} hs;
static _Atomic uintptr_t spin_ra; /* return address into spin_caller */
static _Atomic int spin_stop, spinning;

static void usr1_handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	uintptr_t rip = UC_PC(uc);
	uintptr_t ra = atomic_load(&spin_ra);
	struct rw__lp_range one;
	struct rw__lp_check c;

	(void)sig;
	(void)si;
	switch (hs.mode) {
	case H_EXACT:
	case H_NULL_EXACT:
		one = (struct rw__lp_range){ rip, rip + 1 };
		break;
	case H_EXACT_MINUS1:
	case H_NULL_EXACT_MINUS1:
		one = (struct rw__lp_range){ rip - 1, rip };
		break;
	case H_RA_MINUS1:
		one = (struct rw__lp_range){ ra - 1, ra };
		break;
	case H_RA:
		one = (struct rw__lp_range){ ra, ra + 1 };
		break;
	default:
		one = (struct rw__lp_range){ 0, 0 };
	}
	if (hs.mode == H_RANGES)
		c = mk(hs.funcs, hs.nfuncs, NULL, 0);
	else
		c = mk(&one, 1, NULL, 0);
	if (hs.mode == H_NULL_EXACT || hs.mode == H_NULL_EXACT_MINUS1)
		hs.result = rw__lp_check_self(NULL, &c);
	else
		hs.result = rw__lp_check_self(uc, &c);
	hs.hit_ip = c.hit_ip;
	hs.hit_index = c.hit_index;
	hs.rip = rip;
	atomic_store(&hs.done, 1);
}

static NOINLINE __attribute__((section("rwt_spin"))) void spin(void)
{
	volatile unsigned long n = 0;

	atomic_store(&spin_ra, (uintptr_t)__builtin_return_address(0));
	atomic_store(&spinning, 1);
	while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
		n++;
}

static NOINLINE __attribute__((section("rwt_spin_caller"))) void
spin_caller(void)
{
	spin();
	barrier();
}

static void *spin_thread(void *arg)
{
	spin_caller();
	return arg;
}

static void signal_check(pthread_t t, int mode, const struct rw__lp_range *f,
			 size_t nf)
{
	hs.mode = mode;
	hs.nfuncs = nf;
	for (size_t i = 0; i < nf; i++)
		hs.funcs[i] = f[i];
	atomic_store(&hs.done, 0);
	CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
	while (!atomic_load(&hs.done))
		sched_yield();
}

/* The main thread signals itself from here: the handler runs on top. */
static NOINLINE __attribute__((section("rwt_kill_self"))) void
kill_self(int mode, const struct rw__lp_range *f, size_t nf)
{
	signal_check(pthread_self(), mode, f, nf);
	barrier();
}

static void test_signal(void)
{
	struct rw__lp_range S = SECTION_RANGE(rwt_spin),
			    SC = SECTION_RANGE(rwt_spin_caller),
			    U = SECTION_RANGE(rwt_unrelated),
			    K = SECTION_RANGE(rwt_kill_self), r[2];
	struct sigaction sa;
	pthread_t t;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = usr1_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);

	CHECK_EQ(pthread_create(&t, NULL, spin_thread, NULL), 0);
	while (!atomic_load(&spinning))
		sched_yield();

	/* The interrupted function, at its exact address. */
	signal_check(t, H_RANGES, &S, 1);
	CHECK_EQ(hs.result, RW__LP_ON_STACK);
	CHECK_EQ(hs.hit_index, 0);
	CHECK_EQ(hs.hit_ip, hs.rip);
	CHECK(hs.rip >= S.start && hs.rip < S.end);
	signal_check(t, H_EXACT, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_ON_STACK);
	CHECK_EQ(hs.hit_ip, hs.rip);
	signal_check(t, H_EXACT_MINUS1, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_SAFE);
	/* The same from the handler's own frames: exact after the signal
	 * frame too. */
	signal_check(t, H_NULL_EXACT, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_ON_STACK);
	CHECK_EQ(hs.hit_ip, hs.rip);
	signal_check(t, H_NULL_EXACT_MINUS1, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_SAFE);

	/* The frame below, at return address - 1. */
	r[0] = U;
	r[1] = SC;
	sort_ranges(r, 2);
	signal_check(t, H_RANGES, r, 2);
	CHECK_EQ(hs.result, RW__LP_ON_STACK);
	CHECK_EQ(r[hs.hit_index].start, SC.start);
	signal_check(t, H_RA_MINUS1, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_ON_STACK);
	CHECK_EQ(hs.hit_ip, atomic_load(&spin_ra) - 1);
	signal_check(t, H_RA, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_SAFE);

	/* Nothing of ours: the pthread's stack unwinds to its end. */
	signal_check(t, H_RANGES, &U, 1);
	CHECK_EQ(hs.result, RW__LP_SAFE);
	signal_check(t, H_RANGES, NULL, 0);
	CHECK_EQ(hs.result, RW__LP_SAFE);

	/* The main thread, through the signal frame. */
	kill_self(H_RANGES, &U, 1);
	CHECK_EQ(hs.result, RW__LP_SAFE);
	kill_self(H_RANGES, &K, 1);
	CHECK_EQ(hs.result, RW__LP_ON_STACK);
	CHECK(hs.hit_ip >= K.start && hs.hit_ip < K.end);

	atomic_store(&spin_stop, 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
	printf("check_self(uc) in handlers: ok\n");
}

/* ---- 3. check_blocked --------------------------------------------------- */

static int pipefd[2];
static _Atomic pid_t reader_tid;
static ssize_t reader_ret;
static int reader_errno;
static char reader_byte;

static NOINLINE SAVES_RBP __attribute__((section("rwt_read"))) ssize_t
blocked_read(void)
{
	ssize_t n;

	CLOBBER_RBP();
	n = sys_read(pipefd[0], &reader_byte, 1);
	reader_errno = n < 0 ? errno : 0;
	barrier();
	return n;
}

static void *reader_thread(void *arg)
{
	atomic_store(&reader_tid, gettid_());
	reader_ret = blocked_read();
	return arg;
}

static _Atomic pid_t sleeper_tid;
static long sleeper_ret;
static int sleeper_errno;

static NOINLINE SAVES_RBP __attribute__((section("rwt_sleep"))) long
blocked_sleep(void)
{
	struct timespec ts = { 2, 0 };
	long r;

	CLOBBER_RBP();
	r = sys_nanosleep(&ts, NULL);
	sleeper_errno = r ? errno : 0;
	barrier();
	return r;
}

static void *sleeper_thread(void *arg)
{
	atomic_store(&sleeper_tid, gettid_());
	sleeper_ret = blocked_sleep();
	return arg;
}

static void wait_blocked(pid_t tid)
{
	uintptr_t ip = 0;
	int r;

	for (int i = 0; i < 10000; i++) {
		r = rw__thread_blocked_ip(tid, &ip);
		CHECK(r >= 0);
		if (r == 1) {
			CHECK(ip != 0);
			return;
		}
		usleep(1000);
	}
	CHECK(!"thread never blocked");
}

/* Until thread @tid has left /proc/self/task (5 s at most). */
static void wait_gone(pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	for (int i = 0; i < 5000 && access(path, F_OK) == 0; i++)
		usleep(1000);
}

/* check_blocked, retried while the thread moves (it should not). */
static int check_blocked_settled(pid_t tid, struct rw__lp_check *c)
{
	int r = RW__LP_MOVED;

	for (int i = 0; i < 100; i++) {
		r = rw__lp_check_blocked(tid, c);
		if (r != RW__LP_MOVED)
			break;
		usleep(1000);
	}
	return r;
}

static void test_blocked(void)
{
	struct rw__lp_range R = SECTION_RANGE(rwt_read),
			    SL = SECTION_RANGE(rwt_sleep),
			    U = SECTION_RANGE(rwt_unrelated);
	struct rw__lp_check c;
	pthread_t t, ts;
	pid_t tid, stid;

	CHECK_EQ(pipe(pipefd), 0);
	CHECK_EQ(pthread_create(&t, NULL, reader_thread, NULL), 0);
	while (!(tid = atomic_load(&reader_tid)))
		sched_yield();
	wait_blocked(tid);

	c = mk(&R, 1, NULL, 0);
	CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_ON_STACK);
	CHECK_EQ(c.hit_index, 0);
	CHECK(c.hit_ip >= R.start && c.hit_ip < R.end);
	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_SAFE);
	c = mk(NULL, 0, NULL, 0);
	CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_SAFE);
	c = mk(&U, 1, &R, 1);
	CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_BUSY);
	CHECK(c.hit_ip >= R.start && c.hit_ip < R.end);

	/* The sleeper: nanosleep is not interrupted by the checks. */
	CHECK_EQ(pthread_create(&ts, NULL, sleeper_thread, NULL), 0);
	while (!(stid = atomic_load(&sleeper_tid)))
		sched_yield();
	wait_blocked(stid);
	c = mk(&SL, 1, NULL, 0);
	CHECK_EQ(check_blocked_settled(stid, &c), RW__LP_ON_STACK);
	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(check_blocked_settled(stid, &c), RW__LP_SAFE);

	/* The reader: the byte arrives, read returns it (no EINTR). */
	CHECK_EQ(write(pipefd[1], "x", 1), 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(reader_ret, 1);
	CHECK_EQ(reader_errno, 0);
	CHECK_EQ(reader_byte, 'x');

	CHECK_EQ(pthread_join(ts, NULL), 0);
	CHECK_EQ(sleeper_ret, 0);
	CHECK_EQ(sleeper_errno, 0);

	/* Gone. pthread_join() returns once the kernel cleared the thread's
	 * tid, which it does before the task leaves /proc (seen under
	 * emulation: RUNNING instead of -ESRCH). */
	wait_gone(tid);
	wait_gone(stid);
	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(rw__lp_check_blocked(tid, &c), -ESRCH);
	CHECK_EQ(rw__lp_check_blocked(stid, &c), -ESRCH);
	{
		uintptr_t ip;
		CHECK_EQ(rw__thread_blocked_ip(tid, &ip), -ESRCH);
	}

	printf("check_blocked: ok\n");
}

/* A spinner that publishes its tid, for RUNNING. */
static _Atomic pid_t busy_tid;
static _Atomic int busy_stop;

static void *busy_thread(void *arg)
{
	atomic_store(&busy_tid, gettid_());
	while (!atomic_load_explicit(&busy_stop, memory_order_relaxed))
		barrier();
	return arg;
}

static void test_running(void)
{
	struct rw__lp_range U = SECTION_RANGE(rwt_unrelated);
	struct rw__lp_check c = mk(&U, 1, NULL, 0);
	pthread_t t;
	pid_t tid;
	int running = 0;
	uintptr_t ip;

	CHECK_EQ(pthread_create(&t, NULL, busy_thread, NULL), 0);
	while (!(tid = atomic_load(&busy_tid)))
		sched_yield();
	/* Runnable or running, never "blocked" (it never sleeps; on a
	 * loaded machine it may be preempted, which is still "running"). */
	for (int i = 0; i < 20; i++) {
		int r = rw__lp_check_blocked(tid, &c);

		CHECK_EQ(r, RW__LP_RUNNING);
		CHECK_EQ(rw__thread_blocked_ip(tid, &ip), 0);
		running++;
	}
	atomic_store(&busy_stop, 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
	printf("running thread: RUNNING %d/20\n", running);
}

/* ---- 4. Robustness ------------------------------------------------------ */

/*
 * int nocfi_call(void *arg, int (*fn)(void *)): calls fn(arg) from a
 * frame without CFI, with %rbp = 0 (x29 = 0 on aarch64: what libunwind
 * takes for the end of a frame-pointer chain).
 */
#if defined(__aarch64__)
__asm__(".pushsection rwt_nocfi,\"ax\",@progbits\n"
	".globl nocfi_call\n"
	".hidden nocfi_call\n"
	".type nocfi_call,@function\n"
	"nocfi_call:\n"
	"	hint #34\n" /* bti c */
	"	stp x29, x30, [sp, #-16]!\n"
	"	mov x29, #0\n"
	"	blr x1\n"
	"	ldp x29, x30, [sp], #16\n"
	"	ret\n"
	".size nocfi_call, .-nocfi_call\n"
	".popsection\n");
#else
__asm__(".pushsection rwt_nocfi,\"ax\",@progbits\n"
	".globl nocfi_call\n"
	".hidden nocfi_call\n"
	".type nocfi_call,@function\n"
	"nocfi_call:\n"
	"	push %rbp\n"
	"	push %rbx\n"
	"	sub $8, %rsp\n"
	"	xor %ebp, %ebp\n"
	"	call *%rsi\n"
	"	add $8, %rsp\n"
	"	pop %rbx\n"
	"	pop %rbp\n"
	"	ret\n"
	".size nocfi_call, .-nocfi_call\n"
	".popsection\n");
#endif
int nocfi_call(void *arg, int (*fn)(void *));

static int nocfi_cb(void *arg)
{
	int r = rw__lp_check_self(NULL, arg);

	barrier();
	return r;
}

static _Atomic pid_t alt_tid;
static _Atomic int alt_stop;
/* How long alt_sleep sleeps: 200 us natively, 25 times more where the
 * tests' waits are scaled (emulated, a check from outside takes longer
 * than 200 us, so the sleeper woke during every check: BUSY, never
 * ON_STACK). */
static long alt_sleep_ns = 200000;

static NOINLINE SAVES_RBP __attribute__((section("rwt_alt"))) void
alt_sleep(void)
{
	struct timespec ts = { 0, alt_sleep_ns };

	CLOBBER_RBP();
	sys_nanosleep(&ts, NULL);
	barrier();
}

static void *alt_thread(void *arg)
{
	atomic_store(&alt_tid, gettid_());
	while (!atomic_load(&alt_stop)) {
		volatile int n = 0;

		alt_sleep();
		for (int i = 0; i < 100000; i++)
			n++;
	}
	return arg;
}

static void test_robust(void)
{
	struct rw__lp_range U = SECTION_RANGE(rwt_unrelated),
			    A = SECTION_RANGE(rwt_alt),
			    N = SECTION_RANGE(rwt_nocfi);
	struct rw__lp_check c = mk(&U, 1, NULL, 0);
	int counts[6] = { 0 };
	pthread_t t;
	pid_t tid;

	/* No CFI, %rbp = 0: a guessed end of stack is not SAFE. */
	CHECK_EQ(nocfi_call(&c, nocfi_cb), RW__LP_UNWIND_FAILED);
	/* In range, it is found before the unwind gets lost. */
	c = mk(&N, 1, NULL, 0);
	CHECK_EQ(nocfi_call(&c, nocfi_cb), RW__LP_ON_STACK);

	/* No such thread. */
	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(rw__lp_check_blocked(0x3ffffff0, &c), -ESRCH);

	if (rw_test_time_scale() > 1)
		alt_sleep_ns = 5000000;
	CHECK_EQ(pthread_create(&t, NULL, alt_thread, NULL), 0);
	while (!(tid = atomic_load(&alt_tid)))
		sched_yield();
	/* 1000 checks, and on until one found it asleep in alt_sleep (the
	 * emulated aarch64 machine spends most of its time in the loop),
	 * for at most 60 s. */
	uint64_t t0 = rw_test_now_ns();

	for (int i = 0; i < 1000 || (!counts[RW__LP_ON_STACK] &&
				     rw_test_now_ns() - t0 < 60000000000ull);
	     i++) {
		struct rw__lp_range fr[2] = { U, A };
		int r;

		sort_ranges(fr, 2);
		c = mk(fr, 2, NULL, 0);
		r = rw__lp_check_blocked(tid, &c);
		CHECK(r == RW__LP_SAFE || r == RW__LP_ON_STACK ||
		      r == RW__LP_MOVED || r == RW__LP_RUNNING ||
		      r == RW__LP_UNWIND_FAILED);
		/* Blocked in alt_sleep: it must be seen there. */
		CHECK(r != RW__LP_SAFE);
		if (r == RW__LP_ON_STACK)
			CHECK_EQ(fr[c.hit_index].start, A.start);
		counts[r]++;
	}
	atomic_store(&alt_stop, 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
	printf("%d checks of a sleeping/spinning thread: safe %d on_stack %d "
	       "failed %d moved %d running %d\n",
	       counts[RW__LP_SAFE] + counts[RW__LP_ON_STACK] +
		       counts[RW__LP_UNWIND_FAILED] + counts[RW__LP_MOVED] +
		       counts[RW__LP_RUNNING],
	       counts[RW__LP_SAFE], counts[RW__LP_ON_STACK],
	       counts[RW__LP_UNWIND_FAILED], counts[RW__LP_MOVED],
	       counts[RW__LP_RUNNING]);
	CHECK(counts[RW__LP_ON_STACK] > 0);
}

/* ---- 6. PAC ------------------------------------------------------------- */

#if defined(__aarch64__)
#define PAC_RET __attribute__((target("branch-protection=standard")))

static NOINLINE PAC_RET __attribute__((section("rwt_pac_in"))) int
pac_inner(struct rw__lp_check *c)
{
	int r = f_check(c);

	barrier();
	return r;
}

static NOINLINE PAC_RET __attribute__((section("rwt_pac_out"))) int
pac_outer(struct rw__lp_check *c)
{
	int r = pac_inner(c);

	barrier();
	return r;
}

/*
 * A thread spinning under two pac-ret frames. pac_spin calls, so it signs
 * its return address; each turn calls pac_mid, whose prologue signs and
 * whose epilogue authenticates, so that the signal lands in every state of
 * a pac-ret frame: before PACIASP, signed in x30, saved on the stack,
 * reloaded into x30 and not yet authenticated, authenticated (and in
 * pac_tick, unsigned code).
 */
static _Atomic int pac_spin_stop, pac_spinning;
static volatile unsigned long pac_ticks;

static NOINLINE void pac_tick(void)
{
	pac_ticks++;
}

static NOINLINE PAC_RET __attribute__((section("rwt_pac_mid"))) void
pac_mid(void)
{
	pac_tick();
	barrier();
}

static NOINLINE PAC_RET __attribute__((section("rwt_pac_spin"))) void
pac_spin(void)
{
	atomic_store(&pac_spinning, 1);
	while (!atomic_load_explicit(&pac_spin_stop, memory_order_relaxed))
		pac_mid();
}

static NOINLINE PAC_RET __attribute__((section("rwt_pac_spin_out"))) void
pac_spin_outer(void)
{
	pac_spin();
	barrier();
}

static void *pac_spin_thread(void *arg)
{
	pac_spin_outer();
	return arg;
}

/* A thread blocked in read() under two pac-ret frames. */
static int pac_pipe[2];
static _Atomic pid_t pac_reader_tid;
static char pac_byte;

static NOINLINE PAC_RET __attribute__((section("rwt_pac_read"))) ssize_t
pac_read(void)
{
	ssize_t n = read(pac_pipe[0], &pac_byte, 1);

	barrier();
	return n;
}

static NOINLINE PAC_RET __attribute__((section("rwt_pac_read_out"))) ssize_t
pac_read_outer(void)
{
	ssize_t n = pac_read();

	barrier();
	return n;
}

static void *pac_reader_thread(void *arg)
{
	(void)arg;
	atomic_store(&pac_reader_tid, gettid_());
	return (void *)pac_read_outer();
}

#if defined(RW_BACKEND_AARCH64)
/*
 * rw__lp_cfi_step() itself, at every instruction of a pac-ret function
 * written here with its CFI (GCC's frame, plus a second epilogue path
 * through remember/restore state), with the registers and the stack that
 * instruction sees: the caller's pc must be the return address without
 * its pointer authentication code, sp the CFA, and x19/x29 restored or
 * kept as the CFI says. Under emulation signals land only at block
 * boundaries, so the handler tests above cannot reach most of these
 * states. Also: CFI by expression is -EOPNOTSUPP, an undefined return
 * address is the end of the stack (0), an address without CFI -ENOENT.
 */
__asm__(".pushsection rwt_pac_asm,\"ax\",@progbits\n"
	".globl pac_asm\n"
	".hidden pac_asm\n"
	".type pac_asm,%function\n"
	"pac_asm:\n"
	".cfi_startproc\n"
	"	hint #25\n" /* 0 paciasp */
	".cfi_negate_ra_state\n"
	"	stp x29, x30, [sp, #-32]!\n" /* 1 */
	".cfi_def_cfa_offset 32\n"
	".cfi_offset 29, -32\n"
	".cfi_offset 30, -24\n"
	"	mov x29, sp\n"	      /* 2 */
	"	str x19, [sp, #16]\n" /* 3 */
	".cfi_offset 19, -16\n"
	"	cbz x0, 1f\n" /* 4 */
	".cfi_remember_state\n"
	"	ldr x19, [sp, #16]\n" /* 5 */
	".cfi_restore 19\n"
	"	ldp x29, x30, [sp], #32\n" /* 6 */
	".cfi_restore 30\n"
	".cfi_restore 29\n"
	".cfi_def_cfa_offset 0\n"
	"	hint #29\n" /* 7 autiasp */
	".cfi_negate_ra_state\n"
	"	ret\n" /* 8 */
	"1:\n"
	".cfi_restore_state\n"
	"	nop\n" /* 9 */
	"	ret\n" /* 10 (not a real epilogue: never run) */
	".cfi_endproc\n"
	".size pac_asm, .-pac_asm\n"
	".globl pac_asm_expr\n" /* global: a GOT entry of its own */
	".hidden pac_asm_expr\n"
	".type pac_asm_expr,%function\n"
	"pac_asm_expr:\n"
	".cfi_startproc\n"
	".cfi_escape 0x0f, 0x02, 0x8f, 0x00\n" /* CFA: DW_OP_breg31 0 */
	"	ret\n"
	".cfi_endproc\n"
	".size pac_asm_expr, .-pac_asm_expr\n"
	".globl pac_asm_end\n"
	".hidden pac_asm_end\n"
	".type pac_asm_end,%function\n"
	"pac_asm_end:\n"
	".cfi_startproc\n"
	".cfi_undefined x30\n"
	"	ret\n"
	".cfi_endproc\n"
	".size pac_asm_end, .-pac_asm_end\n"
	/* A patchable entry as GCC lays it out with
	 * -fpatchable-function-entry=2 -mbranch-protection=standard: BTI C
	 * and the NOPs before .cfi_startproc, outside every FDE. */
	".globl entry_asm\n"
	".hidden entry_asm\n"
	".type entry_asm,%function\n"
	"entry_asm:\n"
	"	hint #34\n" /* 0 bti c */
	"	nop\n"	    /* 1 */
	"	nop\n"	    /* 2 */
	".cfi_startproc\n"
	"	hint #25\n" /* paciasp */
	".cfi_negate_ra_state\n"
	"	hint #29\n" /* autiasp */
	".cfi_negate_ra_state\n"
	"	ret\n"
	".cfi_endproc\n"
	".size entry_asm, .-entry_asm\n"
	/* NOPs without CFI that no FDE follows at once: not an entry. */
	".globl noentry_asm\n"
	".hidden noentry_asm\n"
	".type noentry_asm,%function\n"
	"noentry_asm:\n"
	"	nop\n"
	"	nop\n"
	"	nop\n"
	"	nop\n"
	"	ret\n"
	".size noentry_asm, .-noentry_asm\n"
	".popsection\n");
void entry_asm(void);
void noentry_asm(void);
void pac_asm(void);
void pac_asm_expr(void);
void pac_asm_end(void);

/* PACIA1716 (a hint: a NOP without pointer authentication). */
static uintptr_t pac_sign(uintptr_t p, uintptr_t mod)
{
	register uintptr_t x17 __asm__("x17") = p;
	register uintptr_t x16 __asm__("x16") = mod;

	__asm__("hint #8" : "+r"(x17) : "r"(x16));
	return x17;
}

static void test_pac_step(bool pac)
{
	/* Where the return address is before instruction i: in x30 ('r'),
	 * on the stack ('s'); signed or not; x19 saved on the stack. */
	static const struct {
		char ra;
		bool sig, x19_saved;
	} st[] = {
		{ 'r', false, false }, { 'r', true, false },
		{ 's', true, false },  { 's', true, false },
		{ 's', true, true },   { 's', true, true },
		{ 's', true, false },  { 'r', true, false },
		{ 'r', false, false }, { 's', true, true },
		{ 's', true, true },
	};
	uintptr_t mem[4] __attribute__((aligned(16)));
	uintptr_t cfa = (uintptr_t)&mem[4];
	uintptr_t ra = (uintptr_t)pac_tick + 4, sra = pac_sign(ra, cfa);
	struct rw__lp_frame f;

	if (pac)
		CHECK(sra != ra);
	mem[0] = 0x2929; /* the caller's x29 */
	mem[1] = sra;
	mem[2] = 0x1919; /* the caller's x19 */
	mem[3] = 0;
	for (size_t i = 0; i < RW_ARRAY_SIZE(st); i++) {
		for (int ret = 0; ret < 2; ret++) {
			uintptr_t pc = (uintptr_t)pac_asm + 4 * i;
			int r;

			memset(&f, 0, sizeof(f));
			for (int k = 0; k <= 30; k++)
				f.reg[k] = 0x1000 + k;
			f.reg[30] = st[i].ra == 's' ? 0xdead
						    : (st[i].sig ? sra : ra);
			f.reg[31] = st[i].ra == 's' ? (uintptr_t)mem : cfa;
			f.known = ret ? 0xfff80000u : 0xffffffffu;
			/* ret: a return address just past instruction i. */
			f.pc = ret ? pc + 4 : pc;
			r = rw__lp_cfi_step(&f, !ret);
			if (r != 1 || f.pc != ra || f.reg[31] != cfa ||
			    f.reg[19] !=
				    (st[i].x19_saved ? 0x1919u : 0x1013u) ||
			    f.reg[29] !=
				    (st[i].ra == 's' ? 0x2929u : 0x101du) ||
			    !(f.known & (1u << 19 | 1u << 29 | 1u << 31))) {
				fprintf(stderr,
					"pac_asm instruction %zu (%s): %d, "
					"pc %#lx (want %#lx) sp %#lx (want "
					"%#lx) x19 %#lx x29 %#lx\n",
					i, ret ? "return address" : "exact", r,
					(unsigned long)f.pc, (unsigned long)ra,
					(unsigned long)f.reg[31],
					(unsigned long)cfa,
					(unsigned long)f.reg[19],
					(unsigned long)f.reg[29]);
				exit(1);
			}
		}
	}
	memset(&f, 0, sizeof(f));
	f.known = 0xffffffffu;
	f.reg[31] = cfa;
	f.pc = (uintptr_t)pac_asm_expr;
	CHECK_EQ(rw__lp_cfi_step(&f, true), -EOPNOTSUPP);
	f.pc = (uintptr_t)pac_asm_end;
	CHECK_EQ(rw__lp_cfi_step(&f, true), 0);
	f.pc = (uintptr_t)mem;
	CHECK_EQ(rw__lp_cfi_step(&f, true), -ENOENT);
	/* In the patchable entry (no FDE): the caller is x30, sp the CFA;
	 * as a return address there is no such frame. */
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k <= 30; k++)
			f.reg[k] = 0x1000 + k;
		f.reg[30] = ra;
		f.reg[31] = cfa;
		f.known = 0xffffffffu;
		f.pc = (uintptr_t)entry_asm + 4 * i;
		CHECK_EQ(rw__lp_cfi_step(&f, true), 1);
		CHECK(f.pc == ra && f.reg[31] == cfa && f.reg[19] == 0x1013 &&
		      f.reg[29] == 0x101d);
		f.reg[30] = ra;
		f.known = 0xffffffffu;
		f.pc = (uintptr_t)entry_asm + 4 * i + 4;
		if (i < 2)
			CHECK_EQ(rw__lp_cfi_step(&f, false), -ENOENT);
	}
	for (int i = 0; i < 4; i++) {
		f.known = 0xffffffffu;
		f.pc = (uintptr_t)noentry_asm + 4 * i;
		CHECK_EQ(rw__lp_cfi_step(&f, true), -ENOENT);
	}
	printf("rw__lp_cfi_step: %zu instructions of a pac-ret frame, exact "
	       "and as return addresses, and a patchable entry outside the "
	       "FDEs: ok\n",
	       RW_ARRAY_SIZE(st));
}

/*
 * rw__lp_check_self() on a signal handler's ucontext whose frame sits in a
 * patchable entry (outside every FDE, x30 the return address): the caller
 * is found from the ucontext's x30. libunwind's aarch64 port gives the pc
 * for x30 (UNW_TDEP_IP is UNW_AARCH64_X30): taken from the cursor, the
 * frame was its own caller, and the walk looped to UNWIND_FAILED. The
 * ucontext is made with getcontext() (the kernel's layout), then pointed
 * at entry_asm with x30 inside pac_outer.
 */
static NOINLINE int entry_uc_get(ucontext_t *uc)
{
	/* Returns once: nothing here changes after getcontext(). */
	return getcontext(uc);
}

static void test_entry_uc(void)
{
	struct rw__lp_range O = SECTION_RANGE(rwt_pac_out);
	struct rw__lp_check c;
	ucontext_t uc;

	for (int i = 0; i < 3; i++) {
		CHECK_EQ(entry_uc_get(&uc), 0);
		uc.uc_mcontext.pc = (uintptr_t)entry_asm + 4 * i;
		uc.uc_mcontext.regs[30] = O.start + 8;
		c = mk(&O, 1, NULL, 0);
		CHECK_EQ(rw__lp_check_self(&uc, &c), RW__LP_ON_STACK);
		CHECK(c.hit_ip >= O.start && c.hit_ip < O.end);
	}
	printf("check_self(uc) in a patchable entry: the caller from x30: "
	       "ok\n");
}

/*
 * rw__lp_check_self() on a ucontext stopped at a dispatcher slot's first
 * instruction: stepped to the caller from x30 (the function whose entry
 * branched there has not run), so the verdict is the caller's; anywhere
 * else in the slot, or without x30, or without the pages of slots, BUSY
 * as before. qemu's TCG delivered a signal there in round after round
 * (a branch between pages), and test_lp_repatch's transition never
 * ended. The slot page is a buffer: the step reads no instruction.
 */
static uint8_t fake_slots[8192] __attribute__((aligned(4096)));

static void test_dispatch_entry_uc(void)
{
	struct rw__lp_range O = SECTION_RANGE(rwt_pac_out);
	uintptr_t page = (uintptr_t)fake_slots;
	struct rw__lp_range B = { page, page + 4096 };
	struct rw__lp_check c;
	ucontext_t uc;

	for (int slot = 0; slot < 4096 / RW__ARCH_DISPATCH_SIZE; slot += 5) {
		uintptr_t at = page + (uintptr_t)slot * RW__ARCH_DISPATCH_SIZE;

		/* At the slot's start: the caller, in O, is found. */
		CHECK_EQ(entry_uc_get(&uc), 0);
		uc.uc_mcontext.pc = at;
		uc.uc_mcontext.regs[30] = O.start + 8;
		c = mk(&O, 1, &B, 1);
		c.dpages = &page;
		c.ndpages = 1;
		CHECK_EQ(rw__lp_check_self(&uc, &c), RW__LP_ON_STACK);
		CHECK(c.hit_ip >= O.start && c.hit_ip < O.end);
		/* Inside the slot: busy, there. */
		uc.uc_mcontext.pc = at + 4;
		c = mk(&O, 1, &B, 1);
		c.dpages = &page;
		c.ndpages = 1;
		CHECK_EQ(rw__lp_check_self(&uc, &c), RW__LP_BUSY);
		CHECK_EQ(c.hit_ip, at + 4);
		/* No x30: busy. */
		uc.uc_mcontext.pc = at;
		uc.uc_mcontext.regs[30] = 0;
		c = mk(&O, 1, &B, 1);
		c.dpages = &page;
		c.ndpages = 1;
		CHECK_EQ(rw__lp_check_self(&uc, &c), RW__LP_BUSY);
		CHECK_EQ(c.hit_ip, at);
		/* The pages of slots not given (the sweep's and the unload's
		 * checks): busy. */
		uc.uc_mcontext.regs[30] = O.start + 8;
		c = mk(&O, 1, &B, 1);
		CHECK_EQ(rw__lp_check_self(&uc, &c), RW__LP_BUSY);
		CHECK_EQ(c.hit_ip, at);
	}
	printf("check_self(uc) at a dispatcher's first instruction: the "
	       "caller from x30; elsewhere in it busy: ok\n");
}

/*
 * The same frames interrupted further up the stack: a SIGUSR2 handler
 * points its own interrupted context at the patchable entry (or at a
 * dispatcher slot's first instruction) with x30 inside pac_outer, then
 * checks from its own frames (rw__lp_check_self(NULL)): the walk steps
 * through the sigreturn trampoline into that frame, exact, and takes x30
 * from the signal frame. Only the innermost frame's x30 was known before:
 * a thread in rewire's SIGTRAP handler emulating an entry's BRK when
 * rewire's signal came could not be checked, and an unload kept its patch
 * mapped (test_lp_badinput in the aarch64 VM).
 */
static struct {
	uintptr_t pc, x30;
	struct rw__lp_check c;
	int result;
} nest;

static void nest_handler(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	uintptr_t pc = uc->uc_mcontext.pc, x30 = uc->uc_mcontext.regs[30];

	(void)sig;
	(void)si;
	uc->uc_mcontext.pc = nest.pc;
	uc->uc_mcontext.regs[30] = nest.x30;
	nest.result = rw__lp_check_self(NULL, &nest.c);
	uc->uc_mcontext.pc = pc;
	uc->uc_mcontext.regs[30] = x30;
}

static void test_entry_nested(void)
{
	struct rw__lp_range O = SECTION_RANGE(rwt_pac_out);
	uintptr_t page = (uintptr_t)fake_slots;
	struct rw__lp_range B = { page, page + 4096 };
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = nest_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR2, &sa, &old), 0);
	for (int i = 0; i < 3; i++) {
		nest.pc = (uintptr_t)entry_asm + 4 * i;
		nest.x30 = O.start + 8;
		nest.c = mk(&O, 1, NULL, 0);
		CHECK_EQ(raise(SIGUSR2), 0);
		CHECK_EQ(nest.result, RW__LP_ON_STACK);
		CHECK(nest.c.hit_ip >= O.start && nest.c.hit_ip < O.end);
	}
	/* At a dispatcher slot's first instruction: the caller too. */
	nest.pc = page + 3 * RW__ARCH_DISPATCH_SIZE;
	nest.c = mk(&O, 1, &B, 1);
	nest.c.dpages = &page;
	nest.c.ndpages = 1;
	CHECK_EQ(raise(SIGUSR2), 0);
	CHECK_EQ(nest.result, RW__LP_ON_STACK);
	CHECK(nest.c.hit_ip >= O.start && nest.c.hit_ip < O.end);
	/* x30 0 in the signal frame: nothing is guessed. */
	nest.pc = (uintptr_t)entry_asm;
	nest.x30 = 0;
	nest.c = mk(&O, 1, NULL, 0);
	CHECK_EQ(raise(SIGUSR2), 0);
	CHECK_EQ(nest.result, RW__LP_UNWIND_FAILED);
	CHECK_EQ(sigaction(SIGUSR2, &old, NULL), 0);
	printf("check_self(NULL) in a handler whose interrupted frame is in a "
	       "patchable entry or at a dispatcher's first instruction: the "
	       "caller from the signal frame's x30: ok\n");
}
#endif

static void test_pac(void)
{
	struct rw__lp_range I = SECTION_RANGE(rwt_pac_in),
			    O = SECTION_RANGE(rwt_pac_out),
			    SO = SECTION_RANGE(rwt_pac_spin_out),
			    S = SECTION_RANGE(rwt_pac_spin),
			    M = SECTION_RANGE(rwt_pac_mid),
			    RO = SECTION_RANGE(rwt_pac_read_out),
			    U = SECTION_RANGE(rwt_unrelated);
	bool pac = getauxval(AT_HWCAP) & (1ul << 30); /* HWCAP_PACA */
	struct rw__lp_check c;
	int landed[2] = { 0, 0 }, in_mid[32] = { 0 };
	uintptr_t hit;
	pthread_t t;
	pid_t tid;
	void *ret;
	int n;

	printf("pac-ret: the CPU %s pointer authentication\n",
	       pac ? "has" : "lacks (addresses are not signed)");
#if defined(RW_BACKEND_AARCH64)
	test_pac_step(pac);
	test_entry_uc();
	test_dispatch_entry_uc();
	test_entry_nested();
#endif
	/* Its return address was saved by f_check, unsigned. */
	c = mk(&I, 1, NULL, 0);
	CHECK_EQ(pac_outer(&c), RW__LP_ON_STACK);
	CHECK(c.hit_ip >= I.start && c.hit_ip < I.end);
	/* pac_outer's was signed by pac_inner: found once stripped. */
	c = mk(&O, 1, NULL, 0);
	CHECK_EQ(pac_outer(&c), RW__LP_ON_STACK);
	CHECK(c.hit_ip >= O.start && c.hit_ip < O.end);
	printf("pac-ret frames, check_self(NULL): signed return address "
	       "found (%#lx in pac_outer)\n",
	       (unsigned long)c.hit_ip);
	/* And past them, to the end of the main thread's stack. */
	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(pac_outer(&c), RW__LP_SAFE);

	/* In a signal handler, from wherever the signal lands: pac_spin_outer
	 * found, or nothing (SAFE) to the end of the thread's stack. */
	CHECK_EQ(pthread_create(&t, NULL, pac_spin_thread, NULL), 0);
	while (!atomic_load(&pac_spinning))
		sched_yield();
	for (n = 0; n < 60; n++) {
		bool safe = n % 2;

		signal_check(t, H_RANGES, safe ? &U : &SO, 1);
		if (safe) {
			CHECK_EQ(hs.result, RW__LP_SAFE);
		} else {
			CHECK_EQ(hs.result, RW__LP_ON_STACK);
			CHECK(hs.hit_ip >= SO.start && hs.hit_ip < SO.end);
		}
		if (hs.rip >= M.start && hs.rip < M.end)
			in_mid[(hs.rip - M.start) / 4 < 32
				       ? (hs.rip - M.start) / 4
				       : 31]++;
		else
			landed[hs.rip >= S.start && hs.rip < S.end]++;
	}
	atomic_store(&pac_spin_stop, 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
	printf("pac-ret frames, check_self(uc): %d signals, ON_STACK and "
	       "SAFE as expected; landed in pac_tick or elsewhere %d, "
	       "pac_spin %d, pac_mid at instruction:",
	       n, landed[0], landed[1]);
	for (size_t i = 0; i < 32 && M.start + 4 * i < M.end; i++)
		if (in_mid[i])
			printf(" %zu(%dx)", i, in_mid[i]);
	printf("\n");

	/* Blocked in read(), unwound from outside. */
	CHECK_EQ(pipe(pac_pipe), 0);
	CHECK_EQ(pthread_create(&t, NULL, pac_reader_thread, NULL), 0);
	while (!(tid = atomic_load(&pac_reader_tid)))
		sched_yield();
	wait_blocked(tid);
	c = mk(&RO, 1, NULL, 0);
	CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_ON_STACK);
	CHECK(c.hit_ip >= RO.start && c.hit_ip < RO.end);
	hit = c.hit_ip;
	c = mk(&U, 1, NULL, 0);
	CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_SAFE);
	CHECK_EQ(write(pac_pipe[1], "p", 1), 1);
	CHECK_EQ(pthread_join(t, &ret), 0);
	CHECK_EQ((long)ret, 1);
	CHECK_EQ(pac_byte, 'p');
	printf("pac-ret frames, check_blocked: ON_STACK (%#lx in "
	       "pac_read_outer) and SAFE\n",
	       (unsigned long)hit);
}
#endif

/* ---- 5. Costs ----------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_cost(void)
{
	struct rw__lp_range U = SECTION_RANGE(rwt_unrelated);
	struct rw__lp_check c = mk(&U, 1, NULL, 0);
	pthread_t t;
	pid_t tid;
	uint64_t t0, t1;
#if defined(__aarch64__)
	int n = 20; /* the emulated machine: ~0.1 s per check */
#else
	int n = 2000;
#endif

	t0 = now_ns();
	for (int i = 0; i < n; i++)
		CHECK_EQ(g_check(&c), RW__LP_SAFE);
	t1 = now_ns();
	printf("check_self(NULL), main thread: %.1f us\n",
	       (double)(t1 - t0) / n / 1000);

	atomic_store(&reader_tid, 0);
	CHECK_EQ(pthread_create(&t, NULL, reader_thread, NULL), 0);
	while (!(tid = atomic_load(&reader_tid)))
		sched_yield();
	wait_blocked(tid);
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		CHECK_EQ(check_blocked_settled(tid, &c), RW__LP_SAFE);
	t1 = now_ns();
	printf("check_blocked, thread in read(): %.1f us\n",
	       (double)(t1 - t0) / n / 1000);
	CHECK_EQ(write(pipefd[1], "y", 1), 1);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(reader_ret, 1);
	(void)unrelated(1);
}

int main(void)
{
	pthread_t t;

#if !defined(__x86_64__) && !defined(__aarch64__)
	SKIP("the stack checks are for x86-64 and aarch64");
#endif
	setvbuf(stdout, NULL, _IONBF, 0);
	test_self_null("the main thread");
	CHECK_EQ(pthread_create(&t, NULL, self_null_thread, NULL), 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	test_signal();
	test_blocked();
	test_running();
	test_robust();
#if defined(__aarch64__)
	test_pac();
#endif
	test_cost();
	return 0;
}
