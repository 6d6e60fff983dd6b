/* SPDX-License-Identifier: MIT */
/*
 * Integration (issue 14): the relocation table of a version 3 patch
 * (struct rw_patch_reloc). The loader used to ignore it: the patch's fields
 * stayed 0 and its new function crashed once enabled.
 *
 * The good patch (lp_relocs/lpr.h) has its code's 64-bit operands filled
 * from the table: the program's static variable and static function (by
 * name, with no RW_PATCH_REF), its own data (by address), and a PC32 field
 * in range. Enabled, compute() gives the new result and counts its calls
 * in the program's counter_var; disabled and unloaded, the old one again.
 *
 * Bad tables, each appended to the good entries (so that a loader that
 * wrote as it went would have written something): a symbol the program
 * lacks (RW_ERR_SYMBOL), a PC32 out of range (RW_ERR_OUT_OF_RANGE, naming
 * the symbol), a field outside the patch, in the program's own compute()
 * (RW_ERR_PATCH_VERSION), an unknown type and an unknown flag
 * (RW_ERR_PATCH_VERSION). And a patch that calls the program's static
 * function as if it were exported: dlopen's "undefined symbol" comes with
 * how to reach it (RW_PATCH_REF). Each refusal: the exact code, a message naming
 * the patch and the symbol, compute()'s bytes and counter_var as they
 * were, the patch unmapped, a worker thread still getting the old result.
 */
#include <rewire/config.h>

#include "check.h"

#ifndef RW_BACKEND_X86_64
int main(void)
{
	SKIP("live patching needs the x86_64 backend (on aarch64: not "
	     "ported, its patches hold x86-64 movabs fields)");
}
#else

#include "lp_test.h"

#include <dlfcn.h>
#include <pthread.h>
#include <rewire/livepatch.h>
#include <rewire/patch.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

__attribute__((used)) static long counter_var;

__attribute__((noinline, used)) static int helper_fn(int x)
{
	return x * 7 + 3;
}

/* Exported (ENABLE_EXPORTS): lpr_where.so points a field at it. */
__attribute__((noinline, used, visibility("default"))) int compute(int x);
__attribute__((noinline, used, visibility("default"))) int compute(int x)
{
	return x * 3 + 1;
}

static int compute_new(int x)
{
	return helper_fn(x) + 2000;
}

static atomic_bool stop;
static atomic_int expect_new;
static atomic_long phase; /* bumped before every store of expect_new */
static atomic_long wrong, calls;

static void set_expect(int v)
{
	atomic_fetch_add(&phase, 1);
	atomic_store(&expect_new, v);
}

static void *worker(void *arg)
{
	int x = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		int (*volatile fn)(int) = compute;
		long g0 = atomic_load(&phase);
		int n = atomic_load(&expect_new), r = fn(x);

		/* 2: in a transition, either is right; so is either when the
		 * state changed while the call ran (a transition completed
		 * between the call and the check: this thread switched at
		 * a signal after its old call had returned). */
		if (atomic_load(&expect_new) != n || atomic_load(&phase) != g0)
			n = 2;
		if (!(n != 1 && r == x * 3 + 1) &&
		    !(n != 0 && r == compute_new(x)))
			atomic_fetch_add(&wrong, 1);
		atomic_fetch_add(&calls, 1);
		x = (x + 1) & 0xffff;
	}
	return NULL;
}

static void worker_ran(void)
{
	long before = atomic_load(&calls);

	while (atomic_load(&calls) == before)
		usleep(100);
	CHECK_EQ(atomic_load(&wrong), 0);
}

static void path_of(char *buf, size_t size, const char *name)
{
	lp_patch_path(buf, size, LPR_DIR "/lpr_", name);
}

static void refused(const char *name, int code, const char *needles)
{
	uint8_t before[32], after[32];
	long count = __atomic_load_n(&counter_var, __ATOMIC_RELAXED);
	struct rw_patch *p = NULL;
	char path[512], base[64];
	int err;

	path_of(path, sizeof(path), name);
	snprintf(base, sizeof(base), "lpr_%s.so", name);
	memcpy(before, (const void *)(uintptr_t)compute, sizeof(before));
	err = rw_patch_load(path, 0, &p);
	printf("%-8s %s: %s\n", name, rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, code);
	CHECK(p == NULL);
	lp_has_all(rw_patch_last_error(), needles);
	CHECK(strstr(rw_patch_last_error(), path) != NULL);
	memcpy(after, (const void *)(uintptr_t)compute, sizeof(after));
	CHECK(!memcmp(before, after, sizeof(before)));
	CHECK(!lp_file_mapped(base));
	CHECK_EQ(__atomic_load_n(&counter_var, __ATOMIC_RELAXED), count);
	worker_ran();
}

int main(void)
{
	struct rw_patch *p;
	pthread_t t;
	char path[512];
	long count;

	CHECK_OK(pthread_create(&t, NULL, worker, NULL));
	worker_ran();

	refused("missing", -RW_ERR_SYMBOL,
		"relocation 4|no_such_symbol|not found|main program");
	refused("type", -RW_ERR_PATCH_VERSION, "relocation 4|unknown type 7");
	refused("flags", -RW_ERR_PATCH_VERSION,
		"relocation 4|unknown flag set 1");
	refused("where", -RW_ERR_PATCH_VERSION,
		"relocation 4|outside the patch's own segments");
	/* counter_var is in the program, the patch in the mmap area: more
	 * than 2 GiB apart in the usual layout. */
	{
		long d = (long)((uintptr_t)&counter_var - (uintptr_t)&path);

		if (d > INT32_MAX || d < INT32_MIN)
			refused("far", -RW_ERR_OUT_OF_RANGE,
				"relocation 4|main:counter_var|32-bit|PC32");
		else
			printf("far      skipped: the program is within "
			       "2 GiB of the stack\n");
	}

	/* Not a relocation: a patch that calls the program's static function
	 * as if it were exported. The message says how to reach it. */
	refused("undef", -RW_ERR_SYMBOL,
		"undefined symbol: helper_fn|'helper_fn' is exported neither "
		"by the program nor by its libraries|RW_PATCH_REF|"
		"rewire build-patch");

	path_of(path, sizeof(path), "good");
	p = lp_load(path, 0);
	printf("good     loaded: %s\n", rw_patch_last_error());
	CHECK(compute(5) == 5 * 3 + 1); /* not enabled yet */
	set_expect(2);
	lp_enable_wait(p, 5000);
	set_expect(1);
	worker_ran();
	count = __atomic_load_n(&counter_var, __ATOMIC_RELAXED);
	CHECK(count > 0);
	for (int x = 0; x < 100; x++)
		CHECK_EQ(compute(x), compute_new(x));
	CHECK(__atomic_load_n(&counter_var, __ATOMIC_RELAXED) >= count + 100);
	set_expect(2);
	lp_disable_wait(p, 5000);
	set_expect(0);
	CHECK_OK(rw_patch_unload(p));
	worker_ran();
	CHECK_EQ(compute(5), 5 * 3 + 1);

	atomic_store(&stop, true);
	pthread_join(t, NULL);
	CHECK_EQ(atomic_load(&wrong), 0);
	printf("ok\n");
	return 0;
}
#endif
