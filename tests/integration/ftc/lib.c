/* SPDX-License-Identifier: MIT */
/*
 * libftc_lib.so: the traced functions of the test_ftc_* tests (ftc.h).
 * Plain code as a program has it (no noinline toys): ftc.cmake builds it
 * with Debian's flags and patchable entries.
 */
#include "ftc.h"

#include <unistd.h>

int ftc_fd = -1;

int ftc_leaf(int x)
{
	return 3 * x + 1;
}

int ftc_inner(int x)
{
	return x + 1;
}

int ftc_wait(void)
{
	char c = 0;

	if (read(ftc_fd, &c, 1) != 1)
		return -1;
	return c;
}

int ftc_outer(int x)
{
	if (x < 0) {
		ftc_wait();
		return ftc_inner(-x) + 10;
	}
	return ftc_inner(x) + 10;
}

int ftc_set_a(int x)
{
	return x + 100;
}

int ftc_set_b(int x)
{
	return x + 200;
}

int ftc_set_c(int x)
{
	return x + 300;
}

RW_DEFINE_TRACEPOINT(ftc_event, (int, x), (int, seq));

int ftc_op_double(int x)
{
	return 2 * x;
}

int ftc_op_square(int x)
{
	return x * x;
}

RW_DEFINE_STATIC_CALL(ftc_op, ftc_op_double);

int ftc_tp_sc(int x, int seq)
{
	rw_trace_ftc_event(x, seq);
	return rw_static_call(ftc_op)(x);
}

int ftc_fork_fn(int x)
{
	return x + 7;
}

int ftc_fork_call(void)
{
	return fork();
}
