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
 */
#include "threads.h"

#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Listings that find new threads before the call gives up with -EAGAIN. */
#define MAX_ROUNDS 64
/* First and longest interval between checks for exited threads. */
#define POLL_MIN_NS 1000000ull
#define POLL_MAX_NS 8000000ull
/* Attempts at a listing that no thread exit disturbed (see read_tasks). */
#define LIST_CLEAN_TRIES 8

#if defined(__SANITIZE_THREAD__)
#define RW_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RW_TSAN 1
#endif
#endif

enum slot_state {
	SLOT_UNSENT,
	SLOT_PENDING,
	SLOT_RUNNING,
	SLOT_DONE,
	SLOT_DROPPED,
	SLOT_CANCELLED,
};

struct slot {
	pid_t tid;	   /* written before the chunk is published */
	_Atomic int state; /* enum slot_state; see the table above */
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
	/* First chunk of the active call; caller-written, under call_lock. */
	_Atomic(struct chunk *) head;
	/*
	 * The function and its argument. Written under call_lock while no
	 * call is active, published by the release store to active_seq.
	 */
	rw_thread_fn fn;
	void *arg;
	/* Last sequence number handed out; under call_lock. */
	uint32_t last_seq;
} cs;

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

/*
 * The signal handler. si_value carries (sequence number << 32 | slot
 * number), so a signal of a finished call is recognized and ignored.
 *
 * 1. Take a reference (inflight), then read active_seq. Both are
 *    sequentially consistent, and the caller clears active_seq before it
 *    waits for inflight to reach 0: either the caller sees our reference and
 *    keeps the chunks alive, or we see that the call is over.
 * 2. Claim the slot (PENDING -> RUNNING); a cancelled slot stays cancelled.
 * 3. Run fn, mark the slot DONE, count the answer and wake the caller.
 * 4. Drop the reference.
 */
static void handler(int sig, siginfo_t *si, void *uc)
{
	int saved_errno = errno;
	uint64_t v;
	uint32_t seq;
	struct slot *s;
	int expect = SLOT_PENDING;

	(void)sig;
	(void)uc;
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
	cs.fn(cs.arg);
	atomic_store(&s->state, SLOT_DONE);
	atomic_fetch_add(&cs.answered, 1);
	rw__futex(&cs.answered, FUTEX_WAKE_PRIVATE, 1, NULL);
put:
	atomic_fetch_sub_explicit(&cs.inflight, 1, memory_order_release);
out:
	errno = saved_errno;
}

/* Install the handler once; call_lock held. */
static int install_handler(void)
{
	struct sigaction sa, old;
	int signo;

	if (atomic_load(&installed))
		return 0;
	signo = signo_resolve();
	if (atomic_load(&env_rejected))
		rw__log("REWIRE_SIGNAL is not a number in [%d, %d]; ignored",
			SIGRTMIN, SIGRTMAX);
	if (sigaction(signo, NULL, &old) != 0)
		return -errno;
	if ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != handler
					: (old.sa_handler != SIG_DFL &&
					   old.sa_handler != SIG_IGN)) {
		rw__log("signal %d already has a handler; set REWIRE_SIGNAL "
			"to a free real-time signal",
			signo);
		return -EBUSY;
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

		nv = realloc(t->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
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
 * Read the thread ids of /proc/self/task into t, sorted and unique.
 *
 * The kernel lists the thread group under RCU and stops early when the
 * thread at its cursor exits in the middle; the next getdents64() then
 * resumes by position and can skip a live thread. A listing that the
 * kernel produced in one getdents64() call, followed by an empty one, was
 * not cut short. So the buffer is made big enough for every thread and a
 * listing that needed a second call is thrown away and taken again, a few
 * times; after that the union of the calls is accepted (the rounds of
 * rw_on_each_thread() list again anyway).
 */
static int read_tasks(struct tid_vec *t)
{
	size_t size = 16384;
	char *buf = NULL;
	int fd = -1, ret = 0, tries;
	long n;

	t->v = NULL;
	t->n = t->cap = 0;
	for (tries = 0;; tries++) {
		t->n = 0;
		if (!buf) {
			buf = malloc(size);
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
		/* Room for one more entry of the longest kind? */
		if ((size_t)n + 512 > size) {
			close(fd);
			fd = -1;
			free(buf);
			buf = NULL;
			size *= 2;
			continue;
		}
		ret = parse_dents(t, buf, n);
		if (ret)
			goto out;
		for (;;) {
			n = syscall(SYS_getdents64, fd, buf, size);
			if (n <= 0)
				break;
			if (tries < LIST_CLEAN_TRIES)
				break;
			ret = parse_dents(t, buf, n);
			if (ret)
				goto out;
		}
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		close(fd);
		fd = -1;
		if (n == 0)
			break;
	}
	sort_unique(t);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (ret) {
		free(t->v);
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
	out->tids = t.v;
	out->count = t.n;
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

static bool tid_known(pid_t tid)
{
	return slot_by_tid(tid) != NULL;
}

/*
 * Send the signal for slot idx. The slot turns PENDING before the signal
 * leaves, because the handler may run before the system call returns.
 */
static void send_one(struct call *c, struct slot *s, uint32_t idx)
{
	siginfo_t si;
	int err;

	memset(&si, 0, sizeof(si));
	si.si_signo = c->signo;
	si.si_code = SI_QUEUE;
	si.si_pid = c->pid;
	si.si_uid = c->uid;
	si.si_value.sival_ptr =
		(void *)(uintptr_t)((uint64_t)c->seq << 32 | idx);
	atomic_store(&s->state, SLOT_PENDING);
	if (syscall(SYS_rt_tgsigqueueinfo, c->pid, s->tid, c->signo, &si) == 0)
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
	ch = calloc(1, sizeof(*ch) + n * sizeof(ch->slots[0]));
	if (!ch)
		return -ENOMEM;
	ch->base = (uint32_t)c->total;
	ch->count = (uint32_t)n;
	for (i = 0; i < n; i++) {
		ch->slots[i].tid = tids[i];
		atomic_init(&ch->slots[i].state, SLOT_UNSENT);
	}
	if (c->tail)
		atomic_store_explicit(&c->tail->next, ch, memory_order_release);
	else
		atomic_store_explicit(&cs.head, ch, memory_order_release);
	c->tail = ch;
	c->total += n;
	for (i = 0; i < n; i++)
		send_one(c, &ch->slots[i], ch->base + (uint32_t)i);
	return 0;
}

/*
 * Signal every thread, listing /proc/self/task until a listing shows no
 * thread that has not been signalled yet. fn runs in the calling thread
 * after the first round, while the others are busy with theirs.
 */
static int signal_all(struct call *c)
{
	struct tid_vec t;
	size_t i, fresh;
	int round, ret;

	for (round = 0;; round++) {
		ret = read_tasks(&t);
		if (ret)
			return ret;
		/* Keep only the tids not signalled yet, in place. */
		fresh = 0;
		for (i = 0; i < t.n; i++) {
			if (t.v[i] != c->self && !tid_known(t.v[i]))
				t.v[fresh++] = t.v[i];
		}
		if (fresh && round >= MAX_ROUNDS) {
			rw__log("threads still appearing after %d listings",
				MAX_ROUNDS);
			free(t.v);
			return -EAGAIN;
		}
		ret = fresh ? add_chunk(c, t.v, fresh) : 0;
		free(t.v);
		if (ret)
			return ret;
		if (round == 0)
			cs.fn(cs.arg);
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
 * kernel has already delivered the signal); the grace period keeps out the
 * threads that glibc is still creating. Threads found so are remembered,
 * so later calls drop them at the first poll.
 */
#define SAN_GRACE_NS 20000000ull

/* Sanitizer runtime threads seen before; under call_lock. */
static pid_t san_tids[4];

static bool stuck_all_blocked(pid_t tid, int signo)
{
	char path[64], buf[2048], *p;
	unsigned long long blk, pnd;
	ssize_t n;
	int fd, sig;

	rw__format(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
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
#else
static bool is_sanitizer_thread(pid_t tid, int signo, uint64_t waited_ns)
{
	(void)tid;
	(void)signo;
	(void)waited_ns;
	return false;
}
#endif

/*
 * Resend the signals that could not be sent, and drop the threads that
 * exited without answering (their pending signal died with them).
 */
static void poll_pending(struct call *c, uint64_t waited_ns)
{
	struct chunk *ch;
	uint32_t i;
	int expect;

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
			if ((syscall(SYS_tgkill, c->pid, s->tid, 0) == 0 ||
			     errno != ESRCH) &&
			    !is_sanitizer_thread(s->tid, c->signo, waited_ns))
				continue;
			expect = SLOT_PENDING;
			if (atomic_compare_exchange_strong(&s->state, &expect,
							   SLOT_DROPPED)) {
				c->dropped++;
				rw__log("thread %d exited or is a sanitizer "
					"thread; not waiting for it",
					s->tid);
			}
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
 * Wait until every slot is answered or dropped, or until the deadline
 * (0: none). Sleeps on the answered counter, waking every few milliseconds
 * to drop the threads that exited.
 */
static int wait_answers(struct call *c, uint64_t deadline)
{
	uint64_t interval = POLL_MIN_NS;
	uint64_t begin = rw__now_ns(), now, next_poll = begin + interval;
	uint64_t until;
	int a;

	for (;;) {
		a = atomic_load(&cs.answered);
		if (all_answered(c, a))
			return 0;
		now = rw__now_ns();
		if (now >= next_poll || (deadline && now >= deadline)) {
			poll_pending(c, now - begin);
			if (interval < POLL_MAX_NS)
				interval *= 2;
			next_poll = now + interval;
			if (all_answered(c, atomic_load(&cs.answered)))
				return 0;
			if (deadline && now >= deadline)
				return -RW_ERR_THREAD_TIMEOUT;
			continue;
		}
		until = next_poll;
		if (deadline && deadline < until)
			until = deadline;
		futex_wait_ns(&cs.answered, a, until - now);
	}
}

/*
 * End the call, whatever happened:
 *
 * 1. Cancel the slots that have not started fn; they are the stragglers.
 * 2. Wait for the handlers already inside fn (fn must not block).
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
	int expect, spins;

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
	for (;;) {
		int a = atomic_load(&cs.answered);

		if (all_answered(c, a))
			break;
		futex_wait_ns(&cs.answered, a, POLL_MIN_NS);
	}

	/* Threads that were inside fn at the deadline did answer. */
	if (ret == -RW_ERR_THREAD_TIMEOUT && !c->cancelled)
		ret = 0;

	atomic_store(&cs.active_seq, 0);
	for (spins = 0; atomic_load(&cs.inflight) != 0; spins++) {
		if (spins < 100)
			sched_yield();
		else
			rw__sleep_ns(50000);
	}

	if (c->cancelled && ret == -RW_ERR_THREAD_TIMEOUT && stragglers) {
		late = malloc(c->cancelled * sizeof(*late));
		if (!late)
			ret = -ENOMEM;
	}
	for (ch = atomic_load(&cs.head); ch; ch = next) {
		next = atomic_load(&ch->next);
		for (i = 0; i < ch->count; i++) {
			if (atomic_load(&ch->slots[i].state) != SLOT_CANCELLED)
				continue;
			if (ret == -RW_ERR_THREAD_TIMEOUT)
				rw__log("thread %d did not answer in time",
					ch->slots[i].tid);
			if (late)
				late[n++] = ch->slots[i].tid;
		}
		free(ch);
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
 * rw_on_each_thread:
 *
 * 1. Take call_lock, install the handler, activate a new call in cs.
 * 2. List the threads and signal them, again until no new thread shows up;
 *    run fn in the calling thread after the first round.
 * 3. Wait for the answers until the deadline, dropping exited threads.
 * 4. End the call (call_end) and release call_lock.
 */
RW_EXPORT int rw_on_each_thread(rw_thread_fn fn, void *arg, int timeout_ms,
				struct rw_tid_list *stragglers)
{
	uint64_t start = rw__now_ns(), deadline = 0;
	struct call c;
	int ret;

	if (stragglers) {
		stragglers->tids = NULL;
		stragglers->count = 0;
	}
	if (!fn)
		return -EINVAL;
	if (timeout_ms >= 0)
		deadline = start + (uint64_t)timeout_ms * 1000000ull;
	ret = call_lock_acquire();
	if (ret)
		return ret;
	ret = install_handler();
	if (ret)
		goto unlock;

	memset(&c, 0, sizeof(c));
	c.pid = getpid();
	c.self = rw__gettid();
	c.uid = getuid();
	c.signo = signo_resolve();
	if (++cs.last_seq == 0)
		++cs.last_seq;
	c.seq = cs.last_seq;
	cs.fn = fn;
	cs.arg = arg;
	atomic_store(&cs.answered, 0);
	atomic_store(&cs.head, NULL);
	atomic_store(&cs.active_seq, c.seq);

	ret = signal_all(&c);
	if (!ret)
		ret = wait_answers(&c, deadline);
	ret = call_end(&c, ret, stragglers);
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
	atomic_store(&cs.active_seq, 0);
	atomic_store(&cs.inflight, 0);
	atomic_store(&cs.answered, 0);
	for (ch = atomic_load(&cs.head); ch; ch = next) {
		next = atomic_load(&ch->next);
		free(ch);
	}
	atomic_store(&cs.head, NULL);
	rw__lock_reset(&call_lock);
}

__attribute__((constructor)) static void threads_init(void)
{
	signo_resolve();
}
