/* SPDX-License-Identifier: MIT */
/*
 * test_lp_entries_uprobe: a program that patches its own lpe_up_fn() with
 * lpe_up_patch.so, says "ready", waits for a line on stdin (the test puts
 * a uprobe on lpe_up_fn meanwhile), then calls lpe_up_fn() 100,000 times
 * (or CALLS times: `lpe_up_NAME PATCH [CALLS]`)
 * and checks that each returns the new or the old result, and says how
 * many of each. Built twice on x86-64: with the entries rewritten by
 * rewire-entries (lpe_up_fix) and with GCC's five 1-byte NOPs
 * (lpe_up_keep); lpe_up_fn has no endbr64 (nocf_check), like a static
 * function GCC knows is only called directly. Twice on aarch64: without
 * branch protection (lpe_up_plain: the entry's two NOPs at the symbol)
 * and with -mbranch-protection=standard as Debian builds (lpe_up_bti: a
 * BTI c at the symbol, the two NOPs after it).
 */
#include <rewire/livepatch.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#define LPE_NOCF nocf_check
#else
#define LPE_NOCF
#endif

__attribute__((LPE_NOCF)) int lpe_up_fn(int x);
__attribute__((noinline, noipa, LPE_NOCF)) int lpe_up_fn(int x)
{
	return x + 1000;
}

int main(int argc, char **argv)
{
	struct rw_patch *p = NULL;
	long new_calls = 0, old_calls = 0, calls = 100000;
	char line[16], *end = NULL;
	int err;

	if (argc == 3)
		calls = strtol(argv[2], &end, 10);
	if ((argc != 2 && argc != 3) || (end && (*end || calls <= 0))) {
		fprintf(stderr, "usage: %s PATCH [CALLS]\n", argv[0]);
		return 2;
	}
	err = rw_patch_load(argv[1], 0, &p);
	if (!err)
		err = rw_patch_enable(p);
	if (!err)
		err = rw_patch_wait(p, 10000);
	if (err) {
		fprintf(stderr, "patch: %s: %s\n", rw_strerror(err),
			rw_patch_last_error());
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	/* A call that hits the uprobe runs the old body (the kernel skips
	 * the entry as the file has it); any other result is a crash in
	 * the making. */
	for (int i = 0; i < calls; i++) {
		int r = lpe_up_fn(i);

		if (r == i + 2000) {
			new_calls++;
		} else if (r == i + 1000) {
			old_calls++;
		} else {
			fprintf(stderr, "lpe_up_fn(%d) = %d: neither\n", i, r);
			return 1;
		}
	}
	printf("done: %ld calls ran the new function, %ld the old one\n",
	       new_calls, old_calls);
	return 0;
}
