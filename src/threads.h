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

#endif /* REWIRE_SRC_THREADS_H */
