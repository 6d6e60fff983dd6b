/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 12, point 2): a patch of a function that the compiler
 * inlined into callers used to load and enable with success while the
 * callers kept running their inlined copies of the old code. The loader
 * reads the target's DWARF and refuses, naming the callers.
 *
 * The program is built -O2 -g. scale() is a small static function: GCC
 * inlines it into caller_a() and caller_b(), and keeps an out-of-line copy
 * because its address is taken (scale_ptr). Checks:
 *   - lpi_scale.so (scale alone) is refused with -RW_ERR_INLINED, naming
 *     both callers; scale's entry is unchanged;
 *   - with RW_PATCH_LOAD_ALLOW_INLINED it loads, with a warning naming
 *     them; enabled, scale_ptr() runs the new code and caller_a() still
 *     the old one (what the refusal protects against);
 *   - lpi_all.so (scale with both callers) loads with no warning: the
 *     copies are replaced with their callers;
 *   - in lpi_dbg.so, whose DWARF is in a separate file named by
 *     .gnu_debuglink, dscale() inlined into lpi_dcaller() is refused too;
 *   - in lpi_nodbg.so, built without -g, the patch loads with the warning
 *     that inlining could not be checked.
 */
#include "lp_test.h"
#include "lpi.h"

#include <dlfcn.h>
#include <string.h>

int caller_a(int x);
int caller_b(int x);
extern int (*volatile scale_ptr)(int);

/* Counted: a body of its own, so that each inlined copy keeps
 * instructions (and a DWARF entry) of its own. */
static volatile unsigned scale_calls;

static int scale(int x)
{
	scale_calls = scale_calls + 1;
	return x * 7;
}

int (*volatile scale_ptr)(int) = scale;

__attribute__((noinline)) int caller_a(int x)
{
	return scale(x) + 1;
}

__attribute__((noinline)) int caller_b(int x)
{
	return scale(x + 1) * 2;
}

static void has_all(const char *msg, const char *needles)
{
	char part[256];

	while (*needles) {
		size_t n = strcspn(needles, "|");

		CHECK(n < sizeof(part));
		memcpy(part, needles, n);
		part[n] = '\0';
		if (!strstr(msg, part)) {
			fprintf(stderr, "message lacks '%s'\n", part);
			exit(1);
		}
		needles += n + (needles[n] == '|');
	}
}

static void expect_refused(const char *name, unsigned flags, int code,
			   const char *needles)
{
	struct rw_patch *p = (struct rw_patch *)0x1;
	char path[512];
	int err;

	lp_patch_path(path, sizeof(path), LPI_DIR "/lpi_", name);
	err = rw_patch_load(path, flags, &p);
	printf("%-14s %d (%s)\n               %s\n", name, err,
	       rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, code);
	CHECK(p == (struct rw_patch *)0x1);
	has_all(rw_patch_last_error(), needles);
	CHECK(!lp_file_mapped(path));
}

static struct rw_patch *load_warned(const char *name, unsigned flags,
				    const char *needles)
{
	struct rw_patch *p;
	char path[512];

	lp_patch_path(path, sizeof(path), LPI_DIR "/lpi_", name);
	p = lp_load(path, flags);
	printf("%-14s loaded\n               %s\n", name,
	       rw_patch_last_error());
	if (needles) {
		CHECK(!strncmp(rw_patch_last_error(), "warning: ", 9));
		has_all(rw_patch_last_error(), needles);
	} else {
		CHECK(!strcmp(rw_patch_last_error(), "no error"));
	}
	return p;
}

int main(void)
{
	uint8_t entry[5];
	struct rw_patch *p;
	void *dbg, *nodbg;

#ifndef RW_BACKEND_X86_64
	SKIP("live patching needs the x86_64 backend");
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(60);
	CHECK_EQ(caller_a(3), 22);
	CHECK_EQ(caller_b(3), 56);
	CHECK_EQ(scale_ptr(3), 21);

	lp_entry_read((uintptr_t)scale_ptr, entry);
	expect_refused("scale", 0, -RW_ERR_INLINED,
		       "lpi_scale.so: 'scale' in the main program is inlined "
		       "into 2 callers|caller_a|caller_b|old code|"
		       "--allow-inlined");
	CHECK(lp_entry_is((uintptr_t)scale_ptr, entry));

	p = load_warned("scale", RW_PATCH_LOAD_ALLOW_INLINED,
			"allowed: 'scale' in the main program is inlined into "
			"2 callers|caller_a|caller_b");
	lp_enable_wait(p, 5000);
	/* The out-of-line copy is patched, the inlined ones are not. */
	CHECK_EQ(scale_ptr(3), 121);
	CHECK_EQ(caller_a(3), 22);
	lp_disable_wait(p, 5000);
	CHECK_EQ(rw_patch_unload(p), 0);

	p = load_warned("all", 0, NULL);
	CHECK_EQ(rw_patch_unload(p), 0);

	dbg = dlopen(LPI_DIR "/lpi_dbg.so", RTLD_NOW | RTLD_LOCAL);
	nodbg = dlopen(LPI_DIR "/lpi_nodbg.so", RTLD_NOW | RTLD_LOCAL);
	if (!dbg || !nodbg)
		fprintf(stderr, "%s\n", dlerror());
	CHECK(dbg && nodbg);
	expect_refused("dscale_dbg", 0, -RW_ERR_INLINED,
		       "'dscale' in " LPI_DIR "/lpi_dbg.so is inlined into 1 "
		       "caller (1 copy)|: lpi_dcaller;");
	p = load_warned(
		"dscale_nodbg", 0,
		"inlining not checked: no debug information for " LPI_DIR
		"/lpi_nodbg.so");
	CHECK_EQ(rw_patch_unload(p), 0);
	dlclose(nodbg);
	dlclose(dbg);
	alarm(0);
	printf("ok\n");
	return 0;
}
