/* SPDX-License-Identifier: MIT */
/*
 * The floor's own RCU read side: registry, grace periods, polled cookies.
 * The inline half (rw__rs_lock/rw__rs_unlock, a per-thread nesting counter
 * in static TLS) is include/rewire/readside.h. Model: src/readside.pml.
 *
 * Registry
 *
 * A circular doubly linked list of the registered threads' rw__rs_self,
 * linked through their priv words, protected by registry.lock. Whoever
 * holds that lock has blocked every signal first (with the raw system call:
 * rewire's interposed sigprocmask would leave SIGTRAP and its cross-thread
 * signal deliverable), so a signal handler's first rw__rs_lock() can never
 * find the lock held by its own thread.
 *
 *   Register (rw__rs_register, the first lock of a thread; async-signal-
 *   safe, allocates nothing):
 *     R1. block all signals;
 *     R2. take registry.lock, insert the thread, record its tid, release;
 *     R3. full fence;
 *     R4. registered = 1, restore the signal mask.
 *   A handler cannot run between R1 and R4, so registration is atomic with
 *   respect to the thread's own handlers; it is idempotent (R2 looks at
 *   the in-registry flag, not at registered).
 *
 *   Unregister: the destructor of a pthread key set at registration, as
 *   urcu-bp does; it runs at thread exit, after C++ thread_local
 *   destructors. A lock in a later key destructor registers the thread
 *   again, and sets the key again, so glibc calls the destructor once more
 *   (it goes round PTHREAD_DESTRUCTOR_ITERATIONS times). Caveat: a
 *   registration in the very last round would outlive the thread.
 *
 * Grace periods
 *
 * gp_seq counts them the way the kernel's rcu_seq does: the low bit says a
 * grace period is in progress; it wraps, and every comparison is
 * (long)(a - b) >= 0. A grace period, serialized by gp.lock:
 *
 *   G1. gp_seq++ (odd: in progress).
 *   G2. membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): every thread of the
 *       process that is running executes a full barrier; the others have
 *       been through the kernel since. A reader whose increment of nest the
 *       scan below misses therefore reads, after that increment, whatever
 *       the updater stored before the grace period: it cannot find the
 *       object being retired.
 *   G3. Scan the registry (lock held, signals blocked): mark each thread
 *       whose nest is not zero (acquire loads).
 *   G4. Release the lock; until no thread is marked: spin a little, then
 *       yield, then sleep (backoff), and re-check the marked threads under
 *       the lock, unmarking a thread seen with nest == 0. A thread that
 *       unregisters leaves the list and so stops counting.
 *   G5. membarrier again: every load a reader made in a section that G4
 *       saw end is complete before the caller frees anything.
 *   G6. gp_seq++ (even), a release store.
 *
 * A marked thread is waited for until it is seen outside any section, not
 * until it leaves the section it was in: a reader that is inside sections
 * almost all the time is caught between two of them only by luck (each
 * check is a few hundred nanoseconds; sections of a tracepoint or a
 * provider read are tens). That is the price of a one-instruction read
 * side without a grace-period phase bit.
 *
 * Without membarrier (kernels before 4.14, seccomp filters, or
 * REWIRE_RS_NO_MEMBARRIER=1 for the tests) G2 and G5 interrupt each thread
 * registered at that time with rewire's cross-thread signal instead
 * (rw__on_threads(), a full fence in the handler): entering and leaving the
 * kernel for a signal is a full barrier, as in liburcu's signal flavour, and
 * rewire keeps its signal unblocked in every thread (src/signals.c). A
 * thread registering later needs none: it takes registry.lock after G3
 * released it. A call that fails (a thread that does not answer within the
 * timeout) is repeated: a grace period must not end early.
 *
 * Polled cookies: rw__rs_get_state() returns the value gp_seq reaches once
 * a grace period that starts after the call has ended, (gp_seq + 3) & ~1
 * (the end of the one in progress would not do: it may have scanned
 * already); rw__rs_poll_state(c) is gp_seq >= c (wrap-safe), then a full
 * fence. Cookie 0 means "always complete", so a snapshot of 0 (gp_seq
 * about to wrap) becomes 2, one grace period later than needed.
 *
 * Concurrent synchronizers share grace periods: each takes its cookie
 * first, then gp.lock, and runs a grace period only if its cookie is still
 * not complete when it gets the lock.
 *
 * Lock order: gp.lock (held across a whole grace period), then
 * registry.lock (held briefly); both nest inside RCU's level of rewire's
 * fork handlers and outside the floor's cross-thread call lock. fork():
 * src/rcu.c's handlers call rw__rs_atfork_*() after liburcu's, so no grace
 * period is in progress in the child, whose registry then holds only the
 * forking thread (if it was registered).
 */
#include "internal.h"
#include "threads.h"

#include <rewire/readside.h>

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

RW_EXPORT __thread struct rw__rs_thread rw__rs_self
	__attribute__((tls_model("initial-exec")));

/* The private words of struct rw__rs_thread. */
#define RS_NEXT(t) ((struct rw__rs_thread *)(t)->priv[0])
#define RS_PREV(t) ((struct rw__rs_thread *)(t)->priv[1])
#define RS_TID(t) ((t)->priv[2])
#define RS_MARKED(t) ((t)->priv_flags[0]) /* gp.lock and registry.lock */
#define RS_LISTED(t) ((t)->priv_flags[1]) /* registry.lock */

/* --- Registry ------------------------------------------------------------- */

static struct {
	struct rw__lock lock;
	struct rw__rs_thread head; /* sentinel of the circular list */
	pthread_key_t key;
	_Atomic int key_state; /* 0: none yet, 1: created, -1: failed */
} registry = {
	.lock = RW__LOCK_INIT,
	.head = { .priv = { &registry.head, &registry.head } },
};

/* Block every signal with the raw system call (see the top comment);
 * async-signal-safe. */
static void signals_block(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, old, _NSIG / 8);
}

static void signals_restore(const sigset_t *old)
{
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, _NSIG / 8);
}

static void list_add(struct rw__rs_thread *t)
{
	struct rw__rs_thread *h = &registry.head;

	t->priv[0] = h;
	t->priv[1] = RS_PREV(h);
	RS_PREV(h)->priv[0] = t;
	h->priv[1] = t;
	RS_LISTED(t) = 1;
	RS_MARKED(t) = 0;
}

static void list_del(struct rw__rs_thread *t)
{
	RS_PREV(t)->priv[0] = RS_NEXT(t);
	RS_NEXT(t)->priv[1] = RS_PREV(t);
	t->priv[0] = t->priv[1] = NULL;
	RS_LISTED(t) = 0;
	RS_MARKED(t) = 0;
}

static void thread_exit(void *arg);

static void key_create(void)
{
	int st = pthread_key_create(&registry.key, thread_exit) == 0 ? 1 : -1;

	/* Only with PTHREAD_KEYS_MAX keys taken. Threads then stay
	 * registered after they exit, which is unsafe: a grace period would
	 * read their TLS after glibc reused it. Say so. */
	if (st < 0)
		rw__log("no pthread key left: exiting threads stay registered");
	atomic_store(&registry.key_state, st);
}

/* Early, so that rw__rs_register() never creates the key itself (which is
 * not async-signal-safe) unless a constructor of another library locks
 * before this one has run. */
__attribute__((constructor)) static void registry_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, key_create);
}

RW_EXPORT void rw__rs_register(void)
{
	struct rw__rs_thread *self = &rw__rs_self;
	sigset_t old;

	if (self->registered)
		return;
	if (RW_UNLIKELY(atomic_load(&registry.key_state) == 0))
		registry_init();
	signals_block(&old);			/* R1 */
	(void)rw__lock_acquire(&registry.lock); /* R2 */
	if (!RS_LISTED(self)) {
		list_add(self);
		RS_TID(self) = (void *)(uintptr_t)rw__gettid();
	}
	rw__lock_release(&registry.lock);
	rw__full_barrier(); /* R3 */
	/* The thread-exit hook. For the first keys glibc stores the value in
	 * the thread's descriptor (no allocation); our key is created by a
	 * constructor, among the first. */
	if (atomic_load(&registry.key_state) > 0)
		(void)pthread_setspecific(registry.key, self);
	self->registered = 1; /* R4 */
	signals_restore(&old);
}

static void unregister_self(void)
{
	struct rw__rs_thread *self = &rw__rs_self;
	sigset_t old;

	signals_block(&old);
	(void)rw__lock_acquire(&registry.lock);
	if (RS_LISTED(self))
		list_del(self);
	rw__lock_release(&registry.lock);
	self->registered = 0;
	signals_restore(&old);
}

static void thread_exit(void *arg)
{
	(void)arg;
	unregister_self();
}

bool rw__rs_in_read_side(void)
{
	return __atomic_load_n(&rw__rs_self.nest, __ATOMIC_RELAXED) != 0;
}

/* --- Grace periods ------------------------------------------------------- */

static struct {
	struct rw__lock lock; /* serializes grace periods */
	unsigned long seq;    /* written under lock; read atomically */
	int barrier;	      /* 0: not probed, 1: membarrier, -1: signals;
			       * lock */
	bool env_read;	      /* lock */
	bool fork_locked;
} gp = {
	.lock = RW__LOCK_INIT,
};

/* Test hook: REWIRE_RS_GP_SEQ=N starts the sequence at N (even), so that
 * the tests can run grace periods across the wrap of the counter. */
__attribute__((constructor)) static void gp_seq_init(void)
{
	const char *env = getenv("REWIRE_RS_GP_SEQ");

	if (env && *env)
		__atomic_store_n(&gp.seq, strtoul(env, NULL, 0) & ~1UL,
				 __ATOMIC_RELAXED);
}

static void fence_fn(void *arg, void *uc)
{
	(void)arg;
	(void)uc;
	rw__full_barrier();
}

/* The fallback signals only the threads registered now: one that registers
 * later takes registry.lock after G3's scan released it, so its section
 * sees whatever the updater stored before the grace period. */
struct tids {
	pid_t *v;
	size_t n;
};

static int tid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static bool tids_filter(pid_t tid, void *arg)
{
	const struct tids *t = arg;

	return bsearch(&tid, t->v, t->n, sizeof(*t->v), tid_cmp) != NULL;
}

static void tids_snapshot(struct tids *t)
{
	struct rw__rs_thread *p;
	size_t n = 0;
	sigset_t old;

	signals_block(&old);
	(void)rw__lock_acquire(&registry.lock);
	for (p = RS_NEXT(&registry.head); p != &registry.head; p = RS_NEXT(p))
		n++;
	t->v = n ? malloc(n * sizeof(*t->v)) : NULL;
	t->n = 0;
	for (p = RS_NEXT(&registry.head); t->v && p != &registry.head;
	     p = RS_NEXT(p))
		t->v[t->n++] = (pid_t)(uintptr_t)RS_TID(p);
	rw__lock_release(&registry.lock);
	signals_restore(&old);
	if (t->v)
		qsort(t->v, t->n, sizeof(*t->v), tid_cmp);
}

/* G2 and G5. Caller holds gp.lock. */
static void barrier_all_threads(void)
{
	const char *env;
	unsigned int tries;
	struct tids t;
	int err;

	if (gp.barrier == 0) {
		env = getenv("REWIRE_RS_NO_MEMBARRIER");
		if (env && strcmp(env, "1") == 0)
			gp.barrier = -1;
		else if (syscall(SYS_membarrier,
				 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
				 0) == 0)
			gp.barrier = 1;
		else
			gp.barrier = -1;
		if (gp.barrier < 0)
			rw__log("membarrier PRIVATE_EXPEDITED not used (errno "
				"%d); grace periods signal every thread",
				env ? 0 : errno);
	}
	if (gp.barrier > 0 &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) ==
		    0)
		return;
	/* No snapshot (out of memory): every thread. */
	tids_snapshot(&t);
	for (tries = 0;; tries++) {
		err = rw__on_threads(fence_fn, NULL, t.v ? tids_filter : NULL,
				     &t, 10000, NULL);
		if (err == 0)
			break;
		if (tries == 0)
			rw__log("cross-thread fence failed (%d); retrying",
				err);
		rw__sleep_ns(1000000);
	}
	free(t.v);
}

/* G3 (scan) and the re-checks of G4: returns how many threads are still
 * marked. */
static unsigned long registry_check(bool scan)
{
	struct rw__rs_thread *t;
	unsigned long marked = 0;
	sigset_t old;

	signals_block(&old);
	(void)rw__lock_acquire(&registry.lock);
	for (t = RS_NEXT(&registry.head); t != &registry.head; t = RS_NEXT(t)) {
		if (!scan && !RS_MARKED(t))
			continue;
		RS_MARKED(t) = __atomic_load_n(&t->nest, __ATOMIC_ACQUIRE) != 0;
		marked += RS_MARKED(t);
	}
	rw__lock_release(&registry.lock);
	signals_restore(&old);
	return marked;
}

/* A spin-wait hint: PAUSE, YIELD on aarch64. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

/*
 * Between two checks of G4. Checks are cheap, and a busy reader is caught
 * outside its sections only between two of them: keep checking often
 * (short sleeps) for a while before backing off to a millisecond.
 */
static void backoff(unsigned int round)
{
	if (round < 64) {
		for (int i = 0; i < 32; i++)
			cpu_relax();
	} else if (round < 128) {
		sched_yield();
	} else {
		rw__sleep_ns(round < 16384 ? 5000 : 1000000);
	}
}

/* One grace period, G1 to G6. Caller holds gp.lock. */
static void gp_run(void)
{
	unsigned long seq = __atomic_load_n(&gp.seq, __ATOMIC_RELAXED);
	unsigned int round = 0;

	/* G1 */
	__atomic_store_n(&gp.seq, seq + 1, __ATOMIC_RELAXED);
	rw__full_barrier();
	/* G2 */
	barrier_all_threads();
	/* G3, then G4 */
	if (registry_check(true))
		for (round = 0; registry_check(false); round++)
			backoff(round);
	/* G5 */
	barrier_all_threads();
	/* G6 */
	__atomic_store_n(&gp.seq, seq + 2, __ATOMIC_RELEASE);
}

unsigned long rw__rs_get_state(void)
{
	unsigned long c;

	/* The caller's updates come before the grace period's scan. */
	rw__full_barrier();
	c = (__atomic_load_n(&gp.seq, __ATOMIC_ACQUIRE) + 3) & ~1UL;
	return c ? c : 2;
}

bool rw__rs_poll_state(unsigned long cookie)
{
	if (cookie == 0)
		return true;
	if ((long)(__atomic_load_n(&gp.seq, __ATOMIC_ACQUIRE) - cookie) < 0)
		return false;
	rw__full_barrier();
	return true;
}

int rw__rs_synchronize(void)
{
	unsigned long cookie;

	if (rw__rs_in_read_side())
		return -EDEADLK;
	cookie = rw__rs_get_state();
	(void)rw__lock_acquire(&gp.lock);
	while (!rw__rs_poll_state(cookie))
		gp_run();
	rw__lock_release(&gp.lock);
	return 0;
}

/* --- fork ------------------------------------------------------------------
 * Called by src/rcu.c's handlers (RCU's level), after liburcu's: the
 * call_rcu thread, which runs grace periods of this read side, is paused
 * first.
 */
void rw__rs_atfork_prepare(void)
{
	gp.fork_locked = rw__lock_acquire(&gp.lock) == 0;
}

void rw__rs_atfork_parent(void)
{
	if (gp.fork_locked)
		rw__lock_release(&gp.lock);
}

void rw__rs_atfork_child(void)
{
	struct rw__rs_thread *self = &rw__rs_self;

	/* One thread, no holder: the other threads' TLS is gone. */
	rw__lock_reset(&registry.lock);
	registry.head.priv[0] = registry.head.priv[1] = &registry.head;
	RS_LISTED(self) = 0;
	if (self->registered) {
		list_add(self);
		RS_TID(self) = (void *)(uintptr_t)rw__gettid();
	}
	/* A new mm: membarrier must be registered again. */
	if (gp.barrier > 0)
		gp.barrier = 0;
	if (gp.fork_locked)
		rw__lock_reset(&gp.lock);
}
