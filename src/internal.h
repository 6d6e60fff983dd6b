/* SPDX-License-Identifier: MIT */
/*
 * Private definitions shared by librewire's modules. Never installed.
 *
 * Naming: exported API rw_*, internal non-static rw__*, static unprefixed.
 */
#ifndef REWIRE_INTERNAL_H
#define REWIRE_INTERNAL_H

/* Keeps rewire/object.h from registering librewire itself. */
#define RW__BUILDING_LIBREWIRE 1

#include <rewire/common.h>

#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define RW_CACHELINE 64
#define RW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RW_LIKELY(x) __builtin_expect(!!(x), 1)
#define RW_UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline pid_t rw__gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static inline long rw__futex(_Atomic int *uaddr, int op, int val,
			     const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/*
 * Logging: off unless REWIRE_LOG=1 (read once at load). Async-signal-safe:
 * formats into a stack buffer with a small formatter (%s %d %u %ld %lu %lx
 * %zu %p %x %c) and writes with one write(2) to stderr, prefixed with
 * "[pid/tid] function:".
 */
extern bool rw__log_enabled;
void rw__log_write(const char *func, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define rw__log(...)                                          \
	do {                                                  \
		if (RW_UNLIKELY(rw__log_enabled))             \
			rw__log_write(__func__, __VA_ARGS__); \
	} while (0)

/* Async-signal-safe formatting into buf (always NUL-terminated). */
size_t rw__vformat(char *buf, size_t size, const char *fmt, va_list ap);
size_t rw__format(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sleep for the given number of nanoseconds (restarts on EINTR). */
void rw__sleep_ns(uint64_t ns);
uint64_t rw__now_ns(void);
/* Read /proc/self/task/@tid/@name into @buf, NUL-terminated (at most
 * @size - 1 bytes). Returns the length, -ESRCH when the thread is gone, or
 * another negative errno. Async-signal-safe. */
ssize_t rw__task_read(pid_t tid, const char *name, char *buf, size_t size);
/* The state letter of thread @tid (/proc/self/task/@tid/stat: 'R', 'S',
 * 'Z' zombie, 'X' dead, ...), -ESRCH when it is gone, another negative
 * errno when it cannot be read. Async-signal-safe. */
int rw__task_state(pid_t tid);
/* Parse a /proc/.../syscall line: 0 and *sp, *pc if the thread is
 * blocked (in a system call, or asleep elsewhere: "-1 SP PC"); 1 if it
 * runs; -EIO if unreadable. */
int rw__parse_syscall(const char *s, uintptr_t *sp, uintptr_t *pc);
/* Where thread @tid is: 1 and *ip if it is blocked (in a system call or
 * otherwise asleep) with user IP *ip, 0 if it is running or runnable,
 * negative errno (-ESRCH: gone). */
int rw__thread_blocked_ip(pid_t tid, uintptr_t *ip);
/* Read @len bytes at @addr of this process without faulting (a system
 * call): true if all were read. Async-signal-safe. */
bool rw__peek(uintptr_t addr, void *buf, size_t len);

/*
 * rw__lock: a mutex that knows its owner, so that a thread that already
 * holds it (typically a signal handler that interrupted the holder) gets
 * -EDEADLK instead of deadlocking. Futex-based; no allocation.
 *
 * The lock word is the owner's tid (0: free) plus RW__LOCK_WAITERS when a
 * thread may be sleeping on it. Taking and releasing it are single atomic
 * operations on that word, so a signal handler that interrupts the owner at
 * any instruction sees its own tid there and gets -EDEADLK. Not recursive.
 */
struct rw__lock {
	_Atomic int word;
};
#define RW__LOCK_WAITERS (1 << 30)
#define RW__LOCK_INIT \
	{             \
		0     \
	}

static inline int rw__lock_acquire(struct rw__lock *l)
{
	int self = (int)rw__gettid();
	int v = 0;

	if (atomic_compare_exchange_strong(&l->word, &v, self))
		return 0;
	for (;;) {
		if ((v & ~RW__LOCK_WAITERS) == self)
			return -EDEADLK;
		if (v == 0) {
			/* Keep the waiters flag: others may still sleep. */
			if (atomic_compare_exchange_strong(
				    &l->word, &v, self | RW__LOCK_WAITERS))
				return 0;
			continue;
		}
		if (!(v & RW__LOCK_WAITERS) &&
		    !atomic_compare_exchange_strong(&l->word, &v,
						    v | RW__LOCK_WAITERS))
			continue;
#ifdef RW_TSAN
		/* TSan delivers signals only inside functions it intercepts,
		 * and a raw futex wait is not one: a waiter would never answer
		 * a cross-thread call made by the holder. Sleep instead. */
		rw__sleep_ns(20000);
#else
		rw__futex(&l->word, FUTEX_WAIT_PRIVATE, v | RW__LOCK_WAITERS,
			  NULL);
#endif
		v = atomic_load(&l->word);
	}
}

static inline void rw__lock_release(struct rw__lock *l)
{
	if (atomic_exchange(&l->word, 0) & RW__LOCK_WAITERS)
		rw__futex(&l->word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

static inline bool rw__lock_held_by_me(struct rw__lock *l)
{
	return (atomic_load(&l->word) & ~RW__LOCK_WAITERS) == (int)rw__gettid();
}

/* Reset a lock in a fork child: the child has one thread and no holder. */
static inline void rw__lock_reset(struct rw__lock *l)
{
	atomic_store(&l->word, 0);
}

/*
 * fork handlers of the layers above the floor (the text writer, the int3
 * patcher, threads and signals). The floor never calls a feature: each
 * layer that holds a lock across code that may fork registers its
 * handlers, from a constructor, with rw__fork_handlers_register(). One
 * pthread_atfork() handler (src/text_poke.c) runs them around the floor's
 * own, in this fixed order, whatever the order of the constructors (the
 * kernel's enum cpuhp_state does the same for CPU hotplug):
 *
 *   prepare:	live patching, function tracing, providers, tracepoints,
 *		RCU (call_rcu pause, urcu-bp, poll lock), then the floor:
 *		entry lock, text lock, cross-thread call lock;
 *   parent:	the floor, then RCU, tracepoints, providers, function
 *		tracing, live patching;
 *   child:	the floor (threads, /proc/self/mem, membarrier, entry and
 *		text locks), then RCU, tracepoints, providers, function
 *		tracing, live patching, and last
 *		the control server, which may start its thread in the child
 *		once every other part's state is consistent.
 *
 * That is rewire's lock order: a level's lock nests inside the locks of
 * the levels before it. A handler may be NULL.
 */
enum rw__fork_level {
	RW__FORK_CTL, /* child only, last: starts a thread (src/ctl/) */
	RW__FORK_LIVEPATCH,
	RW__FORK_FTRACE,
	RW__FORK_PROVIDER,
	RW__FORK_TRACEPOINT,
	RW__FORK_RCU,
	RW__FORK_LEVELS
};
struct rw__fork_handlers {
	void (*prepare)(void);
	void (*parent)(void);
	void (*child)(void);
};
/* Register @h (static storage) for @level; a later call replaces it. */
void rw__fork_handlers_register(enum rw__fork_level level,
				const struct rw__fork_handlers *h);

/* A full barrier that ThreadSanitizer accepts (GCC refuses fences under
 * -fsanitize=thread): a locked read-modify-write. Slow paths only. */
static inline void rw__full_barrier(void)
{
	static int word;

	__atomic_fetch_or(&word, 0, __ATOMIC_SEQ_CST);
}

/* Inside an RCU read-side critical section (src/rcu.c)? */
bool rw__rcu_in_read_side(void);

/*
 * The floor's own read side (src/readside.c; the inline half is
 * include/rewire/readside.h): tracepoint sites and provider reads.
 * rw_rcu_synchronize(), rw_rcu_call() and the polled cookies of
 * rewire/rcu.h wait for it as well as for liburcu's readers.
 *
 * rw__rs_synchronize: a full grace period of this read side. -EDEADLK if
 *	the calling thread is inside a section (of this read side).
 * rw__rs_get_state: a cookie naming a grace period that begins after the
 *	call; never 0 (0 is always complete).
 * rw__rs_poll_state: has that grace period ended? (then a full fence)
 * rw__rs_in_read_side: is the calling thread inside a section?
 */
int rw__rs_synchronize(void);
unsigned long rw__rs_get_state(void);
bool rw__rs_poll_state(unsigned long cookie);
bool rw__rs_in_read_side(void);
/* fork handlers of the read side (src/readside.c), run by src/rcu.c's at
 * RCU's level: prepare after call_rcu's pause and before urcu-bp's. */
void rw__rs_atfork_prepare(void);
void rw__rs_atfork_parent(void);
void rw__rs_atfork_child(void);
/* Start liburcu's call_rcu thread now, if it does not run, from the
 * calling thread (a thread inherits its creator's name). */
void rw__rcu_callback_thread(void);

/* Live patches, for the control server (src/livepatch/core.c). The
 * identity of the patch's file (src/ctl/fileid.h), fixed at load; whether
 * the server applied it from its patch directory (set once, by the
 * server thread, right after the load). @p as rw_patch_state's. */
struct rw_patch;
const char *rw__patch_file_id(const struct rw_patch *p);
void rw__patch_set_from_dir(struct rw_patch *p);
bool rw__patch_from_dir(const struct rw_patch *p);

#endif /* REWIRE_INTERNAL_H */
