/* SPDX-License-Identifier: MIT */
/*
 * `rewire trace` sessions: a generic probe that writes events into
 * per-thread rings in a memfd shared with the rewire command (trace.h; the
 * layout and the ordering protocol P1-P5 / C1-C4 are in ring.h).
 *
 * An event, in the traced thread (probe()):
 *
 *   0. With a filter (--filter), filter_probe() runs first: an event the
 *      tracepoint's filter keeps out is counted and goes no further.
 *   1. If the thread is already inside this probe (a signal handler fired
 *      a tracepoint while the thread was writing), count the event in
 *      nested and return: the thread's slot is half written.
 *   2. If the process forked since the session started, return: the child
 *      must not write into the parent's rings.
 *   3. Find the thread's slot (slot_of()): the TLS cache, or a scan of the
 *      claimed slots for the thread's tid, or claim the next slot (P1). No
 *      slot left: count the event in noslot and return.
 *   4. Size the record: its fixed part (header and one 8-byte slot per
 *      argument, precomputed in the probe's data, struct ent) plus each
 *      string's length (strnlen, at most RW_TRACE_MAX_STRING) rounded up
 *      to 8.
 *   5. Reserve (reserve()): the padding that keeps the record inside its
 *      sub-buffer, then P2 and P3 of ring.h (a full ring drops the
 *      event), or in overwrite mode O1 (announce, never drop).
 *   6. Take the timestamp, write the padding and the record (P4), publish
 *      the new head (P5).
 *
 * A generated writer (rw__tprec_<name>, rewire/tracepoint.h) takes the same
 * steps with its types known: rw__trace_reserve() does steps 1 to 3 and 5
 * for the longest record the event can make (every string at
 * RW_TRACE_MAX_STRING bytes) and writes the header; the writer copies the
 * arguments and the strings, measuring them as it copies; and its inline
 * commit (rw__tp_rec_commit()) sets the real length, publishes it (P5)
 * through the thread's writer context (tls.w, which rw__trace_reserve()
 * returns with the record) and ends step 1. When
 * the longest record would need padding or has no room, the writer records
 * through the generic path instead (RW__TP_REC_EXACT, rw__trace_record()),
 * which measures first: so its records, padding and drops are the generic
 * probe's, byte for byte.
 *
 * The timestamp (ring.h, Clock): the TSC (one rdtsc, or one read of
 * CNTVCT_EL0 on aarch64: rw__arch_tsc(), src/arch) or
 * clock_gettime(CLOCK_MONOTONIC), the session's choice at start.
 *
 * Shared variables, and what protects them: a session's fields are written
 * by rw__trace_start() before the first probe is attached and read-only
 * afterwards, except next (the slot claim counter, atomic), noslot and
 * nested (atomic counters), and priv[i], written only by the thread that
 * owns slot i (relaxed atomics, so that a thread that takes over the slot of
 * a dead thread with the same tid is not a data race). The session itself
 * lives until rw__trace_stop() has detached every probe and waited for a
 * grace period (probes run inside an RCU read-side critical section).
 */
#include "internal.h"

#include "arch/arch.h"
#include "ctl/filter.h"
#include "ctl/ring.h"
#include "ctl/trace.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <rewire/ftrace.h>
#include <rewire/tracepoint.h>

_Static_assert(RW_TP_SIGNED == RW_TRACE_KIND_SIGNED &&
		       RW_TP_UNSIGNED == RW_TRACE_KIND_UNSIGNED &&
		       RW_TP_BOOL == RW_TRACE_KIND_BOOL &&
		       RW_TP_FLOAT == RW_TRACE_KIND_FLOAT &&
		       RW_TP_STRING == RW_TRACE_KIND_STRING &&
		       RW_TP_POINTER == RW_TRACE_KIND_POINTER,
	       "ring.h mirrors enum rw_tp_kind");
_Static_assert(RW_TRACEPOINT_MAX_ARGS == RW_TRACE_MAX_ARGS,
	       "ring.h: at most RW_TRACEPOINT_MAX_ARGS arguments");
_Static_assert(sizeof(union rw_tp_value) == 8, "8 bytes per argument");

/*
 * The producer's own state of one slot. ring and shared are constant (set
 * at start); the rest is written only by the thread that owns the slot.
 */
struct slot_priv {
	_Atomic int32_t tid;	      /* owner; 0 until claimed (P1) */
	bool overwrite;		      /* the session's (constant) */
	char *ring;		      /* the slot's ring in the mapping */
	struct rw_trace_slot *shared; /* the slot in the mapping */
	_Atomic uint64_t head;	      /* what P5 stored last */
	_Atomic uint64_t tail;	      /* the last tail loaded in P2, checked */
	_Atomic uint64_t dropped;     /* what P3 stored last */
	uint64_t mask;		      /* the session's (constant) */
	/*
	 * The generated writers' fast path (rw__trace_reserve()): a record
	 * that ends at or below lim needs no padding (it stays in the
	 * sub-buffer of head) and fits (P2 with the tail last loaded). Set by
	 * reserve_slow(), and only ever too low since: heads leave their
	 * sub-buffer only for a higher one, tails only grow.
	 */
	_Atomic uint64_t lim;
} __attribute__((aligned(RW_CACHELINE)));
_Static_assert(sizeof(struct slot_priv) == RW_CACHELINE,
	       "slot_priv: one cache line");

/* The data of one attached probe: the event's id and shape come with it,
 * so that the probe does not walk the tracepoint's field descriptions. */
struct ent {
	struct rw__trace *t;
	uint64_t gen; /* t->gen, for the writers' fast path */
	struct rw_tracepoint *tp;
	uint32_t id;
	uint8_t nargs;	 /* at most RW_TRACE_MAX_ARGS */
	uint8_t strings; /* bit i: argument i is a string */
	uint16_t base;	 /* record bytes without the strings' bytes */
	bool writer;	 /* attached: tp->recorder, not the generic probe */
	uint32_t hdr;	 /* a record's id, nargs and flags, as stored */
	/* --filter: rw__trace_filter_state(), and the program of state 1
	 * (NULL otherwise). */
	uint8_t fstate;
	struct rw_filter *filter;
};

/* Events the filters kept out: counters on lines of their own, each
 * thread adding to the one its TLS block's address hashes to. */
#define FILTER_STRIPES 16
struct filter_count {
	_Atomic uint64_t n;
} __attribute__((aligned(RW_CACHELINE)));

struct rw__trace {
	/* Read by every probe, constant. */
	uint64_t gen;	 /* the session's number, never 0, never reused */
	unsigned epoch;	 /* fork_epoch at start */
	uint32_t nslots; /* slots */
	bool tsc;	 /* ts from rw__arch_tsc(), else CLOCK_MONOTONIC */
	bool overwrite;	 /* ring.h overwrite mode: O1, no P2/P3 */
	uint64_t ring_size, mask;
	uint64_t subbuf, submask; /* sub-buffers (ring_size when not
				   * overwriting) */
	struct rw_trace_shm *shm;
	struct slot_priv *priv;

	/* Written by threads claiming slots or dropping events. */
	_Atomic uint32_t next __attribute__((aligned(RW_CACHELINE)));
	_Atomic uint64_t noslot;
	_Atomic uint64_t nested;

	/* The server's. */
	int fd __attribute__((aligned(RW_CACHELINE)));
	unsigned clock; /* RW_TRACE_CLOCK_TSC or CLOCK_MONOTONIC */
	bool counted;	/* size is in mem_in_use */
	size_t size;
	size_t count;
	struct ent *ents;
	struct filter_count *fcount; /* FILTER_STRIPES, with a filter */
	/* Function tracing: the probe set and its table (constant once
	 * attached; the probes read tab). */
	struct rw_ftrace *ft;
	struct rw__functab tab;
	/* &tab once it is filled (release), NULL before: the probes run
	 * from the attach on, before the set and so the table are known. */
	_Atomic(const struct rw__functab *) ftab;
};

/* --- The probe ------------------------------------------------------------ */

/*
 * O1's release fence. GCC's ThreadSanitizer refuses fences (-Wtsan); the
 * TSan build takes no snapshot while threads write (the tests' seqlock
 * read is a race by design), so a locked add that orders as much will do
 * there.
 */
#if defined(__SANITIZE_THREAD__)
static _Atomic int o1_fence_word;
#define o1_fence() \
	atomic_fetch_add_explicit(&o1_fence_word, 0, memory_order_release)
#else
#define o1_fence() atomic_thread_fence(memory_order_release)
#endif

#define TLS_WAYS 4

/*
 * The calling thread's view of its slots. Initial-exec, so that the probe
 * reaches it with one %fs-relative access and no call: librewire is small
 * enough to live in the static TLS reserve even when it is dlopen()ed.
 * Written only by the thread itself (and its signal handlers, which see
 * busy set and touch nothing else, or run from start to end between two
 * events of the thread).
 */
struct trace_tls {
	/* The generated writers' context (rewire/tracepoint.h): the slot
	 * that their inline commit publishes into, and the thread's busy
	 * flag (step 1), which every probe uses. */
	struct rw__trace_wctx w;
	/* The writers' fast path: the session (0: none) whose thread's slot
	 * is wslot, with w set to it and the TSC for a clock. */
	uint64_t wgen;
	struct slot_priv *wslot;
	uint64_t gen[TLS_WAYS];		  /* session numbers; 0: empty way */
	struct slot_priv *slot[TLS_WAYS]; /* the slot there; NULL: none */
	pid_t tid;			  /* cached gettid(); 0: not yet */
	unsigned char next;		  /* next way to replace */
	/* RW__TP_REC_EXACT: the tracepoint and slot of rw__trace_record(). */
	const struct ent *went;
	struct slot_priv *xslot;
};
static __thread struct trace_tls tls __attribute__((tls_model("initial-exec")));

/* Sessions: numbers start at 1. Bumped in a fork child (step 2). */
static _Atomic uint64_t session_gen;
static _Atomic unsigned fork_epoch;

static void trace_atfork_child(void)
{
	atomic_fetch_add(&fork_epoch, 1);
	memset(&tls, 0, sizeof(tls));
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void trace_atfork_register(void)
{
	if (pthread_atfork(NULL, NULL, trace_atfork_child))
		rw__log("pthread_atfork failed");
}

/* Step 3, slow path: scan for our tid, else claim (P1). NULL: no slot. */
static __attribute__((noinline)) struct slot_priv *
slot_find(struct rw__trace *t, struct trace_tls *tl)
{
	uint32_t n = atomic_load_explicit(&t->next, memory_order_acquire);
	struct slot_priv *slot = NULL;
	uint32_t idx;

	if (!tl->tid)
		tl->tid = rw__gettid(); /* once in the thread's life */
	if (n > t->nslots)
		n = t->nslots;
	for (uint32_t i = 0; i < n && !slot; i++)
		if (atomic_load_explicit(&t->priv[i].tid,
					 memory_order_acquire) == tl->tid)
			slot = &t->priv[i];
	if (!slot) {
		idx = atomic_fetch_add_explicit(&t->next, 1,
						memory_order_relaxed);
		if (idx < t->nslots) {
			slot = &t->priv[idx];
			atomic_store_explicit(&slot->tid, tl->tid,
					      memory_order_release);
			/* P1. */
			atomic_store_explicit(&slot->shared->tid, tl->tid,
					      memory_order_release);
			atomic_fetch_add_explicit(&t->shm->slots_claimed, 1,
						  memory_order_relaxed);
		} else {
			/* Keep the counter from wrapping to a valid slot. */
			atomic_fetch_sub_explicit(&t->next, 1,
						  memory_order_relaxed);
		}
	}
	tl->gen[tl->next] = t->gen;
	tl->slot[tl->next] = slot;
	tl->next = (unsigned char)((tl->next + 1) % TLS_WAYS);
	return slot;
}

/* Step 3. */
static inline struct slot_priv *slot_of(struct rw__trace *t,
					struct trace_tls *tl)
{
	for (unsigned i = 0; i < TLS_WAYS; i++)
		if (tl->gen[i] == t->gen)
			return tl->slot[i];
	return slot_find(t, tl);
}

static inline uint64_t round8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

static void drop_full(struct slot_priv *p)
{
	uint64_t d = atomic_load_explicit(&p->dropped, memory_order_relaxed);

	/* P3: one writer, so a load and a store are enough. */
	atomic_store_explicit(&p->dropped, d + 1, memory_order_relaxed);
	atomic_store_explicit(&p->shared->dropped, d + 1, memory_order_relaxed);
}

/*
 * P2: whether @need bytes fit after @head, given the tail last loaded
 * (*@tail, always a checked value: head - tail <= ring_size). When they do
 * not, load the reader's tail (acquire) and take it if it is sound: not
 * behind the last one, not past head. A reader that moves its tail
 * backwards or past head is broken, and its ring is taken for full.
 */
static inline bool room(const struct rw__trace *t, struct slot_priv *p,
			uint64_t head, uint64_t *tail, uint64_t need)
{
	uint64_t ntail;

	if (RW_LIKELY(need <= t->ring_size - (head - *tail)))
		return true;
	ntail = atomic_load_explicit(&p->shared->tail, memory_order_acquire);
	if (ntail - *tail > head - *tail)
		return false;
	*tail = ntail;
	atomic_store_explicit(&p->tail, ntail, memory_order_relaxed);
	return need <= t->ring_size - (head - ntail);
}

/*
 * Steps 5 and 6 up to the record's own bytes: the padding that keeps @len
 * bytes from straddling the end of a sub-buffer (of which the end of the
 * ring is one), P2 and P3 for both (or O1 in overwrite mode), then P4's
 * padding record. The record's position in the ring, with *@head moved
 * past padding and record, or -1 (dropped, counted).
 */
static inline int64_t reserve(const struct rw__trace *t, struct slot_priv *p,
			      uint64_t *head, uint64_t tail, uint64_t len)
{
	uint64_t pos = *head & t->mask;
	uint64_t left = t->subbuf - (*head & t->submask);
	uint64_t pad = left < len ? left : 0;

	if (t->overwrite) {
		/* O1: the reader's S3 and S4 tell from it which of the bytes
		 * it copied may have been written over meanwhile. */
		atomic_store_explicit(&p->shared->reserve, *head + pad + len,
				      memory_order_relaxed);
		o1_fence();
	} else if (RW_UNLIKELY(!room(t, p, *head, &tail, pad + len))) {
		drop_full(p);
		return -1;
	}
	/* Records and the ring are 8-byte aligned. */
	if (pad) {
		struct rw_trace_rec padrec = { (uint32_t)pad, RW_TRACE_PAD, 0,
					       0, 0 };

		memcpy(p->ring + pos, &padrec, RW_TRACE_PAD_HDR);
		pos = (pos + pad) & t->mask;
	}
	*head += pad + len;
	return (int64_t)pos;
}

/* P5: the records up to @head are the reader's. */
static inline void publish(struct slot_priv *p, uint64_t head)
{
	atomic_store_explicit(&p->head, head, memory_order_relaxed);
	atomic_store_explicit(&p->shared->head, head, memory_order_release);
}

/* The session's clock now (ring.h, Clock). */
static inline uint64_t now(const struct rw__trace *t)
{
	struct timespec ts;

	if (RW_LIKELY(t->tsc))
		return rw__arch_tsc();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A record's header: its length, id and argument count, stamped now. */
static inline void rec_header(const struct rw__trace *t,
			      struct rw_trace_rec *rec, uint64_t len,
			      uint16_t id, unsigned nargs)
{
	rec->len = (uint32_t)len;
	rec->id = id;
	rec->nargs = (uint8_t)nargs;
	rec->flags = 0;
	rec->ts = now(t);
}

/* Steps 4 to 6 for the calling thread's slot @p. */
static inline void record(const struct rw__trace *t, struct slot_priv *p,
			  const struct ent *e, const union rw_tp_value *args)
{
	unsigned nargs = e->nargs, strings = e->strings;
	uint32_t slen[RW_TRACE_MAX_ARGS], sflags[RW_TRACE_MAX_ARGS];
	uint64_t len = e->base, head, tail;
	struct rw_trace_rec rec;
	int64_t pos;
	uint64_t *w;

	head = atomic_load_explicit(&p->head, memory_order_relaxed);
	tail = atomic_load_explicit(&p->tail, memory_order_relaxed);
	/* No room for even the fixed part: drop (P3) before measuring the
	 * strings, so that a full ring costs its threads little. */
	if (RW_UNLIKELY(!t->overwrite && !room(t, p, head, &tail, len))) {
		drop_full(p);
		return;
	}
	/* Step 4: the strings' lengths (the rest is e->base). */
	for (unsigned m = strings; m; m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctz(m);
		const char *s = args[i].str;
		size_t n = s ? strnlen(s, RW_TRACE_MAX_STRING + 1) : 0;

		sflags[i] = !s			      ? RW_TRACE_STR_NULL
			    : n > RW_TRACE_MAX_STRING ? RW_TRACE_STR_TRUNCATED
						      : 0;
		if (n > RW_TRACE_MAX_STRING)
			n = RW_TRACE_MAX_STRING;
		slen[i] = (uint32_t)n;
		len += round8(n);
	}

	/* Steps 5 and 6: the whole record, then its bytes. */
	pos = reserve(t, p, &head, tail, len);
	if (pos < 0)
		return;
	rec_header(t, &rec, len, (uint16_t)e->id, nargs);
	w = (uint64_t *)(void *)(p->ring + pos);
	memcpy(w, &rec, sizeof(rec));
	w += sizeof(rec) / 8;
	/* The 8-byte slots of every argument (strings' slots are rewritten
	 * below), then the strings' bytes. The switch is unrolled on
	 * purpose: a loop costs 14 more instructions per 5-argument event
	 * (288 instead of 274 Ir, rw-bench-trace --callgrind ring). */
	switch (nargs) {
	case 8:
		w[7] = args[7].u;
		__attribute__((fallthrough));
	case 7:
		w[6] = args[6].u;
		__attribute__((fallthrough));
	case 6:
		w[5] = args[5].u;
		__attribute__((fallthrough));
	case 5:
		w[4] = args[4].u;
		__attribute__((fallthrough));
	case 4:
		w[3] = args[3].u;
		__attribute__((fallthrough));
	case 3:
		w[2] = args[2].u;
		__attribute__((fallthrough));
	case 2:
		w[1] = args[1].u;
		__attribute__((fallthrough));
	case 1:
		w[0] = args[0].u;
		__attribute__((fallthrough));
	default:
		break;
	}
	if (strings) {
		uint64_t *sw = w + nargs;

		for (unsigned m = strings; m; m &= m - 1) {
			unsigned i = (unsigned)__builtin_ctz(m);
			struct rw_trace_str sh = { slen[i], sflags[i] };
			uint64_t n = round8(slen[i]) / 8;

			memcpy(&w[i], &sh, sizeof(sh));
			if (n) {
				sw[n - 1] = 0; /* the padding */
				memcpy(sw, args[i].str, slen[i]);
				sw += n;
			}
		}
	}
	publish(p, head);
}

/* noinline: filter_probe() calls it, and must stay small (see there). */
static __attribute__((noinline)) void
probe(void *data, const struct rw_tracepoint *tp, const union rw_tp_value *args)
{
	const struct ent *e = data;
	struct rw__trace *t = e->t;
	struct trace_tls *tl = &tls;
	struct slot_priv *slot;

	(void)tp; /* e->tp, with its shape precomputed in e */
	/* Step 1. */
	if (RW_UNLIKELY(tl->w.busy)) {
		atomic_fetch_add_explicit(&t->nested, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->shm->dropped_nested, 1,
					  memory_order_relaxed);
		return;
	}
	tl->w.busy = 1;
	atomic_signal_fence(memory_order_seq_cst);
	/* Step 2. */
	if (RW_UNLIKELY(t->epoch != atomic_load_explicit(&fork_epoch,
							 memory_order_relaxed)))
		goto out;
	/* Step 3. */
	slot = slot_of(t, tl);
	if (RW_LIKELY(slot != NULL)) {
		record(t, slot, e, args);
	} else {
		atomic_fetch_add_explicit(&t->noslot, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->shm->dropped_noslot, 1,
					  memory_order_relaxed);
	}
out:
	atomic_signal_fence(memory_order_seq_cst);
	tl->w.busy = 0;
}

/*
 * The generated writers' way in (rewire/tracepoint.h, rw__tprec_<name>):
 * steps 1 to 3 as probe(), 5 for @maxlen bytes, and the header but its
 * length. The thread stays busy (step 1) until the writer's inline commit
 * (rw__tp_rec_commit(): P5 through the thread's writer context, tls.w).
 *
 * rw__trace_reserve() is the common case only, kept short enough to need
 * no saved register: the session of the thread's last writer record (wgen,
 * with its slot wslot and w pointing there), taken with the TSC, and a
 * record that ends at or below the slot's lim (no padding, room). It
 * skips step 2: a fork child's first event goes to reserve_slow(), since
 * trace_atfork_child() emptied its TLS. Everything else goes to
 * reserve_slow(), which takes every step in full and sets wgen, wslot, w
 * and lim for the next events.
 */
static __attribute__((noinline, cold)) struct rw__trace_res
reserve_nested(struct rw__trace *t)
{
	atomic_fetch_add_explicit(&t->nested, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->shm->dropped_nested, 1,
				  memory_order_relaxed);
	return (struct rw__trace_res){ NULL, NULL };
}

/*
 * Steps 2 to 5 and the header, the thread busy (step 1 done). When the
 * longest record would need padding or does not fit, the writer is told to
 * record through the generic path instead (RW__TP_REC_EXACT), which
 * measures the strings first: so a generated writer pads, records and
 * drops exactly where the generic probe would.
 */
static __attribute__((noinline)) struct rw__trace_res
reserve_slow(const struct ent *e, unsigned long maxlen)
{
	struct rw__trace *t = e->t;
	struct trace_tls *tl = &tls;
	struct rw__trace_res r = { NULL, &tl->w };
	struct slot_priv *p;
	uint64_t head, tail, end, ts;

	/* Step 2. */
	if (RW_UNLIKELY(t->epoch != atomic_load_explicit(&fork_epoch,
							 memory_order_relaxed)))
		goto out;
	/* Step 3. */
	p = slot_of(t, tl);
	if (RW_UNLIKELY(!p)) {
		atomic_fetch_add_explicit(&t->noslot, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->shm->dropped_noslot, 1,
					  memory_order_relaxed);
		goto out;
	}
	/* Step 5, for the longest record: no padding, and room (P2). No
	 * room for even the fixed part: the generic path would drop now
	 * (P3), so drop here. */
	head = atomic_load_explicit(&p->head, memory_order_relaxed);
	tail = atomic_load_explicit(&p->tail, memory_order_relaxed);
	if (RW_UNLIKELY(!t->overwrite && !room(t, p, head, &tail, e->base))) {
		drop_full(p);
		goto out;
	}
	end = (head | t->submask) + 1; /* of head's sub-buffer */
	if (end - head < maxlen ||
	    (!t->overwrite && !room(t, p, head, &tail, maxlen))) {
		/* The thread stays busy until rw__trace_record(). */
		tl->went = e;
		tl->xslot = p;
		r.rec = RW__TP_REC_EXACT;
		return r;
	}
	if (t->overwrite) {
		atomic_store_explicit(&p->shared->reserve, head + maxlen,
				      memory_order_relaxed);
		o1_fence();
	} else if (tail + t->ring_size < end) {
		end = tail + t->ring_size;
	}
	r.rec = p->ring + (head & t->mask);
	memcpy(r.rec + offsetof(struct rw_trace_rec, id), &e->hdr,
	       sizeof(e->hdr));
	ts = now(t);
	memcpy(r.rec + offsetof(struct rw_trace_rec, ts), &ts, sizeof(ts));
	/* The fast path of the next events: this slot, up to end. */
	atomic_store_explicit(&p->lim, end, memory_order_relaxed);
	tl->w.head = (rw__tp_u64a *)&p->head;
	tl->w.shared_head = (rw__tp_u64a *)&p->shared->head;
	tl->wgen = t->tsc ? t->gen : 0;
	tl->wslot = p;
	return r;
out:
	atomic_signal_fence(memory_order_seq_cst);
	tl->w.busy = 0;
	r.ctx = NULL;
	return r;
}

struct rw__trace_res rw__trace_reserve(void *data, unsigned long maxlen)
{
	const struct ent *e = data;
	struct trace_tls *tl = &tls;
	struct rw__trace_res r;
	struct slot_priv *p;
	uint64_t head, ts;

	/* Step 1. */
	if (RW_UNLIKELY(tl->w.busy))
		return reserve_nested(e->t);
	tl->w.busy = 1;
	atomic_signal_fence(memory_order_seq_cst);
	/* Steps 2 and 3, the common case (see above). */
	p = tl->wslot;
	if (RW_UNLIKELY(tl->wgen != e->gen))
		return reserve_slow(e, maxlen);
	/* Step 5: no padding needed, and room (P2, P3), or O1. */
	head = atomic_load_explicit(&p->head, memory_order_relaxed);
	if (RW_UNLIKELY(head + maxlen >
			atomic_load_explicit(&p->lim, memory_order_relaxed)))
		return reserve_slow(e, maxlen);
	if (p->overwrite) {
		atomic_store_explicit(&p->shared->reserve, head + maxlen,
				      memory_order_relaxed);
		o1_fence();
	}
	r.rec = p->ring + (head & p->mask);
	memcpy(r.rec + offsetof(struct rw_trace_rec, id), &e->hdr,
	       sizeof(e->hdr));
	ts = rw__arch_tsc();
	memcpy(r.rec + offsetof(struct rw_trace_rec, ts), &ts, sizeof(ts));
	r.ctx = &tl->w;
	return r;
}

/* After RW__TP_REC_EXACT: steps 4 to 6 of the generic probe for the
 * tracepoint and slot reserve_slow() found, the thread still busy. */
void rw__trace_record(const union rw_tp_value *args)
{
	struct trace_tls *tl = &tls;
	const struct ent *e = tl->went;

	record(e->t, tl->xslot, e, args);
	atomic_signal_fence(memory_order_seq_cst);
	tl->w.busy = 0;
}

/* The commit of the abi 1 writers (rewire/tracepoint.h), which the library
 * no longer attaches: kept so that the programs built with that header
 * still load. */
RW_EXPORT void rw__trace_commit(void *rec, unsigned len);
void rw__trace_commit(void *rec, unsigned len)
{
	struct rw__trace_res r = { rec, &tls.w };

	rw__tp_rec_commit(r, r.rec + len);
}

/*
 * The probe of a tracepoint with a filter (--filter; ents[].fstate 1 or
 * 2), step 0 before probe(): the filter, evaluated on the arguments first
 * of all. An event it keeps out is counted and touches nothing else: not
 * the ring, the slot cache, the nesting flag or the clock. It runs before
 * step 1 because it reads only the arguments and its own program
 * (rw_filter_eval() is async-signal-safe). A probe of its own rather than
 * a test in probe(): so small, it saves no register, where probe() saves
 * them all before its first test. The count goes to one of FILTER_STRIPES
 * counters, the one the thread's TLS block's address hashes to, so that
 * threads seldom share a line.
 */
static void filter_probe(void *data, const struct rw_tracepoint *tp,
			 const union rw_tp_value *args)
{
	const struct ent *e = data;
	uint64_t h;

	if (RW_LIKELY(e->filter) &&
	    rw_filter_eval(e->filter, (const uint64_t *)(const void *)args)) {
		probe(data, tp, args);
		return;
	}
	h = (uint64_t)(uintptr_t)&tls * 0x9e3779b97f4a7c15ull;
	atomic_fetch_add_explicit(&e->t->fcount[h >> (64 - 4)].n, 1,
				  memory_order_relaxed);
}
_Static_assert(FILTER_STRIPES == 1 << 4, "filter_probe() hashes to 4 bits");
_Static_assert(RW_FILTER_MAX_STRING == RW_TRACE_MAX_STRING,
	       "a filter compares the bytes a record holds");

/* The generic probe of @e's tracepoint. */
static rw_tp_generic_fn probe_of(const struct ent *e)
{
	return e->fstate ? filter_probe : probe;
}

/*
 * The function probes (`--function`): the same steps as probe(), with a
 * fixed-size record (ring.h, function records) instead of step 4.
 */
static inline void record_func(const struct rw__trace *t, struct slot_priv *p,
			       uint16_t id, uint32_t func, uint32_t depth,
			       uint64_t caller, uint64_t ns)
{
	uint64_t len = id == RW_TRACE_FUNC_ENTRY ? RW_TRACE_FUNC_ENTRY_LEN
						 : RW_TRACE_FUNC_RETURN_LEN;
	uint64_t head = atomic_load_explicit(&p->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&p->tail, memory_order_relaxed);
	struct rw_trace_func_rec rec;
	int64_t pos = reserve(t, p, &head, tail, len);

	if (pos < 0)
		return;
	rec_header(t, &rec.hdr, len, id, 0);
	rec.func = func;
	rec.depth = depth;
	rec.caller = caller;
	rec.ns = ns;
	memcpy(p->ring + pos, &rec, len);
	publish(p, head);
}

static inline void func_event(struct rw__trace *t, uint16_t id,
			      const struct rw_ftrace_func *f, uintptr_t caller,
			      unsigned depth, uint64_t ns)
{
	struct trace_tls *tl = &tls;
	const struct rw__functab *tab;
	struct slot_priv *slot;
	size_t func;

	/* Step 1. */
	if (RW_UNLIKELY(tl->w.busy)) {
		atomic_fetch_add_explicit(&t->nested, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->shm->dropped_nested, 1,
					  memory_order_relaxed);
		return;
	}
	tl->w.busy = 1;
	atomic_signal_fence(memory_order_seq_cst);
	/* Step 2; and a hit before the table is published (during the
	 * attach), or of a function not in it, is not recorded. */
	tab = atomic_load_explicit(&t->ftab, memory_order_acquire);
	func = tab ? rw__functab_id(tab, f) : SIZE_MAX;
	if (RW_UNLIKELY(t->epoch !=
				atomic_load_explicit(&fork_epoch,
						     memory_order_relaxed) ||
			func == SIZE_MAX))
		goto out;
	/* Step 3. */
	slot = slot_of(t, tl);
	if (RW_LIKELY(slot != NULL)) {
		record_func(t, slot, id, (uint32_t)func, depth, caller, ns);
	} else {
		atomic_fetch_add_explicit(&t->noslot, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->shm->dropped_noslot, 1,
					  memory_order_relaxed);
	}
out:
	atomic_signal_fence(memory_order_seq_cst);
	tl->w.busy = 0;
}

static void fprobe_entry(void *data, const struct rw_ftrace_func *f,
			 uintptr_t caller, unsigned depth)
{
	func_event(data, RW_TRACE_FUNC_ENTRY, f, caller, depth, 0);
}

static void fprobe_return(void *data, const struct rw_ftrace_func *f,
			  uintptr_t caller, uint64_t ns, unsigned depth)
{
	func_event(data, RW_TRACE_FUNC_RETURN, f, caller, depth, ns);
}

int rw__functab_init(struct rw__functab *tab, const struct rw_ftrace *t)
{
	size_t n = rw_ftrace_nfuncs(t);

	tab->n = 0;
	tab->base = n ? rw_ftrace_func_at(t, 0) : NULL;
	tab->addr = malloc((n ? n : 1) * sizeof(*tab->addr));
	if (!tab->addr)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		tab->addr[i] = rw_ftrace_func_at(t, i)->addr;
	tab->n = n;
	return 0;
}

void rw__functab_free(struct rw__functab *tab)
{
	free(tab->addr);
	tab->addr = NULL;
	tab->n = 0;
}

size_t rw__functab_id(const struct rw__functab *tab,
		      const struct rw_ftrace_func *f)
{
	uintptr_t d = (uintptr_t)f - (uintptr_t)tab->base;
	size_t lo = 0, hi = tab->n;

	/* The table's own entry: one compare. */
	if (d % sizeof(*f) == 0 && d / sizeof(*f) < tab->n &&
	    tab->addr[d / sizeof(*f)] == f->addr)
		return d / sizeof(*f);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tab->addr[mid] < f->addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tab->n && tab->addr[lo] == f->addr ? lo : SIZE_MAX;
}

/* --- Sessions ------------------------------------------------------------- */

static int functab_publish(struct rw__trace *t, const struct rw_ftrace *ft)
{
	int e = rw__functab_init(&t->tab, ft);

	if (!e)
		atomic_store_explicit(&t->ftab, &t->tab, memory_order_release);
	return e;
}

bool rw__trace_is_probe(const void *func)
{
	return func == (const void *)probe ||
	       func == (const void *)filter_probe;
}

bool rw__trace_is_probe_of(const struct rw_tracepoint *tp, const void *func)
{
	return rw__trace_is_probe(func) ||
	       (tp && tp->abi >= 1 && func && func == tp->recorder);
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * The shared memory of every session together is capped: each session's
 * rings are bounded, but a client (or sixteen) could otherwise make the
 * process map sessions until it runs out of memory. A session counts with
 * its full size: the pages are touched only as the rings fill, but a busy
 * program with a slow reader fills them. The default takes four sessions
 * with the most slots and the default ring (1024 x 256 KiB), or a few
 * dozen of the usual 64 slots; $REWIRE_TRACE_MEM_MAX (bytes, or with a K,
 * M or G suffix) in the traced process's environment changes it. A
 * session whose probe could not be detached keeps its memory, and its
 * bytes stay counted.
 */
#define MEM_MAX_DEFAULT (1ull << 30)
static _Atomic size_t mem_in_use;
static _Atomic unsigned mem_sessions;

static uint64_t mem_max(void)
{
	const char *v = getenv("REWIRE_TRACE_MEM_MAX");
	unsigned long long n;
	char *end;

	if (!v || !*v)
		return MEM_MAX_DEFAULT;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v)
		return MEM_MAX_DEFAULT;
	switch (*end) {
	case 'k':
	case 'K':
		n <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		n <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		n <<= 30;
		end++;
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	return *end ? MEM_MAX_DEFAULT : n;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* Counts @t's bytes in, or fails with the figures in @err. */
static int mem_reserve(const struct rw__trace *t, char *err, size_t errlen)
{
	uint64_t max = mem_max();
	size_t used = atomic_load(&mem_in_use);

	do {
		if (t->size > max || used > max - t->size) {
			seterr(err, errlen,
			       "trace sessions' shared memory is capped at "
			       "%.1f MiB (REWIRE_TRACE_MEM_MAX); %.1f MiB are in "
			       "use by %u session%s and this one needs %.1f MiB "
			       "(%u thread slots x %llu KiB rings): use a "
			       "smaller --ring-size, stop a session, or start "
			       "the process with a larger REWIRE_TRACE_MEM_MAX",
			       mib(max), mib(used), atomic_load(&mem_sessions),
			       atomic_load(&mem_sessions) == 1 ? "" : "s",
			       mib(t->size), (unsigned)t->nslots,
			       (unsigned long long)(t->ring_size >> 10));
			return -ENOMEM;
		}
	} while (!atomic_compare_exchange_weak(&mem_in_use, &used,
					       used + t->size));
	atomic_fetch_add(&mem_sessions, 1);
	return 0;
}

struct match {
	const char *const *patterns;
	size_t npatterns;
	bool *hit; /* per pattern */
	struct rw_tracepoint **tps;
	size_t n, cap;
	int err;
};

/* rw_ftrace_list() callback: count the traceable functions. */
static int count_traceable(void *arg, const struct rw_ftrace_func *f)
{
	if (f->status == 0)
		++*(size_t *)arg;
	return 0;
}

static int match_one(struct rw_tracepoint *tp, void *arg)
{
	struct match *m = arg;
	bool any = false;

	if (!tp || !tp->name)
		return 0;
	for (size_t i = 0; i < m->npatterns; i++)
		if (fnmatch(m->patterns[i], tp->name, 0) == 0)
			any = m->hit[i] = true;
	if (!any)
		return 0;
	/* The same tracepoint twice (an object registered twice). */
	for (size_t i = 0; i < m->n; i++)
		if (m->tps[i] == tp)
			return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;
		struct rw_tracepoint **v = realloc(m->tps, cap * sizeof(*v));

		if (!v) {
			m->err = -ENOMEM;
			return 1;
		}
		m->tps = v;
		m->cap = cap;
	}
	m->tps[m->n++] = tp;
	return 0;
}

static uint64_t ring_size_of(size_t bytes, bool overwrite)
{
	uint64_t r = overwrite ? RW_TRACE_OVERWRITE_RING_MIN
			       : RW_TRACE_RING_MIN;

	if (!bytes)
		return RW_TRACE_RING_DEFAULT;
	while (r < bytes && r < RW_TRACE_RING_MAX)
		r <<= 1;
	return r;
}

/*
 * The session's clock (trace.h, rw__trace_start_opts()): 0 or a negative
 * errno with the reason in @err.
 */
static int clock_choose(unsigned want, unsigned *clock, char *err,
			size_t errlen)
{
	const char *env = getenv("REWIRE_TRACE_CLOCK");

	/* The environment asks; where there is no counter, it gets the
	 * fallback (only a client's explicit request is refused). */
	if (!want && env && !strcmp(env, "tsc"))
		want = rw__arch_tsc_present() ? RW_TRACE_CLOCK_TSC
					      : CLOCK_MONOTONIC;
	else if (!want && env && !strcmp(env, "monotonic"))
		want = CLOCK_MONOTONIC;
	else if (!want && env && *env)
		rw__log("REWIRE_TRACE_CLOCK=%s: neither tsc nor monotonic, "
			"ignored",
			env);
	if (want == RW_TRACE_CLOCK_TSC && !rw__arch_tsc_present()) {
		seterr(err, errlen,
		       "this machine has no time-stamp counter that rewire "
		       "reads (x86-64 and aarch64 backends only): use the "
		       "monotonic clock");
		return -EOPNOTSUPP;
	}
	if (want && want != RW_TRACE_CLOCK_TSC && want != CLOCK_MONOTONIC) {
		seterr(err, errlen, "unknown trace clock %u", want);
		return -EINVAL;
	}
	if (!want)
		want = rw__arch_tsc_present() && rw__arch_tsc_invariant()
			       ? RW_TRACE_CLOCK_TSC
			       : CLOCK_MONOTONIC;
	*clock = want;
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * ring.h's calibration: the TSC halfway between two reads that bracket a
 * read of each clock, from the narrowest bracket of a few tries (a try that
 * was preempted or interrupted is wide).
 */
static void calibrate(struct rw_trace_shm *h, bool tsc)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 8; i++) {
		uint64_t t0 = rw__arch_tsc(), rt, mono, t1;

		rt = clock_ns(CLOCK_REALTIME);
		mono = clock_ns(CLOCK_MONOTONIC);
		t1 = rw__arch_tsc();
		if (t1 - t0 < best) {
			best = t1 - t0;
			h->cal_tsc = tsc ? t0 + (t1 - t0) / 2 : 0;
			h->cal_realtime = rt;
			h->cal_monotonic = mono;
		}
		if (!tsc)
			break;
	}
	h->tsc_hz = tsc ? rw__arch_tsc_hz() : 0;
}

/* The threads of the process now (/proc/self/task); 0 if unknown. */
static unsigned thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static uint32_t slots_for(unsigned threads)
{
	uint64_t n = 2 * (uint64_t)threads;

	if (n < RW_TRACE_SLOTS_MIN)
		n = RW_TRACE_SLOTS_MIN;
	if (n > RW_TRACE_SLOTS_MAX)
		n = RW_TRACE_SLOTS_MAX;
	return (uint32_t)n;
}

/* Frees what rw__trace_start() built; no probe may be attached. */
static void trace_free(struct rw__trace *t)
{
	if (t->counted) {
		atomic_fetch_sub(&mem_in_use, t->size);
		atomic_fetch_sub(&mem_sessions, 1);
	}
	if (t->shm)
		munmap(t->shm, t->size);
	if (t->fd >= 0)
		close(t->fd);
	free(t->priv);
	for (size_t i = 0; t->ents && i < t->count; i++)
		rw_filter_free(t->ents[i].filter);
	free(t->fcount);
	free(t->ents);
	rw__functab_free(&t->tab);
	free(t);
}

static int shm_create(struct rw__trace *t, char *err, size_t errlen)
{
	struct rw_trace_shm *h;
	void *p;
	int e;

	t->fd = memfd_create("rewire-trace", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->fd < 0) {
		e = -errno;
		seterr(err, errlen, "memfd_create: %s", strerror(-e));
		return e;
	}
	if (ftruncate(t->fd, (off_t)t->size) ||
	    fcntl(t->fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		e = -errno;
		seterr(err, errlen, "shared memory of %zu bytes: %s", t->size,
		       strerror(-e));
		return e;
	}
	p = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (p == MAP_FAILED) {
		e = -errno;
		seterr(err, errlen, "mmap of %zu bytes: %s", t->size,
		       strerror(-e));
		return e;
	}
	h = t->shm = p;
	for (uint32_t i = 0; i < t->nslots; i++) {
		t->priv[i].shared =
			(struct rw_trace_slot *)((char *)p + RW_TRACE_SHM_HDR) +
			i;
		t->priv[i].ring = (char *)p + rw_trace_data_offset(t->nslots) +
				  (uint64_t)i * t->ring_size;
		t->priv[i].mask = t->mask;
		t->priv[i].overwrite = t->overwrite;
	}
	/* The memfd is zero-filled: counters, tids, heads and tails are 0. */
	memcpy(h->magic, RW_TRACE_MAGIC, sizeof(h->magic));
	h->version = RW_TRACE_VERSION;
	h->hdr_size = RW_TRACE_SHM_HDR;
	h->nslots = t->nslots;
	h->slot_size = sizeof(struct rw_trace_slot);
	h->ring_size = t->ring_size;
	h->data_offset = rw_trace_data_offset(t->nslots);
	h->total_size = t->size;
	h->clock = t->clock;
	h->max_string = RW_TRACE_MAX_STRING;
	h->ntracepoints = (uint32_t)t->count;
	h->pid = (uint32_t)getpid();
	h->session = t->gen;
	h->flags = t->overwrite ? RW_TRACE_F_OVERWRITE : 0;
	h->subbuf_size = (uint32_t)t->subbuf;
	calibrate(h, t->tsc);
	return 0;
}

struct live {
	struct rw__trace *t;
	size_t n;
	bool *alive;
};

static int mark_live(struct rw_tracepoint *tp, void *arg)
{
	struct live *l = arg;

	for (size_t i = 0; i < l->n; i++)
		if (l->t->ents[i].tp == tp)
			l->alive[i] = true;
	return 0;
}

/*
 * Detaches the probes of ents[0..n-1] whose objects are still loaded, then
 * waits until none of them can run. False if one could not be detached
 * (then it may still run, and the session must be kept).
 */
static bool detach(struct rw__trace *t, size_t n)
{
	bool *alive = calloc(n ? n : 1, sizeof(*alive));
	struct live l = { t, n, alive };
	bool ok = true;

	/* Without the list, assume every object is still loaded. */
	if (!alive || rw_tracepoint_for_each(mark_live, &l) != 0) {
		free(alive);
		alive = NULL;
	}
	for (size_t i = 0; i < n; i++) {
		int err;

		if (alive && !alive[i]) {
			rw__log("tracepoint %zu: its object is gone", i);
			continue;
		}
		err = t->ents[i].writer
			      ? rw_tracepoint_probe_unregister_raw(
					t->ents[i].tp, t->ents[i].tp->recorder,
					&t->ents[i])
			      : rw_tracepoint_probe_unregister_generic(
					t->ents[i].tp, probe_of(&t->ents[i]),
					&t->ents[i]);
		if (err && err != -ENOENT) {
			rw__log("%s: %s", t->ents[i].tp->name,
				rw_strerror(err));
			ok = false;
		}
	}
	free(alive);
	if (rw_tracepoint_synchronize_unregister())
		ok = false;
	return ok;
}

/* --- Filters (--filter, src/ctl/filter.h) ---------------------------------
 * Compiled once per tracepoint when the session starts, before any probe
 * is attached (the probes read ents[].fstate and .filter from the first
 * event on, and a tracepoint with a filter never takes its generated
 * writer).
 */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct rw_filter_field *)a)->name,
		      ((const struct rw_filter_field *)b)->name);
}

static int filter_error(const struct rw_filter_error *fe, int e,
			unsigned *column, char *err, size_t errlen)
{
	if (column)
		*column = fe->column;
	if (fe->column)
		seterr(err, errlen, "--filter, column %u: %s", fe->column,
		       fe->msg);
	else
		seterr(err, errlen, "--filter: %s", fe->msg);
	return e;
}

/* The names of every field of the session's tracepoints, sorted, each
 * once (NULL names skipped): for the check of the expression's names. */
static struct rw_filter_field *all_fields(const struct rw__trace *t,
					  unsigned *n)
{
	struct rw_filter_field *f =
		calloc(t->count * RW_TRACE_MAX_ARGS + 1, sizeof(*f));
	size_t k = 0, u = 0;

	if (!f)
		return NULL;
	for (size_t i = 0; i < t->count; i++)
		for (unsigned j = 0; j < t->ents[i].nargs; j++)
			if (t->ents[i].tp->fields[j].name)
				f[k++] = (struct rw_filter_field){
					t->ents[i].tp->fields[j].name,
					(int)t->ents[i].tp->fields[j].kind
				};
	if (k)
		qsort(f, k, sizeof(*f), cmp_name);
	for (size_t i = 0; i < k; i++)
		if (!u || strcmp(f[u - 1].name, f[i].name))
			f[u++] = f[i];
	/* rw_filter_check() takes at most UINT16_MAX and says so. */
	*n = u > UINT16_MAX + 1u ? UINT16_MAX + 1u : (unsigned)u;
	return f;
}

static int filters_setup(struct rw__trace *t, const char *expr,
			 unsigned *column, char *err, size_t errlen)
{
	struct rw_filter_error fe, first = { 0, "" };
	struct rw_filter_field *all;
	int e, first_e = 0;
	size_t pass = 0;
	unsigned n;

	if (!expr || !*expr)
		return 0;
	if (!t->count) {
		seterr(err, errlen,
		       "--filter applies to tracepoint events, and no "
		       "tracepoint is traced (function events are not "
		       "filtered)");
		return -EINVAL;
	}
	/* The syntax, and names that no tracepoint has. */
	all = all_fields(t, &n);
	if (!all) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e = rw_filter_check(expr, all, n, &fe);
	free(all);
	if (e)
		return filter_error(&fe, e, column, err, errlen);
	t->fcount = aligned_alloc(RW_CACHELINE,
				  FILTER_STRIPES * sizeof(*t->fcount));
	if (!t->fcount) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(t->fcount, 0, FILTER_STRIPES * sizeof(*t->fcount));
	for (size_t i = 0; i < t->count; i++) {
		struct ent *en = &t->ents[i];
		struct rw_filter_field f[RW_TRACE_MAX_ARGS];

		for (unsigned j = 0; j < en->nargs; j++)
			f[j] = (struct rw_filter_field){
				en->tp->fields[j].name,
				(int)en->tp->fields[j].kind
			};
		e = rw_filter_compile(expr, f, en->nargs, &en->filter, &fe);
		if (e == -ENOMEM)
			return filter_error(&fe, e, column, err, errlen);
		en->fstate = e ? 2 : 1;
		pass += !e;
		/* Keep the first error, a kind's rather than a name's. */
		if (e && (!first_e || (first_e == -ENOENT && e != -ENOENT))) {
			first_e = e;
			first = fe;
			snprintf(first.msg, sizeof(first.msg),
				 "%.150s (tracepoint %.30s)", fe.msg,
				 en->tp->name);
		}
	}
	if (!pass) {
		if (first_e == -ENOENT)
			/* Every name is some tracepoint's, but none has them
			 * all. */
			snprintf(fe.msg, sizeof(fe.msg),
				 "no traced tracepoint has every field the "
				 "filter names (%.140s)",
				 first.msg);
		else
			fe = first;
		fe.column = first.column;
		return filter_error(&fe, first_e, column, err, errlen);
	}
	return 0;
}

int rw__trace_filter_state(const struct rw__trace *t, size_t id)
{
	return t && id < t->count ? t->ents[id].fstate : 0;
}

uint64_t rw__trace_filtered(const struct rw__trace *t)
{
	uint64_t n = 0;

	if (!t || !t->fcount)
		return 0;
	for (unsigned i = 0; i < FILTER_STRIPES; i++)
		n += atomic_load_explicit(&t->fcount[i].n,
					  memory_order_relaxed);
	return n;
}

int rw__trace_start(const char *const *patterns, size_t npatterns,
		    size_t ring_bytes, struct rw__trace **out, char *err,
		    size_t errlen)
{
	if (!patterns || !npatterns) {
		if (err && errlen)
			seterr(err, errlen, "no tracepoint name or pattern");
		return -EINVAL;
	}
	return rw__trace_start_funcs(patterns, npatterns, NULL, 0, false,
				     ring_bytes, out, err, errlen);
}

int rw__trace_start_funcs(const char *const *patterns, size_t npatterns,
			  const char *const *funcs, size_t nfuncs, bool graph,
			  size_t ring_bytes, struct rw__trace **out, char *err,
			  size_t errlen)
{
	struct rw__trace_opts o = { 0 };

	o.patterns = patterns;
	o.npatterns = npatterns;
	o.funcs = funcs;
	o.nfuncs = nfuncs;
	o.graph = graph;
	o.ring_bytes = ring_bytes;
	return rw__trace_start_opts(&o, out, err, errlen);
}

/*
 * Whether tracepoint @en records with its generated writer: the tracepoint
 * has one of this library's interface (built with a header that defines
 * it the way this library expects: abi 2; abi 1 writers used the older
 * interface of rewire/tracepoint.h, abi 0 had none), the session
 * takes them, and no filter applies to it (a filter is evaluated by the
 * generic probe, before anything is recorded).
 */
static bool use_writer(const struct rw__trace *t, const struct ent *en,
		       bool generic)
{
	return !generic && en->tp->abi >= RW__TP_ABI && en->tp->recorder &&
	       rw__trace_filter_state(t, en->id) == 0;
}

int rw__trace_start_opts(const struct rw__trace_opts *o, struct rw__trace **out,
			 char *err, size_t errlen)
{
	const char *const *patterns = o ? o->patterns : NULL;
	const char *const *funcs = o ? o->funcs : NULL;
	size_t npatterns = o ? o->npatterns : 0, nfuncs = o ? o->nfuncs : 0;
	bool graph = o && o->graph;
	struct match m = { patterns, npatterns, NULL, NULL, 0, 0, 0 };
	struct rw__trace *t = NULL;
	size_t attached = 0;
	unsigned clock;
	int e;

	if (err && errlen)
		err[0] = '\0';
	if (o && o->filter_column)
		*o->filter_column = 0;
	if (!patterns)
		npatterns = 0;
	if (!funcs)
		nfuncs = 0;
	if (!o || !out || (!npatterns && !nfuncs)) {
		seterr(err, errlen, "no tracepoint or function pattern");
		return -EINVAL;
	}
	*out = NULL;
	for (size_t i = 0; i < npatterns; i++) {
		if (!patterns[i] || !patterns[i][0]) {
			seterr(err, errlen, "empty tracepoint pattern");
			return -EINVAL;
		}
	}
	e = clock_choose(o->clock, &clock, err, errlen);
	if (e)
		return e;
	pthread_once(&atfork_once, trace_atfork_register);

	m.hit = calloc(npatterns ? npatterns : 1, sizeof(*m.hit));
	if (!m.hit) {
		e = -ENOMEM;
		goto nomem;
	}
	e = npatterns ? rw_tracepoint_for_each(match_one, &m) : 0;
	if (e > 0)
		e = m.err;
	if (e) {
		seterr(err, errlen, "listing tracepoints: %s", rw_strerror(e));
		goto out;
	}
	for (size_t i = 0; i < npatterns; i++) {
		size_t nmatch = 0;

		if (m.hit[i])
			continue;
		/* A pattern meant for functions: say how to trace them. */
		(void)rw_ftrace_list(&patterns[i], 1, count_traceable, &nmatch);
		if (nmatch)
			seterr(err, errlen,
			       "no tracepoint matches '%s', but %zu "
			       "function(s) do: trace them with --function "
			       "'%s'",
			       patterns[i], nmatch, patterns[i]);
		else
			seterr(err, errlen, "no tracepoint matches '%s'",
			       patterns[i]);
		e = -ENOENT;
		goto out;
	}
	if (m.n > RW_TRACE_MAX_TRACEPOINTS) {
		seterr(err, errlen,
		       "%zu tracepoints match; at most %u can be traced", m.n,
		       RW_TRACE_MAX_TRACEPOINTS);
		e = -E2BIG;
		goto out;
	}

	/* Aligned: its hot fields and its counters have their own lines. */
	t = aligned_alloc(RW_CACHELINE, (sizeof(*t) + RW_CACHELINE - 1) &
						~(size_t)(RW_CACHELINE - 1));
	if (!t) {
		e = -ENOMEM;
		goto nomem;
	}
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->count = m.n;
	t->clock = clock;
	t->tsc = clock == RW_TRACE_CLOCK_TSC;
	t->overwrite = o->overwrite;
	t->ring_size = ring_size_of(o->ring_bytes, o->overwrite);
	t->mask = t->ring_size - 1;
	t->subbuf = t->ring_size;
	if (t->overwrite) {
		t->subbuf = t->ring_size / RW_TRACE_SUBBUFS;
		if (t->subbuf < RW_TRACE_SUBBUF_MIN)
			t->subbuf = RW_TRACE_SUBBUF_MIN;
	}
	t->submask = t->subbuf - 1;
	t->nslots = slots_for(thread_count());
	t->size = rw_trace_total_size(t->nslots, t->ring_size);
	t->gen = rw__trace_session_new();
	t->epoch = atomic_load(&fork_epoch);
	t->ents = calloc(m.n, sizeof(*t->ents));
	t->priv = aligned_alloc(RW_CACHELINE,
				t->nslots * sizeof(struct slot_priv));
	if (!t->ents || !t->priv) {
		e = -ENOMEM;
		goto nomem;
	}
	memset(t->priv, 0, t->nslots * sizeof(struct slot_priv));
	for (size_t i = 0; i < m.n; i++) {
		struct ent *en = &t->ents[i];
		unsigned nargs = m.tps[i]->nargs;

		if (nargs > RW_TRACE_MAX_ARGS)
			nargs = RW_TRACE_MAX_ARGS;
		*en = (struct ent){
			.t = t,
			.gen = t->gen,
			.tp = m.tps[i],
			.id = (uint32_t)i,
			.nargs = (uint8_t)nargs,
			.base = (uint16_t)(RW_TRACE_REC_HDR + 8 * nargs),
		};
		for (unsigned k = 0; k < nargs; k++)
			if (m.tps[i]->fields[k].kind == RW_TP_STRING)
				en->strings |= (uint8_t)(1u << k);
		{
			struct rw_trace_rec h = { 0, (uint16_t)i,
						  (uint8_t)nargs, 0, 0 };

			memcpy(&en->hdr, &h.id, sizeof(en->hdr));
		}
	}
	/* --filter: compiled per tracepoint, before any probe is attached. */
	e = filters_setup(t, o->filter, o->filter_column, err, errlen);
	if (e)
		goto out;
	e = mem_reserve(t, err, errlen);
	if (e)
		goto out;
	t->counted = true;
	e = shm_create(t, err, errlen);
	if (e)
		goto out;

	for (; attached < m.n; attached++) {
		struct ent *en = &t->ents[attached];

		en->writer = use_writer(t, en, o->generic);
		e = en->writer ? rw_tracepoint_probe_register_raw(
					 en->tp, en->tp->recorder, en,
					 RW_TRACEPOINT_PRIO_DEFAULT)
			       : rw_tracepoint_probe_register_generic(
					 en->tp, probe_of(en), en,
					 RW_TRACEPOINT_PRIO_DEFAULT);
		if (e) {
			seterr(err, errlen, "attaching to %s: %s",
			       m.tps[attached]->name, rw_strerror(e));
			goto out;
		}
	}
	if (nfuncs) {
		struct rw_ftrace_probe fp = { fprobe_entry,
					      graph ? fprobe_return : NULL, t };
		struct rw_ftrace *ft = NULL;

		/* The attach gives the set, so the table is filled while
		 * the probes already run: until it is published they find
		 * no index and record nothing (step 2). */
		e = rw_ftrace_attach(funcs, nfuncs, &fp, 0, &ft);
		if (e) {
			seterr(err, errlen, "%s",
			       *rw_ftrace_last_error() ? rw_ftrace_last_error()
						       : rw_strerror(e));
			goto out;
		}
		if (rw_ftrace_nfuncs(ft) > RW_TRACE_MAX_FUNCS ||
		    (e = functab_publish(t, ft)) != 0) {
			if (!e)
				e = -E2BIG;
			seterr(err, errlen,
			       e == -E2BIG ? "more than %u functions match"
					   : "out of memory (%u)",
			       RW_TRACE_MAX_FUNCS);
			if (rw_ftrace_detach(ft)) {
				rw__log("ftrace set leaked");
				t->ft = ft; /* keeps the session too */
			}
			goto out;
		}
		t->ft = ft;
	}
	*out = t;
	t = NULL;
	goto out;

nomem:
	seterr(err, errlen, "out of memory");
out:
	if (t && t->ft) {
		/* The ftrace set could not be detached: a probe may run. */
		rw__log("session %lu leaked", (unsigned long)t->gen);
		t = NULL;
	}
	if (t && attached && !detach(t, attached)) {
		/* A probe may still run: keep its session. */
		rw__log("session %lu leaked", (unsigned long)t->gen);
		t = NULL;
	}
	if (t)
		trace_free(t);
	free(m.hit);
	free(m.tps);
	return e;
}

int rw__trace_fd(const struct rw__trace *t)
{
	return t ? t->fd : -EINVAL;
}

size_t rw__trace_size(const struct rw__trace *t)
{
	return t ? t->size : 0;
}

size_t rw__trace_count(const struct rw__trace *t)
{
	return t ? t->count : 0;
}

const struct rw_tracepoint *rw__trace_tp(const struct rw__trace *t, size_t id)
{
	return t && id < t->count ? t->ents[id].tp : NULL;
}

uint64_t rw__trace_dropped(const struct rw__trace *t)
{
	uint32_t n;
	uint64_t d;

	if (!t)
		return 0;
	n = atomic_load_explicit(&t->next, memory_order_acquire);
	if (n > t->nslots)
		n = t->nslots;
	d = atomic_load_explicit(&t->noslot, memory_order_relaxed) +
	    atomic_load_explicit(&t->nested, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		d += atomic_load_explicit(&t->priv[i].dropped,
					  memory_order_relaxed);
	return d;
}

uint64_t rw__trace_session(const struct rw__trace *t)
{
	return t ? t->gen : 0;
}

uint64_t rw__trace_session_new(void)
{
	return atomic_fetch_add(&session_gen, 1) + 1;
}

bool rw__trace_overwrite(const struct rw__trace *t)
{
	return t && t->overwrite;
}

unsigned rw__trace_clock(const struct rw__trace *t)
{
	return t ? t->clock : 0;
}

bool rw__trace_uses_writer(const struct rw__trace *t, size_t id)
{
	return t && id < t->count && t->ents[id].writer;
}

size_t rw__trace_nfuncs(const struct rw__trace *t)
{
	return t ? t->tab.n : 0;
}

const struct rw_ftrace *rw__trace_ftrace(const struct rw__trace *t)
{
	return t ? t->ft : NULL;
}

uint64_t rw__trace_stop(struct rw__trace *t)
{
	uint64_t dropped;
	int e;

	if (!t)
		return 0;
	if (t->ft) {
		e = rw_ftrace_detach(t->ft);
		if (e) {
			rw__log("session %lu: function probes could not be "
				"detached (%s); its memory is kept",
				(unsigned long)t->gen, rw_strerror(e));
			close(t->fd);
			t->fd = -1;
			return rw__trace_dropped(t);
		}
		t->ft = NULL;
	}
	if (!detach(t, t->count)) {
		/* A probe may still run: keep the memory, drop the fd. */
		rw__log("session %lu: a probe could not be detached; its "
			"memory is kept",
			(unsigned long)t->gen);
		close(t->fd);
		t->fd = -1;
		return rw__trace_dropped(t);
	}
	/* No probe runs any more: the count is final. */
	dropped = rw__trace_dropped(t);
	trace_free(t);
	return dropped;
}
