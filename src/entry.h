/* SPDX-License-Identifier: MIT */
/*
 * Private: function entries shared by their users (DESIGN.md 8b).
 *
 * A patchable function entry (five bytes of NOPs after an endbr64 on
 * x86-64, two NOPs after a BTI on aarch64: src/arch/entry_arch.h) can be
 * wanted by live patching (a jump to the new
 * function or to a transition's dispatcher) and by function tracing (a
 * jump to the function's trampoline, which calls the tracer and then goes
 * where live patching would have sent the thread). One record per entry
 * keeps what each user wants; the entry's bytes are derived from the
 * record alone, and every change goes through one int3 batch here. No
 * feature writes an entry on its own.
 *
 * Records are created on first use and never freed (a trampoline may
 * point at one for as long as the process lives). A record whose users
 * are all gone re-reads its original bytes on next use: the object may
 * have been unloaded and another loaded at the same address.
 *
 * Locking: rw__entry_lock (entry.c) protects every record and nests
 * inside the features' own locks and outside the text lock.
 */
#ifndef REWIRE_ENTRY_H
#define REWIRE_ENTRY_H

#include "arch/entry_arch.h"
#include "internal.h"
#include "text_poke.h"

#include <stdbool.h>
#include <stdint.h>

/* Read by the trampolines' common code: keep data and cont first, in
 * order. */
struct rw__entry {
	void *tdata;		     /* the tracer's record for this function */
	_Atomic uintptr_t cont;	     /* where a traced call continues */
	uintptr_t func;		     /* the function's entry (symbol value) */
	uintptr_t sled;		     /* the entry's RW__ENTRY_LEN bytes */
	uint8_t orig[RW__ENTRY_MAX]; /* their original contents (NOPs) */
	bool traced;		     /* function tracing wants the entry */
	uintptr_t patch;	     /* live patching's jump target, 0: none */
	void *tramp;		     /* the trampoline, made on first trace */
	char label[96];
	struct rw__entry *next;
};

extern struct rw__lock rw__entry_lock;

/*
 * The record of the entry whose bytes are at @sled (function @func),
 * made if needed: the bytes there must be NOPs then (else
 * -RW_ERR_NOT_PATCHABLE). Entry lock held.
 */
int rw__entry_get(uintptr_t func, uintptr_t sled, const char *label,
		  struct rw__entry **out);

/* Do the RW__ENTRY_LEN bytes at @b hold a patchable entry's NOPs (x86-64:
 * five one-byte NOPs as GCC emits them, or one five-byte NOP as
 * rewire-entries writes; aarch64: two NOPs)? */
bool rw__entry_is_nops(const uint8_t *b);

/* The record of the entry at @sled, or NULL. Entry lock held. */
struct rw__entry *rw__entry_find(uintptr_t sled);

/*
 * A change of users: the caller sets traced/patch/tdata on a copy of what
 * it wants. rw__entry_apply() writes every entry whose bytes change in one
 * trap batch (x86-64: threads inside a run of one-byte NOPs about to
 * become a jump are moved past it) and then stores the new wants; on error nothing
 * changed. Entry lock held, text lock not.
 */
struct rw__entry_change {
	struct rw__entry *e;
	bool traced;
	uintptr_t patch;
};
int rw__entry_apply(const struct rw__entry_change *ch, size_t n);

/*
 * Function tracing registers what the trampolines call (once, from a
 * constructor): @enter(tdata, slot) on every traced entry, slot pointing
 * at the return address (on the stack on x86-64; on aarch64 a word of
 * the trampoline's frame that becomes X30 again); @ret(sp) from the return trampoline, which
 * returns where the function should have returned (sp: the stack pointer
 * after its return).
 */
void rw__entry_set_tracer(void (*enter)(void *tdata, uintptr_t *slot),
			  uintptr_t (*ret)(uintptr_t sp),
			  uintptr_t (*real)(pid_t tid, uintptr_t slot));

/*
 * The return address that the return trampoline replaced at @slot in
 * thread @tid's stack, or 0 if unknown (the kernel's
 * ftrace_graph_ret_addr()): stack checks see the real caller through a
 * traced call. Async-signal-safe; @tid must be the calling thread or a
 * thread that does not run meanwhile.
 */
uintptr_t rw__entry_real_return(pid_t tid, uintptr_t slot);

/* The address a hijacked return goes to (the return trampoline). */
uintptr_t rw__entry_return_tramp(void);

/* Floor fork handlers (src/text_poke.c). */
void rw__entry_atfork_prepare(void);
void rw__entry_atfork_parent(void);
void rw__entry_atfork_child(void);

#endif /* REWIRE_ENTRY_H */
