/* SPDX-License-Identifier: MIT */
/*
 * rewire/threads.h - find every thread of the process, run a function in
 * each of them, in that thread's own context, or stop them all while one
 * function runs alone.
 *
 * Overview
 *
 * rewire changes code that other threads may be executing, so it needs the
 * user-space counterpart of the kernel's on_each_cpu(): a way to make every
 * thread of the process execute a small function (a serializing instruction,
 * a memory barrier, a quiescent-state report) before an update goes on.
 * rw_stop_threads() is the counterpart of stop_machine(): every other thread
 * waits in rewire's signal handler while one function runs in the caller.
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
 *	static int swap_tables(void *arg)
 *	{
 *		struct tables *t = arg;	// no other thread runs: plain stores
 *
 *		t->cur = t->next;
 *		return 0;
 *	}
 *
 *	err = rw_stop_threads(swap_tables, &tables, 1000, &late);
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
 *   it, the first cross-thread call fails with -RW_ERR_SIGNAL_BUSY; if it
 *   replaces rewire's handler later, every call fails at once with
 *   -RW_ERR_SIGNAL_REPLACED (each call checks). Choose another one with
 *   REWIRE_SIGNAL or rw_threads_set_signal().
 * - Threads that have exited but are still listed (the main thread after
 *   pthread_exit() stays a zombie until the process exits; a traced thread
 *   until its tracer reaps it) run nothing: calls and stops skip them.
 * - Thread ids are recycled by the kernel. A thread that exits during a call
 *   and whose tid is given to a new thread within the same call is not told
 *   apart from it; with the default pid_max this needs tens of thousands of
 *   thread creations during one call.
 * - fork() waits for a running cross-thread call or stop to finish (the
 *   atfork prepare handler takes the call lock), so the child starts with no
 *   call in progress and can use every function here.
 * - rw_stop_threads() stops the threads where they are, whatever locks they
 *   hold; see the function for what its fn must not do.
 * - Detached threads: glibc blocks every signal in an exiting detached
 *   thread before it returns its stack to the stack cache, under a lock
 *   that a parked thread may hold (one stopped inside pthread_create(),
 *   say). Such a thread cannot park, so a stop that meets it waits for the
 *   whole timeout, then is abandoned safely: @fn does not run, the parked
 *   threads resume, the exiting thread is the straggler reported, and it
 *   finishes exiting once the lock holder runs again. Calls waiting for
 *   the call lock meanwhile are delayed by as much, but their own timeout
 *   starts only once they hold the lock. Programs that create and exit
 *   detached threads all the time should retry a stop that fails so.
 */
#ifndef REWIRE_THREADS_H
#define REWIRE_THREADS_H

#include <rewire/common.h>

#include <stddef.h>
#include <sys/types.h>

RW_EXTERN_C_BEGIN

/* A function to run in each thread; must be async-signal-safe. */
typedef void (*rw_thread_fn)(void *arg);

/* The function rw_stop_threads() runs alone; its result is returned. */
typedef int (*rw_stop_fn)(void *arg);

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
 * The snapshot is read from /proc/self/task and is complete: every thread
 * that existed during the whole call is in it (the kernel's listing can
 * silently skip threads when one exits under its cursor; such a listing is
 * detected and taken again). Threads may have started or exited by the
 * time it returns. Threads that exited but are still listed (zombies, see
 * above) are included.
 *
 * Returns 0, -EINVAL if @out is NULL, -ENOMEM, -EAGAIN if threads exited
 * under the listing's cursor 1000 times in a row, or the negative errno of
 * the failed open()/getdents64() of /proc/self/task. On failure @out is
 * empty.
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
 * @timeout_ms: how long to wait for the answers, counted from the moment
 *              the call holds the call lock (the wait for another call or
 *              stop in progress does not count); < 0 waits forever, 0 does
 *              not wait at all.
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
 *   -EAGAIN if threads kept appearing for 64 listings in a row, or kept
 *   exiting under the listing's cursor (see rw_threads_list());
 *   -RW_ERR_SIGNAL_BUSY if the program owned a handler for rewire's signal
 *   before rewire installed its own, -RW_ERR_SIGNAL_REPLACED if it replaced
 *   rewire's handler since;
 *   -ENOMEM, or the negative errno of reading /proc/self/task.
 * On the errors after -EDEADLK, @fn may have run in some threads.
 *
 * Locks: takes rewire's cross-thread call lock, so calls are serialized.
 * Not async-signal-safe.
 */
RW_EXPORT int rw_on_each_thread(rw_thread_fn fn, void *arg, int timeout_ms,
				struct rw_tid_list *stragglers);

/*
 * rw_stop_threads - run a function while every other thread is stopped.
 * @fn:         the function, run once in the calling thread; see below for
 *              what it must not do.
 * @arg:        passed to @fn.
 * @timeout_ms: how long to wait for every thread to park, counted from the
 *              moment the call holds the call lock (the wait for another
 *              call or stop in progress does not count), and then again
 *              for the parked threads to block signals (DISABLE below);
 *              < 0 waits forever, 0 does not wait (the call then fails
 *              unless the caller is the only thread).
 * @stragglers: if not NULL, receives the ids of the threads that did not
 *              stop in time (sorted). Always initialized, empty unless the
 *              call returns -RW_ERR_THREAD_TIMEOUT; free it with
 *              rw_tid_list_free().
 *
 * The stop_machine() of user space. Every other thread of the process is
 * made to wait ("parked") inside the handler of rewire's signal, @fn runs
 * in the caller while no other thread runs any of the program's code, then
 * every thread resumes where it was. The phases are those of the kernel's
 * stop_machine, each one advancing when the last thread acknowledged it:
 *
 *   PREPARE  every thread is signalled and parks; /proc/self/task is read
 *            again until a listing made while all the threads listed so
 *            far were parked shows no new thread (a parked thread cannot
 *            create one, so threads created during the stop are parked
 *            too). Parked threads still take other signals meanwhile.
 *   DISABLE  parked threads, and the caller, block every signal but
 *            SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP and SIGSYS (faults,
 *            and rewire's int3 sites, must stay deliverable): no signal
 *            handler of the program runs anywhere while @fn runs.
 *   RUN      @fn runs in the caller.
 *   EXIT     parked threads restore their signal mask and return from the
 *            handler; the call returns once every one of them has left it.
 *
 * If a thread has not parked (or, parked, has not blocked signals) when
 * the timeout expires, the stop is abandoned: @fn does not run, every
 * parked thread resumes, and the late threads are reported. A thread that
 * blocks rewire's signal with the raw rt_sigprocmask system call, or stays
 * in an uninterruptible sleep, is such a straggler; when its signal is
 * finally delivered, the handler sees that its stop is over and returns at
 * once. Threads that exit during the stop are not waited for.
 *
 * Memory ordering: everything every thread did before it parked happens
 * before @fn runs, and everything @fn (and the caller before the call) did
 * happens before each thread resumes. @fn may use plain loads and stores
 * on data the stopped threads use.
 *
 * What @fn must not do. The other threads are stopped wherever they were,
 * so any lock one of them held stays held while @fn runs. @fn must not:
 * - take a lock that another thread may hold: malloc() and free() (and
 *   everything that allocates), stdio, dlopen() and dlsym(), the program's
 *   own mutexes, pthread_create() and thread exit;
 * - wait for another thread in any way (a condition variable, a join, a
 *   pipe that a stopped thread would write to);
 * - call fork(), setuid() and the other set*id() functions (glibc signals
 *   every thread and waits for each), or anything else that needs other
 *   threads to run;
 * - call rewire functions that signal or stop threads or change code
 *   (rw_on_each_thread(), rw_stop_threads(), rw_threads_set_signal() return
 *   -EDEADLK; static key and static call updates may wait for a lock that
 *   a stopped thread holds);
 * - block for long: the whole program waits for it. There is no timeout on
 *   @fn itself.
 * @fn may read and write memory, make system calls that do not wait for
 * other threads (write(2) to a file, clock_gettime(), nanosleep() for a
 * moment), and use lock-free algorithms. It runs with signals blocked as
 * in DISABLE.
 *
 * Returns the value @fn returned, if it ran; else:
 *   -RW_ERR_THREAD_TIMEOUT if some threads did not stop in time (@fn did not
 *   run; the threads are in @stragglers);
 *   -EINVAL if @fn is NULL;
 *   -EDEADLK if called from inside @fn or a function of
 *   rw_on_each_thread(), or from a signal handler that interrupted a parked
 *   thread, or a thread inside rw_stop_threads() or rw_on_each_thread();
 *   -EAGAIN if threads kept appearing for 64 listings in a row, or kept
 *   exiting under the listing's cursor (see rw_threads_list());
 *   -RW_ERR_SIGNAL_BUSY if the program owned a handler for rewire's signal
 *   before rewire installed its own, -RW_ERR_SIGNAL_REPLACED if it replaced
 *   rewire's handler since;
 *   -ENOMEM, or the negative errno of reading /proc/self/task.
 * To tell these from @fn's own results, let @fn record in @arg that it ran.
 *
 * Locks: takes rewire's cross-thread call lock, so stops and cross-thread
 * calls are serialized; a thread waiting for that lock is parked like any
 * other. Not async-signal-safe.
 */
RW_EXPORT int rw_stop_threads(rw_stop_fn fn, void *arg, int timeout_ms,
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
