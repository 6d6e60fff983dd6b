/* SPDX-License-Identifier: MIT */
/*
 * Integration: another tool's breakpoint in a patchable entry (issue 12,
 * point 8). A uprobe (bpftrace, perf probe) or a debugger writes an int3
 * (0xcc) over the first byte of an instruction of the running code. rewire
 * must not patch over it: it refuses with -RW_ERR_BREAKPOINT and a message
 * that names the place ("bp_plain+0") instead of "0 NOP bytes, build with
 * -fpatchable-function-entry", and leaves the program as it was.
 *
 * The test writes the int3 itself, through /proc/self/mem as the kernel's
 * uprobe and ptrace do (a copy of the page, the rest unchanged):
 *   - at bp_plain+0 (no endbr64: the first NOP), at bp_plain+2 (a NOP
 *     inside the run) and at bp_cet+0 (over the endbr64): loading the
 *     patch fails with -RW_ERR_BREAKPOINT, the entry bytes are untouched;
 *   - on a patched entry (rewire's jmp, a uprobe placed after the patch):
 *     disabling fails with -RW_ERR_BREAKPOINT, the patch stays enabled and
 *     the bytes stay as they were; once the int3 is gone, the disable
 *     restores the entry's original bytes exactly;
 *   - rw_text_poke_batch on a site holding a foreign int3 says
 *     -RW_ERR_BREAKPOINT, not -EILSEQ.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_X86_64
int main(void)
{
	SKIP("live patching needs the x86_64 backend");
}
#else

#include <rewire/livepatch.h>
#include <rewire/text_poke.h>

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#define OLD(x) ((x) + 1000)
#define NEW(x) ((x) + 2000)

__attribute__((nocf_check)) int bp_plain(int x);
int bp_cet(int x);

/* No endbr64: the entry starts with the NOPs. */
__attribute__((noinline, noipa, nocf_check)) int bp_plain(int x)
{
	return OLD(x);
}

/* Built with -fcf-protection: an endbr64, then the NOPs. */
__attribute__((noinline, noipa)) int bp_cet(int x)
{
	return OLD(x);
}

/* A site of the generic batch: a 5-byte NOP, then ret. */
void bp_site(void);
__asm__(".pushsection .text\n\t"
	".globl bp_site\n\t"
	".type bp_site, @function\n"
	"bp_site:\n\t"
	".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"
	"ret\n\t"
	".size bp_site, 6\n\t"
	".popsection");

static void poke_byte(uintptr_t addr, uint8_t b)
{
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, &b, 1, (off_t)addr), 1);
	close(fd);
}

static void expect_refused(const char *patch, const char *where)
{
	char path[512];
	struct rw_patch *p = NULL;
	int err;

	snprintf(path, sizeof(path), "%s/%s", LP_BP_DIR, patch);
	err = rw_patch_load(path, 0, &p);
	fprintf(stderr, "load %s with an int3 at %s: %d (%s): %s\n", patch,
		where, err, rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, -RW_ERR_BREAKPOINT);
	CHECK(p == NULL);
	CHECK(strstr(rw_patch_last_error(), where));
	CHECK(strstr(rw_patch_last_error(), "remove it first"));
}

int main(void)
{
	static const uint8_t endbr64[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
	const uintptr_t plain = (uintptr_t)bp_plain, cet = (uintptr_t)bp_cet;
	uint8_t orig[9], now[9];
	char path[512];
	struct rw_patch *p = NULL;
	bool has_endbr = !memcmp((const void *)cet, endbr64, 4);

	/* An int3 on the first NOP, then on the third. */
	memcpy(orig, (const void *)plain, 9);
	poke_byte(plain, 0xcc);
	expect_refused("lp_bp_plain.so", "bp_plain+0");
	memcpy(now, (const void *)plain, 9);
	CHECK_EQ(now[0], 0xcc);
	CHECK(!memcmp(now + 1, orig + 1, 8));
	poke_byte(plain, orig[0]);
	poke_byte(plain + 2, 0xcc);
	expect_refused("lp_bp_plain.so", "bp_plain+2");
	poke_byte(plain + 2, orig[2]);
	CHECK(!memcmp((const void *)plain, orig, 9));
	CHECK_EQ(bp_plain(1), OLD(1));

	/* Over the endbr64 (where a uprobe on the function goes). */
	if (has_endbr) {
		uint8_t c[9];

		memcpy(c, (const void *)cet, 9);
		poke_byte(cet, 0xcc);
		expect_refused("lp_bp_cet.so", "bp_cet+0");
		poke_byte(cet, c[0]);
		CHECK(!memcmp((const void *)cet, c, 9));
	} else {
		fprintf(stderr, "note: bp_cet has no endbr64 (no "
				"-fcf-protection?): its case not run\n");
	}

	/* A breakpoint placed after the patch: on rewire's jmp. */
	snprintf(path, sizeof(path), "%s/lp_bp_plain.so", LP_BP_DIR);
	CHECK_OK(rw_patch_load(path, 0, &p));
	CHECK_OK(rw_patch_enable(p));
	CHECK_OK(rw_patch_wait(p, 10000));
	CHECK_EQ(bp_plain(1), NEW(1));
	memcpy(now, (const void *)plain, 9);
	CHECK_EQ(now[0], 0xe9);
	poke_byte(plain, 0xcc);
	{
		int err = rw_patch_disable(p);
		struct rw_patch_info info;

		fprintf(stderr,
			"disable with an int3 on the jump: %d (%s): "
			"%s\n",
			err, rw_strerror(err), rw_patch_last_error());
		CHECK_EQ(err, -RW_ERR_BREAKPOINT);
		CHECK(strstr(rw_patch_last_error(), "bp_plain+0"));
		CHECK_OK(rw_patch_state(p, &info));
		CHECK_EQ(info.state, RW_PATCH_ENABLED);
	}
	CHECK_EQ(*(const uint8_t *)plain, 0xcc);
	CHECK(!memcmp((const uint8_t *)plain + 1, now + 1, 8));
	poke_byte(plain, 0xe9);
	CHECK_EQ(bp_plain(1), NEW(1));
	CHECK_OK(rw_patch_disable(p));
	CHECK_OK(rw_patch_wait(p, 10000));
	CHECK(!memcmp((const void *)plain, orig, 9));
	CHECK_EQ(bp_plain(1), OLD(1));
	CHECK_OK(rw_patch_unload(p));

	/* The generic batch: a 5-byte NOP site with another tool's int3. */
	{
		const uintptr_t site = (uintptr_t)bp_site;
		struct rw_text_poke tp = { .addr = (void *)site, .len = 5 };
		int err;

		CHECK_EQ(rw_text_encode(RW_TEXT_NOP, tp.addr, NULL,
					tp.old_insn),
			 5);
		CHECK_EQ(rw_text_encode(RW_TEXT_JMP, tp.addr,
					(const void *)(site + 5), tp.new_insn),
			 5);
		poke_byte(site, 0xcc);
		err = rw_text_poke_batch(&tp, 1);
		fprintf(stderr, "batch with an int3 at the site: %d (%s)\n",
			err, rw_strerror(err));
		CHECK_EQ(err, -RW_ERR_BREAKPOINT);
		CHECK_EQ(*(const uint8_t *)site, 0xcc);
		poke_byte(site, 0x0f);
		CHECK(!memcmp((const void *)site, tp.old_insn, 5));
	}
	CHECK_EQ(bp_plain(2), OLD(2));
	printf("breakpoints: refused with RW_ERR_BREAKPOINT, nothing "
	       "changed\n");
	return 0;
}
#endif
