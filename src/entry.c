/* SPDX-License-Identifier: MIT */
/*
 * Function entries shared by live patching and function tracing
 * (DESIGN.md 8b, src/entry.h). The bytes of an entry:
 *
 *	traced	patch	bytes			a traced call continues at
 *	no	0	the original NOPs	-
 *	no	T	jmp T			-
 *	yes	0	jmp trampoline		the body after the NOPs
 *	yes	T	jmp trampoline		T
 *
 * T is the new function or a transition's dispatcher, so a traced call
 * reaches the code the patch state chooses for its thread, exactly as an
 * untraced one would. A change of T while the entry stays traced is one
 * store of the continuation: a thread that read the old one in the
 * trampoline's common code is inside that code, which every stack check
 * counts as busy (rw__arch_stub_ranges), so no transition completes and no
 * dispatcher is freed under it.
 *
 * The layout of an entry is the architecture's (src/arch/entry_arch.h):
 * the patched site is its first RW__ENTRY_SITE_LEN bytes, a traced call
 * continues after its RW__ENTRY_LEN bytes.
 *
 * Entry NOPs. On x86-64 GCC's -fpatchable-function-entry emits one-byte
 * NOPs. A thread preempted after the first of them would resume in the
 * middle of the jump written over them, so a batch that writes a jump over
 * NOPs, once every first byte traps, moves every thread inside a NOP run
 * to its end, and undoes the batch if a thread cannot be moved. On aarch64
 * the site is one instruction (the first NOP; the second is never
 * written): there is no such run.
 */
#include "entry.h"

#include "arch/arch.h"
#include "text.h"
#include "threads.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The trampolines read these two fields (src/arch/x86_64/arch.c,
 * src/arch/aarch64/trace.c). */
_Static_assert(offsetof(struct rw__entry, tdata) == 0, "tdata first");
_Static_assert(offsetof(struct rw__entry, cont) == 8, "then cont");

#define MOVE_TIMEOUT_MS 1000
#define NBUCKETS 1024

struct rw__lock rw__entry_lock = RW__LOCK_INIT;
static struct rw__entry *buckets[NBUCKETS];

static size_t bucket_of(uintptr_t sled)
{
	return (size_t)((sled >> 4) ^ (sled >> 14)) & (NBUCKETS - 1);
}

bool rw__entry_is_nops(const uint8_t *b)
{
	return rw__entry_nops(b);
}

struct rw__entry *rw__entry_find(uintptr_t sled)
{
	for (struct rw__entry *e = buckets[bucket_of(sled)]; e; e = e->next)
		if (e->sled == sled)
			return e;
	return NULL;
}

int rw__entry_get(uintptr_t func, uintptr_t sled, const char *label,
		  struct rw__entry **out)
{
	size_t b = bucket_of(sled);
	struct rw__entry *e;

	for (e = buckets[b]; e; e = e->next)
		if (e->sled == sled)
			break;
	if (e && !e->traced && !e->patch) {
		/* Unused: the object may have changed under it. */
		if (!rw__entry_is_nops((const uint8_t *)sled))
			return -RW_ERR_NOT_PATCHABLE;
		memcpy(e->orig, (const void *)sled, RW__ENTRY_LEN);
		e->func = func;
		snprintf(e->label, sizeof(e->label), "%s", label);
	}
	if (e) {
		*out = e;
		return 0;
	}
	if (!rw__entry_is_nops((const uint8_t *)sled))
		return -RW_ERR_NOT_PATCHABLE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->func = func;
	e->sled = sled;
	memcpy(e->orig, (const void *)sled, RW__ENTRY_LEN);
	snprintf(e->label, sizeof(e->label), "%s", label);
	e->next = buckets[b];
	buckets[b] = e;
	*out = e;
	return 0;
}

/* ---- Writing ----------------------------------------------------------- */

struct move_job {
	const struct rw__poke *pokes;
	size_t n;
};

/* The poke whose run of one-byte NOPs @ip is strictly inside, or NULL. */
static const struct rw__poke *nop_run_at(const struct move_job *j, uintptr_t ip)
{
	for (size_t i = 0; i < j->n; i++)
		if (rw__entry_nop_run(j->pokes[i].old) &&
		    ip > j->pokes[i].addr &&
		    ip < j->pokes[i].addr + RW__ENTRY_LEN)
			return &j->pokes[i];
	return NULL;
}

static void move_ctx(const struct move_job *j, void *uc)
{
	const struct rw__poke *p = nop_run_at(j, rw__arch_ip(uc));

	if (p)
		/* The NOPs left have no effect: skip them. */
		rw__arch_set_ip(uc, p->addr + RW__ENTRY_LEN);
}

static void move_fn(void *arg, void *uc)
{
	void *outer[8];
	size_t n;

	if (!uc)
		return;
	move_ctx(arg, uc);
	/* The thread may be running a signal handler that interrupted it in
	 * a NOP run: that context resumes when the handler returns. */
	n = rw__arch_outer_contexts(uc, outer, 8);
	for (size_t i = 0; i < n; i++)
		move_ctx(arg, outer[i]);
}

static bool move_filter(pid_t tid, void *arg)
{
	uintptr_t ip;
	int r = rw__thread_blocked_ip(tid, &ip);

	if (r < 0)
		return r != -ESRCH; /* unknown: ask it */
	if (r == 0)
		return true; /* running: may be anywhere */
	/* Blocked: only a thread asleep in a page fault on a NOP can be
	 * inside one; it answers when it wakes. */
	return nop_run_at(arg, ip) != NULL;
}

static _Thread_local int move_timeout_ms;

static int move_threads(void *arg)
{
	struct rw_tid_list late;
	int err;

	err = rw__on_threads(move_fn, arg, move_filter, arg, move_timeout_ms,
			     &late);
	if (err == -RW_ERR_THREAD_TIMEOUT) {
		rw__text_error_set("%zu thread(s) (first: %d) did not answer "
				   "while the entries were armed",
				   late.count,
				   late.count ? (int)late.tids[0] : 0);
	}
	rw_tid_list_free(&late);
	return err;
}

static int write_pokes(struct rw__poke *pokes, size_t n)
{
	struct move_job j = { .pokes = pokes, .n = n };
	bool nops = false;
	int err = 0;

	for (size_t i = 0; i < n; i++)
		if (rw__entry_nop_run(pokes[i].old))
			nops = true;
	/* A busy machine may take long to give every running thread a CPU:
	 * the batch is undone and tried again with more patience. */
	for (int tries = 0; tries < 3; tries++) {
		move_timeout_ms = MOVE_TIMEOUT_MS << tries;
		err = rw__lock_acquire(&rw__text_lock);
		if (err)
			return err;
		err = rw__text_poke_locked_ex(pokes, n,
					      nops ? move_threads : NULL, &j);
		rw__lock_release(&rw__text_lock);
		if (err != -RW_ERR_THREAD_TIMEOUT)
			break;
	}
	return err;
}

static int jump_bytes(uintptr_t site, uintptr_t target, struct rw__poke *p)
{
	int err = rw__arch_tramp_insn(site, (void *)target, &p->insn);

	if (err)
		return err;
	err = rw__arch_encode(&p->insn, site, p->new);
	p->insn.len = RW__ENTRY_SITE_LEN;
	return err < 0 ? err : 0;
}

/* The bytes @e must hold for (@traced, @patch). Text lock held. */
static int entry_bytes(struct rw__entry *e, bool traced, uintptr_t patch,
		       struct rw__poke *p)
{
	const uint8_t *cur = (const uint8_t *)e->sled;

	memset(p, 0, sizeof(*p));
	p->addr = e->sled;
	p->len = RW__ENTRY_SITE_LEN;
	memcpy(p->old, cur, RW__ENTRY_SITE_LEN);
	/* The entry holds our NOPs or jump; a breakpoint on an instruction
	 * of them is another tool's (a uprobe placed after us, a debugger):
	 * writing over it would leave that tool restoring a byte into our
	 * jump later. Where the site holds a jump, the breakpoints to look
	 * for are after it (none on x86-64: the jump is the whole entry). */
	for (size_t k = 0; k < RW__ENTRY_LEN; k += RW__ENTRY_TRAP_STEP) {
		if (k && k < RW__ENTRY_SITE_LEN && rw__entry_jump_at(cur))
			continue;
		if (rw__entry_trap_at(cur + k) &&
		    !rw__entry_trap_at(e->orig + k)) {
			rw__text_error_set("a breakpoint (int3) from another "
					   "tool, a uprobe (bpftrace, perf "
					   "probe) or a debugger, is at "
					   "%s+%zu: remove it first",
					   e->label,
					   (size_t)(e->sled - e->func) + k);
			return -RW_ERR_BREAKPOINT;
		}
	}
	if (traced) {
		if (!e->tramp) {
			int err = rw__arch_trace_tramp_alloc(e->sled, e,
							     &e->tramp);
			if (err)
				return err;
		}
		return jump_bytes(e->sled, (uintptr_t)e->tramp, p);
	}
	if (patch)
		return jump_bytes(e->sled, patch, p);
	memcpy(p->new, e->orig, RW__ENTRY_SITE_LEN);
	p->insn.op = RW_TEXT_NOP;
	p->insn.len = RW__ENTRY_SITE_LEN;
	return 0;
}

int rw__entry_apply(const struct rw__entry_change *ch, size_t n)
{
	struct rw__poke *pokes;
	size_t np = 0;
	int err = 0;

	if (n == 0)
		return 0;
	pokes = calloc(n, sizeof(*pokes));
	if (!pokes)
		return -ENOMEM;
	err = rw__lock_acquire(&rw__text_lock);
	if (err) {
		free(pokes);
		return err;
	}
	for (size_t i = 0; i < n && !err; i++) {
		err = entry_bytes(ch[i].e, ch[i].traced, ch[i].patch,
				  &pokes[np]);
		if (!err && memcmp(pokes[np].old, pokes[np].new,
				   RW__ENTRY_SITE_LEN) != 0)
			np++;
	}
	rw__lock_release(&rw__text_lock);
	/* A traced entry's continuation is published before a batch can
	 * send a thread to its trampoline. */
	for (size_t i = 0; i < n && !err; i++)
		if (ch[i].traced)
			atomic_store_explicit(
				&ch[i].e->cont,
				ch[i].patch ? ch[i].patch
					    : ch[i].e->sled + RW__ENTRY_LEN,
				memory_order_release);
	if (!err && np)
		err = write_pokes(pokes, np);
	free(pokes);
	if (err) {
		/* Put back the continuations of entries that stay traced. */
		for (size_t i = 0; i < n; i++)
			if (ch[i].e->traced)
				atomic_store_explicit(
					&ch[i].e->cont,
					ch[i].e->patch
						? ch[i].e->patch
						: ch[i].e->sled + RW__ENTRY_LEN,
					memory_order_release);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		ch[i].e->traced = ch[i].traced;
		ch[i].e->patch = ch[i].patch;
	}
	return 0;
}

/* ---- Tracer --------------------------------------------------------------- */

static uintptr_t (*_Atomic real_return)(pid_t tid, uintptr_t slot);

void rw__entry_set_tracer(void (*enter)(void *tdata, uintptr_t *slot),
			  uintptr_t (*ret)(uintptr_t sp),
			  uintptr_t (*real)(pid_t tid, uintptr_t slot))
{
	rw__arch_trace_set(enter, ret);
	atomic_store(&real_return, real);
}

uintptr_t rw__entry_real_return(pid_t tid, uintptr_t slot)
{
	uintptr_t (*fn)(pid_t, uintptr_t) = atomic_load(&real_return);

	return fn ? fn(tid, slot) : 0;
}

uintptr_t rw__entry_return_tramp(void)
{
	return rw__arch_trace_return_addr();
}

/* ---- fork -------------------------------------------------------------- */

static bool fork_locked;

void rw__entry_atfork_prepare(void)
{
	fork_locked = rw__lock_acquire(&rw__entry_lock) == 0;
}

void rw__entry_atfork_parent(void)
{
	if (fork_locked)
		rw__lock_release(&rw__entry_lock);
}

void rw__entry_atfork_child(void)
{
	rw__lock_reset(&rw__entry_lock);
}
