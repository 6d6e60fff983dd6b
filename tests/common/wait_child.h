/* SPDX-License-Identifier: MIT */
/*
 * rw_test_wait_child(pid, &status, ms, what): waitpid() for a test's child,
 * bounded. After @ms milliseconds (times rw_test_time_scale()) the child is
 * taken as hung: each of its threads is printed on stderr (name, state,
 * kernel wait channel, /proc's syscall line: number, arguments, sp and pc,
 * and the kernel stack where readable), then it is killed with SIGKILL
 * and reaped. Returns 0 with @status set, or -1 after a hang (or a failed
 * waitpid). A hang in a child then fails with what it was doing, instead
 * of the whole test running into ctest's timeout without a word.
 */
#ifndef REWIRE_TEST_WAIT_CHILD_H
#define REWIRE_TEST_WAIT_CHILD_H

#include "check.h"

#include <dirent.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void rw_test_print_file(const char *path, const char *prefix)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "%s%s%s", prefix, line,
			strchr(line, '\n') ? "" : "\n");
	fclose(f);
}

/* Every thread of @pid, on stderr. */
static inline void rw_test_dump_threads(pid_t pid)
{
	char dir[64], path[384];
	struct dirent *d;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	dp = opendir(dir);
	if (!dp) {
		fprintf(stderr, "  (no %s: %s)\n", dir, strerror(errno));
		return;
	}
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		fprintf(stderr, "  thread %s:\n", d->d_name);
		snprintf(path, sizeof(path), "%s/%s/comm", dir, d->d_name);
		rw_test_print_file(path, "    comm    ");
		snprintf(path, sizeof(path), "%s/%s/stat", dir, d->d_name);
		rw_test_print_file(path, "    stat    ");
		snprintf(path, sizeof(path), "%s/%s/wchan", dir, d->d_name);
		rw_test_print_file(path, "    wchan   ");
		snprintf(path, sizeof(path), "%s/%s/syscall", dir, d->d_name);
		rw_test_print_file(path, "    syscall ");
		snprintf(path, sizeof(path), "%s/%s/stack", dir, d->d_name);
		rw_test_print_file(path, "    kstack  ");
	}
	closedir(dp);
}

static inline int rw_test_wait_child(pid_t pid, int *status, unsigned ms,
				     const char *what)
{
	uint64_t end = rw_test_now_ns() +
		       (uint64_t)ms * rw_test_time_scale() * 1000000ull;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		struct timespec ts = { 0, 5000000 };

		if (r == pid)
			return 0;
		if (r < 0) {
			fprintf(stderr, "%s: waitpid(%d): %s\n", what, (int)pid,
				strerror(errno));
			return -1;
		}
		if (rw_test_now_ns() >= end)
			break;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "%s: child %d hung (%u ms, times %u); its threads:\n",
		what, (int)pid, ms, rw_test_time_scale());
	rw_test_dump_threads(pid);
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

#endif
