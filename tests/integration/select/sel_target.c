// SPDX-License-Identifier: MIT
/*
 * sel_target: the processes test_cli_select.sh selects by name, file and
 * build-id. Built twice from this file, as two programs with their own
 * build-ids (select/select.cmake): sel_target_a (SEL_FLAVOUR_A: one more
 * key, sel_only_a) and sel_target_b, both -O2 with dpkg-buildflags, linked
 * to librewire; REWIRE_CTL=1 starts the control server.
 *
 *   sel_target_X [--lifetime SEC]
 *
 * Every 20 ms it prints the state of its keys when it changed (and once
 * at the start), "verbose=0|1" and, for sel_target_a, "only_a=0|1", and
 * the value of sel_compute(40), "compute=41" (sel_fix.so, bound to
 * sel_target_a's build, makes it 42), then fires the tracepoint
 * sel_tick(n); "ready pid=N" follows the first lines.
 * It does not name its threads: /proc/PID/comm is the program's name.
 */
#include <rewire/rewire.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

RW_DEFINE_STATIC_KEY_FALSE(sel_verbose);
#ifdef SEL_FLAVOUR_A
RW_DEFINE_STATIC_KEY_FALSE(sel_only_a);
#endif

RW_DECLARE_TRACEPOINT(sel_tick, (int, n));
RW_DEFINE_TRACEPOINT(sel_tick, (int, n));

int sel_compute(int x);
__attribute__((noinline, noipa)) int sel_compute(int x)
{
	return x + 1;
}

int main(int argc, char **argv)
{
	int lifetime = 120, last[3] = { -1, -1, -1 }, n = 0;
	struct timespec start, now;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
			lifetime = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--lifetime SEC]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int cur[3] = { rw_static_branch_unlikely(sel_verbose) ? 1 : 0,
			       -1, 0 };

		rw_patch_quiescent();
		cur[2] = sel_compute(40);

#ifdef SEL_FLAVOUR_A
		cur[1] = rw_static_branch_unlikely(sel_only_a) ? 1 : 0;
#endif
		if (cur[0] != last[0])
			printf("verbose=%d\n", cur[0]);
		if (cur[1] != last[1] && cur[1] >= 0)
			printf("only_a=%d\n", cur[1]);
		if (cur[2] != last[2])
			printf("compute=%d\n", cur[2]);
		if (n == 0)
			printf("ready pid=%d\n", (int)getpid());
		last[0] = cur[0];
		last[1] = cur[1];
		last[2] = cur[2];
		rw_trace_sel_tick(n++);
		usleep(20 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= lifetime)
			break;
	}
	return 0;
}
