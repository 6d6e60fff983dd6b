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
 * that is refused and the policy allows it. No int3 protocol: callers hold
 * the text lock and either run the batch protocol or write code no thread
 * can be running. 0, or (without the fallback, or when it fails too):
 *   -RW_ERR_NO_PROC       /proc is not mounted;
 *   -RW_ERR_NOT_DUMPABLE  /proc/self/mem refused after a privilege drop
 *                         and the descriptor opened at start-up is gone;
 *   -EMFILE, -ENFILE      out of descriptors to open it;
 *   -RW_ERR_TEXT_WRITE    the kernel refused the write itself;
 *   another -errno        of open() or of the mprotect fallback.
 * Every failure also sets the calling thread's rw__text_error().
 */
int rw__text_write(void *addr, const void *buf, size_t len);

/*
 * Why the last failed write of code in this thread failed, one sentence
 * ("" if none since the last rw__text_error_clear()). Live patching copies
 * it into rw_patch_last_error().
 */
const char *rw__text_error(void);
void rw__text_error_clear(void);
/* Set it (the entries' writer adds its own reasons). */
void rw__text_error_set(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Counters (struct rw_text_stats fields), updated with relaxed atomics. */
extern _Atomic uint64_t rw__stat_batches, rw__stat_sites_patched,
	rw__stat_sites_skipped, rw__stat_syncs, rw__stat_writes,
	rw__stat_traps_emulated, rw__stat_traps_replayed,
	rw__stat_mprotect_writes, rw__stat_sync_failures;
#define rw__stat_add(name, n) \
	atomic_fetch_add_explicit(&rw__stat_##name, (n), memory_order_relaxed)

/* fork child: the /proc/self/mem descriptor belongs to the parent's mm;
 * open the child's own under the same number (or close it if the child may
 * not: a process forked after a privilege drop is not dumpable). */
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
