/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 13, point 4): fork() while tracing. libftc_lib.so is
 * built as Debian builds a package, with patchable entries (ftc/ftc.cmake).
 *
 * What a child sees: a fork child is a copy of the process, traced
 * entries, trampolines and probe sets included, so the probe sets of the
 * parent stay attached in the child and their probes run there (on the
 * child's copy of their data); the child may detach them (restoring its
 * own entries) and attach sets of its own. Nothing the child does changes
 * the parent.
 *
 *   1. A graph set S traces ftc_fork_fn and ftc_fork_call. The parent
 *      calls ftc_fork_fn; then ftc_fork_call() forks from inside a traced
 *      function (both processes return from it through rewire's return
 *      trampoline, the child with the shadow stack it inherited). The
 *      child (alarm(10) turns a deadlock into SIGALRM, checks _exit):
 *      its entry is still traced, its calls are counted by its copy of S
 *      (entries and returns exactly, ftc_fork_call's return included);
 *      it detaches S (NOPs), attaches and detaches a set of its own
 *      (exact counts, NOPs again) and exits with CHILD_OK. The parent's
 *      counts do not see the child's calls; it counts its own exactly,
 *      then detaches (NOPs).
 *   2. fork while an attach is in progress in another thread. A thread
 *      attaches and detaches a graph set over "ftc_*@libftc_lib.so" (a
 *      batch of a dozen entries) in a loop while the main thread forks
 *      FORKS times. Each child finds every entry whole (its NOPs, or
 *      a jump: never a breakpoint of a batch cut in half), calls
 *      ftc_fork_fn correctly, counted by the inherited set exactly when
 *      its entry is traced in the child and not at all otherwise,
 *      attaches and detaches a set of its own (rewire's locks are free in
 *      the child) and finds the entry as it was, then exits. Every attach
 *      and detach of the thread succeeds; at the end every entry holds
 *      its NOPs.
 *   3. fork during a live patch transition, traced. A graph set traces
 *      ftc_outer, ftc_inner and ftc_wait; a thread blocked in the old
 *      ftc_outer holds the enable of ftc_patch_pair.so open (ftc/ftc.h).
 *      The child, where that thread does not exist, completes the
 *      transition alone while traced: its ftc_outer(7) runs all new and
 *      is traced (two entries, two returns); detached, the entry jumps to
 *      the new function again; disabled, the NOPs. The parent's
 *      transition stays open with its entries as they were; released, the
 *      blocker's call returns the all-old 12 and the transition completes.
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

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define CALLS 100
#define CHILD_OK 42
#define CHILD_OK_TRACED 43 /* part 2: the inherited set was attached */
#define CHILD_FAIL 3

/* ---- Checks in a child: _exit, never exit (no atexit, no stdio flush) -- */

#define C_CHECK(cond)                                                      \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr,                                    \
				"[child %d] %s:%d: CHECK failed: %s\n",    \
				(int)getpid(), __FILE__, __LINE__, #cond); \
			_exit(CHILD_FAIL);                                 \
		}                                                          \
	} while (0)

#define C_CHECK_EQ(a, b)                                                       \
	do {                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);            \
		if (_a != _b) {                                                \
			fprintf(stderr,                                        \
				"[child %d] %s:%d: CHECK_EQ failed: %s == "    \
				"%lld, %s == %lld (%s)\n",                     \
				(int)getpid(), __FILE__, __LINE__, #a, _a, #b, \
				_b, rw_ftrace_last_error());                   \
			_exit(CHILD_FAIL);                                     \
		}                                                              \
	} while (0)

static int child_wait(pid_t pid, const char *what)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		CHECK_EQ(errno, EINTR);
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "%s: child %d killed by signal %d%s\n", what,
			(int)pid, WTERMSIG(st),
			WTERMSIG(st) == SIGALRM ? " (alarm: deadlock)" : "");
		exit(1);
	}
	CHECK(WIFEXITED(st));
	if (WEXITSTATUS(st) != CHILD_OK && WEXITSTATUS(st) != CHILD_OK_TRACED) {
		fprintf(stderr, "%s: child %d exited with %d\n", what, (int)pid,
			WEXITSTATUS(st));
		exit(1);
	}
	return WEXITSTATUS(st);
}

static const char *const pat_fn[] = { "ftc_fork_fn" };

/* The entry of @fn is whole: its original NOPs (0) or a jump (1):
 * ftc_entry_jump(), on aarch64 a B and the NOP after it. */
static int entry_whole(uintptr_t fn)
{
	char what[64];

	if (lp_entry_is_nops(fn))
		return 0;
	if (ftc_entry_jump(fn))
		return 1;
	snprintf(what, sizeof(what), "[%d] at %#lx, neither NOPs nor a jump",
		 (int)getpid(), (unsigned long)fn);
	ftc_entry_show(fn, what);
	return -1;
}

/* In a child: CALLS calls of ftc_fork_fn; @s counted @per of them each
 * (entries, and returns in graph mode). */
static void c_calls(struct ftc_set *s, long per)
{
	long e = ftc_entries(s, 0), r = ftc_returns(s, 0);

	for (int i = 0; i < CALLS; i++)
		C_CHECK_EQ(ftc_fork_fn(i), i + 7);
	C_CHECK_EQ(ftc_entries(s, 0) - e, per * CALLS);
	C_CHECK_EQ(ftc_returns(s, 0) - r, s->graph ? per * CALLS : 0);
}

/* In a child: a set of its own on ftc_fork_fn counts exactly, and its
 * detach leaves the entry as it found it. */
static void c_own_set(void)
{
	const uintptr_t fn = (uintptr_t)ftc_fork_fn;
	struct ftc_set own;
	uint8_t before[FTC_ENTRY_LEN];
	int err;

	ftc_entry_read(fn, before);
	ftc_set_init(&own, true, "ftc_fork_fn", NULL);
	err = ftc_try_attach(&own, pat_fn, 1);
	C_CHECK_EQ(err, 0);
	C_CHECK_EQ(entry_whole(fn), 1);
	c_calls(&own, 1);
	C_CHECK_EQ(rw_ftrace_detach(own.t), 0);
	C_CHECK(ftc_entry_is(fn, before));
	c_calls(&own, 0);
}

/* ---- 1. A traced parent forks -------------------------------------------- */

static void part1(void)
{
	const uintptr_t fn = (uintptr_t)ftc_fork_fn;
	static const char *const pats[] = { "ftc_fork_fn", "ftc_fork_call" };
	struct ftc_set s;
	long e_call, r_call;
	pid_t pid;

	ftc_set_init(&s, true, "ftc_fork_fn", "ftc_fork_call", NULL);
	ftc_attach(&s, pats, 2);
	ftc_check_funcs(&s);
	for (int i = 0; i < CALLS; i++)
		CHECK_EQ(ftc_fork_fn(i), i + 7);
	CHECK_EQ(ftc_entries(&s, 0), CALLS);
	CHECK_EQ(ftc_returns(&s, 0), CALLS);

	pid = ftc_fork_call();
	CHECK(pid >= 0);
	e_call = ftc_entries(&s, 1);
	r_call = ftc_returns(&s, 1);
	if (pid == 0) {
		alarm(10 * rw_test_time_scale());
		/* The fork's entry and its return, in the child's copy. */
		C_CHECK_EQ(e_call, 1);
		C_CHECK_EQ(r_call, 1);
		C_CHECK_EQ(entry_whole(fn), 1);
		c_calls(&s, 1);
		C_CHECK_EQ(ftc_entries(&s, 0), 2 * CALLS);
		C_CHECK_EQ(rw_ftrace_detach(s.t), 0);
		C_CHECK(lp_entry_is_nops(fn));
		C_CHECK(lp_entry_is_nops((uintptr_t)ftc_fork_call));
		c_calls(&s, 0);
		c_own_set();
		C_CHECK(lp_entry_is_nops(fn));
		_exit(CHILD_OK);
	}
	CHECK_EQ(e_call, 1);
	CHECK_EQ(r_call, 1);
	child_wait(pid, "1. child of a traced parent");
	/* The child's calls are not the parent's. */
	CHECK_EQ(ftc_entries(&s, 0), CALLS);
	CHECK(entry_whole(fn) == 1);
	for (int i = 0; i < CALLS; i++)
		CHECK_EQ(ftc_fork_fn(i), i + 7);
	CHECK_EQ(ftc_entries(&s, 0), 2 * CALLS);
	CHECK_EQ(ftc_returns(&s, 0), 2 * CALLS);
	ftc_detach(&s);
	CHECK(lp_entry_is_nops(fn));
	CHECK(lp_entry_is_nops((uintptr_t)ftc_fork_call));
	ftc_check_clean(&s, "1. S");
	printf("  1. the child of a traced parent: ok\n");
}

/* ---- 2. fork during attach ----------------------------------------------- */

static const char *const pat_all[] = { "ftc_*@libftc_lib.so" };
static struct ftc_set churn;
static _Atomic bool churn_stop;
static _Atomic long churn_rounds, churn_errors;

static void *churn_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {
		int err = ftc_try_attach(&churn, pat_all, 1);

		if (err) {
			fprintf(stderr, "churn: attach: %s: %s\n",
				rw_strerror(err), rw_ftrace_last_error());
			atomic_fetch_add(&churn_errors, 1);
			break;
		}
		err = rw_ftrace_detach(churn.t);
		if (err) {
			fprintf(stderr, "churn: detach: %s: %s\n",
				rw_strerror(err), rw_ftrace_last_error());
			atomic_fetch_add(&churn_errors, 1);
			break;
		}
		churn.t = NULL;
		atomic_fetch_add(&churn_rounds, 1);
	}
	return NULL;
}

static void part2(void)
{
	const long forks = rw_test_scale(30, 300);
	const uintptr_t fn = (uintptr_t)ftc_fork_fn;
	long traced = 0;
	pthread_t th;

	/* The set counts ftc_fork_fn; its other functions are foreign. */
	ftc_set_init(&churn, true, "ftc_fork_fn", NULL);
	CHECK_OK(pthread_create(&th, NULL, churn_main, NULL));
	CHECK(LP_WAIT_UNTIL(atomic_load(&churn_rounds) > 0,
			    lp_deadline_ms(5000)));
	for (long i = 0; i < forks; i++) {
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			int whole;

			alarm(10 * rw_test_time_scale());
			whole = entry_whole(fn);
			C_CHECK(whole >= 0);
			C_CHECK(entry_whole((uintptr_t)ftc_leaf) >= 0);
			C_CHECK(entry_whole((uintptr_t)ftc_set_b) >= 0);
			/* The copy of the set counts every call when the
			 * entry is traced, none when it is not. */
			c_calls(&churn, whole);
			c_own_set();
			_exit(whole ? CHILD_OK_TRACED : CHILD_OK);
		}
		traced += child_wait(pid, "2. fork during attach") ==
			  CHILD_OK_TRACED;
		usleep(1000);
	}
	atomic_store(&churn_stop, true);
	CHECK_OK(pthread_join(th, NULL));
	CHECK_EQ(atomic_load(&churn_errors), 0);
	CHECK(churn.t == NULL);
	CHECK(lp_entry_is_nops(fn));
	CHECK(lp_entry_is_nops((uintptr_t)ftc_leaf));
	printf("  2. %ld forks (%ld children traced) during %ld "
	       "attach/detach rounds: ok\n",
	       forks, traced, atomic_load(&churn_rounds));
}

/* ---- 3. fork during a transition, traced --------------------------------- */

struct blocker {
	pthread_t th;
	_Atomic pid_t tid;
	int ret;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;

	atomic_store(&b->tid, gettid());
	b->ret = ftc_outer(-1);
	return NULL;
}

/* In a child: ftc_outer(7) returns the @side's value, with @entries probe
 * entries and as many returns in graph mode. */
static void c_outer(int side, long entries, bool graph)
{
	long e0 = ftc_tls_entries, r0 = ftc_tls_returns;

	C_CHECK_EQ(ftc_outer(7), side ? 7 + 1021 : 7 + 11);
	C_CHECK_EQ(ftc_tls_entries - e0, entries);
	C_CHECK_EQ(ftc_tls_returns - r0, graph ? entries : 0);
}

static void part3(void)
{
	static const char *const pats[] = { "ftc_outer", "ftc_inner",
					    "ftc_wait" };
	struct ftc_set s;
	struct blocker b;
	struct rw_patch *p;
	struct rw_patch_info info;
	uint8_t traced[FTC_ENTRY_LEN];
	const int wait_ms = 5000 * (int)rw_test_time_scale();
	int fds[2];
	pid_t pid;

	CHECK_OK(pipe(fds));
	ftc_fd = fds[0];
	ftc_set_init(&s, true, "ftc_outer", "ftc_inner", "ftc_wait", NULL);
	ftc_attach(&s, pats, 3);
	p = lp_load(FTC_DIR "/ftc_patch_pair.so", 0);
	memset(&b, 0, sizeof(b));
	CHECK_OK(pthread_create(&b.th, NULL, blocker_main, &b));
	CHECK(LP_WAIT_UNTIL(atomic_load(&b.tid) != 0, lp_deadline_ms(5000)));
	CHECK(lp_wait_in_syscall(b.tid, SYS_read));
	CHECK_EQ(lp_go(p, true, 300), -ETIMEDOUT);
	ftc_entry_read((uintptr_t)ftc_outer, traced);

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(10 * rw_test_time_scale());
		/* The blocker is not in the child: the transition it held
		 * open completes, with the entries still traced. */
		C_CHECK_EQ(rw_patch_state(p, &info), 0);
		C_CHECK_EQ(info.state, RW_PATCH_ENABLING);
		C_CHECK_EQ(rw_patch_wait(p, wait_ms), 0);
		C_CHECK_EQ(rw_patch_state(p, &info), 0);
		C_CHECK_EQ(info.state, RW_PATCH_ENABLED);
		C_CHECK_EQ(info.threads_switched, info.threads_total);
		c_outer(1, 2, true);
		C_CHECK_EQ(rw_ftrace_detach(s.t), 0);
		C_CHECK_EQ(lp_entry_target((uintptr_t)ftc_outer),
			   lp_new_func_of(FTC_DIR "/ftc_patch_pair.so", 0));
		C_CHECK(lp_entry_is_nops((uintptr_t)ftc_wait));
		c_outer(1, 0, false);
		C_CHECK_EQ(rw_patch_disable(p), 0);
		C_CHECK_EQ(rw_patch_wait(p, wait_ms), 0);
		C_CHECK(lp_entry_is_nops((uintptr_t)ftc_outer));
		C_CHECK(lp_entry_is_nops((uintptr_t)ftc_inner));
		c_outer(0, 0, false);
		C_CHECK_EQ(rw_patch_unload(p), 0);
		_exit(CHILD_OK);
	}
	child_wait(pid, "3. child of a traced transition");
	/* The parent's transition is still held open, its entries traced. */
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLING);
	CHECK(ftc_entry_is((uintptr_t)ftc_outer, traced));
	CHECK_EQ(write(fds[1], "x", 1), 1);
	CHECK_OK(pthread_join(b.th, NULL));
	CHECK_EQ(b.ret, 12);
	CHECK_OK(rw_patch_wait(p, wait_ms));
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLED);
	{
		long e0 = ftc_tls_entries;

		CHECK_EQ(ftc_outer(7), 7 + 1021);
		CHECK_EQ(ftc_tls_entries - e0, 2);
	}
	ftc_detach(&s);
	lp_disable_wait(p, 5000);
	CHECK_OK(rw_patch_unload(p));
	CHECK(lp_entry_is_nops((uintptr_t)ftc_outer));
	CHECK(lp_entry_is_nops((uintptr_t)ftc_inner));
	CHECK(lp_entry_is_nops((uintptr_t)ftc_wait));
	ftc_check_clean(&s, "3. S");
	close(fds[0]);
	close(fds[1]);
	printf("  3. fork during a traced transition: ok\n");
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("test_ftc_fork:\n");
	part1();
	part2();
	part3();
	printf("test_ftc_fork: ok\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 || RW_BACKEND_AARCH64 */
