/* SPDX-License-Identifier: MIT */
/*
 * Integration: the patch stack (rewire/livepatch.h), with the kernel
 * livepatch's semantics.
 *
 *   - A function of a shared library linked to the program (liblps_lib.so),
 *     named by the object's base name, is patched and unpatched; its entry
 *     ends as a direct "jmp new" when the patch is within 2 GiB.
 *   - References: a patch reads and writes a static variable of the
 *     program and calls a static function of it (RW_PATCH_REF).
 *   - Stacking: A (lps_f 1 -> 2), then B on top (-> 3): lps_f() is 3;
 *     disabling A is -EBUSY with an error naming B; disabling B gives 2,
 *     then disabling A gives 1 and the original entry bytes.
 *   - Atomic replace: A (lps_f -> 2) and C (lps_g 10 -> 20) enabled, then R
 *     (replace = 1, lps_f -> 4): lps_f() is 4, lps_g() is 10 again, A and C
 *     are REPLACED and can be unloaded; disabling R gives lps_f() == 1.
 *   - Callbacks: a pre_patch that fails refuses the enable (function and
 *     entry unchanged, state LOADED, no other callback ran); enable + wait
 *     runs pre_patch and post_patch once each, disable + wait pre_unpatch
 *     and post_unpatch once each; an enable reversed by a disable while a
 *     thread held inside lps_h() keeps it from completing runs
 *     post_unpatch (and not pre_unpatch or post_patch) and ends DISABLED.
 * Every result is checked exactly and printed. The patches are built by
 * test_lp_stack.cmake into LPS_DIR.
 */
#include <rewire/config.h>

#include "lp_test.h"
#include "lps.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#define WAIT_MS 10000

/* ---- The program's functions (patchable: test_lp_stack.cmake) --------- */

int lps_f(void);
int lps_g(void);
int lps_u(void);
int lps_h(int hold);
int lps_k(int x);

/* Callback counts of patches "cb" and "fail" (lps.h); found by name. */
__attribute__((used)) int lps_cb_calls[4];
__attribute__((used)) int lps_fail_calls[4];

/* Not exported: patch "ref" finds them in the symbol table. */
__attribute__((used)) static int secret = 41;
__attribute__((noipa, used)) static int secret_fn(int x)
{
	return x * 3;
}

__attribute__((noipa)) int lps_f(void)
{
	return 1;
}

__attribute__((noipa)) int lps_g(void)
{
	return 10;
}

__attribute__((noipa)) int lps_u(void)
{
	return 1;
}

static atomic_int hold = 1, in_h;

/* lps_h(1) stays in the function until hold is cleared. */
__attribute__((noipa)) int lps_h(int do_hold)
{
	if (do_hold) {
		atomic_store(&in_h, 1);
		while (atomic_load(&hold))
			usleep(1000);
	}
	return 1;
}

__attribute__((noipa)) int lps_k(int x)
{
	return x;
}

/* ---- Helpers ------------------------------------------------------------ */

#define LPS_STEM LPS_DIR "/lps_"

static void print_entry(const char *what, const void *fn)
{
	uint8_t s[5];

	lp_entry_read((uintptr_t)fn, s);
	printf("  %-34s %02x %02x %02x %02x %02x", what, s[0], s[1], s[2], s[3],
	       s[4]);
	if (s[0] == 0xe9)
		printf(" -> %#lx", (unsigned long)lp_entry_jmp((uintptr_t)fn));
	printf("\n");
}

static bool entry_is(const void *fn, const uint8_t orig[5])
{
	return lp_entry_is((uintptr_t)fn, orig);
}

static struct rw_patch *load(const char *name)
{
	char path[512];

	lp_patch_path(path, sizeof(path), LPS_STEM, name);
	return lp_load(path, RW_PATCH_LOAD_ALLOW_ANY_OWNER);
}

/* The new function of the patch whose object is @name. */
static uintptr_t new_func_of(const char *name, size_t i)
{
	char path[512];

	lp_patch_path(path, sizeof(path), LPS_STEM, name);
	return lp_new_func_of(path, i);
}

/* ---- Scenarios ------------------------------------------------------------ */

static void test_dso(void)
{
	void *fn = dlsym(RTLD_DEFAULT, "lps_lib_fn");
	uint8_t orig[5];
	struct rw_patch *p;
	uintptr_t target, newfn;
	intptr_t dist;

	printf("shared library function, by object base name:\n");
	CHECK(fn);
	lp_entry_read((uintptr_t)fn, orig);
	print_entry("liblps_lib.so:lps_lib_fn before", fn);
	CHECK(lp_entry_is_nops((uintptr_t)fn));
	CHECK_EQ(lps_lib_fn(1), 101);
	p = load("dso");
	CHECK_EQ(lp_state(p), RW_PATCH_LOADED);
	lp_enable_wait(p, WAIT_MS);
	print_entry("after enable", fn);
	printf("  lps_lib_fn(1) = %d\n", lps_lib_fn(1));
	CHECK_EQ(lps_lib_fn(1), 201);
	target = lp_entry_jmp((uintptr_t)fn);
	newfn = new_func_of("dso", 0);
	dist = (intptr_t)(newfn -
			  ((uintptr_t)lp_entry_sled((uintptr_t)fn) + 5));
	printf("  new function %#lx, %+ld bytes from the entry\n",
	       (unsigned long)newfn, (long)dist);
	CHECK(target != 0);
	if (dist >= INT32_MIN && dist <= INT32_MAX) {
		/* Near: the entry is the direct jump, nothing in between. */
		CHECK_EQ(target, newfn);
		printf("  entry is a direct jmp to the new function\n");
	} else {
		printf("  new function out of rel32 reach: far stub\n");
	}
	lp_disable_wait(p, WAIT_MS);
	print_entry("after disable", fn);
	CHECK(entry_is(fn, orig));
	CHECK_EQ(lps_lib_fn(1), 101);
	CHECK_OK(rw_patch_unload(p));
}

static void test_refs(void)
{
	struct rw_patch *p;
	int r;

	printf("references to a static variable and a static function:\n");
	CHECK_EQ(lps_k(5), 5);
	p = load("ref");
	lp_enable_wait(p, WAIT_MS);
	r = lps_k(4);
	printf("  lps_k(4) = %d, secret = %d\n", r, secret);
	CHECK_EQ(secret, 45);
	CHECK_EQ(r, 135);
	secret = 10;
	r = lps_k(-3);
	printf("  secret = 10; lps_k(-3) = %d, secret = %d\n", r, secret);
	CHECK_EQ(secret, 7);
	CHECK_EQ(r, 21);
	lp_disable_wait(p, WAIT_MS);
	CHECK_EQ(lps_k(5), 5);
	CHECK_EQ(secret, 7);
	CHECK_OK(rw_patch_unload(p));
}

static void test_stack(struct rw_patch *a, struct rw_patch *b,
		       const uint8_t orig_f[5])
{
	const char *msg;
	int err;

	printf("stacked patches:\n");
	CHECK_EQ(lps_f(), 1);
	lp_enable_wait(a, WAIT_MS);
	printf("  A enabled:            lps_f() = %d\n", lps_f());
	CHECK_EQ(lps_f(), 2);
	lp_enable_wait(b, WAIT_MS);
	printf("  B enabled on A:       lps_f() = %d\n", lps_f());
	CHECK_EQ(lps_f(), 3);
	err = rw_patch_disable(a);
	msg = rw_patch_last_error();
	printf("  disable A under B:    %d (%s): %s\n", err, rw_strerror(err),
	       msg);
	CHECK_EQ(err, -EBUSY);
	CHECK(strstr(msg, "stack_b") != NULL);
	CHECK_EQ(lp_state(a), RW_PATCH_ENABLED);
	CHECK_EQ(lp_state(b), RW_PATCH_ENABLED);
	CHECK_EQ(lps_f(), 3);
	lp_disable_wait(b, WAIT_MS);
	printf("  B disabled:           lps_f() = %d\n", lps_f());
	CHECK_EQ(lps_f(), 2);
	CHECK_EQ(lp_state(a), RW_PATCH_ENABLED);
	lp_disable_wait(a, WAIT_MS);
	printf("  A disabled:           lps_f() = %d\n", lps_f());
	CHECK_EQ(lps_f(), 1);
	CHECK(entry_is(lps_f, orig_f));
}

static void test_replace(struct rw_patch *a, const uint8_t orig_f[5],
			 const uint8_t orig_g[5])
{
	struct rw_patch *c = load("c"), *r = load("r");
	struct rw_patch_info info;

	printf("atomic replace:\n");
	lp_enable_wait(a, WAIT_MS);
	lp_enable_wait(c, WAIT_MS);
	printf("  A, C enabled:         lps_f() = %d, lps_g() = %d\n", lps_f(),
	       lps_g());
	CHECK_EQ(lps_f(), 2);
	CHECK_EQ(lps_g(), 20);
	CHECK_OK(rw_patch_state(r, &info));
	CHECK_EQ(info.replace, 1);
	lp_enable_wait(r, WAIT_MS);
	printf("  R (replace) enabled:  lps_f() = %d, lps_g() = %d; states "
	       "A %d, C %d (REPLACED = %d)\n",
	       lps_f(), lps_g(), lp_state(a), lp_state(c), RW_PATCH_REPLACED);
	CHECK_EQ(lps_f(), 4);
	CHECK_EQ(lps_g(), 10);
	CHECK(entry_is(lps_g, orig_g));
	CHECK_EQ(lp_state(a), RW_PATCH_REPLACED);
	CHECK_EQ(lp_state(c), RW_PATCH_REPLACED);
	/* A replaced patch can only be unloaded. */
	CHECK(rw_patch_enable(a) != 0);
	CHECK_EQ(lps_f(), 4);
	CHECK_OK(rw_patch_unload(a));
	CHECK_OK(rw_patch_unload(c));
	printf("  A and C unloaded\n");
	CHECK_EQ(lps_f(), 4);
	CHECK_EQ(lps_g(), 10);
	lp_disable_wait(r, WAIT_MS);
	printf("  R disabled:           lps_f() = %d, lps_g() = %d\n", lps_f(),
	       lps_g());
	CHECK_EQ(lps_f(), 1);
	CHECK_EQ(lps_g(), 10);
	CHECK(entry_is(lps_f, orig_f));
	CHECK(entry_is(lps_g, orig_g));
	CHECK_OK(rw_patch_unload(r));
}

static void test_pre_patch_fails(void)
{
	uint8_t orig[5];
	struct rw_patch *p;
	int err;

	printf("pre_patch refuses:\n");
	lp_entry_read((uintptr_t)lps_u, orig);
	p = load("fail");
	err = rw_patch_enable(p);
	printf("  enable: %d (%s): %s\n", err, rw_strerror(err),
	       rw_patch_last_error());
	CHECK(err < 0);
	CHECK_EQ(lp_state(p), RW_PATCH_LOADED);
	CHECK_EQ(lps_u(), 1);
	CHECK(entry_is(lps_u, orig));
	printf("  callbacks: pre_patch %d, post_patch %d, pre_unpatch %d, "
	       "post_unpatch %d\n",
	       lps_fail_calls[0], lps_fail_calls[1], lps_fail_calls[2],
	       lps_fail_calls[3]);
	CHECK_EQ(lps_fail_calls[LPS_PRE_PATCH], 1);
	CHECK_EQ(lps_fail_calls[LPS_POST_PATCH], 0);
	CHECK_EQ(lps_fail_calls[LPS_PRE_UNPATCH], 0);
	CHECK_EQ(lps_fail_calls[LPS_POST_UNPATCH], 0);
	CHECK_OK(rw_patch_unload(p));
}

static void *holder(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)lps_h(1);
}

static void print_cb(const char *when)
{
	printf("  %-28s pre_patch %d, post_patch %d, pre_unpatch %d, "
	       "post_unpatch %d\n",
	       when, lps_cb_calls[0], lps_cb_calls[1], lps_cb_calls[2],
	       lps_cb_calls[3]);
}

static int cb_calls(int which)
{
	return __atomic_load_n(&lps_cb_calls[which], __ATOMIC_SEQ_CST);
}

static void check_cb(int pre, int post, int pre_un, int post_un)
{
	CHECK_EQ(cb_calls(LPS_PRE_PATCH), pre);
	CHECK_EQ(cb_calls(LPS_POST_PATCH), post);
	CHECK_EQ(cb_calls(LPS_PRE_UNPATCH), pre_un);
	CHECK_EQ(cb_calls(LPS_POST_UNPATCH), post_un);
}

static void test_callbacks(void)
{
	struct rw_patch *p = load("cb");
	struct rw_patch_info info;
	uint8_t orig[5];
	pthread_t t;
	void *ret;
	int err;

	printf("callbacks:\n");
	lp_entry_read((uintptr_t)lps_h, orig);
	check_cb(0, 0, 0, 0);
	lp_enable_wait(p, WAIT_MS);
	print_cb("enable + wait:");
	CHECK_EQ(lps_h(0), 7);
	check_cb(1, 1, 0, 0);
	lp_disable_wait(p, WAIT_MS);
	print_cb("disable + wait:");
	CHECK_EQ(lps_h(0), 1);
	check_cb(1, 1, 1, 1);

	/* A reversed enable: a thread inside lps_h() keeps it open. */
	CHECK_EQ(pthread_create(&t, NULL, holder, NULL), 0);
	while (!atomic_load(&in_h))
		usleep(1000);
	CHECK_OK(rw_patch_enable(p));
	CHECK_OK(rw_patch_state(p, &info));
	printf("  enable with a thread in lps_h: state %d, %zu/%zu threads "
	       "switched, %zu pending",
	       info.state, info.threads_switched, info.threads_total,
	       info.npending);
	if (info.npending)
		printf(" (first: tid %d, why %d, %s)", info.pending[0].tid,
		       info.pending[0].why, info.pending[0].func);
	printf("\n");
	CHECK_EQ(info.state, RW_PATCH_ENABLING);
	CHECK(info.npending >= 1);
	CHECK_EQ(rw_patch_wait(p, 50), -ETIMEDOUT);
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLING);
	/* This thread switched at the first pass: it runs the new code. */
	CHECK_EQ(lps_h(0), 7);
	check_cb(2, 1, 1, 1);
	err = rw_patch_disable(p);
	CHECK_OK(err);
	print_cb("disable during the enable:");
	atomic_store(&hold, 0);
	CHECK_EQ(pthread_join(t, &ret), 0);
	CHECK_EQ((intptr_t)ret, 1);
	CHECK_OK(rw_patch_wait(p, WAIT_MS));
	print_cb("released + wait:");
	CHECK_EQ(lp_state(p), RW_PATCH_DISABLED);
	check_cb(2, 1, 1, 2);
	CHECK_EQ(lps_h(0), 1);
	CHECK(entry_is(lps_h, orig));
	CHECK_OK(rw_patch_unload(p));
}

/* Bad handles and arguments: an error, never a crash. */
static void test_bad_args(void)
{
	struct rw_patch *p = load("a"), *gone;
	struct rw_patch_info info;
	struct rw_patch_thread th[4];
	int junk[16] = { 0 };

	CHECK_EQ(rw_patch_load(NULL, 0, &gone), -EINVAL);
	CHECK_EQ(rw_patch_load("x.so", 0, NULL), -EINVAL);
	CHECK_EQ(rw_patch_enable(NULL), -EINVAL);
	CHECK_EQ(rw_patch_disable(NULL), -EINVAL);
	CHECK_EQ(rw_patch_wait(NULL, 0), -EINVAL);
	CHECK_EQ(rw_patch_force(NULL), -EINVAL);
	CHECK_EQ(rw_patch_unload(NULL), -EINVAL);
	CHECK_EQ(rw_patch_state(NULL, &info), -EINVAL);
	CHECK_EQ(rw_patch_threads(NULL, th, 4), -EINVAL);
	/* Not a patch at all: refused before it is read. */
	CHECK_EQ(rw_patch_enable((struct rw_patch *)junk), -EINVAL);
	CHECK(strstr(rw_patch_last_error(), "not a loaded patch") != NULL);
	CHECK_EQ(rw_patch_state(p, NULL), -EINVAL);
	CHECK_EQ(rw_patch_threads(p, NULL, 4), -EINVAL);
	CHECK(rw_patch_find(NULL) == NULL);
	CHECK(rw_patch_find("no such patch") == NULL);
	CHECK(rw_patch_find("stack_a") == p);
	CHECK_EQ(rw_patch_disable(p), -EINVAL); /* not enabled */
	CHECK_EQ(rw_patch_force(p), -EINVAL);	/* not in transition */
	gone = p;
	CHECK_OK(rw_patch_unload(p));
	/* An unloaded patch's pointer is refused, not dereferenced. */
	CHECK_EQ(rw_patch_enable(gone), -EINVAL);
	CHECK_EQ(rw_patch_unload(gone), -EINVAL);
	printf("bad arguments: refused with -EINVAL\n");
}

int main(void)
{
	uint8_t orig_f[5], orig_g[5];
	struct rw_patch *a, *b;

#ifndef RW_BACKEND_PATCHING
	SKIP("live patching needs a patching backend (x86_64, aarch64)");
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	lp_entry_read((uintptr_t)lps_f, orig_f);
	lp_entry_read((uintptr_t)lps_g, orig_g);
	print_entry("lps_f before", lps_f);

	test_bad_args();
	test_dso();
	test_refs();
	a = load("a");
	b = load("b");
	test_stack(a, b, orig_f);
	CHECK_OK(rw_patch_unload(b));
	test_replace(a, orig_f, orig_g);
	test_pre_patch_fails();
	test_callbacks();
	CHECK_EQ(rw_patch_list(NULL, 0), 0);
	printf("ok\n");
	return 0;
}
