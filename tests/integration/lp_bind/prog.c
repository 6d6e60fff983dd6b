/* SPDX-License-Identifier: MIT */
/*
 * test_lp_bind: the program, built several times from this source (see
 * test_lp_bind.cmake): A and B differ only by their build-id; C and D have
 * none, and C's compute() has one more instruction (LPBD_CHANGED). The
 * driver (test_lp_bind.c) runs one of them per case:
 *
 *   prog good PATCH            loads PATCH, enables it: compute() is new;
 *                              loading it again is refused (-EEXIST) and
 *                              changes nothing; disabled and unloaded.
 *   prog refuse PATCH CODE NEEDLES
 *                              loading PATCH fails with -CODE, the message
 *                              holds NEEDLES ("a|b|c") and names PATCH;
 *                              compute()'s bytes are as they were, it
 *                              still gives the old result, PATCH is not
 *                              mapped.
 */
#include "lp_test.h"

#include <rewire/livepatch.h>
#include <stdlib.h>
#include <string.h>

#define NBYTES 48

__attribute__((noinline, used)) int compute(int x);
__attribute__((noinline, used)) int compute(int x)
{
#ifdef LPBD_CHANGED
	__asm__ volatile("nop");
#endif
	return x * 3 + 1;
}

static void snapshot(uint8_t *out)
{
	memcpy(out, (const void *)(uintptr_t)compute, NBYTES);
}

static int call(int x)
{
	int (*volatile fn)(int) = compute;

	return fn(x);
}

static int good(const char *path)
{
	uint8_t before[NBYTES], after[NBYTES];
	struct rw_patch *p = lp_load(path, 0), *q = NULL;

	printf("loaded: %s\n", rw_patch_last_error());
	lp_enable_wait(p, 5000);
	CHECK_EQ(call(5), 5 * 3 + 2);
	/* The same patch again: refused, and nothing changes. */
	snapshot(before);
	CHECK_EQ(rw_patch_load(path, 0, &q), -EEXIST);
	printf("again:  %s\n", rw_patch_last_error());
	CHECK(q == NULL);
	lp_has_all(rw_patch_last_error(),
		   "refused|already loaded|enabled|nothing was changed");
	snapshot(after);
	CHECK(!memcmp(before, after, NBYTES));
	CHECK_EQ(lp_state(p), RW_PATCH_ENABLED);
	CHECK_EQ(call(5), 5 * 3 + 2);
	lp_disable_wait(p, 5000);
	CHECK_OK(rw_patch_unload(p));
	CHECK_EQ(call(5), 5 * 3 + 1);
	return 0;
}

static int refuse(const char *path, int code, const char *needles)
{
	uint8_t before[NBYTES], after[NBYTES];
	struct rw_patch *p = NULL;
	const char *base = strrchr(path, '/');
	int err;

	snapshot(before);
	err = rw_patch_load(path, 0, &p);
	printf("%s: %s\n", rw_strerror(err), rw_patch_last_error());
	CHECK_EQ(err, -code);
	CHECK(p == NULL);
	CHECK(strstr(rw_patch_last_error(), path) != NULL);
	lp_has_all(rw_patch_last_error(), needles);
	snapshot(after);
	CHECK(!memcmp(before, after, NBYTES));
	CHECK_EQ(call(5), 5 * 3 + 1);
	CHECK(!lp_file_mapped(base ? base + 1 : path));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "good"))
		return good(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "refuse"))
		return refuse(argv[2], atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: %s good PATCH | refuse PATCH CODE NEEDLES\n",
		argv[0]);
	return 2;
}
