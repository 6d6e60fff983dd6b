/* SPDX-License-Identifier: MIT */
/*
 * Core synchronization, shared by the patching backends (x86-64, aarch64).
 *
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) interrupts every
 * other core that runs a thread of the process, and a thread that is not
 * running gets the same when it is next scheduled, so that each executes,
 * before it returns to user code:
 * - x86-64: a core-serializing instruction (iret), which Intel requires
 *   between writing code and another core running it;
 * - aarch64: a context synchronization event (an exception return), after
 *   which the core fetches again what the writer's DC CVAU / IC IVAU made
 *   visible (rw__arch_flush_icache; the architecture's rule for modifying
 *   code that other cores run).
 * If the kernel lacks it, interrupting every thread with a signal is
 * equivalent: the return from the handler is the same kind of exception
 * return.
 */
#include "../arch.h"
#include <rewire/threads.h>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int membarrier_state; /* 0 unknown, 1 registered, -1 none */

static void sync_noop(void *arg)
{
	(void)arg;
}

/* Registration can take milliseconds: do it before a batch arms any site,
 * not inside the trap window. */
void rw__arch_sync_prepare(void)
{
	long r;

	if (atomic_load(&membarrier_state) != 0)
		return;
	r = syscall(SYS_membarrier,
		    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
	if (r != 0)
		rw__log("membarrier SYNC_CORE unavailable (errno %d); "
			"using cross-thread signals",
			errno);
	atomic_store(&membarrier_state, r == 0 ? 1 : -1);
}

int rw__arch_sync_cores(void)
{
	rw__arch_sync_prepare();
	if (atomic_load(&membarrier_state) > 0 &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
		    0, 0) == 0)
		return 0;
	return rw_on_each_thread(sync_noop, NULL, 10000, NULL);
}

void rw__arch_sync_after_fork(void)
{
	/* The child is a new mm: register again, now, so that its first
	 * batch does not pay for it with a site armed. */
	atomic_store(&membarrier_state, 0);
	rw__arch_sync_prepare();
}
