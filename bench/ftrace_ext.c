/* SPDX-License-Identifier: MIT */
/*
 * rw-bench-ftrace-ext - one traced function, timed inside the program, for
 * the comparison of bench/ftrace.sh with tracers that work from outside:
 * uftrace (`uftrace record -P fbx_func`, its dynamic patching of a
 * -fpatchable-function-entry build) and a bpftrace uprobe on fbx_func.
 * The whole program is built like a Debian package (dpkg-buildflags) with
 * rewire_target_patchable(), so fbx_func starts with a 5-byte NOP.
 *
 *	rw-bench-ftrace-ext [--iters N] [--mode none|entry|graph|cli]
 *
 *	none	nothing of rewire's: run it under uftrace, or with a uprobe
 *	entry	rw_ftrace_attach("fbx_func") with bench/ftrace_probes.c's
 *		record probe (32 bytes into a per-thread buffer)
 *	graph	the same with the record probe on return too
 *	cli	the control server on (rw_ctl_start()); prints "pid PID" and
 *		waits until fbx_func's entry changes (`rewire trace PID
 *		--function fbx_func` attached), runs, then waits up to 10 s
 *		for the entry to be restored (the command detached) and for
 *		a line on its standard input (the command is done)
 *
 * Prints "ns/call W cpu C calls N hits H": wall and thread CPU time per
 * call of the timed calls (N, in chunks of 100,000 with a pause after
 * each, after 300,000 untimed), and the records the probe wrote in them
 * (rewire modes).
 */
#include "ftrace_bench.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats.h"

long fbx_func(long x);
long fbx_loop_from(fb_fn *fn, long from, long n);

/*
 * The timed calls run in chunks of CHUNK with a pause of PAUSE_US after
 * each, untimed, so that a `rewire trace` session's reader (another
 * process) drains the ring between them: a chunk (100,000 records of 32
 * bytes) fits in the 8 MiB ring however late the reader is.
 */
#define CHUNK 100000L
#define PAUSE_US 100000

__attribute__((noipa)) long fbx_func(long x)
{
	return fb_body(x);
}

__attribute__((noinline)) long fbx_loop_from(fb_fn *fn, long from, long n)
{
	long acc = 0;

	__asm__("" : "+r"(fn));
	for (long i = from; i < from + n; i++)
		acc += fn(i);
	return acc;
}

static long fbx_loop(fb_fn *fn, long n)
{
	return fbx_loop_from(fn, 0, n);
}

/* Whether fbx_func's entry holds @want. */
static bool entry_is(const unsigned char *want)
{
	return !memcmp((const void *)fbx_func, want, 5);
}

/* Whether fbx_func's entry changed from @before, and the int3 batch that
 * changed it is past its first steps (no int3 on the first byte). */
static bool entry_changed(const unsigned char *before)
{
	const volatile unsigned char *p = (const void *)fbx_func;

	return !entry_is(before) && p[0] != 0xcc;
}

int main(int argc, char **argv)
{
	const char *mode = "none", *pats[1] = { "fbx_func" };
	long n = 500000, want = 0, got;
	struct rw_ftrace_probe probe = { fb_entry_rec_probe, NULL, NULL };
	struct rw_ftrace *t = NULL;
	unsigned char entry0[5];
	unsigned long recs;
	uint64_t t0, c0;
	int err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			n = atol(argv[++i]);
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else
			n = -1;
	}
	if (n < 10 || (strcmp(mode, "none") && strcmp(mode, "entry") &&
		       strcmp(mode, "graph") && strcmp(mode, "cli"))) {
		fprintf(stderr, "usage: rw-bench-ftrace-ext [--iters N] "
				"[--mode none|entry|graph|cli]\n");
		return 2;
	}
	for (long i = 0; i < n; i++)
		want += fb_body(i);
	memcpy(entry0, (const void *)fbx_func, sizeof(entry0));
	if (!strcmp(mode, "graph"))
		probe.ret = fb_ret_rec_probe;
	if (!strcmp(mode, "entry") || !strcmp(mode, "graph")) {
		err = rw_ftrace_attach(pats, 1, &probe, 0, &t);
		if (err) {
			fprintf(stderr, "rw_ftrace_attach: %s: %s\n",
				rw_strerror(err), rw_ftrace_last_error());
			return 1;
		}
	} else if (!strcmp(mode, "cli")) {
		err = rw_ctl_start();
		if (err) {
			fprintf(stderr, "rw_ctl_start: %s\n", rw_strerror(err));
			return 1;
		}
		printf("pid %d\n", (int)getpid());
		fflush(stdout);
		for (int ms = 0; !entry_changed(entry0); ms++) {
			if (ms == 30000) {
				fprintf(stderr, "fbx_func: not traced after "
						"30 s\n");
				return 1;
			}
			usleep(1000);
		}
	}
	/* Untimed: three chunks, enough to touch every page of the 8 MiB
	 * ring bench/ftrace.sh gives a session (the memfd is sparse). */
	for (int k = 0; k < 3; k++) {
		fbx_loop(fbx_func, CHUNK);
		usleep(PAUSE_US);
	}
	recs = fb_rec_count();
	got = 0;
	t0 = c0 = 0;
	for (long done = 0; done < n; done += CHUNK) {
		long m = n - done < CHUNK ? n - done : CHUNK;
		uint64_t w = bench_now_ns(), c = bench_thread_cpu_ns();

		got += fbx_loop_from(fbx_func, done, m);
		c0 += bench_thread_cpu_ns() - c;
		t0 += bench_now_ns() - w;
		usleep(PAUSE_US);
	}
	recs = fb_rec_count() - recs;
	if (t && rw_ftrace_detach(t)) {
		fprintf(stderr, "rw_ftrace_detach failed\n");
		return 1;
	}
	if (got != want) {
		fprintf(stderr, "wrong sum\n");
		return 1;
	}
	printf("ns/call %.3f cpu %.3f calls %ld hits %lu\n",
	       (double)t0 / (double)n, (double)c0 / (double)n, n, recs);
	fflush(stdout);
	if (!strcmp(mode, "cli")) {
		char line[16];

		for (int ms = 0; ms < 10000 && !entry_is(entry0); ms++)
			usleep(1000);
		/* Until the command has printed its summary (bench/ftrace.sh
		 * writes a line, or closes the pipe), so that it does not
		 * see this process exit first. */
		if (!fgets(line, sizeof(line), stdin))
			line[0] = 0;
	}
	return 0;
}
