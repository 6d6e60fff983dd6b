/* SPDX-License-Identifier: MIT */
/*
 * The program of test_bp_far (tests/buildpatch/test_bp_far.sh): what the
 * code of a patch made by `rewire build-patch` reaches in the program from
 * wherever the dynamic linker mapped the patch. far_value, which far.diff
 * changes, reads the program's static data, calls a global function and
 * a static one only called directly (on aarch64 GCC gives that one no BTI
 * landing pad), calls a libc function and tail-calls the program's
 * far_tail. Each line of stdin is a number x: the program prints
 * far_value(x) and how many times far_static ran.
 */
#include <rewire/livepatch.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

int far_counter;
static int far_scale = 3;

int far_global(int x);
int far_tail(int x);
int far_value(int x);

__attribute__((noinline)) int far_global(int x)
{
	return x + far_scale;
}

static __attribute__((noinline)) int far_static(int x)
{
	far_counter++;
	return x * 2;
}

__attribute__((noinline)) int far_tail(int x)
{
	return x - 1;
}

/* No local array: a local whose address escapes would keep GCC from
 * making the call to far_tail a tail call. */
__attribute__((noinline)) int far_value(int x)
{
	int v = far_static(x) + far_global(x) * far_scale;

	return far_tail(snprintf(NULL, 0, "%d", v) + v);
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	puts("ready");
	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		int n = poll(&p, 1, 100), x, v;

		/* Idle, the thread says so (examples/kv/kvserver.c does the
		 * same): a patch needs no look at its stack then. */
		rw_patch_quiescent();
		if (n <= 0)
			continue;
		if (!fgets(line, sizeof(line), stdin))
			break;
		x = atoi(line);
		v = far_value(x);
		printf("far_value(%d) = %d, far_static ran %d times\n", x, v,
		       far_counter);
	}
	return 0;
}
