/* SPDX-License-Identifier: MIT */
/*
 * cli_target: the process the rewire command's integration tests
 * (tests/integration/test_cli_*.sh) control. Linked to librewire, built
 * with patchable function entries.
 *
 * What it has:
 *   static keys    cli_verbose (false), cli_fast (true)
 *   static call    cli_value(long) -> long, first value_one (x + 1);
 *                  registered targets value_one, value_two (x + 2);
 *                  value_three (x + 3) exists and is not registered
 *   tracepoints    cli_tick(int n, const char *who) fired by the workers,
 *                  cli_sample(unsigned long seq, double ratio, bool odd)
 *                  fired by the main thread
 *   patchable      cli_compute(x) = x + 1 (the bug; cli_fix.so makes it
 *                  x + 2), cli_hold(): the holder thread never leaves it
 *                  (cli_stall.so patches it, so its transition stalls)
 *   threads        main ("cli-target"), three workers ("cli-worker-N"),
 *                  one holder ("cli-holder", blocked in read() inside
 *                  cli_hold), and librewire's control thread
 *
 * What it shows: every LINE_MS the main thread evaluates each behaviour
 * and prints a line when one changed (and once at the start):
 *   verbose=0|1  fast=0|1  value=N  compute=N
 * so that a test sees, from the output alone, that `rewire key`, `rewire
 * call` and `rewire patch` changed the running code. "ready" follows the
 * first lines, once the threads run.
 *
 * Options: --ctl-start (call rw_ctl_start() instead of relying on
 * REWIRE_CTL=1 or a preload), --lifetime SEC (exit after SEC seconds;
 * default 120, so that a test that dies leaves nothing behind).
 * The workers call rw_patch_quiescent() at the top of their loop.
 */
#include <rewire/rewire.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NWORKERS 3
#define LINE_MS 20

RW_DEFINE_STATIC_KEY_FALSE(cli_verbose);
RW_DEFINE_STATIC_KEY_TRUE(cli_fast);

static long value_one(long x)
{
	return x + 1;
}

static long value_two(long x)
{
	return x + 2;
}

long value_three(long x);
long value_three(long x)
{
	return x + 3;
}

RW_DEFINE_STATIC_CALL(cli_value, value_one);
RW_STATIC_CALL_TARGET(cli_value, value_one);
RW_STATIC_CALL_TARGET(cli_value, value_two);

RW_DECLARE_TRACEPOINT(cli_tick, (int, n), (const char *, who));
RW_DECLARE_TRACEPOINT(cli_sample, (unsigned long, seq), (double, ratio),
		      (bool, odd));
RW_DEFINE_TRACEPOINT(cli_tick, (int, n), (const char *, who));
RW_DEFINE_TRACEPOINT(cli_sample, (unsigned long, seq), (double, ratio),
		     (bool, odd));

int cli_compute(int x);
void cli_hold(int fd);

/* The bug that cli_fix.so fixes: x + 1 instead of x + 2. */
__attribute__((noinline, noipa)) int cli_compute(int x)
{
	return x + 1;
}

/* The holder thread stays here, blocked in read() on a pipe nobody writes
 * to (a call the kernel restarts after rewire's signal). */
__attribute__((noinline, noipa)) void cli_hold(int fd)
{
	char c;

	while (read(fd, &c, 1) != 0)
		;
	__asm__ volatile("" ::: "memory"); /* no tail call out of here */
}

static _Atomic bool stop;

static void *worker(void *arg)
{
	long id = (long)arg;
	char who[32];
	int n = 0;

	snprintf(who, sizeof(who), "worker-%ld", id);
	while (!atomic_load(&stop)) {
		rw_patch_quiescent();
		rw_trace_cli_tick(n++, who);
		if (cli_compute(n) == 0)
			fprintf(stderr, "impossible\n");
		usleep(2000);
	}
	return NULL;
}

static void *holder(void *arg)
{
	cli_hold((int)(long)arg);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[NWORKERS], h;
	int pipefd[2], lifetime = 120, last[4] = { -1, -1, -1, -1 };
	unsigned long seq = 0;
	struct timespec start, now;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ctl-start")) {
			int err = rw_ctl_start();

			if (err) {
				fprintf(stderr, "rw_ctl_start: %s: %s\n",
					rw_strerror(err), rw_ctl_last_error());
				return 1;
			}
		} else if (!strcmp(argv[i], "--lifetime") && i + 1 < argc) {
			lifetime = atoi(argv[++i]);
		} else {
			fprintf(stderr,
				"usage: %s [--ctl-start] [--lifetime "
				"SEC]\n",
				argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_setname_np(pthread_self(), "cli-target");
	if (pipe(pipefd))
		return perror("pipe"), 1;
	for (long i = 0; i < NWORKERS; i++) {
		char name[16];

		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return perror("pthread_create"), 1;
		snprintf(name, sizeof(name), "cli-worker-%d", (int)(i % 10));
		pthread_setname_np(t[i], name);
	}
	if (pthread_create(&h, NULL, holder, (void *)(long)pipefd[0]))
		return perror("pthread_create"), 1;
	pthread_setname_np(h, "cli-holder");

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int cur[4];
		static const char *const names[4] = { "verbose", "fast",
						      "value", "compute" };

		rw_patch_quiescent();
		cur[0] = rw_static_branch_unlikely(cli_verbose) ? 1 : 0;
		cur[1] = rw_static_branch_likely(cli_fast) ? 1 : 0;
		cur[2] = (int)rw_static_call(cli_value)(10);
		cur[3] = cli_compute(40);
		for (int i = 0; i < 4; i++)
			if (cur[i] != last[i]) {
				printf("%s=%d\n", names[i], cur[i]);
				last[i] = cur[i];
			}
		if (seq == 0)
			printf("ready pid=%d\n", (int)getpid());
		rw_trace_cli_sample(seq, (double)seq / 3.0, seq & 1);
		seq++;
		usleep(LINE_MS * 1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= lifetime)
			break;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(t[i], NULL);
	printf("exiting\n");
	return 0;
}
