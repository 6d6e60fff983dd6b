/* SPDX-License-Identifier: MIT */
/*
 * Integration: the two entry layouts, and what a uprobe does on each
 * (issue 12, point 8(c); doc/LIVEPATCH.md, "Uprobes").
 *
 * rewire-entries (the post-link step of rewire_target_patchable) rewrites
 * a file's patchable entries from GCC's five 1-byte NOPs to one 5-byte NOP.
 * This program and liblpe_fix.so went through it, liblpe_keep.so did not
 * (an old binary). The test checks:
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
 * A real uprobe needs tracefs and privileges this test does not assume:
 * test_lp_entries_uprobe.sh does that part where the kernel allows it.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_X86_64
/* aarch64 has one entry layout: each of its two NOPs is one instruction,
 * so no tool rewrites it and a uprobe on either NOP resumes on an
 * instruction boundary (test_lp_breakpoint covers the uprobe's BRK). */
int main(void)
{
#if defined(RW_BACKEND_PATCHING)
	SKIP("x86-64's two entry layouts (five 1-byte NOPs or one 5-byte "
	     "NOP): aarch64's entry is two 4-byte NOPs, nothing to rewrite");
#else
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
#endif
}
#else

#include <rewire/livepatch.h>

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
#endif
