/* SPDX-License-Identifier: MIT */
/* Private: the code writer and the text lock (src/text.c, text_poke.c). */
#ifndef REWIRE_TEXT_H
#define REWIRE_TEXT_H

#include "internal.h"

#include <rewire/text_poke.h>

#include <signal.h>

/*
 * The text lock serializes every change of code: batches, static key
 * transitions, static call updates, object registration. It nests inside
 * nothing and the threads lock (src/threads.c) nests inside it.
 */
extern struct rw__lock rw__text_lock;

/*
 * Write @len bytes at @addr in the process's code: pwrite on /proc/self/mem
 * (no mapping ever becomes writable), or mprotect(RWX)-copy-restore where
 * that is refused and the policy allows it. No verification, no int3
 * protocol: callers hold the text lock and either run the batch protocol
 * or write code no thread can be running. 0 or a negative error.
 */
int rw__text_write(void *addr, const void *buf, size_t len);

/* Counters (struct rw_text_stats fields), updated with relaxed atomics. */
extern _Atomic uint64_t rw__stat_batches, rw__stat_sites_patched,
	rw__stat_sites_skipped, rw__stat_syncs, rw__stat_writes,
	rw__stat_traps_emulated, rw__stat_traps_replayed,
	rw__stat_mprotect_writes, rw__stat_sync_failures;
#define rw__stat_add(name, n) \
	atomic_fetch_add_explicit(&rw__stat_##name, (n), memory_order_relaxed)

/* fork child: the /proc/self/mem descriptor belongs to the parent's mm. */
void rw__text_after_fork(void);

/* Signals (src/signals.c). */
int rw__signals_install_trap(void (*handler)(int, siginfo_t *, void *));
void rw__signals_chain_trap(int sig, siginfo_t *si, void *uc);
/*
 * 0 if rewire's SIGTRAP handler is still the one the kernel has (or none
 * was installed yet), -RW_ERR_TRAP_REPLACED if a raw rt_sigaction system
 * call replaced it: a batch must not be armed then.
 */
int rw__signals_check_trap(void);

#endif /* REWIRE_TEXT_H */
