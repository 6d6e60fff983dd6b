/* SPDX-License-Identifier: MIT */
/*
 * livepatch_basic - fix a function of a running multithreaded program.
 *
 * Four threads call average(), which has a bug (it divides by n + 1).
 * The program loads examples/patches/fix_average.c, built as
 * fix_average.so next to this program, enables it and waits for the
 * transition: each thread switches to the fixed function once its own
 * stack holds no call of the old one. No thread is stopped; the threads'
 * results show the moment each one switched. Then the patch is disabled
 * and the bug is back.
 *
 * The program is built with -fpatchable-function-entry=5
 * (rewire_target_patchable in examples/CMakeLists.txt), the patch with
 * rewire_add_patch(). See doc/LIVEPATCH.md.
 *
 *	build/default/examples/rw-example-livepatch_basic [PATCH.so]
 */
#include <rewire/rewire.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NTHREADS 4

static const int data[] = { 10, 20, 30, 40 };

/* The bug: n + 1. noinline keeps a call (and its patchable entry). */
__attribute__((noinline)) int average(const int *v, int n);
__attribute__((noinline)) int average(const int *v, int n)
{
	long sum = 0;

	for (int i = 0; i < n; i++)
		sum += v[i];
	return (int)(sum / (n + 1));
}

/*
 * Each result is counted in the phase its whole call lay in: the worker
 * reads the phase before and after the call. A call that began before
 * rw_patch_wait() returned may run either function; one that began after
 * it and ended before the disable can only run the new one. A call that
 * straddles a change of phase is counted in the transition that follows
 * the phase it began in.
 */
enum { BEFORE, TRANSITION, PATCHED, REVERTING, UNPATCHED, NPHASES };
static _Atomic bool stop;
static _Atomic int phase;
static _Atomic long right[NPHASES][NTHREADS], wrong[NPHASES][NTHREADS];

static void *worker(void *arg)
{
	long id = (long)arg;

	while (!atomic_load(&stop)) {
		int ph = atomic_load(&phase);
		bool ok = average(data, 4) == 25;

		if (atomic_load(&phase) != ph)
			ph = ph <= TRANSITION ? TRANSITION : REVERTING;
		atomic_fetch_add(ok ? &right[ph][id] : &wrong[ph][id], 1);
	}
	return NULL;
}

static void show(const char *when, int ph)
{
	printf("%-26s", when);
	for (int i = 0; i < NTHREADS; i++)
		printf("  t%d %9ld ok %9ld bad", i, atomic_load(&right[ph][i]),
		       atomic_load(&wrong[ph][i]));
	printf("\n");
}

static void state(struct rw_patch *p)
{
	struct rw_patch_info info;

	if (rw_patch_state(p, &info) == 0)
		printf("  patch %s: %zu of %zu threads switched in %.3f ms, "
		       "%u check round(s)\n",
		       info.name, info.threads_switched, info.threads_total,
		       (double)info.transition_ns / 1e6, info.attempts);
}

static void die(int err, const char *what)
{
	fprintf(stderr, "livepatch_basic: %s: %s\n  %s\n", what,
		rw_strerror(err), rw_patch_last_error());
	exit(1);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	pthread_t t[NTHREADS];
	struct rw_patch *p;
	int err;

	if (argc > 1) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else {
		/* fix_average.so sits next to the executable. */
		ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
		char *slash;

		if (n < 0)
			return perror("readlink"), 1;
		path[n] = '\0';
		slash = strrchr(path, '/');
		snprintf(slash + 1, sizeof(path) - (size_t)(slash + 1 - path),
			 "fix_average.so");
	}
	printf("average of 10 20 30 40 should be 25; the program says %d\n",
	       average(data, 4));
	for (long i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return perror("pthread_create"), 1;
	usleep(100000);
	atomic_store(&phase, TRANSITION);
	show("before (bug)", BEFORE);

	err = rw_patch_load(path, 0, &p);
	if (err == -EOPNOTSUPP) {
		printf("live patching needs the x86_64 backend; skipped\n");
		atomic_store(&stop, true);
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		return 0;
	}
	if (err)
		die(err, "rw_patch_load");
	err = rw_patch_enable(p);
	if (err)
		die(err, "rw_patch_enable");
	err = rw_patch_wait(p, 10000);
	if (err)
		die(err, "rw_patch_wait");
	atomic_store(&phase, PATCHED);
	show("transition (mixed)", TRANSITION);
	state(p);
	usleep(100000);
	show("patched", PATCHED);

	atomic_store(&phase, REVERTING);
	err = rw_patch_disable(p);
	if (!err)
		err = rw_patch_wait(p, 10000);
	if (err)
		die(err, "disable");
	atomic_store(&phase, UNPATCHED);
	show("disable (mixed)", REVERTING);
	state(p);
	usleep(100000);
	show("unpatched again (bug)", UNPATCHED);

	atomic_store(&stop, true);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	err = rw_patch_unload(p);
	if (err)
		die(err, "rw_patch_unload");
	printf("main thread: average = %d\n", average(data, 4));
	return 0;
}
