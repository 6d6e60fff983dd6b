/*
 * Model of rewire's int3 batch protocol and its SIGTRAP emulation, checked
 * with Spin: tests/models/run_spin.sh src/text_poke.pml (ctest -L model).
 *
 * Code described
 *   src/text_poke.c: rw__text_poke_locked_ex() (armed_add, publish, the
 *   steps ARM / TAIL / HEAD with sync_cores() after each, retire()),
 *   trap_handler() and trap_try() (trap_get, batch_find + emulation, the
 *   armed-address table, replay, retry); src/arch/x86_64/arch.c:
 *   rw__arch_sync_cores() (membarrier PRIVATE_EXPEDITED_SYNC_CORE),
 *   rw__arch_emulate(), rw__arch_set_ip(); src/signals.c: the SIGTRAP
 *   handler is installed with SA_NODEFER and an empty sa_mask, so a
 *   handler may be interrupted by any signal, including one whose handler
 *   runs a patched site.
 *
 * Processes
 *   patcher  runs NB batches on one site, version b-1 -> b for batch b
 *            (e.g. NOP -> CALL -> JMP), as rw__text_poke_locked_ex() does,
 *            and between the first two a batch of other sites only (a
 *            late handler takes its trap reference, finds no entry for
 *            the site and falls back to the armed-address table).
 *   handler0 the patcher thread's own signal handler: it fires once, at
 *            any moment, and runs the site on the patcher's thread; the
 *            patcher does not run meanwhile (provided clause). Seed 003:
 *            the patching CPU's own interrupt hitting the breakpoint.
 *   thread1  another thread that runs the site VISITS times; once, while
 *            it is anywhere between its trap and the end of its SIGTRAP
 *            handler (holding a trap reference, waiting to retry, about to
 *            replay), a second signal arrives whose handler runs the site
 *            too (nesting depth 2).
 *
 * Abstractions
 *   - The site is a first byte (head: version b or INT3) and a tail
 *     (version b): an instruction is executed as version h when head and
 *     tail are both h, torn when they differ. One site: the batch's sites
 *     are independent except for the shared trap counts, which are kept.
 *   - Each thread runs the site through its own view of the two parts
 *     (its core's instruction fetch). A view may lag memory: it catches up
 *     part by part at any write or fetch, independently (so a stale head
 *     with a new tail is possible, as on real cores without
 *     serialization). sync_cores() (membarrier SYNC_CORE) sets every
 *     thread's view to memory; so does the return from a signal handler
 *     (rt_sigreturn returns with iret), never the delivery of a signal.
 *   - The TRAP_SLOTS per-CPU counts are one count: a handler takes and
 *     drops the same slot and retire() waits for all of them, so under
 *     sequential consistency one count has the same behaviours. The
 *     patcher's seq_cst stores and the handlers' CAS are atomic steps.
 *   - The handler's retry (sched_yield, up to 100000 times, then chain)
 *     is a blocking wait for a state in which a retry can succeed; a
 *     retry that can never succeed is a deadlock (invalid end state).
 *   - Not modelled: the rollback path after a failed write, the armed()
 *     callback (entry.c), the cross-thread signal fallback of
 *     rw__arch_sync_cores() (modelled as the membarrier it replaces; a
 *     thread that does not answer within 10 s is logged, not waited for:
 *     outside this model), fork.
 *
 * Properties (assertions; Spin also reports invalid end states)
 *   P1 no torn instruction: a thread that does not trap executes head and
 *      tail of the same version.
 *   P2 correct resumption: every run of the site executes exactly one
 *      version (directly, emulated, or replayed; never skipped) that is
 *      neither older than the last batch completed when the run began nor
 *      newer than the last batch published.
 *   P3 a trap on one of rewire's int3s is never passed to the chained
 *      (default: fatal) SIGTRAP disposition.
 *   P4 no deadlock: neither the patcher (waiting for trap references) nor
 *      a handler (waiting to retry), including the patcher's own handler,
 *      waits forever (no invalid end state).
 *
 * Naive variants (spin -DNAME; each must be refuted)
 * run_spin-naive: NAIVE_NOSYNC
 *   NAIVE_NOSYNC   the tails are written right after the int3s, without
 *                  the sync between: a core still holding the old first
 *                  byte fetches the new tail (P1).
 * run_spin-naive: NAIVE_NOARM
 *   NAIVE_NOARM    no int3 at all: tail, sync, head, sync (P1).
 * run_spin-naive: NAIVE_PUBLISH
 *   NAIVE_PUBLISH  the batch (table and counts) is published after the
 *                  int3s are written: the patcher's own signal handler
 *                  hits the site in between, finds no batch and an int3,
 *                  and retries forever while the patcher cannot run (P4;
 *                  seed 003's deadlock).
 * run_spin-naive: NAIVE_WAIT
 *   NAIVE_WAIT     the handler does not emulate: it waits for the int3 to
 *                  go and then runs the site again (seed 003, Andy
 *                  Lutomirski's second option without the fix for the
 *                  patcher's own interrupt): the patcher's own handler
 *                  waits for the patcher it interrupted (P4).
 * run_spin-naive: NAIVE_NOREPLAY
 *   NAIVE_NOREPLAY no table of armed addresses: a thread whose SIGTRAP is
 *                  delivered after its batch retired finds no batch and
 *                  chains the trap, which kills the process (P3).
 */

#ifndef NB
#define NB 2 /* batches */
#endif
#ifndef VISITS
#define VISITS 2 /* runs of the site by thread1 */
#endif

#define INT3 7
#define OTHER 8 /* a batch that does not hold the site */
#define NT 2 /* threads: 0 the patcher, 1 the other thread */

/* Memory and each thread's view of the site. */
byte mem_h, mem_t;
byte vh[NT], vt[NT];

/* The batch as the handlers see it. */
byte batch;   /* active_pokes: batch number, 0 none */
byte cnt;      /* trap_slots[].ref */
bool armed;    /* armed_contains(site) */
byte pub_ver;  /* newest version published (for P2) */
byte done_ver; /* newest version whose batch completed (for P2) */

bool ph_active; /* the patcher thread runs its signal handler */

/* A write by the patcher: each view may see it now or later. */
inline seen()
{
	if
	:: vh[0] = mem_h
	:: skip
	fi;
	if
	:: vt[0] = mem_t
	:: skip
	fi;
	if
	:: vh[1] = mem_h
	:: skip
	fi;
	if
	:: vt[1] = mem_t
	:: skip
	fi
}

/* sync_cores(): every thread has serialized when it returns. */
inline sync_cores()
{
	d_step {
		vh[0] = mem_h;
		vt[0] = mem_t;
		vh[1] = mem_h;
		vt[1] = mem_t
	}
}

inline publish(b)
{
	d_step {
		batch = b;
		pub_ver = (b == OTHER -> pub_ver : b);
		cnt = 1
	}
}

proctype patcher() provided (!ph_active)
{
	byte b = 1;

	do
	:: b > NB -> break
	:: else ->
		if
		:: b == 2 ->
			/* A batch of other sites: a handler of this site
			 * takes its reference but does not find the site. */
			publish(OTHER);
			sync_cores();
			cnt--;
			(cnt == 0);
			batch = 0
		:: else -> skip
		fi;
		armed = true; /* armed_add() */
#ifndef NAIVE_PUBLISH
		publish(b);
#endif
		/* Step 2: int3 on the first byte, sync. */
#ifndef NAIVE_NOARM
		mem_h = INT3;
		seen();
#endif
#ifdef NAIVE_PUBLISH
		publish(b);
#endif
#if !defined(NAIVE_NOSYNC) && !defined(NAIVE_NOARM)
		sync_cores();
#endif
		/* Step 3: the tail, sync. */
		mem_t = b;
		seen();
		sync_cores();
		/* Step 4: the first byte, sync. */
		mem_h = b;
		seen();
		sync_cores();
		done_ver = b;
		/* Step 5: retire(). */
		cnt--;
		(cnt == 0);
		batch = 0;
		b++
	od
}

/* Where a run of the site is (pc), per signal level. */
#define FETCH 0   /* about to fetch the instruction */
#define TRAPPED 1 /* fetched int3; SIGTRAP not yet delivered */
#define GET 2     /* in trap_try(): trap_get() */
#define HELD 3    /* holds a trap reference: batch_find() */
#define EMUL 4    /* emulated the batch's new instruction, holds the ref */
#define ARMED 5   /* armed_contains() */
#define BYTE 6    /* reads the site's first byte */
#define REPLAY 7  /* returns to execute the site again */
#define WAIT 8    /* TRAP_RETRY: yields until a retry can succeed */
#define DONE 9    /* the instruction ran */

/* Execute version x of the instruction at level l (P2). */
#define EXEC(x) \
	assert(x >= lo[l] && x <= pub_ver); \
	pc[l] = DONE

/*
 * A thread running the site @visits times; @nsig nested signals may arrive
 * while it is inside its trap handling, each running the site once more.
 */
proctype thread(byte me; byte visits; byte nsig)
{
	byte l;      /* signal nesting level */
	byte pc[2];  /* per level */
	byte lo[2];  /* done_ver when the run began (P2) */
	byte em[2];  /* version emulated */
	byte h, t;

	if
	:: me == 0 -> ph_active = true
	:: else -> skip
	fi;
	lo[0] = done_ver;
	do
	:: atomic { pc[l] == FETCH ->
		/* The core's fetch: each part from its view, which may
		 * have caught up with memory. */
		if
		:: vh[me] = mem_h
		:: skip
		fi;
		if
		:: vt[me] = mem_t
		:: skip
		fi;
		h = vh[me];
		t = vt[me];
		if
		:: h == INT3 -> pc[l] = TRAPPED
		:: else ->
			assert(h == t); /* P1 */
			EXEC(h)
		fi;
		h = 0;
		t = 0 }
	:: atomic { pc[l] == TRAPPED -> pc[l] = GET }
	:: atomic { pc[l] == GET ->
		if
		:: cnt > 0 -> cnt++; pc[l] = HELD
		:: else -> pc[l] = ARMED
		fi }
	:: atomic { pc[l] == HELD ->
#ifdef NAIVE_WAIT
		cnt--;
		pc[l] = BYTE
#else
		/* batch_find() */
		if
		:: batch != 0 && batch != OTHER -> em[l] = batch; pc[l] = EMUL
		:: else -> cnt--; pc[l] = ARMED
		fi
#endif
		}
	:: atomic { pc[l] == EMUL ->
		/* rw__arch_emulate() changed the context; drop the
		 * reference and return from the handler (serializes). */
		cnt--;
		vh[me] = mem_h;
		vt[me] = mem_t;
		EXEC(em[l]);
		em[l] = 0 }
	:: atomic { pc[l] == ARMED ->
#ifdef NAIVE_NOREPLAY
		assert(false) /* P3: chained, the process dies */
#else
		assert(armed); /* P3 */
		pc[l] = BYTE
#endif
		}
	:: atomic { pc[l] == BYTE ->
		if
		:: mem_h != INT3 -> pc[l] = REPLAY
		:: else -> pc[l] = WAIT
		fi }
	:: atomic { pc[l] == REPLAY ->
		/* rw__arch_set_ip(site) and return (serializes). */
		vh[me] = mem_h;
		vt[me] = mem_t;
		pc[l] = FETCH }
#ifdef NAIVE_WAIT
	:: atomic { pc[l] == WAIT && mem_h != INT3 -> pc[l] = GET }
#else
	:: atomic { pc[l] == WAIT && (cnt > 0 || mem_h != INT3) -> pc[l] = GET }
#endif
	:: atomic { pc[l] == DONE && l > 0 ->
		/* The nested handler returns (serializes). */
		pc[l] = FETCH;
		l--;
		vh[me] = mem_h;
		vt[me] = mem_t }
	:: atomic { pc[l] == DONE && l == 0 ->
		visits--;
		if
		:: visits == 0 -> break
		:: else -> pc[0] = FETCH; lo[0] = done_ver
		fi }
	:: atomic { l == 0 && nsig > 0 && pc[0] != FETCH && pc[0] != DONE ->
		/* A signal arrives; its handler runs the site. */
		nsig--;
		l = 1;
		pc[1] = FETCH;
		lo[1] = done_ver }
	od;
	if
	:: me == 0 -> ph_active = false
	:: else -> skip
	fi
}

init
{
	atomic {
		run patcher();
		run thread(0, 1, 0);
		run thread(1, VISITS, 1)
	}
}
