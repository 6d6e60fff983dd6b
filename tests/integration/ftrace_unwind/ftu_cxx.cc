/* SPDX-License-Identifier: MIT */
/*
 * libftu.so, C++ part: exceptions and cancellation through frames with
 * local objects (landing pads that call a traced destructor).
 */
#include "ftu.h"

#include <errno.h>
#include <unistd.h>

int ftu_dtors, ftu_rethrows, ftu_blocked;

/* The functions that leave by cancellation or pthread_exit recurse on
 * every path that returns: that is the point. */
#pragma GCC diagnostic ignored "-Winfinite-recursion"

namespace
{
void sink(int v)
{
	asm volatile("" : : "r"(v) : "memory");
}
} // namespace

/* Out of line, traced ("ftu_guard::~ftu_guard()" matches "ftu_*"): the
 * landing pads call it while the exception unwinds the traced frames. */
struct ftu_guard {
	__attribute__((noinline)) ~ftu_guard();
};

ftu_guard::~ftu_guard()
{
	__atomic_add_fetch(&ftu_dtors, 1, __ATOMIC_SEQ_CST);
}

int ftu_throw_rec(int n, int tag)
{
	ftu_guard g;

	if (n == 0)
		throw ftu_error{ tag };
	int r = ftu_throw_rec(n - 1, tag);
	sink(r);
	return r ^ (r >> 1) ^ n;
}

int ftu_catch_mid(int n, int tag)
{
	try {
		int r = ftu_throw_rec(n, tag);
		sink(r);
		return r;
	} catch (const ftu_error &e) {
		return 1000 + e.tag;
	}
}

int ftu_rethrow(int n, int tag)
{
	ftu_guard g;

	try {
		int r = ftu_throw_rec(n, tag);
		sink(r);
		return r;
	} catch (...) {
		__atomic_add_fetch(&ftu_rethrows, 1, __ATOMIC_SEQ_CST);
		throw;
	}
}

int ftu_rethrow2(int n, int tag)
{
	try {
		int r = ftu_rethrow(n, tag);
		sink(r);
		return r;
	} catch (...) {
		__atomic_add_fetch(&ftu_rethrows, 1, __ATOMIC_SEQ_CST);
		throw;
	}
}

void ftu_cxx_block(int n)
{
	ftu_guard g;
	char c;

	if (n > 0) {
		ftu_cxx_block(n - 1);
		sink(n);
		return;
	}
	__atomic_add_fetch(&ftu_blocked, 1, __ATOMIC_SEQ_CST);
	for (;;)
		if (read(ftu_pipe[0], &c, 1) < 0 && errno != EINTR)
			break;
	for (;;)
		pause();
}

void ftu_cxx_exit(int n, void *v)
{
	ftu_guard g;

	if (n > 0) {
		ftu_cxx_exit(n - 1, v);
		sink(n);
		return;
	}
	pthread_exit(v);
}
