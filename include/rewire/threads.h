/* SPDX-License-Identifier: MIT */
/*
 * rewire/threads.h - find every thread of the process and run a function in
 * each of them, in that thread's own context.
 *
 * Overview
 *
 * rewire changes code that other threads may be executing, so it needs the
 * user-space counterpart of the kernel's on_each_cpu(): a way to make every
 * thread of the process execute a small function (a serializing instruction,
 * a memory barrier, a quiescent-state report) before an update goes on.
 *
 * Threads are found by reading /proc/self/task, so every thread counts, not
 * only the threads that registered with rewire or were created after it was
 * loaded. Each thread is reached with rt_tgsigqueueinfo() and one real-time
 * signal that glibc does not use, SIGRTMAX - 6 by default. The environment
 * variable REWIRE_SIGNAL (a decimal signal number) or rw_threads_set_signal()
 * chooses another one. The signal handler is installed on the first
 * rw_on_each_thread() call and never removed.
 *
 * Usage
 *
 *	static void barrier_fn(void *arg)
 *	{
 *		atomic_thread_fence(memory_order_seq_cst);
 *	}
 *
 *	struct rw_tid_list late;
 *	int err = rw_on_each_thread(barrier_fn, NULL, 1000, &late);
 *
 *	if (err == -RW_ERR_THREAD_TIMEOUT) {
 *		for (size_t i = 0; i < late.count; i++)
 *			fprintf(stderr, "thread %d did not answer\n",
 *				(int)late.tids[i]);
 *	}
 *	rw_tid_list_free(&late);
 *
 * Caveats
 *
 * - The function runs inside a signal handler of the target thread, at any
 *   point of that thread's execution, so it must be async-signal-safe: no
 *   malloc, no stdio, no locks that the interrupted code may hold. It must
 *   also not block: when a call times out, rw_on_each_thread() still waits
 *   for the handlers that already entered the function.
 * - A thread that blocks rewire's signal (through the raw rt_sigprocmask
 *   system call; rewire keeps libc's sigprocmask() from blocking it) or that
 *   stays in a long uninterruptible sleep does not answer. It is reported as
 *   a straggler when the timeout expires.
 * - System calls interrupted by the signal are restarted where the kernel
 *   allows it (SA_RESTART), but calls that are never restarted after a
 *   signal handler (see signal(7): nanosleep, epoll_wait, poll, select and
 *   others) return EINTR in the interrupted thread. Programs that treat
 *   EINTR as fatal can be disturbed by any signal; rewire's is no exception.
 * - The signal must be free: if the program already installed a handler for
 *   it, the first cross-thread call fails with -EBUSY. Choose another one
 *   with REWIRE_SIGNAL or rw_threads_set_signal().
 * - Thread ids are recycled by the kernel. A thread that exits during a call
 *   and whose tid is given to a new thread within the same call is not told
 *   apart from it; with the default pid_max this needs tens of thousands of
 *   thread creations during one call.
 * - fork() waits for a running cross-thread call to finish (the atfork
 *   prepare handler takes the call lock), so the child starts with no call
 *   in progress and can use every function here.
 */
#ifndef REWIRE_THREADS_H
#define REWIRE_THREADS_H

#include <rewire/common.h>

#include <stddef.h>
#include <sys/types.h>

RW_EXTERN_C_BEGIN

/* A function to run in each thread; must be async-signal-safe. */
typedef void (*rw_thread_fn)(void *arg);

/* A sorted array of thread ids, owned by the caller. */
struct rw_tid_list {
	pid_t *tids;
	size_t count;
};

/*
 * rw_threads_list - take a snapshot of the threads of the process.
 * @out: filled with the thread ids, sorted in increasing order and without
 *       duplicates. Free it with rw_tid_list_free().
 *
 * The snapshot is read from /proc/self/task; threads may have started or
 * exited by the time it returns.
 *
 * Returns 0, -EINVAL if @out is NULL, -ENOMEM, or the negative errno of the
 * failed open()/getdents64() of /proc/self/task. On failure @out is empty.
 * Takes no lock. Not async-signal-safe (allocates).
 */
RW_EXPORT int rw_threads_list(struct rw_tid_list *out);

/*
 * rw_tid_list_free - free the array of a thread id list.
 * @list: the list, or NULL (nothing is done).
 *
 * Leaves the list empty (tids NULL, count 0), so freeing twice is harmless.
 * Takes no lock. Not async-signal-safe.
 */
RW_EXPORT void rw_tid_list_free(struct rw_tid_list *list);

/*
 * rw_on_each_thread - run a function once in every thread of the process.
 * @fn:         the function; must be async-signal-safe and must not block.
 * @arg:        passed to @fn.
 * @timeout_ms: how long to wait for the answers, counted from the start of
 *              the call; < 0 waits forever, 0 does not wait at all.
 * @stragglers: if not NULL, receives the ids of the threads that did not
 *              answer in time (sorted). Always initialized, empty unless the
 *              call returns -RW_ERR_THREAD_TIMEOUT; free it with
 *              rw_tid_list_free().
 *
 * Runs @fn(@arg) in every other thread, inside the handler of rewire's
 * signal, and once directly in the calling thread. Threads created during
 * the call are found by listing /proc/self/task again after signalling,
 * until a listing shows no new thread. The guarantee: every thread that is
 * alive both when the call starts and when it returns, and every thread of
 * the final listing, has run @fn exactly once during the call. Threads that
 * exit before answering are dropped, never waited for. When the call
 * returns, every run of @fn it caused has returned, and no late signal of
 * this call will run @fn afterwards (a late signal is ignored).
 *
 * Memory ordering: the caller's writes before the call happen before each
 * run of @fn, and each run of @fn happens before the call returns.
 *
 * Returns 0 on success;
 *   -RW_ERR_THREAD_TIMEOUT if some threads did not answer in time (the call
 *   is then cancelled for them: they will not run @fn for this call);
 *   -EINVAL if @fn is NULL;
 *   -EDEADLK if called from inside @fn, or from a signal handler that
 *   interrupted a thread inside rw_on_each_thread() or inside @fn;
 *   -EAGAIN if threads kept appearing for 64 listings in a row;
 *   -EBUSY if the program owns a handler for rewire's signal;
 *   -ENOMEM, or the negative errno of reading /proc/self/task.
 * On the errors after -EDEADLK, @fn may have run in some threads.
 *
 * Locks: takes rewire's cross-thread call lock, so calls are serialized.
 * Not async-signal-safe.
 */
RW_EXPORT int rw_on_each_thread(rw_thread_fn fn, void *arg, int timeout_ms,
				struct rw_tid_list *stragglers);

/*
 * rw_threads_signal - the real-time signal rewire uses to reach threads.
 *
 * Returns the signal number: the one set with rw_threads_set_signal(),
 * else REWIRE_SIGNAL if it names a signal in [SIGRTMIN, SIGRTMAX], else
 * SIGRTMAX - 6. Takes no lock. Async-signal-safe.
 */
RW_EXPORT int rw_threads_signal(void);

/*
 * rw_threads_set_signal - choose the real-time signal rewire uses.
 * @signo: a signal number in [SIGRTMIN, SIGRTMAX].
 *
 * Must be called before the first rw_on_each_thread() (which installs the
 * handler). Overrides REWIRE_SIGNAL.
 *
 * Returns 0 (also when @signo is already the signal in use), -EINVAL if
 * @signo is out of range, -EBUSY if the handler is already installed for
 * another signal, -EDEADLK if called from inside a cross-thread function.
 * Takes the cross-thread call lock. Not async-signal-safe.
 */
RW_EXPORT int rw_threads_set_signal(int signo);

RW_EXTERN_C_END

#endif /* REWIRE_THREADS_H */
