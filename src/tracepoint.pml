/*
 * Model of a tracepoint's change of probes with bound stubs and the grace
 * period, checked with Spin: tests/models/run_spin.sh src/tracepoint.pml
 * (ctest -L model).
 *
 * Code described
 *   src/tracepoint.c: tp_change() (steps 2 to 7 of its header comment:
 *   new stub, publish the array, key off, retarget the static call, key
 *   on, retire old array and stub with rw_rcu_call()), add_locked() and
 *   remove_locked() (priority order), stub_free(); the site and the
 *   iterator in include/rewire/tracepoint.h (RW_DECLARE_TRACEPOINT,
 *   RW_DEFINE_TRACEPOINT: key, read-side lock, static call with NULL
 *   data, the iterator taking function and data from one element);
 *   rw__arch_bound_stub_alloc()/_free() (src/arch/x86_64/arch.c: a freed
 *   stub slot is the next one reused).
 *
 * Processes
 *   updater    one client changing the probes under tp_lock, in one of
 *              these sequences (seed 001):
 *              default  0->1 (p1), 1->0, 0->1 (p2) with no sync between
 *                       (1->0->1); 1->2 with p3 of higher priority first
 *                       (the July 2021 race); 2->3 (p4 last); 3->2 (p4
 *                       goes); 2->1 (p3 goes) (N->2->1)
 *              SEQ_101  0->1 (p1), 1->0, 0->1 (p2)
 *              SEQ_12   0->1 (p2), 1->2 (p3 first)
 *              SEQ_N21  0->1 (p2), 1->2 (p3 last), 2->3 (p4 first),
 *                       3->2 (p2 goes), 2->1 (p4 goes): the first
 *                       element changes on the way down
 *              After an unregister (except p1's, re-registered at once)
 *              it calls rw_tracepoint_synchronize_unregister() and then
 *              considers the probe's data freed (the probe is dead).
 *   reader     runs the site in a loop while the updater works: key, read
 *              lock, static call target, the target's code, unlock.
 *   reclaimer  the call_rcu thread: each retired array or stub is freed
 *              after a grace period that began after it was retired; a
 *              freed stub slot is free for the next stub.
 *
 * Abstractions
 *   - Probes p1..p4 each have a function fN and data dN; a call is a pair
 *     (function, data).
 *   - The static key and the static call are single variables read and
 *     written atomically: text_poke's int3 protocol makes each change
 *     atomic for the threads running the code (src/text_poke.pml proves
 *     it), and its final core sync orders the writes of a new stub before
 *     any jump to it. A reader may read the target and jump to it later.
 *   - A bound stub is "movabs $data,%rdi; jmp func": the reader reads its
 *     data and then its function as two steps, from a slot that a new
 *     stub may overwrite once the old one is freed.
 *   - The read side is one flag per reader and the grace period waits for
 *     every reader that was inside a read-side section when it began to
 *     leave it (what rw_rcu_call() / rw_rcu_synchronize() guarantee; the
 *     read side's own algorithm is src/readside.pml's subject).
 *   - Arrays are never reused (malloc'd; reading a freed one is already
 *     the error); error paths (allocation or patch failures) and the
 *     generic probes' bindings are not modelled.
 *
 * Properties (assertions)
 *   P1 func and data never mixed: every probe call passes a function its
 *      own data (the iterator, a stub, or a direct call alike).
 *   P2 no reader runs a stub or reads an array after it was freed.
 *   P3 a probe is never called once its unregister and a later
 *      rw_tracepoint_synchronize_unregister() have returned.
 *   P4 a site run that begins (reads the key) after an unregister
 *      returned does not call the removed probe.
 *
 * Naive variants (each must be refuted; the first word names the test)
 * run_spin-naive: NAIVE_KERNEL -DNAIVE_KERNEL -DSEQ_12
 *   NAIVE_KERNEL   the kernel before July 2021 (what RW_TRACEPOINT_NAIVE
 *                  builds): the site passes probes[0].data of the array
 *                  it loaded, a single probe is the static call target
 *                  itself, the array is published before the call is
 *                  retargeted, nothing waits. 1->2 with a higher priority
 *                  calls p2 with p3's data (P1).
 * run_spin-naive: NAIVE_KERNEL_101 -DNAIVE_KERNEL_101 -DSEQ_101
 *   NAIVE_KERNEL_101 the kernel after that fix (retarget before publish
 *                  when adding; 1->0 leaves the old function in place)
 *                  with no grace period between 1->0 and 0->1: a reader
 *                  that loaded p1's data calls p2 with it (P1). With
 *                  -DSEQ_12 it passes: the fix does fix the July race.
 * run_spin-naive: NAIVE_KERNEL_N21 -DNAIVE_KERNEL_101 -DSEQ_N21
 *   (same)         ... and on N->2->1: a reader that loaded the 3- or
 *                  2-probe array's first data calls the last probe (P1).
 * run_spin-naive: NAIVE_NOGP -DNAIVE_NOGP -DSEQ_101
 *   NAIVE_NOGP     rewire's scheme, but the old stub is freed (its slot
 *                  reusable) at once instead of after a grace period: a
 *                  reader still in p1's stub runs p2's, and between the
 *                  stub's two instructions it mixes them (P1, P2).
 */

#define NP 4      /* probes p1..p4 */
#define NS 3      /* bound stub slots */
#define NA 8      /* array ids 1..NA-1 (0: NULL) */
#define ITER 10   /* static call target: the iterator */
#define DIRECT 20 /* static call target DIRECT+p: probe p itself (naive) */

#if defined(NAIVE_KERNEL) || defined(NAIVE_KERNEL_101)
#define KERNEL_SITE 1
#endif

/* The tracepoint. */
bool key;
byte target;  /* 0 none (ret), 1..NS stub slot, ITER, DIRECT+p */
byte funcs;   /* array id, 0 NULL */

/* Arrays: immutable, at most 3 elements (probe ids, 0 none). */
byte acount[NA];
byte ap0[NA], ap1[NA], ap2[NA];
bool afreed[NA];

/* Stub slots: the data and function bytes, and whether the slot is free. */
byte sdata[NS + 1], sfunc[NS + 1];
bool sfree[NS + 1];

/* Read side and grace periods. */
bool in_rs;
bool gp_wait[2]; /* a grace period waits for the reader (0 updater, 1 call_rcu) */

bool dead[NP + 1]; /* unregistered and synchronized: data freed (P3) */
bool gone[NP + 1]; /* unregister returned (P4) */
bool done;

chan retired = [8] of { byte }; /* stub slot s, or 16 + array id */

/* Wait for the readers inside a read-side section now to leave it. */
inline grace_period(w)
{
	atomic {
		if
		:: in_rs -> gp_wait[w] = true
		:: else -> skip
		fi
	};
	!gp_wait[w]
}

/* P1, P3, P4: reader calls function fp with data dp. */
inline call(fp, dp)
{
	assert(fp == dp);  /* P1 */
	assert(!dead[fp]); /* P3 */
	assert(!(gone_at_start & (1 << fp))); /* P4 */
}

proctype reader()
{
	byte t, f, d, fn, i, gone_at_start;

	do
	:: done -> break
	:: else ->
		/* P4's reference: probes whose unregister had returned. */
		atomic {
			gone_at_start = (gone[1] -> 2 : 0) |
				(gone[2] -> 4 : 0) | (gone[3] -> 8 : 0) |
				(gone[4] -> 16 : 0)
		};
		if
		:: !key -> goto next
		:: else -> skip
		fi;
		in_rs = true;
#ifdef KERNEL_SITE
		/* The kernel's site: no array, no call; else the data of
		 * the first element. */
		f = funcs;
		if
		:: f != 0 -> assert(!afreed[f]); d = ap0[f]
		:: else -> goto unlock
		fi;
#endif
		t = target;
		if
		:: t == 0 -> skip
		:: t >= 1 && t <= NS ->
			/* The bound stub: movabs $data,%rdi; jmp func. */
			assert(!sfree[t]); /* P2 */
			d = sdata[t];
			assert(!sfree[t]); /* P2 */
			fn = sfunc[t];
			call(fn, d)
		:: t > DIRECT ->
			call(t - DIRECT, d)
		:: t == ITER ->
			f = funcs;
			if
			:: f != 0 ->
				assert(!afreed[f]); /* P2 */
				i = 0;
				do
				:: i >= acount[f] -> break
				:: i < acount[f] ->
					assert(!afreed[f]); /* P2 */
					fn = (i == 0 -> ap0[f] :
						(i == 1 -> ap1[f] : ap2[f]));
					call(fn, fn);
					i++
				od
			:: else -> skip
			fi
		fi;
unlock:
		atomic {
			in_rs = false;
			gp_wait[0] = false;
			gp_wait[1] = false;
			t = 0; f = 0; d = 0; fn = 0; i = 0
		};
next:
		gone_at_start = 0
	od
}

proctype reclaimer()
{
	byte o;

	do
	:: retired?o ->
		grace_period(1);
		if
		:: o >= 16 -> afreed[o - 16] = true
		:: else -> sfree[o] = true
		fi;
		o = 0
	:: done && empty(retired) -> break
	od
}

/* Free at once (NAIVE_NOGP's stub) or after a grace period. */
inline retire_stub(s)
{
#ifdef NAIVE_NOGP
	sfree[s] = true
#else
	retired!s
#endif
}

/*
 * tp_change() to array id na (0: no probe) holding nn probes, the first
 * being p0. Globals of the updater: oa (old array), os (old stub), on.
 */
inline tp_change(na, nn, p0)
{
	/* Step 2: the new target; a new stub is written now. */
#ifdef KERNEL_SITE
	nt = (nn == 0 -> 0 : (nn == 1 -> DIRECT + p0 : ITER));
#else
	if
	:: nn == 1 ->
		/* rw__arch_bound_stub_alloc(): the first free slot. */
		ns = 1;
		do
		:: ns > NS -> assert(false) /* model too small */
		:: ns <= NS && sfree[ns] -> break
		:: ns <= NS && !sfree[ns] -> ns++
		od;
		atomic {
			sdata[ns] = p0;
			sfunc[ns] = p0;
			sfree[ns] = false
		};
		nt = ns
	:: nn == 0 -> nt = 0
	:: else -> nt = ITER
	fi;
#endif
#ifdef NAIVE_KERNEL_101
	if
	:: nn > on -> target = nt /* the fix: retarget before publishing */
	:: else -> skip
	fi;
#endif
	/* Step 3: publish. */
	funcs = na;
	/* Step 4. */
	if
	:: on > 0 && nn == 0 -> key = false
	:: else -> skip
	fi;
	/* Step 5. */
#ifdef NAIVE_KERNEL
	target = nt;
#elif defined(NAIVE_KERNEL_101)
	if
	:: nn == 0 -> skip /* 1->0 leaves the old function in place */
	:: else -> target = nt
	fi;
#else
	target = nt;
#endif
	/* Step 6. */
	if
	:: on == 0 && nn > 0 -> key = true
	:: else -> skip
	fi;
	/* Step 7. */
#ifndef KERNEL_SITE
	if
	:: oa != 0 -> retired!(16 + oa)
	:: else -> skip
	fi;
	if
	:: os != 0 -> retire_stub(os)
	:: else -> skip
	fi;
	os = ns;
#endif
	oa = na;
	on = nn;
	ns = 0
}

/* A new array id with up to three probes. */
inline new_array(n, a, b, c)
{
	atomic {
		na++;
		acount[na] = n;
		ap0[na] = a;
		ap1[na] = b;
		ap2[na] = c
	}
}

/* rw_tracepoint_probe_unregister() returned, then
 * rw_tracepoint_synchronize_unregister(): the probe's data may go. */
inline unregistered(p)
{
	gone[p] = true;
	grace_period(0);
	dead[p] = true
}

proctype updater()
{
	byte na, oa, os, on, ns, nt;

#if defined(SEQ_101) || !(defined(SEQ_12) || defined(SEQ_N21))
	/* 1->0->1: 0->1 (p1), 1->0, 0->1 (p2). */
	new_array(1, 1, 0, 0);
	tp_change(na, 1, 1);
	tp_change(0, 0, 0);
	gone[1] = true; /* and registers p2 at once, without a sync */
#endif
	new_array(1, 2, 0, 0);
	tp_change(na, 1, 2);
#if defined(SEQ_12) || !(defined(SEQ_101) || defined(SEQ_N21))
	/* 1->2: p3 has the higher priority and goes first. */
	new_array(2, 3, 2, 0);
	tp_change(na, 2, 3);
#endif
#if !(defined(SEQ_101) || defined(SEQ_12) || defined(SEQ_N21))
	/* 2->3 (p4 last), 3->2 (p4 goes), 2->1 (p3 goes). */
	new_array(3, 3, 2, 4);
	tp_change(na, 3, 3);
	new_array(2, 3, 2, 0);
	tp_change(na, 2, 3);
	unregistered(4);
	new_array(1, 2, 0, 0);
	tp_change(na, 1, 2);
	unregistered(3);
#endif
#ifdef SEQ_N21
	/* N->2->1 where the first element changes: 1->2 (p3 last),
	 * 2->3 (p4 first), 3->2 (p2 goes), 2->1 (p4 goes). */
	new_array(2, 2, 3, 0);
	tp_change(na, 2, 2);
	new_array(3, 4, 2, 3);
	tp_change(na, 3, 4);
	new_array(2, 4, 3, 0);
	tp_change(na, 2, 4);
	unregistered(2);
	new_array(1, 3, 0, 0);
	tp_change(na, 1, 3);
	unregistered(4);
#endif
	done = true
}

init
{
	atomic {
		sfree[1] = true;
		sfree[2] = true;
		sfree[3] = true;
		run updater();
		run reader();
		run reclaimer()
	}
}
