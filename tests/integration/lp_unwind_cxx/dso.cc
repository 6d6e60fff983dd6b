/* SPDX-License-Identifier: MIT */
/*
 * liblpu_dso.so: the helpers of test_lp_unwind_cxx and lpu_dso_work(), the
 * patched function that lives in a shared library (patchable entries:
 * test_lp_unwind_cxx.cmake).
 */
#include "lpu.h"

#include <errno.h>
#include <stdexcept>
#include <unistd.h>

int lpu_dtors[3];
int lpu_blocked;
int lpu_pipe[2] = { -1, -1 };

int lpu_init(void)
{
	return pipe(lpu_pipe);
}

__attribute__((noipa)) void lpu_throw(int side)
{
	throw std::runtime_error(side == 1 ? "side 1" : "side 2");
}

/* Never returns: only cancellation gets a thread out of here. */
__attribute__((noipa)) void lpu_block(void)
{
	char c;

	__atomic_add_fetch(&lpu_blocked, 1, __ATOMIC_SEQ_CST);
	for (;;)
		if (read(lpu_pipe[0], &c, 1) < 0 && errno != EINTR)
			break;
	/* Not reached: nobody writes to the pipe or closes it. */
	for (;;)
		pause();
}

__attribute__((noipa)) int lpu_dso_work(int mode, lpu_hook_t hook, void *arg)
{
	LPU_BODY(1, mode, hook, arg);
}
