/* SPDX-License-Identifier: MIT */
/*
 * test_lp_entries_uprobe: a program that patches its own lpe_up_fn() with
 * lpe_up_patch.so, says "ready", waits for a line on stdin (the test puts
 * a uprobe on lpe_up_fn meanwhile), then calls lpe_up_fn() 100,000 times
 * and checks that each returns the new or the old result, and says how
 * many of each. Built twice: with the entries rewritten by
 * rewire-entries (lpe_up_fix) and with GCC's five 1-byte NOPs
 * (lpe_up_keep). lpe_up_fn has no endbr64 (nocf_check), like a static
 * function GCC knows is only called directly.
 */
#include <rewire/livepatch.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((nocf_check)) int lpe_up_fn(int x);
__attribute__((noinline, noipa, nocf_check)) int lpe_up_fn(int x)
{
	return x + 1000;
}

int main(int argc, char **argv)
{
	struct rw_patch *p = NULL;
	long new_calls = 0, old_calls = 0;
	char line[16];
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATCH\n", argv[0]);
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
	for (int i = 0; i < 100000; i++) {
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
