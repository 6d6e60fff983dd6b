/* SPDX-License-Identifier: MIT */
/*
 * Batched code patching with int3, and the SIGTRAP handler that makes it
 * safe for threads running the code meanwhile. The protocol is the
 * kernel's smp_text_poke_batch_finish() (arch/x86/kernel/alternative.c);
 * the comments at each step say what it guarantees.
 * Model: src/text_poke.pml (checked with Spin, ctest -L model).
 */
#include "text_poke.h"
#include "entry.h"
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

_Atomic uint64_t rw__stat_batches, rw__stat_sites_patched,
	rw__stat_sites_skipped, rw__stat_syncs, rw__stat_writes,
	rw__stat_traps_emulated, rw__stat_traps_replayed,
	rw__stat_mprotect_writes, rw__stat_sync_failures;

/*
 * The active batch, for the trap handler. Written by the patcher (text
 * lock held) only while every trap slot count is zero; read by handlers
 * only while they hold a count (see trap_get).
 */
static struct rw__poke *active_pokes;
static size_t active_n;

/*
 * Trap reference counts, one cache line each, indexed by CPU: a handler
 * takes the count of the CPU it runs on, so handlers on different CPUs
 * never share a line (the kernel's 2025 fix of one shared counter). The
 * patcher sets every count to 1 before arming a batch and drops its own
 * reference afterwards; a count of 0 means "no batch" and cannot be taken.
 */
#define TRAP_SLOTS 64
struct trap_slot {
	_Atomic long ref;
	char pad[RW_CACHELINE - sizeof(long)];
} __attribute__((aligned(RW_CACHELINE)));
static struct trap_slot trap_slots[TRAP_SLOTS];

/*
 * Every address that ever held one of rewire's int3 bytes, so that a
 * handler that runs after its batch retired knows the trap was ours and
 * replays the now-finished instruction (uprobes does the same). Insert-only
 * chunks, inserted under the text lock, searched lock-free; never freed.
 */
struct armed_chunk {
	size_t cap; /* power of two */
	size_t used;
	struct armed_chunk *_Atomic next;
	_Atomic uintptr_t slot[];
};
static struct armed_chunk *_Atomic armed_head;
static struct armed_chunk *armed_tail; /* text lock */

static size_t armed_hash(uintptr_t a, size_t cap)
{
	return (size_t)((a * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static bool armed_contains(uintptr_t a)
{
	struct armed_chunk *c =
		atomic_load_explicit(&armed_head, memory_order_acquire);

	for (; c; c = atomic_load_explicit(&c->next, memory_order_acquire)) {
		for (size_t i = armed_hash(a, c->cap), k = 0; k < c->cap;
		     k++, i = (i + 1) & (c->cap - 1)) {
			uintptr_t v = atomic_load_explicit(
				&c->slot[i], memory_order_acquire);
			if (v == a)
				return true;
			if (!v)
				break;
		}
	}
	return false;
}

static int armed_add(uintptr_t a)
{
	struct armed_chunk *c = armed_tail;
	size_t i;

	if (armed_contains(a))
		return 0;
	if (!c || c->used * 2 >= c->cap) {
		size_t cap = c ? c->cap * 2 : 1024;
		struct armed_chunk *n =
			calloc(1, sizeof(*n) + cap * sizeof(n->slot[0]));

		if (!n)
			return -ENOMEM;
		n->cap = cap;
		if (c)
			atomic_store_explicit(&c->next, n,
					      memory_order_release);
		else
			atomic_store_explicit(&armed_head, n,
					      memory_order_release);
		armed_tail = c = n;
	}
	for (i = armed_hash(a, c->cap); atomic_load(&c->slot[i]);
	     i = (i + 1) & (c->cap - 1))
		;
	atomic_store_explicit(&c->slot[i], a, memory_order_release);
	c->used++;
	return 0;
}

static struct trap_slot *trap_slot_self(void)
{
	int cpu = sched_getcpu();

	if (cpu < 0)
		cpu = (int)rw__gettid();
	return &trap_slots[(unsigned)cpu % TRAP_SLOTS];
}

static bool trap_get(struct trap_slot *s)
{
	long v = atomic_load(&s->ref);

	do {
		if (v <= 0)
			return false;
	} while (!atomic_compare_exchange_weak(&s->ref, &v, v + 1));
	return true;
}

static const struct rw__poke *batch_find(uintptr_t addr)
{
	size_t lo = 0, hi = active_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (active_pokes[mid].addr == addr)
			return &active_pokes[mid];
		if (active_pokes[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

enum { TRAP_HANDLED, TRAP_NOT_OURS, TRAP_RETRY };

static int trap_try(uintptr_t addr, void *uc)
{
	struct trap_slot *s = trap_slot_self();

	if (trap_get(s)) {
		const struct rw__poke *p = batch_find(addr);

		if (p) {
			/* Run the new instruction: a thread that meets a
			 * site mid-batch behaves as if the batch were done. */
			rw__arch_emulate(uc, addr, &p->insn);
			atomic_fetch_sub(&s->ref, 1);
			rw__stat_add(traps_emulated, 1);
			return TRAP_HANDLED;
		}
		atomic_fetch_sub(&s->ref, 1);
	}
	if (!armed_contains(addr))
		return TRAP_NOT_OURS;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (!rw__arch_is_trap((const uint8_t *)addr)) {
		struct rw__insn now;

		/* The batch finished between the trap and this handler: run
		 * the site's instruction now, emulated where the backend
		 * can (aarch64: qemu's TCG was seen to keep running a stale
		 * BRK after the batch, trapping here forever), else again
		 * from the site. */
		if (rw__arch_site_insn(addr, &now))
			rw__arch_emulate(uc, addr, &now);
		else
			rw__arch_set_ip(uc, addr);
		rw__stat_add(traps_replayed, 1);
		return TRAP_HANDLED;
	}
	/* A batch armed the site and has not yet published its counts to
	 * this CPU's view; it has (the counts are set before any int3 is
	 * written), so look again. */
	return TRAP_RETRY;
}

/*
 * The SIGTRAP handler. Runs with SA_NODEFER so that a site hit by a
 * chained handler traps again instead of killing the thread. Calls nothing
 * that could itself run a patched site, takes no lock, never waits.
 */
static void trap_handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	if (rw__arch_trap_is_breakpoint(si)) {
		uintptr_t addr = rw__arch_trap_addr(uc);

		for (int tries = 0; tries < 100000; tries++) {
			int r = trap_try(addr, uc);

			if (r == TRAP_HANDLED)
				goto out;
			if (r == TRAP_NOT_OURS)
				break;
			sched_yield();
		}
	}
	rw__signals_chain_trap(sig, si, uc);
out:
	errno = saved;
}

/* Batch construction. */

int rw__poke_init(struct rw__poke *p, uintptr_t addr,
		  const struct rw__insn *old_insn,
		  const struct rw__insn *new_insn)
{
	int n1, n2;

	memset(p, 0, sizeof(*p));
	p->addr = addr;
	n1 = rw__arch_encode(old_insn, addr, p->old);
	if (n1 < 0)
		return n1;
	n2 = rw__arch_encode(new_insn, addr, p->new);
	if (n2 < 0)
		return n2;
	if (n1 != n2)
		return -EINVAL;
	p->len = (uint8_t)n1;
	p->insn = *new_insn;
	p->insn.len = (uint8_t)n2;
	return 0;
}

static int poke_cmp(const void *a, const void *b)
{
	const struct rw__poke *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * Where the arch allows it (RW__ARCH_COALESCE_WRITES: x86-64, not aarch64,
 * whose sites are each written alone, by one 4-byte write), writes are
 * coalesced: sites closer than RUN_GAP bytes are written with
 * one write covering the bytes between them, which are rewritten with
 * their current (unchanged) values. A 10,000-site key is then about four
 * writes per step instead of 10,000, which keeps the window in which sites
 * hold int3 short (the writes dominate it). The price is that the kernel
 * copies (on write) the text pages between close sites too.
 */
#define RUN_GAP 4096
#define RUN_MAX 65536

enum step { STEP_ARM, STEP_TAIL, STEP_HEAD, STEP_UNTAIL, STEP_UNHEAD };

static void apply_step(uint8_t *buf, uintptr_t start, const struct rw__poke *p,
		       enum step step)
{
	uint8_t *b = buf + (p->addr - start);
	size_t h = rw__arch_trap_len(); /* the head: what the trap covers */

	switch (step) {
	case STEP_ARM:
		rw__arch_trap_insn(b);
		break;
	case STEP_TAIL:
		memcpy(b + h, p->new + h, p->len - h);
		break;
	case STEP_HEAD:
		memcpy(b, p->new, h);
		break;
	case STEP_UNTAIL:
		memcpy(b + h, p->old + h, p->len - h);
		break;
	case STEP_UNHEAD:
		memcpy(b, p->old, h);
		break;
	}
}

void (*rw__text_poke_observer)(uintptr_t addr, const uint8_t *buf, size_t len);

/* Write one step for every site; *wrote says whether anything changed. */
static int write_step(struct rw__poke *pokes, size_t n, enum step step,
		      bool *wrote)
{
	static uint8_t buf[RUN_MAX]; /* text lock */
	size_t i = 0;

	*wrote = false;
	while (i < n) {
		uintptr_t start = pokes[i].addr;
		uintptr_t end = start + pokes[i].len;
		size_t j = i + 1;
		int err;

		while (RW__ARCH_COALESCE_WRITES && j < n &&
		       pokes[j].addr - end <= RUN_GAP &&
		       pokes[j].addr + pokes[j].len - start <= RUN_MAX) {
			end = pokes[j].addr + pokes[j].len;
			j++;
		}
		memcpy(buf, (const void *)start, end - start);
		for (size_t k = i; k < j; k++)
			apply_step(buf, start, &pokes[k], step);
		if (memcmp(buf, (const void *)start, end - start)) {
			if (RW_UNLIKELY(rw__text_poke_observer != NULL))
				rw__text_poke_observer(start, buf, end - start);
			err = rw__text_write((void *)start, buf, end - start);
			if (err)
				return err;
			*wrote = true;
		}
		i = j;
	}
	return 0;
}

/*
 * A sync fails only when membarrier is refused and a thread does not answer
 * the fallback signal within 10 s. It is counted and logged, not returned:
 * the code is written, and the callers' state (key counts, call targets)
 * must follow the code. Such a thread serializes at its next return from
 * the kernel (an interrupt or a system call), which comes within a tick.
 */
static void sync_cores(void)
{
	int err;

	rw__stat_add(syncs, 1);
	if (RW_UNLIKELY(rw__text_poke_observer != NULL))
		rw__text_poke_observer(0, NULL, 0);
	err = rw__arch_sync_cores();
	if (err) {
		rw__stat_add(sync_failures, 1);
		rw__log("core sync failed: %s", rw_strerror(err));
	}
}

static bool trap_installed; /* text lock */

static int prepare_once(void)
{
	int err;

	if (trap_installed)
		return 0;
	rw__arch_sync_prepare();
	err = rw__signals_install_trap(trap_handler);
	if (err)
		return err;
	trap_installed = true;
	return 0;
}

static void publish(struct rw__poke *pokes, size_t n)
{
	active_pokes = pokes;
	active_n = n;
	/* seq_cst: the counts are visible before the first int3 is. */
	for (int i = 0; i < TRAP_SLOTS; i++)
		atomic_store(&trap_slots[i].ref, 1);
}

static void retire(void)
{
	for (int i = 0; i < TRAP_SLOTS; i++)
		atomic_fetch_sub(&trap_slots[i].ref, 1);
	for (int i = 0; i < TRAP_SLOTS; i++)
		while (atomic_load(&trap_slots[i].ref) > 0)
			sched_yield();
	active_pokes = NULL;
	active_n = 0;
}

/* Undo a batch that failed after arming: best effort, same protocol. */
static void rollback(struct rw__poke *pokes, size_t n)
{
	bool wrote;

	(void)write_step(pokes, n, STEP_ARM, &wrote);
	sync_cores();
	(void)write_step(pokes, n, STEP_UNTAIL, &wrote);
	sync_cores();
	(void)write_step(pokes, n, STEP_UNHEAD, &wrote);
	sync_cores();
	rw__log("batch of %zu sites rolled back", n);
}

int rw__text_poke_locked(struct rw__poke *pokes, size_t n)
{
	return rw__text_poke_locked_ex(pokes, n, NULL, NULL);
}

int rw__text_poke_locked_ex(struct rw__poke *pokes, size_t n,
			    int (*armed)(void *arg), void *arg)
{
	size_t i, live = 0;
	bool wrote;
	int err;

	if (!rw__arch_can_patch())
		return n ? -ENOSYS : 0;
	if (!n)
		return 0;

	/* Step 1: sort, reject overlaps, check every site before writing
	 * anything, and drop the sites that already hold their new bytes. */
	qsort(pokes, n, sizeof(*pokes), poke_cmp);
	for (i = 0; i < n; i++) {
		const void *at = (const void *)pokes[i].addr;

		if (i + 1 < n &&
		    pokes[i].addr + pokes[i].len > pokes[i + 1].addr)
			return -EINVAL;
		if (!memcmp(at, pokes[i].new, pokes[i].len)) {
			rw__stat_add(sites_skipped, 1);
			continue;
		}
		if (memcmp(at, pokes[i].old, pokes[i].len)) {
			/* No batch is armed under the text lock: a trap
			 * (int3, BRK) where the site expects other bytes is
			 * another tool's (a uprobe, a debugger). */
			size_t step = rw__arch_trap_len();

			for (size_t k = 0; k + step <= pokes[i].len; k += step)
				if (rw__arch_is_trap((const uint8_t *)at + k) &&
				    !rw__arch_is_trap(pokes[i].old + k)) {
					rw__log("site %p: a breakpoint (int3, "
						"BRK) of another tool at +%zu",
						at, k);
					return -RW_ERR_BREAKPOINT;
				}
			rw__log("site %p: unexpected bytes", at);
			return -EILSEQ;
		}
		pokes[live++] = pokes[i];
	}
	n = live;
	if (!n)
		return 0;
	err = prepare_once();
	if (!err)
		err = rw__signals_check_trap();
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		err = armed_add(pokes[i].addr);
		if (err)
			return err;
	}

	/* Publish the batch before the first int3 can be hit: a thread
	 * that traps finds it. */
	publish(pokes, n);

	/* Step 2: int3 on every first byte, then sync, so that no core can
	 * still run the old first byte with a new tail. */
	err = write_step(pokes, n, STEP_ARM, &wrote);
	if (err) {
		if (wrote)
			rollback(pokes, n);
		goto out;
	}
	sync_cores();

	/* Between 2 and 3: no thread can newly enter a site (the first byte
	 * traps); the caller may move threads that are inside one. */
	if (armed) {
		err = armed(arg);
		if (err) {
			rollback(pokes, n);
			goto out;
		}
	}

	/* Step 3: the tails. Only reachable through the int3 now. */
	err = write_step(pokes, n, STEP_TAIL, &wrote);
	if (err) {
		rollback(pokes, n);
		goto out;
	}
	if (wrote)
		sync_cores();

	/* Step 4: the first bytes; after this sync every core runs the new
	 * instructions and no new thread can trap. */
	err = write_step(pokes, n, STEP_HEAD, &wrote);
	if (err) {
		rollback(pokes, n);
		goto out;
	}
	sync_cores();
	rw__stat_add(batches, 1);
	rw__stat_add(sites_patched, n);
out:
	/* Step 5: wait for handlers still using the batch. */
	retire();
	return err;
}

RW_EXPORT int rw_text_encode(enum rw_text_op op, const void *site,
			     const void *target, uint8_t *out)
{
	struct rw__insn insn = { .op = (uint8_t)op,
				 .target = (uintptr_t)target };

	if (!out || op < RW_TEXT_NOP || op > RW_TEXT_RET)
		return -EINVAL;
	if (!rw__arch_can_patch())
		return -ENOSYS;
	return rw__arch_encode(&insn, (uintptr_t)site, out);
}

RW_EXPORT int rw_text_poke_batch(const struct rw_text_poke *pokes, size_t n)
{
	struct rw__poke *p;
	int err;

	if (n && !pokes)
		return -EINVAL;
	if (!rw__arch_can_patch())
		return n ? -ENOSYS : 0;
	if (!n)
		return 0;
	/* Before allocating: a handler that interrupted this thread inside
	 * an update may have interrupted malloc too. */
	if (rw__lock_held_by_me(&rw__text_lock))
		return -EDEADLK;
	p = calloc(n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct rw__insn oi, ni;
		uintptr_t a = (uintptr_t)pokes[i].addr;

		err = -EINVAL;
		if (!a || pokes[i].len == 0 || pokes[i].len > RW_TEXT_INSN_MAX)
			goto out;
		err = rw__arch_decode(pokes[i].old_insn, pokes[i].len, a, &oi);
		if (!err)
			err = rw__arch_decode(pokes[i].new_insn, pokes[i].len,
					      a, &ni);
		if (err)
			goto out;
		p[i].addr = a;
		p[i].len = (uint8_t)pokes[i].len;
		memcpy(p[i].old, pokes[i].old_insn, pokes[i].len);
		memcpy(p[i].new, pokes[i].new_insn, pokes[i].len);
		p[i].insn = ni;
	}
	/* Sites come from the caller: make sure reading them cannot fault
	 * (an unmapped or non-code address is an error, not a crash). */
	err = rw__text_check_code(p, n);
	if (err)
		goto out;
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		goto out;
	err = rw__text_poke_locked(p, n);
	rw__lock_release(&rw__text_lock);
out:
	free(p);
	return err;
}

RW_EXPORT void rw_text_get_stats(struct rw_text_stats *out)
{
	if (!out)
		return;
	out->batches = atomic_load(&rw__stat_batches);
	out->sites_patched = atomic_load(&rw__stat_sites_patched);
	out->sites_skipped = atomic_load(&rw__stat_sites_skipped);
	out->syncs = atomic_load(&rw__stat_syncs);
	out->writes = atomic_load(&rw__stat_writes);
	out->traps_emulated = atomic_load(&rw__stat_traps_emulated);
	out->traps_replayed = atomic_load(&rw__stat_traps_replayed);
	out->mprotect_writes = atomic_load(&rw__stat_mprotect_writes);
	out->sync_failures = atomic_load(&rw__stat_sync_failures);
}

/*
 * fork: the prepare handler takes the text lock, so no batch is in flight
 * when the address space is copied and the child holds no stray int3. The
 * one exception is fork() from a signal handler that interrupted a batch on
 * the same thread (the lock is ours: -EDEADLK): the child's copy of that
 * thread finishes the batch when the handler returns, with a reopened
 * /proc/self/mem and the only trap reference being its own.
 *
 * The layers above run their handlers around these, in the order of enum
 * rw__fork_level (src/internal.h): they register them, this file names
 * none of them.
 */
static const struct rw__fork_handlers *_Atomic fork_levels[RW__FORK_LEVELS];

/* The handlers that prepare ran, for parent and child: a level registered
 * between prepare and the rest (a constructor of a library loaded while
 * another thread forks) must not get a parent or child call alone. Only
 * the forking thread touches it; glibc serializes fork handlers. */
static const struct rw__fork_handlers *fork_ran[RW__FORK_LEVELS];
static bool fork_locked;

void rw__fork_handlers_register(enum rw__fork_level level,
				const struct rw__fork_handlers *h)
{
	if ((unsigned)level < RW__FORK_LEVELS)
		atomic_store_explicit(&fork_levels[level], h,
				      memory_order_release);
}

static void atfork_prepare(void)
{
	/* Lock order (src/internal.h): live patching, function tracing,
	 * providers, tracepoints, RCU, entries, text, then the cross-thread call lock (a batch
	 * may make a cross-thread call to sync cores). */
	for (int i = 0; i < RW__FORK_LEVELS; i++) {
		const struct rw__fork_handlers *h = atomic_load_explicit(
			&fork_levels[i], memory_order_acquire);

		fork_ran[i] = h;
		if (h && h->prepare)
			h->prepare();
	}
	rw__entry_atfork_prepare();
	fork_locked = rw__lock_acquire(&rw__text_lock) == 0;
	rw__threads_atfork_prepare();
}

static void atfork_parent(void)
{
	rw__threads_atfork_parent();
	if (fork_locked)
		rw__lock_release(&rw__text_lock);
	rw__entry_atfork_parent();
	for (int i = RW__FORK_LEVELS - 1; i >= 0; i--)
		if (fork_ran[i] && fork_ran[i]->parent)
			fork_ran[i]->parent();
}

static void atfork_child(void)
{
	rw__threads_atfork_child();
	rw__text_after_fork();
	rw__arch_sync_after_fork();
	if (fork_locked)
		rw__lock_reset(&rw__text_lock);
	else if (active_pokes)
		for (int i = 0; i < TRAP_SLOTS; i++)
			atomic_store(&trap_slots[i].ref, 1);
	rw__entry_atfork_child();
	/* After the text lock is free: the new call_rcu thread (RCU's child
	 * handler) may run a callback that takes it. */
	for (int i = RW__FORK_LEVELS - 1; i >= 0; i--)
		if (fork_ran[i] && fork_ran[i]->child)
			fork_ran[i]->child();
}

__attribute__((constructor)) static void text_poke_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
