/* SPDX-License-Identifier: MIT */
/*
 * Private interface of the thread walker (src/threads.c) for the rest of
 * librewire. Never installed.
 */
#ifndef REWIRE_SRC_THREADS_H
#define REWIRE_SRC_THREADS_H

#include <rewire/threads.h>

#include <stdbool.h>

/*
 * fork handlers, registered by src/text_poke.c so that the order is the
 * lock order: the text lock is taken first (prepare) and released last.
 */
void rw__threads_atfork_prepare(void);
void rw__threads_atfork_parent(void);
void rw__threads_atfork_child(void);

/*
 * rw__on_threads - rw_on_each_thread() for rewire's own use: @fn gets the
 * context the signal interrupted (a ucontext_t *; NULL for the run in the
 * calling thread, which always happens), and only the threads for which
 * @filter (run in the caller, for each thread found; NULL: all) returns
 * true are signalled. The others count as exited. Same locking, timeout,
 * straggler list and returns as rw_on_each_thread().
 */
typedef void (*rw__thread_uc_fn)(void *arg, void *uc);
int rw__on_threads(rw__thread_uc_fn fn, void *arg,
		   bool (*filter)(pid_t tid, void *farg), void *farg,
		   int timeout_ms, struct rw_tid_list *stragglers);

#endif /* REWIRE_SRC_THREADS_H */
