/* SPDX-License-Identifier: MIT */
/*
 * Integration: the entry layouts of each machine, and what a uprobe does
 * on each (issue 12, point 8(c); doc/LIVEPATCH.md, "Uprobes").
 *
 * x86-64. rewire-entries (the post-link step of rewire_target_patchable)
 * rewrites a file's patchable entries from GCC's five 1-byte NOPs to one
 * 5-byte NOP. This program and liblpe_fix.so went through it,
 * liblpe_keep.so did not (an old binary). The test checks:
 *   - the entries as mapped: le_plain() 0f 1f 44 00 00 at +0, le_cet()
 *     an endbr64 then the 5-byte NOP, lpe_fix_fn() the 5-byte NOP,
 *     lpe_keep_fn() 90 90 90 90 90;
 *   - one patch of all four enables (the calls return the new results)
 *     and disables with every entry restored byte for byte, twice;
 *   - a uprobe, simulated without the kernel: the kernel puts an int3 on
 *     an instruction of the entry as the FILE has it (the bytes before the
 *     patch: the text is mapped from the file) and, when hit, runs that
 *     instruction and resumes after it. On each patched entry, for a
 *     uprobe at FUNC+0 and at each instruction of the NOPs, the resume
 *     point must be rewire's jmp (after an endbr64: the new function
 *     runs) or just after it (the old body runs: no crash, but not the
 *     patch). It is for every rewritten entry; for lpe_keep_fn() it is
 *     FUNC+1, inside the jmp: the SIGILL of issue 12, which the test
 *     asserts so that the simulation is known to see it;
 *   - the tool on a copy of liblpe_keep.so: rewrites, is idempotent (a
 *     second run changes no byte), and refuses a file with an int3 at an
 *     entry, writing nothing.
 *
 * aarch64. The entry is -fpatchable-function-entry=2's two NOP
 * instructions, recorded in __patchable_function_entries; rewire writes a
 * B over the first and never the second (src/arch/entry_arch.h). The
 * program is built with -mbranch-protection=standard (-fcf-protection, as
 * on x86-64); each function picks its layout with the patchable_function_
 * entry and target("branch-protection=none") attributes. The layouts
 * rewire takes, patched by one patch with the libraries' functions:
 *   le_plain     NOP; NOP                 (no landing pad)
 *   le_bti       BTI C; NOP; NOP
 *   le_pac       BTI C; NOP; NOP; PACIASP (pac-ret: signs after the entry)
 *   le_nop3      BTI C; NOP; NOP; NOP     (=3: the third is the body's)
 *   lpe_keep_fn, lpe_fix_fn  NOP; NOP in a shared library (no rewrite:
 *                the same file either way)
 * and the ones it refuses, each named in a patch of its own that
 * rw_patch_load() turns down with RW_ERR_NOT_PATCHABLE and a message,
 * leaving the function as it was:
 *   le_pre42       NOP; NOP | BTI C; NOP; NOP  (=4,2: GCC's M,N form, the
 *                  entry recorded is the first NOP before the symbol)
 *   le_pre42_plain NOP; NOP | NOP; NOP          (the same, no BTI)
 *   le_pre31       NOP | BTI C; NOP; NOP        (=3,1)
 *   le_one         BTI C; NOP                   (=1: one NOP)
 *   le_none        BTI C                        (=0: no entry)
 * For the patched ones, twice: enabled, the calls return the new results,
 * the first NOP is a B to the new function (directly or through a far
 * stub) and nothing else in the entry changed (the BTI, the second NOP);
 * disabled, the entry is the file's again, byte for byte. The uprobe
 * simulation: every instruction is 4 bytes, so the resume point of a
 * uprobe on any instruction of the entry (probe + 4) must be the start of
 * an instruction of the patched entry, never inside what rewire wrote
 * (it would be if rewire wrote more than one instruction there); a uprobe
 * on the BTI resumes on rewire's B (the new function runs). rewire-entries
 * on an aarch64 file has nothing to rewrite: exit 0, the file unchanged.
 *
 * A real uprobe needs tracefs and privileges this test does not assume:
 * test_lp_entries_uprobe.sh does that part where the kernel allows it.
 */
#include <rewire/config.h>

#include "check.h"

#if !defined(RW_BACKEND_X86_64) && !defined(RW_BACKEND_AARCH64)
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include <rewire/livepatch.h>

#include "lp_test.h"

#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OLD(x) ((x) + 1000)
#define NEW(x) ((x) + 2000)

int lpe_keep_fn(int x);
int lpe_fix_fn(int x);

static void run_tool(const char *arg1, const char *arg2, int expect)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();

	CHECK(pid >= 0);
	if (!pid) {
		execl(LPE_TOOL, LPE_TOOL, arg1, arg2, (char *)NULL);
		_exit(127);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), expect);
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	CHECK(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_EQ(n, 0);
	close(in);
	close(out);
}

static bool same_file(const char *a, const char *b)
{
	char ba[65536], bb[65536];
	int fa = open(a, O_RDONLY | O_CLOEXEC),
	    fb = open(b, O_RDONLY | O_CLOEXEC);
	bool same = true;
	ssize_t na, nb;

	CHECK(fa >= 0 && fb >= 0);
	do {
		na = read(fa, ba, sizeof(ba));
		nb = read(fb, bb, sizeof(bb));
		if (na != nb || (na > 0 && memcmp(ba, bb, (size_t)na)))
			same = false;
	} while (same && na > 0);
	close(fa);
	close(fb);
	return same;
}

#if defined(RW_BACKEND_X86_64)

__attribute__((nocf_check)) int le_plain(int x);
int le_cet(int x);

__attribute__((noinline, noipa, nocf_check)) int le_plain(int x)
{
	return OLD(x);
}

__attribute__((noinline, noipa)) int le_cet(int x)
{
	return OLD(x);
}

/* le_plain's type is nocf_check: called through this. */
static int call_plain(int x)
{
	return le_plain(x);
}

static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
static const uint8_t nop5[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 };
static const uint8_t nops1[5] = { 0x90, 0x90, 0x90, 0x90, 0x90 };

struct fn {
	const char *name;
	uintptr_t addr;
	int (*call)(int);
	bool rewritten;	 /* expected layout */
	uint8_t file[9]; /* the entry as the file has it */
	size_t sled;	 /* offset of the NOPs: 0, or 4 after endbr64 */
};

/* Length of the instruction at @p of an entry, as the kernel decodes it:
 * only what an entry holds (endbr64, NOPs, jmp rel32). */
static size_t insn_len(const uint8_t *p)
{
	if (!memcmp(p, endbr64, 4))
		return 4;
	if (!memcmp(p, nop5, 5) || p[0] == 0xe9)
		return 5;
	if (p[0] == 0x90)
		return 1;
	fprintf(stderr, "unexpected entry byte %02x\n", p[0]);
	exit(1);
}

/*
 * A uprobe at @f + @probe: the kernel runs the FILE's instruction there
 * and resumes after it. Where does that land in the patched entry? On the
 * jmp (the new function runs), just after it (the old body runs: no
 * crash, but not the patch), or inside it (a crash, or worse: garbage).
 * Returns false for inside.
 */
static bool uprobe_resumes_right(const struct fn *f, size_t probe)
{
	const uint8_t *mem = (const uint8_t *)f->addr;
	size_t len = insn_len(f->file + probe), resume = probe + len;
	const char *what;

	CHECK_EQ(mem[f->sled], 0xe9);
	if (resume == f->sled)
		what = "rewire's jmp: the new function runs";
	else if (resume == f->sled + 5)
		what = "after rewire's jmp: the old body runs, no crash";
	else
		what = "INSIDE rewire's jmp: a crash";
	printf("  uprobe at %s+%zu: the file's instruction is %zu byte(s), "
	       "resumes at +%zu, %s\n",
	       f->name, probe, len, resume, what);
	return resume == f->sled || resume == f->sled + 5;
}

/* The file offset of @addr in the object mapped from a file. */
struct off_query {
	uintptr_t addr;
	off_t off;
};

static int off_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct off_query *q = arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && q->addr >= start &&
		    q->addr < start + ph->p_filesz) {
			q->off = (off_t)(ph->p_offset + (q->addr - start));
			return 1;
		}
	}
	return 0;
}

static void tool_checks(const struct fn *keep)
{
	char dir[] = "/tmp/lpe.XXXXXX", a[64], b[64], c[64];
	struct off_query q = { .addr = keep->addr + keep->sled, .off = -1 };
	uint8_t cc = 0xcc;
	int fd;

	CHECK(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.so", dir);
	snprintf(b, sizeof(b), "%s/b.so", dir);
	snprintf(c, sizeof(c), "%s/c.so", dir);
	dl_iterate_phdr(off_cb, &q);
	CHECK(q.off > 0);

	/* Rewrites, then changes nothing. */
	copy_file(LPE_KEEP_LIB, a);
	run_tool("--check", a, 3);
	run_tool(a, NULL, 0);
	run_tool("--check", a, 0);
	copy_file(a, b);
	run_tool(b, NULL, 0);
	CHECK(same_file(a, b));
	fd = open(a, O_RDONLY | O_CLOEXEC);
	{
		uint8_t now[5];

		CHECK_EQ(pread(fd, now, 5, q.off), 5);
		CHECK(!memcmp(now, nop5, 5));
	}
	close(fd);

	/* An int3 in an entry of the file: refused, nothing written. */
	copy_file(LPE_KEEP_LIB, c);
	fd = open(c, O_WRONLY | O_CLOEXEC);
	CHECK_EQ(pwrite(fd, &cc, 1, q.off + 2), 1);
	close(fd);
	copy_file(c, b);
	run_tool(c, NULL, 1);
	CHECK(same_file(c, b));

	unlink(a);
	unlink(b);
	unlink(c);
	rmdir(dir);
	printf("  rewire-entries: rewrites, idempotent, refuses an int3\n");
}

int main(void)
{
	struct fn fns[] = {
		{ "le_plain", (uintptr_t)le_plain, call_plain, true, { 0 }, 0 },
		{ "le_cet", (uintptr_t)le_cet, le_cet, true, { 0 }, 0 },
		{ "lpe_fix_fn",
		  (uintptr_t)lpe_fix_fn,
		  lpe_fix_fn,
		  true,
		  { 0 },
		  0 },
		{ "lpe_keep_fn",
		  (uintptr_t)lpe_keep_fn,
		  lpe_keep_fn,
		  false,
		  { 0 },
		  0 },
	};
	const size_t n = sizeof(fns) / sizeof(fns[0]);
	char path[512];
	struct rw_patch *p = NULL;

	for (size_t i = 0; i < n; i++) {
		struct fn *f = &fns[i];

		memcpy(f->file, (const void *)f->addr, sizeof(f->file));
		f->sled = memcmp(f->file, endbr64, 4) ? 0 : 4;
		printf("%s: %s%s\n", f->name, f->sled ? "endbr64, " : "",
		       !memcmp(f->file + f->sled, nop5, 5) ? "one 5-byte NOP"
		       : !memcmp(f->file + f->sled, nops1, 5)
			       ? "five 1-byte NOPs"
			       : "something else");
		CHECK(!memcmp(f->file + f->sled, f->rewritten ? nop5 : nops1,
			      5));
		CHECK_EQ(f->call(1), OLD(1));
	}
	if (!fns[1].sled)
		fprintf(stderr, "note: le_cet has no endbr64\n");
	CHECK_EQ(fns[0].sled, 0);

	snprintf(path, sizeof(path), "%s/lp_entries.so", LPE_DIR);
	CHECK_OK(rw_patch_load(path, 0, &p));
	for (int round = 0; round < 2; round++) {
		CHECK_OK(rw_patch_enable(p));
		CHECK_OK(rw_patch_wait(p, 10000));
		for (size_t i = 0; i < n; i++) {
			const struct fn *f = &fns[i];
			bool ok = true;

			CHECK_EQ(f->call(2), NEW(2));
			for (size_t probe = 0; probe < f->sled + 5;
			     probe += insn_len(f->file + probe))
				ok &= uprobe_resumes_right(f, probe);
			CHECK_EQ(ok, f->rewritten);
			/* With an endbr64, a uprobe on the function itself
			 * (FUNC+0) reaches the new function. */
			if (f->sled)
				CHECK_EQ(insn_len(f->file), 4);
		}
		CHECK_OK(rw_patch_disable(p));
		CHECK_OK(rw_patch_wait(p, 10000));
		for (size_t i = 0; i < n; i++) {
			CHECK(!memcmp((const void *)fns[i].addr, fns[i].file,
				      sizeof(fns[i].file)));
			CHECK_EQ(fns[i].call(3), OLD(3));
		}
	}
	CHECK_OK(rw_patch_unload(p));

	tool_checks(&fns[3]);
	printf("entries: both layouts patched and restored exactly; only "
	       "the 5-byte NOP is safe under a uprobe\n");
	return 0;
}

#else /* RW_BACKEND_AARCH64 */

#define A64_NOP 0xd503201fu
#define A64_BTI_C 0xd503245fu
#define A64_PACIASP 0xd503233fu

/* The program's functions, one per layout (see the top of the file). */
#define LE_FN __attribute__((noinline, noipa, used))
#define NO_BTI __attribute__((target("branch-protection=none")))
#define PFE(m, n) __attribute__((patchable_function_entry(m, n)))

int le_plain(int x);
int le_bti(int x);
int le_pac(int x);
int le_nop3(int x);
int le_pre42(int x);
int le_pre42_plain(int x);
int le_pre31(int x);
int le_one(int x);
int le_none(int x);

LE_FN NO_BTI int le_plain(int x)
{
	return OLD(x);
}

LE_FN int le_bti(int x)
{
	return OLD(x);
}

/* A call that is not a tail call: le_pac saves its return address,
 * signed (PACIASP). */
static LE_FN int le_callee(int x)
{
	return OLD(x);
}

LE_FN int le_pac(int x)
{
	int r = le_callee(x);

	__asm__ volatile("" : "+r"(r));
	return r;
}

LE_FN PFE(3, 0) int le_nop3(int x)
{
	return OLD(x);
}

LE_FN PFE(4, 2) int le_pre42(int x)
{
	return OLD(x);
}

LE_FN NO_BTI PFE(4, 2) int le_pre42_plain(int x)
{
	return OLD(x);
}

LE_FN PFE(3, 1) int le_pre31(int x)
{
	return OLD(x);
}

LE_FN PFE(1, 0) int le_one(int x)
{
	return OLD(x);
}

LE_FN PFE(0, 0) int le_none(int x)
{
	return OLD(x);
}

/* The file's words from before the symbol, as compared: PRE words before
 * it, WORDS from it. */
#define PRE 2
#define WORDS 4
#define ANY 0u	/* not checked */
#define BODY 1u /* the body's first instruction: not a NOP, not a BTI */

struct fn {
	const char *name;
	uintptr_t addr;
	int (*call)(int);
	uint32_t want[PRE + WORDS]; /* the layout */
	const char *refusal;	    /* NULL: patchable; else the message */
	uint32_t file[PRE + WORDS]; /* read at the start */
	size_t sled;		    /* offset of the NOPs: 0, or 4 */
	uintptr_t new_fn;	    /* the patch's */
};

static uint32_t word_at(uintptr_t at)
{
	return *(const volatile uint32_t *)at;
}

static void read_words(const struct fn *f, uint32_t out[PRE + WORDS])
{
	for (int i = 0; i < PRE + WORDS; i++)
		out[i] = word_at(f->addr + 4 * (uintptr_t)i - 4 * PRE);
}

static const char *insn_name(uint32_t w)
{
	switch (w) {
	case A64_NOP:
		return "NOP";
	case A64_BTI_C:
		return "BTI C";
	case A64_PACIASP:
		return "PACIASP";
	default:
		return (w & 0xfc000000u) == 0x14000000u ? "B" : "-";
	}
}

static void print_words(const char *what, const struct fn *f,
			const uint32_t w[PRE + WORDS])
{
	printf("  %s %s:", f->name, what);
	for (int i = 0; i < PRE + WORDS; i++)
		printf("%s %s", i == PRE ? " |" : "", insn_name(w[i]));
	printf("\n");
}

/* The layout the compiler gave @f is the one the test is about. */
static void check_layout(struct fn *f)
{
	read_words(f, f->file);
	print_words("as built", f, f->file);
	for (int i = 0; i < PRE + WORDS; i++) {
		if (f->want[i] == ANY)
			continue;
		if (f->want[i] == BODY
			    ? f->file[i] == A64_NOP || f->file[i] == A64_BTI_C
			    : f->file[i] != f->want[i]) {
			fprintf(stderr,
				"%s: word %d from the symbol is %08x (%s), "
				"not the layout the test is about\n",
				f->name, i - PRE, (unsigned)f->file[i],
				insn_name(f->file[i]));
			exit(1);
		}
	}
	f->sled = f->file[PRE] == A64_BTI_C ? 4 : 0;
	CHECK_EQ(f->call(1), OLD(1));
}

/*
 * A uprobe at @f + @probe, simulated: the kernel runs the FILE's
 * instruction there (4 bytes, as every instruction) and resumes at
 * @probe + 4. Where does that land in the patched entry? On rewire's B
 * (the new function runs), after it (the old body runs: no crash, but not
 * the patch), or inside what rewire wrote, which on aarch64 can only be
 * if it wrote more than the one instruction: false then.
 */
static bool uprobe_resumes_right(const struct fn *f, size_t probe,
				 size_t written)
{
	size_t resume = probe + 4;
	const char *what;

	if (resume == f->sled)
		what = "rewire's B: the new function runs";
	else if (resume >= f->sled + written)
		what = "after rewire's B: the old body runs, no crash";
	else
		what = "INSIDE what rewire wrote: a crash";
	printf("  uprobe at %s+%zu: resumes at +%zu, %s\n", f->name, probe,
	       resume, what);
	return resume <= f->sled || resume >= f->sled + written;
}

/* Enabled: the first NOP is a B to the new function (or to a far stub to
 * it), nothing else changed; returns how many bytes rewire wrote from the
 * sled (4). */
static size_t check_patched(const struct fn *f)
{
	uint32_t now[PRE + WORDS];
	uintptr_t sled = f->addr + f->sled;
	size_t written = 0;

	read_words(f, now);
	print_words("enabled ", f, now);
	CHECK_EQ(lp_entry_target(f->addr), f->new_fn);
	for (int i = 0; i < PRE + WORDS; i++) {
		uintptr_t at = f->addr + 4 * (uintptr_t)i - 4 * PRE;

		if (now[i] == f->file[i])
			continue;
		/* Only the sled's first word, and nothing before it. */
		CHECK_EQ(at, sled);
		written = at + 4 - sled;
	}
	CHECK_EQ(written, 4);
	CHECK_EQ(word_at(sled + 4), A64_NOP);
	return written;
}

static void tool_checks(void)
{
	char dir[] = "/tmp/lpe.XXXXXX", a[64];

	CHECK(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.so", dir);
	/* Nothing to rewrite: done, and not a byte changed. */
	copy_file(LPE_KEEP_LIB, a);
	run_tool("--check", a, 0);
	run_tool(a, NULL, 0);
	CHECK(same_file(a, LPE_KEEP_LIB));
	unlink(a);
	rmdir(dir);
	printf("  rewire-entries: an aarch64 file has nothing to rewrite\n");
}

/* The patch of @f alone (lpe_refuse_NAME.so) is turned down. */
static void check_refused(const struct fn *f)
{
	char path[512];
	struct rw_patch *p = NULL;
	uint32_t now[PRE + WORDS];
	const char *msg;
	int err;

	snprintf(path, sizeof(path), "%s/lpe_refuse_%s.so", LPE_DIR, f->name);
	err = rw_patch_load(path, 0, &p);
	msg = rw_patch_last_error();
	printf("  %s: %s: %s\n", f->name, rw_strerror(err), msg);
	CHECK_EQ(err, -RW_ERR_NOT_PATCHABLE);
	CHECK(p == NULL);
	lp_has_all(msg, f->name);
	lp_has_all(msg, f->refusal);
	read_words(f, now);
	CHECK(!memcmp(now, f->file, sizeof(now)));
	CHECK_EQ(f->call(4), OLD(4));
}

/* A function of the table: its name, its layout, its refusal. */
#define FN(f, why, ...)                                      \
	{                                                    \
		.name = #f, .addr = (uintptr_t)f, .call = f, \
		.want = { __VA_ARGS__ }, .refusal = why,     \
	}

int main(void)
{
	const uint32_t N = A64_NOP, T = A64_BTI_C, P = A64_PACIASP;
	const char *none = "has no patchable entry";
	const char *one = "has no two NOPs at its entry";
	struct fn fns[] = {
		/* Taken: words -8, -4 | +0, +4, +8, +12. */
		FN(le_plain, NULL, ANY, ANY, N, N, BODY),
		FN(le_bti, NULL, ANY, ANY, T, N, N, BODY),
		FN(le_pac, NULL, ANY, ANY, T, N, N, P),
		FN(le_nop3, NULL, ANY, ANY, T, N, N, N),
		FN(lpe_keep_fn, NULL, ANY, ANY, N, N, BODY),
		FN(lpe_fix_fn, NULL, ANY, ANY, N, N, BODY),
		/* Refused. */
		FN(le_pre42, none, N, N, T, N, N, BODY),
		FN(le_pre42_plain, none, N, N, N, N, BODY),
		FN(le_pre31, none, ANY, N, T, N, N, BODY),
		FN(le_one, one, ANY, ANY, T, N, BODY),
		FN(le_none, none, ANY, ANY, T, BODY),
	};
	const size_t n = sizeof(fns) / sizeof(fns[0]);
	char path[512];
	struct rw_patch *p = NULL;
	size_t npatched = 0;

	for (size_t i = 0; i < n; i++)
		check_layout(&fns[i]);

	printf("refused:\n");
	for (size_t i = 0; i < n; i++)
		if (fns[i].refusal)
			check_refused(&fns[i]);

	snprintf(path, sizeof(path), "%s/lp_entries.so", LPE_DIR);
	p = lp_load(path, 0);
	for (size_t i = 0; i < n; i++)
		if (!fns[i].refusal)
			fns[i].new_fn = lp_new_func_of(path, npatched++);
	for (int round = 0; round < 2; round++) {
		printf("round %d:\n", round + 1);
		CHECK_OK(rw_patch_enable(p));
		CHECK_OK(rw_patch_wait(p, 10000 * (int)rw_test_time_scale()));
		for (size_t i = 0; i < n; i++) {
			const struct fn *f = &fns[i];
			size_t written;
			bool ok = true;

			if (f->refusal)
				continue;
			CHECK_EQ(f->call(2), NEW(2));
			written = check_patched(f);
			for (size_t probe = 0; probe < f->sled + 8; probe += 4)
				ok &= uprobe_resumes_right(f, probe, written);
			CHECK(ok);
			/* With a BTI, a uprobe on the function itself (FUNC+0)
			 * resumes on the B: the new function runs. */
			if (f->sled)
				CHECK(lp_rel32_target(f->addr + 4) != 0);
		}
		CHECK_OK(rw_patch_disable(p));
		CHECK_OK(rw_patch_wait(p, 10000 * (int)rw_test_time_scale()));
		for (size_t i = 0; i < n; i++) {
			uint32_t now[PRE + WORDS];

			read_words(&fns[i], now);
			CHECK(!memcmp(now, fns[i].file, sizeof(now)));
			CHECK_EQ(fns[i].call(3), OLD(3));
		}
	}
	CHECK_OK(rw_patch_unload(p));

	tool_checks();
	printf("entries: NOP; NOP with or without BTI C (and PACIASP or a "
	       "third NOP after them) patched and restored exactly, safe "
	       "under a uprobe; M,N forms and fewer than two NOPs refused\n");
	return 0;
}

#endif /* RW_BACKEND_X86_64 */
#endif
