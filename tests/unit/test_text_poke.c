/* SPDX-License-Identifier: MIT */
/*
 * rw_text_poke_batch, rw_text_encode and rw_text_get_stats on sites this
 * test owns: 5-byte NOPs written in assembly, in functions whose result
 * shows which instruction a site holds.
 *
 * What it proves, and the oracle of each part:
 * - NOP -> CALL -> NOP -> JMP -> RET -> NOP at one site: the function's
 *   return value and a counter bumped by the callee (an assembly helper
 *   that clobbers only the flags) change as the encoding says.
 * - A batch of 200 adjacent sites: every site becomes a CALL (one call of
 *   the function bumps the counter 200 times) with one batch and at most
 *   three syncs (stats before/after), and back.
 * - Errors leave the program as it was: wrong old bytes give -EILSEQ and
 *   not one byte of any site changes (snapshot compare); overlapping or
 *   duplicate sites give -EINVAL; bytes that are not an instruction rewire
 *   knows, and lengths other than 5, give -RW_ERR_BAD_INSN (the header's
 *   table); NULL arguments give -EINVAL; n == 0 gives 0.
 * - Execute-only memory ([vsyscall], a PROT_EXEC-only page) is -EFAULT, not
 *   a crash: the batch reads every site first.
 * - The rest of the header's table, deterministically, in a child: a
 *   seccomp filter turns the batch's /proc/self/mem write into SIGSYS; the
 *   SIGSYS handler interrupts the batch on its own thread and gets
 *   -EDEADLK, then refuses the write (-RW_ERR_TEXT_WRITE, nothing
 *   written); with RW_TEXT_ALLOW_MPROTECT the batch succeeds through
 *   mprotect, and with mprotect refused too it returns mprotect's error.
 *   Under RLIMIT_AS the batch returns -ENOMEM. The generic backend returns
 *   -ENOSYS. Sites that already hold their new bytes are skipped:
 *   sites_skipped grows, no batch and no sync is counted.
 * - rw_text_encode: exact bytes, rel32 limits (+-2 GiB exactly in range,
 *   one byte more is -RW_ERR_OUT_OF_RANGE), bad op and NULL out.
 * - W^X: a sampler thread reads /proc/self/maps during many batches and
 *   fails if any mapping is ever rwx (default policy). With
 *   RW_TEXT_ALLOW_MPROTECT | RW_TEXT_FORCE_MPROTECT batches still work,
 *   mprotect_writes grows, and afterwards no mapping is rwx and the text
 *   mapping is r-x again.
 * - -EDEADLK: a SIGUSR1 handler calls rw_text_poke_batch. It only does so
 *   when it knows where the interrupted code is (so that it never calls
 *   malloc over an interrupted malloc): if the main thread's own batch
 *   site holds int3, the main thread is inside its batch and the handler
 *   must get -EDEADLK; if the main thread raised the signal itself from
 *   test code, the handler must get 0. If no signal lands inside a batch
 *   within the time bound, a note is printed (timing dependent).
 * - rw_strerror gives distinct, non-NULL text for every RW_ERR_* code.
 */
#include <rewire/rewire.h>

#include "check.h"
#include "insn.h"

#define RW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define NMANY 200

/*
 * tp_fn:    eax = 1; site; eax += 10; ret
 *   site NOP           -> 11
 *   site CALL tp_helper -> 11 and tp_counter++
 *   site JMP tp_alt    -> 2
 *   site RET           -> 1
 * tp_many:  NMANY adjacent sites, then ret (a CALL at each bumps the
 *           counter once).
 * tp_dl_fn: a site only the -EDEADLK part patches (from the main thread).
 * tp_sig_fn: a site only the SIGUSR1 handler patches.
 */
#if defined(__x86_64__)
__asm__(".pushsection .text.rw_test_text_poke, \"ax\", @progbits\n\t"
	".balign 16\n\t"
	".type tp_fn, @function\n"
	"tp_fn:\n\t"
	"movl $1, %eax\n"
	"tp_site:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"addl $10, %eax\n\t"
	"ret\n\t"
	".size tp_fn, . - tp_fn\n\t"
	".balign 16\n"
	"tp_alt:\n\t"
	"movl $2, %eax\n\t"
	"ret\n\t"
	".balign 16\n"
	"tp_helper:\n\t"
	"lock incq tp_counter(%rip)\n\t"
	"ret\n\t"
	".balign 16\n\t"
	".type tp_many, @function\n"
	"tp_many:\n"
	"tp_many_sites:\n\t"
	".rept 200\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	".endr\n\t"
	"ret\n\t"
	".size tp_many, . - tp_many\n\t"
	".balign 16\n\t"
	".type tp_dl_fn, @function\n"
	"tp_dl_fn:\n"
	"tp_dl_site:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"ret\n\t"
	".size tp_dl_fn, . - tp_dl_fn\n\t"
	".balign 16\n\t"
	".type tp_sig_fn, @function\n"
	"tp_sig_fn:\n"
	"tp_sig_site:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"ret\n\t"
	".size tp_sig_fn, . - tp_sig_fn\n\t"
	".popsection");
#elif defined(__aarch64__)
/* The same on aarch64. A site that becomes a call (BL) overwrites the link
 * register, so each function keeps its return address in x9 (which
 * tp_helper leaves alone), and RET at a site returns with x30 intact. */
__asm__(".pushsection .text.rw_test_text_poke, \"ax\", %progbits\n\t"
	".balign 16\n\t"
	".type tp_fn, %function\n"
	"tp_fn:\n\t"
	"mov x9, x30\n\t"
	"mov w0, #1\n"
	"tp_site:\n\t"
	"nop\n\t"
	"add w0, w0, #10\n\t"
	"mov x30, x9\n\t"
	"ret\n\t"
	".size tp_fn, . - tp_fn\n\t"
	".balign 16\n"
	"tp_alt:\n\t"
	"mov w0, #2\n\t"
	"ret\n\t"
	".balign 16\n"
	"tp_helper:\n\t"
	"adrp x10, tp_counter\n\t"
	"add x10, x10, :lo12:tp_counter\n"
	"1:\tldxr x11, [x10]\n\t"
	"add x11, x11, #1\n\t"
	"stxr w12, x11, [x10]\n\t"
	"cbnz w12, 1b\n\t"
	"ret\n\t"
	".balign 16\n\t"
	".type tp_many, %function\n"
	"tp_many:\n\t"
	"mov x9, x30\n"
	"tp_many_sites:\n\t"
	".rept 200\n\t"
	"nop\n\t"
	".endr\n\t"
	"mov x30, x9\n\t"
	"ret\n\t"
	".size tp_many, . - tp_many\n\t"
	".balign 16\n\t"
	".type tp_dl_fn, %function\n"
	"tp_dl_fn:\n\t"
	"mov x9, x30\n"
	"tp_dl_site:\n\t"
	"nop\n\t"
	"mov x30, x9\n\t"
	"ret\n\t"
	".size tp_dl_fn, . - tp_dl_fn\n\t"
	".balign 16\n\t"
	".type tp_sig_fn, %function\n"
	"tp_sig_fn:\n\t"
	"mov x9, x30\n"
	"tp_sig_site:\n\t"
	"nop\n\t"
	"mov x30, x9\n\t"
	"ret\n\t"
	".size tp_sig_fn, . - tp_sig_fn\n\t"
	".popsection");
#endif

/* Hidden: the labels are local to the asm above, and a GOT reference to a
 * local label would name its section (aarch64's BFD ld then drops the
 * offset and every label becomes the section's start). */
#pragma GCC visibility push(hidden)
int tp_fn(void);
void tp_many(void);
void tp_dl_fn(void);
extern uint8_t tp_site[], tp_alt[], tp_helper[], tp_many_sites[];
extern uint8_t tp_dl_site[], tp_sig_site[];
#pragma GCC visibility pop
/* Bumped by tp_helper with a locked increment. */
volatile long tp_counter __attribute__((used));

#define L RW_TEST_INSN
#define nop5 rw_test_nop

static uint8_t *many_site(int i)
{
	return tp_many_sites + L * i;
}

/* A poke of @site from op @from to op @to (target for JMP/CALL). */
static void mk(struct rw_text_poke *p, void *site, enum rw_text_op from,
	       const void *from_t, enum rw_text_op to, const void *to_t)
{
	memset(p, 0, sizeof(*p));
	p->addr = site;
	p->len = L;
	CHECK_EQ(rw_text_encode(from, site, from_t, p->old_insn), L);
	CHECK_EQ(rw_text_encode(to, site, to_t, p->new_insn), L);
}

static int poke1(void *site, enum rw_text_op from, const void *from_t,
		 enum rw_text_op to, const void *to_t)
{
	struct rw_text_poke p;

	mk(&p, site, from, from_t, to, to_t);
	return rw_text_poke_batch(&p, 1);
}

#if defined(__x86_64__)
static void test_encode(void)
{
	uint8_t b[RW_TEXT_INSN_MAX];
	uint8_t *site = tp_site;
	int32_t rel;

	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site, NULL, b), 5);
	CHECK(!memcmp(b, nop5, 5));
	CHECK_EQ(rw_text_encode(RW_TEXT_RET, site, NULL, b), 5);
	CHECK(b[0] == 0xc3 && b[1] == 0xcc && b[2] == 0xcc && b[3] == 0xcc &&
	      b[4] == 0xcc);
	CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site, tp_helper, b), 5);
	memcpy(&rel, b + 1, 4);
	CHECK_EQ(b[0], 0xe8);
	CHECK((uintptr_t)(site + 5) + (uintptr_t)(intptr_t)rel ==
	      (uintptr_t)tp_helper);
	CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site, tp_alt, b), 5);
	memcpy(&rel, b + 1, 4);
	CHECK_EQ(b[0], 0xe9);
	CHECK((uintptr_t)(site + 5) + (uintptr_t)(intptr_t)rel ==
	      (uintptr_t)tp_alt);

	/* rel32 limits, counted from the end of the instruction. Only
	 * arithmetic on the addresses: nothing is written or executed. */
	{
		uintptr_t end = (uintptr_t)site + 5;
		const void *hi = (const void *)(end + INT32_MAX);
		const void *hi1 = (const void *)(end + INT32_MAX + 1ull);
		const void *lo = (const void *)(end - 0x80000000ull);
		const void *lo1 = (const void *)(end - 0x80000001ull);

		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site, hi, b), 5);
		memcpy(&rel, b + 1, 4);
		CHECK_EQ(rel, INT32_MAX);
		CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site, lo, b), 5);
		memcpy(&rel, b + 1, 4);
		CHECK_EQ(rel, INT32_MIN);
		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site, hi1, b),
			 -RW_ERR_OUT_OF_RANGE);
		CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site, lo1, b),
			 -RW_ERR_OUT_OF_RANGE);
		CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site,
					(const void *)(end + (1ull << 40)), b),
			 -RW_ERR_OUT_OF_RANGE);
	}
	/* NOP and RET ignore the target, even an unreachable one. */
	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site, (void *)-1, b), 5);
	CHECK_EQ(rw_text_encode(RW_TEXT_RET, site, (void *)-1, b), 5);
	CHECK_EQ(rw_text_encode((enum rw_text_op)0, site, NULL, b), -EINVAL);
	CHECK_EQ(rw_text_encode((enum rw_text_op)99, site, NULL, b), -EINVAL);
	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site, NULL, NULL), -EINVAL);
}
#elif defined(__aarch64__)
static void test_encode(void)
{
	uint8_t b[RW_TEXT_INSN_MAX];
	uint8_t *site = tp_site;
	uint32_t w;

	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site, NULL, b), 4);
	CHECK(!memcmp(b, rw_test_nop, 4));
	CHECK_EQ(rw_text_encode(RW_TEXT_RET, site, NULL, b), 4);
	memcpy(&w, b, 4);
	CHECK_EQ(w, 0xd65f03c0u);
	CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site, tp_helper, b), 4);
	CHECK(rw_test_is_call(b));
	CHECK(rw_test_target(b) - (uintptr_t)b + (uintptr_t)site ==
	      (uintptr_t)tp_helper);
	CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site, tp_alt, b), 4);
	CHECK(rw_test_is_jmp(b));
	CHECK(rw_test_target(b) - (uintptr_t)b + (uintptr_t)site ==
	      (uintptr_t)tp_alt);

	/* B/BL reach: a signed 26-bit word offset from the instruction
	 * itself, +-128 MiB. Only arithmetic on the addresses. */
	{
		uintptr_t at = (uintptr_t)site;
		const void *hi = (const void *)(at + (128u << 20) - 4);
		const void *hi1 = (const void *)(at + (128u << 20));
		const void *lo = (const void *)(at - (128u << 20));
		const void *lo1 = (const void *)(at - (128u << 20) - 4);

		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site, hi, b), 4);
		CHECK(rw_test_target(b) - (uintptr_t)b + at == (uintptr_t)hi);
		CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site, lo, b), 4);
		CHECK(rw_test_target(b) - (uintptr_t)b + at == (uintptr_t)lo);
		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site, hi1, b),
			 -RW_ERR_OUT_OF_RANGE);
		CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site, lo1, b),
			 -RW_ERR_OUT_OF_RANGE);
		CHECK_EQ(rw_text_encode(RW_TEXT_CALL, site,
					(const void *)(at + (1ull << 40)), b),
			 -RW_ERR_OUT_OF_RANGE);
		/* Targets and sites are 4-aligned. */
		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, site,
					(const void *)(at + 6), b),
			 -EINVAL);
		CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site + 2, NULL, b),
			 -EINVAL);
	}
	/* NOP and RET ignore the target, even an unreachable one. */
	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site, (void *)-1, b), 4);
	CHECK_EQ(rw_text_encode(RW_TEXT_RET, site, (void *)-1, b), 4);
	CHECK_EQ(rw_text_encode((enum rw_text_op)0, site, NULL, b), -EINVAL);
	CHECK_EQ(rw_text_encode((enum rw_text_op)99, site, NULL, b), -EINVAL);
	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, site, NULL, NULL), -EINVAL);
}
#endif

static void test_one_site(void)
{
	long c0;

	CHECK(!memcmp(tp_site, nop5, L));
	CHECK_EQ(tp_fn(), 11);

	c0 = tp_counter;
	CHECK_OK(poke1(tp_site, RW_TEXT_NOP, NULL, RW_TEXT_CALL, tp_helper));
	CHECK(rw_test_is_call(tp_site));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 1);
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 2);

	CHECK_OK(poke1(tp_site, RW_TEXT_CALL, tp_helper, RW_TEXT_NOP, NULL));
	CHECK(!memcmp(tp_site, nop5, L));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 2);

	CHECK_OK(poke1(tp_site, RW_TEXT_NOP, NULL, RW_TEXT_JMP, tp_alt));
	CHECK_EQ(tp_fn(), 2);
	CHECK_OK(poke1(tp_site, RW_TEXT_JMP, tp_alt, RW_TEXT_RET, NULL));
	CHECK_EQ(tp_fn(), 1);
	CHECK_OK(poke1(tp_site, RW_TEXT_RET, NULL, RW_TEXT_CALL, tp_helper));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 3);
	CHECK_OK(poke1(tp_site, RW_TEXT_CALL, tp_helper, RW_TEXT_NOP, NULL));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 3);
}

static void many_pokes(struct rw_text_poke *p, enum rw_text_op from,
		       enum rw_text_op to)
{
	for (int i = 0; i < NMANY; i++)
		mk(&p[i], many_site(i), from, tp_helper, to, tp_helper);
}

static void check_many(enum rw_text_op op)
{
	uint8_t b[RW_TEXT_INSN_MAX];

	for (int i = 0; i < NMANY; i++) {
		CHECK_EQ(rw_text_encode(op, many_site(i), tp_helper, b), L);
		if (memcmp(many_site(i), b, L)) {
			fprintf(stderr, "site %d does not hold op %d\n", i,
				(int)op);
			exit(1);
		}
	}
}

static void test_batch(void)
{
	static struct rw_text_poke p[NMANY];
	struct rw_text_stats s0, s1;
	long c0;

	check_many(RW_TEXT_NOP);
	c0 = tp_counter;
	tp_many();
	CHECK_EQ(tp_counter, c0);

	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	/* Reverse order: the batch sorts. */
	for (int i = 0; i < NMANY / 2; i++) {
		struct rw_text_poke t = p[i];

		p[i] = p[NMANY - 1 - i];
		p[NMANY - 1 - i] = t;
	}
	rw_text_get_stats(&s0);
	CHECK_OK(rw_text_poke_batch(p, NMANY));
	rw_text_get_stats(&s1);
	CHECK_EQ(s1.batches - s0.batches, 1);
	CHECK_EQ(s1.sites_patched - s0.sites_patched, NMANY);
	CHECK(s1.syncs - s0.syncs >= 1 && s1.syncs - s0.syncs <= 3);
	check_many(RW_TEXT_CALL);
	c0 = tp_counter;
	tp_many();
	CHECK_EQ(tp_counter, c0 + NMANY);

	/* The same batch again: every site already holds its new bytes. */
	rw_text_get_stats(&s0);
	CHECK_OK(rw_text_poke_batch(p, NMANY));
	rw_text_get_stats(&s1);
	CHECK_EQ(s1.sites_skipped - s0.sites_skipped, NMANY);
	CHECK_EQ(s1.batches - s0.batches, 0);
	CHECK_EQ(s1.syncs - s0.syncs, 0);
	CHECK_EQ(s1.writes - s0.writes, 0);

	many_pokes(p, RW_TEXT_CALL, RW_TEXT_NOP);
	rw_text_get_stats(&s0);
	CHECK_OK(rw_text_poke_batch(p, NMANY));
	rw_text_get_stats(&s1);
	CHECK_EQ(s1.batches - s0.batches, 1);
	CHECK(s1.syncs - s0.syncs <= 3);
	check_many(RW_TEXT_NOP);
	c0 = tp_counter;
	tp_many();
	CHECK_EQ(tp_counter, c0);

	/* Half already done, half to do: the done half is skipped. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_JMP);
	CHECK_OK(rw_text_poke_batch(p, NMANY / 2));
	rw_text_get_stats(&s0);
	CHECK_OK(rw_text_poke_batch(p, NMANY));
	rw_text_get_stats(&s1);
	CHECK_EQ(s1.sites_skipped - s0.sites_skipped, NMANY / 2);
	CHECK_EQ(s1.sites_patched - s0.sites_patched, NMANY / 2);
	CHECK_EQ(s1.batches - s0.batches, 1);
	check_many(RW_TEXT_JMP);
	many_pokes(p, RW_TEXT_JMP, RW_TEXT_NOP);
	CHECK_OK(rw_text_poke_batch(p, NMANY));
	check_many(RW_TEXT_NOP);
}

static void perms_of(const void *addr, char *perms);

/* Permissions ("r-xp"...) of the mapping named @name, or "" if none. */
static void perms_named(const char *name, char *perms)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	CHECK(f != NULL);
	perms[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char p[8];

		if (strstr(line, name) && sscanf(line, "%*x-%*x %7s", p) == 1) {
			memcpy(perms, p, 4);
			perms[4] = '\0';
			break;
		}
	}
	fclose(f);
}

/*
 * Execute-only memory: the batch reads a site before it writes it, so a
 * site there must be -EFAULT (it used to pass the "executable" check and
 * fault on the read). [vsyscall] is execute-only with vsyscall=xonly (the
 * default since Linux 5.18) and absent with vsyscall=none; both are
 * -EFAULT. With vsyscall=emulate it is readable and holds no NOP: any
 * error but a crash. A PROT_EXEC-only page of ours is "--xp" everywhere.
 */
static void test_exec_only(struct rw_text_poke *p)
{
	static uint8_t snap[NMANY * L];
	void *vsys = (void *)(uintptr_t)0xffffffffff600000ull;
	char vperms[8], perms[8];
	uint8_t *page;
	long pg = sysconf(_SC_PAGESIZE);
	int r;

	memcpy(snap, tp_many_sites, sizeof(snap));
	perms_named("[vsyscall]", vperms);
	mk(&p[0], vsys, RW_TEXT_NOP, NULL, RW_TEXT_CALL, vsys);
	r = rw_text_poke_batch(p, 1);
	if (vperms[0] == 'r')
		CHECK(r < 0);
	else
		CHECK_EQ(r, -EFAULT);
	/* In a batch with good sites: nothing of them written. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	mk(&p[NMANY - 1], vsys, RW_TEXT_NOP, NULL, RW_TEXT_CALL, vsys);
	CHECK(rw_text_poke_batch(p, NMANY) < 0);
	CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));

	page = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(page != MAP_FAILED);
	memcpy(page, nop5, L);
	CHECK_EQ(mprotect(page, (size_t)pg, PROT_EXEC), 0);
	perms_of(page, perms);
	CHECK(!strcmp(perms, "--xp"));
	mk(&p[0], page, RW_TEXT_NOP, NULL, RW_TEXT_CALL, page + 8);
	CHECK_EQ(rw_text_poke_batch(p, 1), -EFAULT);
	CHECK_EQ(mprotect(page, (size_t)pg, PROT_READ), 0);
	CHECK(!memcmp(page, nop5, L));
	munmap(page, (size_t)pg);
	printf("execute-only: [vsyscall] (%s) and a --xp page refused\n",
	       vperms[0] ? vperms : "absent");
}

static void test_errors(void)
{
	static struct rw_text_poke p[NMANY];
	static uint8_t snap[NMANY * L + 16];
	struct rw_text_stats s0, s1;
#if defined(__x86_64__)
	uint8_t bad[5] = { 0x48, 0x89, 0xc0, 0x90, 0x90 }; /* mov; nop; nop */
#else
	uint8_t bad[4] = { 0xe0, 0x03, 0x00, 0xaa }; /* mov x0, x0 */
#endif

	memcpy(snap, tp_many_sites, sizeof(snap));

	/* Wrong old bytes on one site, in the middle of the batch and at its
	 * last position (in address order too): nothing is written. */
	for (int where = 0; where < 3; where++) {
		int victim = where == 0 ? 137 : where == 1 ? NMANY - 1 : 0;

		many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
		mk(&p[victim], many_site(victim), RW_TEXT_CALL, tp_helper,
		   RW_TEXT_JMP, tp_alt);
		rw_text_get_stats(&s0);
		CHECK_EQ(rw_text_poke_batch(p, NMANY), -EILSEQ);
		rw_text_get_stats(&s1);
		CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));
		CHECK_EQ(s1.writes - s0.writes, 0);
		CHECK_EQ(s1.batches - s0.batches, 0);
	}
	/* Old bytes that are a valid JMP to the wrong target. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	mk(&p[5], many_site(5), RW_TEXT_JMP, tp_alt, RW_TEXT_CALL, tp_helper);
	CHECK_EQ(rw_text_poke_batch(p, NMANY), -EILSEQ);
	CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));

	/* Overlap: a site 2 bytes into another (on aarch64 also misaligned:
	 * -EINVAL either way); a site given twice. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	p[10].addr = many_site(10) + 2;
	CHECK_EQ(rw_text_poke_batch(p, NMANY), -EINVAL);
	CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	p[10] = p[11];
	CHECK_EQ(rw_text_poke_batch(p, NMANY), -EINVAL);
	CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));

	/* Instructions rewire cannot patch or emulate. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	memcpy(p[3].new_insn, bad, L);
	{
		CHECK_EQ(rw_text_poke_batch(p, NMANY), -RW_ERR_BAD_INSN);
	}
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	memcpy(p[3].old_insn, bad, L);
	{
		CHECK_EQ(rw_text_poke_batch(p, NMANY), -RW_ERR_BAD_INSN);
	}
#if defined(__x86_64__)
	/* A RET with something other than int3 padding. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_RET);
	p[4].new_insn[4] = 0x90;
	{
		CHECK_EQ(rw_text_poke_batch(p, NMANY), -RW_ERR_BAD_INSN);
	}
#endif
	/* Lengths: one other than a site's is not an instruction rewire
	 * knows; 0 and > max are invalid. */
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	p[7].len = L == 5 ? 4 : 5;
	{
		CHECK_EQ(rw_text_poke_batch(p, NMANY), -RW_ERR_BAD_INSN);
	}
	p[7].len = 0;
	CHECK_EQ(rw_text_poke_batch(p, NMANY), -EINVAL);
	p[7].len = RW_TEXT_INSN_MAX + 1;
	CHECK_EQ(rw_text_poke_batch(p, NMANY), -EINVAL);
	many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
	p[8].addr = NULL;
	CHECK_EQ(rw_text_poke_batch(p, NMANY), -EINVAL);
	CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));

	/* Addresses outside code: unmapped, data, the stack. An error, never
	 * a fault, and nothing written. */
	{
		static uint8_t data_bytes[16];
		uint8_t stack_bytes[16];
		void *outside[] = { (void *)(uintptr_t)0x1000, data_bytes,
				    stack_bytes };

		for (size_t i = 0; i < RW_ARRAY_LEN(outside); i++) {
			many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
			p[NMANY - 1].addr = outside[i];
			CHECK_EQ(rw_text_poke_batch(p, NMANY), -EFAULT);
			CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));
		}
	}

	test_exec_only(p);

	/* NULL and empty. */
	CHECK_EQ(rw_text_poke_batch(NULL, 1), -EINVAL);
	rw_text_get_stats(&s0);
	CHECK_EQ(rw_text_poke_batch(NULL, 0), 0);
	CHECK_EQ(rw_text_poke_batch(p, 0), 0);
	rw_text_get_stats(&s1);
	CHECK(!memcmp(&s0, &s1, sizeof(s0)));
	rw_text_get_stats(NULL);

	/* Identical bytes (NOP -> NOP): skipped, nothing counted but that. */
	mk(&p[0], tp_site, RW_TEXT_NOP, NULL, RW_TEXT_NOP, NULL);
	rw_text_get_stats(&s0);
	CHECK_OK(rw_text_poke_batch(p, 1));
	rw_text_get_stats(&s1);
	CHECK_EQ(s1.sites_skipped - s0.sites_skipped, 1);
	CHECK_EQ(s1.batches - s0.batches, 0);
	CHECK_EQ(s1.syncs - s0.syncs, 0);
	CHECK_EQ(s1.writes - s0.writes, 0);
	CHECK_EQ(tp_fn(), 11);
	CHECK(!memcmp(snap, tp_many_sites, sizeof(snap)));
}

/* --- W^X ----------------------------------------------------------------- */

static _Atomic int sampler_stop, sampler_allow_rwx;
static _Atomic long sampler_reads, sampler_rwx_seen;
static char sampler_bad_line[256];

/* Count the rwx mappings in /proc/self/maps; keep the first one seen. */
static int count_rwx(char *first, size_t size)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
			continue;
		if (!strncmp(perms, "rwx", 3)) {
			if (!n && first) {
				strncpy(first, line, size - 1);
				first[size - 1] = '\0';
			}
			n++;
		}
	}
	fclose(f);
	return n;
}

/* Permissions of the mapping that holds @addr ("r-xp"...). */
static void perms_of(const void *addr, char *perms)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	CHECK(f != NULL);
	strcpy(perms, "????");
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char p[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, p) != 3)
			continue;
		if ((uintptr_t)addr >= lo && (uintptr_t)addr < hi) {
			memcpy(perms, p, 4);
			perms[4] = '\0';
			break;
		}
	}
	fclose(f);
}

static void *sampler(void *arg)
{
	(void)arg;
	while (!atomic_load(&sampler_stop)) {
		char first[256];
		int n = count_rwx(first, sizeof(first));

		atomic_fetch_add(&sampler_reads, 1);
		if (n) {
			if (!atomic_load(&sampler_allow_rwx) &&
			    !sampler_bad_line[0])
				memcpy(sampler_bad_line, first,
				       sizeof(sampler_bad_line));
			atomic_fetch_add(&sampler_rwx_seen, 1);
		}
	}
	return NULL;
}

static _Atomic int runner_stop;

/* Runs the sites while they are patched: exercises the trap path. */
static void *runner(void *arg)
{
	(void)arg;
	while (!atomic_load(&runner_stop)) {
		int v = tp_fn();

		if (v != 11 && v != 2) {
			fprintf(stderr, "runner: tp_fn() == %d\n", v);
			exit(1);
		}
		tp_many();
	}
	return NULL;
}

static void flip_rounds(int rounds)
{
	static struct rw_text_poke p[NMANY];

	for (int r = 0; r < rounds; r++) {
		many_pokes(p, RW_TEXT_NOP, RW_TEXT_CALL);
		CHECK_OK(rw_text_poke_batch(p, NMANY));
		CHECK_OK(
			poke1(tp_site, RW_TEXT_NOP, NULL, RW_TEXT_JMP, tp_alt));
		many_pokes(p, RW_TEXT_CALL, RW_TEXT_NOP);
		CHECK_OK(rw_text_poke_batch(p, NMANY));
		CHECK_OK(
			poke1(tp_site, RW_TEXT_JMP, tp_alt, RW_TEXT_NOP, NULL));
	}
}

static void test_wx(void)
{
	pthread_t ts, tr;
	struct rw_text_stats s0, s1;
	char first[256] = "", perms[8];
	unsigned old;
	long reads0;
	uint64_t t0;
	int rounds = 0, base_rwx;

	base_rwx = count_rwx(first, sizeof(first));
	perms_of(tp_site, perms);
	CHECK(!strcmp(perms, "r-xp"));

	atomic_store(&runner_stop, 0);
	CHECK_EQ(pthread_create(&tr, NULL, runner, NULL), 0);
	if (base_rwx) {
		/* Something else in the process (a sanitizer runtime, a JIT)
		 * keeps an rwx mapping: W^X cannot be observed here. */
		printf("note: %d rwx mapping(s) before the test (%s); "
		       "W^X sampling skipped\n",
		       base_rwx, first);
	} else {
		CHECK_EQ(pthread_create(&ts, NULL, sampler, NULL), 0);
		/* Enough batches for the sampler to read the maps many times
		 * while they run; bounded by time. */
		t0 = rw_test_now_ns();
		reads0 = atomic_load(&sampler_reads);
		while (rounds < 2000 &&
		       (rounds < 50 ||
			atomic_load(&sampler_reads) < reads0 + 200)) {
			flip_rounds(1);
			rounds++;
			if (rw_test_now_ns() - t0 > 3000000000ull)
				break;
		}
		atomic_store(&sampler_stop, 1);
		pthread_join(ts, NULL);
		if (sampler_bad_line[0]) {
			fprintf(stderr, "rwx mapping seen during batches: %s",
				sampler_bad_line);
			exit(1);
		}
		CHECK_EQ(atomic_load(&sampler_rwx_seen), 0);
		printf("W^X: %d rounds, %ld maps reads, no rwx mapping\n",
		       rounds, atomic_load(&sampler_reads));
	}

	/* The mprotect path, forced. 2 rounds (1,608 writes) where waits are
	 * scaled: 20 took 52 s in the emulated aarch64 VM. */
	old = rw_text_set_policy(RW_TEXT_ALLOW_MPROTECT |
				 RW_TEXT_FORCE_MPROTECT);
	rw_text_get_stats(&s0);
	flip_rounds(rw_test_time_scale() > 1 ? 2 : 20);
	rw_text_get_stats(&s1);
	CHECK(s1.mprotect_writes > s0.mprotect_writes);
	CHECK(s1.mprotect_writes - s0.mprotect_writes == s1.writes - s0.writes);
	CHECK_EQ(rw_text_set_policy(old),
		 RW_TEXT_ALLOW_MPROTECT | RW_TEXT_FORCE_MPROTECT);
	CHECK_EQ(rw_text_set_policy(old), old);
	atomic_store(&runner_stop, 1);
	pthread_join(tr, NULL);
	check_many(RW_TEXT_NOP);
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(count_rwx(first, sizeof(first)), base_rwx);
	perms_of(tp_site, perms);
	CHECK(!strcmp(perms, "r-xp"));
	perms_of(tp_many_sites, perms);
	CHECK(!strcmp(perms, "r-xp"));

	/* Back to /proc/self/mem. */
	rw_text_get_stats(&s0);
	flip_rounds(1);
	rw_text_get_stats(&s1);
	CHECK_EQ(s1.mprotect_writes, s0.mprotect_writes);
	printf("mprotect path: %llu writes, protections restored\n",
	       (unsigned long long)(s1.mprotect_writes));
}

/* --- -EDEADLK -------------------------------------------------------------- */

static pthread_t main_thread;
static _Atomic int self_signal; /* main raised SIGUSR1 from test code */
static _Atomic long h_deadlk, h_ok, h_skipped, h_bad, h_sig_on;
static _Atomic int h_bad_value;
static _Atomic int dl_stop;

static void usr1(int sig)
{
	struct rw_text_poke p;
	bool nested, on;
	int saved = errno, r;

	(void)sig;
	/* Only the main thread patches tp_dl_site; an int3 there means the
	 * main thread is inside its batch (between arming and the final
	 * first-byte write, where it calls no allocator). */
	nested = rw_test_is_trap(tp_dl_site);
	if (!nested && !atomic_load(&self_signal)) {
		atomic_fetch_add(&h_skipped, 1);
		goto out;
	}
	/* Build the poke without rw_text_encode's help for the old bytes:
	 * only this handler patches tp_sig_site. */
	on = rw_test_is_call(tp_sig_site);
	memset(&p, 0, sizeof(p));
	p.addr = tp_sig_site;
	p.len = L;
	rw_text_encode(on ? RW_TEXT_CALL : RW_TEXT_NOP, tp_sig_site, tp_helper,
		       p.old_insn);
	rw_text_encode(on ? RW_TEXT_NOP : RW_TEXT_CALL, tp_sig_site, tp_helper,
		       p.new_insn);
	r = rw_text_poke_batch(&p, 1);
	if (nested && r == -EDEADLK) {
		atomic_fetch_add(&h_deadlk, 1);
	} else if (!nested && r == 0) {
		atomic_fetch_add(&h_ok, 1);
		if (!on)
			atomic_fetch_add(&h_sig_on, 1);
		else
			atomic_fetch_sub(&h_sig_on, 1);
	} else {
		atomic_fetch_add(&h_bad, 1);
		atomic_store(&h_bad_value, r * 2 + nested);
	}
out:
	errno = saved;
}

/* Sends SIGUSR1 to the main thread when it sees the main thread's site
 * armed, then waits for the handler to have run. */
static void *sender(void *arg)
{
	(void)arg;
	while (!atomic_load(&dl_stop)) {
		long before;
		uint64_t t;

		if (!rw_test_is_trap(tp_dl_site))
			continue;
		before = atomic_load(&h_deadlk) + atomic_load(&h_skipped) +
			 atomic_load(&h_bad) + atomic_load(&h_ok);
		pthread_kill(main_thread, SIGUSR1);
		t = rw_test_now_ns();
		while (atomic_load(&h_deadlk) + atomic_load(&h_skipped) +
				       atomic_load(&h_bad) +
				       atomic_load(&h_ok) ==
			       before &&
		       !atomic_load(&dl_stop) &&
		       rw_test_now_ns() - t < 100000000ull)
			sched_yield();
	}
	return NULL;
}

static void test_edeadlk(void)
{
	struct sigaction sa;
	pthread_t ts;
	uint64_t t0;
	long iters = 0, selfs = 0;
	bool on = false;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	main_thread = pthread_self();
	CHECK_EQ(pthread_create(&ts, NULL, sender, NULL), 0);

	t0 = rw_test_now_ns();
	while (rw_test_now_ns() - t0 < 5000000000ull && iters < 200000 &&
	       (atomic_load(&h_deadlk) < 50 || selfs < 50)) {
		CHECK_OK(poke1(tp_dl_site, on ? RW_TEXT_CALL : RW_TEXT_NOP,
			       tp_helper, on ? RW_TEXT_NOP : RW_TEXT_CALL,
			       tp_helper));
		on = !on;
		iters++;
		if (iters % 16 == 0) {
			/* Not nested: the handler's batch must work. */
			atomic_store(&self_signal, 1);
			pthread_kill(pthread_self(), SIGUSR1);
			atomic_store(&self_signal, 0);
			selfs++;
		}
	}
	atomic_store(&dl_stop, 1);
	pthread_join(ts, NULL);
	if (on)
		CHECK_OK(poke1(tp_dl_site, RW_TEXT_CALL, tp_helper, RW_TEXT_NOP,
			       NULL));
	tp_dl_fn();
	signal(SIGUSR1, SIG_DFL);

	if (atomic_load(&h_bad)) {
		int v = atomic_load(&h_bad_value);

		fprintf(stderr,
			"handler got %d (%s) %s a batch of its thread "
			"(%ld times)\n",
			v >> 1, rw_strerror(v >> 1),
			(v & 1) ? "inside" : "outside", atomic_load(&h_bad));
		exit(1);
	}
	/* The handler's own site reflects its successful batches. */
	CHECK_EQ(rw_test_is_call(tp_sig_site), atomic_load(&h_sig_on) == 1);
	CHECK(atomic_load(&h_ok) >= selfs);
	printf("-EDEADLK: %ld batches, %ld nested calls got -EDEADLK, "
	       "%ld calls outside got 0, %ld signals landed elsewhere\n",
	       iters, atomic_load(&h_deadlk), atomic_load(&h_ok),
	       atomic_load(&h_skipped));
	if (!atomic_load(&h_deadlk))
		printf("note: no signal landed inside a batch in 5 s "
		       "(timing dependent); -EDEADLK not observed\n");
}

/* --- The rest of the header's error table --------------------------------- */

static _Atomic int sys_traps, sys_deadlk, sys_other;

/*
 * SIGSYS: the seccomp filter caught the batch's pwrite64 to /proc/self/mem
 * on the patching thread, inside its batch (text lock held). A batch from
 * here is the documented -EDEADLK case. Then refuse the write with EPERM,
 * as a kernel with proc_mem.force_override=never would.
 */
static void on_sigsys(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	struct rw_text_poke p;

	(void)sig;
	(void)si;
	atomic_fetch_add(&sys_traps, 1);
	memset(&p, 0, sizeof(p));
	p.addr = tp_sig_site;
	p.len = L;
	rw_text_encode(RW_TEXT_NOP, tp_sig_site, NULL, p.old_insn);
	rw_text_encode(RW_TEXT_CALL, tp_sig_site, tp_helper, p.new_insn);
	if (rw_text_poke_batch(&p, 1) == -EDEADLK)
		atomic_fetch_add(&sys_deadlk, 1);
	else
		atomic_fetch_add(&sys_other, 1);
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#else
	uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#endif
}

/* Add a seccomp filter: system call @nr gets @action. */
static int seccomp_add(int nr, unsigned action)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
#if defined(__x86_64__)
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
#else
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, action),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { (unsigned short)RW_ARRAY_LEN(f), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -errno;
	return 0;
}

static int refused_child(void)
{
	struct sigaction sa;
	long c0 = tp_counter;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
	if (seccomp_add(__NR_pwrite64, SECCOMP_RET_TRAP))
		return 77;

	/* /proc/self/mem refused, fallback forbidden: nothing written. */
	rw_text_set_policy(0);
	CHECK_EQ(poke1(tp_site, RW_TEXT_NOP, NULL, RW_TEXT_CALL, tp_helper),
		 -RW_ERR_TEXT_WRITE);
	CHECK(!memcmp(tp_site, nop5, L));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0);
	CHECK_EQ(atomic_load(&sys_traps), 1);
	CHECK_EQ(atomic_load(&sys_deadlk), 1);

	/* Fallback allowed: the batch goes through mprotect. */
	rw_text_set_policy(RW_TEXT_ALLOW_MPROTECT);
	CHECK_OK(poke1(tp_site, RW_TEXT_NOP, NULL, RW_TEXT_CALL, tp_helper));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 1);

	/* mprotect refused too: its error, nothing written. */
	if (seccomp_add(__NR_mprotect, SECCOMP_RET_ERRNO | EACCES))
		return 1;
	CHECK_EQ(poke1(tp_site, RW_TEXT_CALL, tp_helper, RW_TEXT_NOP, NULL),
		 -EACCES);
	CHECK(rw_test_is_call(tp_site));
	CHECK_EQ(tp_fn(), 11);
	CHECK_EQ(tp_counter, c0 + 2);
	CHECK(atomic_load(&sys_traps) >= 3);
	CHECK_EQ(atomic_load(&sys_deadlk), atomic_load(&sys_traps));
	CHECK_EQ(atomic_load(&sys_other), 0);
	return 0;
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* -ENOMEM: the batch's copy of 65536 pokes (3 MiB) cannot be allocated
 * under an address-space limit just above what the child uses. (Not under
 * a sanitizer: its allocator dies instead of returning NULL.) */
static int enomem_child(void)
{
	static struct rw_text_poke big[1 << 16];
	long pages = 0, pg = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "re");
	struct rlimit rl;

	CHECK(f != NULL);
	CHECK_EQ(fscanf(f, "%ld", &pages), 1);
	fclose(f);
	rl.rlim_cur = rl.rlim_max = (rlim_t)(pages * pg + (1 << 20));
	CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
	CHECK_EQ(rw_text_poke_batch(big, RW_ARRAY_LEN(big)), -ENOMEM);
	return 0;
}
#endif

static int in_child(int (*fn)(void))
{
	int st;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0)
		_exit(fn());
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_error_table(void)
{
	int r = in_child(refused_child);

	if (r == 77)
		printf("note: seccomp unavailable; refused writes and "
		       "-EDEADLK not checked here\n");
	else
		CHECK_EQ(r, 0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	printf("note: -ENOMEM not checked under a sanitizer (its allocator "
	       "dies instead of returning NULL)\n");
#else
	CHECK_EQ(in_child(enomem_child), 0);
	printf("error table: -ENOMEM\n");
#endif
	printf("error table: refused write, mprotect error, -EDEADLK\n");
}

/* The generic backend has no code patching. */
static void test_generic(void)
{
	struct rw_text_poke p = { .addr = tp_site, .len = L };
	uint8_t b[RW_TEXT_INSN_MAX];

	memcpy(p.old_insn, nop5, L);
	memcpy(p.new_insn, nop5, L);
	CHECK_EQ(rw_text_encode(RW_TEXT_NOP, tp_site, NULL, b), -ENOSYS);
	CHECK_EQ(rw_text_poke_batch(&p, 1), -ENOSYS);
	CHECK_EQ(rw_text_poke_batch(&p, 0), 0);
	CHECK_EQ(rw_text_poke_batch(NULL, 1), -EINVAL);
	printf("generic backend: -ENOSYS\n");
}

static void test_strerror(void)
{
	static const int codes[] = { RW_ERR_THREAD_TIMEOUT,
				     RW_ERR_BAD_INSN,
				     RW_ERR_OUT_OF_RANGE,
				     RW_ERR_TEXT_WRITE,
				     EILSEQ,
				     EDEADLK,
				     RW_ERR_NO_PROC,
				     RW_ERR_NOT_DUMPABLE,
				     EMFILE,
				     ENFILE };
	const size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		const char *a = rw_strerror(-codes[i]);

		CHECK(a != NULL && a[0]);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(a, rw_strerror(-codes[j])) != 0);
	}
	CHECK(rw_strerror(-RW_ERR_MAX) != NULL);
	CHECK(rw_strerror(-RW_ERR_BASE) != NULL);
	CHECK(rw_strerror(12345678) != NULL);
}

int main(void)
{
	test_strerror();
#ifndef RW_BACKEND_PATCHING
	test_generic();
	return 0;
#else
	(void)test_generic;
#endif
	/* Each part's time: the emulated aarch64 machine is slow, and a
	 * timeout should say where. */
#define TIMED(f)                                                \
	do {                                                    \
		uint64_t t0_ = rw_test_now_ns();                \
		f();                                            \
		printf("  %-18s %8.1f ms\n", #f,                \
		       (double)(rw_test_now_ns() - t0_) / 1e6); \
	} while (0)
	setvbuf(stdout, NULL, _IOLBF, 0);
	TIMED(test_encode);
	TIMED(test_one_site);
	TIMED(test_batch);
	TIMED(test_errors);
	TIMED(test_error_table);
	TIMED(test_wx);
	TIMED(test_edeadlk);
#undef TIMED
	printf("text poke: ok\n");
	return 0;
}
