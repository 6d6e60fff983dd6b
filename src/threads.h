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
 * rw__threads_signo - the signal number rewire uses to reach threads.
 *
 * Installs nothing. The number can still change (rw_threads_set_signal())
 * until the first rw_on_each_thread() installs the handler. Takes no lock.
 * Async-signal-safe.
 */
int rw__threads_signo(void);

/*
 * rw__threads_owns_signal - whether @signo is rewire's cross-thread signal,
 * for the code that keeps the program from blocking or replacing it.
 *
 * Takes no lock. Async-signal-safe.
 */
bool rw__threads_owns_signal(int signo);

/*
 * fork handlers, registered by src/text_poke.c so that the order is the
 * lock order: the text lock is taken first (prepare) and released last.
 */
void rw__threads_atfork_prepare(void);
void rw__threads_atfork_parent(void);
void rw__threads_atfork_child(void);

#endif /* REWIRE_SRC_THREADS_H */
