/* SPDX-License-Identifier: MIT */
/*
 * readside.pml - Spin model of the floor's own read side and its grace
 * periods.
 *
 * The code it describes:
 *   - include/rewire/readside.h: rw__rs_lock() (if not registered,
 *     rw__rs_register(); nest++), rw__rs_unlock() (nest--), one
 *     instruction each on x86-64 (incq/decq), a relaxed load and store
 *     elsewhere (a handler can run between them);
 *   - src/readside.c: rw__rs_register() (R1-R4), unregister_self() and
 *     thread_exit(), gp_run() (G1-G6: gp.seq++ odd and a full barrier,
 *     barrier_all_threads() i.e. membarrier PRIVATE_EXPEDITED,
 *     registry_check(true) marks the listed threads with nest != 0,
 *     registry_check(false) until none is marked, membarrier, gp.seq++
 *     even), rw__rs_get_state() ((seq + 3) & ~1, 0 -> 2),
 *     rw__rs_poll_state() ((long)(seq - c) >= 0), rw__rs_synchronize()
 *     (cookie, gp.lock, a grace period only while the cookie is not
 *     complete: concurrent synchronizers share grace periods).
 *
 * Processes: one reader thread, not registered at first: NSEC sections
 * (1 by default: -DNSEC=2 doubles the search), the first lock
 * registering it if needed; then it exits
 * (thread_exit() unregisters it), and a later key destructor locks again
 * (it registers again) and exits again. One signal handler section may
 * interrupt the thread once: before its first lock (the handler's lock
 * then registers the thread), or between the load and the store of an
 * increment or of a decrement of nest. Updater 1 replaces the published
 * object (xchg), calls rw__rs_synchronize() and frees the old one.
 * Updater 2 does the same with a polled cookie (rw__rs_get_state(), then
 * rw__rs_synchronize() only if rw__rs_poll_state() says no, as
 * rw_rcu_cond_synchronize() does).
 *
 * Memory model of the reader (weaker than x86-64 and than the release
 * decrement of the generic path, so that it covers both): its stores to
 * nest go through a store buffer (FIFO, two entries) and become visible
 * later, while its following loads (the published pointer) are already
 * performed; and its load through the pointer may be performed after its
 * later stores (the decrement) are visible. A full barrier in the reader
 * (membarrier's IPI, a locked instruction of the registry lock, R3)
 * drains the buffer and performs the pending load. The updaters are
 * sequentially consistent (gp_run() has a full barrier after G1, the
 * registry lock, membarrier; xchg is a full barrier). Loads by the reader
 * of its own nest see its own buffered stores. membarrier is one atomic
 * step: a full barrier on every thread of the process. The fallback
 * without membarrier (rewire's signal to the threads registered when G2
 * or G5 starts) is not modelled apart: a thread registering after G2's
 * snapshot takes registry.lock after the updater's G1 barrier, which
 * orders its section after the unpublish as the barrier would.
 *
 * gp.seq wraps: the model keeps 4 bits (modulus 16) and starts at 12 or
 * 14, so the grace periods cross the wrap; the compare is
 * ((seq - c) mod 16) < 8, the 4-bit form of (long)(seq - c) >= 0. The
 * assumption the code states: a cookie is polled before gp.seq has moved
 * by half its range (2^63 grace periods; here at most 4 grace periods run,
 * 8 steps, while a cookie is at least 2 steps ahead of the seq it was
 * taken at).
 *
 * Properties (assert):
 *   - no reader dereferences a freed object (checked when the load
 *     through the pointer is performed);
 *   - a complete cookie implies a full grace period since it was taken:
 *     when rw__rs_poll_state(c) says yes, a grace period that began after
 *     rw__rs_get_state() returned c has ended (ghost counts of begun and
 *     ended grace periods).
 *
 * NAIVE variants, each refuted by Spin:
 *   NAIVE_NO_MB1  no membarrier at G2: the scan misses a reader whose
 *                 increment is still in its store buffer although it has
 *                 loaded the old pointer; the object is freed under it.
 *   NAIVE_NO_MB2  no membarrier at G5: the reader's load through the
 *                 pointer is still pending when its decrement is seen;
 *                 the object is freed before the load is performed.
 *                 (With -DTSO, where that load cannot pass the later
 *                 store, as on x86-64, or with a release decrement, this
 *                 variant passes: G5 is needed for weakly ordered
 *                 hardware with a plain decrement, as in liburcu's memb
 *                 flavour; the code keeps it.)
 *   NAIVE_WRAP    the cookie compared with a plain seq >= c: across the
 *                 wrap a cookie (0 -> 2 in the code) is complete at once.
 *
 * run_spin: --cc=-O2
 * run_spin-naive: NAIVE_NO_MB1
 * run_spin-naive: NAIVE_NO_MB2
 * run_spin-naive: NAIVE_WRAP
 */

#ifndef NSEC
#define NSEC 1
#endif
#define M 16		/* gp.seq modulus */
#define MASK 15

byte gptr = 1;		/* the published object: 1, 2 or 3 */
bool freed[4];

/* The reader thread. */
byte nestm;		/* nest as other threads see it */
byte sb[2];		/* its store buffer of nest values, oldest first */
byte sbn;
byte pend;		/* object whose load is not yet performed (0: none) */
bool listed;		/* in the registry list (registry.lock) */
bool registered;	/* owner only */

/* Grace periods. */
bool gpl;		/* gp.lock */
byte seq;
byte begun, ended;	/* ghost: grace periods begun, ended */

/* A full barrier in the reader: drain, perform. */
inline reader_fence()
{
	if
	:: pend != 0 -> assert(!freed[pend]); pend = 0
	:: else -> skip
	fi;
	if
	:: sbn > 0 -> nestm = sb[sbn - 1]; sbn = 0
	:: else -> skip
	fi
}

/* membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), or the signal fallback */
inline membarrier()
{
	atomic { reader_fence() }
}

/* The reader's own view of nest, and a store of it. */
inline own_nest(v)
{
	atomic {
		if
		:: sbn == 0 -> v = nestm
		:: sbn == 1 -> v = sb[0]
		:: sbn == 2 -> v = sb[1]
		fi
	}
}

inline store_nest(v)
{
	atomic { sbn < 2 -> sb[sbn] = v; sbn++ }
}

/* rw__rs_register(): R1 signals blocked (no handler until R4); R2 the
 * registry lock (locked instructions: full barriers); R3 fence; R4. */
inline do_register()
{
	atomic { reader_fence(); listed = 1 };
	atomic { reader_fence() };
	registered = 1
}

/* unregister_self() */
inline do_unregister()
{
	atomic { reader_fence(); listed = 0 };
	registered = 0
}

/* The body of a section: load the pointer, then the load through it. */
inline section_body(p)
{
	p = gptr;	/* rcu_dereference */
	pend == 0;	/* one pending load at a time */
	pend = p;	/* performed by performer(), or by a barrier */
#ifdef TSO
	pend == 0	/* performed before any later store */
#endif
}

/* A section in a signal handler: it runs to its end in the thread. */
inline handler_section()
{
	if
	:: !registered -> do_register()
	:: else -> skip
	fi;
	own_nest(hv);
	store_nest(hv + 1);
	section_body(hp);
	own_nest(hv);
	store_nest(hv - 1)
}

/* At most once: the handler interrupts here. */
inline maybe_handler()
{
	if
	:: !hdone -> hdone = 1; handler_section()
	:: skip
	fi
}

inline section()
{
	if
	:: !registered -> do_register()
	:: else -> skip
	fi;
	own_nest(v);
	maybe_handler();	/* between the load and the store of nest++ */
	store_nest(v + 1);
	section_body(p);
	own_nest(v);
	maybe_handler();	/* between the load and the store of nest-- */
	store_nest(v - 1)
}

proctype reader()
{
	byte v, p, hv, hp, n;
	bool hdone;

	maybe_handler();	/* the handler's lock is the first */
	do
	:: n < NSEC -> section(); n++
	:: else -> break
	od;
	do_unregister();	/* thread_exit() */
	section();		/* a later key destructor locks again */
	do_unregister()
}

/* The store buffer drains by itself, oldest first. */
proctype flusher()
{
end:	do
	:: atomic { sbn > 0 -> nestm = sb[0]; sb[0] = sb[1]; sbn-- }
	od
}

/* A pending load is performed at any time. */
proctype performer()
{
end:	do
	:: atomic { pend != 0 -> assert(!freed[pend]); pend = 0 }
	od
}

/* rw__rs_get_state(): full barrier, then the snapshot. */
inline get_state(c, b)
{
	atomic {
		c = (seq + 3) & (MASK - 1);
		if
		:: c == 0 -> c = 2
		:: else -> skip
		fi;
		b = begun
	}
}

/* rw__rs_poll_state(c) */
inline poll_state(c, r)
{
#ifdef NAIVE_WRAP
	r = (c == 0 || seq >= c)
#else
	r = (c == 0 || ((seq - c) & MASK) < M / 2)
#endif
}

/* gp_run(): G1 to G6, gp.lock held. */
inline gp_run()
{
	/* G1, and a full barrier */
	atomic { seq = (seq + 1) & MASK; begun++ };
#ifndef NAIVE_NO_MB1
	membarrier();					/* G2 */
#endif
	atomic { marked = listed && nestm != 0 };	/* G3 */
	do						/* G4 */
	:: marked -> atomic { marked = listed && nestm != 0 }
	:: else -> break
	od;
#ifndef NAIVE_NO_MB2
	membarrier();					/* G5 */
#endif
	atomic { seq = (seq + 1) & MASK; ended++ }	/* G6 */
}

/* rw__rs_synchronize(), the cookie c already taken (with ghost b). */
inline synchronize(c, b)
{
	atomic { !gpl -> gpl = 1 };
	do
	:: atomic {
			poll_state(c, r);
			if
			:: r -> assert(ended > b)
			:: else -> skip
			fi
		}
		if
		:: r -> break
		:: else -> gp_run()
		fi
	od;
	gpl = 0
}

proctype updater(byte obj; bool polled)
{
	byte old, c, b;
	bool r, marked;

	atomic { old = gptr; gptr = obj };	/* xchg */
	get_state(c, b);
	if
	:: polled ->	/* rw_rcu_cond_synchronize() */
		atomic {
			poll_state(c, r);
			if
			:: r -> assert(ended > b)
			:: else -> skip
			fi
		}
		if
		:: !r -> synchronize(c, b)
		:: else -> skip
		fi
	:: else -> synchronize(c, b)
	fi;
	freed[old] = 1
}

init
{
	atomic {
		if
		:: seq = 12
		:: seq = 14
		fi;
		run reader();
		run flusher();
		run performer();
		run updater(2, 0);
		run updater(3, 1)
	}
}
