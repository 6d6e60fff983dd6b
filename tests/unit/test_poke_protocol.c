/* SPDX-License-Identifier: MIT */
/*
 * The int3 protocol step by step, against the kernel's order, and threads
 * that run a site while its batch is held armed. Deterministic: no timing
 * decides what is checked.
 *
 * What it proves, and the oracle of each part:
 * - Order. A test hook (rw__text_poke_observer) sees every write and every
 *   core sync of a batch before it happens. From the bytes each write
 *   changes, every write is classified as "int3 on first bytes", "tails"
 *   or "first bytes", and the sequence must be the kernel's:
 *	int3s; sync; tails; sync; first bytes; sync
 *   every site armed before any tail is written, every write touching only
 *   the bytes of its step, and the last event a sync. A batch whose tails
 *   do not change (CALL t -> JMP t) is int3s; sync; first bytes; sync. A
 *   batch undone by its armed callback restores the old bytes with the
 *   same protocol and ends with a sync.
 * - Execution while armed. The batch's armed callback (called once every
 *   site holds int3 and every core saw it) makes another thread run the
 *   site and waits for it: for each kind of change (to CALL, JMP, NOP and
 *   RET, from each) the thread must trap once (traps_emulated + 1), run the
 *   new instruction exactly once, and resume where the new instruction
 *   goes: after a NOP at the next instruction, after a JMP at its target,
 *   after a RET in the caller, with the stack pointer back where it was. For a CALL the callee checks the return
 *   address on its stack: it must be the instruction after the site (the
 *   callee puts the right one back if not, so that a wrong emulation is
 *   reported rather than looping), and the function must then finish
 *   normally.
 */
#include <rewire/rewire.h>

#include "check.h"
#include "arch/arch.h"
#include "insn.h"
#include "text_poke.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/*
 * pp_fn:     eax = 1; site; eax += 10; ret
 *   NOP -> 11, CALL pp_callee -> 11 (one call), JMP pp_alt -> 2, RET -> 1
 * pp_callee: records its return address, puts pp_site + 5 back if it is
 *            not that, counts the call.
 * pp_run:    calls pp_fn and sets pp_rsp_bad if the stack pointer after it
 *            is not what it was before (then puts it back).
 * pp_many:   three sites, far enough apart to be written separately.
 */
#if defined(__x86_64__)
__asm__(".pushsection .text.rw_test_poke_protocol, \"ax\", @progbits\n\t"
	".balign 16\n\t"
	".type pp_fn, @function\n"
	"pp_fn:\n\t"
	"movl $1, %eax\n"
	"pp_site:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"addl $10, %eax\n\t"
	"ret\n\t"
	".size pp_fn, . - pp_fn\n\t"
	".balign 16\n"
	"pp_alt:\n\t"
	"movl $2, %eax\n\t"
	"ret\n\t"
	".balign 16\n"
	"pp_callee:\n\t"
	"movq (%rsp), %rdx\n\t"
	"movq %rdx, pp_ret_seen(%rip)\n\t"
	"leaq pp_site+5(%rip), %rcx\n\t"
	"cmpq %rcx, %rdx\n\t"
	"je 1f\n\t"
	"movq %rcx, (%rsp)\n"
	"1:\n\t"
	"lock incq pp_calls(%rip)\n\t"
	"ret\n\t"
	".balign 16\n\t"
	".type pp_run, @function\n"
	"pp_run:\n\t"
	"pushq %rbx\n\t"
	"movq %rsp, %rbx\n\t"
	"call pp_fn\n\t"
	"xorl %edx, %edx\n\t"
	"cmpq %rsp, %rbx\n\t"
	"setne %dl\n\t"
	"movl %edx, pp_rsp_bad(%rip)\n\t"
	"movq %rbx, %rsp\n\t"
	"popq %rbx\n\t"
	"ret\n\t"
	".size pp_run, . - pp_run\n\t"
	".balign 16\n"
	"pp_many0:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"ret\n\t"
	".balign 16\n"
	"pp_many1:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"ret\n\t"
	".skip 8192, 0xcc\n\t"
	".balign 16\n"
	"pp_many2:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"ret\n\t"
	".popsection");
#elif defined(__aarch64__)
/* The same on aarch64: pp_fn keeps its return address in x9 (a BL at the
 * site overwrites x30); pp_callee checks the return address in x30. */
__asm__(".pushsection .text.rw_test_poke_protocol, \"ax\", %progbits\n\t"
	".balign 16\n\t"
	".type pp_fn, %function\n"
	"pp_fn:\n\t"
	"mov x9, x30\n\t"
	"mov w0, #1\n"
	"pp_site:\n\t"
	"nop\n\t"
	"add w0, w0, #10\n\t"
	"mov x30, x9\n\t"
	"ret\n\t"
	".size pp_fn, . - pp_fn\n\t"
	".balign 16\n"
	"pp_alt:\n\t"
	"mov w0, #2\n\t"
	"ret\n\t"
	".balign 16\n"
	"pp_callee:\n\t"
	"adrp x10, pp_ret_seen\n\t"
	"add x10, x10, :lo12:pp_ret_seen\n\t"
	"str x30, [x10]\n\t"
	"adr x11, pp_site + 4\n\t"
	"cmp x30, x11\n\t"
	"b.eq 1f\n\t"
	"mov x30, x11\n"
	"1:\n\t"
	"adrp x10, pp_calls\n\t"
	"add x10, x10, :lo12:pp_calls\n"
	"2:\n\t"
	"ldxr x12, [x10]\n\t"
	"add x12, x12, #1\n\t"
	"stxr w13, x12, [x10]\n\t"
	"cbnz w13, 2b\n\t"
	"ret\n\t"
	".balign 16\n\t"
	".type pp_run, %function\n"
	"pp_run:\n\t"
	"stp x29, x30, [sp, #-32]!\n\t"
	"str x19, [sp, #16]\n\t"
	"mov x19, sp\n\t"
	"bl pp_fn\n\t"
	"mov x3, sp\n\t"
	"cmp x3, x19\n\t"
	"cset w2, ne\n\t"
	"adrp x10, pp_rsp_bad\n\t"
	"add x10, x10, :lo12:pp_rsp_bad\n\t"
	"str w2, [x10]\n\t"
	"mov sp, x19\n\t"
	"ldr x19, [sp, #16]\n\t"
	"ldp x29, x30, [sp], #32\n\t"
	"ret\n\t"
	".size pp_run, . - pp_run\n\t"
	".balign 16\n"
	"pp_many0:\n\t"
	"nop\n\t"
	"ret\n\t"
	".balign 16\n"
	"pp_many1:\n\t"
	"nop\n\t"
	"ret\n\t"
	".skip 8192, 0\n\t"
	".balign 16\n"
	"pp_many2:\n\t"
	"nop\n\t"
	"ret\n\t"
	".popsection");
#endif

/* Hidden: the labels are local to the asm above, and a GOT reference to a
 * local label would name its section (aarch64's BFD ld then drops the
 * offset and every label becomes the section's start). */
#pragma GCC visibility push(hidden)
int pp_fn(void);
int pp_run(void);
extern uint8_t pp_site[], pp_alt[], pp_callee[];
extern uint8_t pp_many0[], pp_many1[], pp_many2[];
#pragma GCC visibility pop
volatile uintptr_t pp_ret_seen __attribute__((used));
volatile long pp_calls __attribute__((used));
volatile int pp_rsp_bad __attribute__((used));

/* --- Recording ------------------------------------------------------------ */

/* What the trap covers: the first byte (int3) or the whole instruction
 * (aarch64's BRK); the rest of a site is its tail. */
#define HEAD (RW_TEST_INSN == 5 ? 1 : RW_TEST_INSN)

enum ev_kind { EV_ARM, EV_TAIL, EV_HEAD, EV_OLD_TAIL, EV_OLD_HEAD, EV_SYNC };
static const char *const ev_name[] = { "int3s",		  "tails",
				       "first bytes",	  "old tails",
				       "old first bytes", "sync" };

#define MAX_SITES 4
#define MAX_EV 64

static struct rw__poke *rec_pokes; /* the batch's sites, as given */
static size_t rec_n;
static enum ev_kind rec_ev[MAX_EV];
static size_t rec_nev;
static char rec_err[256];

static void rec_fail(const char *what, uintptr_t at)
{
	if (!rec_err[0])
		snprintf(rec_err, sizeof(rec_err), "%s (byte %#lx)", what,
			 (unsigned long)at);
}

/*
 * Classify one write: every byte it changes must belong to a site and be
 * of one kind. A first byte becomes int3, or becomes the new or old first
 * byte over an int3; tail bytes change only under an int3.
 */
static void observer(uintptr_t addr, const uint8_t *buf, size_t len)
{
	int kind = -1;

	if (rec_nev == MAX_EV)
		return;
	if (!buf) {
		rec_ev[rec_nev++] = EV_SYNC;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		uintptr_t a = addr + i;
		uint8_t now = *(volatile const uint8_t *)a;
		const struct rw__poke *p = NULL;
		int k;

		if (buf[i] == now)
			continue;
		for (size_t j = 0; j < rec_n; j++)
			if (a >= rec_pokes[j].addr &&
			    a < rec_pokes[j].addr + rec_pokes[j].len)
				p = &rec_pokes[j];
		if (!p) {
			rec_fail("a write changes a byte outside every site",
				 a);
			return;
		}
		if (a < p->addr + HEAD) {
			const uint8_t *nb = buf + (p->addr - addr);
			bool armed = rw_test_is_trap((const void *)p->addr);

			if (p->addr < addr || p->addr + HEAD > addr + len) {
				rec_fail("a write covers part of a first "
					 "instruction",
					 a);
				return;
			}
			if (rw_test_is_trap(nb))
				k = EV_ARM;
			else if (armed && !memcmp(nb, p->new, HEAD))
				k = EV_HEAD;
			else if (armed && !memcmp(nb, p->old, HEAD))
				k = EV_OLD_HEAD;
			else
				k = -1;
			i = p->addr + HEAD - 1 - addr; /* the head is one */
		} else if (!rw_test_is_trap((const void *)p->addr)) {
			k = -1; /* a tail that a thread could run */
		} else if (buf[i] == p->new[a - p->addr]) {
			k = EV_TAIL;
		} else if (buf[i] == p->old[a - p->addr]) {
			k = EV_OLD_TAIL;
		} else {
			k = -1;
		}
		if (k < 0) {
			rec_fail("a write changes a byte out of protocol", a);
			return;
		}
		if (kind >= 0 && kind != k) {
			rec_fail("one write mixes two steps", a);
			return;
		}
		kind = k;
	}
	if (kind < 0) {
		rec_fail("a write changes nothing", addr);
		return;
	}
	/* Consecutive writes of one step are one step. */
	if (!rec_nev || rec_ev[rec_nev - 1] != (enum ev_kind)kind)
		rec_ev[rec_nev++] = (enum ev_kind)kind;
}

static void rec_start(struct rw__poke *pokes, size_t n)
{
	rec_pokes = pokes;
	rec_n = n;
	rec_nev = 0;
	rec_err[0] = '\0';
	rw__text_poke_observer = observer;
}

static void rec_print(const char *label)
{
	fprintf(stderr, "%s: recorded", label);
	for (size_t i = 0; i < rec_nev; i++)
		fprintf(stderr, "%s %s", i ? ";" : "", ev_name[rec_ev[i]]);
	fprintf(stderr, "\n");
}

/* The recorded steps must be exactly @want (@n of them). */
static void rec_expect(const char *label, const enum ev_kind *want, size_t n)
{
	rw__text_poke_observer = NULL;
	if (rec_err[0]) {
		rec_print(label);
		fprintf(stderr, "%s: %s\n", label, rec_err);
		exit(1);
	}
	if (rec_nev != n || memcmp(rec_ev, want, n * sizeof(*want))) {
		rec_print(label);
		fprintf(stderr, "%s: expected", label);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%s %s", i ? ";" : "",
				ev_name[want[i]]);
		fprintf(stderr, "\n");
		exit(1);
	}
}

/* --- Helpers -------------------------------------------------------------- */

static void mk(struct rw__poke *p, void *site, enum rw_text_op from,
	       const void *from_t, enum rw_text_op to, const void *to_t)
{
	struct rw__insn o = { .op = (uint8_t)from,
			      .target = (uintptr_t)from_t },
			n = { .op = (uint8_t)to, .target = (uintptr_t)to_t };

	CHECK_OK(rw__poke_init(p, (uintptr_t)site, &o, &n));
}

static int batch_ex(struct rw__poke *p, size_t n, int (*armed)(void *),
		    void *arg)
{
	int err = rw__lock_acquire(&rw__text_lock);

	CHECK_OK(err);
	err = rw__text_poke_locked_ex(p, n, armed, arg);
	rw__lock_release(&rw__text_lock);
	return err;
}

/* The steps seen when the armed callback runs. */
static enum ev_kind armed_seen[MAX_EV];
static size_t armed_nseen;

static int armed_fail(void *arg)
{
	(void)arg;
	armed_nseen = rec_nev;
	memcpy(armed_seen, rec_ev, sizeof(rec_ev));
	return -ECANCELED;
}

static int armed_ok(void *arg)
{
	(void)arg;
	armed_nseen = rec_nev;
	memcpy(armed_seen, rec_ev, sizeof(rec_ev));
	return 0;
}

/* --- Order ----------------------------------------------------------------- */

static void test_order(void)
{
#if HEAD == 1
	static const enum ev_kind full[] = { EV_ARM,  EV_SYNC, EV_TAIL,
					     EV_SYNC, EV_HEAD, EV_SYNC };
#else
	/* The trap is the whole instruction: there is no tail to write. */
	static const enum ev_kind full[] = { EV_ARM, EV_SYNC, EV_HEAD,
					     EV_SYNC };
#endif
	static const enum ev_kind no_tail[] = { EV_ARM, EV_SYNC, EV_HEAD,
						EV_SYNC };
	static const enum ev_kind undone[] = { EV_ARM,	EV_SYNC,     EV_SYNC,
					       EV_SYNC, EV_OLD_HEAD, EV_SYNC };
	struct rw__poke p[MAX_SITES], copy[MAX_SITES];
	uint8_t *sites[3] = { pp_many0, pp_many1, pp_many2 };
	uint8_t before[3][RW_TEST_INSN];

	/* Three sites, NOP -> CALL: every step writes. */
	for (int i = 0; i < 3; i++)
		mk(&p[i], sites[2 - i], RW_TEXT_NOP, NULL, RW_TEXT_CALL,
		   pp_callee);
	memcpy(copy, p, sizeof(p));
	rec_start(copy, 3);
	CHECK_OK(batch_ex(p, 3, armed_ok, NULL));
	rec_expect("NOP -> CALL", full, RW_ARRAY_SIZE(full));
	/* The callback ran after the int3s and their sync, before tails. */
	CHECK_EQ(armed_nseen, 2);
	CHECK(armed_seen[0] == EV_ARM && armed_seen[1] == EV_SYNC);
	for (int i = 0; i < 3; i++)
		CHECK(rw_test_is_call(sites[i]));

	/* CALL t -> JMP t: the tails are the same, so no tail step. */
	for (int i = 0; i < 3; i++)
		mk(&p[i], sites[i], RW_TEXT_CALL, pp_callee, RW_TEXT_JMP,
		   pp_callee);
	memcpy(copy, p, sizeof(p));
	rec_start(copy, 3);
	CHECK_OK(batch_ex(p, 3, NULL, NULL));
	rec_expect("CALL t -> JMP t", no_tail, RW_ARRAY_SIZE(no_tail));

	/* JMP -> NOP, undone by the armed callback: the old bytes come back
	 * (the tails were never written) and the last event is a sync. */
	for (int i = 0; i < 3; i++) {
		mk(&p[i], sites[i], RW_TEXT_JMP, pp_callee, RW_TEXT_NOP, NULL);
		memcpy(before[i], sites[i], RW_TEST_INSN);
	}
	memcpy(copy, p, sizeof(p));
	rec_start(copy, 3);
	CHECK_EQ(batch_ex(p, 3, armed_fail, NULL), -ECANCELED);
	rec_expect("undone", undone, RW_ARRAY_SIZE(undone));
	for (int i = 0; i < 3; i++)
		CHECK(!memcmp(before[i], sites[i], RW_TEST_INSN));

	/* And done, through the public function. */
	memcpy(copy, p, sizeof(p));
	rec_start(copy, 3);
	{
		struct rw_text_poke q[3];

		for (int i = 0; i < 3; i++) {
			q[i].addr = sites[i];
			q[i].len = RW_TEST_INSN;
			memcpy(q[i].old_insn, p[i].old, RW_TEST_INSN);
			memcpy(q[i].new_insn, p[i].new, RW_TEST_INSN);
		}
		CHECK_OK(rw_text_poke_batch(q, 3));
	}
	rec_expect("JMP -> NOP", full, RW_ARRAY_SIZE(full));
	printf(HEAD == 1 ? "order: int3s; sync; tails; sync; first bytes; "
			   "sync\n"
			 : "order: BRKs; sync; new instructions; sync\n");
}

/* --- A thread runs the site while the batch is armed ------------------------ */

static _Atomic int run_go, run_done, run_result;

static void *runner(void *arg)
{
	(void)arg;
	for (;;) {
		int go;

		while (!(go = atomic_load(&run_go)))
			sched_yield();
		if (go < 0)
			return NULL;
		atomic_store(&run_go, 0);
		atomic_store(&run_result, pp_run());
		atomic_store(&run_done, 1);
	}
}

struct armed_run {
	int result; /* pp_fn() in the armed window, or -1: timed out */
	uint64_t traps;
	bool site_armed;
};

/* Armed callback: run pp_fn() in the other thread, wait up to 20 s. */
static int run_armed(void *arg)
{
	struct armed_run *r = arg;
	struct rw_text_stats s0, s1;
	uint64_t t0 = rw_test_now_ns();

	r->site_armed = rw_test_is_trap(pp_site);
	rw_text_get_stats(&s0);
	atomic_store(&run_done, 0);
	atomic_store(&run_go, 1);
	while (!atomic_load(&run_done)) {
		if (rw_test_now_ns() - t0 > 20000000000ull) {
			r->result = -1;
			return 0;
		}
		sched_yield();
	}
	rw_text_get_stats(&s1);
	r->result = atomic_load(&run_result);
	r->traps = s1.traps_emulated - s0.traps_emulated;
	return 0;
}

struct change {
	enum rw_text_op from, to;
	int want;   /* pp_fn() with the new instruction */
	long calls; /* calls of pp_callee it makes */
	const char *name;
};

static const void *target_of(enum rw_text_op op)
{
	return op == RW_TEXT_CALL  ? (const void *)pp_callee
	       : op == RW_TEXT_JMP ? (const void *)pp_alt
				   : NULL;
}

static void test_armed_run(void)
{
	static const struct change changes[] = {
		{ RW_TEXT_NOP, RW_TEXT_CALL, 11, 1, "NOP -> CALL" },
		{ RW_TEXT_CALL, RW_TEXT_JMP, 2, 0, "CALL -> JMP" },
		{ RW_TEXT_JMP, RW_TEXT_CALL, 11, 1, "JMP -> CALL" },
		{ RW_TEXT_CALL, RW_TEXT_NOP, 11, 0, "CALL -> NOP" },
		{ RW_TEXT_NOP, RW_TEXT_JMP, 2, 0, "NOP -> JMP" },
		{ RW_TEXT_JMP, RW_TEXT_NOP, 11, 0, "JMP -> NOP" },
		{ RW_TEXT_NOP, RW_TEXT_RET, 1, 0, "NOP -> RET" },
		{ RW_TEXT_RET, RW_TEXT_CALL, 11, 1, "RET -> CALL" },
		{ RW_TEXT_CALL, RW_TEXT_RET, 1, 0, "CALL -> RET" },
		{ RW_TEXT_RET, RW_TEXT_NOP, 11, 0, "RET -> NOP" },
	};
	pthread_t t;

	CHECK_EQ(pp_fn(), 11);
	CHECK_EQ(pthread_create(&t, NULL, runner, NULL), 0);
	for (size_t i = 0; i < RW_ARRAY_SIZE(changes); i++) {
		const struct change *c = &changes[i];
		struct armed_run r = { 0 };
		struct rw__poke p;
		long calls0 = pp_calls;

		pp_ret_seen = 0;
		mk(&p, pp_site, c->from, target_of(c->from), c->to,
		   target_of(c->to));
		pp_rsp_bad = 0;
		CHECK_OK(batch_ex(&p, 1, run_armed, &r));
		if (!r.site_armed || r.result != c->want || pp_rsp_bad ||
		    pp_calls - calls0 != c->calls || r.traps != 1 ||
		    (c->calls &&
		     pp_ret_seen != (uintptr_t)pp_site + RW_TEST_INSN)) {
			fprintf(stderr,
				"%s in the armed window: site %s, pp_fn() == "
				"%d (want %d; -1: thread stuck), %ld calls "
				"(want %ld), %lu traps (want 1), stack "
				"pointer %s, return address %#lx (want the "
				"next instruction, %#lx)\n",
				c->name, r.site_armed ? "armed" : "NOT armed",
				r.result, c->want, pp_calls - calls0, c->calls,
				(unsigned long)r.traps,
				pp_rsp_bad ? "MOVED" : "kept",
				(unsigned long)pp_ret_seen,
				(unsigned long)(uintptr_t)(pp_site +
							   RW_TEST_INSN));
			exit(1);
		}
		/* After the batch: the new instruction, run natively. */
		calls0 = pp_calls;
		CHECK_EQ(pp_fn(), c->want);
		CHECK_EQ(pp_calls - calls0, c->calls);
	}
	atomic_store(&run_go, -1);
	pthread_join(t, NULL);
	printf("armed window: %zu changes, each run once as the new "
	       "instruction, resumed in place\n",
	       RW_ARRAY_SIZE(changes));
}

/*
 * rw__arch_site_insn(): what a trap whose batch has finished emulates
 * instead of running the site again. aarch64 decodes NOP, B and BL (with
 * their signed offsets) and nothing else; x86-64 always runs the site
 * again.
 */
static void test_site_insn(void)
{
	uint32_t w[4] __attribute__((aligned(16)));
	uintptr_t at = (uintptr_t)&w[2];
	struct rw__insn in;
	static const uint32_t other[] = {
		0xd503245fu, /* BTI C */
		0xd4200000u, /* BRK #0 */
		0xd65f03c0u, /* RET */
		0x54000040u, /* B.EQ +8 */
		0xd503233fu, /* PACIASP */
	};

#if defined(RW_BACKEND_AARCH64)
	w[2] = 0xd503201fu; /* NOP */
	CHECK(rw__arch_site_insn(at, &in));
	CHECK_EQ(in.op, RW_TEXT_NOP);
	w[2] = 0x14000002u; /* B +8 */
	CHECK(rw__arch_site_insn(at, &in));
	CHECK_EQ(in.op, RW_TEXT_JMP);
	CHECK_EQ(in.target, at + 8);
	w[2] = 0x17ffffffu; /* B -4 */
	CHECK(rw__arch_site_insn(at, &in));
	CHECK_EQ(in.op, RW_TEXT_JMP);
	CHECK_EQ(in.target, at - 4);
	w[2] = 0x94000040u; /* BL +0x100 */
	CHECK(rw__arch_site_insn(at, &in));
	CHECK_EQ(in.op, RW_TEXT_CALL);
	CHECK_EQ(in.target, at + 0x100);
	w[2] = 0x96000000u; /* BL -128 MiB */
	CHECK(rw__arch_site_insn(at, &in));
	CHECK_EQ(in.target, at - (128u << 20));
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		w[2] = other[i];
		CHECK(!rw__arch_site_insn(at, &in));
	}
#else
	w[2] = other[0];
	CHECK(!rw__arch_site_insn(at, &in));
#endif
	printf("site instructions for a finished batch's trap: ok\n");
}

int main(void)
{
#ifndef RW_BACKEND_PATCHING
	SKIP("no code patching on this backend");
#endif
	test_site_insn();
	test_order();
	test_armed_run();
	printf("poke protocol: ok\n");
	return 0;
}
