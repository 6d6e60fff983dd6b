/* SPDX-License-Identifier: MIT */
/*
 * Minimal test harness shared by rewire's unit, torture and integration
 * tests. Each test executable is one CTest test; exit code 77 means skipped.
 *
 *   CHECK(cond)            fail (exit 1) with file:line and the expression
 *   CHECK_EQ(a, b)         compare two integers, print both on failure
 *   CHECK_OK(expr)         expr must return 0; prints rw_strerror otherwise
 *   SKIP(fmt, ...)         print the reason and exit 77
 *   rw_test_long()         true when REWIRE_TORTURE_LONG=1 (long torture runs)
 *   rw_test_scale(s, l)    s normally, l when long runs are requested
 *   rw_test_now_ns()       CLOCK_MONOTONIC in nanoseconds
 *   rw_test_time_scale()   REWIRE_TEST_TIME_SCALE (default 1): what a
 *                          slow machine (the emulated aarch64 one, where
 *                          scripts/aarch64/guest-suite.sh sets it)
 *                          multiplies the tests' waits for an outcome by
 *   rw_test_enough(t0, max_ns, done, min_done)
 *                          a timed torture loop may stop: max_ns have
 *                          passed since t0 and done >= min_done rounds
 *                          ran, or 20 * max_ns passed (the emulated
 *                          aarch64 machine is 10-30x slower: a short run
 *                          goes on until its minimum of rounds, and the
 *                          test's check of that minimum still fails on
 *                          a real starvation)
 */
#ifndef REWIRE_TEST_CHECK_H
#define REWIRE_TEST_CHECK_H

#include <rewire/common.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			exit(1);                                               \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                              \
	do {                                                                        \
		long long _a = (long long)(a), _b = (long long)(b);                 \
		if (_a != _b) {                                                     \
			fprintf(stderr,                                             \
				"%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", \
				__FILE__, __LINE__, #a, _a, #b, _b);                \
			exit(1);                                                    \
		}                                                                   \
	} while (0)

#define CHECK_OK(expr)                                                  \
	do {                                                            \
		int _r = (expr);                                        \
		if (_r != 0) {                                          \
			fprintf(stderr, "%s:%d: %s returned %d (%s)\n", \
				__FILE__, __LINE__, #expr, _r,          \
				rw_strerror(_r));                       \
			exit(1);                                        \
		}                                                       \
	} while (0)

#define SKIP(...)                                      \
	do {                                           \
		fprintf(stderr, "SKIP: " __VA_ARGS__); \
		fputc('\n', stderr);                   \
		exit(77);                              \
	} while (0)

/* Number of patchable sites the backend reports for n sites in the code:
 * the generic backend has none (keys are flags). */
#ifdef RW_BACKEND_PATCHING
#define RW_TEST_SITES(n) (n)
#else
#define RW_TEST_SITES(n) 0
#endif

/* How many sites the table may hold for @n in the source: GCC for aarch64
 * duplicates some (tail duplication of the asm goto), each copy a site of
 * its own that is patched with the rest; x86-64 builds keep exactly @n. */
#if defined(RW_BACKEND_AARCH64)
#define RW_TEST_SITES_OK(got, n) ((got) >= (n) && (got) <= 2 * (n))
#else
#define RW_TEST_SITES_OK(got, n) ((got) == (n))
#endif

/* The extent of the section NAME (functions put there with
 * __attribute__((section("NAME")))) as a struct rw__lp_range
 * (src/livepatch/lp.h): the ranges of the stack check tests. */
#define SECTION_RANGE(name)                                        \
	({                                                         \
		extern char __start_##name[], __stop_##name[];     \
		(struct rw__lp_range){ (uintptr_t)__start_##name,  \
				       (uintptr_t)__stop_##name }; \
	})

static inline bool rw_test_long(void)
{
	const char *s = getenv("REWIRE_TORTURE_LONG");
	return s && *s && strcmp(s, "0") != 0;
}

static inline long rw_test_scale(long short_run, long long_run)
{
	return rw_test_long() ? long_run : short_run;
}

static inline uint64_t rw_test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline unsigned rw_test_time_scale(void)
{
	const char *s = getenv("REWIRE_TEST_TIME_SCALE");
	long v = s ? strtol(s, NULL, 10) : 1;

	return v >= 1 && v <= 100 ? (unsigned)v : 1;
}

static inline bool rw_test_enough(uint64_t t0, uint64_t max_ns, long done,
				  long min_done)
{
	uint64_t el = rw_test_now_ns() - t0;

	return el >= max_ns && (done >= min_done || el / 20 >= max_ns);
}

/* The state letter of thread @tid of this process (/proc/self/task/TID/
 * stat: 'R', 'S', 'Z' zombie ...), '?' when it cannot be read. */
static inline char rw_test_task_state(int tid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "TID (COMM) STATE ...": COMM may hold ')' itself. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

#endif /* REWIRE_TEST_CHECK_H */
