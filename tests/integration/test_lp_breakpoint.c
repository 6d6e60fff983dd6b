/* SPDX-License-Identifier: MIT */
/*
 * Integration: another tool's breakpoint in a patchable entry (issue 12,
 * point 8). A uprobe (bpftrace, perf probe) or a debugger writes its trap
 * (x86-64: int3, 0xcc, over the first byte of an instruction; aarch64: a
 * BRK over a whole instruction, here gdb's BRK #0) into the running code.
 * rewire must not patch over it: it refuses with -RW_ERR_BREAKPOINT and a
 * message that names the place ("bp_plain+0") instead of "0 NOP bytes,
 * build with -fpatchable-function-entry", and leaves the program as it
 * was.
 *
 * The test writes the trap itself, through /proc/self/mem as the kernel's
 * uprobe and ptrace do (a copy of the page, the rest unchanged):
 *   - at bp_plain+0 (no landing pad: the first NOP), at bp_plain+2 (x86:
 *     a NOP byte inside the run) or +4 (aarch64: the second NOP) and at
 *     bp_cet+0 (over the endbr64 / BTI c): loading the patch fails with
 *     -RW_ERR_BREAKPOINT, the entry is untouched;
 *   - on a patched entry (rewire's jmp / B, a uprobe placed after the
 *     patch): disabling fails with -RW_ERR_BREAKPOINT, the patch stays
 *     enabled and the entry stays as it was; once the trap is gone, the
 *     disable restores the entry's original instructions exactly;
 *   - rw_text_poke_batch on a site holding a foreign trap says
 *     -RW_ERR_BREAKPOINT, not -EILSEQ.
 */
#include <rewire/config.h>

#include "check.h"
#include "insn.h"

#ifndef RW_BACKEND_PATCHING
int main(void)
{
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
}
#else

#include <rewire/livepatch.h>
#include <rewire/text_poke.h>

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#define OLD(x) ((x) + 1000)
#define NEW(x) ((x) + 2000)

#if defined(__aarch64__)
/* Another tool's trap: gdb's BRK #0 over a whole instruction (a uprobe's
 * is BRK #5), at +0 and on the second NOP. */
#define NO_PAD __attribute__((target("branch-protection=none")))
#define FOREIGN_LEN 4
#define SECOND_NOP 4
static const uint8_t foreign[FOREIGN_LEN] = { 0x00, 0x00, 0x20, 0xd4 };
static const uint8_t landing_pad[4] = { 0x5f, 0x24, 0x03, 0xd5 }; /* BTI c */
#define PAD_NAME "BTI c"
#else
/* Another tool's trap: int3 over an instruction's first byte, at +0 and
 * on a byte inside the NOP run. */
#define NO_PAD __attribute__((nocf_check))
#define FOREIGN_LEN 1
#define SECOND_NOP 2
static const uint8_t foreign[FOREIGN_LEN] = { 0xcc };
static const uint8_t landing_pad[4] = { 0xf3, 0x0f, 0x1e, 0xfa }; /* endbr64 */
#define PAD_NAME "endbr64"
#endif

NO_PAD int bp_plain(int x);
int bp_cet(int x);

/* No landing pad: the entry starts with the NOPs. */
__attribute__((noinline, noipa)) NO_PAD int bp_plain(int x)
{
	return OLD(x);
}

/* Built with -fcf-protection (aarch64: -mbranch-protection=standard): a
 * landing pad, then the NOPs. */
__attribute__((noinline, noipa)) int bp_cet(int x)
{
	return OLD(x);
}

/* A site of the generic batch: a NOP, then ret. */
void bp_site(void);
__asm__(".pushsection .text\n\t"
	".globl bp_site\n\t"
	".type bp_site, %function\n\t"
	".p2align 2\n"
	"bp_site:\n\t" RW_TEST_NOP_ASM "\n\t"
	"ret\n\t"
	".size bp_site, .-bp_site\n\t"
	".popsection");

static void poke(uintptr_t addr, const uint8_t *b, size_t n)
{
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, b, n, (off_t)addr), (ssize_t)n);
	close(fd);
#if defined(__aarch64__)
	/* What a debugger's write does not need on x86-64: this thread runs
	 * the code it just wrote. */
	__builtin___clear_cache((char *)addr, (char *)addr + n);
#endif
}

static void poke_foreign(uintptr_t addr)
{
	poke(addr, foreign, FOREIGN_LEN);
}

static void expect_refused(const char *patch, const char *where)
{
	char path[512];
	struct rw_patch *p = NULL;
	int err;

	snprintf(path, sizeof(path), "%s/%s", LP_BP_DIR, patch);
	err = rw_patch_load(path, 0, &p);
	fprintf(stderr, "load %s with a foreign trap at %s: %d (%s): %s\n", patch,
		where, err, rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, -RW_ERR_BREAKPOINT);
	CHECK(p == NULL);
	CHECK(strstr(rw_patch_last_error(), where));
	CHECK(strstr(rw_patch_last_error(), "remove it first"));
}

int main(void)
{
	const uintptr_t plain = (uintptr_t)bp_plain, cet = (uintptr_t)bp_cet;
	uint8_t orig[12], now[12], patched[12];
	char path[512], at[64];
	struct rw_patch *p = NULL;
	bool has_pad = !memcmp((const void *)cet, landing_pad, 4);

	/* A trap on the first NOP, then inside the run. */
	memcpy(orig, (const void *)plain, sizeof(orig));
	poke_foreign(plain);
	expect_refused("lp_bp_plain.so", "bp_plain+0");
	memcpy(now, (const void *)plain, sizeof(now));
	CHECK(!memcmp(now, foreign, FOREIGN_LEN));
	CHECK(!memcmp(now + FOREIGN_LEN, orig + FOREIGN_LEN,
		      sizeof(now) - FOREIGN_LEN));
	poke(plain, orig, FOREIGN_LEN);
	poke_foreign(plain + SECOND_NOP);
	snprintf(at, sizeof(at), "bp_plain+%d", SECOND_NOP);
	expect_refused("lp_bp_plain.so", at);
	poke(plain + SECOND_NOP, orig + SECOND_NOP, FOREIGN_LEN);
	CHECK(!memcmp((const void *)plain, orig, sizeof(orig)));
	CHECK_EQ(bp_plain(1), OLD(1));

	/* Over the landing pad (where a uprobe on the function goes). */
	if (has_pad) {
		uint8_t c[12];

		memcpy(c, (const void *)cet, sizeof(c));
		poke_foreign(cet);
		expect_refused("lp_bp_cet.so", "bp_cet+0");
		poke(cet, c, FOREIGN_LEN);
		CHECK(!memcmp((const void *)cet, c, sizeof(c)));
	} else {
		fprintf(stderr,
			"note: bp_cet has no %s (no -fcf-protection?): "
			"its case not run\n",
			PAD_NAME);
	}

	/* A trap placed after the patch: on rewire's jump. */
	snprintf(path, sizeof(path), "%s/lp_bp_plain.so", LP_BP_DIR);
	CHECK_OK(rw_patch_load(path, 0, &p));
	CHECK_OK(rw_patch_enable(p));
	CHECK_OK(rw_patch_wait(p, 10000));
	CHECK_EQ(bp_plain(1), NEW(1));
	memcpy(patched, (const void *)plain, sizeof(patched));
	CHECK(rw_test_is_jmp(patched));
	poke_foreign(plain);
	{
		int err = rw_patch_disable(p);
		struct rw_patch_info info;

		fprintf(stderr,
			"disable with a foreign trap on the jump: %d (%s): "
			"%s\n",
			err, rw_strerror(err), rw_patch_last_error());
		CHECK_EQ(err, -RW_ERR_BREAKPOINT);
		CHECK(strstr(rw_patch_last_error(), "bp_plain+0"));
		CHECK_OK(rw_patch_state(p, &info));
		CHECK_EQ(info.state, RW_PATCH_ENABLED);
	}
	CHECK(!memcmp((const void *)plain, foreign, FOREIGN_LEN));
	CHECK(!memcmp((const uint8_t *)plain + FOREIGN_LEN,
		      patched + FOREIGN_LEN, sizeof(patched) - FOREIGN_LEN));
	poke(plain, patched, FOREIGN_LEN);
	CHECK_EQ(bp_plain(1), NEW(1));
	CHECK_OK(rw_patch_disable(p));
	CHECK_OK(rw_patch_wait(p, 10000));
	CHECK(!memcmp((const void *)plain, orig, sizeof(orig)));
	CHECK_EQ(bp_plain(1), OLD(1));
	CHECK_OK(rw_patch_unload(p));

	/* The generic batch: a NOP site with another tool's trap. */
	{
		const uintptr_t site = (uintptr_t)bp_site;
		struct rw_text_poke tp = { .addr = (void *)site,
					   .len = RW_TEST_INSN };
		int err;

		CHECK_EQ(rw_text_encode(RW_TEXT_NOP, tp.addr, NULL,
					tp.old_insn),
			 RW_TEST_INSN);
		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, tp.addr,
					(const void *)(site + RW_TEST_INSN),
					tp.new_insn),
			 RW_TEST_INSN);
		poke_foreign(site);
		err = rw_text_poke_batch(&tp, 1);
		fprintf(stderr, "batch with a foreign trap at the site: %d "
				"(%s)\n",
			err, rw_strerror(err));
		CHECK_EQ(err, -RW_ERR_BREAKPOINT);
		CHECK(!memcmp((const void *)site, foreign, FOREIGN_LEN));
		poke(site, rw_test_nop, FOREIGN_LEN);
		CHECK(!memcmp((const void *)site, tp.old_insn, RW_TEST_INSN));
	}
	CHECK_EQ(bp_plain(2), OLD(2));
	printf("breakpoints: refused with RW_ERR_BREAKPOINT, nothing "
	       "changed\n");
	return 0;
}
#endif
