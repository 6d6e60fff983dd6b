/* SPDX-License-Identifier: MIT */
/*
 * transition.pml - Spin model of live patching's per-thread switch.
 *
 * The code it describes (src/livepatch/core.c unless said otherwise):
 *   - the dispatcher of a patched entry (src/arch/x86_64/arch.c,
 *     dispatch_encode(): load the generation from %fs; if bit 31 is set,
 *     "lock btrl $31" and load again; compare with each epoch and jump);
 *   - state_of(): generation -> side (epochs e_0 < e_1, a reversal);
 *   - check_remote() with rw__lp_check_blocked() (src/livepatch/unwind.c):
 *     the switch of a thread blocked in a system call by the transition
 *     thread: read g; if it is in the target state already, CAS g -> epoch
 *     (the stamp, see gen_adopt below); else CAS g -> g | bit 31 (GEN_DECIDING,
 *     "being decided"), check its stack, and if it is safe CAS
 *     g | bit 31 -> epoch, else CAS g | bit 31 -> g;
 *   - check_filter(): a thread that is running, or not registered, is
 *     signalled and checks itself in check_fn(), the handler (a thread
 *     whose interrupted address is in a dispatcher is busy); a thread it
 *     finds in the target state, or switches, gets the round's epoch; a
 *     registered thread whose generation changed under check_remote()
 *     (RW__LP_MOVED) is signalled or left to the next round;
 *   - run_round() / trans_step() / trans_complete(): rounds until every
 *     thread is in the target state, then the entries are rewritten to the
 *     target side; trans_start() / trans_reverse(): dispatchers first,
 *     then active_epoch;
 *   - start_wrap() (a thread created during the transition) and
 *     rw_patch_quiescent(): the thread adopts the active epoch itself,
 *     gen_adopt(): read the generation, then active_epoch, then CAS.
 *
 * Threads: worker 0 existed before the transition and is registered;
 * worker 1 is created by pthread_create() at any moment and registers
 * after start_wrap() has set its generation. Each worker calls f NCALLS
 * times (1 by default); f calls g; f and g are both in the patch (old
 * side 0, new side 1). A worker may block in a system call outside any
 * patched function, inside f, and inside a signal handler that
 * interrupted a dispatcher between its load and its jump (its stack then
 * shows a dispatcher address: busy). It may call rw_patch_quiescent()
 * outside any patched function. (Worker 1 neither sleeps in a handler
 * in a dispatcher nor calls rw_patch_quiescent(): worker 0 covers those,
 * and the search stays within a minute.) The handler of rewire's signal
 * is a process of its own that runs between two steps of its worker,
 * atomically with respect to it (the worker is suspended meanwhile). The
 * transition thread starts a transition to "patched" and may reverse it
 * once, between two rounds. rw_patch_force() (mixed states by design)
 * is not modelled.
 *
 * Properties:
 *   - consistency (assert in the worker): no thread runs old and new code
 *     in one call chain: g runs on the side f runs on;
 *   - no lost switch (assert at completion): every thread the last round
 *     counted as switched is still in the target state when the entries
 *     are rewritten;
 *   - progress (ltl done_eventually, weak fairness): once every worker's
 *     calls are over (each ends asleep outside f and g for ever, so its
 *     stack allows the switch), every thread is switched and the
 *     transition completes. Not before: a transition thread whose rounds
 *     always mark a thread just before its dispatcher loads the
 *     generation would keep it in the dispatcher's retry loop (two
 *     instructions against a round every few milliseconds in the code),
 *     and Spin's weak fairness allows that schedule.
 *
 * Abstractions: rw__lp_check_blocked() is one atomic snapshot of a
 * blocked thread (the code accepts its unwind only if the thread's
 * syscall registers and context switch count are the same before and
 * after, i.e. the thread slept throughout: any such result is the stack
 * at one instant); a thread not blocked is RUNNING. An unwind never fails
 * (RW__LP_UNWIND_FAILED is "not yet", as busy). Generations are 3 bits
 * plus bit 3 for GEN_DECIDING; epochs 1 and 2 (their wrap at 2^31 is not
 * modelled). Entries are written one at a time (f's, then g's). The
 * registry's slot, busy flag and thread exit are not modelled. The
 * thread listing of rw__on_threads() is taken per thread as the round
 * reaches it (a thread created later starts in the round's epoch).
 *
 * NAIVE variants, each refuted by Spin:
 *   NAIVE_NO_DECIDING  no "being decided" bit: read g, check the stack,
 *                      CAS g -> epoch. A thread that wakes after the check
 *                      and enters f through a dispatcher keeps g, so the
 *                      CAS succeeds; f's callee then runs the new side.
 *   NAIVE_STORE        the final switch as a plain store of the epoch
 *                      instead of the CAS: the dispatcher's clearing of
 *                      the bit is overwritten.
 *   NAIVE_ROLLBACK     the undo after an unsafe stack as a plain store of
 *                      g: it overwrites a switch the thread made itself
 *                      (rw_patch_quiescent) meanwhile.
 *   START_RACE         start_wrap() as it was: e = load(active_epoch);
 *                      store(thread_gen, e). rewire's signal can run
 *                      check_fn() between the two: the handler switches
 *                      the new thread, the round counts it, and the store
 *                      puts back the epoch loaded before (0 before
 *                      trans_start() stored active_epoch: the start
 *                      state), a lost switch; the thread can then enter
 *                      old f through a dispatcher while the transition
 *                      completes, and f's call of g run new g.
 *   QUIESCENT_RACE     rw_patch_quiescent() as it was: e = load(active);
 *                      if (e && load(gen) != e) store(gen, e). The same
 *                      race with a reversal: e_0 loaded, the transition
 *                      reversed, the round finds the thread (generation
 *                      0) in the new target state, and the store of the
 *                      stale e_0 puts it back on the patched side while
 *                      the entries are being rewritten to the original.
 *
 * run_spin: --pan=-f --cc=-DNFAIR=3 --cc=-O2
 * run_spin-naive: NAIVE_NO_DECIDING
 * run_spin-naive: NAIVE_STORE
 * run_spin-naive: NAIVE_ROLLBACK
 * run_spin-naive: START_RACE
 * run_spin-naive: QUIESCENT_RACE
 */

#define NW 2
#ifndef NCALLS
#define NCALLS 1
#endif

#define D 8		/* GEN_DECIDING (bit 31 in the code) */
#define GMASK 7
#define E0 1
#define E1 2
#define NONE 2		/* no frame of that function on the stack */
#define M_ORIG 0	/* entry: original body (old side) */
#define M_DISP 1	/* entry: jump to a dispatcher */
#define M_NEW 2		/* entry: jump to the new function */

/* check results (RW__LP_*) */
#define SAFE 0
#define ON_STACK 1
#define BUSY 3
#define RUNNING 4
#define MOVED 5
#define UNDECIDED 9

byte gen[NW];		/* thread_gen of each worker */
bool exists[NW];
bool reg[NW];		/* registered: can be checked from outside */
bool blocked[NW];	/* asleep in a system call */
bool indisp[NW];	/* its address is inside a dispatcher */
byte fside[NW];		/* f's frame: NONE, 0 old, 1 new */
byte gside[NW];
bool sigpend[NW];	/* rewire's signal sent, handler not yet run */
bool sigok[NW];		/* the handler's answer: in the target state */
bool counted[NW];	/* the last round found it in the target state */

byte mode[2];		/* the entries of f and g */
byte nep;		/* epochs of the transition: 0 none, 1, 2 */
byte ep[2];
bool tside[2];		/* side of each epoch (tr.side) */
bool target;		/* tside[nep - 1] */
byte cepoch;		/* ep[nep - 1] (the round's epoch) */
byte aepoch;		/* active_epoch */
bool reversed;
bool done;		/* entries rewritten to their final form */

byte nfin;		/* workers whose calls are over */

/* A frame of the side the transition leaves? (the checked functions) */
#define FROM_SIDE(i) \
	((fside[i] != NONE && fside[i] != target) || \
	 (gside[i] != NONE && gside[i] != target))

/* A frame of the side the transition leaves? (the checked functions) */
#define FROM_SIDE(i) \
	((fside[i] != NONE && fside[i] != target) || \
	 (gside[i] != NONE && gside[i] != target))

ltl done_eventually { [] (nfin == NW -> <> done) }

/* state_of(): the side of a thread whose generation is g. */
inline state_of(g, s)
{
	if
	:: nep == 2 && (g & GMASK) == ep[1] -> s = tside[1]
	:: else ->
		if
		:: (g & GMASK) == ep[0] -> s = tside[0]
		:: else -> s = !tside[0]
		fi
	fi
}

/* The worker calls function fn (0 f, 1 g) and pushes its frame. */
inline enter(fn, frame)
{
	if
	:: atomic { mode[fn] == M_ORIG -> frame = 0 }
	:: atomic { mode[fn] == M_NEW -> frame = 1 }
	:: atomic { mode[fn] == M_DISP -> indisp[me] = 1 }
		do
		:: lg = gen[me];	/* mov %fs:OFF, %r11d */
			if
			:: (lg & D) ->	/* lock btrl $31, %fs:OFF */
				gen[me] = gen[me] & GMASK
			:: else -> break
			fi
		od;
		/* a signal handler may interrupt it here and sleep */
		if
		:: me == 0 -> blocked[me] = 1; blocked[me] = 0
		:: skip
		fi;
		/* cmp $gen_i, je thunk_i, jmp *target */
		atomic { state_of(lg, s); frame = s; indisp[me] = 0 }
	fi
}

/*
 * The thread adopts the active epoch itself (start_wrap(),
 * rw_patch_quiescent()): read its generation, then active_epoch, then CAS
 * the one to the other, so that a verdict given meanwhile (which always
 * leaves the round's epoch in the generation) makes the CAS fail.
 */
inline gen_adopt()
{
	do
	:: g = gen[me];
		e = aepoch;
		if
		:: e == 0 || g == e -> break
		:: else ->
			atomic {
				if
				:: gen[me] == g -> gen[me] = e; break
				:: else -> skip
				fi
			}
		fi
	od
}

inline sleep()
{
	if
	:: blocked[me] = 1; blocked[me] = 0
	:: skip
	fi
}

proctype worker(byte me)
{
	byte lg, e, g, s, n;

	if
	:: me == 1 ->	/* start_wrap() */
#ifdef START_RACE
		e = aepoch;
		gen[me] = e;
#else
		gen_adopt();
#endif
		reg[me] = 1
	:: else -> skip
	fi;
	do
	:: n < NCALLS ->
		sleep();
		if
#ifdef QUIESCENT_RACE
		:: me == 0 -> e = aepoch;	/* rw_patch_quiescent() */
			if
			:: e != 0 && gen[me] != e -> gen[me] = e
			:: else -> skip
			fi
#else
		:: me == 0 -> gen_adopt()	/* rw_patch_quiescent() */
#endif
		:: skip
		fi;
		enter(0, fside[me]);
		sleep();
		enter(1, gside[me]);
		assert(gside[me] == fside[me]);	/* consistency */
		gside[me] = NONE;
		fside[me] = NONE;
		n++
	:: else -> break
	od;
	/* asleep for ever, outside f and g */
	atomic { blocked[me] = 1; nfin++ }
}

/* The handler of rewire's signal: check_fn(). */
proctype handler(byte me)
{
	byte s;

end:	do
	:: atomic {
		sigpend[me] ->
		state_of(gen[me], s);
		if
		:: s == target -> gen[me] = cepoch; sigok[me] = 1
		:: else ->
			if
			:: indisp[me] -> sigok[me] = 0
			:: !indisp[me] && FROM_SIDE(me) -> sigok[me] = 0
			:: else -> gen[me] = cepoch; sigok[me] = 1
			fi
		fi;
		sigpend[me] = 0
	}
	od
}

/* pthread_create() of worker 1 at any moment. */
proctype spawner()
{
	atomic { exists[1] = 1; run worker(1); run handler(1) }
}

/* rw__lp_check_blocked(): one snapshot of a sleeping thread's stack. */
inline check_blocked(i)
{
	atomic {
		if
		:: !blocked[i] -> rc = RUNNING
		:: blocked[i] && indisp[i] -> rc = BUSY
		:: blocked[i] && !indisp[i] && FROM_SIDE(i) -> rc = ON_STACK
		:: else -> rc = SAFE
		fi
	}
}

/* CAS gen[i]: from -> to, else rc = MOVED */
inline cas_gen(i, from, to)
{
	atomic {
		if
		:: gen[i] == (from) -> gen[i] = (to)
		:: else -> rc = MOVED
		fi
	}
}

/* check_remote(), for a registered thread. */
inline check_remote(i)
{
	g = gen[i];
	state_of(g, s);
	if
	:: s == target ->	/* the stamp */
		rc = SAFE;
		cas_gen(i, g, cepoch)
	:: else ->
#ifndef NAIVE_NO_DECIDING
		if
		:: (g & D) -> rc = MOVED
		:: else -> cas_gen(i, g, g | D)
		fi;
#endif
		if
		:: rc == UNDECIDED ->
			check_blocked(i);
			if
			:: rc == SAFE ->
#if defined(NAIVE_STORE)
				gen[i] = cepoch
#elif defined(NAIVE_NO_DECIDING)
				cas_gen(i, g, cepoch)
#else
				cas_gen(i, g | D, cepoch)
#endif
			:: else ->	/* undo the mark */
#if defined(NAIVE_ROLLBACK)
				gen[i] = g
#elif !defined(NAIVE_NO_DECIDING)
				atomic {
					if
					:: gen[i] == (g | D) -> gen[i] = g
					:: else -> skip
					fi
				}
#else
				skip
#endif
			fi
		:: else -> skip
		fi
	fi
}

/* check_filter() and check_fn() for thread i: ok if switched. */
inline check_thread(i)
{
	ok = 0;
	rc = UNDECIDED;
	counted[i] = 0;
	if
	:: !exists[i] -> ok = 1
	:: exists[i] && !reg[i] -> rc = RUNNING
	:: exists[i] && reg[i] -> check_remote(i)
	fi;
	if
	:: exists[i] && rc == MOVED -> rc = RUNNING	/* signal it, or */
	:: exists[i] && rc == MOVED -> skip	/* the next round */
	:: else -> skip
	fi;
	if
	:: exists[i] && rc == RUNNING ->	/* signal it */
		sigpend[i] = 1;
		!sigpend[i];
		ok = sigok[i];
		counted[i] = ok
	:: exists[i] && rc == SAFE -> ok = 1; counted[i] = 1
	:: else -> skip
	fi
}

proctype checker()
{
	byte i, g, s, rc;
	bool all, ok;

	/* trans_start(): dispatchers first, then active_epoch */
	atomic { nep = 1; ep[0] = E0; tside[0] = 1; target = 1; cepoch = E0 }
	mode[0] = M_DISP;
	mode[1] = M_DISP;
	aepoch = E0;
	do
	:: !reversed ->	/* trans_reverse() between two rounds */
		atomic {
			ep[1] = E1; tside[1] = 0; nep = 2; target = 0;
			cepoch = E1; reversed = 1
		}
		aepoch = E1
	:: all = 1;	/* run_round() */
		i = 0;
		do
		:: i < NW ->
			check_thread(i);
			if
			:: !ok -> all = 0
			:: else -> skip
			fi;
			i++
		:: else -> break
		od;
		if
		:: all -> break
		:: else -> skip
		fi
	od;
	/* trans_complete(): every thread was found in the target state */
	i = 0;
	do
	:: i < NW ->
		if
		:: counted[i] ->
			g = gen[i];
			state_of(g, s);
			assert(s == target);	/* no lost switch */
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	mode[0] = (target -> M_NEW : M_ORIG);
	mode[1] = (target -> M_NEW : M_ORIG);
	atomic { done = 1; aepoch = 0 }
}

init
{
	atomic {
		fside[0] = NONE; gside[0] = NONE;
		exists[0] = 1; reg[0] = 1;
		fside[1] = NONE; gside[1] = NONE;
		run worker(0);
		run handler(0);
		run checker();
		run spawner();
	}
}
