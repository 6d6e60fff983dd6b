/* SPDX-License-Identifier: MIT */
/*
 * Integration: transitions that the stack checks cannot finish.
 *
 * Force. A thread spins inside spin_func() and never leaves it, so the
 * enable of lp_force_spin.so stays open: rw_patch_wait(p, 500) times out,
 * rw_patch_state() names that thread (RW_PT_ON_STACK, in spin_func) and
 * only it; the four workers already run the new function. rw_patch_force()
 * completes the transition (ENABLED, forced). The spinning call, released,
 * returns the old result (it was in the old function); the thread's next
 * call returns the new one. Disabling then works as usual, and unloading
 * the forced patch leaves its object mapped.
 *
 * Quiescent points. Two threads block rewire's signal (so they can never
 * check their own stack) while they sit in q_func(), blocked in read(). The
 * enable of lp_force_q.so reports them ON_STACK (checked from outside).
 * Released, they call q_func() in a loop and keep getting the old result:
 * the transition times out with both NO_ANSWER. Once they call
 * rw_patch_quiescent() at the top of their loop, their next calls return
 * the new result and the transition completes; the disable completes the
 * same way. Two ordinary workers call rw_patch_quiescent() at the top of
 * their loop throughout.
 *
 * Unloading the disabled lp_force_q.so while the q threads still block
 * rewire's signal (running, so checked by no one) keeps its object mapped.
 *
 * Unload, checked again. Before those, lp_force_q.so is loaded and
 * unloaded while one thread runs with rewire's signal blocked. The thread
 * unblocks only 1.1 s after it saw the signal pending, after the unload's
 * first round gave up on it (ROUND_TIMEOUT_MS); the unload's next round
 * checks it, and the object is unmapped. (Taking the first round's answer,
 * "a thread could not be checked", kept it mapped.)
 *
 * Moving threads. A thread blocked in read() is woken each time rewire
 * reads its stack from outside (the test's process_vm_readv() does it):
 * every check from outside finds that it moved (RW__LP_MOVED). The enable
 * and the disable of lp_force_q.so must complete all the same: a moved
 * thread that is running, or in a system call that is restarted after a
 * handler, is signalled and checks itself. (Leaving it to the next round,
 * as before, never completed.)
 *
 * Every call must return exactly x + 1000 (old) or x + 2000 (new), and the
 * side each phase requires (see the side tables).
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include <rewire/threads.h>

#include "lp_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define STABLE_CALLS 500
#define OLD(x) ((x) + 1000)
#define NEW(x) ((x) + 2000)

int spin_func(int x, int spin);
int q_func(int x, int hold);

static _Atomic int spinner_in, spin_release;

/* With @spin, stays inside (its frame on the stack) until released. */
__attribute__((noinline, noipa)) int spin_func(int x, int spin)
{
	if (spin) {
		atomic_store(&spinner_in, 1);
		while (!atomic_load(&spin_release))
#if defined(__aarch64__)
			__asm__ volatile("yield");
#else
			__builtin_ia32_pause();
#endif
	}
	return OLD(x);
}

static int q_pipe[2];
static _Atomic int q_in, q_read_failed;

/* With @hold, blocks in read() inside, until the test writes a byte. */
__attribute__((noinline, noipa)) int q_func(int x, int hold)
{
	if (hold) {
		char c;

		atomic_fetch_add(&q_in, 1);
		if (read(q_pipe[0], &c, 1) != 1)
			atomic_store(&q_read_failed, 1);
	}
	return OLD(x);
}

/* ---- Phases and the side each requires ----------------------------------- */

enum { K_WORKER, K_Q, NKINDS };
#define ANY (-1)

enum {
	F_BEFORE,
	F_PENDING, /* enable started, the spinner holds it */
	F_MIDWAY,  /* every thread but the spinner switched */
	F_FORCED,
	F_DISABLING,
	F_DISABLED,
	F_STOP,
	NFPHASES
};

static const int f_side[NFPHASES][NKINDS] = {
	[F_BEFORE] = { 0, ANY },      [F_PENDING] = { ANY, ANY },
	[F_MIDWAY] = { 1, ANY },      [F_FORCED] = { 1, ANY },
	[F_DISABLING] = { ANY, ANY }, [F_DISABLED] = { 0, ANY },
	[F_STOP] = { ANY, ANY },
};

enum {
	Q_BEFORE,
	Q_ENABLING,
	Q_HELD,	     /* the q threads left q_func and cannot switch */
	Q_QUIESCING, /* the q threads call rw_patch_quiescent() */
	Q_ENABLED,
	Q_DISABLING,
	Q_DISABLED,
	Q_STOP,
	NQPHASES
};

/* Q_QUIESCING, K_Q: new once the thread called rw_patch_quiescent() in
 * that phase (checked in q_main). */
static const int q_side[NQPHASES][NKINDS] = {
	[Q_BEFORE] = { 0, 0 },	 [Q_ENABLING] = { ANY, ANY },
	[Q_HELD] = { 1, 0 },	 [Q_QUIESCING] = { 1, ANY },
	[Q_ENABLED] = { 1, 1 },	 [Q_DISABLING] = { ANY, ANY },
	[Q_DISABLED] = { 0, 0 }, [Q_STOP] = { ANY, ANY },
};

#define MAXPH 8

struct thr {
	pthread_t t;
	_Atomic pid_t tid;
	int kind;
	int x;
	bool quiescent; /* K_WORKER: call rw_patch_quiescent() each loop */
	_Atomic int *phase;
	const int (*side)[NKINDS];
	_Atomic long calls;
	_Atomic long in_phase[MAXPH][2];
	_Atomic long spanning[2];
	_Atomic long bad, wrong;
	long first_bad, first_wrong;
	int first_wrong_phase;
	int first; /* K_Q: the result of the call that held */
};

static void record(struct thr *t, int b, int a, int r, int must)
{
	int side;

	if (r == OLD(t->x)) {
		side = 0;
	} else if (r == NEW(t->x)) {
		side = 1;
	} else {
		if (atomic_fetch_add(&t->bad, 1) == 0)
			t->first_bad = r;
		atomic_fetch_add(&t->calls, 1);
		return;
	}
	if (a == b) {
		if (must == ANY)
			must = t->side[b][t->kind];
		atomic_fetch_add(&t->in_phase[b][side], 1);
		if (must != ANY && must != side &&
		    atomic_fetch_add(&t->wrong, 1) == 0) {
			t->first_wrong = r;
			t->first_wrong_phase = b;
		}
	} else {
		atomic_fetch_add(&t->spanning[side], 1);
	}
	atomic_fetch_add(&t->calls, 1);
}

static void *worker_main(void *arg)
{
	struct thr *t = arg;

	atomic_store(&t->tid, gettid());
	for (;;) {
		int b, a, r;

		if (t->quiescent)
			rw_patch_quiescent();
		b = atomic_load(t->phase);
		if (t->side == f_side ? b == F_STOP : b == Q_STOP)
			break;
		r = t->side == f_side ? spin_func(t->x, 0) : q_func(t->x, 0);
		a = atomic_load(t->phase);
		record(t, b, a, r, ANY);
	}
	return NULL;
}

/* ---- Helpers ------------------------------------------------------------- */

static void wait_until(_Atomic int *v, int at_least, const char *what)
{
	if (!LP_WAIT_UNTIL(atomic_load(v) >= at_least, lp_deadline_ms(10000))) {
		fprintf(stderr, "timed out waiting for %s\n", what);
		exit(1);
	}
}

static void wait_stable(struct thr *t, size_t n, int ph)
{
	uint64_t deadline = lp_deadline_ms(10000);

	for (size_t i = 0; i < n; i++) {
		if (!LP_WAIT_UNTIL(
			    atomic_load(&t[i].in_phase[ph][0]) +
					    atomic_load(&t[i].in_phase[ph][1]) >=
				    STABLE_CALLS,
			    deadline)) {
			fprintf(stderr,
				"thread %d: too few calls in phase %d after "
				"10 s (times %u): %ld old, %ld new\n",
				(int)t[i].tid, ph, rw_test_time_scale(),
				atomic_load(&t[i].in_phase[ph][0]),
				atomic_load(&t[i].in_phase[ph][1]));
			lp_report_stall(atomic_load(&t[i].tid));
			exit(1);
		}
	}
}

static void check_threads(struct thr *t, size_t n, int nph, const char *who)
{
	for (size_t i = 0; i < n; i++) {
		long sum = atomic_load(&t[i].spanning[0]) +
			   atomic_load(&t[i].spanning[1]) +
			   atomic_load(&t[i].bad);

		printf("  %s %zu (tid %d): %ld calls; old/new by phase:", who,
		       i, (int)t[i].tid, atomic_load(&t[i].calls));
		for (int ph = 0; ph < nph; ph++) {
			sum += atomic_load(&t[i].in_phase[ph][0]) +
			       atomic_load(&t[i].in_phase[ph][1]);
			printf(" %ld/%ld", atomic_load(&t[i].in_phase[ph][0]),
			       atomic_load(&t[i].in_phase[ph][1]));
		}
		printf("; across a change %ld/%ld\n",
		       atomic_load(&t[i].spanning[0]),
		       atomic_load(&t[i].spanning[1]));
		if (atomic_load(&t[i].bad)) {
			fprintf(stderr,
				"%s %zu: %ld calls returned neither result "
				"(first %d)\n",
				who, i, atomic_load(&t[i].bad),
				(int)t[i].first_bad);
			exit(1);
		}
		if (atomic_load(&t[i].wrong)) {
			fprintf(stderr,
				"%s %zu: %ld calls returned the wrong side "
				"(first %d in phase %d)\n",
				who, i, atomic_load(&t[i].wrong),
				(int)t[i].first_wrong, t[i].first_wrong_phase);
			exit(1);
		}
		CHECK_EQ(sum, atomic_load(&t[i].calls));
	}
}

static struct rw_patch *load(const char *name)
{
	char path[512];

	lp_patch_path(path, sizeof(path), LP_FORCE_DIR "/", name);
	return lp_load(path, 0);
}

static void show(struct rw_patch *p, const char *what,
		 struct rw_patch_info *info)
{
	CHECK_OK(rw_patch_state(p, info));
	printf("  %s: state %d, forced %d, %zu/%zu switched, %u round(s), "
	       "%.3f ms, %zu pending\n",
	       what, info->state, info->forced, info->threads_switched,
	       info->threads_total, info->attempts,
	       (double)info->transition_ns / 1e6, info->npending);
	for (size_t i = 0; i < info->npending && i < RW_PATCH_INFO_THREADS; i++)
		printf("    tid %d why %d ip %#lx func '%s'\n",
		       (int)info->pending[i].tid, info->pending[i].why,
		       (unsigned long)info->pending[i].ip,
		       info->pending[i].func);
}

static void must_enable(struct rw_patch *p)
{
	int err = rw_patch_enable(p);

	if (err) {
		fprintf(stderr, "rw_patch_enable: %s: %s\n", rw_strerror(err),
			rw_patch_last_error());
		exit(1);
	}
}

static void must_complete(struct rw_patch *p, const char *what)
{
	int err = rw_patch_wait(p, 10000 * (int)rw_test_time_scale());

	if (err) {
		struct rw_patch_info info;

		fprintf(stderr, "rw_patch_wait (%s): %s\n", what,
			rw_strerror(err));
		show(p, what, &info);
		for (size_t i = 0;
		     i < info.npending && i < RW_PATCH_INFO_THREADS; i++)
			lp_report_stall(info.pending[i].tid);
		exit(1);
	}
}

/* Disable @p and wait for it, setting *@phase to @during, then @after. */
static void disable_complete(struct rw_patch *p, _Atomic int *phase, int during,
			     int after, const char *what,
			     struct rw_patch_info *info)
{
	atomic_store(phase, during);
	CHECK_OK(rw_patch_disable(p));
	must_complete(p, what);
	atomic_store(phase, after);
	show(p, "disabled", info);
	CHECK_EQ(info->state, RW_PATCH_DISABLED);
}

/* ---- Force --------------------------------------------------------------- */

#define NFWORKERS 4

static _Atomic int fphase;
static struct thr fw[NFWORKERS];
static _Atomic pid_t spinner_tid;
static _Atomic int spin_r1, spin_go2, spin_r2, spin_first_done;

static void *spinner_main(void *arg)
{
	(void)arg;
	atomic_store(&spinner_tid, gettid());
	atomic_store(&spin_r1, spin_func(7, 1));
	atomic_store(&spin_first_done, 1);
	while (!atomic_load(&spin_go2))
		usleep(1000);
	atomic_store(&spin_r2, spin_func(7, 0));
	return NULL;
}

static void scenario_force(void)
{
	struct rw_patch_info info;
	struct rw_patch *p;
	pthread_t st;
	uintptr_t target;
	uint64_t t0, deadline;
	int err;

	printf("force:\n");
	CHECK(lp_entry_is_nops((uintptr_t)spin_func));
	for (int i = 0; i < NFWORKERS; i++) {
		fw[i].kind = K_WORKER;
		fw[i].x = i;
		fw[i].phase = &fphase;
		fw[i].side = f_side;
		CHECK(pthread_create(&fw[i].t, NULL, worker_main, &fw[i]) == 0);
	}
	CHECK(pthread_create(&st, NULL, spinner_main, NULL) == 0);
	wait_until(&spinner_in, 1, "the spinner");
	wait_stable(fw, NFWORKERS, F_BEFORE);

	p = load("lp_force_spin");
	atomic_store(&fphase, F_PENDING);
	t0 = rw_test_now_ns();
	must_enable(p);
	/* Until the spinner alone holds it: a worker caught inside the
	 * dispatcher is BUSY and checked again in the next round (under
	 * emulation, where signals land at block boundaries, twice in a
	 * row now and then). */
	deadline = lp_deadline_ms(10000);
	do {
		err = rw_patch_wait(p, 500);
		CHECK_OK(rw_patch_state(p, &info));
	} while (err == -ETIMEDOUT && info.npending > 1 &&
		 rw_test_now_ns() < deadline);
	printf("  enable + wait(500): %s after %.3f ms\n", rw_strerror(err),
	       (double)(rw_test_now_ns() - t0) / 1e6);
	CHECK_EQ(err, -ETIMEDOUT);
	show(p, "stuck", &info);
	CHECK_EQ(info.state, RW_PATCH_ENABLING);
	CHECK_EQ(info.target_patched, 1);
	CHECK_EQ(info.forced, 0);
	CHECK_EQ(info.npending, 1);
	CHECK_EQ(info.pending[0].tid, atomic_load(&spinner_tid));
	CHECK_EQ(info.pending[0].why, RW_PT_ON_STACK);
	CHECK(strstr(info.pending[0].func, "spin_func") != NULL);
	CHECK(info.pending[0].ip >= (uintptr_t)spin_func &&
	      info.pending[0].ip < (uintptr_t)spin_func + 4096);
	CHECK_EQ(info.threads_switched + 1, info.threads_total);
	CHECK(info.threads_total >= NFWORKERS + 2);
	/* The entry goes to a dispatcher, not to the patch. */
	target = lp_entry_target((uintptr_t)spin_func);
	CHECK(target != 0);
	CHECK(!lp_in_object(target, "lp_force_spin.so"));
	CHECK_EQ(atomic_load(&spin_first_done), 0);

	/* Every worker switched: they get the new function now. */
	atomic_store(&fphase, F_MIDWAY);
	wait_stable(fw, NFWORKERS, F_MIDWAY);
	CHECK_EQ(spin_func(1, 0), NEW(1)); /* this thread switched too */

	/* Per thread: the spinner alone is unpatched, and why. */
	{
		struct rw_patch_thread th[64];
		long n = rw_patch_threads(p, th, 64);
		int spin_seen = 0;

		CHECK(n >= NFWORKERS + 2 && n <= 64);
		for (long i = 0; i < n; i++) {
			if (th[i].tid == atomic_load(&spinner_tid)) {
				spin_seen++;
				CHECK_EQ(th[i].patched, 0);
				CHECK_EQ(th[i].why, RW_PT_ON_STACK);
				CHECK(strstr(th[i].func, "spin_func") != NULL);
			} else {
				CHECK_EQ(th[i].patched, 1);
				CHECK_EQ(th[i].why, RW_PT_SWITCHED);
			}
			if (i)
				CHECK(th[i].tid > th[i - 1].tid);
		}
		CHECK_EQ(spin_seen, 1);
		CHECK_EQ(rw_patch_threads(p, NULL, 0), n);
		printf("  rw_patch_threads: %ld threads, the spinner "
		       "unpatched (on stack), the others patched\n",
		       n);
	}

	t0 = rw_test_now_ns();
	CHECK_OK(rw_patch_force(p));
	printf("  force: %.3f ms\n", (double)(rw_test_now_ns() - t0) / 1e6);
	show(p, "forced", &info);
	CHECK_EQ(info.state, RW_PATCH_ENABLED);
	CHECK_EQ(info.forced, 1);
	CHECK_EQ(info.npending, 0);
	CHECK_EQ(rw_patch_force(p), -EINVAL); /* not in transition */
	target = lp_entry_target((uintptr_t)spin_func);
	CHECK(lp_in_object(target, "lp_force_spin.so"));
	atomic_store(&fphase, F_FORCED);
	wait_stable(fw, NFWORKERS, F_FORCED);

	/* The spinning call ends in the old function; the next is new. */
	CHECK_EQ(atomic_load(&spin_first_done), 0);
	atomic_store(&spin_release, 1);
	wait_until(&spin_first_done, 1, "the spinner's first call");
	atomic_store(&spin_go2, 1);
	CHECK(pthread_join(st, NULL) == 0);
	printf("  spinner: held call %d (old %d), next call %d (new %d)\n",
	       atomic_load(&spin_r1), OLD(7), atomic_load(&spin_r2), NEW(7));
	CHECK_EQ(atomic_load(&spin_r1), OLD(7));
	CHECK_EQ(atomic_load(&spin_r2), NEW(7));

	disable_complete(p, &fphase, F_DISABLING, F_DISABLED,
			 "disable after force", &info);
	CHECK_EQ(info.forced, 1);
	CHECK_EQ(info.npending, 0);
	CHECK(lp_entry_is_nops((uintptr_t)spin_func));
	wait_stable(fw, NFWORKERS, F_DISABLED);
	CHECK_EQ(spin_func(1, 0), OLD(1));

	/* A forced patch's object stays mapped after unload. */
	CHECK_OK(rw_patch_unload(p));
	CHECK(lp_in_object(target, "lp_force_spin.so"));

	atomic_store(&fphase, F_STOP);
	for (int i = 0; i < NFWORKERS; i++)
		CHECK(pthread_join(fw[i].t, NULL) == 0);
	check_threads(fw, NFWORKERS, F_STOP, "worker");
	for (int i = 0; i < NFWORKERS; i++) {
		CHECK(atomic_load(&fw[i].in_phase[F_MIDWAY][1]) >=
		      STABLE_CALLS);
		CHECK(atomic_load(&fw[i].in_phase[F_FORCED][1]) >=
		      STABLE_CALLS);
		CHECK(atomic_load(&fw[i].in_phase[F_DISABLED][0]) >=
		      STABLE_CALLS);
	}
}

/* ---- Quiescent points ---------------------------------------------------- */

#define NQWORKERS 2
#define NQTHREADS 2

static _Atomic int qphase, q_quiesce;
static struct thr qw[NQWORKERS], qt[NQTHREADS];

static void rewire_signal(int how)
{
	uint64_t set = 1ull << (rw_threads_signal() - 1);

	/* The raw call: rewire keeps libc's sigprocmask() from blocking it. */
	CHECK(syscall(SYS_rt_sigprocmask, how, &set, NULL, 8) == 0);
}

static void *q_main(void *arg)
{
	struct thr *t = arg;

	atomic_store(&t->tid, gettid());
	rewire_signal(SIG_BLOCK);
	t->first = q_func(t->x, 1);
	for (;;) {
		int quiesced = atomic_load(&q_quiesce), b, a, r;

		if (quiesced)
			rw_patch_quiescent();
		b = atomic_load(&qphase);
		if (b == Q_STOP)
			break;
		r = q_func(t->x, 0);
		a = atomic_load(&qphase);
		/* Switched by its own quiescent point, in this transition. */
		record(t, b, a, r, quiesced && b == Q_QUIESCING ? 1 : ANY);
	}
	rewire_signal(SIG_UNBLOCK);
	return NULL;
}

/* ---- Unload, checked again ---------------------------------------------- */

/* 1 blocked, 2 saw the signal pending, 3 unblocking */
static _Atomic int ub_state;

/* Whether rewire's signal is pending for the calling thread. */
static bool own_signal_pending(void)
{
	char buf[2048], *p;
	FILE *f = fopen("/proc/thread-self/status", "r");
	size_t n;

	CHECK(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strstr(buf, "SigPnd:");
	CHECK(p != NULL);
	return strtoull(p + 7, NULL, 16) >> (rw_threads_signal() - 1) & 1;
}

static void *unload_blocker(void *arg)
{
	uint64_t seen = 0;

	(void)arg;
	rewire_signal(SIG_BLOCK);
	atomic_store(&ub_state, 1);
	/* Running (never in a system call it could be checked in from
	 * outside) until the signal waited 1.1 s. */
	for (;;) {
		uint64_t now = rw_test_now_ns();

		if (!seen && own_signal_pending()) {
			seen = now;
			atomic_store(&ub_state, 2);
		}
		if (seen && now - seen > 1100000000ull)
			break;
	}
	/* Said before: the unload may return as soon as the signal is
	 * delivered, before this thread runs on. */
	atomic_store(&ub_state, 3);
	rewire_signal(SIG_UNBLOCK);
	return NULL;
}

static void scenario_unload_retry(void)
{
	struct rw_patch *p;
	pthread_t t;
	uint64_t t0;

	printf("unload, checked again:\n");
	p = load("lp_force_q");
	CHECK(lp_file_mapped("lp_force_q.so"));
	CHECK(pthread_create(&t, NULL, unload_blocker, NULL) == 0);
	wait_until(&ub_state, 1, "the blocking thread");
	t0 = rw_test_now_ns();
	CHECK_OK(rw_patch_unload(p));
	printf("  unloaded in %.3f ms, the thread's state %d\n",
	       (double)(rw_test_now_ns() - t0) / 1e6, atomic_load(&ub_state));
	/* The thread answered a later round: it saw the signal, and the
	 * unload returned after it unblocked. */
	CHECK_EQ(atomic_load(&ub_state), 3);
	CHECK(!lp_file_mapped("lp_force_q.so"));
	CHECK(pthread_join(t, NULL) == 0);
}

/* ---- Moving threads ----------------------------------------------------- */

static int mover_pipe[2];
static _Atomic long mover_reads;
static _Atomic int mover_armed, mover_pokes;

/* Blocked in read(); each byte written wakes it once. */
static void *mover(void *arg)
{
	char c;

	(void)arg;
	while (read(mover_pipe[0], &c, 1) == 1 && c != 'q')
		atomic_fetch_add(&mover_reads, 1);
	return NULL;
}

/*
 * rewire reads a blocked thread's stack with process_vm_readv(), between
 * its two readings of the thread's registers and switch count. Armed,
 * this definition (which takes the place of libc's) first wakes the mover
 * and waits until it ran: the check then sees that it moved, each time.
 */
ssize_t process_vm_readv(pid_t pid, const struct iovec *local,
			 unsigned long nlocal, const struct iovec *remote,
			 unsigned long nremote, unsigned long flags)
{
	if (atomic_load(&mover_armed)) {
		long n = atomic_load(&mover_reads);

		atomic_fetch_add(&mover_pokes, 1);
		if (write(mover_pipe[1], "x", 1) == 1)
			LP_WAIT_UNTIL(atomic_load(&mover_reads) > n,
				      lp_deadline_ms(1000));
	}
	return syscall(SYS_process_vm_readv, pid, local, nlocal, remote,
		       nremote, flags);
}

static void scenario_moving(void)
{
	struct rw_patch_info info;
	struct rw_patch *p;
	pthread_t t;
	int pokes;

	printf("moving threads:\n");
	CHECK(pipe(mover_pipe) == 0);
	CHECK(pthread_create(&t, NULL, mover, NULL) == 0);
	CHECK(write(mover_pipe[1], "x", 1) == 1);
	LP_WAIT_UNTIL(atomic_load(&mover_reads) == 1, lp_deadline_ms(10000));
	CHECK_EQ(atomic_load(&mover_reads), 1);

	p = load("lp_force_q");
	for (int enable = 1; enable >= 0; enable--) {
		atomic_store(&mover_armed, 1);
		if (enable)
			must_enable(p);
		else
			CHECK_OK(rw_patch_disable(p));
		must_complete(p, enable ? "enable with a moving thread"
					: "disable with a moving thread");
		atomic_store(&mover_armed, 0);
		show(p, enable ? "enabled" : "disabled", &info);
		pokes = atomic_exchange(&mover_pokes, 0);
		printf("  the mover was woken %d time(s) while its stack was "
		       "read\n",
		       pokes);
		CHECK(pokes > 0);
		CHECK_EQ(info.state,
			 enable ? RW_PATCH_ENABLED : RW_PATCH_DISABLED);
		CHECK_EQ(q_func(1, 0), enable ? NEW(1) : OLD(1));
	}
	CHECK_OK(rw_patch_unload(p));
	CHECK(!lp_file_mapped("lp_force_q.so"));

	CHECK(write(mover_pipe[1], "q", 1) == 1);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(close(mover_pipe[0]) == 0 && close(mover_pipe[1]) == 0);
}

static bool is_q_tid(pid_t tid)
{
	for (int i = 0; i < NQTHREADS; i++)
		if (atomic_load(&qt[i].tid) == tid)
			return true;
	return false;
}

/*
 * The pending threads are exactly the q threads, all for @why.
 *
 * A thread blocked in read() is unwound from outside from its stack
 * pointer and instruction pointer alone; glibc's read() saves no register,
 * so when the code above it keeps its frame in %rbp (LP_FRAME_POINTERS:
 * the sanitizer builds) that unwind cannot go on. rewire then signals the
 * thread (read() restarts after a handler), which, with the signal
 * blocked, does not answer: UNWIND_FAILED or NO_ANSWER instead of
 * ON_STACK, pending either way.
 */
static bool pending_are_q(const struct rw_patch_info *info, int why)
{
	if (info->npending != NQTHREADS)
		return false;
	for (size_t i = 0; i < info->npending; i++) {
		int w = info->pending[i].why;

		if (!is_q_tid(info->pending[i].tid))
			return false;
#ifdef LP_FRAME_POINTERS
		if (why == RW_PT_ON_STACK &&
		    (w == RW_PT_UNWIND_FAILED || w == RW_PT_NO_ANSWER))
			continue;
#endif
		if (w != why)
			return false;
	}
	return info->pending[0].tid != info->pending[1].tid;
}

static void scenario_quiescent(void)
{
	struct rw_patch_info info;
	struct rw_patch *p;
	uint64_t t0;
	int err, i;

	printf("quiescent:\n");
	CHECK(pipe(q_pipe) == 0);
	CHECK(lp_entry_is_nops((uintptr_t)q_func));
	for (i = 0; i < NQWORKERS; i++) {
		qw[i].kind = K_WORKER;
		qw[i].x = i;
		qw[i].quiescent = true;
		qw[i].phase = &qphase;
		qw[i].side = q_side;
		CHECK(pthread_create(&qw[i].t, NULL, worker_main, &qw[i]) == 0);
	}
	for (i = 0; i < NQTHREADS; i++) {
		qt[i].kind = K_Q;
		qt[i].x = 100 + i;
		qt[i].phase = &qphase;
		qt[i].side = q_side;
		CHECK(pthread_create(&qt[i].t, NULL, q_main, &qt[i]) == 0);
	}
	wait_until(&q_in, NQTHREADS, "the q threads in q_func");
	for (i = 0; i < NQTHREADS; i++)
		CHECK(lp_wait_in_syscall(qt[i].tid, SYS_read));
	wait_stable(qw, NQWORKERS, Q_BEFORE);

	p = load("lp_force_q");
	atomic_store(&qphase, Q_ENABLING);
	must_enable(p);
	/* Until a round saw every worker: only the q threads are left. */
	t0 = rw_test_now_ns();
	for (;;) {
		CHECK_OK(rw_patch_state(p, &info));
		if (pending_are_q(&info, RW_PT_ON_STACK) ||
		    rw_test_now_ns() - t0 >
			    5000000000ull * rw_test_time_scale())
			break;
		err = rw_patch_wait(p, 0);
		CHECK(err == -ETIMEDOUT);
	}
	show(p, "held", &info);
	CHECK_EQ(info.state, RW_PATCH_ENABLING);
	CHECK(pending_are_q(&info, RW_PT_ON_STACK));
	for (i = 0; i < NQTHREADS; i++)
		CHECK(info.pending[i].why != RW_PT_ON_STACK ||
		      strstr(info.pending[i].func, "q_func") != NULL);
	CHECK_EQ(info.threads_switched + NQTHREADS, info.threads_total);

	/* Released, they cannot be checked and do not switch. */
	atomic_store(&qphase, Q_HELD);
	CHECK(write(q_pipe[1], "xx", NQTHREADS) == NQTHREADS);
	wait_stable(qt, NQTHREADS, Q_HELD);
	t0 = rw_test_now_ns();
	err = rw_patch_wait(p, 1500);
	printf("  wait(1500) with the q threads unable to answer: %s after "
	       "%.3f ms\n",
	       rw_strerror(err), (double)(rw_test_now_ns() - t0) / 1e6);
	CHECK_EQ(err, -ETIMEDOUT);
	show(p, "no answer", &info);
	CHECK_EQ(info.state, RW_PATCH_ENABLING);
	CHECK(pending_are_q(&info, RW_PT_NO_ANSWER));
	wait_stable(qw, NQWORKERS, Q_HELD);
	wait_stable(qt, NQTHREADS, Q_HELD);

	/* Their quiescent points switch them. */
	atomic_store(&qphase, Q_QUIESCING);
	atomic_store(&q_quiesce, 1);
	wait_stable(qt, NQTHREADS, Q_QUIESCING);
	t0 = rw_test_now_ns();
	must_complete(p, "enable with quiescent points");
	printf("  wait with quiescent points: %.3f ms\n",
	       (double)(rw_test_now_ns() - t0) / 1e6);
	atomic_store(&qphase, Q_ENABLED);
	show(p, "enabled", &info);
	CHECK_EQ(info.state, RW_PATCH_ENABLED);
	CHECK_EQ(info.forced, 0);
	CHECK_EQ(info.npending, 0);
	CHECK_EQ(info.threads_switched, info.threads_total);
	CHECK(lp_in_object(lp_entry_target((uintptr_t)q_func),
			   "lp_force_q.so"));
	wait_stable(qw, NQWORKERS, Q_ENABLED);
	wait_stable(qt, NQTHREADS, Q_ENABLED);

	disable_complete(p, &qphase, Q_DISABLING, Q_DISABLED,
			 "disable with quiescent points", &info);
	CHECK(lp_entry_is_nops((uintptr_t)q_func));
	wait_stable(qw, NQWORKERS, Q_DISABLED);
	wait_stable(qt, NQTHREADS, Q_DISABLED);
	/* The q threads still block rewire's signal: it cannot check them,
	 * and keeps the code mapped. */
	CHECK_OK(rw_patch_unload(p));
	CHECK(lp_file_mapped("lp_force_q.so"));

	atomic_store(&qphase, Q_STOP);
	for (i = 0; i < NQWORKERS; i++)
		CHECK(pthread_join(qw[i].t, NULL) == 0);
	for (i = 0; i < NQTHREADS; i++)
		CHECK(pthread_join(qt[i].t, NULL) == 0);
	CHECK_EQ(atomic_load(&q_read_failed), 0);
	check_threads(qw, NQWORKERS, Q_STOP, "worker");
	check_threads(qt, NQTHREADS, Q_STOP, "q thread");
	for (i = 0; i < NQTHREADS; i++) {
		printf("  q thread %d: held call %d (old %d)\n", i, qt[i].first,
		       OLD(qt[i].x));
		CHECK_EQ(qt[i].first, OLD(qt[i].x));
		CHECK(atomic_load(&qt[i].in_phase[Q_HELD][0]) >= STABLE_CALLS);
		CHECK(atomic_load(&qt[i].in_phase[Q_QUIESCING][1]) > 0);
	}
	for (i = 0; i < NQWORKERS; i++)
		CHECK(atomic_load(&qw[i].in_phase[Q_HELD][1]) >= STABLE_CALLS);
	CHECK(close(q_pipe[0]) == 0 && close(q_pipe[1]) == 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK_EQ(spin_func(1, 0), OLD(1));
	CHECK_EQ(q_func(1, 0), OLD(1));
	scenario_unload_retry();
	scenario_moving();
	scenario_force();
	scenario_quiescent();
	printf("test_lp_force: ok\n");
	return 0;
}

#endif /* RW_BACKEND_PATCHING */
