/* SPDX-License-Identifier: MIT */
/*
 * Thread walker and cross-thread calls: the user-space on_each_cpu().
 *
 * Threads are listed from /proc/self/task and reached with a real-time
 * signal. One call runs at a time (call_lock). The state that signal
 * handlers read is static (struct call_state cs), so a handler that arrives
 * late, even after the call that sent it returned, only ever reads memory
 * that exists; the per-call allocations (the slot chunks) are reached only
 * through cs.head after the handler checked, under an in-handler reference
 * (cs.inflight), that its call is still the active one, and they are freed
 * only after the references drained.
 *
 * Each signalled thread owns one slot. Its state moves as follows; the
 * caller and the handler race only on the transitions out of PENDING, which
 * are compare-and-swaps, so exactly one of them wins:
 *
 *	UNSENT    -> PENDING    caller, just before sending the signal
 *	PENDING   -> UNSENT     caller, the send failed (retried later)
 *	PENDING   -> RUNNING    handler, about to run fn
 *	RUNNING   -> DONE       handler, fn returned
 *	PENDING   -> DROPPED    caller, the thread exited
 *	UNSENT or
 *	PENDING   -> CANCELLED  caller, the timeout expired (a straggler)
 *
 * rw_stop_threads() is a call of the same kind whose function, in the other
 * threads, is stop_park(): the thread stays in the handler (its slot stays
 * RUNNING) until the caller lets it go. A second state machine, shared by
 * all parked threads (struct stop_state ss), runs on top of the slots; see
 * "Stopping every thread" below.
 */
#include "threads.h"

#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* Listings that find new threads before the call gives up with -EAGAIN. */
#define MAX_ROUNDS 64
/* First and longest interval between checks for exited threads. */
#define POLL_MIN_NS 1000000ull
#define POLL_MAX_NS 8000000ull
/* Attempts at a listing that no thread exit disturbed (see read_tasks). */
#define LIST_TRIES 1000
/* Checks of a shared word before a waiter sleeps on it (about 2-10 us). */
#define SPIN_LOOPS 200

enum slot_state {
	SLOT_UNSENT,
	SLOT_PENDING,
	SLOT_RUNNING,
	SLOT_DONE,
	SLOT_DROPPED,
	SLOT_CANCELLED,
};

/*
 * What a thread parked by rw_stop_threads() acknowledged. The thread and
 * the caller race on leaving ACK_PREPARE (the thread to ACK_DISABLE, the
 * caller, at its deadline, to ACK_LATE), with compare-and-swaps: a thread
 * either acknowledged in time or is reported as a straggler, never both.
 */
enum stop_ack {
	ACK_NONE,
	ACK_PREPARE, /* parked */
	ACK_DISABLE, /* parked with signals blocked */
	ACK_LATE,    /* parked, but did not block signals in time */
};

struct slot {
	pid_t tid;	   /* written before the chunk is published */
	_Atomic int state; /* enum slot_state; see the table above */
	_Atomic int ack;   /* enum stop_ack; rw_stop_threads() only */
};

/*
 * The threads found by one listing round, sorted by tid. A chunk never
 * moves once published, so a handler can hold a pointer into it while the
 * caller appends more chunks. Slot number base + i of the call is slots[i].
 */
struct chunk {
	_Atomic(struct chunk *) next; /* written by the caller, release */
	uint32_t base;
	uint32_t count;
	struct slot slots[];
};

/*
 * The shared state of the current call. One static instance: handlers may
 * read it at any time, even long after the call that signalled them.
 */
static struct call_state {
	/*
	 * Sequence number of the active call, 0 when none. Written by the
	 * caller under call_lock; read by handlers after taking a reference
	 * in inflight (the pair is sequentially consistent, see handler()).
	 */
	_Atomic uint32_t active_seq;
	/*
	 * Handlers (and in_fn_here()) currently looking at the call state.
	 * The caller frees the chunks only after clearing active_seq and
	 * seeing inflight drop to 0.
	 */
	_Atomic int inflight;
	/* Slots that reached DONE; a futex word the caller sleeps on. */
	_Atomic int answered;
	/*
	 * Answers the caller waits for, stored by the caller before it
	 * sleeps on answered: only the answer that reaches it wakes the
	 * caller, not every one (with many threads on few CPUs, each wake
	 * costs a context switch).
	 */
	_Atomic int want;
	/* First chunk of the active call; caller-written, under call_lock. */
	_Atomic(struct chunk *) head;
	/*
	 * The function and its argument, or stop set for rw_stop_threads()
	 * (the handler then parks in stop_park() instead of calling fn).
	 * Written under call_lock while no call is active, published by the
	 * release store to active_seq.
	 */
	rw_thread_fn fn;
	void *arg;
	bool stop;
	/*
	 * rw__on_threads(): fn_uc instead of fn (it gets the interrupted
	 * context, NULL in the caller), and the filter that picks the threads
	 * to signal (the others count as dropped). Like fn, under call_lock.
	 */
	rw__thread_uc_fn fn_uc;
	bool (*filter)(pid_t tid, void *farg);
	void *farg;
	/* Last sequence number handed out; under call_lock. */
	uint32_t last_seq;
} cs;

/*
 * The phases of rw_stop_threads(), the kernel's multi_stop_state. Each one
 * advances when the last thread has acknowledged the one before: the
 * acknowledgement that completes a phase wakes the caller, and the caller
 * alone moves ss.phase on (so that abandoning a stop is one store, with no
 * race against a thread moving it).
 *
 *	NONE    -> PREPARE  caller, before the first signal
 *	PREPARE -> DISABLE  caller, once every listed thread is parked and a
 *	                    new listing of /proc/self/task shows no other one
 *	DISABLE -> RUN      caller, once every parked thread blocked signals
 *	RUN     -> EXIT     caller, fn returned
 *	PREPARE or
 *	DISABLE -> ABORT    caller, a thread did not answer in time (or an
 *	                    error): fn does not run
 *	EXIT or
 *	ABORT   -> NONE     caller, once every parked thread left the handler
 */
enum stop_phase {
	STOP_NONE,
	STOP_PREPARE,
	STOP_DISABLE,
	STOP_RUN,
	STOP_EXIT,
	STOP_ABORT,
};

/*
 * The shared state of the current stop. Static like cs, and only
 * meaningful while cs.stop is set for the active call. Parked threads spin
 * on, then sleep on, phase; it has a cache line of its own so that the
 * acknowledgements written to the counters do not disturb the spinners.
 */
static struct stop_state {
	/* enum stop_phase; written by the caller only, under call_lock. */
	alignas(RW_CACHELINE) _Atomic int phase;
	/* PREPARE acknowledgements: threads parked. The caller sleeps on it. */
	alignas(RW_CACHELINE) _Atomic int arrived;
	/* Arrivals the caller waits for; the one that reaches it wakes it. */
	_Atomic int want;
	/* DISABLE acknowledgements still missing. The caller sleeps on it. */
	_Atomic int left;
} ss;

/*
 * Online CPUs, read once at load. Parked threads spin only while fewer of
 * them than CPUs spin (beyond that spinning only takes the CPU from the
 * threads that still have to arrive).
 */
static int ncpus = 1;

/* Serializes calls and signal changes. Nests inside nothing. */
static struct rw__lock call_lock = RW__LOCK_INIT;

/*
 * The signal in use, 0 until first resolved. Changes only under call_lock
 * and only while the handler is not installed.
 */
static _Atomic int cur_signo;
/* Whether the handler is installed; written under call_lock. */
static _Atomic bool installed;
/*
 * Whether REWIRE_SIGNAL was set but unusable. Set at most once, by whoever
 * resolves the signal first (possibly a constructor that runs before
 * logging is set up), and reported when the handler is installed.
 */
static _Atomic bool env_rejected;
/* Whether this thread's atfork prepare handler took call_lock. */
static __thread bool fork_holds_lock;

/* The caller's private bookkeeping for one call. */
struct call {
	pid_t pid;
	pid_t self;
	uid_t uid;
	int signo;
	uint32_t seq;
	struct chunk *tail;
	size_t total;	  /* slots in all chunks */
	size_t dropped;	  /* slots in DROPPED */
	size_t cancelled; /* slots in CANCELLED */
	size_t late;	  /* slots in ACK_LATE (rw_stop_threads()) */
	bool send_failed_logged;
};

static int signo_default(void)
{
	const char *env = getenv("REWIRE_SIGNAL");
	char *end;
	long v;

	if (!env || !*env)
		return SIGRTMAX - 6;
	errno = 0;
	v = strtol(env, &end, 10);
	if (errno || *end || v < SIGRTMIN || v > SIGRTMAX) {
		atomic_store(&env_rejected, true);
		return SIGRTMAX - 6;
	}
	return (int)v;
}

static int signo_resolve(void)
{
	int signo = atomic_load(&cur_signo);
	int expect = 0;

	if (RW_LIKELY(signo))
		return signo;
	signo = signo_default();
	if (!atomic_compare_exchange_strong(&cur_signo, &expect, signo))
		signo = expect;
	return signo;
}

RW_EXPORT int rw_threads_signal(void)
{
	return signo_resolve();
}

/* Find slot number idx of the active call; NULL if it does not exist. */
static struct slot *slot_by_index(uint32_t idx)
{
	struct chunk *c = atomic_load_explicit(&cs.head, memory_order_acquire);

	for (; c; c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		if (idx >= c->base && idx - c->base < c->count)
			return &c->slots[idx - c->base];
	}
	return NULL;
}

static struct slot *chunk_find(struct chunk *c, pid_t tid)
{
	size_t lo = 0, hi = c->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->slots[mid].tid == tid)
			return &c->slots[mid];
		if (c->slots[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct slot *slot_by_tid(pid_t tid)
{
	struct chunk *c = atomic_load_explicit(&cs.head, memory_order_acquire);
	struct slot *s;

	for (; c; c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		s = chunk_find(c, tid);
		if (s)
			return s;
	}
	return NULL;
}

/*
 * Whether the calling thread is inside fn for the active call (in its
 * handler, or in a handler that interrupted it there). A new call from there
 * would wait for the lock that the active caller holds while the caller
 * waits for this thread: a deadlock, which call_lock_acquire() reports.
 */
static bool in_fn_here(void)
{
	bool ret = false;
	struct slot *s;

	atomic_fetch_add(&cs.inflight, 1);
	if (atomic_load(&cs.active_seq) != 0) {
		s = slot_by_tid(rw__gettid());
		ret = s && atomic_load(&s->state) == SLOT_RUNNING;
	}
	atomic_fetch_sub_explicit(&cs.inflight, 1, memory_order_release);
	return ret;
}

static int call_lock_acquire(void)
{
	if (in_fn_here())
		return -EDEADLK;
	return rw__lock_acquire(&call_lock);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * Wait until *word differs from val and return its new value: check it
 * spins times, then sleep on the futex. Async-signal-safe.
 */
static int wait_change(_Atomic int *word, int val, int spins)
{
	int v, i;

	for (i = 0; i < spins; i++) {
		v = atomic_load(word);
		if (v != val)
			return v;
		cpu_relax();
	}
	for (;;) {
		v = atomic_load(word);
		if (v != val)
			return v;
		rw__futex(word, FUTEX_WAIT_PRIVATE, val, NULL);
	}
}

/*
 * The signals that threads block while fn runs: all but the ones that
 * report faults (the kernel kills a thread that faults with the signal of
 * the fault blocked) and SIGTRAP, which rewire's int3 sites need in every
 * thread. Raw kernel masks: no libc lock, no interposed sigprocmask().
 */
static void block_signals(uint64_t *old)
{
	uint64_t set = ~0ull;

	set &= ~(1ull << (SIGSEGV - 1) | 1ull << (SIGBUS - 1) |
		 1ull << (SIGILL - 1) | 1ull << (SIGFPE - 1) |
		 1ull << (SIGTRAP - 1) | 1ull << (SIGSYS - 1));
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, old, sizeof(set)))
		*old = 0; /* cannot fail with these arguments */
}

static void restore_signals(const uint64_t *old)
{
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, old, NULL, sizeof(*old));
}

/*
 * A thread parked by rw_stop_threads(), in the handler, its slot RUNNING.
 * The thread's side of the phases (the caller's side is rw_stop_threads()):
 *
 * 1. PREPARE: acknowledge (ack, then arrived; the arrival the caller waits
 *    for wakes it) and wait for the next phase. Signals other than
 *    rewire's are still taken meanwhile, so a long wait for a late thread
 *    does not hold off the program's own handlers.
 * 2. DISABLE: block signals, acknowledge (the last acknowledgement wakes
 *    the caller) and wait for EXIT or ABORT. RUN passes while we wait.
 *    ABORT instead of DISABLE: leave at once.
 * 3. EXIT or ABORT: restore the signal mask and return; the handler marks
 *    the slot DONE.
 *
 * Every access to ss is sequentially consistent: what this thread did
 * before its acknowledgements happens before fn, and fn happens before
 * the caller's store of EXIT, which this thread reads before it resumes.
 */
static void stop_park(struct slot *s)
{
	int n, phase, expect = ACK_PREPARE, spins = 0;
	uint64_t old;

	atomic_store(&s->ack, ACK_PREPARE);
	n = atomic_fetch_add(&ss.arrived, 1) + 1;
	if (n >= atomic_load(&ss.want))
		rw__futex(&ss.arrived, FUTEX_WAKE_PRIVATE, 1, NULL);
	if (n < ncpus)
		spins = SPIN_LOOPS;
	phase = wait_change(&ss.phase, STOP_PREPARE, spins);
	if (phase != STOP_DISABLE)
		return; /* ABORT: RUN and EXIT need our acknowledgement */
	block_signals(&old);
	if (atomic_compare_exchange_strong(&s->ack, &expect, ACK_DISABLE) &&
	    atomic_fetch_sub(&ss.left, 1) == 1)
		rw__futex(&ss.left, FUTEX_WAKE_PRIVATE, 1, NULL);
	while (phase != STOP_EXIT && phase != STOP_ABORT)
		phase = wait_change(&ss.phase, phase, spins);
	restore_signals(&old);
}

/*
 * The signal handler. si_value carries (sequence number << 32 | slot
 * number), so a signal of a finished call is recognized and ignored.
 *
 * 1. Take a reference (inflight), then read active_seq. Both are
 *    sequentially consistent, and the caller clears active_seq before it
 *    waits for inflight to reach 0: either the caller sees our reference and
 *    keeps the chunks alive, or we see that the call is over.
 * 2. Claim the slot (PENDING -> RUNNING); a cancelled slot stays cancelled.
 * 3. Run fn (or park, for rw_stop_threads()), mark the slot DONE and
 *    count the answer.
 * 4. Drop the reference, then wake the caller if it waits for this answer
 *    (cs is static: touching it after the reference is gone is safe, and
 *    a caller that preempts us on the wake finds the reference gone).
 */
static void handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	uint64_t v;
	uint32_t seq;
	struct slot *s;
	int expect = SLOT_PENDING, n;

	(void)sig;
	if (!si || si->si_code != SI_QUEUE || si->si_pid != getpid())
		goto out;
	v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
	seq = (uint32_t)(v >> 32);
	if (!seq)
		goto out;
	atomic_fetch_add(&cs.inflight, 1);
	if (atomic_load(&cs.active_seq) != seq)
		goto put;
	s = slot_by_index((uint32_t)v);
	if (!s || s->tid != rw__gettid())
		goto put;
	if (!atomic_compare_exchange_strong(&s->state, &expect, SLOT_RUNNING))
		goto put;
	if (cs.stop)
		stop_park(s);
	else if (cs.fn_uc)
		cs.fn_uc(cs.arg, uc);
	else
		cs.fn(cs.arg);
	atomic_store(&s->state, SLOT_DONE);
	n = atomic_fetch_add(&cs.answered, 1) + 1;
	atomic_fetch_sub_explicit(&cs.inflight, 1, memory_order_release);
	if (n >= atomic_load(&cs.want))
		rw__futex(&cs.answered, FUTEX_WAKE_PRIVATE, 1, NULL);
	goto out;
put:
	atomic_fetch_sub_explicit(&cs.inflight, 1, memory_order_release);
out:
	errno = saved_errno;
}

static bool handler_is_ours(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == handler;
}

/*
 * Install the handler once, and check on every call that it is still the
 * one installed: a program that takes the signal afterwards would make
 * every call wait for answers that never come. call_lock held.
 */
static int install_handler(void)
{
	struct sigaction sa, old;
	int signo = signo_resolve();

	if (sigaction(signo, NULL, &old) != 0)
		return -errno;
	if (atomic_load(&installed)) {
		if (handler_is_ours(&old))
			return 0;
		rw__log("the program replaced the handler of rewire's signal "
			"%d; set REWIRE_SIGNAL to a free real-time signal",
			signo);
		return -RW_ERR_SIGNAL_REPLACED;
	}
	if (atomic_load(&env_rejected))
		rw__log("REWIRE_SIGNAL is not a number in [%d, %d]; ignored",
			SIGRTMIN, SIGRTMAX);
	if (!handler_is_ours(&old) &&
	    ((old.sa_flags & SA_SIGINFO) ||
	     (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))) {
		rw__log("signal %d already has a handler; set REWIRE_SIGNAL "
			"to a free real-time signal",
			signo);
		return -RW_ERR_SIGNAL_BUSY;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(signo, &sa, NULL) != 0)
		return -errno;
	atomic_store(&installed, true);
	rw__log("cross-thread signal %d installed", signo);
	return 0;
}

RW_EXPORT int rw_threads_set_signal(int signo)
{
	int ret;

	if (signo < SIGRTMIN || signo > SIGRTMAX)
		return -EINVAL;
	ret = call_lock_acquire();
	if (ret)
		return ret;
	if (atomic_load(&installed) && signo_resolve() != signo)
		ret = -EBUSY;
	else
		atomic_store(&cur_signo, signo);
	rw__lock_release(&call_lock);
	return ret;
}

/*
 * Memory for a call comes from mmap(), never from malloc(): during a stop
 * the caller lists /proc/self/task and adds slots while other threads are
 * parked, and a parked thread may hold a lock of malloc (or of a sanitizer's
 * allocator) that the caller would then wait for forever. mmap() takes no
 * user-space lock and is async-signal-safe. Zeroed, like calloc().
 */
#define MAP_HDR 16 /* keeps the 16-byte alignment of malloc() */

static void *map_alloc(size_t n)
{
	size_t size = n + MAP_HDR;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, &size, sizeof(size));
	return p + MAP_HDR;
}

static void map_free(void *q)
{
	char *p = q;
	size_t size;

	if (!p)
		return;
	p -= MAP_HDR;
	memcpy(&size, p, sizeof(size));
	munmap(p, size);
}

/* Listing /proc/self/task. */

struct tid_vec {
	pid_t *v;
	size_t n, cap;
};

static int tid_vec_push(struct tid_vec *t, pid_t tid)
{
	pid_t *nv;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;

		nv = map_alloc(cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		if (t->n)
			memcpy(nv, t->v, t->n * sizeof(*nv));
		map_free(t->v);
		t->v = nv;
		t->cap = cap;
	}
	t->v[t->n++] = tid;
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int parse_dents(struct tid_vec *t, const char *buf, long len)
{
	const struct linux_dirent64 *d;
	long pos = 0;
	int ret;

	while (pos < len) {
		long tid = 0;
		const char *p;

		d = (const void *)(buf + pos);
		pos += d->d_reclen;
		for (p = d->d_name; *p >= '0' && *p <= '9'; p++)
			tid = tid * 10 + (*p - '0');
		if (*p || p == d->d_name || tid <= 0)
			continue; /* "." and ".." */
		ret = tid_vec_push(t, (pid_t)tid);
		if (ret)
			return ret;
	}
	return 0;
}

static int cmp_tid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static void sort_unique(struct tid_vec *t)
{
	size_t i, n = 0;

	if (!t->n)
		return;
	qsort(t->v, t->n, sizeof(*t->v), cmp_tid);
	for (i = 0; i < t->n; i++) {
		if (!n || t->v[n - 1] != t->v[i])
			t->v[n++] = t->v[i];
	}
	t->n = n;
}

/*
 * Whether the walk of one getdents64() call (buf, len bytes) provably
 * reached the end of the thread list; see read_tasks(). Counts the threads
 * it named, and checks that the kernel's final position (the last entry's
 * d_off: 2 for "." and "..", plus one per thread visited, named or not) is
 * accounted for by them, and that the last thread named is still alive.
 */
static bool walk_complete(pid_t pid, const char *buf, long len)
{
	const struct linux_dirent64 *d, *last = NULL;
	long pos = 0, named = 0, tid = 0;
	const char *p;

	while (pos < len) {
		d = (const void *)(buf + pos);
		pos += d->d_reclen;
		last = d;
		if (d->d_name[0] >= '0' && d->d_name[0] <= '9')
			named++;
	}
	if (!last || !named || last->d_off != 2 + named) {
		rw__log("listing skipped a thread; taking it again");
		return false;
	}
	for (p = last->d_name; *p >= '0' && *p <= '9'; p++)
		tid = tid * 10 + (*p - '0');
	if (*p || p == last->d_name || tid <= 0)
		return false;
	/* A zombie counts as alive: it stays in the list. */
	if (tid == rw__gettid() || syscall(SYS_tgkill, pid, tid, 0) == 0 ||
	    errno != ESRCH)
		return true;
	rw__log("listing stopped at thread %ld, which exited; taking it again",
		tid);
	return false;
}

/*
 * Read the thread ids of /proc/self/task into t, sorted and unique, and
 * make sure the listing is complete: every thread that lived through it is
 * in it.
 *
 * The kernel (proc_task_readdir) walks the thread group's list under RCU
 * from its head. Threads join the list at its end, and a thread that leaves
 * it keeps its link forward, so a walk that goes on to the end finds every
 * thread that was in the list throughout. But the walk stops early in two
 * cases: when the thread at its cursor has left the list (it no longer
 * trusts the link), and right after a thread that exited between being
 * found and being named (which it skips). A second getdents64() then
 * resumes by position, which the threads gone in front of the cursor have
 * shifted: it can skip live threads, or return nothing at all, and the
 * listing looks complete.
 *
 * So the whole list is read in one getdents64() call (the buffer grows
 * until it has room to spare), and that walk is accepted only when
 * walk_complete() proves that it ended at the end of the list:
 *
 * 1. It skipped no thread: the kernel's final position, the last entry's
 *    d_off, is 2 plus the number of threads named.
 * 2. The last thread it named is still in the list (tgkill with signal 0
 *    succeeds: the thread id stays hashed exactly as long as the thread is
 *    in the list), so the kernel did not stop at a cursor that had left.
 *
 * Otherwise the listing is taken again. Each attempt fails only when a
 * thread exits at the very moment the walk passes it; a process whose
 * threads do that LIST_TRIES times in a row gets -EAGAIN.
 */
static int read_tasks(struct tid_vec *t)
{
	size_t size = 16384;
	pid_t pid = getpid();
	char *buf = NULL;
	int fd = -1, ret = 0, tries;
	long n;

	t->v = NULL;
	t->n = t->cap = 0;
	for (tries = 0;; tries++) {
		if (tries == LIST_TRIES) {
			rw__log("threads kept exiting during %d listings of "
				"/proc/self/task",
				LIST_TRIES);
			ret = -EAGAIN;
			goto out;
		}
		if (!buf) {
			buf = map_alloc(size);
			if (!buf) {
				ret = -ENOMEM;
				goto out;
			}
		}
		fd = open("/proc/self/task",
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			goto out;
		}
		n = syscall(SYS_getdents64, fd, buf, size);
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		close(fd);
		fd = -1;
		/* Room for one more entry of the longest kind? */
		if ((size_t)n + 512 > size) {
			map_free(buf);
			buf = NULL;
			size *= 2;
			tries--; /* not a failed attempt */
			continue;
		}
		if (walk_complete(pid, buf, n))
			break;
	}
	ret = parse_dents(t, buf, n);
	if (!ret)
		sort_unique(t);
out:
	if (fd >= 0)
		close(fd);
	map_free(buf);
	if (ret) {
		map_free(t->v);
		t->v = NULL;
		t->n = t->cap = 0;
	}
	return ret;
}

RW_EXPORT int rw_threads_list(struct rw_tid_list *out)
{
	struct tid_vec t;
	int ret;

	if (!out)
		return -EINVAL;
	out->tids = NULL;
	out->count = 0;
	ret = read_tasks(&t);
	if (ret)
		return ret;
	/* The caller frees the list with free(). */
	if (t.n) {
		out->tids = malloc(t.n * sizeof(*out->tids));
		if (!out->tids) {
			map_free(t.v);
			return -ENOMEM;
		}
		memcpy(out->tids, t.v, t.n * sizeof(*out->tids));
	}
	out->count = t.n;
	map_free(t.v);
	return 0;
}

RW_EXPORT void rw_tid_list_free(struct rw_tid_list *list)
{
	if (!list)
		return;
	free(list->tids);
	list->tids = NULL;
	list->count = 0;
}

/* One cross-thread call. */

/*
 * Whether thread tid has exited although it is still listed and still
 * accepts signals (tgkill succeeds): a zombie, which is what the thread
 * group leader stays after pthread_exit() in main until the whole process
 * exits, and what a traced thread stays until its tracer reaps it; or dead
 * (X), on its way out of the list. Such a thread runs nothing and would
 * never answer. One read of /proc/self/task/TID/stat; a thread that is
 * gone altogether counts as dead too.
 */
static bool thread_dead(pid_t tid)
{
	int state = rw__task_state(tid);

	return state == -ESRCH || state == 'Z' || state == 'X';
}

/*
 * The process whose main thread poll_pending() found exited (a zombie),
 * so that later calls do not wait a poll for it; the pid, so that a
 * forked child does not inherit the finding. Under call_lock.
 */
static pid_t dead_leader;

static bool tid_known(pid_t tid)
{
	return slot_by_tid(tid) != NULL;
}

/* Queue the signal for slot idx; returns 0 or -1 with errno set. */
static long queue_signal(struct call *c, pid_t tid, uint32_t idx)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = c->signo;
	si.si_code = SI_QUEUE;
	si.si_pid = c->pid;
	si.si_uid = c->uid;
	si.si_value.sival_ptr =
		(void *)(uintptr_t)((uint64_t)c->seq << 32 | idx);
	return syscall(SYS_rt_tgsigqueueinfo, c->pid, tid, c->signo, &si);
}

/*
 * Send the signal for slot idx. The slot turns PENDING before the signal
 * leaves, because the handler may run before the system call returns.
 */
static void send_one(struct call *c, struct slot *s, uint32_t idx)
{
	int err;

	atomic_store(&s->state, SLOT_PENDING);
	if (queue_signal(c, s->tid, idx) == 0)
		return;
	err = errno;
	/* No signal left, so no handler can have claimed the slot. */
	if (err == ESRCH) {
		atomic_store(&s->state, SLOT_DROPPED);
		c->dropped++;
		rw__log("thread %d exited before it was signalled", s->tid);
		return;
	}
	/*
	 * EAGAIN: the queue of real-time signals is full (RLIMIT_SIGPENDING),
	 * typically because stragglers hold old signals. Retry at each poll.
	 */
	atomic_store(&s->state, SLOT_UNSENT);
	if (!c->send_failed_logged) {
		c->send_failed_logged = true;
		rw__log("signalling thread %d failed (errno %d); will retry",
			s->tid, err);
	}
}

/*
 * Add a chunk for the fresh tids (sorted), publish it, signal them.
 */
static int add_chunk(struct call *c, const pid_t *tids, size_t n)
{
	struct chunk *ch;
	size_t i;

	if (c->total + n > UINT32_MAX)
		return -ENOMEM;
	ch = map_alloc(sizeof(*ch) + n * sizeof(ch->slots[0]));
	if (!ch)
		return -ENOMEM;
	ch->base = (uint32_t)c->total;
	ch->count = (uint32_t)n;
	for (i = 0; i < n; i++) {
		ch->slots[i].tid = tids[i];
		atomic_init(&ch->slots[i].state, SLOT_UNSENT);
		atomic_init(&ch->slots[i].ack, ACK_NONE);
	}
	if (c->tail)
		atomic_store_explicit(&c->tail->next, ch, memory_order_release);
	else
		atomic_store_explicit(&cs.head, ch, memory_order_release);
	c->tail = ch;
	c->total += n;
	for (i = 0; i < n; i++) {
		if (cs.filter && !cs.filter(tids[i], cs.farg)) {
			/* Not to be signalled: counts as gone. */
			atomic_store(&ch->slots[i].state, SLOT_DROPPED);
			c->dropped++;
			continue;
		}
		/* A zombie leader stays one until the process exits. */
		if (tids[i] == c->pid && dead_leader == c->pid) {
			atomic_store(&ch->slots[i].state, SLOT_DROPPED);
			c->dropped++;
			continue;
		}
		send_one(c, &ch->slots[i], ch->base + (uint32_t)i);
	}
	return 0;
}

/*
 * One listing round: list /proc/self/task, and signal the threads that
 * are not known yet (*fresh of them).
 */
static int signal_round(struct call *c, int round, size_t *fresh)
{
	struct tid_vec t;
	size_t i, n = 0;
	int ret;

	*fresh = 0;
	ret = read_tasks(&t);
	if (ret)
		return ret;
	/* Keep only the tids not signalled yet, in place. */
	for (i = 0; i < t.n; i++) {
		if (t.v[i] != c->self && !tid_known(t.v[i]))
			t.v[n++] = t.v[i];
	}
	if (n && round >= MAX_ROUNDS) {
		rw__log("threads still appearing after %d listings",
			MAX_ROUNDS);
		map_free(t.v);
		return -EAGAIN;
	}
	ret = n ? add_chunk(c, t.v, n) : 0;
	map_free(t.v);
	if (!ret)
		*fresh = n;
	return ret;
}

/*
 * Signal every thread, listing /proc/self/task until a listing shows no
 * thread that has not been signalled yet. fn runs in the calling thread
 * after the first round, while the others are busy with theirs.
 */
static int signal_all(struct call *c)
{
	size_t fresh;
	int round, ret;

	for (round = 0;; round++) {
		ret = signal_round(c, round, &fresh);
		if (ret)
			return ret;
		if (round == 0) {
			if (cs.fn_uc)
				cs.fn_uc(cs.arg, NULL);
			else
				cs.fn(cs.arg);
		}
		if (!fresh)
			return 0;
	}
}

#ifdef RW_TSAN
/*
 * ThreadSanitizer runs a background thread of its own that blocks every
 * signal with a raw system call and never runs application code; it would
 * turn every call into a timeout. In TSan builds only, a thread is taken
 * for such a runtime thread, and dropped like an exited one, when our
 * signal is still pending in the kernel for it while it blocks our signal
 * and every standard signal but SIGKILL and SIGSTOP, for at least
 * SAN_GRACE_NS. The pending test keeps out the threads that TSan is
 * running deferred handlers in (TSan blocks everything meanwhile, but the
 * kernel has already delivered the signal); the grace period and the
 * state keep out the threads that glibc is still creating (they start with
 * every signal blocked, and on a loaded machine may wait longer than the
 * grace period for a CPU: they are runnable, where the runtime thread
 * sleeps). Threads found so are remembered, so later calls drop them at the
 * first poll.
 */
#define SAN_GRACE_NS 20000000ull

/* Sanitizer runtime threads seen before; under call_lock. */
static pid_t san_tids[4];

static bool stuck_all_blocked(pid_t tid, int signo)
{
	char buf[2048], *p;
	unsigned long long blk, pnd;
	int sig;

	if (rw__task_read(tid, "status", buf, sizeof(buf)) <= 0)
		return false;
	p = strstr(buf, "State:");
	if (!p || p[strspn(p + 6, " \t") + 6] == 'R')
		return false;
	p = strstr(buf, "SigPnd:");
	if (!p)
		return false;
	pnd = strtoull(p + 7, NULL, 16);
	p = strstr(buf, "SigBlk:");
	if (!p)
		return false;
	blk = strtoull(p + 7, NULL, 16);
	if (!(pnd & blk & 1ull << (signo - 1)))
		return false;
	for (sig = 1; sig < 32; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP &&
		    !(blk & 1ull << (sig - 1)))
			return false;
	}
	return true;
}

static bool is_sanitizer_thread(pid_t tid, int signo, uint64_t waited_ns)
{
	size_t i, known = RW_ARRAY_SIZE(san_tids);

	for (i = 0; i < RW_ARRAY_SIZE(san_tids); i++) {
		if (san_tids[i] == tid)
			known = i;
	}
	if (known == RW_ARRAY_SIZE(san_tids) && waited_ns < SAN_GRACE_NS)
		return false;
	if (!stuck_all_blocked(tid, signo)) {
		if (known < RW_ARRAY_SIZE(san_tids))
			san_tids[known] = 0;
		return false;
	}
	for (i = 0;
	     known == RW_ARRAY_SIZE(san_tids) && i < RW_ARRAY_SIZE(san_tids);
	     i++) {
		if (!san_tids[i]) {
			san_tids[i] = tid;
			break;
		}
	}
	return true;
}

/*
 * ThreadSanitizer defers asynchronous signals and keeps one pending
 * instance per signal number: while a thread has not yet run the handler
 * for a late signal of an abandoned call, the signal of the current call
 * is dropped, and the thread would never answer. In TSan builds only, the
 * signal is sent again at each poll to the threads that have not answered.
 * Extra signals are harmless: the handler claims a slot with a
 * compare-and-swap, so only one of them runs fn (or parks).
 */
static void san_resend(struct call *c, struct slot *s, uint32_t idx)
{
	if (atomic_load(&s->state) == SLOT_PENDING)
		queue_signal(c, s->tid, idx);
}
#else
static bool is_sanitizer_thread(pid_t tid, int signo, uint64_t waited_ns)
{
	(void)tid;
	(void)signo;
	(void)waited_ns;
	return false;
}

static void san_resend(struct call *c, struct slot *s, uint32_t idx)
{
	(void)c;
	(void)s;
	(void)idx;
}
#endif

/*
 * Resend the signals that could not be sent, and drop the threads that
 * exited without answering: gone (their pending signal died with them) or
 * zombies (thread_dead(): checked only for the threads still pending at a
 * poll, so that it costs nothing to the threads that answer at once). The
 * main thread found so is remembered (dead_leader): after pthread_exit()
 * in main, only the first call waits a poll for it.
 */
static void poll_pending(struct call *c, uint64_t waited_ns)
{
	struct chunk *ch;
	uint32_t i;
	int expect;
	bool zombie;

	for (ch = atomic_load(&cs.head); ch; ch = atomic_load(&ch->next)) {
		for (i = 0; i < ch->count; i++) {
			struct slot *s = &ch->slots[i];
			int st = atomic_load(&s->state);

			if (st == SLOT_UNSENT) {
				send_one(c, s, ch->base + i);
				continue;
			}
			if (st != SLOT_PENDING)
				continue;
			zombie = false;
			if ((syscall(SYS_tgkill, c->pid, s->tid, 0) == 0 ||
			     errno != ESRCH) &&
			    !(zombie = thread_dead(s->tid)) &&
			    !is_sanitizer_thread(s->tid, c->signo, waited_ns)) {
				san_resend(c, s, ch->base + i);
				continue;
			}
			expect = SLOT_PENDING;
			if (!atomic_compare_exchange_strong(&s->state, &expect,
							    SLOT_DROPPED))
				continue;
			c->dropped++;
			if (zombie && s->tid == c->pid)
				dead_leader = c->pid;
			rw__log("thread %d %s; not waiting for it", s->tid,
				zombie ? "has exited (a zombie)"
				       : "exited or is a sanitizer thread");
		}
	}
}

static bool all_answered(struct call *c, int answered)
{
	return (size_t)answered + c->dropped + c->cancelled >= c->total;
}

static void futex_wait_ns(_Atomic int *word, int val, uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull),
			       (long)(ns % 1000000000ull) };

	rw__futex(word, FUTEX_WAIT_PRIVATE, val, &ts);
}

/*
 * Spin for a short while until every slot is answered (per *word) or
 * dropped; returns the last value of *word.
 */
static int spin_answers(struct call *c, _Atomic int *word)
{
	int a = atomic_load(word), i;

	for (i = 0; ncpus > 1 && i < SPIN_LOOPS && !all_answered(c, a); i++) {
		cpu_relax();
		a = atomic_load(word);
	}
	return a;
}

/*
 * Wait until every slot is answered (*word counts the answers: DONE slots
 * for rw_on_each_thread(), parked threads for rw_stop_threads()) or
 * dropped, or until the deadline (0: none). Spins briefly, then sleeps on
 * *word, waking every few milliseconds to drop the threads that exited. If
 * want is not NULL, the answers still awaited are stored there before each
 * sleep, for the answering threads to wake the caller only with the last.
 */
static int wait_answers(struct call *c, _Atomic int *word, _Atomic int *want,
			uint64_t deadline)
{
	uint64_t interval = POLL_MIN_NS;
	uint64_t begin = rw__now_ns(), now, next_poll = begin + interval;
	uint64_t until;
	int a;

	for (;;) {
		if (want)
			atomic_store(want, (int)(c->total - c->dropped -
						 c->cancelled));
		a = spin_answers(c, word);
		if (all_answered(c, a))
			return 0;
		now = rw__now_ns();
		if (now >= next_poll || (deadline && now >= deadline)) {
			poll_pending(c, now - begin);
			if (interval < POLL_MAX_NS)
				interval *= 2;
			next_poll = now + interval;
			if (all_answered(c, atomic_load(word)))
				return 0;
			if (deadline && now >= deadline)
				return -RW_ERR_THREAD_TIMEOUT;
			continue;
		}
		until = next_poll;
		if (deadline && deadline < until)
			until = deadline;
		futex_wait_ns(word, a, until - now);
	}
}

/* Cancel the slots that have not started fn (or parked): stragglers. */
static void cancel_unanswered(struct call *c)
{
	struct chunk *ch;
	uint32_t i;
	int expect;

	for (ch = atomic_load(&cs.head); ch; ch = atomic_load(&ch->next)) {
		for (i = 0; i < ch->count; i++) {
			struct slot *s = &ch->slots[i];

			expect = atomic_load(&s->state);
			if (expect != SLOT_UNSENT && expect != SLOT_PENDING)
				continue;
			if (atomic_compare_exchange_strong(&s->state, &expect,
							   SLOT_CANCELLED))
				c->cancelled++;
		}
	}
}

static bool is_straggler(struct slot *s)
{
	return atomic_load(&s->state) == SLOT_CANCELLED ||
	       atomic_load(&s->ack) == ACK_LATE;
}

/*
 * End the call, whatever happened:
 *
 * 1. Cancel the slots that have not started fn; they are the stragglers
 *    (with, for rw_stop_threads(), the parked threads marked ACK_LATE).
 * 2. Wait for the handlers already inside fn (fn must not block), or
 *    parked (the caller already told them to leave).
 * 3. Deactivate the call and wait for every in-handler reference to drain,
 *    so that no handler can be reading a chunk.
 * 4. Report the stragglers and free the chunks.
 */
static int call_end(struct call *c, int ret, struct rw_tid_list *stragglers)
{
	struct chunk *ch, *next;
	pid_t *late = NULL;
	size_t n = 0;
	uint32_t i;
	int spins;

	cancel_unanswered(c);
	for (;;) {
		int a;

		atomic_store(&cs.want,
			     (int)(c->total - c->dropped - c->cancelled));
		a = spin_answers(c, &cs.answered);
		if (all_answered(c, a))
			break;
		futex_wait_ns(&cs.answered, a, POLL_MIN_NS);
	}

	/* Threads that were inside fn at the deadline did answer. */
	if (ret == -RW_ERR_THREAD_TIMEOUT && !c->cancelled && !c->late)
		ret = 0;

	atomic_store(&cs.active_seq, 0);
	/*
	 * Handlers hold a reference only for a few instructions after their
	 * answer (or none at all, if they answered); spin, then sleep, and
	 * do not sched_yield(): with busy threads on every CPU, each yield
	 * gives a whole time slice away.
	 */
	for (spins = 0; atomic_load(&cs.inflight) != 0; spins++) {
		if (spins < SPIN_LOOPS)
			cpu_relax();
		else
			rw__sleep_ns(50000);
	}

	if (ret == -RW_ERR_THREAD_TIMEOUT && stragglers) {
		late = malloc((c->cancelled + c->late) * sizeof(*late));
		if (!late)
			ret = -ENOMEM;
	}
	for (ch = atomic_load(&cs.head); ch; ch = next) {
		next = atomic_load(&ch->next);
		for (i = 0; i < ch->count; i++) {
			if (!is_straggler(&ch->slots[i]))
				continue;
			if (ret == -RW_ERR_THREAD_TIMEOUT)
				rw__log("thread %d did not answer in time",
					ch->slots[i].tid);
			if (late)
				late[n++] = ch->slots[i].tid;
		}
		map_free(ch);
	}
	atomic_store(&cs.head, NULL);
	if (late) {
		/* Chunks are sorted one by one, not as a whole. */
		qsort(late, n, sizeof(*late), cmp_tid);
		stragglers->tids = late;
		stragglers->count = n;
	}
	return ret;
}

/*
 * Start a call (call_lock held, handler installed): fill in the caller's
 * bookkeeping and publish fn, arg and stop, then the sequence number.
 */
static void call_begin(struct call *c, rw_thread_fn fn, void *arg, bool stop)
{
	memset(c, 0, sizeof(*c));
	c->pid = getpid();
	c->self = rw__gettid();
	c->uid = getuid();
	c->signo = signo_resolve();
	if (++cs.last_seq == 0)
		++cs.last_seq;
	c->seq = cs.last_seq;
	cs.fn = fn;
	cs.arg = arg;
	cs.fn_uc = NULL;
	cs.filter = NULL;
	cs.farg = NULL;
	cs.stop = stop;
	atomic_store(&cs.answered, 0);
	atomic_store(&cs.want, INT_MAX);
	atomic_store(&cs.head, NULL);
	atomic_store(&cs.active_seq, c->seq);
}

/*
 * The last successful stop, when its parked threads may not all have left
 * the handler yet: rw_stop_threads() returns as soon as it has told them
 * to resume, and the next call (which needs cs and ss back) ends this one
 * first. With busy threads on every CPU, the last parked thread may get a
 * CPU only after every busy one had its time slice; the caller does not
 * wait for that. Under call_lock.
 */
static struct call stop_tail;
static bool stop_tail_open;

/* End the last stop, if it is still open; call_lock held. */
static void stop_tail_end(void)
{
	if (!stop_tail_open)
		return;
	call_end(&stop_tail, 0, NULL);
	atomic_store(&ss.phase, STOP_NONE);
	stop_tail_open = false;
}

/*
 * The deadline of a call whose timeout is timeout_ms (0, none, if it is
 * negative), taken once the call holds call_lock and has ended the last
 * stop. The timeout bounds
 * how long the threads take to answer this call, never the wait for the
 * call before it: that one may itself run to its full timeout (a stop
 * stalled on an exiting detached thread, see rw_stop_threads()), and a
 * deadline taken before call_lock would then expire before the first
 * signal leaves, so the threads that were still leaving the previous
 * call's handler would be cancelled and reported as stragglers, although
 * nothing was wrong with them.
 */
static uint64_t call_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	return rw__now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/*
 * The start of rw_on_each_thread() and rw_stop_threads(): clear the
 * straggler list, check fn, take call_lock, install the handler, and end
 * the previous stop. Returns 0 with call_lock held, or an error without.
 */
static int call_enter(bool have_fn, struct rw_tid_list *stragglers)
{
	int ret;

	if (stragglers) {
		stragglers->tids = NULL;
		stragglers->count = 0;
	}
	if (!have_fn)
		return -EINVAL;
	ret = call_lock_acquire();
	if (ret)
		return ret;
	ret = install_handler();
	if (ret) {
		rw__lock_release(&call_lock);
		return ret;
	}
	stop_tail_end();
	return 0;
}

/*
 * rw_on_each_thread:
 *
 * 1. Take call_lock, install the handler, end the last stop, start the
 *    clock (call_deadline), activate a new call in cs.
 * 2. List the threads and signal them, again until no new thread shows up;
 *    run fn in the calling thread after the first round.
 * 3. Wait for the answers until the deadline, dropping exited threads.
 * 4. End the call (call_end) and release call_lock.
 */
/* rw_on_each_thread() and rw__on_threads(): one of fn and fn_uc is set. */
static int each_thread(rw_thread_fn fn, rw__thread_uc_fn fn_uc, void *arg,
		       bool (*filter)(pid_t tid, void *farg), void *farg,
		       int timeout_ms, struct rw_tid_list *stragglers)
{
	uint64_t deadline;
	struct call c;
	int ret;

	ret = call_enter(fn || fn_uc, stragglers);
	if (ret)
		return ret;
	deadline = call_deadline(timeout_ms);
	call_begin(&c, fn, arg, false);
	cs.fn_uc = fn_uc;
	cs.filter = filter;
	cs.farg = farg;
	ret = signal_all(&c);
	if (!ret)
		ret = wait_answers(&c, &cs.answered, &cs.want, deadline);
	ret = call_end(&c, ret, stragglers);
	cs.fn_uc = NULL;
	cs.filter = NULL;
	rw__lock_release(&call_lock);
	return ret;
}

RW_EXPORT int rw_on_each_thread(rw_thread_fn fn, void *arg, int timeout_ms,
				struct rw_tid_list *stragglers)
{
	return each_thread(fn, NULL, arg, NULL, NULL, timeout_ms, stragglers);
}

int rw__on_threads(rw__thread_uc_fn fn, void *arg,
		   bool (*filter)(pid_t tid, void *farg), void *farg,
		   int timeout_ms, struct rw_tid_list *stragglers)
{
	return each_thread(NULL, fn, arg, filter, farg, timeout_ms, stragglers);
}

/* Stopping every thread: stop_machine for threads. */

/*
 * PREPARE: signal every thread and wait until it is parked, listing
 * /proc/self/task again until a listing made while every thread listed
 * before was parked (or gone) shows no new one. Parked threads create no
 * threads, so the set is then complete. At the deadline the threads that
 * have not parked are cancelled; if none is left to cancel (the last ones
 * parked meanwhile) the stop goes on.
 */
static int stop_gather(struct call *c, uint64_t deadline)
{
	size_t fresh;
	int round, ret;

	for (round = 0;; round++) {
		ret = signal_round(c, round, &fresh);
		if (ret || !fresh)
			return ret;
		ret = wait_answers(c, &ss.arrived, &ss.want, deadline);
		if (ret != -RW_ERR_THREAD_TIMEOUT)
			continue;
		cancel_unanswered(c);
		if (c->cancelled)
			return ret;
	}
}

/*
 * DISABLE: wait until every parked thread has blocked signals. At the
 * deadline the ones that have not are marked ACK_LATE (unless they
 * acknowledge first); if none is left to mark the stop goes on.
 */
static int stop_wait_disable(struct call *c, uint64_t deadline)
{
	struct chunk *ch;
	uint64_t now;
	uint32_t i;
	int v, expect;

	for (;;) {
		v = atomic_load(&ss.left);
		for (i = 0; v && ncpus > 1 && i < SPIN_LOOPS; i++) {
			cpu_relax();
			v = atomic_load(&ss.left);
		}
		if (!v)
			return 0;
		now = rw__now_ns();
		if (!deadline || now < deadline) {
			futex_wait_ns(&ss.left, v,
				      deadline ? deadline - now : POLL_MAX_NS);
			continue;
		}
		for (ch = atomic_load(&cs.head); ch;
		     ch = atomic_load(&ch->next)) {
			for (i = 0; i < ch->count; i++) {
				expect = ACK_PREPARE;
				if (atomic_compare_exchange_strong(
					    &ch->slots[i].ack, &expect,
					    ACK_LATE))
					c->late++;
			}
		}
		if (c->late)
			return -RW_ERR_THREAD_TIMEOUT;
		/* All acknowledged meanwhile; the last one is counting. */
		sched_yield();
	}
}

/*
 * rw_stop_threads: the caller's side of the phases (the parked threads'
 * side is stop_park()).
 *
 * 1. Take call_lock, install the handler, end the last stop, start the
 *    clock (call_deadline), set PREPARE, activate a call whose handlers
 *    park.
 * 2. PREPARE: signal and wait until every thread is parked and no new one
 *    appears (stop_gather).
 * 3. DISABLE: block signals here too, tell the parked threads to block
 *    theirs, wait for all of them (stop_wait_disable).
 * 4. RUN: run fn.
 * 5. EXIT: wake the parked threads, restore the signal mask, leave the
 *    call open for the next one to end (stop_tail), release call_lock.
 *    ABORT, on any failure before RUN: wake the parked threads, restore
 *    the signal mask, end the call (call_end waits until every parked
 *    thread has left the handler, and names the stragglers), set NONE,
 *    release call_lock.
 */
RW_EXPORT int rw_stop_threads(rw_stop_fn fn, void *arg, int timeout_ms,
			      struct rw_tid_list *stragglers)
{
	uint64_t deadline, old_mask = 0;
	bool blocked = false, ran = false;
	struct call c;
	int ret, fn_ret = 0;

	ret = call_enter(fn != NULL, stragglers);
	if (ret)
		return ret;
	deadline = call_deadline(timeout_ms);
	atomic_store(&ss.arrived, 0);
	atomic_store(&ss.want, INT_MAX);
	atomic_store(&ss.left, 0);
	atomic_store(&ss.phase, STOP_PREPARE);
	call_begin(&c, NULL, NULL, true);

	ret = stop_gather(&c, deadline);
	if (!ret) {
		/* A fresh timeout: PREPARE may have used up the first. */
		deadline = call_deadline(timeout_ms);
		block_signals(&old_mask);
		blocked = true;
		atomic_store(&ss.left, atomic_load(&ss.arrived));
		atomic_store(&ss.phase, STOP_DISABLE);
		rw__futex(&ss.phase, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
		ret = stop_wait_disable(&c, deadline);
	}
	if (!ret) {
		atomic_store(&ss.phase, STOP_RUN);
		fn_ret = fn(arg);
		ran = true;
	}
	atomic_store(&ss.phase, ran ? STOP_EXIT : STOP_ABORT);
	rw__futex(&ss.phase, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	if (blocked)
		restore_signals(&old_mask);
	if (ran) {
		/* Ended by the next call (stop_tail_end). */
		stop_tail = c;
		stop_tail_open = true;
		ret = fn_ret;
		goto unlock;
	}
	rw__log("stop abandoned: %s", rw_strerror(ret));
	ret = call_end(&c, ret, stragglers);
	atomic_store(&ss.phase, STOP_NONE);
unlock:
	rw__lock_release(&call_lock);
	return ret;
}

/*
 * fork: the prepare handler takes call_lock so that no call is half done
 * in the child, which has only the forking thread. Taking it fails only in
 * a thread that runs fn (a fork from inside fn); the child handler then
 * ends the call that the child inherited, with nobody left to answer it.
 */
void rw__threads_atfork_prepare(void)
{
	fork_holds_lock = call_lock_acquire() == 0;
}

void rw__threads_atfork_parent(void)
{
	if (fork_holds_lock) {
		fork_holds_lock = false;
		rw__lock_release(&call_lock);
	}
}

void rw__threads_atfork_child(void)
{
	struct chunk *ch, *next;

	fork_holds_lock = false;
	stop_tail_open = false;
	atomic_store(&cs.active_seq, 0);
	atomic_store(&cs.inflight, 0);
	atomic_store(&cs.answered, 0);
	for (ch = atomic_load(&cs.head); ch; ch = next) {
		next = atomic_load(&ch->next);
		map_free(ch);
	}
	atomic_store(&cs.head, NULL);
	atomic_store(&ss.phase, STOP_NONE);
	atomic_store(&ss.arrived, 0);
	atomic_store(&ss.left, 0);
	rw__lock_reset(&call_lock);
}

__attribute__((constructor)) static void threads_init(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n > 1)
		ncpus = n > INT_MAX ? INT_MAX : (int)n;
	signo_resolve();
}
