/* SPDX-License-Identifier: MIT */
/*
 * Live patching: the patch stack, transitions and thread states, after the
 * kernel's kernel/livepatch/{core,patch,transition}.c.
 *
 * Thread state. Every thread has a 32-bit generation in initial-exec TLS
 * (thread_gen). A transition is a series of epochs e_0 < ... < e_k: e_0
 * when it starts, one more for each reversal. A thread whose generation is
 * e_i is in the state that was the target at epoch i; any other value
 * (older epochs, 0 for threads created before) means the state the first
 * epoch started from. A thread switches by storing the current epoch in
 * its generation. So starting a transition puts every existing thread in
 * the start state without touching any of them, and reversing it leaves
 * every thread where it is.
 *
 * Dispatch. During a transition the entry of every function involved
 * jumps to a dispatcher (rw__arch_dispatch_alloc) that compares the
 * thread's generation with each e_i and jumps to that side's function.
 * Old dispatchers stay valid after a reversal (they send each generation
 * they know to the same side as the new one), and are freed only once no
 * thread can be inside (a stub sweep sees no thread's address in them).
 *
 * Switching, each round (rw_patch_wait, the first at enable):
 *   - threads created by pthread_create() start in the target state: the
 *     start routine is wrapped and stores the current epoch first;
 *   - a registered thread blocked in a system call is checked from
 *     outside (rw__lp_check_blocked). Its generation g is first set to
 *     g | bit 31 with a compare-and-swap; a dispatcher that the thread
 *     runs meanwhile clears the bit (locked btr), so the final
 *     compare-and-swap g | bit 31 -> epoch fails if the thread entered
 *     any patched function during the check;
 *   - every other pending thread gets rewire's signal (rw__on_threads)
 *     and checks its own stack in the handler (rw__lp_check_self);
 *   - a thread whose address is inside a dispatcher or stub is "busy":
 *     it may hold a generation read before the switch.
 * When a round finds every thread in the target state, the entries are
 * rewritten to their final form (jmp to the new function, the previous
 * patch's function, or the original NOPs) and the transition completes.
 *
 * Entries. The bytes of every entry are derived from a record shared
 * with function tracing (src/entry.c): this file says where the entry
 * should send a thread (the original body, a dispatcher, a new function),
 * and a traced entry keeps its trampoline and continues there. The entry
 * writer also moves threads out of runs of one-byte NOPs that become a
 * jump.
 *
 * Model: src/livepatch/transition.pml (Spin: the dispatcher's generation
 * check, the "being decided" bit, the switch by CAS, gen_adopt()).
 *
 * Locking: lp_lock serializes every rw_patch_* call and the patch stack;
 * it nests outside the entry lock, the text lock and the cross-thread call
 * lock.
 */
#include "lp.h"

#include "../arch/arch.h"
#include "../entry.h"
#include "../text_poke.h"
#include "../threads.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_DECIDING 0x80000000u
#define MAX_EPOCHS RW__ARCH_DISPATCH_ARMS
#define ROUND_TIMEOUT_MS 1000

/* The calling thread's generation; read by dispatchers at %fs:tls_off. */
static __thread _Atomic uint32_t thread_gen
	__attribute__((tls_model("initial-exec")));

/*
 * The epoch of the transition in progress (0: none), for new threads and
 * rw_patch_quiescent(). Written under lp_lock.
 */
static _Atomic uint32_t active_epoch;
/* Last epoch handed out; under lp_lock. */
static uint32_t last_epoch;

static struct rw__lock lp_lock = RW__LOCK_INIT;

/* ---- Thread registry ----------------------------------------------------
 *
 * Threads created through pthread_create() (and the thread that loaded
 * librewire) register the address of their generation, so that a blocked
 * thread can be switched from outside. Slots live in chunks that
 * are never freed; a slot is claimed with a CAS on its tid.
 */
struct reg_slot {
	_Atomic pid_t tid;
	_Atomic(_Atomic uint32_t *) gen;
	/* The checker holds it while it uses gen; an exiting thread waits
	 * for it to drop before its TLS goes away. */
	_Atomic int busy;
};
#define REG_CHUNK 510
struct reg_chunk {
	struct reg_slot s[REG_CHUNK];
	_Atomic(struct reg_chunk *) next;
};
static struct reg_chunk reg_first;
static pthread_key_t reg_key;
static bool reg_key_ok;

static struct reg_slot *reg_claim(pid_t tid)
{
	struct reg_chunk *c = &reg_first;

	for (;;) {
		for (size_t i = 0; i < REG_CHUNK; i++) {
			pid_t z = 0;

			if (atomic_load_explicit(&c->s[i].tid,
						 memory_order_relaxed) == 0 &&
			    atomic_compare_exchange_strong(&c->s[i].tid, &z,
							   tid))
				return &c->s[i];
		}
		struct reg_chunk *n = atomic_load(&c->next);

		if (!n) {
			struct reg_chunk *fresh = calloc(1, sizeof(*fresh));

			if (!fresh)
				return NULL;
			if (!atomic_compare_exchange_strong(&c->next, &n,
							    fresh))
				free(fresh); /* n holds the winner */
			else
				n = fresh;
		}
		c = n;
	}
}

static void reg_release(void *v)
{
	struct reg_slot *s = v;

	atomic_store(&s->gen, NULL);
	atomic_store(&s->tid, 0);
	while (atomic_load(&s->busy))
		sched_yield();
}

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_key_init(void)
{
	reg_key_ok = pthread_key_create(&reg_key, reg_release) == 0;
}

/*
 * Register the calling thread (not async-signal-safe). Only with the key
 * whose destructor releases the slot at thread exit: a slot left behind
 * would send a later thread with the same tid to freed memory.
 */
static void reg_self(void)
{
	struct reg_slot *s;

	pthread_once(&reg_once, reg_key_init);
	if (!reg_key_ok)
		return;
	s = reg_claim(rw__gettid());
	if (!s)
		return;
	atomic_store(&s->gen, &thread_gen);
	if (pthread_setspecific(reg_key, s)) {
		atomic_store(&s->gen, NULL);
		atomic_store(&s->tid, 0);
	}
}

__attribute__((constructor)) static void lp_init(void)
{
	reg_self();
}

/*
 * The calling thread adopts the epoch of the transition in progress
 * (start_wrap(), rw_patch_quiescent()). Every verdict of a round that
 * counts a thread as switched leaves the round's epoch in its generation
 * (check_fn(), check_remote()); rewire's signal can run check_fn() in
 * this very thread between a load of active_epoch and a store, and a
 * plain store would then put back an epoch read before the verdict (the
 * start state, or the side a reversal left) while the round counts the
 * thread as switched. So: the generation first, then active_epoch, then
 * a CAS that fails if a verdict came in between.
 */
static void gen_adopt(void)
{
	uint32_t g = atomic_load(&thread_gen), e;

	for (;;) {
		e = atomic_load(&active_epoch);
		if (!e || g == e)
			return;
		/* On failure g holds the new value: a verdict, or the
		 * checker's bit 31. */
		if (atomic_compare_exchange_strong(&thread_gen, &g, e))
			return;
	}
}

/*
 * The pthread_create() wrapper. Only where live patching works: under
 * ThreadSanitizer (generic backend) the wrapper would run before TSan set
 * the new thread up.
 */
#if (defined(RW_BACKEND_X86_64) || defined(RW_BACKEND_AARCH64)) && \
	!defined(RW_TSAN)
struct start_arg {
	void *(*fn)(void *);
	void *arg;
};

static void *start_wrap(void *p)
{
	struct start_arg sa = *(struct start_arg *)p;

	free(p);
	/* A new thread has no frame of any patched function: it starts in
	 * the target state of the transition in progress. */
	gen_adopt();
	reg_self();
	return sa.fn(sa.arg);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *,
				 void *(*)(void *), void *);

RW_EXPORT int pthread_create(pthread_t *t, const pthread_attr_t *attr,
			     void *(*fn)(void *), void *arg)
{
	static _Atomic(pthread_create_fn) real;
	pthread_create_fn r = atomic_load(&real);
	struct start_arg *sa;
	int ret;

	if (!r) {
		r = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
		if (!r)
			return EAGAIN;
		atomic_store(&real, r);
	}
	sa = malloc(sizeof(*sa));
	if (!sa)
		return r(t, attr, fn, arg);
	sa->fn = fn;
	sa->arg = arg;
	ret = r(t, attr, start_wrap, sa);
	if (ret)
		free(sa);
	return ret;
}
#endif

/* A sorted snapshot of the registry: tid -> slot. */
struct reg_ent {
	pid_t tid;
	struct reg_slot *slot;
};

static int reg_ent_cmp(const void *a, const void *b)
{
	const struct reg_ent *x = a, *y = b;

	return (x->tid > y->tid) - (x->tid < y->tid);
}

static int reg_snapshot(struct reg_ent **out, size_t *n)
{
	size_t cap = 0, k = 0;
	struct reg_ent *v = NULL;

	for (struct reg_chunk *c = &reg_first; c; c = atomic_load(&c->next))
		cap += REG_CHUNK;
	v = malloc(cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (struct reg_chunk *c = &reg_first; c && k < cap;
	     c = atomic_load(&c->next))
		for (size_t i = 0; i < REG_CHUNK && k < cap; i++) {
			pid_t tid = atomic_load(&c->s[i].tid);

			if (tid) {
				v[k].tid = tid;
				v[k++].slot = &c->s[i];
			}
		}
	qsort(v, k, sizeof(*v), reg_ent_cmp);
	*out = v;
	*n = k;
	return 0;
}

static struct reg_slot *reg_find(struct reg_ent *v, size_t n, pid_t tid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].tid == tid)
			return v[mid].slot;
		if (v[mid].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- Patches, sites and the stack ------------------------------------- */

/* One old function, shared by every patch of it. */
struct lp_site {
	uintptr_t sled;	    /* where the entry's jump goes */
	uintptr_t old_addr; /* function entry */
	size_t old_size;
	/* The old function's pieces (NAME.cold, NAME.part.N): its code too. */
	struct rw__lp_range *pieces;
	size_t npieces;
	struct rw__entry *entry; /* the entry's record, shared with tracing */
	/* Patches applied or in transition, bottom to top. */
	struct lp_layer {
		struct rw_patch *p;
		size_t fi; /* index into p->obj.funcs */
	} * layers;
	size_t nlayers, cap;
	void *stub; /* current dispatcher, or NULL */
	char label[96];
	struct lp_site *next;
};

struct rw_patch {
	struct rw__lp_obj obj;
	int state;
	bool forced;
	struct lp_site **sites; /* per func */
	uint64_t trans_start_ns, trans_ns;
	unsigned attempts;
	size_t threads_total, threads_switched;
	size_t npending;
	struct rw_patch_thread pending[RW_PATCH_INFO_THREADS];
	bool target_patched;
	/* Applied at start from the control server's patch directory
	 * (rw__patch_set_from_dir); written once, by the server thread,
	 * before the patch is listed to anyone. */
	bool from_dir;
	/* References on the objects it patches, so that a dlclose() by the
	 * program cannot unmap code with our jumps in it, and on the objects
	 * its references point into, which its code uses (one per function,
	 * then one per reference; NULL for the main program). */
	void **pins;
	size_t npins;
	struct rw_patch *next; /* all loaded patches, load order */
};

static struct rw_patch *patches;
static struct lp_site *sites;

/* A function of the transition: its site and both sides. */
struct tf {
	struct lp_site *site;
	uintptr_t impl[2]; /* [0] unpatched side, [1] patched side */
	uintptr_t size[2]; /* code size of each side (for stack checks) */
	bool orig[2];	   /* side is the original body */
	/* Each side's pieces outside [impl, impl + size). */
	const struct rw__lp_range *pieces[2];
	size_t npieces[2];
};

static struct trans {
	struct rw_patch *p;
	size_t nep;
	uint32_t ep[MAX_EPOCHS];
	bool side[MAX_EPOCHS]; /* target state at each epoch */
	struct tf *tf;
	size_t ntf;
	/* Patches a replace will take over at completion. */
	bool replace;
} tr;

/* Dispatchers no longer referenced by an entry, freed after a sweep. */
struct retired_stub {
	void *stub;
	struct retired_stub *next;
};
static struct retired_stub *retired;

static bool trans_active(void)
{
	return tr.p != NULL;
}

static bool target_now(void)
{
	return tr.side[tr.nep - 1];
}

/* The state (true = patched) of a thread whose generation is @g. */
static bool state_of(uint32_t g)
{
	g &= ~GEN_DECIDING;
	for (size_t i = tr.nep; i-- > 0;)
		if (tr.ep[i] == g)
			return tr.side[i];
	return !tr.side[0];
}

static struct lp_site *site_find(uintptr_t sled)
{
	for (struct lp_site *s = sites; s; s = s->next)
		if (s->sled == sled)
			return s;
	return NULL;
}

static struct lp_site *site_get(const struct rw__lp_func *f)
{
	struct lp_site *s = site_find(f->sled);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->sled = f->sled;
	s->old_addr = f->old_addr;
	s->old_size = f->old_size;
	if (f->nold_pieces) {
		s->pieces = malloc(f->nold_pieces * sizeof(*s->pieces));
		if (!s->pieces) {
			free(s);
			return NULL;
		}
		memcpy(s->pieces, f->old_pieces,
		       f->nold_pieces * sizeof(*s->pieces));
		s->npieces = f->nold_pieces;
	}
	snprintf(s->label, sizeof(s->label), "%s", f->label);
	if (rw__lock_acquire(&rw__entry_lock) == 0) {
		int err = rw__entry_get(f->old_addr, f->sled, f->label,
					&s->entry);

		rw__lock_release(&rw__entry_lock);
		if (err)
			s->entry = NULL;
	}
	if (!s->entry) {
		free(s->pieces);
		free(s);
		return NULL;
	}
	s->next = sites;
	sites = s;
	return s;
}

static int layer_push(struct lp_site *s, struct rw_patch *p, size_t fi)
{
	if (s->nlayers == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		struct lp_layer *l = realloc(s->layers, cap * sizeof(*l));

		if (!l)
			return -ENOMEM;
		s->layers = l;
		s->cap = cap;
	}
	s->layers[s->nlayers].p = p;
	s->layers[s->nlayers++].fi = fi;
	return 0;
}

static void layer_remove(struct lp_site *s, struct rw_patch *p)
{
	size_t k = 0;

	for (size_t i = 0; i < s->nlayers; i++)
		if (s->layers[i].p != p)
			s->layers[k++] = s->layers[i];
	s->nlayers = k;
}

/* The code a site runs with the layers below index @upto: side @side of
 * @t. */
static void site_impl(const struct lp_site *s, size_t upto, struct tf *t,
		      int side)
{
	if (upto == 0) {
		/* The body goes on after the entry's jump. */
		t->impl[side] = s->sled + RW__ARCH_INSN_LEN;
		t->size[side] = s->old_size;
		t->orig[side] = true;
		t->pieces[side] = s->pieces;
		t->npieces[side] = s->npieces;
		return;
	}
	const struct rw__lp_func *f =
		&s->layers[upto - 1].p->obj.funcs[s->layers[upto - 1].fi];

	t->impl[side] = f->new_addr;
	t->size[side] = f->new_size ? f->new_size : 1;
	t->orig[side] = false;
	t->pieces[side] = f->new_pieces;
	t->npieces[side] = f->nnew_pieces;
}

/* ---- Writing entries ----------------------------------------------------- */

/*
 * Point the entries of the transition at @impl[i] (0: the original body),
 * through their shared records (src/entry.c): a traced entry keeps its
 * trampoline and continues there.
 */
static int write_entries(const uintptr_t *impl)
{
	struct rw__entry_change *ch = calloc(tr.ntf, sizeof(*ch));
	int err;

	if (!ch)
		return -ENOMEM;
	err = rw__lock_acquire(&rw__entry_lock);
	if (!err) {
		for (size_t i = 0; i < tr.ntf; i++) {
			ch[i].e = tr.tf[i].site->entry;
			ch[i].traced = ch[i].e->traced;
			ch[i].patch = impl[i];
		}
		err = rw__entry_apply(ch, tr.ntf);
		rw__lock_release(&rw__entry_lock);
	}
	free(ch);
	return err;
}

/* ---- Dispatchers ------------------------------------------------------- */

static int build_stub(struct tf *t, void **stub)
{
	struct rw__arch_arm arms[MAX_EPOCHS];
	intptr_t off = rw__arch_tls_offset((const void *)&thread_gen);
	int err;

	if (off < INT32_MIN || off > INT32_MAX)
		return -ERANGE;
	for (size_t i = 0; i < tr.nep; i++) {
		arms[i].gen = tr.ep[i];
		arms[i].target = t->impl[tr.side[i]];
	}
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		return err;
	err = rw__arch_dispatch_alloc(t->site->sled, (int32_t)off, arms, tr.nep,
				      t->impl[!tr.side[0]], stub);
	rw__lock_release(&rw__text_lock);
	return err;
}

static size_t nretired;

static void retire_stub(void *stub)
{
	struct retired_stub *r = malloc(sizeof(*r));

	if (!r) /* leak it rather than free it early */
		return;
	r->stub = stub;
	r->next = retired;
	retired = r;
	nretired++;
}

/*
 * An unwind takes about 10 KiB of stack (src/livepatch/unwind.c). A handler
 * running on a small alternate signal stack (sigaltstack) does not have
 * that: it answers "not yet" instead.
 */
#define UNWIND_STACK_NEED (24 * 1024)
static bool stack_room(void)
{
	stack_t ss;
	char here;

	if (sigaltstack(NULL, &ss) || !(ss.ss_flags & SS_ONSTACK))
		return true;
	return (uintptr_t)&here - (uintptr_t)ss.ss_sp > UNWIND_STACK_NEED;
}

/*
 * Free the retired dispatchers once no thread can be inside one: every
 * running thread looks at its own stack (through signal frames: a handler
 * may run on top of a context interrupted in a dispatcher); a blocked
 * thread is in the kernel, so only its user address matters. A thread
 * that cannot tell (no answer, failed unwind) keeps them all for the next
 * sweep. Costs a signal to every running thread, so it runs only once
 * RETIRE_SWEEP dispatchers wait.
 */
#define RETIRE_SWEEP 64
struct sweep {
	struct rw__lp_range *ranges;
	size_t n;
	_Atomic bool busy;
};

static bool in_ranges(const struct rw__lp_range *r, size_t n, uintptr_t ip)
{
	for (size_t i = 0; i < n; i++)
		if (ip >= r[i].start && ip < r[i].end)
			return true;
	return false;
}

static void sweep_fn(void *arg, void *uc)
{
	struct sweep *w = arg;
	struct rw__lp_check c = { .busy = w->ranges, .nbusy = w->n };

	if (!uc)
		return;
	if (!stack_room() || rw__lp_check_self(uc, &c) != RW__LP_SAFE)
		atomic_store(&w->busy, true);
}

static bool sweep_filter(pid_t tid, void *arg)
{
	struct sweep *w = arg;
	uintptr_t ip;
	int r = rw__thread_blocked_ip(tid, &ip);

	if (r == -ESRCH)
		return false;
	if (r <= 0)
		return true;
	return in_ranges(w->ranges, w->n, ip);
}

static int range_cmp(const void *a, const void *b);

static void sweep_retired(bool always)
{
	struct sweep w = { 0 };
	struct rw_tid_list late;
	size_t i = 0;
	int err;

	if (!retired || (!always && nretired < RETIRE_SWEEP))
		return;
	w.ranges = calloc(nretired + 1, sizeof(*w.ranges));
	if (!w.ranges)
		return;
	for (struct retired_stub *r = retired; r; r = r->next, i++) {
		w.ranges[i].start = (uintptr_t)r->stub;
		w.ranges[i].end = (uintptr_t)r->stub + RW__ARCH_DISPATCH_SIZE;
	}
	/* A traced call may hold a dispatcher's address, read from its
	 * entry's record, in function tracing's common code. */
	rw__arch_trace_code(&w.ranges[i].start, &w.ranges[i].end);
	if (w.ranges[i].end > w.ranges[i].start)
		i++;
	w.n = i;
	qsort(w.ranges, w.n, sizeof(*w.ranges), range_cmp);
	err = rw__on_threads(sweep_fn, &w, sweep_filter, &w, ROUND_TIMEOUT_MS,
			     &late);
	rw_tid_list_free(&late);
	free(w.ranges);
	if (err || atomic_load(&w.busy)) {
		rw__log("%zu retired dispatchers kept (%s)", nretired,
			err ? rw_strerror(err) : "a thread may be inside");
		return;
	}
	if (rw__lock_acquire(&rw__text_lock))
		return;
	while (retired) {
		struct retired_stub *r = retired;

		retired = r->next;
		rw__arch_dispatch_free(r->stub);
		free(r);
	}
	nretired = 0;
	rw__lock_release(&rw__text_lock);
}

/*
 * A write of code (an entry, a dispatcher, a jump stub) failed: copy the
 * writer's sentence (src/text.c) into rw_patch_last_error(). Writes run in
 * the calling thread; the caller cleared the sentence first.
 */
static void note_text_error(void)
{
	const char *why = rw__text_error();

	if (!why[0])
		return;
	/* The entries' writer explains a foreign breakpoint in full. */
	if (strstr(why, "breakpoint (int3)"))
		rw__lp_set_error("%s", why);
	else
		rw__lp_set_error("cannot write code: %s", why);
}

/* Point every entry of the transition at a fresh dispatcher. */
static int install_dispatchers(void)
{
	void **fresh;
	int err = 0;
	size_t i;

	rw__text_error_clear();
	fresh = calloc(tr.ntf, sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	for (i = 0; i < tr.ntf && !err; i++)
		err = build_stub(&tr.tf[i], &fresh[i]);
	if (!err)
		err = write_entries((const uintptr_t *)fresh);
	if (err) {
		note_text_error();
		/* Never referenced: free at once. */
		rw__lock_acquire(&rw__text_lock);
		for (i = 0; i < tr.ntf; i++)
			if (fresh[i])
				rw__arch_dispatch_free(fresh[i]);
		rw__lock_release(&rw__text_lock);
		goto out;
	}
	for (i = 0; i < tr.ntf; i++) {
		struct lp_site *s = tr.tf[i].site;

		if (s->stub)
			retire_stub(s->stub);
		s->stub = fresh[i];
	}
out:
	free(fresh);
	return err;
}

/* ---- Checking threads ----------------------------------------------------- */

struct round {
	struct rw__lp_check chk; /* template: ranges */
	struct rw__lp_range *funcs, *busy;
	const char **func_labels;
	uint32_t epoch;
	bool target;
	struct reg_ent *reg;
	size_t nreg;
	/* Results, filled by the filter (caller) and handlers. */
	_Atomic size_t nres;
	size_t cap;
	struct rw_patch_thread *res;
	_Atomic size_t total, switched;
};

static void round_note(struct round *r, pid_t tid, int why, uintptr_t ip,
		       size_t idx)
{
	size_t i = atomic_fetch_add(&r->nres, 1);

	if (i >= r->cap)
		return;
	r->res[i].tid = tid;
	r->res[i].why = why;
	r->res[i].ip = ip;
	r->res[i].func[0] = 0;
	if (why == RW_PT_ON_STACK && idx < r->chk.nfuncs) {
		const char *l = r->func_labels[idx];
		size_t k = 0;

		for (; l[k] && k + 1 < sizeof(r->res[i].func); k++)
			r->res[i].func[k] = l[k];
		r->res[i].func[k] = 0;
	}
}

static int why_of(int rc)
{
	switch (rc) {
	case RW__LP_ON_STACK:
		return RW_PT_ON_STACK;
	case RW__LP_UNWIND_FAILED:
		return RW_PT_UNWIND_FAILED;
	default:
		return RW_PT_BUSY;
	}
}

/* In a signal handler of a pending thread (or the caller, uc NULL). */
static void check_fn(void *arg, void *uc)
{
	struct round *r = arg;
	struct rw__lp_check c = r->chk;
	uint32_t g = atomic_load(&thread_gen);
	int rc;

	atomic_fetch_add(&r->total, 1);
	if (state_of(g) == r->target) {
		/* Stamped with the epoch, so that an interrupted
		 * gen_adopt() cannot undo the verdict. */
		atomic_store(&thread_gen, r->epoch);
		atomic_fetch_add(&r->switched, 1);
		return;
	}
	/* The interrupted frame is checked first, at its exact address: a
	 * thread inside a dispatcher is BUSY. */
	rc = stack_room() ? rw__lp_check_self(uc, &c) : RW__LP_UNWIND_FAILED;
	if (rc == RW__LP_SAFE) {
		atomic_store(&thread_gen, r->epoch);
		atomic_fetch_add(&r->switched, 1);
		return;
	}
	round_note(r, rw__gettid(), why_of(rc), c.hit_ip, c.hit_index);
}

/* Check a registered blocked thread from outside. */
static int check_remote(struct round *r, pid_t tid, struct reg_slot *s)
{
	struct rw__lp_check c = r->chk;
	_Atomic uint32_t *gp;
	uint32_t g, marked;
	int rc;

	atomic_store(&s->busy, 1);
	if (atomic_load(&s->tid) != tid || !(gp = atomic_load(&s->gen))) {
		atomic_store(&s->busy, 0);
		return -ESRCH;
	}
	g = atomic_load(gp);
	if (state_of(g) == r->target) {
		/* The stamp (see gen_adopt()): it fails only if the thread
		 * changed its generation meanwhile. */
		if (g == r->epoch ||
		    atomic_compare_exchange_strong(gp, &g, r->epoch)) {
			atomic_store(&s->busy, 0);
			return RW__LP_SAFE;
		}
		atomic_store(&s->busy, 0);
		return RW__LP_MOVED;
	}
	marked = g | GEN_DECIDING;
	if ((g & GEN_DECIDING) ||
	    !atomic_compare_exchange_strong(gp, &g, marked)) {
		atomic_store(&s->busy, 0);
		return RW__LP_MOVED;
	}
	rc = rw__lp_check_blocked(tid, &c);
	if (rc == RW__LP_SAFE) {
		uint32_t m = marked;

		if (!atomic_compare_exchange_strong(gp, &m, r->epoch))
			rc = RW__LP_MOVED; /* it ran a dispatcher meanwhile */
	} else {
		uint32_t m = marked;

		atomic_compare_exchange_strong(gp, &m, g);
	}
	atomic_store(&s->busy, 0);
	/* The others are the caller's to act on (check_filter()). */
	if (rc == RW__LP_ON_STACK || rc == RW__LP_BUSY)
		round_note(r, tid, why_of(rc), c.hit_ip, c.hit_index);
	return rc;
}

/*
 * System calls that the kernel restarts after a handler of a signal
 * installed with SA_RESTART, as rewire's is (signal(7)): a thread blocked
 * in one can be signalled without ending its call. Others (nanosleep,
 * poll, epoll_wait, select, ...) would return EINTR.
 */
static bool syscall_restarts(long nr)
{
	switch (nr) {
	case SYS_read:
	case SYS_write:
	case SYS_readv:
	case SYS_writev:
	case SYS_pread64:
	case SYS_pwrite64:
	case SYS_preadv:
	case SYS_pwritev:
#ifdef SYS_wait4
	case SYS_wait4:
#endif
	case SYS_waitid:
#ifdef SYS_accept /* not on aarch64 (accept4 only) */
	case SYS_accept:
#endif
	case SYS_accept4:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_sendto:
	case SYS_sendmsg:
#ifdef SYS_open /* not on aarch64 (openat only) */
	case SYS_open:
#endif
	case SYS_openat:
	case SYS_flock:
	case SYS_fcntl:
	case SYS_futex: /* glibc's waits retry on EINTR anyway */
		return true;
	default:
		return false;
	}
}

/* Which threads to signal: runs in the caller for each thread found. */
static bool check_filter(pid_t tid, void *arg)
{
	struct round *r = arg;
	struct reg_slot *s = reg_find(r->reg, r->nreg, tid);
	int rc;

	if (!s)
		return true; /* unknown state: it checks itself */
	rc = check_remote(r, tid, s);
	if (rc == -ESRCH)
		return false; /* gone */
	/* Running, or it cannot be looked at from outside: a process that
	 * dropped privileges is not dumpable, and the kernel then refuses
	 * /proc/self/task/TID/syscall (EACCES) to its own threads too. The
	 * thread checks its own stack in the handler; a system call that
	 * the kernel does not restart returns EINTR, as for any signal. */
	if (rc == RW__LP_RUNNING || rc < 0)
		return true;
	if (rc == RW__LP_UNWIND_FAILED || rc == RW__LP_MOVED) {
		long nr = -1;
		int st = rw__lp_thread_syscall(tid, &nr);

		/* Its registers are needed, or it ran during the check (a
		 * thread that keeps waking, such as one that joins threads
		 * one after another, would move during every round's
		 * check): ask it, if it runs now or if that does not end
		 * its system call. */
		if (st == -ESRCH)
			return false;
		if (st == 0 || (st > 0 && syscall_restarts(nr)))
			return true;
		round_note(r, tid,
			   rc == RW__LP_MOVED ? RW_PT_BUSY
					      : RW_PT_UNWIND_FAILED,
			   0, 0);
	}
	atomic_fetch_add(&r->total, 1);
	if (rc == RW__LP_SAFE)
		atomic_fetch_add(&r->switched, 1);
	return false;
}

static int range_cmp(const void *a, const void *b)
{
	const struct rw__lp_range *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* One round over every thread; 0 if all are in the target state. */
static int run_round(struct rw_patch *p)
{
	struct round r;
	struct rw_tid_list late = { 0 };
	uintptr_t(*pages)[2] = NULL, *dpages = NULL;
	size_t npages, ndpages, nf = 0, nranges = 0;
	int err;

	memset(&r, 0, sizeof(r));
	r.epoch = tr.ep[tr.nep - 1];
	r.target = target_now();
	for (size_t i = 0; i < tr.ntf; i++)
		nranges += 1 + tr.tf[i].npieces[!r.target];
	r.funcs = calloc(nranges, sizeof(*r.funcs));
	r.func_labels = calloc(nranges, sizeof(*r.func_labels));
	r.cap = 256;
	r.res = calloc(r.cap, sizeof(*r.res));
	err = rw__lock_acquire(&rw__text_lock);
	if (err)
		goto out;
	npages = rw__arch_stub_ranges(NULL, 0);
	pages = calloc(npages + 1, sizeof(*pages));
	if (pages)
		npages = rw__arch_stub_ranges(pages, npages);
	ndpages = rw__arch_dispatch_pages(NULL, 0);
	dpages = calloc(ndpages + 1, sizeof(*dpages));
	if (dpages)
		ndpages = rw__arch_dispatch_pages(dpages, ndpages);
	rw__lock_release(&rw__text_lock);
	r.busy = calloc(npages + 1, sizeof(*r.busy));
	if (!r.funcs || !r.func_labels || !r.res || !pages || !dpages ||
	    !r.busy) {
		err = -ENOMEM;
		goto out;
	}
	/* The side threads leave: its functions must not be on the stack,
	 * nor their pieces (NAME.cold, ...: a thread there is inside NAME,
	 * which jumped there). The same ranges for a thread's own check and
	 * for the check of a blocked thread from outside. */
	for (size_t i = 0; i < tr.ntf; i++) {
		struct tf *t = &tr.tf[i];
		bool from = !r.target;

		r.funcs[nf].start = t->impl[from];
		if (t->orig[from])
			r.funcs[nf].start = t->site->old_addr;
		r.funcs[nf].end = r.funcs[nf].start + t->size[from];
		r.func_labels[nf++] = t->site->label;
		for (size_t k = 0; k < t->npieces[from]; k++) {
			r.funcs[nf] = t->pieces[from][k];
			r.func_labels[nf++] = t->site->label;
		}
	}
	/* Sort funcs with their labels. */
	for (size_t i = 1; i < nf; i++)
		for (size_t k = i;
		     k > 0 && r.funcs[k].start < r.funcs[k - 1].start; k--) {
			struct rw__lp_range t = r.funcs[k];
			const char *l = r.func_labels[k];

			r.funcs[k] = r.funcs[k - 1];
			r.func_labels[k] = r.func_labels[k - 1];
			r.funcs[k - 1] = t;
			r.func_labels[k - 1] = l;
		}
	for (size_t i = 0; i < npages; i++) {
		r.busy[i].start = pages[i][0];
		r.busy[i].end = pages[i][1];
	}
	qsort(r.busy, npages, sizeof(*r.busy), range_cmp);
	r.chk.funcs = r.funcs;
	r.chk.nfuncs = nf;
	r.chk.busy = r.busy;
	r.chk.nbusy = npages;
	r.chk.dpages = dpages;
	r.chk.ndpages = ndpages;
	err = reg_snapshot(&r.reg, &r.nreg);
	if (err)
		goto out;
	err = rw__on_threads(check_fn, &r, check_filter, &r, ROUND_TIMEOUT_MS,
			     &late);
	if (err == -RW_ERR_THREAD_TIMEOUT) {
		for (size_t i = 0; i < late.count; i++) {
			struct reg_slot *s =
				reg_find(r.reg, r.nreg, late.tids[i]);
			_Atomic uint32_t *gp;
			bool done = false;

			/* It may have switched itself meanwhile
			 * (rw_patch_quiescent) without answering. */
			if (s) {
				atomic_store(&s->busy, 1);
				if (atomic_load(&s->tid) == late.tids[i] &&
				    (gp = atomic_load(&s->gen)))
					done = state_of(atomic_load(gp)) ==
					       r.target;
				atomic_store(&s->busy, 0);
			}
			if (done)
				atomic_fetch_add(&r.switched, 1);
			else
				round_note(&r, late.tids[i], RW_PT_NO_ANSWER, 0,
					   0);
		}
		atomic_fetch_add(&r.total, late.count);
		err = 0;
	}
	rw_tid_list_free(&late);
	if (err == -EAGAIN)
		err = -EBUSY; /* threads kept appearing: not a verdict */
	if (err)
		goto out;
	p->attempts++;
	p->threads_total = atomic_load(&r.total);
	p->threads_switched = atomic_load(&r.switched);
	p->npending = atomic_load(&r.nres);
	if (p->npending > RW_PATCH_INFO_THREADS)
		memcpy(p->pending, r.res, sizeof(p->pending));
	else
		memcpy(p->pending, r.res, p->npending * sizeof(r.res[0]));
	err = p->npending ? -EAGAIN : 0;
out:
	free(r.reg);
	free(r.funcs);
	free(r.func_labels);
	free(r.res);
	free(r.busy);
	free(pages);
	free(dpages);
	return err;
}

/* ---- Transitions --------------------------------------------------------- */

static uint32_t next_epoch(void)
{
	if (++last_epoch >= GEN_DECIDING)
		last_epoch = 1;
	return last_epoch;
}

static void trans_clear(void)
{
	free(tr.tf);
	memset(&tr, 0, sizeof(tr));
	atomic_store(&active_epoch, 0);
}

/* Fill tr.tf for @p going to @patched (sides computed now). */
static int trans_setup(struct rw_patch *p, bool patched)
{
	size_t n = p->obj.nfuncs, extra = 0;

	if (patched && p->obj.desc->replace)
		for (struct lp_site *s = sites; s; s = s->next)
			if (s->nlayers)
				extra++;
	tr.tf = calloc(n + extra, sizeof(*tr.tf));
	if (!tr.tf)
		return -ENOMEM;
	/* p is the top layer of each of its sites (pushed by enable, checked
	 * by disable): its unpatched side is the layer below. */
	for (size_t i = 0; i < n; i++) {
		struct lp_site *s = p->sites[i];
		struct tf *t = &tr.tf[tr.ntf++];

		t->site = s;
		site_impl(s, s->nlayers - 1, t, 0);
		site_impl(s, s->nlayers, t, 1);
	}
	if (patched && p->obj.desc->replace) {
		/* Atomic replace: functions that only earlier patches
		 * replaced go back to their original code in the same
		 * transition. */
		for (struct lp_site *s = sites; s; s = s->next) {
			bool mine = false;

			if (!s->nlayers)
				continue;
			for (size_t i = 0; i < n; i++)
				mine |= p->sites[i] == s;
			if (mine)
				continue;
			struct tf *t = &tr.tf[tr.ntf++];

			t->site = s;
			site_impl(s, s->nlayers, t, 0);
			site_impl(s, 0, t, 1);
		}
		tr.replace = true;
	}
	return 0;
}

/* Rewrite the entries to their final form and end the transition. */
static int trans_complete(struct rw_patch *p)
{
	bool patched = target_now();
	uintptr_t *impl = calloc(tr.ntf, sizeof(*impl));
	int err = 0;

	if (!impl)
		return -ENOMEM;
	rw__text_error_clear();
	for (size_t i = 0; i < tr.ntf; i++) {
		struct tf *t = &tr.tf[i];

		impl[i] = t->orig[patched] ? 0 : t->impl[patched];
	}
	err = write_entries(impl);
	free(impl);
	if (err) {
		note_text_error();
		return err;
	}
	for (size_t i = 0; i < tr.ntf; i++) {
		struct lp_site *s = tr.tf[i].site;

		if (s->stub)
			retire_stub(s->stub);
		s->stub = NULL;
	}
	if (patched) {
		if (tr.replace) {
			for (struct rw_patch *q = patches; q; q = q->next) {
				if (q == p || (q->state != RW_PATCH_ENABLED &&
					       q->state != RW_PATCH_ENABLING &&
					       q->state != RW_PATCH_DISABLING))
					continue;
				for (size_t i = 0; i < q->obj.nfuncs; i++)
					layer_remove(q->sites[i], q);
				q->state = RW_PATCH_REPLACED;
			}
		}
		p->state = RW_PATCH_ENABLED;
		if (p->obj.desc->callbacks.post_patch)
			p->obj.desc->callbacks.post_patch();
	} else {
		for (size_t i = 0; i < p->obj.nfuncs; i++)
			layer_remove(p->sites[i], p);
		p->state = RW_PATCH_DISABLED;
		if (p->obj.desc->callbacks.post_unpatch)
			p->obj.desc->callbacks.post_unpatch();
	}
	p->trans_ns = rw__now_ns() - p->trans_start_ns;
	p->npending = 0;
	p->threads_switched = p->threads_total;
	trans_clear();
	sweep_retired(false);
	rw__log("patch %s: transition complete (%s) in %lu us",
		p->obj.desc->name, patched ? "patched" : "unpatched",
		(unsigned long)(p->trans_ns / 1000));
	return 0;
}

/* One round, and completion if every thread switched. */
static int trans_step(struct rw_patch *p)
{
	int err = run_round(p);

	if (err == -EBUSY)
		return -EAGAIN; /* no verdict this round; try again */
	if (err)
		return err;
	return trans_complete(p);
}

static int trans_start(struct rw_patch *p, bool patched)
{
	int err = trans_setup(p, patched);

	if (err)
		goto fail;
	tr.p = p;
	tr.nep = 1;
	tr.ep[0] = next_epoch();
	tr.side[0] = patched;
	err = install_dispatchers();
	if (err)
		goto fail;
	atomic_store(&active_epoch, tr.ep[0]);
	p->target_patched = patched;
	p->trans_start_ns = rw__now_ns();
	p->attempts = 0;
	p->npending = 0;
	return 0;
fail:
	trans_clear();
	return err;
}

/* Reverse the transition in progress. */
static int trans_reverse(void)
{
	uint32_t e;
	int err;

	if (tr.nep >= MAX_EPOCHS) {
		rw__lp_set_error("patch %s: reversed %zu times already; wait "
				 "for the transition or force it",
				 tr.p->obj.desc->name, tr.nep - 1);
		return -EBUSY;
	}
	e = next_epoch();
	tr.ep[tr.nep] = e;
	tr.side[tr.nep] = !tr.side[tr.nep - 1];
	tr.nep++;
	err = install_dispatchers();
	if (err) {
		tr.nep--;
		return err;
	}
	atomic_store(&active_epoch, e);
	tr.p->target_patched = target_now();
	tr.p->state = target_now() ? RW_PATCH_ENABLING : RW_PATCH_DISABLING;
	/* Every pre has its post: a reversed enable ends as unpatched, a
	 * reversed disable as patched (trans_complete runs the post). */
	return 0;
}

/* ---- fork ---------------------------------------------------------------
 *
 * No rw_patch_* call is in progress while the address space is copied. The
 * child has one thread: the registry forgets the others (their tids will
 * be reused by unrelated threads), and a transition in progress goes on
 * in the child with that one thread.
 */
static bool lp_fork_locked;

/* fork() prepare handlers waiting for lp_lock: rw_patch_* calls let them
 * go first (rw__lock is not fair, and a loop of calls would starve fork). */
static _Atomic int lp_forks_waiting;

static void lp_atfork_prepare(void)
{
	atomic_fetch_add(&lp_forks_waiting, 1);
	lp_fork_locked = rw__lock_acquire(&lp_lock) == 0;
	atomic_fetch_sub(&lp_forks_waiting, 1);
}

static void lp_atfork_parent(void)
{
	if (lp_fork_locked)
		rw__lock_release(&lp_lock);
}

static void lp_atfork_child(void)
{
	pid_t self = rw__gettid();

	if (lp_fork_locked)
		rw__lock_reset(&lp_lock);
	for (struct reg_chunk *c = &reg_first; c; c = atomic_load(&c->next))
		for (size_t i = 0; i < REG_CHUNK; i++) {
			if (atomic_load(&c->s[i].gen) == &thread_gen) {
				atomic_store(&c->s[i].tid, self);
				continue;
			}
			atomic_store(&c->s[i].gen, NULL);
			atomic_store(&c->s[i].busy, 0);
			atomic_store(&c->s[i].tid, 0);
		}
}

/* First among rewire's fork handlers (src/internal.h): a transition takes
 * the text lock and makes cross-thread calls with lp_lock held. */
static const struct rw__fork_handlers lp_fork = {
	lp_atfork_prepare,
	lp_atfork_parent,
	lp_atfork_child,
};

__attribute__((constructor)) static void lp_fork_init(void)
{
	rw__fork_handlers_register(RW__FORK_LIVEPATCH, &lp_fork);
}

/* ---- API -------------------------------------------------------------------- */

static int lp_enter(struct rw_patch *p)
{
	int err;

	struct rw_patch *q;

	rw__lp_clear_error();
	while (atomic_load(&lp_forks_waiting))
		sched_yield();
	if (!rw__arch_can_patch()) {
		rw__lp_set_error("live patching needs the x86_64 or aarch64 "
				 "backend");
		return -EOPNOTSUPP;
	}
	err = rw__lock_acquire(&lp_lock);
	if (err) {
		rw__lp_set_error("refused: this thread holds rewire's live "
				 "patch lock already (a call from a patch's "
				 "callback, or from a signal handler that "
				 "interrupted a rw_patch_* call): %s",
				 strerror(-err));
		return err;
	}
	/* A pointer that is not a loaded patch (NULL, unloaded, garbage)
	 * is refused without being dereferenced. */
	for (q = patches; q && q != p; q = q->next)
		;
	if (!q) {
		rw__lock_release(&lp_lock);
		rw__lp_set_error("%p is not a loaded patch", (void *)p);
		return -EINVAL;
	}
	return 0;
}

/* The loaded object holding @addr, by the name the loader knows it by
 * ("" for the main program, which needs no reference). */
struct pin_find {
	uintptr_t addr;
	char name[512];
	bool found;
};

static int pin_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct pin_find *f = arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && f->addr >= lo &&
		    f->addr < lo + ph->p_memsz) {
			snprintf(f->name, sizeof(f->name), "%s",
				 info->dlpi_name ? info->dlpi_name : "");
			f->found = true;
			return 1;
		}
	}
	return 0;
}

/* -EEXIST if a patch named @name is loaded (and not replaced); lp_lock
 * held. */
static int name_taken(const char *path, const char *name)
{
	static const char *const states[] = {
		"not enabled yet", "being enabled", "enabled",
		"being disabled",  "disabled",
	};

	for (struct rw_patch *q = patches; q; q = q->next) {
		if (strcmp(q->obj.desc->name, name) ||
		    q->state == RW_PATCH_REPLACED)
			continue;
		rw__lp_set_error("%s: refused: a patch named '%s' is already "
				 "loaded (from %s, %s); nothing was changed: "
				 "unload it first, or give the new patch "
				 "another name",
				 path, name, q->obj.path,
				 (unsigned)q->state < 5 ? states[q->state]
							: "?");
		return -EEXIST;
	}
	return 0;
}

int rw__lp_check_name(const char *path, const char *name)
{
	int err = rw__lock_acquire(&lp_lock);

	if (err) {
		rw__lp_set_error("%s: refused: this thread holds rewire's live "
				 "patch lock: %s",
				 path, strerror(-err));
		return err;
	}
	err = name_taken(path, name);
	rw__lock_release(&lp_lock);
	return err;
}

/* A reference on the object holding @addr (NULL for the main program). */
static void *pin_object(uintptr_t addr)
{
	struct pin_find f = { .addr = addr };

	dl_iterate_phdr(pin_cb, &f);
	if (!f.found || !f.name[0])
		return NULL;
	return dlopen(f.name, RTLD_NOW | RTLD_NOLOAD);
}

/* rw_patch_load (@fd < 0) and rw_patch_load_fd. */
static int patch_load(const char *path, int fd, unsigned flags,
		      struct rw_patch **out)
{
	struct rw_patch *p;
	int err;

	/* From a patch's callback (or a signal handler inside a call):
	 * refuse before the new patch's constructors run, not after. */
	if (rw__lock_held_by_me(&lp_lock)) {
		rw__lp_set_error("%s: refused: called from a patch's callback "
				 "(or a signal handler) while this thread "
				 "holds rewire's live patch lock: %s",
				 path, strerror(EDEADLK));
		return -EDEADLK;
	}
	if (!rw__arch_can_patch()) {
		rw__lp_set_error("live patching needs the x86_64 or aarch64 "
				 "backend");
		return -EOPNOTSUPP;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		rw__lp_set_error("%s: out of memory", path);
		return -ENOMEM;
	}
	err = rw__lp_load_fd(path, fd, flags, &p->obj);
	if (err) {
		free(p);
		return err;
	}
	p->sites = calloc(p->obj.nfuncs, sizeof(*p->sites));
	err = p->sites ? rw__lock_acquire(&lp_lock) : -ENOMEM;
	if (err) {
		rw__lp_unload(&p->obj);
		free(p->sites);
		free(p);
		return err;
	}
	err = name_taken(path, p->obj.desc->name);
	for (size_t i = 0; i < p->obj.nfuncs && !err; i++) {
		p->sites[i] = site_get(&p->obj.funcs[i]);
		if (!p->sites[i])
			err = -ENOMEM;
	}
	if (err) {
		rw__lock_release(&lp_lock);
		rw__lp_unload(&p->obj);
		free(p->sites);
		free(p);
		return err;
	}
	p->state = RW_PATCH_LOADED;
	p->npins = p->obj.nfuncs + p->obj.nref_addrs;
	p->pins = calloc(p->npins, sizeof(*p->pins));
	for (size_t i = 0; p->pins && i < p->obj.nfuncs; i++)
		p->pins[i] = pin_object(p->obj.funcs[i].old_addr);
	for (size_t i = 0; p->pins && i < p->obj.nref_addrs; i++)
		p->pins[p->obj.nfuncs + i] = pin_object(p->obj.ref_addrs[i]);
	/* Append: the list is in load order. */
	struct rw_patch **pp = &patches;

	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	rw__lock_release(&lp_lock);
	*out = p;
	return 0;
}

RW_EXPORT int rw_patch_load(const char *path, unsigned flags,
			    struct rw_patch **out)
{
	rw__lp_clear_error();
	if (!path || !out) {
		rw__lp_set_error("rw_patch_load: NULL argument");
		return -EINVAL;
	}
	return patch_load(path, -1, flags, out);
}

RW_EXPORT int rw_patch_load_fd(int fd, const char *display_path, unsigned flags,
			       struct rw_patch **out)
{
	char name[64];

	rw__lp_clear_error();
	if (fd < 0 || !out) {
		rw__lp_set_error("rw_patch_load_fd: %s",
				 !out ? "NULL argument"
				      : "negative descriptor");
		return -EINVAL;
	}
	if (!display_path || !display_path[0]) {
		snprintf(name, sizeof(name), "(descriptor %d)", fd);
		display_path = name;
	}
	return patch_load(display_path, fd, flags, out);
}

const char *rw__patch_file_id(const struct rw_patch *p)
{
	return p->obj.file_id;
}

void rw__patch_set_from_dir(struct rw_patch *p)
{
	p->from_dir = true;
}

bool rw__patch_from_dir(const struct rw_patch *p)
{
	return p->from_dir;
}

/*
 * A change requested while a transition runs: the reverse of @p's own
 * transition (when @p is in state @reversible) reverses it; anything else
 * waits for it.
 */
static int reverse_or_busy(struct rw_patch *p, int reversible)
{
	int err;

	if (tr.p == p && p->state == reversible) {
		err = trans_reverse();
		if (!err)
			(void)trans_step(p);
		return err;
	}
	rw__lp_set_error("patch %s: patch %s is in transition",
			 p->obj.desc->name, tr.p->obj.desc->name);
	return -EBUSY;
}

/* Start the transition to patched; lp_lock held, no transition running. */
static int enable_locked(struct rw_patch *p)
{
	const struct rw_patch_desc *d = p->obj.desc;
	int err = 0;

	if (p->state == RW_PATCH_ENABLED)
		return -EALREADY;
	if (p->state != RW_PATCH_LOADED && p->state != RW_PATCH_DISABLED) {
		rw__lp_set_error("patch %s was replaced; load it again",
				 d->name);
		return -EBUSY;
	}
	if (d->callbacks.pre_patch && (err = d->callbacks.pre_patch()) != 0) {
		rw__lp_set_error("patch %s: pre_patch callback failed (%d)",
				 d->name, err);
		return err < 0 ? err : -ECANCELED;
	}
	for (size_t i = 0; i < p->obj.nfuncs && !err; i++)
		err = layer_push(p->sites[i], p, i);
	if (!err)
		err = trans_start(p, true);
	if (err) {
		for (size_t i = 0; i < p->obj.nfuncs; i++)
			layer_remove(p->sites[i], p);
		if (d->callbacks.post_unpatch)
			d->callbacks.post_unpatch();
		return err;
	}
	p->state = RW_PATCH_ENABLING;
	(void)trans_step(p);
	return 0;
}

/* Start the transition back; lp_lock held, no transition running. */
static int disable_locked(struct rw_patch *p)
{
	const struct rw_patch_desc *d = p->obj.desc;
	int err;

	if (p->state != RW_PATCH_ENABLED) {
		rw__lp_set_error("patch %s is not enabled", d->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < p->obj.nfuncs; i++) {
		struct lp_site *s = p->sites[i];

		if (s->nlayers && s->layers[s->nlayers - 1].p != p) {
			rw__lp_set_error(
				"patch %s: %s is patched again by %s above "
				"it; disable that one first",
				d->name, s->label,
				s->layers[s->nlayers - 1].p->obj.desc->name);
			return -EBUSY;
		}
	}
	if (d->callbacks.pre_unpatch)
		d->callbacks.pre_unpatch();
	err = trans_start(p, false);
	if (err) {
		if (d->callbacks.post_patch)
			d->callbacks.post_patch();
		return err;
	}
	p->state = RW_PATCH_DISABLING;
	(void)trans_step(p);
	return 0;
}

RW_EXPORT int rw_patch_enable(struct rw_patch *p)
{
	int err = lp_enter(p);

	if (err)
		return err;
	err = trans_active() ? reverse_or_busy(p, RW_PATCH_DISABLING)
			     : enable_locked(p);
	rw__lock_release(&lp_lock);
	return err;
}

RW_EXPORT int rw_patch_disable(struct rw_patch *p)
{
	int err = lp_enter(p);

	if (err)
		return err;
	err = trans_active() ? reverse_or_busy(p, RW_PATCH_ENABLING)
			     : disable_locked(p);
	rw__lock_release(&lp_lock);
	return err;
}

static bool in_transition(const struct rw_patch *p)
{
	return p->state == RW_PATCH_ENABLING || p->state == RW_PATCH_DISABLING;
}

RW_EXPORT int rw_patch_wait(struct rw_patch *p, int timeout_ms)
{
	uint64_t deadline =
		timeout_ms < 0
			? 0
			: rw__now_ns() + (uint64_t)timeout_ms * 1000000ull;
	uint64_t pause = 1000000ull;
	size_t pending = SIZE_MAX;
	int err;

	for (;;) {
		err = lp_enter(p);
		if (err)
			return err;
		if (!in_transition(p) || tr.p != p) {
			rw__lock_release(&lp_lock);
			return 0;
		}
		err = trans_step(p);
		/* Threads switched in this round: the next one soon; none:
		 * back off (1 ms doubling to 100 ms), they may stay long. */
		if (err == -EAGAIN && p->npending < pending)
			pause = 1000000ull;
		else if (pause < 100000000ull)
			pause *= 2;
		pending = p->npending;
		rw__lock_release(&lp_lock);
		if (!err)
			return 0;
		if (err != -EAGAIN)
			return err;
		if (deadline && rw__now_ns() >= deadline)
			return -ETIMEDOUT;
		rw__sleep_ns(pause);
	}
}

/* Force: the pending threads' generations become the current epoch. */
struct force_job {
	uint32_t epoch;
	struct reg_ent *reg;
	size_t nreg;
};

static void force_fn(void *arg, void *uc)
{
	struct force_job *j = arg;

	(void)uc;
	atomic_store(&thread_gen, j->epoch);
}

/* Registered threads were set from outside: signal only the others. */
static bool force_filter(pid_t tid, void *arg)
{
	struct force_job *j = arg;

	return reg_find(j->reg, j->nreg, tid) == NULL;
}

RW_EXPORT int rw_patch_force(struct rw_patch *p)
{
	struct force_job j = { 0 };
	struct rw_tid_list late;
	int err = lp_enter(p);

	if (err)
		return err;
	if (!in_transition(p) || tr.p != p) {
		rw__lp_set_error("patch %s is not in transition",
				 p->obj.desc->name);
		err = -EINVAL;
		goto out;
	}
	j.epoch = tr.ep[tr.nep - 1];
	/* Registered threads: set from here, blocked or not. */
	err = reg_snapshot(&j.reg, &j.nreg);
	if (err)
		goto out;
	for (size_t i = 0; i < j.nreg; i++) {
		struct reg_slot *s = j.reg[i].slot;
		_Atomic uint32_t *gp;

		atomic_store(&s->busy, 1);
		if (atomic_load(&s->tid) == j.reg[i].tid &&
		    (gp = atomic_load(&s->gen)))
			atomic_store(gp, j.epoch);
		atomic_store(&s->busy, 0);
	}
	/* Unregistered ones set their own when they answer; those that do
	 * not answer stay mixed, which is what force means. */
	(void)rw__on_threads(force_fn, &j, force_filter, &j, ROUND_TIMEOUT_MS,
			     &late);
	rw_tid_list_free(&late);
	free(j.reg);
	p->forced = true;
	err = trans_complete(p);
out:
	rw__lock_release(&lp_lock);
	return err;
}

/*
 * Before a patch object is unmapped no thread may be anywhere in its code:
 * not only in the replacement functions that the transitions checked, but
 * in a helper of the patch that a replacement tail-called (its frame is
 * gone), or in code of the patch that some thread is about to return to.
 * So every executable segment of the object is one range, and every
 * thread's whole stack is looked at: a blocked thread from outside, the
 * others (and those whose stack cannot be read from outside) in rewire's
 * signal handler. A thread found inside makes the unload -EBUSY; a thread
 * that cannot be checked (it blocks rewire's signal, or its stack cannot
 * be unwound) makes the unload keep the object mapped, as for a forced
 * patch: never unmap code that may run. Both are checked again a few
 * times (UNLOAD_TRIES and UNLOAD_UNKNOWN_TRIES rounds, with pauses from
 * 2 ms doubling) before they are taken as the answer: a thread passes
 * through, and one that answered late or stood where its stack could not
 * be unwound is found elsewhere the next time. A round that could not
 * list every thread (-EAGAIN: they kept appearing) is run again too.
 */
struct unload_check {
	struct rw__lp_check chk; /* template: the patch's text */
	_Atomic bool inside, unknown;
	_Atomic pid_t tid; /* the first thread found inside, and where */
	_Atomic uintptr_t ip;
};

static void unload_inside(struct unload_check *u, pid_t tid, uintptr_t ip)
{
	pid_t none = 0;

	atomic_store(&u->inside, true);
	if (atomic_compare_exchange_strong(&u->tid, &none, tid))
		atomic_store(&u->ip, ip);
}

static void unload_fn(void *arg, void *uc)
{
	struct unload_check *u = arg;
	struct rw__lp_check c = u->chk;
	int rc = stack_room() ? rw__lp_check_self(uc, &c)
			      : RW__LP_UNWIND_FAILED;

	if (rc == RW__LP_ON_STACK)
		unload_inside(u, rw__gettid(), c.hit_ip);
	else if (rc != RW__LP_SAFE)
		atomic_store(&u->unknown, true);
}

static bool unload_filter(pid_t tid, void *arg)
{
	struct unload_check *u = arg;
	struct rw__lp_check c = u->chk;
	long nr = -1;
	int rc = rw__lp_check_blocked(tid, &c);

	switch (rc) {
	case RW__LP_SAFE:
	case -ESRCH:
		return false;
	case RW__LP_ON_STACK:
		unload_inside(u, tid, c.hit_ip);
		return false;
	case RW__LP_UNWIND_FAILED:
		/* Ask it, if that does not end its system call. */
		if (rw__lp_thread_syscall(tid, &nr) >= 0 &&
		    syscall_restarts(nr))
			return true;
		atomic_store(&u->unknown, true);
		return false;
	default: /* running, or it moved: it checks itself */
		return true;
	}
}

/* Rounds while a thread is inside or threads kept appearing; while one
 * could not be checked, fewer: each such round may wait ROUND_TIMEOUT_MS
 * for a thread that blocks our signal, under the patch lock. */
#define UNLOAD_TRIES 5
#define UNLOAD_UNKNOWN_TRIES 3

/*
 * 0: no thread is in @p's code; 1: some thread could not be checked (keep
 * the code mapped); -EBUSY (message set): a thread is inside.
 */
static int unload_check(struct rw_patch *p)
{
	struct unload_check u;
	struct rw_tid_list late = { 0 };
	uint64_t pause = 2000000ull;
	int err = 0;

	for (int attempt = 0; attempt < UNLOAD_TRIES; attempt++) {
		memset(&u, 0, sizeof(u));
		u.chk.funcs = p->obj.text;
		u.chk.nfuncs = p->obj.ntext;
		err = rw__on_threads(unload_fn, &u, unload_filter, &u,
				     ROUND_TIMEOUT_MS, &late);
		rw_tid_list_free(&late);
		if (err == -RW_ERR_THREAD_TIMEOUT) {
			atomic_store(&u.unknown, true);
			err = 0;
		}
		/* -EAGAIN: threads kept appearing while the round listed
		 * them (a program that creates threads without pause): the
		 * next round may list them all. */
		if ((err && err != -EAGAIN) ||
		    (!err && !atomic_load(&u.inside) &&
		     (!atomic_load(&u.unknown) ||
		      attempt + 1 >= UNLOAD_UNKNOWN_TRIES)))
			break;
		/* A thread passing through, or one caught where it could not
		 * be checked (its signal late under load, its pc where the
		 * unwinder cannot go on): it may be elsewhere in a moment. */
		rw__sleep_ns(pause);
		pause *= 2;
	}
	if (err) {
		rw__lp_set_error("patch %s: cannot check the threads before "
				 "unmapping its code: %s",
				 p->obj.desc->name, rw_strerror(err));
		return err == -EAGAIN ? -EBUSY : err;
	}
	if (atomic_load(&u.inside)) {
		rw__lp_set_error("patch %s: thread %d is running its code (at "
				 "%#lx); unload it once the thread has left",
				 p->obj.desc->name, (int)atomic_load(&u.tid),
				 (unsigned long)atomic_load(&u.ip));
		return -EBUSY;
	}
	if (atomic_load(&u.unknown)) {
		rw__log("patch %s: a thread could not be checked; its code "
			"stays mapped",
			p->obj.desc->name);
		return 1;
	}
	return 0;
}

RW_EXPORT int rw_patch_unload(struct rw_patch *p)
{
	bool keep;
	int err = lp_enter(p);

	if (err)
		return err;
	/* From a patch's constructor or destructor: the loader's lock is
	 * this thread's, the dlclose below would wait for itself. */
	if (rw__lp_loader_held()) {
		rw__lp_set_error("patch %s: refused: called from a patch's "
				 "constructor or destructor: %s",
				 p->obj.desc->name, strerror(EDEADLK));
		rw__lock_release(&lp_lock);
		return -EDEADLK;
	}
	if (p->state != RW_PATCH_LOADED && p->state != RW_PATCH_DISABLED &&
	    p->state != RW_PATCH_REPLACED) {
		rw__lp_set_error("patch %s is enabled or in transition; "
				 "disable it first",
				 p->obj.desc->name);
		rw__lock_release(&lp_lock);
		return -EBUSY;
	}
	/* A forced patch stays mapped: nothing to check. */
	if (!p->forced && (err = unload_check(p)) < 0) {
		rw__lock_release(&lp_lock);
		return err;
	}
	keep = p->forced || err > 0;
	for (struct rw_patch **pp = &patches; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	/* Forget sites no other patch names (their entries hold their NOPs
	 * again: no layer, no transition). */
	for (size_t i = 0; i < p->obj.nfuncs; i++) {
		struct lp_site *site = p->sites[i];
		bool used = site->nlayers > 0;

		for (struct rw_patch *q = patches; q && !used; q = q->next)
			for (size_t k = 0; k < q->obj.nfuncs && !used; k++)
				used = q->sites[k] == site;
		for (size_t k = 0; k < i && !used; k++)
			used = p->sites[k] == site; /* freed already */
		if (used)
			continue;
		for (struct lp_site **sp = &sites; *sp; sp = &(*sp)->next)
			if (*sp == site) {
				*sp = site->next;
				break;
			}
		free(site->layers);
		free(site->pieces);
		free(site);
	}
	rw__lock_release(&lp_lock);
	for (size_t i = 0; p->pins && i < p->npins && !keep; i++)
		if (p->pins[i])
			dlclose(p->pins[i]);
	free(p->pins);
	if (keep) {
		/* A thread may still run its code: keep it mapped. */
		rw__lp_funcs_free(p->obj.funcs, p->obj.nfuncs);
		free(p->obj.ref_addrs);
	} else {
		rw__lp_unload(&p->obj);
	}
	free(p->sites);
	free(p);
	return 0;
}

RW_EXPORT int rw_patch_state(struct rw_patch *p, struct rw_patch_info *info)
{
	int err;

	if (!info)
		return -EINVAL;
	err = lp_enter(p);
	if (err)
		return err;
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", p->obj.desc->name);
	snprintf(info->path, sizeof(info->path), "%s", p->obj.path);
	info->state = p->state;
	info->forced = p->forced;
	info->replace = p->obj.desc->replace != 0;
	info->nfuncs = p->obj.nfuncs;
	info->target_patched = p->target_patched;
	info->threads_total = p->threads_total;
	info->threads_switched = p->threads_switched;
	info->transition_ns = in_transition(p)
				      ? rw__now_ns() - p->trans_start_ns
				      : p->trans_ns;
	info->attempts = p->attempts;
	info->npending = p->npending;
	memcpy(info->pending, p->pending,
	       (p->npending < RW_PATCH_INFO_THREADS ? p->npending
						    : RW_PATCH_INFO_THREADS) *
		       sizeof(info->pending[0]));
	rw__lock_release(&lp_lock);
	return 0;
}

static const struct rw_patch_thread *pending_find(const struct rw_patch *p,
						  pid_t tid)
{
	size_t n = p->npending < RW_PATCH_INFO_THREADS ? p->npending
						       : RW_PATCH_INFO_THREADS;

	for (size_t i = 0; i < n; i++)
		if (p->pending[i].tid == tid)
			return &p->pending[i];
	return NULL;
}

/* Where thread @tid (registry slot @s, or NULL) stands with @p. */
static void thread_state(const struct rw_patch *p, pid_t tid,
			 struct reg_slot *s, struct rw_patch_thread *t)
{
	const struct rw_patch_thread *pend = pending_find(p, tid);
	bool target;
	int side = -1;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (tr.p != p) {
		/* Settled: every thread is where the patch is. */
		t->patched = p->state == RW_PATCH_ENABLED;
		t->why = RW_PT_SWITCHED;
		return;
	}
	target = target_now();
	if (s) {
		_Atomic uint32_t *gp;

		atomic_store(&s->busy, 1);
		if (atomic_load(&s->tid) == tid && (gp = atomic_load(&s->gen)))
			side = state_of(atomic_load(gp));
		atomic_store(&s->busy, 0);
	}
	if (side < 0 && pend)
		side = !target;
	else if (side < 0 && p->attempts &&
		 p->npending <= RW_PATCH_INFO_THREADS)
		side = target; /* not pending at the last check */
	t->patched = side;
	if (side == (int)target) {
		t->why = RW_PT_SWITCHED;
	} else if (pend) {
		t->why = pend->why;
		t->ip = pend->ip;
		memcpy(t->func, pend->func, sizeof(t->func));
	} else {
		t->why = RW_PT_NOT_CHECKED;
	}
}

RW_EXPORT long rw_patch_threads(struct rw_patch *p, struct rw_patch_thread *out,
				size_t max)
{
	struct rw_tid_list tids;
	struct reg_ent *reg = NULL;
	size_t nreg = 0;
	long n;
	int err;

	if (!out && max)
		return -EINVAL;
	err = rw_threads_list(&tids);
	if (err)
		return err;
	err = lp_enter(p);
	if (!err) {
		err = reg_snapshot(&reg, &nreg);
		if (!err)
			for (size_t i = 0; i < tids.count && i < max; i++)
				thread_state(p, tids.tids[i],
					     reg_find(reg, nreg, tids.tids[i]),
					     &out[i]);
		rw__lock_release(&lp_lock);
	}
	n = err ? err : (long)tids.count;
	free(reg);
	rw_tid_list_free(&tids);
	return n;
}

RW_EXPORT size_t rw_patch_list(struct rw_patch **out, size_t max)
{
	size_t n = 0;

	if (rw__lock_acquire(&lp_lock))
		return 0;
	for (struct rw_patch *q = patches; q; q = q->next, n++)
		if (out && n < max)
			out[n] = q;
	rw__lock_release(&lp_lock);
	return n;
}

RW_EXPORT struct rw_patch *rw_patch_find(const char *name)
{
	struct rw_patch *found = NULL;

	if (!name || rw__lock_acquire(&lp_lock))
		return NULL;
	for (struct rw_patch *q = patches; q; q = q->next)
		if (!strcmp(q->obj.desc->name, name) &&
		    q->state != RW_PATCH_REPLACED)
			found = q;
	rw__lock_release(&lp_lock);
	return found;
}

RW_EXPORT void rw_patch_quiescent(void)
{
	uint32_t e = atomic_load_explicit(&active_epoch, memory_order_acquire);

	if (e && atomic_load_explicit(&thread_gen, memory_order_relaxed) != e)
		gen_adopt();
}
