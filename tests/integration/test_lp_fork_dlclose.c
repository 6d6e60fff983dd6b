/* SPDX-License-Identifier: MIT */
/*
 * Integration: live patching across fork(), and the references that keep
 * an object with patched functions mapped when the program dlclose()s it.
 *
 *   1. Fork during a transition. A thread of the parent is held inside the
 *      old lpf_f() (blocked in read()), so the enable of patch "fork_f"
 *      stays open (rw_patch_wait(200 ms) is -ETIMEDOUT). The test forks.
 *      The child (one thread; alarm(10) turns a deadlock into SIGALRM)
 *      sees ENABLING, completes the transition alone (wait returns 0 with
 *      1/1 thread switched), runs the new lpf_f(), disables back to the
 *      old one and its original entry NOPs, unloads, and exits with
 *      CHILD_OK. The parent still sees ENABLING and times out; once the
 *      holder is released (its call returns the old value) the wait
 *      completes; disable + wait gives the old value again.
 *      Fork under churn: a thread keeps calling rw_patch_state, enable,
 *      wait, disable, wait on patch "fork_h" while the main thread forks
 *      FORKS times; the prepare handler waits for the live patching lock.
 *      Each child completes whatever transition it inherited (wait 0),
 *      checks that lpf_h() matches the state, runs a full cycle of its own
 *      and exits with CHILD_OK (or CHILD_OK_TRANS: it inherited a
 *      transition). Every call of the churn thread must succeed.
 *   2. dlclose pinning. lpf_g.so is dlopen'ed (the test's handle is its
 *      only reference), patched (object named by base name) and enabled;
 *      dlclose(handle) must leave it mapped (/proc/self/maps) and the
 *      saved lpf_g pointer still returns the new value; after disable +
 *      wait it returns the old value, and rw_patch_unload unmaps the
 *      object (gone from /proc/self/maps, RTLD_NOLOAD finds nothing). The
 *      same for a patch loaded and never enabled. Then the object is
 *      opened again (fresh mapping, entry NOPs) and patched again.
 *   3. Threads in the child. In a forked child, 50 threads call lpf_f() in
 *      a loop during enable + wait + disable + wait, with the phase oracle
 *      of test_lp_live (a call that starts and ends in a stable phase
 *      returns that phase's value; every call returns one of the two);
 *      each wait completes with all 53 threads switched (50 workers, two
 *      readers blocked in read(), the main thread). The readers are
 *      checked from outside through the child's thread registry: they are
 *      never woken (no frame pointers; see test_lp_live) and their read()
 *      returns the byte written at the end. Then, with a child thread held
 *      inside lpf_f(), threads created during the open enable start in
 *      the target state (the pthread_create() wrapper): each returns the
 *      new value at once. Last, a child thread drives a cycle while the
 *      forking thread sleeps in pthread_join(): the fork handler gave
 *      that thread's registry slot the child's tid, so it is checked from
 *      outside and never woken (no frame pointers).
 * Every check is exact. Patches and libraries: test_lp_fork_dlclose.cmake.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include "lp_test.h"
#include "lpf.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 10000
#define FORKS 30
#define NWORKERS 50
#define NREADERS 2
#define NLATE 10

/* Exit statuses of a child that passed every check. */
#define CHILD_OK 42
#define CHILD_OK_TRANS 43
#define CHILD_FAIL 3

static const bool fp_build = LP_FRAME_POINTERS_BUILD;

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
				_b, rw_patch_last_error());                    \
			_exit(CHILD_FAIL);                                     \
		}                                                              \
	} while (0)

/* ---- Helpers ------------------------------------------------------------ */

static struct rw_patch *load(const char *name)
{
	char path[512];

	lp_patch_path(path, sizeof(path), LPF_DIR "/lpf_patch_", name);
	return lp_load(path, RW_PATCH_LOAD_ALLOW_ANY_OWNER);
}

/* Wait for child @pid; its exit status (CHILD_OK...), or fail. */
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
	if (WEXITSTATUS(st) != CHILD_OK && WEXITSTATUS(st) != CHILD_OK_TRANS) {
		fprintf(stderr, "%s: child %d exited with %d\n", what, (int)pid,
			WEXITSTATUS(st));
		exit(1);
	}
	return WEXITSTATUS(st);
}

static pid_t fork_checked(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0);
	return pid;
}

/* A thread held inside the old lpf_f() until a byte arrives on fd. */
struct holder {
	pthread_t t;
	int fds[2];
	_Atomic pid_t tid;
	int ret;
};

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	atomic_store(&h->tid, (pid_t)syscall(SYS_gettid));
	h->ret = lpf_f(h->fds[0]);
	return NULL;
}

static bool wait_in_read(pid_t tid)
{
	return lp_wait_in_syscall(tid, SYS_read);
}

/* Start a holder; returns once it sleeps in read() inside lpf_f(). */
static bool holder_start(struct holder *h)
{
	int before = atomic_load(&lpf_f_inside);

	memset(h, 0, sizeof(*h));
	h->ret = -100;
	if (pipe(h->fds) != 0 ||
	    pthread_create(&h->t, NULL, holder_main, h) != 0)
		return false;
	while (atomic_load(&lpf_f_inside) == before || !atomic_load(&h->tid))
		usleep(1000);
	return wait_in_read(atomic_load(&h->tid));
}

/* Release the holder; the value its call of lpf_f() returned. */
static int holder_release(struct holder *h)
{
	if (write(h->fds[1], "x", 1) != 1 || pthread_join(h->t, NULL) != 0)
		return -100;
	close(h->fds[0]);
	close(h->fds[1]);
	return h->ret;
}

/* ---- 1. Fork during a transition --------------------------------------- */

static void child_of_transition(struct rw_patch *p)
{
	struct rw_patch_info info;

	alarm(10);
	C_CHECK_EQ(rw_patch_state(p, &info), 0);
	C_CHECK_EQ(info.state, RW_PATCH_ENABLING);
	/* The forking thread had switched at the first pass. */
	C_CHECK_EQ(lpf_f(-1), LPF_F_NEW);
	/* The holder does not exist here: the transition completes. */
	C_CHECK_EQ(rw_patch_wait(p, 2000), 0);
	C_CHECK_EQ(rw_patch_state(p, &info), 0);
	printf("  child: wait -> 0, state %d, %zu/%zu threads switched, "
	       "%zu pending\n",
	       info.state, info.threads_switched, info.threads_total,
	       info.npending);
	C_CHECK_EQ(info.state, RW_PATCH_ENABLED);
	C_CHECK_EQ(info.threads_total, 1);
	C_CHECK_EQ(info.threads_switched, 1);
	C_CHECK_EQ(info.npending, 0);
	C_CHECK_EQ(lpf_f(-1), LPF_F_NEW);
	C_CHECK(!lp_entry_is_nops((uintptr_t)lpf_f));
	C_CHECK_EQ(lp_go(p, false, 2000), 0);
	C_CHECK_EQ(rw_patch_state(p, &info), 0);
	C_CHECK_EQ(info.state, RW_PATCH_DISABLED);
	C_CHECK_EQ(lpf_f(-1), LPF_F_OLD);
	C_CHECK(lp_entry_is_nops((uintptr_t)lpf_f));
	C_CHECK_EQ(rw_patch_unload(p), 0);
	C_CHECK_EQ(rw_patch_list(NULL, 0), 0);
	printf("  child: disable + wait -> lpf_f() = %d, original entry; "
	       "unloaded\n",
	       lpf_f(-1));
	_exit(CHILD_OK);
}

static void test_fork_in_transition(void)
{
	struct rw_patch *p = load("f");
	struct rw_patch_info info;
	struct holder h;
	pid_t pid;

	printf("fork during a transition:\n");
	CHECK_EQ(lpf_f(-1), LPF_F_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)lpf_f));
	CHECK(holder_start(&h));
	CHECK_OK(rw_patch_enable(p));
	CHECK_EQ(rw_patch_wait(p, 200), -ETIMEDOUT);
	CHECK_OK(rw_patch_state(p, &info));
	printf("  holder %d in lpf_f: state %d, %zu/%zu switched, %zu "
	       "pending",
	       (int)h.tid, info.state, info.threads_switched,
	       info.threads_total, info.npending);
	if (info.npending)
		printf(" (first: tid %d, why %d, %s)", info.pending[0].tid,
		       info.pending[0].why, info.pending[0].func);
	printf("\n");
	CHECK_EQ(info.state, RW_PATCH_ENABLING);
	CHECK_EQ(info.npending, 1);
	CHECK_EQ(info.pending[0].tid, atomic_load(&h.tid));
	CHECK_EQ(info.pending[0].why, RW_PT_ON_STACK);
	CHECK(strstr(info.pending[0].func, "lpf_f") != NULL);
	CHECK_EQ(lpf_f(-1), LPF_F_NEW);

	pid = fork_checked();
	if (pid == 0)
		child_of_transition(p);
	child_wait(pid, "fork during a transition");

	/* The parent's transition is untouched by the child's. */
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLING);
	CHECK_EQ(rw_patch_wait(p, 200), -ETIMEDOUT);
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLING);
	CHECK_EQ(holder_release(&h), LPF_F_OLD);
	CHECK_OK(rw_patch_wait(p, WAIT_MS));
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLED);
	CHECK_EQ(lpf_f(-1), LPF_F_NEW);
	printf("  parent: still ENABLING after the child, released, wait -> "
	       "0, lpf_f() = %d\n",
	       lpf_f(-1));
	lp_disable_wait(p, WAIT_MS);
	CHECK_EQ(lpf_f(-1), LPF_F_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)lpf_f));
	CHECK_OK(rw_patch_unload(p));
}

/* ---- 1b. Fork while a thread keeps calling rw_patch_* ------------------- */

static _Atomic bool churn_stop;
static _Atomic long churn_cycles, churn_timeouts;
static _Atomic int churn_err, churn_line;

#define CHURN_FAIL(e)                                     \
	do {                                              \
		atomic_store(&churn_err, (e) ? (e) : -1); \
		atomic_store(&churn_line, __LINE__);      \
		return NULL;                              \
	} while (0)

/* wait until complete; -ETIMEDOUT rounds are counted and retried. */
static int churn_wait(struct rw_patch *q)
{
	uint64_t t0 = rw_test_now_ns();
	int err;

	while ((err = rw_patch_wait(q, 1000)) == -ETIMEDOUT &&
	       rw_test_now_ns() - t0 < 20000000000ull)
		atomic_fetch_add(&churn_timeouts, 1);
	return err;
}

static void *churn_main(void *arg)
{
	struct rw_patch *q = arg;
	struct rw_patch_info info;
	int err;

	while (!atomic_load(&churn_stop)) {
		if ((err = rw_patch_state(q, &info)) != 0)
			CHURN_FAIL(err);
		if (info.state != RW_PATCH_LOADED &&
		    info.state != RW_PATCH_DISABLED)
			CHURN_FAIL(-1000 - info.state);
		if ((err = rw_patch_enable(q)) != 0 ||
		    (err = churn_wait(q)) != 0)
			CHURN_FAIL(err);
		if ((err = rw_patch_state(q, &info)) != 0)
			CHURN_FAIL(err);
		if (info.state != RW_PATCH_ENABLED)
			CHURN_FAIL(-1000 - info.state);
		if ((err = rw_patch_disable(q)) != 0 ||
		    (err = churn_wait(q)) != 0)
			CHURN_FAIL(err);
		atomic_fetch_add(&churn_cycles, 1);
	}
	return NULL;
}

static void child_of_churn(struct rw_patch *q)
{
	struct rw_patch_info info;
	bool trans;
	int st;

	alarm(10);
	C_CHECK_EQ(rw_patch_state(q, &info), 0);
	st = info.state;
	trans = st == RW_PATCH_ENABLING || st == RW_PATCH_DISABLING;
	/* Whatever the churn thread left open completes here. */
	C_CHECK_EQ(rw_patch_wait(q, 2000), 0);
	C_CHECK_EQ(rw_patch_state(q, &info), 0);
	if (trans)
		C_CHECK_EQ(info.state, st == RW_PATCH_ENABLING
					       ? RW_PATCH_ENABLED
					       : RW_PATCH_DISABLED);
	C_CHECK(info.state == RW_PATCH_LOADED ||
		info.state == RW_PATCH_ENABLED ||
		info.state == RW_PATCH_DISABLED);
	C_CHECK_EQ(lpf_h(),
		   info.state == RW_PATCH_ENABLED ? LPF_H_NEW : LPF_H_OLD);
	if (info.state == RW_PATCH_ENABLED) {
		C_CHECK_EQ(lp_go(q, false, 2000), 0);
		C_CHECK_EQ(lpf_h(), LPF_H_OLD);
	}
	C_CHECK_EQ(lp_go(q, true, 2000), 0);
	C_CHECK_EQ(lpf_h(), LPF_H_NEW);
	C_CHECK_EQ(lp_go(q, false, 2000), 0);
	C_CHECK_EQ(lpf_h(), LPF_H_OLD);
	C_CHECK(lp_entry_is_nops((uintptr_t)lpf_h));
	C_CHECK_EQ(rw_patch_state(q, &info), 0);
	C_CHECK_EQ(info.state, RW_PATCH_DISABLED);
	_exit(trans ? CHILD_OK_TRANS : CHILD_OK);
}

static void test_fork_churn(void)
{
	struct rw_patch *q = load("h");
	uint64_t worst = 0;
	int in_trans = 0;
	long c0;
	pthread_t t;

	printf("fork while a thread keeps enabling and disabling:\n");
	CHECK_EQ(lpf_h(), LPF_H_OLD);
	CHECK_EQ(pthread_create(&t, NULL, churn_main, q), 0);
	while (atomic_load(&churn_cycles) < 3 && !atomic_load(&churn_err))
		usleep(1000);
	/* A fork that deadlocks ends the test with SIGALRM. */
	alarm(120);
	for (int i = 0; i < FORKS && !atomic_load(&churn_err); i++) {
		uint64_t t0;
		pid_t pid;

		c0 = atomic_load(&churn_cycles);
		usleep((useconds_t)(rand() % 3000));
		t0 = rw_test_now_ns();
		pid = fork_checked();
		if (pid == 0)
			child_of_churn(q);
		if (rw_test_now_ns() - t0 > worst)
			worst = rw_test_now_ns() - t0;
		if (child_wait(pid, "fork under churn") == CHILD_OK_TRANS)
			in_trans++;
		/* The churn thread went on in the parent. */
		while (atomic_load(&churn_cycles) == c0 &&
		       !atomic_load(&churn_err))
			usleep(100);
	}
	alarm(0);
	atomic_store(&churn_stop, true);
	CHECK_EQ(pthread_join(t, NULL), 0);
	printf("  %d forks (%d inherited a transition), longest fork() %lu "
	       "us; churn: %ld cycles, %ld wait timeouts, error %d (line "
	       "%d)\n",
	       FORKS, in_trans, (unsigned long)(worst / 1000),
	       atomic_load(&churn_cycles), atomic_load(&churn_timeouts),
	       atomic_load(&churn_err), atomic_load(&churn_line));
	CHECK_EQ(atomic_load(&churn_err), 0);
	CHECK_EQ(lp_state(q), RW_PATCH_DISABLED);
	CHECK_EQ(lpf_h(), LPF_H_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)lpf_h));
	CHECK_OK(rw_patch_unload(q));
}

/* ---- 2. dlclose pinning ------------------------------------------------ */

typedef int (*g_fn)(void);

static g_fn open_g(void **h)
{
	g_fn g;

	*h = dlopen(LPF_G_PATH, RTLD_NOW);
	if (!*h) {
		fprintf(stderr, "dlopen %s: %s\n", LPF_G_PATH, dlerror());
		exit(1);
	}
	g = (g_fn)dlsym(*h, "lpf_g");
	CHECK(g != NULL);
	return g;
}

static bool g_loaded(void)
{
	void *h = dlopen(LPF_G_PATH, RTLD_NOW | RTLD_NOLOAD);

	if (h)
		dlclose(h);
	return h != NULL;
}

static void test_dlclose_pin(void)
{
	char real[PATH_MAX];
	struct rw_patch *p;
	void *h;
	g_fn g;

	printf("dlclose of a patched object:\n");
	CHECK(realpath(LPF_G_PATH, real) != NULL);
	CHECK(!lp_file_mapped(real));
	g = open_g(&h);
	CHECK(lp_file_mapped(real));
	CHECK_EQ(g(), LPF_G_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)g));

	/* Enabled, then the program drops its only reference. */
	p = load("g");
	lp_enable_wait(p, WAIT_MS);
	CHECK_EQ(g(), LPF_G_NEW);
	CHECK_EQ(dlclose(h), 0);
	/* Checked before the call: an unmapped lpf_g would crash. */
	CHECK(lp_file_mapped(real));
	CHECK_EQ(g(), LPF_G_NEW);
	printf("  enabled, dlclose'd: still mapped, lpf_g() = %d\n", g());
	lp_disable_wait(p, WAIT_MS);
	CHECK(lp_file_mapped(real));
	CHECK_EQ(g(), LPF_G_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)g));
	CHECK_OK(rw_patch_unload(p));
	printf("  disabled, unloaded: mapped %d\n", lp_file_mapped(real));
	CHECK(!lp_file_mapped(real));
	CHECK(!g_loaded());

	/* Loaded, never enabled. */
	g = open_g(&h);
	CHECK(lp_file_mapped(real));
	p = load("g");
	CHECK_EQ(lp_state(p), RW_PATCH_LOADED);
	CHECK_EQ(dlclose(h), 0);
	CHECK(lp_file_mapped(real));
	CHECK_EQ(g(), LPF_G_OLD);
	printf("  loaded only, dlclose'd: still mapped, lpf_g() = %d\n", g());
	CHECK_OK(rw_patch_unload(p));
	printf("  unloaded: mapped %d\n", lp_file_mapped(real));
	CHECK(!lp_file_mapped(real));
	CHECK(!g_loaded());

	/* A fresh mapping of the object patches like the first one. */
	g = open_g(&h);
	CHECK_EQ(g(), LPF_G_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)g));
	p = load("g");
	lp_enable_wait(p, WAIT_MS);
	CHECK_EQ(g(), LPF_G_NEW);
	lp_disable_wait(p, WAIT_MS);
	CHECK_EQ(g(), LPF_G_OLD);
	CHECK(lp_entry_is_nops((uintptr_t)g));
	CHECK_OK(rw_patch_unload(p));
	CHECK(lp_file_mapped(real));
	CHECK_EQ(dlclose(h), 0);
	CHECK(!lp_file_mapped(real));
	printf("  opened again: patched and unpatched, dlclose unmaps\n");
}

/* ---- 3. Threads in the child ------------------------------------------- */

static _Atomic int phase;

struct worker {
	pthread_t t;
	_Atomic long in_phase[LP_NPHASES]; /* calls inside one stable phase */
	_Atomic long bad;		   /* neither value */
	_Atomic long wrong; /* the other side in a stable phase */
	int first_bad, first_wrong_phase;
};

static struct worker workers[NWORKERS];

static int phase_value(int ph)
{
	switch (ph) {
	case LP_BEFORE:
	case LP_DISABLED:
		return LPF_F_OLD;
	case LP_ENABLED:
		return LPF_F_NEW;
	default:
		return -1;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		int b = atomic_load(&phase), a, r;

		if (b == LP_STOP)
			break;
		r = lpf_f(-1);
		a = atomic_load(&phase);
		if (r != LPF_F_OLD && r != LPF_F_NEW) {
			if (atomic_fetch_add(&w->bad, 1) == 0)
				w->first_bad = r;
			continue;
		}
		if (a != b)
			continue;
		atomic_fetch_add(&w->in_phase[b], 1);
		if (phase_value(b) >= 0 && phase_value(b) != r &&
		    atomic_fetch_add(&w->wrong, 1) == 0)
			w->first_wrong_phase = b;
	}
	return NULL;
}

/* Every worker made a call inside phase @ph; false after 10 s. */
static bool all_called_in(int ph)
{
	uint64_t deadline = lp_deadline_ms(10000);

	for (int i = 0; i < NWORKERS; i++)
		if (!LP_WAIT_UNTIL(atomic_load(&workers[i].in_phase[ph]) != 0,
				   deadline))
			return false;
	return true;
}

static int rpipe[2];
static _Atomic pid_t reader_tid[NREADERS];
static ssize_t reader_ret[NREADERS];

static void *reader_main(void *arg)
{
	int i = (int)(intptr_t)arg;
	char c;

	atomic_store(&reader_tid[i], (pid_t)syscall(SYS_gettid));
	reader_ret[i] = read(rpipe[0], &c, 1);
	return NULL;
}

/* lp_ctxt_switches(), which must be able to read them (in the child). */
static long ctxt_switches(pid_t tid)
{
	long n = lp_ctxt_switches(tid);

	C_CHECK(n >= 0);
	return n;
}

static void child_transition_checked(struct rw_patch *p, bool enable,
				     const char *what)
{
	struct rw_patch_info info;
	uint64_t t0 = rw_test_now_ns();

	C_CHECK_EQ(lp_go(p, enable, WAIT_MS), 0);
	C_CHECK_EQ(rw_patch_state(p, &info), 0);
	printf("  child: %-8s %lu us, %u rounds, %zu/%zu threads "
	       "switched\n",
	       what, (unsigned long)((rw_test_now_ns() - t0) / 1000),
	       info.attempts, info.threads_switched, info.threads_total);
	C_CHECK_EQ(info.state, enable ? RW_PATCH_ENABLED : RW_PATCH_DISABLED);
	C_CHECK_EQ(info.threads_total, NWORKERS + NREADERS + 1);
	C_CHECK_EQ(info.threads_switched, NWORKERS + NREADERS + 1);
}

static _Atomic int late_ret[NLATE];

static void *late_main(void *arg)
{
	atomic_store(&late_ret[(intptr_t)arg], lpf_f(-1));
	return NULL;
}

/*
 * A child thread drives a cycle while the forking thread sleeps in
 * pthread_join(): the forking thread's registry slot, which the fork
 * handler gave the child's tid, lets it be checked from outside.
 */
struct driver {
	struct rw_patch *p;
	pid_t main_tid;
	long woken[2];
	int err, value[2];
};

static void *driver_main(void *arg)
{
	struct driver *d = arg;

	if (!lp_wait_in_syscall(d->main_tid, SYS_futex)) {
		d->err = -1;
		return NULL;
	}
	for (int k = 0; k < 2; k++) {
		long s0 = ctxt_switches(d->main_tid);

		d->err = lp_go(d->p, k == 0, WAIT_MS);
		if (d->err)
			return NULL;
		d->woken[k] = ctxt_switches(d->main_tid) - s0;
		d->value[k] = lpf_f(-1);
	}
	return NULL;
}

static void child_threads(struct rw_patch *p)
{
	struct driver d = { .p = p };
	pthread_t dt;
	pthread_t readers[NREADERS], late[NLATE];
	long sw0[NREADERS];
	struct rw_patch_info info;
	struct holder h;

	alarm(120);
	C_CHECK_EQ(pipe(rpipe), 0);
	for (int i = 0; i < NREADERS; i++)
		C_CHECK_EQ(pthread_create(&readers[i], NULL, reader_main,
					  (void *)(intptr_t)i),
			   0);
	atomic_store(&phase, LP_BEFORE);
	for (int i = 0; i < NWORKERS; i++)
		C_CHECK_EQ(pthread_create(&workers[i].t, NULL, worker_main,
					  &workers[i]),
			   0);
	C_CHECK(all_called_in(LP_BEFORE));
	for (int i = 0; i < NREADERS; i++) {
		while (!atomic_load(&reader_tid[i]))
			usleep(1000);
		C_CHECK(wait_in_read(atomic_load(&reader_tid[i])));
		sw0[i] = ctxt_switches(atomic_load(&reader_tid[i]));
	}

	atomic_store(&phase, LP_ENABLING);
	child_transition_checked(p, true, "enable");
	atomic_store(&phase, LP_ENABLED);
	C_CHECK(all_called_in(LP_ENABLED));
	atomic_store(&phase, LP_DISABLING);
	child_transition_checked(p, false, "disable");
	atomic_store(&phase, LP_DISABLED);
	C_CHECK(all_called_in(LP_DISABLED));
	atomic_store(&phase, LP_STOP);
	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];

		C_CHECK_EQ(pthread_join(w->t, NULL), 0);
		if (w->bad || w->wrong)
			fprintf(stderr,
				"[child] worker %d: %ld bad (first %d), %ld "
				"wrong (first in phase %d)\n",
				i, w->bad, w->first_bad, w->wrong,
				w->first_wrong_phase);
		C_CHECK_EQ(w->bad, 0);
		C_CHECK_EQ(w->wrong, 0);
	}
	for (int i = 0; i < NREADERS; i++) {
		long dsw = ctxt_switches(atomic_load(&reader_tid[i])) - sw0[i];

		printf("  child: reader %d woken %ld times during both "
		       "transitions%s\n",
		       i, dsw,
		       fp_build ? " (frame pointers: may be signalled)" : "");
		if (!fp_build)
			C_CHECK_EQ(dsw, 0);
	}
	C_CHECK_EQ(write(rpipe[1], "ab", 2), 2);
	for (int i = 0; i < NREADERS; i++) {
		C_CHECK_EQ(pthread_join(readers[i], NULL), 0);
		C_CHECK_EQ(reader_ret[i], 1);
	}
	C_CHECK_EQ(lpf_f(-1), LPF_F_OLD);

	/* Threads created while a transition is open start in its target
	 * state: the pthread_create() wrapper works in the child. */
	C_CHECK(holder_start(&h));
	C_CHECK_EQ(rw_patch_enable(p), 0);
	C_CHECK_EQ(rw_patch_wait(p, 200), -ETIMEDOUT);
	C_CHECK_EQ(rw_patch_state(p, &info), 0);
	C_CHECK_EQ(info.state, RW_PATCH_ENABLING);
	C_CHECK_EQ(info.npending, 1);
	C_CHECK_EQ(info.pending[0].tid, atomic_load(&h.tid));
	for (intptr_t i = 0; i < NLATE; i++)
		C_CHECK_EQ(pthread_create(&late[i], NULL, late_main, (void *)i),
			   0);
	for (int i = 0; i < NLATE; i++) {
		C_CHECK_EQ(pthread_join(late[i], NULL), 0);
		C_CHECK_EQ(atomic_load(&late_ret[i]), LPF_F_NEW);
	}
	C_CHECK_EQ(rw_patch_state(p, &info), 0);
	C_CHECK_EQ(info.state, RW_PATCH_ENABLING);
	C_CHECK_EQ(holder_release(&h), LPF_F_OLD);
	C_CHECK_EQ(rw_patch_wait(p, WAIT_MS), 0);
	C_CHECK_EQ(lpf_f(-1), LPF_F_NEW);
	printf("  child: %d threads created during an open enable returned "
	       "%d\n",
	       NLATE, LPF_F_NEW);
	C_CHECK_EQ(lp_go(p, false, WAIT_MS), 0);
	C_CHECK_EQ(lpf_f(-1), LPF_F_OLD);
	C_CHECK(lp_entry_is_nops((uintptr_t)lpf_f));

	d.main_tid = (pid_t)syscall(SYS_gettid);
	C_CHECK_EQ(pthread_create(&dt, NULL, driver_main, &d), 0);
	C_CHECK_EQ(pthread_join(dt, NULL), 0);
	printf("  child: cycle driven by another thread: error %d, "
	       "lpf_f() %d then %d, forking thread woken %ld and %ld "
	       "times%s\n",
	       d.err, d.value[0], d.value[1], d.woken[0], d.woken[1],
	       fp_build ? " (frame pointers: may be signalled)" : "");
	C_CHECK_EQ(d.err, 0);
	C_CHECK_EQ(d.value[0], LPF_F_NEW);
	C_CHECK_EQ(d.value[1], LPF_F_OLD);
	if (!fp_build) {
		C_CHECK_EQ(d.woken[0], 0);
		C_CHECK_EQ(d.woken[1], 0);
	}
	C_CHECK_EQ(lpf_f(-1), LPF_F_OLD);
	_exit(CHILD_OK);
}

static void test_child_threads(void)
{
	struct rw_patch *p = load("f");
	pid_t pid;

	printf("%d threads in a forked child:\n", NWORKERS);
	pid = fork_checked();
	if (pid == 0)
		child_threads(p);
	child_wait(pid, "threads in the child");
	CHECK_EQ(lp_state(p), RW_PATCH_LOADED);
	CHECK_EQ(lpf_f(-1), LPF_F_OLD);
	CHECK_OK(rw_patch_unload(p));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	srand((unsigned)getpid());
	test_fork_in_transition();
	test_fork_churn();
	test_dlclose_pin();
	test_child_threads();
	CHECK_EQ(rw_patch_list(NULL, 0), 0);
	printf("ok\n");
	return 0;
}
#endif
